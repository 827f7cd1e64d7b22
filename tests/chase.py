#!/usr/bin/env python3
"""Unpaid orders chased and closed, and the consultant's daily digest
(issue 16), with the test clock PMB_TEST_NOW: the payment reminder after
unpaid_reminder_hours and only once, none for a paid order and none with
0; the cancellation after unpaid_cancel_days with its email, audit and
history rows and the expiry of the order's Checkout Session; none while
a card payment is under way; an order paid as the pass runs is not
cancelled; the digest at digest_hour in
Europe/London across a DST change, once a day, its counts; none when
digest_hour is empty; the query plans of the pass."""
import calendar
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     STAFF, stmt_sql, stop_daemon, PMBCTL)

t = Tap()
CHASE = {"unpaid_reminder_hours": "24", "unpaid_cancel_days": "14",
         "stripe_secret_key": "sk_test_chase"}
site = Site(users=STAFF, settings=CHASE)
site.start()
HOUR, DAY = 3600, 86400
REMOTE = [0]


def new_order(s, email, name="Ada Baker"):
    """A new order from a client address of its own (no rate limit)."""
    REMOTE[0] += 1
    c = Browser(s, remote="198.51.100.%d" % (REMOTE[0] % 250 + 1))
    r = ask(c, email=email, name=name)
    assert r.status == 303, r
    return s.sql1("SELECT id FROM orders WHERE email = ? ORDER BY id DESC", email)


def created(s, oid):
    return s.sql1("SELECT created_at FROM orders WHERE id = ?", oid)


def mail_send(s, now):
    """One pass of the mail daemon (pmbctl mail send) at test time now."""
    env = s.env()
    env["PMB_TEST_NOW"] = str(now)
    return s.ctl("mail", "send", env=env)


def count(s, oid, kind):
    return s.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = ?", oid, kind)


def mark_paid(b, tok, oid):
    return b.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                  "reference": "", "csrf_token": tok})


def signed_in(s):
    b = Browser(s)
    login(b)
    return b, admin_csrf(b)


# --- 1. the payment reminder ------------------------------------------------------

def test_reminder():
    oid = new_order(site, "remind@bakery.example", name="Rita Remind")
    t0 = created(site, oid)
    number = site.sql1("SELECT number FROM orders WHERE id = ?", oid)
    mail_send(site, t0 + 24 * HOUR - 60)
    t.eq(count(site, oid, "unpaid_reminder"), 0, "no reminder before 24 hours")
    mail_send(site, t0 + 24 * HOUR + 1)
    rows = site.sql("SELECT to_addr, subject, body_text FROM outbox "
                    "WHERE order_id = ? AND kind = 'unpaid_reminder'", oid)
    t.eq(len(rows), 1, "a reminder once 24 hours have passed")
    if rows:
        to, subject, text = rows[0]
        t.eq(to, "remind@bakery.example", "it goes to the client")
        t.ok(number in subject, "its subject names the order", subject)
        t.ok("Pay by bank transfer to Sam Carter" in text and "150.00 GBP" in text,
             "it carries the payment instructions and the amount", text)
        t.ok(re.search(r"Pay by card:\s+http://\S+/o/[A-Za-z0-9_-]+\n", text),
             "and 'Pay by card' with the status link when card payment is on", text)
        t.ok(re.search(r"Follow your order here:\s+http://\S+/o/[A-Za-z0-9_-]+\n", text),
             "and the status link", text)
        t.ok("closed on" in text, "it says when the order will be closed", text)
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'payment reminder'", oid), 1,
         "the reminder is audited")
    t.ok(site.sql1("SELECT reminded_at FROM orders WHERE id = ?", oid) == t0 + 24 * HOUR + 1,
         "reminded_at records it")
    mail_send(site, t0 + 30 * HOUR)
    mail_send(site, t0 + 3 * DAY)
    t.eq(count(site, oid, "unpaid_reminder"), 1, "the reminder goes once, whatever passes follow")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment",
         "a reminded order stays open")

    # Without card payment: no "Pay by card".
    site.conf["stripe_secret_key"] = ""
    site.write_conf()
    try:
        other = new_order(site, "nocard@bakery.example")
        mail_send(site, created(site, other) + 25 * HOUR)
        text = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'unpaid_reminder'", other)
        t.ok(text is not None and "Pay by card" not in text and "/o/" in text,
             "no 'Pay by card' when card payment is off, the status link still", text)
    finally:
        site.conf["stripe_secret_key"] = CHASE["stripe_secret_key"]
        site.write_conf()


