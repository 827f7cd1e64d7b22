#!/usr/bin/env python3
"""Refunds paid back to the card (issue 15) through real nginx, against
the Stripe stand-in (tests/stripe_standin.py): the consultant's refund
"back to the card" is a job that `pmbctl pay send` carries out with one
POST /v1/refunds (Idempotency-Key pmb-NAME-refund-<id>); the money counts as
returned only when Stripe confirms; Stripe down, a lost answer, a runner
SIGKILLed mid-call and keys Stripe forgot after 24 h all end in exactly
one refund; a refused refund shows with Stripe's message and Retry; a
refund made in Stripe's dashboard is recorded; disputes flag, alert and
block refunds; duplicate and reordered events change nothing twice;
refund_auto_approve sends the money back with no human step; `pmbctl pay
reconcile` repairs dropped webhooks."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, login, admin_csrf, STAFF,  # noqa: E402
                     PMBCTL, unescape, logs_holding, stop_daemon)
from stripe_standin import StripeStandin  # noqa: E402

KEY = "sk_test_pmbRefundTestKey4242"
SECRET = "whsec_pmb_refund_secret"
REFUND = "POST /v1/refunds"
LIST = "GET /v1/refunds"

t = Tap()
stripe = StripeStandin(secret_key=KEY, webhook_secret=SECRET)
stripe.start()
SETTINGS = {"stripe_secret_key": KEY, "stripe_timeout": 2, "stripe_webhook_secret": SECRET,
            "stripe_api_url": stripe.url, "rate_limit_ip_per_hour": 1000}
site = Site(users=STAFF, settings=SETTINGS)
site.start()
auto = None     # a second site with refund_auto_approve = yes
staff = Browser(site)
login(staff)
n = [0]


def aim(s):
    """Points the stand-in's webhooks at site s."""
    stripe.configure(webhook_url=s.base + "/hooks/stripe")


aim(site)


def checkout(s):
    """A new client's order on site s, and "Pay by card" pressed: returns
    (client Browser, status path, order id, Checkout Session id)."""
    n[0] += 1
    email = "cardrefund%d@example.com" % n[0]
    c = Browser(s)
    path = track_path(ask(c, email=email).header("Location"))
    oid = s.sql1("SELECT id FROM orders WHERE email = ?", email)
    _, hidden = c.form(path)
    r = c.post(path + "/pay", {"csrf_token": hidden.get("csrf_token", "")})
    return c, path, oid, re.search(r"/pay/(cs_[A-Za-z0-9_]+)$", r.header("Location") or "").group(1)


def card_order(s=None, browser=None, request=True):
    """An order paid by card through the Pay button and the stand-in's
    checkout page (its webhook fulfils it), answered, and with request
    its refund asked for by the client. Returns (order id, PaymentIntent,
    refund request id or None, client Browser, status path)."""
    s = s or site
    st = browser or staff
    c, path, oid, cs = checkout(s)
    stripe.pay(cs)
    stripe.flush()
    assert s.sql1("SELECT status FROM orders WHERE id = ?", oid) == "paid", "not paid by card"
    pi = s.sql1("SELECT reference FROM ledger WHERE order_id = ? AND kind = 'payment' AND method = 'card'", oid)
    tok = admin_csrf(st)
    r = st.post("/admin/orders/%d/reply" % oid, {"body": "Try a **loyalty card**.", "csrf_token": tok, "confirm": "yes"})
    assert r.status == 303, r
    if not request:
        return oid, pi, None, c, path
    mail = s.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
    rpath = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail).group(1)
    _, hidden = c.form(rpath)
    r = c.post(rpath, {"reason": "Not for me", "csrf_token": hidden["csrf_token"]})
    assert r.status in (200, 303), r
    rid = s.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    return oid, pi, rid, c, path


def refund(rid, method="card", amount=None):
    """The consultant's "Mark refunded" on /admin/refunds."""
    f = {"method": method, "csrf_token": admin_csrf(staff, "/admin/refunds")}
    if amount is not None:
        f["amount"] = amount
    return staff.post("/admin/refunds/%d/refunded" % rid, f)


def send(s=None):
    """One `pmbctl pay send`; then every webhook it caused delivered."""
    p = (s or site).ctl("pay", "send", check=False)
    stripe.flush()
    return p


def refunds_at_stripe(pi):
    return [r for r in stripe.state()["refunds"] if r["payment_intent"] == pi]


