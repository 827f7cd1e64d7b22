#!/usr/bin/env python3
"""State changes raced through real nginx (issue 14, bug 1): two requests
for the same change released at once, several rounds each. Exactly one
wins: one history row, one audit row and one email for the change; the
loser gets a 4xx page that says why; the final state is consistent.
Also the amounts a client reads come from the order (bug 4)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, answered_order, parallel, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     track_path, STAFF)

ROUNDS = int(os.environ.get("PMB_RACE_ROUNDS", "20"))
NO_LIMITS = {"rate_limit_email_per_hour": "0", "rate_limit_ip_per_hour": "0"}

t = Tap()
site = Site(users=STAFF, settings=NO_LIMITS)
site.start(workers=4)
staff = Browser(site)
login(staff)
serial = [0]


def email(kind):
    serial[0] += 1
    return "%s-%d@race.example" % (kind, serial[0])


class Rounds:
    """Collects each check's failures over the rounds; one test point per
    check, failing with the rounds that broke it."""

    def __init__(self, what):
        self.what = what
        self.checks = {}

    def check(self, rnd, name, cond, detail=""):
        self.checks.setdefault(name, [])
        if not cond:
            self.checks[name].append("round %d: %s" % (rnd, detail))

    def report(self):
        for name, bad in self.checks.items():
            t.ok(not bad, "%s, %d rounds: %s" % (self.what, ROUNDS, name), "\n".join(bad[:5]))


def count(query, *params):
    return site.sql1(query, *params)


def once(oid, history, audit, mail):
    """Returns [(what, got)] for the rows a change writes once."""
    return [("history row '%s'" % history,
             count("SELECT count(*) FROM status_history WHERE order_id = ? AND status = ?", oid, history)),
            ("audit row '%s'" % audit,
             count("SELECT count(*) FROM audit WHERE order_id = ? AND action = ?", oid, audit)),
            ("email '%s'" % mail,
             count("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = ?", oid, mail))]


def winner_and_loser(rs, rnd, res, loser_text):
    """Checks that one response is a 303 and the other a 409 whose page
    matches loser_text (a regular expression)."""
    statuses = sorted(r.status if hasattr(r, "status") else r for r in res)
    rs.check(rnd, "one answers 303, the other 409", statuses == [303, 409], statuses)
    loser = [r for r in res if hasattr(r, "status") and r.status == 409]
    rs.check(rnd, "the loser's page says why", loser and re.search(loser_text, loser[0].text),
             loser[0].text[-600:] if loser else res)


def new_order(paid=False):
    c = Browser(site)
    e = email("order")
    path = track_path(ask(c, email=e).header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", e)
    if paid:
        r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                      "csrf_token": admin_csrf(staff)})
        assert r.status == 303, r
    return c, path, oid


def refund_requested():
    """An answered order with an open refund request: (order id, request id)."""
    c, path, oid, rpath = answered_order(site, staff, email("refund"))
    _, hidden = c.form(rpath)
    r = c.post(rpath, {"reason": "", "csrf_token": hidden["csrf_token"]})
    assert r.status == 200, r
    return oid, site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)


def refund_action(rid, action):
    tok = admin_csrf(staff, "/admin/refunds")
    if action == "decline":
        return lambda i: staff.post("/admin/refunds/%d/decline" % rid, {"reason": "Abuse %d" % i,
                                                                        "csrf_token": tok})
    return lambda i: staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "bank_transfer",
                                                                     "csrf_token": tok})


def refund_race(what, actions, loser_text, after):
    """The two refund actions (decline, refunded) on one open request at
    once, ROUNDS times; after(rs, round, order id, request id) checks the
    rows and the state."""
    rs = Rounds(what)
    for rnd in range(ROUNDS):
        oid, rid = refund_requested()
        fns = [refund_action(rid, a) for a in actions]
        res = parallel(2, lambda i: fns[i](i))
        winner_and_loser(rs, rnd, res, loser_text)
        after(rs, rnd, oid, rid)
    rs.report()


def test_two_declines():
    def after(rs, rnd, oid, rid):
        rs.check(rnd, "one 'refund declined' history row",
                 count("SELECT count(*) FROM status_history WHERE order_id = ? AND note LIKE 'refund declined%'",
                       oid) == 1)
        for what, got in once(oid, "answered", "decline refund", "refund_declined")[1:]:
            rs.check(rnd, "one " + what, got == 1, got)
        rs.check(rnd, "the request is declined and the order answered again",
                 (count("SELECT status FROM refund_requests WHERE id = ?", rid),
                  count("SELECT status FROM orders WHERE id = ?", oid)) == ("declined", "answered"))
    refund_race("two Decline clicks at once", ("decline", "decline"), r"already declined: nothing was changed",
                after)


def test_decline_vs_refunded():
    def after(rs, rnd, oid, rid):
        req = count("SELECT status FROM refund_requests WHERE id = ?", rid)
        st = count("SELECT status FROM orders WHERE id = ?", oid)
        refunds = count("SELECT count(*) FROM ledger WHERE order_id = ? AND kind = 'refund'", oid)
        mails = [k for (k,) in site.sql("SELECT kind FROM outbox WHERE order_id = ? AND kind IN "
                                        "('refunded', 'refund_declined') ORDER BY id", oid)]
        audits = [a for (a,) in site.sql("SELECT action FROM audit WHERE order_id = ? AND action IN "
                                         "('refund', 'decline refund') ORDER BY id", oid)]
        state = (req, st, refunds, mails, audits)
        rs.check(rnd, "either refunded or declined, never both",
                 state in (("refunded", "refunded", 1, ["refunded"], ["refund"]),
                           ("declined", "answered", 0, ["refund_declined"], ["decline refund"])), state)
    refund_race("Decline racing Mark refunded", ("decline", "refunded"),
                r"already (declined|refunded): nothing was changed", after)


def test_two_refunded():
    def after(rs, rnd, oid, rid):
        for what, got in once(oid, "refunded", "refund", "refunded"):
            rs.check(rnd, "one " + what, got == 1, got)
        rs.check(rnd, "one refund in the ledger, of the whole amount",
                 site.sql("SELECT amount FROM ledger WHERE order_id = ? AND kind = 'refund'", oid) == [(15000,)])
    refund_race("two Mark refunded at once", ("refunded", "refunded"), r"already refunded: nothing was changed",
                after)


def order_race(what, paid, action, fields, loser_text, rows, ledger_kind=None, messages_kind=None):
    """Two POSTs of one order action at once, ROUNDS times: one wins, and
    the change's history, audit and mail rows (rows, as once() takes
    them) and its ledger or message row are there once."""
    rs = Rounds(what)
    for rnd in range(ROUNDS):
        _, _, oid = new_order(paid=paid)
        tok = admin_csrf(staff)
        res = parallel(2, lambda i: staff.post("/admin/orders/%d/%s" % (oid, action),
                                               dict(fields, csrf_token=tok)))
        winner_and_loser(rs, rnd, res, loser_text)
        for name, got in once(oid, *rows):
            rs.check(rnd, "one " + name, got == 1, got)
        if ledger_kind:
            rs.check(rnd, "one %s in the ledger" % ledger_kind,
                     count("SELECT count(*) FROM ledger WHERE order_id = ? AND kind = ?", oid, ledger_kind) == 1)
        if messages_kind:
            rs.check(rnd, "one %s stored" % messages_kind,
                     count("SELECT count(*) FROM messages WHERE order_id = ? AND kind = ?", oid, messages_kind) == 1)
    rs.report()


def test_two_replies():
    order_race("two replies at once", True, "reply", {"body": "The answer", "confirm": "yes"}, r"not waiting for an answer",
               ("answered", "send reply", "answer"), messages_kind="reply")


def test_reply_vs_draft():
    rs = Rounds("Send reply racing Save draft")
    for rnd in range(ROUNDS):
        _, _, oid = new_order(paid=True)
        tok = admin_csrf(staff)
        res = parallel(2, lambda i: staff.post("/admin/orders/%d/%s" % (oid, ("reply", "draft")[i]),
                                               {"body": "Text %d" % i, "csrf_token": tok, "confirm": "yes"}))
        st = [r.status if hasattr(r, "status") else r for r in res]
        rs.check(rnd, "the reply is sent", st[0] == 303, st)
        rs.check(rnd, "the draft is saved before it, or refused with 409", st[1] in (303, 409), st)
        rs.check(rnd, "an answered order keeps no draft",
                 count("SELECT reply_draft FROM orders WHERE id = ?", oid) == "",
                 count("SELECT reply_draft FROM orders WHERE id = ?", oid))
        rs.check(rnd, "one 'save draft' audit row at most, only for a saved draft",
                 count("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'save draft'", oid) ==
                 (1 if st[1] == 303 else 0))
    rs.report()


def test_two_paid():
    order_race("two Mark paid at once", False, "paid", {"amount": "150.00", "method": "bank_transfer"},
               r"not waiting for payment", ("paid", "mark paid", "paid"), ledger_kind="payment")


def test_two_cancels():
    order_race("two cancels at once", False, "cancel", {"reason": "Asked twice"},
               r"Only an order that was never paid can be cancelled", ("cancelled", "cancel", "cancelled"))


def test_cancel_vs_paid_and_reply():
    rs = Rounds("cancel racing Mark paid, and cancel racing a reply")
    for rnd in range(ROUNDS):
        _, _, oid = new_order()
        tok = admin_csrf(staff)
        res = parallel(2, lambda i: staff.post("/admin/orders/%d/%s" % (oid, ("cancel", "paid")[i]),
                                               {"reason": "No longer needed", "amount": "150.00",
                                                "method": "bank_transfer", "csrf_token": tok}))
        winner_and_loser(rs, rnd, res, r"never paid can be cancelled|not waiting for payment")
        state = (count("SELECT status FROM orders WHERE id = ?", oid),
                 count("SELECT count(*) FROM ledger WHERE order_id = ?", oid),
                 [k for (k,) in site.sql("SELECT kind FROM outbox WHERE order_id = ? AND kind <> 'confirmation'",
                                         oid)])
        rs.check(rnd, "either cancelled or paid, never both",
                 state in (("cancelled", 0, ["cancelled"]), ("paid", 1, ["paid"])), state)
        _, _, oid = new_order(paid=True)
        res = parallel(2, lambda i: staff.post("/admin/orders/%d/%s" % (oid, ("cancel", "reply")[i]),
                                               {"reason": "No longer needed", "body": "The answer",
                                                "csrf_token": tok, "confirm": "yes"}))
        winner_and_loser(rs, rnd, res, r"Only an order that was never paid can be cancelled")
        rs.check(rnd, "a paid order is answered, not cancelled",
                 (count("SELECT status FROM orders WHERE id = ?", oid),
                  count("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'cancelled'", oid)) ==
                 ("answered", 0))
    rs.report()


def test_two_refund_requests():
    rs = Rounds("two refund requests from the client at once")
    for rnd in range(ROUNDS):
        c, path, oid, rpath = answered_order(site, staff, email("client"))
        _, hidden = c.form(rpath)
        res = parallel(2, lambda i: c.post(rpath, {"reason": "Too generic", "csrf_token": hidden["csrf_token"]}))
        st = sorted(r.status if hasattr(r, "status") else r for r in res)
        rs.check(rnd, "one answers 200, the other 409", st == [200, 409], st)
        loser = [r for r in res if hasattr(r, "status") and r.status == 409]
        rs.check(rnd, "the loser's page says the request was already in",
                 loser and "had already been received" in loser[0].text)
        for what, got in once(oid, "refund_requested", "refund requested", "refund_receipt"):
            rs.check(rnd, "one " + what, got == 1, got)
        rs.check(rnd, "one request and one alert to the consultant",
                 (count("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid),
                  count("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refund_alert'", oid)) == (1, 1))
    rs.report()


def test_repeats_record_once():
    """A second claim, release or identical rating changes nothing, so it
    writes no second audit row."""
    c, path, oid, _ = answered_order(site, staff, email("repeat"))
    _, _, oid2 = new_order(paid=True)
    tok = admin_csrf(staff)
    for action in ("claim", "release"):
        res = parallel(2, lambda i: staff.post("/admin/orders/%d/%s" % (oid2, action), {"csrf_token": tok}).status)
        t.eq(res, [303, 303], "two %ss at once both land on the order page" % action)
        t.eq(count("SELECT count(*) FROM audit WHERE order_id = ? AND action = ?", oid2, action), 1,
             "and write one audit row '%s'" % action)
    _, hidden = c.form(path + "?rating=yes")
    res = parallel(2, lambda i: c.post(path + "/rating", {"rating": "yes", "csrf_token": hidden["csrf_token"]}).status)
    t.eq(res, [303, 303], "two identical ratings at once both go to the thank-you page")
    t.eq(count("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'rated'", oid), 1,
         "and write one audit row 'rated'")
    c.post(path + "/rating", {"rating": "no", "csrf_token": hidden["csrf_token"]})
    t.eq((count("SELECT rating FROM orders WHERE id = ?", oid),
          count("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'rated'", oid)), ("no", 2),
         "a changed rating is stored and audited")
    c2, path2, _ = new_order()
    _, hidden = c2.form(path2 + "?rating=yes")
    r = c2.post(path2 + "/rating", {"rating": "yes", "csrf_token": hidden["csrf_token"]})
    t.ok(r.status == 409 and "once it has arrived" in r.text, "an order not yet answered cannot be rated", r.status)


def test_amounts_are_the_orders():
    """The price setting changes after an order was made: the answer email
    and the status page promise what the order cost; after a partial
    refund the status page shows what was paid net of refunds."""
    c, path, oid = new_order(paid=True)
    site.stop()
    site.conf["price"] = "99.00"
    site.write_conf()
    site.start(workers=4)
    login(staff)
    t.ok("99.00" in site.get("/").text, "the site now offers 99.00")
    tok = admin_csrf(staff)
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Try a loyalty card.", "csrf_token": tok, "confirm": "yes"})
    t.eq(r.status, 303, "the order of 150.00 is answered after the price changed")
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
    t.ok("your 150.00 GBP back" in mail and "99.00" not in mail,
         "the answer email promises the 150.00 GBP the order cost, not the new price", mail)
    page = c.get(path).text
    t.ok("150.00 GBP" in page and "99.00" not in page, "the status page shows the order's 150.00 GBP")
    m = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail)
    _, hidden = c.form(m.group(1))
    c.post(m.group(1), {"reason": "", "csrf_token": hidden["csrf_token"]})
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "50.00", "method": "bank_transfer",
                                                      "csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 303, "a partial refund of 50.00")
    page = c.get(path).text
    t.ok(re.search(r'id="paid">Paid: 100\.00 GBP \(50\.00 GBP refunded\)', page),
         "the status page shows 100.00 GBP paid net of the 50.00 refunded", page[:1500])
    t.ok("your 100.00 GBP back" in page and "150.00" not in page,
         "and promises the 100.00 GBP still paid, not the price")
    c3, path3, _ = new_order()
    conf_mail = site.sql1("SELECT body_text FROM outbox WHERE kind = 'confirmation' ORDER BY id DESC LIMIT 1")
    t.ok("please pay 99.00 GBP" in conf_mail and "99.00 GBP" in c3.get(path3).text,
         "a new order costs, and is asked to pay, the new 99.00 GBP")


try:
    for fn in (test_two_declines, test_decline_vs_refunded, test_two_refunded, test_two_replies,
               test_reply_vs_draft, test_two_paid, test_two_cancels, test_cancel_vs_paid_and_reply,
               test_two_refund_requests, test_repeats_record_once, test_amounts_are_the_orders):
        t.run(fn)
finally:
    site.cleanup()
sys.exit(t.done())
