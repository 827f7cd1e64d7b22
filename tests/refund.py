#!/usr/bin/env python3
"""The money-back guarantee through real nginx: the refund link from the
answer email, one request whatever the POSTs, expiry and tampering, the
consultant's processing with the ledger, late answers, ratings."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, answered_order, Site, Browser, ask, track_path, link_token, login, admin_csrf, STAFF)  # noqa: E402

t = Tap()


site = Site(users=STAFF)
site.start()
staff = Browser(site)
login(staff)


def test_link_and_get():
    c, path, oid, rpath = answered_order(site, staff, "refund1@example.com")
    before = site.dump()
    r = c.get(rpath)
    t.eq(r.status, 200, "the refund link from the answer email works within the window")
    t.ok("150.00 GBP" in r.text and "Refund my payment" in r.text and "loyalty" not in r.text,
         "the refund page shows the amount and one button")
    t.ok("How do I get more people" in r.text, "the refund page shows the question")
    t.ok("follow-up question instead" in r.text, "it offers a follow-up instead where one remains")
    c.get(rpath)
    t.eq(site.dump(), before, "GET /r/TOKEN changes nothing in the database")
    page = c.get(path)
    # A token carries the second it was made, so the page's link is the
    # email's only when both were made in the same second: compare what
    # the links open, not their text.
    m = re.search(r'href="[^"]*(/r/[A-Za-z0-9_-]+)"', page.text)
    other = c.get(m.group(1)) if m else None
    t.ok(other is not None and other.status == 200 and "How do I get more people" in other.text
         and "Refund my payment" in other.text,
         "the status page carries a working refund link for this order while the guarantee holds")


def test_one_request():
    c, path, oid, rpath = answered_order(site, staff, "refund2@example.com")
    _, hidden = c.form(rpath)
    results = []
    ths = [threading.Thread(target=lambda: results.append(
        c.post(rpath, {"reason": "Too generic", "csrf_token": hidden["csrf_token"]}).status))
        for _ in range(12)]
    [th.start() for th in ths]
    [th.join() for th in ths]
    t.eq(sorted(results), [200] + [409] * 11,
         "of 12 parallel POSTs one answers 200, the others 409 (a request was already in)")
    t.eq(site.sql1("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid), 1,
         "POST creates exactly one request, whatever the number of POSTs")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refund_requested",
         "the order moves to refund requested")
    kinds = sorted(k for (k,) in site.sql("SELECT kind FROM outbox WHERE order_id = ? AND kind LIKE 'refund%'", oid))
    t.eq(kinds, ["refund_alert", "refund_receipt"], "both emails are queued, once each")
    t.eq(site.sql1("SELECT to_addr FROM outbox WHERE order_id = ? AND kind = 'refund_alert'", oid),
         "consultant@example.com", "the alert goes to the consultant")
    t.eq(site.sql1("SELECT count(*) FROM status_history WHERE order_id = ? AND status = 'refund_requested'", oid), 1,
         "one history row")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'refund requested'", oid), 1,
         "one audit row")
    r = c.get(rpath)
    t.ok("You asked for your money back" in r.text and "Refund my payment" not in r.text,
         "afterwards the link only shows the request")
    t.ok(rpath not in c.get(path).text, "the status page no longer offers the link")


def test_bad_links():
    c, path, oid, rpath = answered_order(site, staff, "refund3@example.com")
    tok = rpath[3:]
    bad = tok[:30] + ("A" if tok[30] != "A" else "B") + tok[31:]
    t.eq(c.get("/r/" + bad).status, 404, "a tampered refund token answers 404")
    t.eq(c.get("/r/" + path[3:]).status, 404, "a tracking token used as a refund token answers 404")
    t.eq(c.get("/o/" + tok).status, 404, "a refund token used as a tracking token answers 404")
    later = str(int(time.time()) + 31 * 86400)
    r = site.cgi("GET", rpath, env={"PMB_TEST_NOW": later})
    t.eq(r.status, 410, "an expired refund link is refused")
    t.ok("guarantee of order" in r.text and "ended on" in r.text and "consultant@example.com" in r.text,
         "the expired page says when the window ended and how to reach the consultant")
    r = site.cgi("GET", rpath, env={"PMB_TEST_NOW": str(int(time.time()) + 29 * 86400)})
    t.eq(r.status, 200, "on day 29 the link still works")
    # never paid: the payment row removed
    c2, _, oid2, rpath2 = answered_order(site, staff, "refund4@example.com")
    site.sql("DELETE FROM ledger WHERE order_id = ?", oid2)
    r = c2.get(rpath2)
    t.eq(r.status, 409, "an order never paid is refused")
    t.ok("nothing to refund" in r.text, "the page says there is nothing to refund")


def test_processing():
    c, path, oid, rpath = answered_order(site, staff, "refund5@example.com")
    _, hidden = c.form(rpath)
    c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]})
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    page = staff.get("/admin/refunds")
    t.ok("refund-%d" % rid in page.text and "150.00" in page.text, "the request is listed under refunds")
    tok = admin_csrf(staff, "/admin/refunds")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer", "amount": "150.01", "csrf_token": tok})
    t.eq(r.status, 400, "a refund larger than the net paid amount is refused")
    t.ok("more than the 150.00 GBP paid" in r.text, "and the page says why")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "50.00", "method": "bank_transfer", "reference": "R1",
                                                      "csrf_token": tok})
    t.eq(r.status, 303, "a partial refund is recorded")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refund_requested", "a partial refund keeps the request open")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer", "amount": "100.01", "csrf_token": tok})
    t.eq(r.status, 400, "the rest cannot be exceeded")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "bank_transfer", "csrf_token": tok})
    t.eq(r.status, 303, "an empty amount refunds the rest")
    rows = site.sql("SELECT kind, amount FROM ledger WHERE order_id = ? ORDER BY id", oid)
    t.eq(rows, [("payment", 15000), ("refund", 5000), ("refund", 10000)], "a partial then a full refund add up")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refunded", "the order is refunded")
    t.eq(site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid), "refunded", "the request is closed")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid), 2,
         "the client is emailed for each refund")
    op = staff.get("/admin/orders/%d" % oid)
    t.ok("net 0.00 GBP" in op.text, "the order's balance agrees with the ledger")
    t.ok("Refunded" in c.get(path).text, "the client's status page shows refunded")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer", "amount": "1.00", "csrf_token": tok})
    t.eq(r.status, 409, "a closed request takes no more refunds")


def test_decline():
    c, path, oid, rpath = answered_order(site, staff, "refund6@example.com")
    _, hidden = c.form(rpath)
    c.post(rpath, {"reason": "x", "csrf_token": hidden["csrf_token"]})
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    tok = admin_csrf(staff, "/admin/refunds")
    r = staff.post("/admin/refunds/%d/decline" % rid, {"reason": "", "csrf_token": tok})
    t.eq(r.status, 400, "decline needs a written reason")
    r = staff.post("/admin/refunds/%d/decline" % rid, {"reason": "Abuse: third refund this month", "csrf_token": tok})
    t.eq(r.status, 303, "decline with a reason works")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "answered", "the order goes back to answered")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'decline refund'", oid), 1,
         "the decline is audited")


def test_late():
    s = Site(users=STAFF, settings={"refund_if_late": "yes"})
    try:
        s.start()
        st = Browser(s)
        login(st)
        c, path, oid, rpath = answered_order(s, st, "late@example.com", late=True)
        page = c.get(path)
        # The page's refund link is made now, the email's earlier (a token
        # carries its second): the same link when their tokens agree.
        m = re.search(r'href="[^"]*(/r/[A-Za-z0-9_-]+)"', page.text)
        t.ok('id="late"' in page.text and m is not None and link_token(rpath) is not None and
             link_token(m.group(1)) == link_token(rpath),
             "an order answered after its promise shows the late badge and a refund link")
        r = s.cgi("GET", rpath, env={"PMB_TEST_NOW": str(int(time.time()) + 400 * 86400)})
        t.eq(r.status, 200, "with refund_if_late = yes a late answer's refund link stays valid")
        q = st.get("/admin?status=answered")
        t.ok("answered late" in q.text, "the queue marks late orders")
        c2, path2, oid2, rpath2 = answered_order(s, st, "ontime@example.com")
        t.ok('id="late"' not in c2.get(path2).text, "an answer on time has no late badge")
    finally:
        s.cleanup()


def test_rating():
    c, path, oid, rpath = answered_order(site, staff, "rate@example.com")
    before = site.dump()
    r = c.get(path + "?rating=yes")
    t.ok(r.status == 200 and "Yes, I am happy" in r.text, "?rating=yes shows a thank-you page with a confirm button")
    t.eq(site.dump(), before, "the GET stores nothing")
    t.eq(c.get(path + "?rating=maybe").status, 400, "an unknown rating answers 400")
    _, hidden = c.form(path + "?rating=yes")
    t.eq(site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid), None,
         "the answer is not marked viewed by GETs alone")
    r = c.post(path + "/rating", {"rating": "yes", "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 303, "the confirm button posts the rating (303 to the thank-you page)")
    t.eq(site.sql1("SELECT rating FROM orders WHERE id = ?", oid), "yes", "the rating is stored by the POST")
    t.ok(site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid) is not None,
         "and whoever rates the answer has seen it: the view is recorded")


def test_auto_approve():
    s = Site(users=STAFF, settings={"refund_auto_approve": "yes"})
    try:
        s.start()
        st = Browser(s)
        login(st)
        c, path, oid, rpath = answered_order(s, st, "auto@example.com")
        _, hidden = c.form(rpath)
        c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]})
        rid = s.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
        t.ok("It is approved." in s.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'refund_receipt'", oid),
             "with refund_auto_approve the receipt says the refund is approved")
        page = st.get("/admin/refunds")
        t.ok("Approved automatically" in page.text and "/decline" not in page.text,
             "an auto-approved request offers no decline")
        tok = admin_csrf(st, "/admin/refunds")
        r = st.post("/admin/refunds/%d/decline" % rid, {"reason": "no", "csrf_token": tok})
        t.eq(r.status, 409, "and a decline is refused")
        r = st.post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer", "amount": "", "csrf_token": tok})
        t.eq(s.sql1("SELECT status FROM orders WHERE id = ?", oid), "refunded", "it is then marked refunded as usual")
    finally:
        s.cleanup()


def test_dashboard_agrees():
    page = staff.get("/admin/dashboard")
    pay = site.sql1("SELECT coalesce(sum(amount), 0) FROM ledger WHERE kind = 'payment'")
    ref = site.sql1("SELECT coalesce(sum(amount), 0) FROM ledger WHERE kind = 'refund'")
    net = "%d.%02d" % divmod(pay - ref, 100)
    m = re.search(r'<table id="revenue">.*?</table>', page.text, re.S)
    t.ok(m and ("%d.%02d" % divmod(pay, 100)) in m.group(0) and ("%d.%02d" % divmod(ref, 100)) in m.group(0)
         and net in m.group(0), "the dashboard's revenue agrees with the ledger (net %s)" % net,
         m.group(0) if m else page.text[:500])


for fn in (test_link_and_get, test_one_request, test_bad_links, test_processing, test_decline, test_late,
           test_rating, test_auto_approve, test_dashboard_agrees):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