def calls(endpoint, pi):
    return [q for q in stripe.requests_to(endpoint) if "payment_intent=" + pi in (q["body"] + q["query"])]


def ledger_refunds(oid, s=None):
    return (s or site).sql("SELECT amount, method, reference FROM ledger WHERE order_id = ? AND kind = 'refund'",
                           oid)


def test_consultant_refund():
    oid, pi, rid, c, path = card_order()
    page = staff.get("/admin/refunds").text
    t.ok(re.search(r'<select id="method-%d" name="method">\s*<option value="card" selected>' % rid, page),
         "on a card-paid order the refund form's method defaults to back to the card")
    r = refund(rid)
    t.eq((r.status, (r.header("Location") or "").endswith("/admin/refunds?done=card")), (303, True),
         "Mark refunded, back to the card: 303 to the list")
    t.ok("Refund sent to Stripe — waiting for confirmation" in staff.get("/admin/refunds?done=card").text,
         "the page says it went to Stripe and waits for confirmation")
    t.eq(calls(REFUND, pi), [], "the worker called nobody: calls leave only from the job runner")
    t.eq(site.sql("SELECT r.status, o.status FROM refund_requests r JOIN orders o ON o.id = r.order_id "
                  "WHERE r.id = ?", rid), [("pending", "refund_requested")],
         "the request is pending, the order not refunded yet")
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    t.eq(site.sql("SELECT status, amount, request_id FROM card_refunds WHERE id = ?", crid),
         [("pending", 15000, rid)], "one card refund, pending, of the whole 150.00")
    t.eq(site.sql("SELECT kind, status, card_refund_id FROM pay_jobs WHERE order_id = ?", oid),
         [("refund", "queued", crid)], "and one payment job, in the same transaction")
    t.eq(ledger_refunds(oid), [], "nothing in the ledger before Stripe confirms")
    tok = admin_csrf(staff, "/admin/refunds")
    r = staff.post("/admin/refunds/%d/decline" % rid, {"reason": "abuse", "csrf_token": tok})
    t.ok(r.status == 409 and "sent back to the card" in r.text, "a pending request can no longer be declined")
    t.eq(refund(rid, method="bank_transfer").status, 409, "nor paid back by hand while the card refund is on its way")
    p = send()
    t.ok(p.returncode == 0 and "1 done" in p.stdout, "pmbctl pay send: %s" % p.stdout.strip())
    reqs = calls(REFUND, pi)
    t.eq(len(reqs), 1, "one POST /v1/refunds")
    if reqs:
        q = reqs[0]
        t.eq(q["idempotency_key"], "pmb-%s-refund-%d" % (site.sql1("SELECT key FROM install"), crid),
             "Idempotency-Key pmb-NAME-refund-<card refund id>")
        t.eq(q["params"], {"payment_intent": pi, "amount": "15000", "reason": "requested_by_customer",
                           "metadata": {"order_id": str(oid), "card_refund_id": str(crid)}},
             "payment_intent, amount, reason and metadata as the issue lists them")
    re_ = refunds_at_stripe(pi)[0]["id"] if refunds_at_stripe(pi) else None
    t.eq(ledger_refunds(oid), [(15000, "card", re_)], "one ledger refund row, method card, reference re_")
    t.eq(site.sql("SELECT r.status, o.status FROM refund_requests r JOIN orders o ON o.id = r.order_id "
                  "WHERE r.id = ?", rid), [("refunded", "refunded")], "request and order refunded")
    t.eq(site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid), "succeeded", "the card refund succeeded")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid), 1,
         "the client's refund mail, once, after the API answer and both webhooks")
    t.ok(site.sql1("SELECT count(*) FROM stripe_events WHERE order_id = ? AND type IN "
                   "('charge.refunded', 'refund.created')", oid) == 2, "both refund events reached pmb")
    send()
    t.eq(len(calls(REFUND, pi)), 1, "a second pay send calls nobody")