def test_no_reminder_when_paid():
    b, tok = signed_in(site)
    oid = new_order(site, "paid@bakery.example")
    t.eq(mark_paid(b, tok, oid).status, 303, "the order is marked paid")
    mail_send(site, created(site, oid) + 25 * HOUR)
    t.eq(count(site, oid, "unpaid_reminder"), 0, "no reminder for a paid order")
    mail_send(site, created(site, oid) + 15 * DAY)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "paid", "nor is a paid order cancelled")
    t.eq(count(site, oid, "unpaid_cancelled"), 0, "nor told so")


def test_no_reminder_with_zero():
    site.conf["unpaid_reminder_hours"] = "0"
    site.conf["unpaid_cancel_days"] = "0"
    site.write_conf()
    try:
        oid = new_order(site, "zero@bakery.example")
        mail_send(site, created(site, oid) + 25 * HOUR)
        t.eq(count(site, oid, "unpaid_reminder"), 0, "no reminder with unpaid_reminder_hours = 0")
        mail_send(site, created(site, oid) + 400 * DAY)
        t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment",
             "no cancellation with unpaid_cancel_days = 0")
    finally:
        site.conf["unpaid_reminder_hours"] = CHASE["unpaid_reminder_hours"]
        site.conf["unpaid_cancel_days"] = CHASE["unpaid_cancel_days"]
        site.write_conf()
    # Back on: the order is due both; it is cancelled, not reminded first.
    mail_send(site, created(site, oid) + 15 * DAY)
    t.eq((site.sql1("SELECT status FROM orders WHERE id = ?", oid), count(site, oid, "unpaid_reminder")),
         ("cancelled", 0), "an order due both is cancelled, not reminded")


# --- 2. the cancellation ---------------------------------------------------------

def test_cancel():
    oid = new_order(site, "cancel@bakery.example", name="Carl Cancel")
    t0 = created(site, oid)
    number = site.sql1("SELECT number FROM orders WHERE id = ?", oid)
    # An open card payment page, as /o/TOKEN/pay leaves it.
    site.sql("INSERT INTO checkout_sessions (order_id, stripe_id, url, amount, currency, status, created_at) "
             "VALUES (?, 'cs_test_chase', 'https://checkout.example/x', 15000, 'GBP', 'open', ?)", oid, t0)
    mail_send(site, t0 + 14 * DAY - 60)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment",
         "not cancelled before 14 days")
    now = t0 + 14 * DAY + 1
    mail_send(site, now)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "cancelled", "cancelled after 14 days")
    t.eq(site.sql1("SELECT cancelled_at FROM orders WHERE id = ?", oid), now, "at the pass's time")
    rows = site.sql("SELECT to_addr, subject, body_text FROM outbox WHERE order_id = ? AND kind = 'unpaid_cancelled'",
                    oid)
    t.eq(len(rows), 1, "one email tells the client")
    if rows:
        t.ok(rows[0][0] == "cancel@bakery.example" and number in rows[0][1], "to the client, naming the order",
             rows[0])
        t.ok("within 14 days" in rows[0][2] and "No money was taken" in rows[0][2] and "ask again" in rows[0][2],
             "politely: why, that nothing was taken, and that they may ask again", rows[0][2])
    t.eq(site.sql("SELECT action, detail FROM audit WHERE order_id = ? AND action = 'auto cancel'", oid),
         [("auto cancel", "not paid within 14 days")], "the cancellation is audited")
    t.eq(site.sql("SELECT status, note FROM status_history WHERE order_id = ? ORDER BY id DESC LIMIT 1", oid),
         [("cancelled", "not paid within 14 days")], "and in the order's history")
    t.eq(site.sql("SELECT kind, session_id FROM pay_jobs WHERE order_id = ?", oid),
         [("expire", site.sql1("SELECT id FROM checkout_sessions WHERE order_id = ?", oid))],
         "its open Checkout Session gets an expire job, as a cancellation from the order page")
    mail_send(site, now + DAY)
    t.eq(count(site, oid, "unpaid_cancelled"), 1, "a later pass sends nothing more")
    t.eq(count(site, oid, "unpaid_reminder"), 1, "(the reminder went on day 1, once)")
    # Paid in part (a ledger row): left to the consultant, and the pass goes on.
    part = new_order(site, "part@bakery.example")
    site.sql("INSERT INTO ledger (order_id, kind, amount, currency, method, reference, at) "
             "VALUES (?, 'payment', 100, 'GBP', 'bank', '', ?)", part, t0)
    later = new_order(site, "later@bakery.example")
    mail_send(site, created(site, later) + 15 * DAY)
    t.eq((site.sql1("SELECT status FROM orders WHERE id = ?", part),
          site.sql1("SELECT status FROM orders WHERE id = ?", later)),
         ("awaiting_payment", "cancelled"), "an order paid in part is not cancelled; the next one is")


