#!/usr/bin/env python3
"""The accountant's two CSV files (issue 16), through real nginx:
/admin/export.csv, one row per order, gains topic, paid_at, refunded_at and
the methods and references of its payments and refunds after its older
columns; /admin/export-ledger.csv has one row per payment or refund, in
ledger order, with who recorded it. Cells a spreadsheet could run are
defused; both queries read indexes."""
import calendar
import csv
import io
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     STAFF, stmt_sql)

t = Tap()

OLD_COLUMNS = ["number", "created", "status", "name", "email", "price", "currency", "paid", "refunded", "net",
               "paid_by_card", "paid_otherwise", "refunded_to_card", "refunded_otherwise"]
NEW_COLUMNS = ["topic", "paid_at", "refunded_at", "payment_methods", "payment_references", "refund_methods",
               "refund_references"]
LEDGER_COLUMNS = ["number", "at", "kind", "amount", "currency", "method", "reference", "recorded_by"]


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def rows_of(resp):
    """The rows of a CSV answer, after checking that it is one: 200,
    text/csv, an attachment, CRLF line ends, every cell quoted."""
    body = resp.body
    t.eq(resp.status, 200, "answers 200")
    t.ok((resp.header("Content-Type") or "").startswith("text/csv"), "as text/csv")
    t.ok(re.fullmatch(rb'(?:"(?:[^"]|"")*"(?:,|\r\n))+', body) is not None,
         "every cell is quoted and every line ends in CRLF")
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def plan(site, query):
    con = sqlite3.connect(site.db)
    try:
        return " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + query))
    finally:
        con.close()