def test_stripe_down():
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    stripe.fail(REFUND, status=503)
    p = send()
    t.ok(p.returncode == 0 and "1 failed" in p.stdout, "Stripe down: the try fails (%s)" % p.stdout.strip())
    job = site.sql("SELECT status, attempts, last_error, next_at - strftime('%s','now') FROM pay_jobs "
                   "WHERE card_refund_id = ?", crid)[0]
    t.ok(job[0] == "queued" and job[1] == 1 and job[2] != "" and 0 < job[3] <= 11,
         "the job is queued again after a pause, its error visible: %r" % (job,))
    t.eq((refunds_at_stripe(pi), site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid)), ([], "pending"),
         "no refund at Stripe, the card refund still pending")
    send()
    t.eq(len(calls(REFUND, pi)), 1, "before the pause is over pay send does not call again")
    site.sql("UPDATE pay_jobs SET next_at = 0 WHERE card_refund_id = ?", crid)
    send()
    t.eq(len(refunds_at_stripe(pi)), 1, "retried by pmbctl pay send: one refund in the end")
    t.eq(len(ledger_refunds(oid)), 1, "one ledger row")
    # The answer lost to a timeout: Stripe made the refund, pmb heard
    # nothing; the retry with the same key gets the first answer.
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    stripe.hang(REFUND, seconds=3.5, when="after")
    stripe.set_hold_webhooks(True)      # the webhooks are lost too
    p = send()
    t.ok("1 failed" in p.stdout, "the call times out (stripe_timeout 2 s)")
    time.sleep(1.6)
    stripe.deliver_all(order=lambda h: [])
    stripe.set_hold_webhooks(False)
    site.sql("UPDATE pay_jobs SET next_at = 0 WHERE order_id = ?", oid)
    send()
    reqs = calls(REFUND, pi)
    t.ok(len(reqs) == 2 and reqs[1]["replayed"] and len(refunds_at_stripe(pi)) == 1,
         "the retry carries the same key: Stripe replays its answer, one refund",
         [(q["idempotency_key"], q["replayed"], q["status"]) for q in reqs])
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refunded", "and the order is refunded")


def killed_mid_call(crid):
    """Runs `pmbctl pay send` against a stand-in that holds the refund
    call, SIGKILLs it once the call reached Stripe, and lets Stripe
    finish it (the refund is made; its webhooks are lost)."""
    stripe.hang(REFUND, seconds=1.5, when="before")
    stripe.set_hold_webhooks(True)
    before = len(stripe.requests_to(REFUND))
    p = subprocess.Popen([PMBCTL, "pay", "send"], env=site.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    end = time.time() + 10
    while len(stripe.requests_to(REFUND)) == before and time.time() < end:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    t.eq(site.sql1("SELECT status FROM pay_jobs WHERE card_refund_id = ?", crid), "sending",
         "pmbctl pay SIGKILLed mid-call: its job is left claimed")
    time.sleep(2)
    stripe.deliver_all(order=lambda h: [])
    stripe.set_hold_webhooks(False)


def test_sigkill():
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    killed_mid_call(crid)
    t.eq(len(refunds_at_stripe(pi)), 1, "Stripe went on and made the refund")
    send()
    t.eq(len(calls(REFUND, pi)), 1, "another runner leaves a claimed job alone until its claim expires")
    site.sql("UPDATE pay_jobs SET claimed_until = 0 WHERE card_refund_id = ?", crid)
    send()
    reqs = calls(REFUND, pi)
    t.ok(len(reqs) == 2 and reqs[1]["idempotency_key"] == reqs[0]["idempotency_key"] and
         reqs[1]["idempotency_key"].endswith("-refund-%d" % crid) and reqs[1]["replayed"],
         "the expired claim is taken again; the call repeats with the same key and is replayed",
         [(q["idempotency_key"], q["replayed"], q["status"]) for q in reqs])
    t.eq((len(refunds_at_stripe(pi)), len(ledger_refunds(oid))), (1, 1), "exactly one refund, one ledger row")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refunded", "the order is refunded")

    # Later than Stripe keeps keys: the runner lists the refunds first.
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    killed_mid_call(crid)
    stripe.forget_idempotency_keys()
    site.sql("UPDATE pay_jobs SET claimed_until = 0, created_at = created_at - 86400 WHERE card_refund_id = ?",
             crid)
    site.sql("UPDATE card_refunds SET created_at = created_at - 86400 WHERE id = ?", crid)
    nlist = len(calls(LIST, pi))
    send()
    t.ok(len(calls(LIST, pi)) == nlist + 1, "a job older than 23 h lists the PaymentIntent's refunds first")
    t.eq(len(calls(REFUND, pi)), 1, "and adopts the one made for it: no second POST")
    t.eq((len(refunds_at_stripe(pi)), len(ledger_refunds(oid)),
          site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid)), (1, 1, "succeeded"),
         "one refund at Stripe, one ledger row, the card refund succeeded")