def test_payment_under_way():
    """A bank debit still to confirm: neither reminded nor cancelled."""
    oid = new_order(site, "debit@bakery.example")
    t0 = created(site, oid)
    site.sql("INSERT INTO checkout_sessions (order_id, stripe_id, url, amount, currency, status, "
             "payment_intent, created_at) VALUES (?, 'cs_test_debit', 'https://checkout.example/d', 15000, "
             "'GBP', 'open', 'pi_test_debit', ?)", oid, t0)
    mail_send(site, t0 + 25 * HOUR)
    t.eq(count(site, oid, "unpaid_reminder"), 0, "no reminder while a card payment is under way")
    mail_send(site, t0 + 15 * DAY)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment",
         "nor a cancellation")
    site.sql("UPDATE checkout_sessions SET status = 'expired' WHERE order_id = ?", oid)
    mail_send(site, t0 + 15 * DAY + 60)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "cancelled",
         "once the debit failed, the next pass cancels it")


def test_race():
    """Pay and the pass at once: an order is paid or cancelled, never both."""
    b, tok = signed_in(site)
    ids = [new_order(site, "race%d@bakery.example" % i) for i in range(6)]
    when = max(created(site, i) for i in ids) + 15 * DAY
    results = {}
    gate = threading.Barrier(2)

    def pay():
        gate.wait()
        for oid in ids:
            results[oid] = mark_paid(b, tok, oid).status

    def chase():
        gate.wait()
        mail_send(site, when)
    ths = [threading.Thread(target=pay), threading.Thread(target=chase)]
    [x.start() for x in ths]
    [x.join() for x in ths]
    mail_send(site, when)
    bad = []
    for oid in ids:
        st = site.sql1("SELECT status FROM orders WHERE id = ?", oid)
        paid = site.sql1("SELECT count(*) FROM ledger WHERE order_id = ?", oid)
        cancels = count(site, oid, "unpaid_cancelled")
        hist = site.sql1("SELECT count(*) FROM status_history WHERE order_id = ? AND status = 'cancelled'", oid)
        if not ((st == "paid" and paid == 1 and cancels == 0 and hist == 0 and results[oid] == 303) or
                (st == "cancelled" and paid == 0 and cancels == 1 and hist == 1 and results[oid] == 409)):
            bad.append((oid, st, paid, cancels, hist, results[oid]))
    t.eq(bad, [], "each order is either paid (and never cancelled) or cancelled (and the payment refused)")


# --- 3. the daemon ---------------------------------------------------------------

