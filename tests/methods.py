#!/usr/bin/env python3
"""Payment methods as a fixed list (issue 16), through real nginx: the
select of "Mark paid" and of "Mark refunded" and its values (card,
bank_transfer, paypal, cash, other), a value not in the list refused with
what was typed kept, migration 018 mapping the free text stored before,
the refund wording by the order's payment method (refund page, status
page, emails, setting refund_days), and the refunds page's "Paid by" and
net amount."""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, schema_at, track_path, login, admin_csrf,  # noqa: E402
                     unescape, STAFF)

t = Tap()

VALUES = ["card", "bank_transfer", "paypal", "cash", "other"]
LABELS = ["Card", "Bank transfer", "PayPal", "Cash", "Other"]

site = Site(users=STAFF, settings={"refund_days": "7"})
site.start()
staff = Browser(site)
login(staff)


def text_of(html):
    """The words of a page, tags removed and spaces folded."""
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def options(html, select_id):
    """[(value, label, selected)] of the select with that id."""
    m = re.search(r'<select id="%s" name="method">(.*?)</select>' % re.escape(select_id), html, re.S)
    if not m:
        return None
    return [(v, unescape(l.strip()), bool(s)) for v, s, l in
            re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', m.group(1))]


def new_order(email):
    """A client asks; returns (client, track path, order id)."""
    c = Browser(site)
    path = track_path(ask(c, email=email).header("Location"))
    return c, path, site.sql1("SELECT id FROM orders WHERE email = ?", email)


def paid_answered(email, method, reference=""):
    """An order marked paid by hand with method and reference, then
    answered; returns (client, track path, order id, refund path)."""
    c, path, oid = new_order(email)
    tok = admin_csrf(staff)
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": method,
                                                   "reference": reference, "csrf_token": tok})
    assert r.status == 303, r
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "An answer.", "confirm": "yes", "csrf_token": tok})
    assert r.status == 303, r
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
    return c, path, oid, re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail).group(1)


def ask_refund(c, rpath, oid):
    """The client asks for the money back; returns the request's id."""
    _, hidden = c.form(rpath)
    r = c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]})
    assert r.status == 200, r
    return site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)


def mail_of(oid, kind):
    return site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
                     oid, kind) or ""


def test_select():
    _, _, oid = new_order("m-select@example.com")
    page = staff.get("/admin/orders/%d" % oid).text
    opts = options(page, "method")
    t.eq([(v, l) for v, l, _ in opts or []], list(zip(VALUES, LABELS)),
         "Mark paid: a select of the five methods, values card, bank_transfer, paypal, cash, other")
    t.eq([v for v, _, s in opts or [] if s], ["bank_transfer"], "bank transfer chosen by default")
    t.ok('<label for="method">Method</label>' in page, "the select has its label")


def test_bad_value():
    _, _, oid = new_order("m-bad@example.com")
    tok = admin_csrf(staff)
    for bad in ("bank", "Card", ""):
        r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "149.00", "method": bad,
                                                       "reference": "REF-77", "csrf_token": tok})
        t.eq(r.status, 400, "Mark paid with method %r: 400" % bad)
        t.ok('value="149.00"' in r.text and 'value="REF-77"' in r.text,
             "the page keeps the amount and the reference typed (method %r)" % bad)
        t.ok(re.search(r'</select>\s*<p class="error">', r.text) is not None,
             "the error sits next to the select (method %r)" % bad)
    t.eq(site.sql("SELECT count(*) FROM ledger WHERE order_id = ?", oid), [(0,)], "nothing recorded")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment", "the order still waits")
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "paypal",
                                                   "reference": "PP-1", "csrf_token": tok})
    t.eq(r.status, 303, "a value of the list is taken")
    t.eq(site.sql("SELECT method, reference FROM ledger WHERE order_id = ?", oid), [("paypal", "PP-1")],
         "the ledger holds the value and the free-text reference")
    c, _, oid2, rpath = paid_answered("m-bad2@example.com", "bank_transfer")
    rid = ask_refund(c, rpath, oid2)
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "wire",
                                                        "csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 400, "Mark refunded with a method not in the list: 400")
    t.eq(site.sql1("SELECT count(*) FROM ledger WHERE order_id = ? AND kind = 'refund'", oid2), 0,
         "and no refund recorded")


def test_wording_bank():
    c, path, oid, rpath = paid_answered("m-bank@example.com", "bank_transfer", "BT-9")
    t.ok("by bank transfer within 7 days" in text_of(c.get(rpath).text),
         "refund page of a bank-transfer order: by bank transfer within refund_days (7)")
    ask_refund(c, rpath, oid)
    t.ok("is on its way back by bank transfer within 7 days" in text_of(c.get(rpath).text),
         "the request shown: on its way back by bank transfer within 7 days")
    t.ok("It is on its way back by bank transfer within 7 days" in text_of(c.get(path).text),
         "the status page says the same")
    t.ok("back by bank transfer within 7 days" in mail_of(oid, "refund_receipt"),
         "the refund receipt email says the same")
    t.ok("5–10 days" not in mail_of(oid, "refund_receipt"), "and nothing of a card")