def test_refused_and_retry():
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    stripe.decline("refund")
    send()
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    row = site.sql("SELECT status, last_error FROM card_refunds WHERE id = ?", crid)[0]
    t.ok(row[0] == "failed" and "Your card was declined." in row[1], "Stripe refuses: failed with its message")
    t.eq(site.sql("SELECT status, last_error != '' FROM pay_jobs WHERE card_refund_id = ?", crid),
         [("failed", 1)], "the job failed, its error visible")
    t.eq((site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid), ledger_refunds(oid)),
         ("pending", []), "the request stays pending; nothing in the ledger")
    page = unescape(staff.get("/admin/refunds").text)
    t.ok("Your card was declined." in page and 'action="/admin/refunds/%d/retry"' % rid in page,
         "/admin/refunds shows Stripe's message and a Retry button")
    t.eq(staff.post("/admin/refunds/%d/retry" % rid, {"csrf_token": "x"}).status, 403, "Retry needs the CSRF token")
    r = staff.post("/admin/refunds/%d/retry" % rid, {"csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 303, "Retry: 303")
    ids = [i for (i,) in site.sql("SELECT id FROM card_refunds WHERE order_id = ? ORDER BY id", oid)]
    t.eq(len(ids), 2, "Retry makes a new card refund (a new Idempotency-Key: Stripe replays a refusal)")
    r = staff.post("/admin/refunds/%d/retry" % rid, {"csrf_token": admin_csrf(staff, "/admin/refunds")})
    t.eq(r.status, 409, "a second Retry while one is on its way: 409")
    send()
    t.eq((site.sql1("SELECT status FROM orders WHERE id = ?", oid), len(ledger_refunds(oid)),
          calls(REFUND, pi)[-1]["idempotency_key"]), ("refunded", 1, "pmb-%s-refund-%d" % (site.sql1("SELECT key FROM install"), ids[1])),
         "the retry went through: refunded, one ledger row")

    # Refused again: paid back by hand instead.
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    stripe.decline("refund")
    send()
    t.eq(refund(rid, method="card").status, 409, "a refused card refund is not asked again by Mark refunded")
    r = refund(rid, method="bank_transfer")
    t.eq(r.status, 303, "a request whose card refund Stripe refused can be paid back by hand instead")
    t.eq((site.sql("SELECT amount, method FROM ledger WHERE order_id = ? AND kind = 'refund'", oid),
          site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid),
          site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([(15000, "bank_transfer")], "refunded", "refunded"), "recorded at once: request and order refunded")

    # A charge disputed at Stripe that pmb does not know of yet.
    oid, pi, rid, _, _ = card_order()
    stripe.set_hold_webhooks(True)
    stripe.dispute(pi)
    stripe.set_hold_webhooks(False)
    held = stripe.pending_events()
    stripe.deliver_all(order=lambda h: [])
    refund(rid)
    send()
    row = site.sql("SELECT status, last_error FROM card_refunds WHERE order_id = ?", oid)[0]
    t.ok(row[0] == "failed" and "charged back" in row[1], "a disputed charge: Stripe refuses, failed with its "
         "message (%s)" % row[1])
    for e in held:
        stripe.deliver(e)


def test_dashboard_refund():
    oid, pi, _, _, _ = card_order(request=False)
    stripe.configure(charge_refunds_in_events=True)
    try:
        st, _, re_ = stripe.api("POST", "/v1/refunds", {"payment_intent": pi})
        stripe.flush()
    finally:
        stripe.configure(charge_refunds_in_events=False)
    t.eq(st, 200, "a refund made by hand in Stripe's dashboard")
    t.eq(ledger_refunds(oid), [(15000, "card", re_["id"])], "recorded once in the ledger: method card, its re_ id")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'refund made in Stripe'", oid), 1,
         "audit: refund made in Stripe")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refunded", "the order follows: refunded")
    t.eq(site.sql("SELECT type, outcome FROM stripe_events WHERE order_id = ? AND type IN "
                  "('charge.refunded', 'refund.created') ORDER BY type", oid),
         [("charge.refunded", "refund made in Stripe, recorded"),
          ("refund.created", "refund made in Stripe, already recorded")],
         "the signed charge.refunded recorded it; refund.created found it recorded")


def test_dashboard_refund_failed():
    """A refund made in Stripe's dashboard, recorded when it succeeded,
    that fails later: undone as pmb's own (out of the ledger, the request
    open again, the consultant told once)."""
    oid, pi, rid, _, _ = card_order()
    st, _, re_ = stripe.api("POST", "/v1/refunds", {"payment_intent": pi})
    stripe.flush()
    t.eq((st, ledger_refunds(oid), site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         (200, [(15000, "card", re_["id"])], "refunded"), "a dashboard refund recorded, the order refunded")
    ev = stripe.event("refund.failed", dict(re_, status="failed", failure_reason="lost_or_stolen_card"))
    t.eq(stripe.send_event(ev)[0], 200, "its refund.failed: 200")
    stripe.send_event(stripe.event("refund.updated", dict(re_, status="failed")))
    t.eq((ledger_refunds(oid), site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid),
          site.sql1("SELECT status FROM orders WHERE id = ?", oid),
          site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'card_refund_alert'", oid)),
         ([], "open", "refund_requested", 1),
         "out of the ledger, the request open again, the order refund_requested, the consultant told once")
    stripe.send_event(stripe.event("refund.created", re_))
    t.eq((ledger_refunds(oid), site.sql1("SELECT status FROM card_refunds WHERE stripe_id = ?", re_["id"])),
         ([], "failed"), "its refund.created (succeeded) coming late records nothing: kept as a failed card refund")


def test_dispute():
    oid, pi, rid, _, _ = card_order()
    du = stripe.dispute(pi)
    stripe.flush()
    t.eq(site.sql("SELECT kind, ref, resolved_at FROM order_flags WHERE order_id = ? AND kind = 'disputed'", oid),
         [("disputed", du["id"], None)], "charge.dispute.created flags the order (ref du_)")
    t.eq(site.sql("SELECT to_addr FROM outbox WHERE order_id = ? AND kind = 'dispute_alert'", oid),
         [("consultant@example.com",)], "the consultant is alerted by email")
    r = refund(rid)
    t.ok(r.status == 409 and "disputed" in r.text, "the refund is refused: 409 disputed")
    t.eq(refund(rid, method="bank_transfer").status, 409, "by any method (the chargeback pays it back)")
    t.eq((site.sql1("SELECT count(*) FROM card_refunds WHERE order_id = ?", oid), calls(REFUND, pi)), (0, []),
         "nothing written, nothing sent")
    ev = [d for d in stripe.deliveries if d["type"] == "charge.dispute.created" and d.get("status") == 200]
    stripe.redeliver(ev[-1]["event_id"])
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'dispute_alert'", oid), 1,
         "a duplicate event alerts once")
    stripe.close_dispute(du["id"], won=False)
    stripe.flush()
    t.eq(site.sql("SELECT resolution, resolved_at IS NOT NULL FROM order_flags WHERE order_id = ? AND kind = "
                  "'disputed'", oid), [("lost", 1)], "charge.dispute.closed records the outcome")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'dispute closed'", oid), 1,
         "audited")
    # Closed before created: the same end.
    oid2, pi2, _, _, _ = card_order(request=False)
    stripe.set_hold_webhooks(True)
    du2 = stripe.dispute(pi2)
    stripe.close_dispute(du2["id"], won=True)
    stripe.set_hold_webhooks(False)
    stripe.deliver_all(order=lambda h: list(reversed(h)))
    t.eq(site.sql("SELECT ref, resolution FROM order_flags WHERE order_id = ? AND kind = 'disputed'", oid2),
         [(du2["id"], "won")], "closed before created: one flag, resolved won")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'dispute_alert'", oid2), 1,
         "one alert")