def test_daemon():
    oid = new_order(site, "daemon@bakery.example")
    env = site.env()
    env["PMB_TEST_NOW"] = str(created(site, oid) + 25 * HOUR)
    p = subprocess.Popen([PMBCTL, "mail", "run"], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 15
        while time.time() < deadline and count(site, oid, "unpaid_reminder") == 0:
            time.sleep(0.2)
        time.sleep(6)   # another round at least (MAIL_POLL_SECONDS is 5)
    finally:
        stop_daemon(p)
    t.eq(count(site, oid, "unpaid_reminder"), 1, "pmbctl mail run reminds, once over its rounds")


# --- 4. the daily digest ------------------------------------------------------------

def utc(y, mo, d, h, mi=0):
    return calendar.timegm((y, mo, d, h, mi, 0))


def test_digest():
    s = Site(users=STAFF, settings={"time_zone": "Europe/London", "digest_hour": "8"})
    s.start()
    try:
        b, tok = signed_in(s)
        soon, late, unpaid = (new_order(s, "d%d@bakery.example" % i) for i in range(3))
        for oid in (soon, late):
            mark_paid(b, tok, oid)
        # 28 March 2027: the clocks go forward at 01:00 UTC (GMT to BST).
        day1, day2 = utc(2027, 3, 27, 0), utc(2027, 3, 28, 0)
        s.sql("UPDATE orders SET due_at = ? WHERE id = ?", utc(2027, 3, 27, 15), soon)
        s.sql("UPDATE orders SET due_at = ? WHERE id = ?", utc(2027, 3, 27, 6), late)
        s.sql("INSERT INTO refund_requests (order_id, reason, status, requested_at) VALUES (?, '', 'open', ?)",
              late, utc(2027, 3, 26, 12))

        def digests():
            return s.sql("SELECT to_addr, subject, body_text FROM outbox WHERE kind = 'digest' ORDER BY id")
        mail_send(s, utc(2027, 3, 27, 7, 59))
        t.eq(len(digests()), 0, "no digest at 07:59 GMT")
        mail_send(s, utc(2027, 3, 27, 8, 0))
        rows = digests()
        t.eq(len(rows), 1, "the digest at 08:00 GMT (08:00 UTC)")
        if rows:
            to, subject, text = rows[0]
            t.eq(to, "consultant@example.com", "to admin_email")
            t.ok("27 March 2027" in subject, "its subject names the day", subject)
            for line in ("Answers due today: 1", "Overdue answers: 1",
                         "Orders awaiting payment: 1 (150.00 GBP)", "Refund requests open: 1"):
                t.ok(line in text, "its content: " + line, text)
            t.ok(s.base + "/admin" in text, "and a link to the queue", text)
            t.ok("inbox" not in text, "no inbox line while the inbox is empty", text)
        mail_send(s, utc(2027, 3, 27, 8, 30))
        mail_send(s, utc(2027, 3, 27, 23, 59))
        t.eq(len(digests()), 1, "once that day, however many passes")
        # After the change: 08:00 BST is 07:00 UTC.
        mail_send(s, utc(2027, 3, 28, 6, 59))
        t.eq(len(digests()), 1, "none at 07:59 BST (06:59 UTC)")
        # an email that reached no order waits in the inbox
        p = subprocess.run([PMBCTL, "mail", "receive"], input=b"From: a@b.example\r\nTo: sam@example.com\r\n"
                           b"Subject: Hi\r\nMessage-ID: <d1@b.example>\r\n\r\nHello\r\n", env=s.env(),
                           capture_output=True)
        t.eq(p.returncode, 0, "an email to the inbox")
        at = utc(2027, 3, 28, 7, 0)
        out = [None, None]

        def one(i):
            out[i] = mail_send(s, at + i).returncode
        ths = [threading.Thread(target=one, args=(i,)) for i in range(2)]
        [x.start() for x in ths]
        [x.join() for x in ths]
        rows = digests()
        t.eq(len(rows), 2, "the next day's digest at 08:00 BST (07:00 UTC), one for two daemons at once")
        if len(rows) == 2:
            t.ok("Emails waiting in your inbox: 1" in rows[1][2] and s.base + "/admin/inbox" in rows[1][2],
                 "the digest counts the emails waiting in the inbox, with a link", rows[1][2])
        if len(rows) == 2:
            t.ok("28 March 2027" in rows[1][1] and "Overdue answers: 2" in rows[1][2]
                 and "Answers due today: 0" in rows[1][2], "with that day's counts", rows[1])
        t.eq(s.sql("SELECT day FROM digest_days ORDER BY day"), [(day1,), (day2,)],
             "the days sent are recorded by their first second in the zone")
        s.conf["digest_hour"] = ""
        s.write_conf()
        mail_send(s, utc(2027, 3, 29, 12, 0))
        t.eq(len(digests()), 2, "no digest with digest_hour empty")
    finally:
        s.stop()
        s.cleanup()


# --- 5. what the pass reads ---------------------------------------------------------

def plan(s, query, *params):
    return " | ".join(str(r[3]) for r in s.sql("EXPLAIN QUERY PLAN " + query, *params))


def test_plans():
    for name, index in (("CHASE_REMIND_DUE", "orders_unreminded"), ("CHASE_CANCEL_DUE", "orders_unpaid")):
        p = plan(site, stmt_sql(name), 0, 0, 0, 50)
        t.ok(re.search(r"SEARCH orders USING (COVERING )?INDEX %s\b" % index, p), "%s reads a range of %s" % (name, index), p)
    p = plan(site, stmt_sql("DIGEST_DUE_COUNT"), 0, 1)
    t.ok("USING COVERING INDEX orders_queue" in p, "the digest's due counts read orders_queue alone", p)


try:
    for fn in (test_reminder, test_no_reminder_when_paid, test_no_reminder_with_zero, test_cancel,
               test_payment_under_way, test_race, test_daemon, test_digest, test_plans):
        t.run(fn)
finally:
    site.stop()
    site.cleanup()
t.done()