def test_exports():
    site = Site(users=STAFF)
    site.start()
    try:
        staff = Browser(site)
        login(staff)
        t.eq(Browser(site).get("/admin/export-ledger.csv").status, 303,
             "signed out, the ledger export sends to sign-in")
        t.ok((Browser(site).get("/admin/export-ledger.csv").header("Location") or "").endswith("/admin/login"),
             "to the sign-in page")
        t.eq(Browser(site).get("/admin/export.csv").status, 303, "signed out, the order export sends to sign-in")
        dash = staff.get("/admin/dashboard").text
        t.ok('href="/admin/export.csv"' in dash and 'href="/admin/export-ledger.csv"' in dash,
             "the dashboard links to both exports")

        # A bank-paid order, answered, then partly refunded twice by the
        # consultant, who typed references a spreadsheet could run.
        # An unpaid order first: its empty lists come before any other's.
        ask(Browser(site), email="unpaid@example.com", name="Una Paid")
        unpaid = site.sql1("SELECT id FROM orders WHERE email = 'unpaid@example.com'")
        c = Browser(site)
        ask(c, email="bank@example.com")
        bank = site.sql1("SELECT id FROM orders WHERE email = 'bank@example.com'")
        tok = admin_csrf(staff)
        r = staff.post("/admin/orders/%d/paid" % bank,
                       {"amount": "150.00", "method": "bank_transfer", "reference": "=1+1", "csrf_token": tok})
        t.eq(r.status, 303, "the consultant records a bank payment with reference =1+1")
        r = staff.post("/admin/orders/%d/reply" % bank, {"body": "Try a **loyalty card**.", "confirm": "yes", "csrf_token": tok})
        t.eq(r.status, 303, "and answers")
        mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", bank)
        rpath = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail).group(1)
        site.sql("UPDATE orders SET topic = '=cmd|calc' WHERE id = ?", bank)
        _, hidden = c.form(rpath)
        t.eq(c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]}).status, 200,
             "the bank client asks for the money back")
        rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", bank)
        tok = admin_csrf(staff, "/admin/refunds")
        for amount, ref in (("20.00", "=1+1"), ("30.00", "@SUM(A1)")):
            r = staff.post("/admin/refunds/%d/refunded" % rid,
                           {"amount": amount, "method": "bank_transfer", "reference": ref, "csrf_token": tok})
            t.eq(r.status, 303, "a partial refund of %s is recorded" % amount)

        # A card-paid order, as the Stripe webhook writes it (no user).
        c2 = Browser(site)
        ask(c2, email="card@example.com", name="Cara Card")
        card = site.sql1("SELECT id FROM orders WHERE email = 'card@example.com'")

        t0 = calendar.timegm((2026, 3, 28, 23, 30, 0))
        con = sqlite3.connect(site.db)
        con.execute("UPDATE orders SET status = 'paid', paid_at = ? WHERE id = ?", (t0 + 60, card))
        con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, reference, at) "
                    "VALUES (?, 'payment', 15000, 'GBP', 'card', 'pi_3Abc', ?)", (card, t0 + 60))
        # Known times, so that first payment and latest refund are told apart.
        ids = [x[0] for x in con.execute("SELECT id FROM ledger WHERE order_id = ? ORDER BY id", (bank,))]
        for i, lid in enumerate(ids):
            con.execute("UPDATE ledger SET at = ? WHERE id = ?", (t0 + 1000 * i, lid))
        con.commit()
        con.close()
        t.eq(len(ids), 3, "the bank order has a payment and two refunds")

        rows = rows_of(staff.get("/admin/export.csv"))
        t.eq(rows[0] if rows else None, OLD_COLUMNS + NEW_COLUMNS,
             "the header: the older columns in their places, the new ones at the end")
        t.eq({len(x) for x in rows}, {21}, "every row has 21 columns")
        t.eq(len(rows) - 1, 3, "one row per order")
        by = {x[0]: dict(zip(rows[0], x)) for x in rows[1:]}
        num = lambda oid: "PMB-%06d" % oid
        b, k, u = by.get(num(bank), {}), by.get(num(card), {}), by.get(num(unpaid), {})
        t.eq([b.get(x) for x in OLD_COLUMNS[5:]],
             ["150.00", "GBP", "150.00", "50.00", "100.00", "0.00", "150.00", "0.00", "50.00"],
             "the bank order's money columns as before")
        t.eq([b.get(x) for x in NEW_COLUMNS],
             ["'=cmd|calc", iso(t0), iso(t0 + 2000), "bank_transfer", "'=1+1", "bank_transfer; bank_transfer",
              "'=1+1; @SUM(A1)"],
             "bank, partly refunded: topic, first payment time, latest refund time, methods and references "
             "in ledger order; cells that could run are defused")
        t.eq([k.get(x) for x in OLD_COLUMNS[7:]], ["150.00", "0.00", "150.00", "150.00", "0.00", "0.00", "0.00"],
             "the card order's money: all of it by card")
        t.eq([k.get(x) for x in NEW_COLUMNS],
             ["Getting customers", iso(t0 + 60), "", "card", "pi_3Abc", "", ""],
             "card: paid_at, its method and Stripe's reference, no refund")
        t.eq([u.get(x) for x in NEW_COLUMNS], ["Getting customers", "", "", "", "", "", ""],
             "unpaid: no payment or refund time, no methods, no references")
        t.ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", u.get("created", "")), "created is ISO 8601 UTC")

        e = staff.get("/admin/export-ledger.csv")
        t.ok(re.match(r'attachment; filename="pmb-ledger-\d{4}-\d\d-\d\d\.csv"$',
                      e.header("Content-Disposition") or ""), "the ledger as an attachment with a file name",
             e.header("Content-Disposition"))
        lrows = rows_of(e)
        t.eq(lrows[0] if lrows else None, LEDGER_COLUMNS, "the ledger's header")
        t.eq(lrows[1:], [
            [num(bank), iso(t0), "payment", "150.00", "GBP", "bank_transfer", "'=1+1", "sam"],
            [num(bank), iso(t0 + 1000), "refund", "20.00", "GBP", "bank_transfer", "'=1+1", "sam"],
            [num(bank), iso(t0 + 2000), "refund", "30.00", "GBP", "bank_transfer", "'@SUM(A1)", "sam"],
            [num(card), iso(t0 + 60), "payment", "150.00", "GBP", "card", "pi_3Abc", "stripe"],
        ], "one row per payment or refund in ledger order, amounts in the currency's decimals, recorded by "
           "the staff member or stripe; references that could run are defused")
        # A row no one recorded and Stripe did not name: "system"; JPY without decimals.
        site.sql("INSERT INTO ledger (order_id, kind, amount, currency, method, reference, at) "
                 "VALUES (?, 'payment', 1500, 'JPY', 'card', 'Visa', ?)", unpaid, t0)
        last = rows_of(staff.get("/admin/export-ledger.csv"))[-1]
        t.eq(last, [num(unpaid), iso(t0), "payment", "1500", "JPY", "card", "Visa", "system"],
             "a row with no user and no Stripe id is recorded by system; JPY has no decimals")

        p = plan(site, stmt_sql("EXPORT_ORDERS"))
        t.ok("SEARCH l USING INDEX ledger_order (order_id=?)" in p and "TEMP B-TREE" not in p and
             not re.search(r"SCAN l\b", p), "the order export reads each order's ledger rows by ledger_order, "
             "no sort", p)
        p = plan(site, stmt_sql("EXPORT_LEDGER"))
        t.ok("SEARCH o USING INTEGER PRIMARY KEY" in p and "SEARCH u USING INTEGER PRIMARY KEY" in p and
             "TEMP B-TREE" not in p, "the ledger export walks the ledger once, orders and users by key, no sort", p)
    finally:
        site.cleanup()


t.run(test_exports)
sys.exit(t.done())
