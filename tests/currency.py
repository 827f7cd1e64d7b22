#!/usr/bin/env python3
"""Money in each currency's own minor unit (issue 15), through real nginx:
a site in JPY (no decimals) shows 1500 JPY everywhere and stores 1500; one
in BHD (three decimals) 12.345 and 12345; GBP is as it was. The settings
refuse a price with more decimals than the currency has, naming the line;
pmbctl migrate brings amounts stored by earlier versions to the new unit."""
import csv
import io
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, PMBCTL, ask, track_path, login, schema_at,  # noqa: E402
                     admin_csrf, STAFF)

t = Tap()


def text_of(html):
    """The words of a page, tags removed and spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def new_order(site, email):
    """A client asks a question; returns (client, track path, order id)."""
    c = Browser(site)
    r = ask(c, email=email)
    assert r.status == 303, r
    path = track_path(r.header("Location"))
    return c, path, site.sql1("SELECT id FROM orders WHERE email = ?", email)


def csv_row(staff, number):
    """The export's row of order number (price, currency, paid, refunded,
    net), or None."""
    e = staff.get("/admin/export.csv")
    for row in csv.reader(io.StringIO(e.body.decode("utf-8"), newline="")):
        if row and row[0] == number:
            return row[5:10]
    return None


def revenue(staff):
    """The dashboard's revenue table: [(currency, in, out, net)], one row
    per currency and method (the methods are not compared here)."""
    r = staff.get("/admin/dashboard")
    m = re.search(r'<table id="revenue">(.*?)</table>', r.text, re.S)
    return re.findall(r"<tr><td>([A-Z]{3})</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
                      m.group(1) if m else "")


def test_jpy():
    site = Site(users=STAFF, settings={"currency": "JPY", "price": "1500"})
    try:
        site.start()
        staff = Browser(site)
        login(staff)
        home = text_of(site.get("/").text)
        t.ok("1500 JPY" in home and "1500.00" not in home and "15.00" not in home,
             "JPY: the home page shows 1500 JPY, no decimals")
        t.ok("1500 JPY" in text_of(site.get("/ask").text), "JPY: the question form says 1500 JPY")
        c, path, oid = new_order(site, "yen@example.com")
        t.eq(site.sql1("SELECT price || ' ' || currency FROM orders WHERE id = ?", oid), "1500 JPY",
             "JPY: the order stores 1500, the yen being the minor unit")
        mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid)
        t.ok("pay 1500 JPY" in mail, "JPY: the confirmation asks for 1500 JPY", mail)
        t.ok("1500 JPY" in text_of(c.get(path).text), "JPY: the status page shows 1500 JPY")
        op = staff.get("/admin/orders/%d" % oid)
        t.ok("Price 1500 JPY" in text_of(op.text) and 'name="amount" value="1500"' in op.text,
             "JPY: the admin order page shows the price and offers 1500 to mark paid")

        tok = admin_csrf(staff, "/admin/orders/%d" % oid)
        r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "1500.5", "method": "bank_transfer", "csrf_token": tok})
        t.eq(r.status, 400, "JPY: mark paid 1500.5 answers 400")
        t.ok("JPY has no decimals" in r.text and 'value="1500.5"' in r.text,
             "JPY: the page says JPY has no decimals and keeps what was typed")
        t.eq(site.sql1("SELECT count(*) FROM ledger WHERE order_id = ?", oid), 0, "JPY: nothing was recorded")
        r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "1500", "method": "bank_transfer", "csrf_token": tok})
        t.eq(r.status, 303, "JPY: mark paid 1500 is recorded")
        t.eq(site.sql("SELECT kind, amount, currency FROM ledger WHERE order_id = ?", oid),
             [("payment", 1500, "JPY")], "JPY: the ledger holds 1500 JPY")
        mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'paid'", oid)
        t.ok("payment of 1500 JPY" in mail, "JPY: the payment email says 1500 JPY", mail)
        op = text_of(staff.get("/admin/orders/%d" % oid).text)
        t.ok("1500 JPY" in op and "1500.00" not in op and "15.00" not in op,
             "JPY: the order page's ledger and balance show 1500 JPY")

        r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Sell **mochi**.", "csrf_token": tok, "confirm": "yes"})
        t.eq(r.status, 303, "JPY: the answer is sent")
        answer = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
        t.ok("your 1500 JPY back" in answer, "JPY: the answer email offers 1500 JPY back", answer)
        rpath = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", answer).group(1)
        t.ok("1500 JPY" in text_of(c.get(rpath).text), "JPY: the refund page offers 1500 JPY")
        _, hidden = c.form(rpath)
        t.eq(c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]}).status, 200,
             "JPY: the client asks for the money back")
        rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
        page = staff.get("/admin/refunds")
        t.ok('value="1500"' in page.text, "JPY: the refunds list offers 1500")
        tok = admin_csrf(staff, "/admin/refunds")
        r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "500.25", "method": "bank_transfer", "csrf_token": tok})
        t.eq(r.status, 400, "JPY: a refund of 500.25 answers 400")
        t.ok("JPY has no decimals" in r.text, "JPY: and says JPY has no decimals")
        r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "500", "method": "bank_transfer", "csrf_token": tok})
        t.eq(r.status, 303, "JPY: a partial refund of 500 is recorded")
        mail = site.sql("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid)
        t.ok(mail and "refunded 500 JPY" in mail[0][0] and "remaining 1000 JPY" in mail[0][0],
             "JPY: the refund email says 500 JPY, 1000 JPY to follow", mail)
        t.ok("1000 JPY" in text_of(c.get(path).text), "JPY: the status page shows the 1000 JPY left")

        t.eq(csv_row(staff, "PMB-%06d" % oid), ["1500", "JPY", "1500", "500", "1000"],
             "JPY: the CSV export has 1500 paid, 500 refunded, 1000 net, no decimals")
        t.eq(revenue(staff), [("JPY", "1500", "500", "1000")], "JPY: the dashboard's revenue, no decimals")
        r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "bank_transfer", "csrf_token": tok})
        t.eq(r.status, 303, "JPY: an empty amount refunds the rest")
        t.eq(site.sql("SELECT kind, amount FROM ledger WHERE order_id = ? ORDER BY id", oid),
             [("payment", 1500), ("refund", 500), ("refund", 1000)], "JPY: the ledger adds up in yen")
    finally:
        site.cleanup()


# Sites whose currency has decimals: (settings, price shown, price stored,
# an amount with one decimal too many, what the page says of it, the
# CSV export's price, currency, paid, refunded, net).
DECIMAL_SITES = [
    ({"price": "12.345", "currency": "BHD"}, "12.345 BHD", 12345, "12.3456", "BHD has at most 3 decimals",
     ["12.345", "BHD", "12.345", "0.000", "12.345"]),
    ({}, "150.00 GBP", 15000, "150.001", "GBP has at most 2 decimals",
     ["150.00", "GBP", "150.00", "0.00", "150.00"]),
]


def test_decimals():
    for settings, shown, stored, too_many, why, row in DECIMAL_SITES:
        cur = row[1]
        site = Site(users=STAFF, settings=settings)
        try:
            site.start()
            staff = Browser(site)
            login(staff)
            t.ok(shown in text_of(site.get("/").text), "%s: the home page shows %s" % (cur, shown))
            c, path, oid = new_order(site, cur.lower() + "@example.com")
            t.eq(site.sql1("SELECT price FROM orders WHERE id = ?", oid), stored,
                 "%s: the order stores %d minor units" % (cur, stored))
            t.ok(shown in text_of(c.get(path).text), "%s: the status page shows %s" % (cur, shown))
            tok = admin_csrf(staff, "/admin/orders/%d" % oid)
            r = staff.post("/admin/orders/%d/paid" % oid, {"method": "bank_transfer", "amount": too_many, "csrf_token": tok})
            t.ok(r.status == 400 and why in r.text, "%s: mark paid %s answers 400: %s" % (cur, too_many, why),
                 r.status)
            amount = shown.split()[0]
            r = staff.post("/admin/orders/%d/paid" % oid, {"amount": amount, "method": "bank_transfer", "csrf_token": tok})
            t.eq(r.status, 303, "%s: mark paid %s is recorded" % (cur, amount))
            t.eq(site.sql1("SELECT amount FROM ledger WHERE order_id = ?", oid), stored,
                 "%s: the ledger holds %d" % (cur, stored))
            t.eq(csv_row(staff, "PMB-%06d" % oid), row, "%s: the CSV export has its decimals" % cur)
            t.eq(revenue(staff), [tuple(row[1:])], "%s: the dashboard has its decimals" % cur)
        finally:
            site.cleanup()


def test_settings():
    site = Site()
    try:
        for lines, line in ((["price = 1500.5", "currency = JPY"], 1),
                            (["currency = JPY", "", "price = 1500.50"], 3)):
            path = os.path.join(site.dir, "bad.conf")
            with open(path, "w") as f:
                f.write("\n".join(["database = " + site.db] + lines) + "\n")
            env = dict(os.environ, PMB_CONFIG=path)
            p = subprocess.run([PMBCTL, "check"], capture_output=True, text=True, env=env)
            want = "bad.conf:%d: price: JPY has no decimals" % (line + 1)
            t.ok(p.returncode != 0 and want in p.stderr,
                 "a JPY price with decimals is refused, naming its line (%d), "
                 "whichever comes first" % (line + 1), p.stderr)
    finally:
        site.cleanup()


# --- the migration ----------------------------------------------------------
def test_migration():
    site = Site()
    try:
        schema_at(site.db, 10)
        con = sqlite3.connect(site.db)
        orders = [("yen", 150000, "JPY"), ("odd", 150050, "JPY"), ("pound", 15000, "GBP"),
                  ("dinar", 1234, "BHD"), ("won", 3000000, "KRW")]
        ids = {}
        for name, price, cur in orders:
            ids[name] = con.execute(
                "INSERT INTO orders (form_token, name, email, price, currency, status, created_at, due_at, paid_at, "
                "updated_at) "
                "VALUES (?, ?, ?, ?, ?, 'paid', 1000, 2000, 1000, 1000)",
                ("ft-" + name, name, name + "@example.com", price, cur)).lastrowid
        ledger = [("yen", "payment", 150000, "JPY"), ("yen", "refund", 50000, "JPY"),
                  ("odd", "payment", 150050, "JPY"), ("odd", "refund", 49, "JPY"),
                  ("pound", "payment", 15000, "GBP"), ("dinar", "payment", 1234, "BHD"),
                  ("won", "payment", 3000000, "KRW")]
        for name, kind, amount, cur in ledger:
            con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, at) "
                        "VALUES (?, ?, ?, ?, 'bank', 1000)", (ids[name], kind, amount, cur))
        con.commit()
        con.close()
        p = site.ctl("migrate", check=False)
        t.ok(p.returncode == 0 and re.search(r"\b\d+ migrations applied", p.stdout) and
             site.sql1("PRAGMA user_version") >= 11,
             "pmbctl migrate applies 011 (and any later) to a database at version 10", p.stdout + p.stderr)
        price = lambda n: site.sql1("SELECT price FROM orders WHERE id = ?", ids[n])
        amounts = lambda n: [a for (a,) in site.sql("SELECT amount FROM ledger WHERE order_id = ? ORDER BY id", ids[n])]
        t.eq((price("yen"), amounts("yen")), (1500, [1500, 500]),
             "a JPY order stored as 150000 reads 1500, its ledger rows 1500 and 500")
        t.eq((price("won"), amounts("won")), (30000, [30000]), "KRW likewise")
        t.eq((price("pound"), amounts("pound")), (15000, [15000]), "GBP is left as it was")
        t.eq((price("dinar"), amounts("dinar")), (12340, [12340]), "BHD stored with two decimals gains its third")
        t.eq((price("odd"), amounts("odd")), (1501, [1501, 1]),
             "a yen amount with decimals is kept, rounded half up, never below 1 in the ledger")
        notes = [d for (d,) in site.sql("SELECT detail FROM audit WHERE action = 'amount rounded' "
                                        "AND order_id = ? ORDER BY id", ids["odd"])]
        t.eq(notes, ["migration 011: the price of 1500.50 JPY, which has no decimals, is now 1501 JPY",
                     "migration 011: ledger row 3, a payment of 1500.50 JPY, which has no decimals, is now 1501 JPY",
                     "migration 011: ledger row 4, a refund of 0.49 JPY, which has no decimals, is now 1 JPY"],
             "each rounded amount leaves an audit row saying what it was")
        t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'amount rounded' AND order_id <> ?", ids["odd"]),
             0, "exact amounts leave no audit row")
        for name, pw in STAFF.items():     # the database made by hand has no staff
            site.ctl("user", "add", name, input=pw + "\n")
        site.start()
        staff = Browser(site)
        login(staff)
        op = text_of(staff.get("/admin/orders/%d" % ids["yen"]).text)
        t.ok("Price 1500 JPY" in op and "net 1000 JPY" in op, "the migrated order's page shows 1500 JPY, net 1000")
        op = text_of(staff.get("/admin/orders/%d" % ids["odd"]).text)
        t.ok("is now 1501 JPY" in op, "the rounding shows in the order page's audit")
    finally:
        site.cleanup()


for fn in (test_jpy, test_decimals, test_settings, test_migration):
    t.run(fn)
sys.exit(t.done())