def test_events_twice_and_reordered():
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    stripe.set_refund_status("pending")
    stripe.set_hold_webhooks(True)
    try:
        send()
    finally:
        stripe.set_refund_status("succeeded")
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    re_id = refunds_at_stripe(pi)[0]["id"]
    t.eq(site.sql("SELECT status, stripe_id FROM card_refunds WHERE id = ?", crid), [("pending", re_id)],
         "Stripe answers pending: its re_ id stored, still pending")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "refund_requested",
         "and the order is not refunded before Stripe confirms")
    stripe.settle_refund(re_id, "succeeded")
    events = stripe.pending_events()
    stripe.set_hold_webhooks(False)
    results = stripe.deliver_all(order=lambda h: list(reversed(h)))
    for e in events:
        stripe.redeliver(e["id"])
    t.ok(all(st == 200 for (_, st, _) in results), "every event answered 200, in reverse order")
    t.eq((ledger_refunds(oid), site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([(15000, "card", re_id)], "refunded"), "refund.updated first, each twice: one ledger row, refunded")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid), 1, "one mail")


def test_stale_succeeded_after_failed():
    """Stripe's refund may go pending -> succeeded -> failed, and events
    may come in any order: a "succeeded" snapshot that arrives after the
    refund failed is stale, and moves no money into the ledger."""
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    stripe.set_refund_status("pending")
    stripe.set_hold_webhooks(True)
    try:
        send()
    finally:
        stripe.set_refund_status("succeeded")
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    re_id = refunds_at_stripe(pi)[0]["id"]
    snapshot = dict(refunds_at_stripe(pi)[0], status="succeeded")
    stale = stripe.event("refund.updated", snapshot, {"status": "pending"})
    stripe.settle_refund(re_id, "failed")
    stripe.set_hold_webhooks(False)
    stripe.deliver_all()
    t.eq(site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid), "failed", "refund.failed: failed")
    st, _ = stripe.send_event(stale)
    t.eq(st, 200, "the stale refund.updated (succeeded) answered 200")
    t.eq((site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid), ledger_refunds(oid),
          site.sql1("SELECT status FROM orders WHERE id = ?", oid),
          site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid)),
         ("failed", [], "refund_requested", 0),
         "a succeeded snapshot after refund.failed is stale: still failed, nothing in the ledger, no mail")