def test_wording_card_by_hand():
    c, path, oid, rpath = paid_answered("m-card@example.com", "card", "Visa")
    t.ok("to the card you paid with, in 5–10 days" in text_of(c.get(rpath).text),
         "refund page of a card payment: to the card you paid with, in 5–10 days")
    rid = ask_refund(c, rpath, oid)
    t.ok("to the card you paid with, in 5–10 days" in mail_of(oid, "refund_receipt"),
         "the receipt email says the same")
    t.ok("It is on its way back to the card you paid with, in 5–10 days" in text_of(c.get(path).text),
         "the status page says the same")
    page = staff.get("/admin/refunds").text
    t.eq([v for v, _, s in options(page, "method-%d" % rid) or [] if s], ["card"],
         "a card payment recorded by hand: its refund's select starts at card")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "card", "reference": "terminal 4",
                                                        "csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 303, "refunded by hand with method card (not a Stripe payment: no Stripe call)")
    t.eq(site.sql("SELECT method, reference FROM ledger WHERE order_id = ? AND kind = 'refund'", oid),
         [("card", "terminal 4")], "the ledger's refund row, at once")
    t.eq(site.sql1("SELECT count(*) FROM card_refunds WHERE order_id = ?", oid), 0, "no card refund for Stripe")
    t.ok("to the card you paid with: it shows on your statement in 5–10 days" in mail_of(oid, "refunded"),
         "the refunded email says where and when")
    day = site.sql1("SELECT refunded_at FROM orders WHERE id = ?", oid)
    st = text_of(c.get(path).text)
    m = re.search(r"Refunded Your payment has been refunded: 150\.00 GBP on (\d{1,2} \w+ \d{4})", st)
    t.ok(m is not None and day > 0, "the status page: Refunded, the amount and the date", st[-600:])
    m2 = re.search(r"Refunded Your payment has been refunded: 150\.00 GBP on (\d{1,2} \w+ \d{4})", text_of(c.get(rpath).text))
    t.ok(m2 is not None and m is not None and m2.group(1) == m.group(1), "the refund page likewise")


def test_refunds_page():
    c, _, oid, rpath = paid_answered("m-list@example.com", "paypal", "PP-123")
    rid = ask_refund(c, rpath, oid)
    page = staff.get("/admin/refunds").text
    sec = re.search(r'<section class="card refund-request" id="refund-%d">(.*?)</section>' % rid, page, re.S)
    sec = sec.group(1) if sec else ""
    paid_by = re.search(r'<dd class="refund-paid-by">(.*?)</dd>', sec, re.S)
    t.ok(paid_by is not None and text_of(paid_by.group(1)).strip() == "PayPal · PP-123",
         "the refunds page shows how the order was paid: method label and reference",
         paid_by.group(1) if paid_by else sec[:400])
    net = re.search(r'<dd class="refund-net">(.*?)</dd>', sec, re.S)
    t.eq(net.group(1).strip() if net else None, "150.00 GBP", "and the net amount")
    t.eq([v for v, _, s in options(sec, "method-%d" % rid) or [] if s], ["paypal"],
         "the refund's select starts at the way the order was paid")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "40.00", "method": "paypal",
                                                        "csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 303, "a partial refund")
    page = staff.get("/admin/refunds").text
    sec = re.search(r'id="refund-%d">(.*?)</section>' % rid, page, re.S).group(1)
    net = re.search(r'<dd class="refund-net">(.*?)</dd>', sec, re.S)
    t.eq(net.group(1).strip() if net else None, "110.00 GBP", "the net amount is net of the refund")
    t.ok("to your PayPal account" in mail_of(oid, "refunded"), "the refunded email: to your PayPal account")


# (method stored before, reference) -> (method, reference) after 018
MIGRATED = [
    (("bank", "B1"), ("bank_transfer", "B1")),
    ((" Bank Transfer ", ""), ("bank_transfer", "")),
    (("TRANSFER", "T2"), ("bank_transfer", "T2")),
    (("card", "pi_1"), ("card", "pi_1")),
    (("card", "Visa"), ("card", "Visa")),
    (("Card", "re_2"), ("card", "re_2")),
    (("visa", "cs_3"), ("card", "cs_3")),
    (("Visa", "1234"), ("other", "Visa 1234")),
    (("PayPal", "PP"), ("paypal", "PP")),
    (("cash", ""), ("cash", "")),
    (("cheque", "no 55"), ("other", "cheque no 55")),
    (("Bitcoin", ""), ("other", "Bitcoin")),
    (("", "R9"), ("other", "R9")),
]


def test_migration():
    s = Site()
    try:
        schema_at(s.db, 14)
        con = sqlite3.connect(s.db)
        oid = con.execute("INSERT INTO orders (form_token, name, email, price, currency, status, created_at, "
                          "due_at, paid_at, updated_at) VALUES ('ft', 'Old', 'old@example.com', 15000, 'GBP', "
                          "'paid', 1000, 2000, 1000, 1000)").lastrowid
        for (method, ref), _ in MIGRATED:
            con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, reference, at) "
                        "VALUES (?, ?, 100, 'GBP', ?, ?, 1000)",
                        (oid, "refund" if ref.startswith("re_") else "payment", method, ref))
        con.commit()
        con.close()
        p = s.ctl("migrate", check=False)
        t.ok(p.returncode == 0 and s.sql1("PRAGMA user_version") >= 18,
             "pmbctl migrate applies 015 to 018 (018: the methods) to a database at version 14", p.stdout + p.stderr)
        got = s.sql("SELECT method, reference FROM ledger ORDER BY id")
        for (before, want), row in zip(MIGRATED, got):
            t.eq(tuple(row), want, "migration: %r -> %r" % (before, want))
        t.eq(len(got), len(MIGRATED), "every row kept")
    finally:
        s.cleanup()


try:
    for fn in (test_select, test_bad_value, test_wording_bank, test_wording_card_by_hand, test_refunds_page,
               test_migration):
        t.run(fn)
finally:
    site.cleanup()
sys.exit(t.done())