def test_failed_after_succeeded():
    """A refund Stripe reported succeeded may fail later (refund.failed,
    status failed: the money went back to the Stripe balance, not to the
    client): it leaves the ledger, the request opens again, the
    consultant is told, once."""
    oid, pi, rid, _, _ = card_order()
    refund(rid)
    send()
    crid = site.sql1("SELECT id FROM card_refunds WHERE order_id = ?", oid)
    re_ = refunds_at_stripe(pi)[0]
    t.eq((site.sql1("SELECT status FROM orders WHERE id = ?", oid), ledger_refunds(oid)),
         ("refunded", [(15000, "card", re_["id"])]), "the refund succeeded: in the ledger, order refunded")
    failed = dict(re_, status="failed", failure_reason="expired_or_canceled_card")
    ev = stripe.event("refund.failed", failed)
    st, _ = stripe.send_event(ev)
    t.eq(st, 200, "refund.failed after succeeded: 200")
    t.eq((site.sql1("SELECT status FROM card_refunds WHERE id = ?", crid), ledger_refunds(oid),
          site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid),
          site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ("failed", [], "open", "refund_requested"),
         "the card refund failed, out of the ledger, the request open again, the order refund_requested")
    stripe.send_event(stripe.event("refund.updated", failed, {"status": "succeeded"}))
    stripe.send_event(ev)
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'card_refund_alert'", oid), 1,
         "the consultant is told, once (refund.updated and the event again change nothing)")
    t.eq(refund(rid, method="bank_transfer").status, 303, "the consultant can pay it back another way")
    t.eq(([(a, m) for (a, m, _) in ledger_refunds(oid)], site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([(15000, "bank_transfer")], "refunded"), "recorded: one refund in the ledger, the order refunded")


def test_auto_approve():
    global auto
    auto = Site(users=STAFF, settings=dict(SETTINGS, refund_auto_approve="yes"))
    auto.start()
    aim(auto)
    try:
        b = Browser(auto)
        login(b)
        stripe.set_refund_status("pending")
        oid, pi, rid, c, path = card_order(auto, b)
        t.eq(auto.sql("SELECT r.status, c.status, j.status FROM refund_requests r JOIN card_refunds c ON "
                      "c.request_id = r.id JOIN pay_jobs j ON j.card_refund_id = c.id WHERE r.id = ?", rid),
             [("pending", "pending", "queued")],
             "the client's request writes the card refund and its job in the same transaction")
        send(auto)
        stripe.set_refund_status("succeeded")
        t.eq((auto.sql1("SELECT status FROM orders WHERE id = ?", oid), ledger_refunds(oid, auto)),
             ("refund_requested", []), "Stripe answered pending: not refunded yet")
        re_id = refunds_at_stripe(pi)[0]["id"]
        stripe.settle_refund(re_id, "succeeded")
        stripe.flush()
        t.eq((auto.sql1("SELECT status FROM orders WHERE id = ?", oid), ledger_refunds(oid, auto)),
             ("refunded", [(15000, "card", re_id)]), "refunded once Stripe confirms (refund.updated)")
        t.eq(auto.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid), 1,
             "the client gets the refund mail")
    finally:
        stripe.set_refund_status("succeeded")
        aim(site)
        auto.cleanup()


def test_partial_and_order_page():
    oid, pi, rid, _, _ = card_order()
    r = refund(rid, amount="50.00")
    t.eq(r.status, 303, "a partial refund back to the card")
    t.eq(refund(rid, amount="10.00").status, 409, "while it is on its way the request is pending: a second is 409")
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok("Back to the card" in page and "sent to Stripe — waiting for confirmation" in page,
         "the order page shows the refund's progress")
    send()
    t.eq((ledger_refunds(oid), site.sql1("SELECT status FROM refund_requests WHERE id = ?", rid),
          site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([(5000, "card", refunds_at_stripe(pi)[0]["id"])], "open", "refund_requested"),
         "50.00 paid back: in the ledger, the request open again for the rest, the order not refunded")
    t.ok("paid back" in staff.get("/admin/orders/%d" % oid).text, "the order page says it was paid back")
    t.eq(refund(rid, amount="100.01").status, 400, "more than is left: 400")
    refund(rid)
    send()
    t.eq(([a for (a, _, _) in ledger_refunds(oid)], site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([5000, 10000], "refunded"), "the rest (100.00) by default: refunded in full")


def test_surplus():
    c, path, oid, cs = checkout(site)
    stripe.set_hold_webhooks(True)
    stripe.pay(cs)
    stripe.set_hold_webhooks(False)
    staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                               "csrf_token": admin_csrf(staff)})
    stripe.deliver_all()
    pi = site.sql1("SELECT reference FROM ledger WHERE order_id = ? AND method = 'card'", oid)
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok('action="/admin/orders/%d/refund"' % oid in page and 'value="150.00"' in page,
         "an overpaid order's page offers to refund the surplus (150.00) to the card")
    tok = admin_csrf(staff, "/admin/orders/%d" % oid)
    t.eq(staff.post("/admin/orders/%d/refund" % oid, {"amount": "150.01", "csrf_token": tok}).status, 409,
         "more than the surplus: 409")
    r = staff.post("/admin/orders/%d/refund" % oid, {"csrf_token": tok})
    t.eq(r.status, 303, "the surplus to the card")
    t.eq(staff.post("/admin/orders/%d/refund" % oid, {"csrf_token": tok}).status, 409,
         "a second while the first is on its way: nothing left (409)")
    send()
    t.eq((ledger_refunds(oid), site.sql1("SELECT status FROM orders WHERE id = ?", oid)),
         ([(15000, "card", refunds_at_stripe(pi)[0]["id"])], "paid"),
         "paid back to the card, the order still paid (net the price)")
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'refunded'", oid)
    t.ok(mail and "beyond the price" in mail and "will follow" not in mail, "the client is told what it was")


def test_expire_job():
    c, path, oid, cs = checkout(site)
    r = staff.post("/admin/orders/%d/cancel" % oid, {"reason": "Client asked", "csrf_token": admin_csrf(staff)})
    t.eq(r.status, 303, "an order with an open payment page cancelled")
    t.eq(stripe.requests_to("POST /v1/checkout/sessions/:id/expire"), [], "the worker called nobody")
    p = send()
    t.ok(p.returncode == 0 and "1 done" in p.stdout, "pmbctl pay send: %s" % p.stdout.strip(), p.stderr)
    reqs = stripe.requests_to("POST /v1/checkout/sessions/:id/expire")
    key = "pmb-%s-expire-%d" % (site.sql1("SELECT key FROM install"),
                                site.sql1("SELECT id FROM checkout_sessions WHERE stripe_id = ?", cs))
    t.ok(len(reqs) == 1 and cs in reqs[0]["path"] and reqs[0]["idempotency_key"] == key,
         "pay send expires the session at Stripe, once, with Idempotency-Key pmb-NAME-expire-<row id>")
    t.eq((site.sql1("SELECT status FROM checkout_sessions WHERE stripe_id = ?", cs),
          site.sql1("SELECT status FROM pay_jobs WHERE order_id = ?", oid)), ("expired", "done"),
         "the session is expired, the job done")
    t.eq([s["status"] for s in stripe.state()["sessions"] if s["id"] == cs], ["expired"], "and at Stripe")


def test_expire_when_paid_by_hand():
    """An order marked paid by hand while its Stripe page is open: the
    page is expired at Stripe as for a cancel, so the client cannot pay
    a second time by card."""
    c, path, oid, cs = checkout(site)
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                   "csrf_token": admin_csrf(staff)})
    t.eq(r.status, 303, "an order with an open payment page marked paid by hand")
    t.eq(site.sql("SELECT kind, status FROM pay_jobs WHERE order_id = ?", oid), [("expire", "queued")],
         "an expire job written in the same transaction")
    send()
    reqs = [q for q in stripe.requests_to("POST /v1/checkout/sessions/:id/expire") if cs in q["path"]]
    t.eq((len(reqs), [s["status"] for s in stripe.state()["sessions"] if s["id"] == cs],
          site.sql1("SELECT status FROM checkout_sessions WHERE stripe_id = ?", cs)),
         (1, ["expired"], "expired"), "pay send expires the session at Stripe, once")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "paid", "the order stays paid")


def test_run_daemon():
    oid, pi, rid, _, _ = card_order()
    p = subprocess.Popen([PMBCTL, "pay", "run"], env=site.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.7)
        refund(rid)
        p.send_signal(signal.SIGUSR1)
        end = time.time() + 4
        while time.time() < end and site.sql1("SELECT status FROM orders WHERE id = ?", oid) != "refunded":
            time.sleep(0.05)
        t.ok(time.time() < end, "pmbctl pay run, woken by SIGUSR1, pays the refund back before its 5 s pause")
        err = stop_daemon(p)
        t.eq(p.returncode, 0, "SIGTERM: it exits 0")
        t.ok("pay: stopped" in err and "done" in err, "it logs each job and that it stopped", err)
        t.ok(KEY not in err, "the secret key is not in its log")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    stripe.flush()
    t.eq(len(ledger_refunds(oid)), 1, "one ledger row")


def test_reconcile():
    # A paid session whose webhook was dropped.
    c, path, oid, cs = checkout(site)
    stripe.set_hold_webhooks(True)
    stripe.pay(cs)
    stripe.deliver_all(order=lambda h: [])
    stripe.set_hold_webhooks(False)
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "awaiting_payment", "the webhook was dropped")
    # A refund whose confirmation was dropped.
    oid2, pi2, rid2, _, _ = card_order()
    refund(rid2)
    stripe.set_refund_status("pending")
    try:
        send()
    finally:
        stripe.set_refund_status("succeeded")
    re_id = refunds_at_stripe(pi2)[0]["id"]
    stripe.set_hold_webhooks(True)
    stripe.settle_refund(re_id, "succeeded")
    stripe.deliver_all(order=lambda h: [])
    stripe.set_hold_webhooks(False)
    p = site.ctl("pay", "reconcile", check=False)
    out = p.stdout
    t.ok(p.returncode == 0 and ("session %s of order %d" % (cs, oid)) in out, "reconcile prints the session it "
         "fulfilled: %r" % out)
    t.ok(("refund %s of order %d: refund succeeded" % (re_id, oid2)) in out, "and the refund it settled")
    t.ok(re.search(r"reconcile: last 3 days: \d+ sessions seen, 1 fulfilled; \d+ refunds seen, 1 settled", out),
         "and a summary")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "paid", "the order is paid")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid2), "refunded", "the refunded order is refunded")
    p = site.ctl("pay", "reconcile", "--days", "1", check=False)
    t.ok(p.returncode == 0 and "1 fulfilled" not in p.stdout and "0 fulfilled" in p.stdout,
         "a second run finds nothing to fix: %r" % p.stdout)
    t.eq(site.ctl("pay", "reconcile", "--days", "x", check=False).returncode, 1, "--days takes a number")


def test_key_in_no_log():
    logs, found = logs_holding(site.dir, KEY)
    t.ok(logs and not found, "the secret key is in no log (%s; holding it: %s)" % (logs, found))


try:
    for fn in (test_consultant_refund, test_stripe_down, test_sigkill, test_refused_and_retry,
               test_dashboard_refund, test_dashboard_refund_failed, test_dispute,
               test_events_twice_and_reordered, test_stale_succeeded_after_failed,
               test_failed_after_succeeded,
               test_auto_approve,
               test_partial_and_order_page, test_surplus, test_expire_job, test_expire_when_paid_by_hand,
               test_run_daemon, test_reconcile,
               test_key_in_no_log):
        t.run(fn)
finally:
    stripe.stop()
    site.cleanup()
sys.exit(t.done())
