#!/usr/bin/env python3
"""The Stripe stand-in (tests/stripe_standin.py) checked against what
Stripe documents, so that the payment tests that lean on it test pmb and
not the stand-in: Bearer authentication, nested form fields,
Idempotency-Key replay, Checkout Sessions (create, read, list, expire),
the checkout page's Pay button with its signed webhook and redirect,
refunds and their webhooks, disputes, injected failures, webhook holding
and redelivery, the program mode with POST /_control, parallel calls, and
signatures equal to the official `stripe` npm package's (node; a skip
without it, a failure under CI=true). A small webhook receiver in this
process records every delivery with its raw bytes."""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, parallel, node_deps  # noqa: E402
from stripe_standin import (StripeStandin, ApiError, parse_form, encode_form,  # noqa: E402
                            sdk_header, sdk_verify, DAY)

t = Tap()
KEY = "sk_test_standin_check"
SECRET = "whsec_standin_check_0123456789"


class Receiver:
    """A webhook endpoint: records (path, headers, raw body) of every POST
    and answers the statuses queued in .answers (then 200)."""

    def __init__(self):
        self.got = []
        self.answers = []
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = rec.answers.pop(0) if rec.answers else 200
                out = b'{"received": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hooks/stripe" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, type=None):
        """The events received, as (event dict, headers, raw body)."""
        with self.lock:
            out = [(json.loads(b), h, b) for _, h, b in self.got]
        return [e for e in out if type is None or e[0]["type"] == type]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def verify(header, body, secret=SECRET, now=None, tolerance=300):
    """Checks a Stripe-Signature header the way Stripe's libraries do,
    independently of the stand-in's sign(): any v1 matching, timestamp
    within tolerance. Returns True or a reason."""
    parts = [p.split("=", 1) for p in (header or "").split(",")]
    ts = [v for k, v in parts if k == "t"]
    v1 = [v for k, v in parts if k == "v1"]
    if len(ts) != 1 or not v1:
        return "no t or no v1 in %r" % header
    want = hmac.new(secret.encode(), ts[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, v) for v in v1):
        return "no v1 matches"
    if abs((now or time.time()) - int(ts[0])) > tolerance:
        return "timestamp out of tolerance"
    return True


def session_params(**over):
    """A Checkout Session's parameters as pmb sends them (issue 15)."""
    p = {
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "gbp", "unit_amount": 15000,
                                       "product_data": {"name": "Order 12: Pick my brain"}},
                        "quantity": 1}],
        "customer_email": "ada@bakery.example",
        "client_reference_id": "12",
        "metadata": {"order_id": "12"},
        "payment_intent_data": {"metadata": {"order_id": "12"}},
        "success_url": "http://127.0.0.1:9/o/TOKEN?checkout=done&session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/o/TOKEN?checkout=cancelled",
    }
    p.update(over)
    return p


def price(currency, amount):
    return [{"price_data": {"currency": currency, "unit_amount": amount, "product_data": {"name": "x"}},
             "quantity": 1}]


def err(answer):
    """(status, error type, error code) of an API answer."""
    status, _, body = answer
    e = body.get("error", {}) if isinstance(body, dict) else {}
    return status, e.get("type"), e.get("code")


rx = Receiver()
s = StripeStandin(secret_key=KEY, webhook_url=rx.url, webhook_secret=SECRET).start()


def create(**over):
    st, _, body = s.api("POST", "/v1/checkout/sessions", session_params(**over))
    assert st == 200, body
    return body


def paid_session(**over):
    """A session paid through the checkout page; returns (session, pi)."""
    cs = create(**over)
    st, h, _ = s.pay(cs["id"])
    assert st == 303, (st, h)
    got = s.api("GET", "/v1/checkout/sessions/" + cs["id"])[2]
    return got, got["payment_intent"]


def test_auth():
    before = len(s.sessions)
    t.eq(err(s.api("GET", "/v1/checkout/sessions", key=False)), (401, "invalid_request_error", None),
         "no Authorization: 401 invalid_request_error")
    t.eq(err(s.api("GET", "/v1/checkout/sessions", key="sk_test_wrong")), (401, "invalid_request_error", None),
         "a wrong key: 401")
    t.eq(s.api("GET", "/v1/checkout/sessions", key=False, headers={"Authorization": "Basic " + KEY})[0], 401,
         "the right key but not as Bearer: 401")
    st, h, _ = s.api("POST", "/v1/checkout/sessions", session_params(), key="sk_test_wrong",
                     idempotency_key="auth-1")
    t.ok(st == 401 and len(s.sessions) == before, "a POST with a wrong key creates nothing", st)
    st, h, body = s.api("POST", "/v1/checkout/sessions", session_params(), idempotency_key="auth-1")
    t.ok(st == 200 and "idempotent-replayed" not in h, "the refused call's key was not saved: "
         "the same key with the right key runs the call", (st, h))
    st, h, body = s.api("GET", "/v1/checkout/sessions")
    t.ok(st == 200 and body["object"] == "list" and h.get("request-id", "").startswith("req_"),
         "the right key: 200, a list, a Request-Id", (st, body))


def test_form_parsing():
    t.eq(parse_form("a[b][c]=1&e[]=x&e[]=y&l[0][k]=v&l[1][k]=w&metadata[0]=z&s=%C3%A9+%2B"),
         {"a": {"b": {"c": "1"}}, "e": ["x", "y"], "l": [{"k": "v"}, {"k": "w"}], "metadata": {"0": "z"},
          "s": "\u00e9 +"},
         "parse_form: hashes, [] arrays, indexed arrays, a metadata hash of digits, percent and plus")
    bad = ["a[b=1", "a]=1", "a[b]c=1", "a=1&a=2", "a=1&a[b]=2", "a[b]=1&a=2", "a[][b]=1", "a[]=1&a[x]=2",
           "a=%FF"]
    refused = []
    for q in bad:
        try:
            parse_form(q)
        except ApiError as e:
            if e.status == 400:
                refused.append(q)
    t.eq(refused, bad, "parse_form refuses malformed brackets, a field twice, a value and a hash at once, "
         "bad UTF-8")
    t.eq(encode_form({"a": {"b": [{"c": 1}]}, "d": True}), "a%5Bb%5D%5B0%5D%5Bc%5D=1&d=true",
         "encode_form writes Stripe's nested names")

    cs = create(line_items=[{"price_data": {"currency": "GBP", "unit_amount": 15000,
                                            "product_data": {"name": "Order 12"}}, "quantity": 1}])
    req = s.requests_to("POST /v1/checkout/sessions")[-1]
    t.eq(req["params"]["line_items"][0]["price_data"]["product_data"]["name"], "Order 12",
         "the request log holds the nested parameters as sent")
    t.eq(req["params"]["payment_intent_data"], {"metadata": {"order_id": "12"}},
         "payment_intent_data[metadata][order_id] is a nested hash")
    t.eq((cs["amount_total"], cs["currency"], cs["metadata"], cs["client_reference_id"], cs["customer_email"]),
         (15000, "gbp", {"order_id": "12"}, "12", "ada@bakery.example"),
         "the session carries the amount, the currency in lower case, metadata, reference and email")
    body = encode_form(session_params()) + "&line_items%5B0%5D%5Bprice_data%5D%5Bcolour%5D=red"
    st, _, e = s.api("POST", "/v1/checkout/sessions", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    t.ok(st == 400 and e["error"].get("code") == "parameter_unknown"
         and e["error"].get("param") == "line_items[0][price_data][colour]",
         "an unknown nested field: 400 parameter_unknown naming it", e)
    for label, raw in (("malformed brackets", "metadata%5Border_id=12"),
                       ("an index out of order", "line_items%5B1%5D%5Bquantity%5D=1"),
                       ("a field twice", "mode=payment")):
        body = encode_form(session_params()) + "&" + raw
        st, _, e = s.api("POST", "/v1/checkout/sessions", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        t.ok(st == 400 and e["error"]["type"] == "invalid_request_error", "%s: 400" % label, (st, e))
    st, _, e = s.api("POST", "/v1/checkout/sessions", body=json.dumps(session_params()),
                     headers={"Content-Type": "application/json"})
    t.eq(st, 400, "a JSON body: 400 (Stripe's API v1 takes forms)")
    st, _, e = s.api("POST", "/v1/checkout/sessions", session_params(line_items=price("gbp", "15.00")))
    t.eq(err((st, _, e)), (400, "invalid_request_error", "parameter_invalid_integer"),
         "unit_amount 15.00: 400 parameter_invalid_integer (minor units, an integer)")
    for field in ("mode", "success_url", "cancel_url"):
        p = session_params()
        del p[field]
        t.eq(err(s.api("POST", "/v1/checkout/sessions", p)), (400, "invalid_request_error", "parameter_missing"),
             "no %s: 400 parameter_missing" % field)
    n = len(s.sessions)
    results = {}
    for cur, amount in (("gbp", 29), ("gbp", 30), ("usd", 49), ("eur", 50), ("jpy", 49), ("jpy", 50),
                        ("bhd", 505), ("bhd", 510), ("xyz", 5000)):
        st, _, body = s.api("POST", "/v1/checkout/sessions", session_params(line_items=price(cur, amount)))
        results["%s %d" % (cur, amount)] = st if st == 200 else body["error"].get("code", st)
    t.eq(results, {"gbp 29": "amount_too_small", "gbp 30": 200, "usd 49": "amount_too_small", "eur 50": 200,
                   "jpy 49": "amount_too_small", "jpy 50": 200, "bhd 505": "invalid_amount", "bhd 510": 200,
                   "xyz 5000": 400},
         "Stripe's minimum charge per currency, three-decimal amounts end in 0, unknown currency refused")
    t.eq(len(s.sessions), n + 4, "only the accepted sessions were created")


def test_idempotency():
    n = len(s.sessions)
    p = session_params(client_reference_id="idem")
    st1, h1, b1 = s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-1", raw=True)
    st2, h2, b2 = s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-1", raw=True)
    t.ok(st1 == st2 == 200 and b1 == b2, "the same key and parameters: the identical answer", (st1, st2))
    t.ok("idempotent-replayed" not in h1 and h2.get("idempotent-replayed") == "true",
         "the replay carries Idempotent-Replayed: true, the first answer not", (h1, h2))
    t.eq(len(s.sessions), n + 1, "one session for the two calls")
    e = s.api("POST", "/v1/checkout/sessions", session_params(client_reference_id="other"),
              idempotency_key="idem-1")
    t.eq(err(e), (400, "idempotency_error", None), "the same key with other parameters: 400 idempotency_error")
    e = s.api("POST", "/v1/refunds", {"payment_intent": "pi_x"}, idempotency_key="idem-1")
    t.eq(err(e), (400, "idempotency_error", None), "the same key on another endpoint: 400 idempotency_error")
    t.eq(len(s.sessions), n + 1, "neither made a session")
    t.eq(s.api("GET", "/v1/checkout/sessions", idempotency_key="idem-1")[0], 200,
         "GET ignores Idempotency-Key")

    s.forget_idempotency_keys()
    st3, h3, b3 = s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-1")
    t.ok(st3 == 200 and "idempotent-replayed" not in h3 and b3["id"] != json.loads(b1)["id"],
         "after forget_idempotency_keys the same key makes a new session", (st3, h3))
    s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-2")
    s.advance_clock(DAY + 1)
    try:
        st4, h4, _ = s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-2")
    finally:
        s.advance_clock(-(DAY + 1))
    t.ok(st4 == 200 and "idempotent-replayed" not in h4, "a key older than 24 h is gone", (st4, h4))

    # A call still running holds its key: 409, then the replay.
    s.hang("POST /v1/checkout/sessions", 0.6)
    out = parallel(2, lambda i: (time.sleep(0.2 * i),
                                 s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-3"))[1])
    got = sorted((st, (b.get("error") or {}).get("code")) for st, _, b in out)
    t.eq(got, [(200, None), (409, "idempotency_key_in_use")],
         "a retry while the first call runs: 409 idempotency_key_in_use")
    first = [b for st, _, b in out if st == 200][0]
    st, h, again = s.api("POST", "/v1/checkout/sessions", p, idempotency_key="idem-3")
    t.ok(st == 200 and again == first and h.get("idempotent-replayed") == "true",
         "once it ended, the retry gets its answer replayed", (st, h))


def test_session_lifecycle():
    cs = create()
    st, _, got = s.api("GET", "/v1/checkout/sessions/" + cs["id"])
    t.ok(st == 200 and got == cs, "GET /v1/checkout/sessions/ID: the session as created", got)
    t.ok(cs["id"].startswith("cs_test_") and cs["object"] == "checkout.session" and cs["status"] == "open"
         and cs["payment_status"] == "unpaid" and cs["payment_intent"] is None
         and cs["url"] == "%s/pay/%s" % (s.url, cs["id"]) and cs["expires_at"] == cs["created"] + DAY
         and cs["success_url"].endswith("{CHECKOUT_SESSION_ID}"),
         "a new session: cs_test_ id, open, unpaid, no payment intent, the checkout page's url, 24 h",
         cs)
    n = len(rx.got)
    st, _, ex = s.api("POST", "/v1/checkout/sessions/%s/expire" % cs["id"])
    t.ok(st == 200 and ex["status"] == "expired" and ex["url"] is None, "expire: open -> expired, no url", ex)
    t.ok(s.flush() and [e["type"] for e, _, _ in rx.events()[n:]] == ["checkout.session.expired"],
         "expiring sends checkout.session.expired", rx.events()[n:])
    t.eq(err(s.api("POST", "/v1/checkout/sessions/%s/expire" % cs["id"])), (400, "invalid_request_error", None),
         "expiring a session that is not open: 400")
    t.eq(s.api("GET", "/v1/checkout/sessions/" + cs["id"])[2]["status"], "expired", "GET shows it expired")
    t.eq(err(s.api("GET", "/v1/checkout/sessions/cs_test_nope")), (404, "invalid_request_error",
                                                                  "resource_missing"),
         "an unknown session: 404 resource_missing")
    st, h, body = s.pay(cs["id"])
    t.ok(st == 410 and "expired" in body, "the checkout page of an expired session takes no payment", st)

    # The list: newest first, created[gte], limit, starting_after. The
    # three are made 100 s ahead, apart from the sessions made before.
    s.advance_clock(100)
    try:
        since = s.now()
        made = [create(client_reference_id="list-%d" % i)["id"] for i in range(3)]
    finally:
        s.advance_clock(-100)
    window = {"gte": since, "lt": since + 50}
    st, _, page1 = s.api("GET", "/v1/checkout/sessions", {"created": window, "limit": 2})
    t.ok(st == 200 and page1["object"] == "list" and [x["id"] for x in page1["data"]] == made[::-1][:2]
         and page1["has_more"], "list: newest first, limit 2, has_more", page1)
    _, _, page2 = s.api("GET", "/v1/checkout/sessions",
                        {"created": window, "limit": 2, "starting_after": page1["data"][-1]["id"]})
    t.ok([x["id"] for x in page2["data"]] == made[:1] and not page2["has_more"],
         "list: starting_after gives the rest", page2)
    _, _, later = s.api("GET", "/v1/checkout/sessions", {"created": {"gt": since + 3 * DAY}})
    t.eq(later["data"], [], "list: created[gt] beyond every session finds nothing")


def test_pay():
    cs = create()
    st, h, page = s.api("GET", "/pay/" + cs["id"], key=False)
    t.ok(st == 200 and "<title>Stand-in Checkout</title>" in page and "150.00 GBP" in page
         and re.search(r'<button id="pay" type="submit">Pay</button>', page)
         and re.search(r'<a id="cancel" href="%s">Back</a>' % re.escape(cs["cancel_url"]), page)
         and 'value="ada@bakery.example"' in page and "<script" not in page
         and re.search(r'<form method="post" action="/pay/%s">' % cs["id"], page),
         "the checkout page: title, amount, email filled in, a plain form with Pay, a Back link", page)
    n = len(rx.got)
    st, h, _ = s.pay(cs["id"])
    arrived = rx.events()[n:]
    want = cs["success_url"].replace("{CHECKOUT_SESSION_ID}", cs["id"])
    t.ok(st == 303 and h.get("location") == want, "Pay: 303 to success_url with the session's id", (st, h))
    t.eq([e["type"] for e, _, _ in arrived], ["checkout.session.completed"],
         "the webhook arrived before the redirect")
    if not arrived:
        return
    ev, hs, raw = arrived[0]
    t.eq(verify(hs.get("stripe-signature"), raw), True, "its Stripe-Signature verifies (HMAC-SHA256 of t.body)")
    t.ok(verify(hs.get("stripe-signature"), raw, secret="whsec_other") is not True,
         "and does not with another secret")
    t.ok(hs.get("content-type", "").startswith("application/json") and rx.got[n][0] == "/hooks/stripe",
         "JSON POSTed to the webhook URL's path", hs)
    obj = ev["data"]["object"]
    t.ok(ev["id"].startswith("evt_") and ev["object"] == "event" and ev["api_version"] == "2024-06-20"
         and ev["livemode"] is False and abs(ev["created"] - time.time()) < 60
         and obj["id"] == cs["id"] and obj["status"] == "complete" and obj["payment_status"] == "paid"
         and obj["payment_intent"].startswith("pi_") and obj["metadata"] == {"order_id": "12"},
         "the event: checkout.session.completed, the session complete and paid with its payment intent", ev)
    got = s.api("GET", "/v1/checkout/sessions/" + cs["id"], {"expand": ["payment_intent.latest_charge"]})[2]
    pi = got["payment_intent"]
    t.ok(got["status"] == "complete" and pi["status"] == "succeeded" and pi["amount"] == 15000
         and pi["metadata"] == {"order_id": "12"} and pi["latest_charge"]["metadata"] == {"order_id": "12"}
         and pi["latest_charge"]["payment_intent"] == pi["id"],
         "the PaymentIntent and its Charge carry payment_intent_data[metadata] (expand works)", got)
    t.eq(s.api("GET", "/v1/payment_intents/" + pi["id"])[2]["latest_charge"], pi["latest_charge"]["id"],
         "GET /v1/payment_intents/ID")
    n = len(rx.got)
    st, _, _ = s.pay(cs["id"])
    t.ok(st == 410 and s.flush() and len(rx.got) == n, "paying a completed session again: refused, no event",
         st)

    s.decline("pay")
    cs2 = create()
    st, _, page = s.pay(cs2["id"])
    t.ok(st == 402 and 'id="error"' in page and "declined" in page and s.flush() and len(rx.got) == n
         and s.sessions[cs2["id"]]["status"] == "open",
         "a declined card: the page says so, no event, the session stays open", (st, page))
    t.eq(s.pay(cs2["id"])[0], 303, "the next try pays")


def test_refunds():
    cs, pi = paid_session()
    ch = s.payment_intents[pi]["latest_charge"]
    n = len(rx.got)
    st, h, re1 = s.api("POST", "/v1/refunds", {"payment_intent": pi, "amount": 5000,
                                               "reason": "requested_by_customer",
                                               "metadata": {"order_id": "12"}}, idempotency_key="refund-1")
    t.ok(st == 200 and re1["id"].startswith("re_") and re1["object"] == "refund" and re1["amount"] == 5000
         and re1["status"] == "succeeded" and re1["payment_intent"] == pi and re1["charge"] == ch
         and re1["currency"] == "gbp" and re1["metadata"] == {"order_id": "12"},
         "a partial refund: a succeeded Refund object", re1)
    s.flush()
    got = rx.events()[n:]
    t.eq(sorted(e["type"] for e, _, _ in got), ["charge.refunded", "refund.created"],
         "it sends charge.refunded and refund.created")
    charge = [e for e, _, _ in got if e["type"] == "charge.refunded"]
    c = charge[0]["data"]["object"] if charge else {}
    t.ok(c.get("object") == "charge" and c.get("id") == ch and c.get("amount_refunded") == 5000
         and c.get("refunded") is False and c.get("payment_intent") == pi
         and c.get("metadata") == {"order_id": "12"} and "refunds" not in c,
         "charge.refunded: the Charge with amount_refunded and metadata, without a refunds list "
         "(API 2022-11-15 on)", c)
    t.ok(all(verify(hs.get("stripe-signature"), raw) is True for _, hs, raw in got), "both signed")
    lst = s.api("GET", "/v1/refunds", {"payment_intent": pi})[2]
    t.eq([r["id"] for r in lst["data"]], [re1["id"]], "GET /v1/refunds?payment_intent= lists it")
    st, _, e = s.api("POST", "/v1/refunds", {"payment_intent": pi, "amount": 10001})
    t.eq(err((st, _, e)), (400, "invalid_request_error", "amount_too_large"),
         "more than what is left: 400 amount_too_large")
    st, _, re2 = s.api("POST", "/v1/refunds", {"payment_intent": pi})
    t.ok(st == 200 and re2["amount"] == 10000, "no amount: the rest", re2)
    t.eq(err(s.api("POST", "/v1/refunds", {"payment_intent": pi, "amount": 1})),
         (400, "invalid_request_error", "charge_already_refunded"), "once all is back: charge_already_refunded")
    t.eq(err(s.api("POST", "/v1/refunds", {"payment_intent": "pi_nope"})),
         (404, "invalid_request_error", "resource_missing"), "an unknown PaymentIntent: 404")
    t.eq(len(s.api("GET", "/v1/refunds", {"payment_intent": pi})[2]["data"]), 2,
         "two refunds in all")
    ch_full = s.api("GET", "/v1/charges/" + ch, {"expand": ["refunds"]})[2]
    t.ok(ch_full["amount_refunded"] == 15000 and ch_full["refunded"] is True
         and len(ch_full["refunds"]["data"]) == 2, "GET /v1/charges/ID?expand[]=refunds", ch_full)

    # Declined, then failed and pending refunds.
    cs, pi = paid_session()
    s.decline("refund")
    e = s.api("POST", "/v1/refunds", {"payment_intent": pi}, idempotency_key="refund-declined")
    t.eq(err(e), (402, "card_error", "card_declined"), "a declined refund: 402 card_declined")
    e2 = s.api("POST", "/v1/refunds", {"payment_intent": pi}, idempotency_key="refund-declined")
    t.ok(e2[0] == 402 and e2[1].get("idempotent-replayed") == "true",
         "it is saved under its key, as Stripe saves errors once a call began", e2)
    s.set_refund_status("failed")
    n = len(rx.got)
    try:
        st, _, ref = s.api("POST", "/v1/refunds", {"payment_intent": pi, "amount": 4000})
    finally:
        s.set_refund_status("succeeded")
    s.flush()
    types = [e["type"] for e, _, _ in rx.events()[n:]]
    last = [e["data"]["object"] for e, _, _ in rx.events()[n:] if e["type"] == "refund.failed"]
    t.ok(st == 200 and ref["status"] == "pending" and types[-2:] == ["refund.updated", "refund.failed"]
         and last and last[0]["status"] == "failed" and last[0].get("failure_reason")
         and s.charges[s.payment_intents[pi]["latest_charge"]]["amount_refunded"] == 0,
         "a refund that fails: answered pending, then refund.updated and refund.failed; nothing counted "
         "as refunded", (st, ref, types))
    s.set_refund_status("pending")
    try:
        ref = s.api("POST", "/v1/refunds", {"payment_intent": pi})[2]
    finally:
        s.set_refund_status("succeeded")
    s.flush()
    n = len(rx.got)
    done = s.settle_refund(ref["id"], "succeeded")
    s.flush()
    upd = rx.events()[n:]
    t.ok(ref["status"] == "pending" and done["status"] == "succeeded" and [e["type"] for e, _, _ in upd]
         == ["refund.updated"] and upd[0][0]["data"]["previous_attributes"] == {"status": "pending"},
         "a pending refund settled: refund.updated with previous_attributes", upd)

    # A dispute blocks refunds until it is won.
    cs, pi = paid_session()
    n = len(rx.got)
    du = s.dispute(pi)
    s.flush()
    ev = rx.events()[n:]
    t.ok([e["type"] for e, _, _ in ev] == ["charge.dispute.created"] and du["id"].startswith("du_")
         and ev[0][0]["data"]["object"]["payment_intent"] == pi
         and ev[0][0]["data"]["object"]["status"] == "needs_response" and ev[0][0]["data"]["object"]["amount"]
         == 15000, "a dispute: charge.dispute.created with the Dispute", ev)
    t.eq(err(s.api("POST", "/v1/refunds", {"payment_intent": pi})),
         (400, "invalid_request_error", "charge_disputed"), "refunding a disputed charge: 400 charge_disputed")
    s.close_dispute(du["id"], won=True)
    s.flush()
    closed = rx.events("charge.dispute.closed")
    t.ok(closed and closed[-1][0]["data"]["object"]["status"] == "won", "closed: charge.dispute.closed, won")


def test_async_payment():
    s.next_payment_async()
    cs = create()
    n = len(rx.got)
    t.eq(s.pay(cs["id"])[0], 303, "an async payment redirects too")
    ev = rx.events()[n:]
    obj = ev[0][0]["data"]["object"] if ev else {}
    t.ok(len(ev) == 1 and ev[0][0]["type"] == "checkout.session.completed" and obj["payment_status"] == "unpaid",
         "checkout.session.completed with payment_status unpaid", ev)
    t.eq(err(s.api("POST", "/v1/refunds", {"payment_intent": obj.get("payment_intent")}))[0], 400,
         "nothing to refund before it is paid")
    s.complete_async_payment(cs["id"], succeeded=True)
    s.flush()
    ev = rx.events()[n + 1:]
    t.ok([e["type"] for e, _, _ in ev] == ["checkout.session.async_payment_succeeded"]
         and ev[0][0]["data"]["object"]["payment_status"] == "paid",
         "then checkout.session.async_payment_succeeded, paid", ev)
    s.next_payment_async()
    cs = create()
    s.pay(cs["id"])
    s.complete_async_payment(None, succeeded=False)
    s.flush()
    t.eq(rx.events()[-1][0]["type"], "checkout.session.async_payment_failed",
         "or checkout.session.async_payment_failed")


def test_failures():
    n = len(s.sessions)
    s.fail("POST /v1/checkout/sessions", 500, count=2)
    a = s.api("POST", "/v1/checkout/sessions", session_params())
    b = s.api("POST", "/v1/checkout/sessions", session_params(), idempotency_key="fail-1")
    c = s.api("POST", "/v1/checkout/sessions", session_params(), idempotency_key="fail-1")
    t.ok(err(a) == err(b) == (500, "api_error", None) and a[1].get("stripe-should-retry") == "true",
         "fail(500, count=2): two 500 api_error", (a, b))
    t.ok(c[0] == 200 and "idempotent-replayed" not in c[1] and len(s.sessions) == n + 1,
         "and its end: the retry with the same key runs (the injected 500 was not saved)", c)
    t.eq(s.api("GET", "/v1/checkout/sessions")[0], 200, "other endpoints were not touched")
    s.fail("*", 503, count=None)
    codes = [s.api("GET", "/v1/checkout/sessions")[0], s.api("POST", "/v1/refunds", {"payment_intent": "x"})[0]]
    s.clear_failures()
    t.eq(codes + [s.api("GET", "/v1/checkout/sessions")[0]], [503, 503, 200],
         "fail('*', count=None) until clear_failures")
    s.fail("POST /v1/checkout/sessions", 500, save=True)
    d = s.api("POST", "/v1/checkout/sessions", session_params(), idempotency_key="fail-2")
    e = s.api("POST", "/v1/checkout/sessions", session_params(), idempotency_key="fail-2")
    t.ok(d[0] == e[0] == 500 and e[1].get("idempotent-replayed") == "true",
         "fail(save=True): Stripe saved the 500 under the key and replays it", (d, e))
    s.fail("POST /v1/refunds", 0)
    try:
        s.api("POST", "/v1/refunds", {"payment_intent": "pi_x"})
        dropped = False
    except (http.client.HTTPException, OSError):
        dropped = True
    t.ok(dropped, "fail(status=0): the connection closes with no answer")
    s.fail("GET /v1/checkout/sessions", 429)
    t.eq(err(s.api("GET", "/v1/checkout/sessions")), (429, "invalid_request_error", "rate_limit"),
         "fail(429): rate_limit")
    s.hang("GET /v1/checkout/sessions", 1.0)
    t0 = time.time()
    try:
        s.api("GET", "/v1/checkout/sessions", timeout=0.3)
        timed_out = False
    except OSError:
        timed_out = True
    t.ok(timed_out and time.time() - t0 < 0.9, "hang: a client with a short timeout gives up")
    time.sleep(0.8)
    t.eq(s.requests[-1]["status"], 200, "the hung call itself ended and answered")


def test_webhook_control():
    s.set_hold_webhooks(True)
    try:
        n = len(rx.got)
        a, b = create(), create()
        s.pay(a["id"])
        s.pay(b["id"])
        held = s.pending_events()
        t.ok(len(held) == 2 and len(rx.got) == n
             and [e["data"]["object"]["id"] for e in held] == [a["id"], b["id"]],
             "hold_webhooks: Pay redirects at once, the events wait, in order", held)
        out = s.deliver_all(order=reversed)
        got = [e["data"]["object"]["id"] for e, _, _ in rx.events()[n:]]
        t.ok(got == [b["id"], a["id"]] and [st for _, st, _ in out] == [200, 200] and not s.pending_events(),
             "deliver_all(order=reversed): delivered last first", (got, out))
        st, body = s.redeliver(held[0]["id"])
        again = rx.events()[-1][0]
        t.ok(st == 200 and again["id"] == held[0]["id"] and again == held[0],
             "redeliver: the same event (same id) once more", again)
    finally:
        s.set_hold_webhooks(False)
    n = len(s.deliveries)
    rx.answers = [500]
    s.control({"action": "configure", "auto_retry": True, "retry_delay": 0.1})
    try:
        create_paid = create()
        s.pay(create_paid["id"])
        s.flush()
    finally:
        s.configure(auto_retry=False)
    tries = [(d["attempt"], d["status"]) for d in s.deliveries[n:]]
    t.eq(tries, [(1, 500), (2, 200)], "auto_retry (set by control configure): a 500 is retried, then the 200 "
         "ends it")
    try:
        s.control({"action": "configure", "secret_key": "sk_live_x"})
        refused = False
    except ValueError:
        refused = True
    t.ok(refused and s.secret_key == KEY, "configure refuses what is not a setting")
    rx.answers = [500]
    create_paid = create()
    s.pay(create_paid["id"])
    s.flush()
    t.eq([(d["attempt"], d["status"]) for d in s.deliveries[n + 2:]], [(1, 500)],
         "without auto_retry (the default) a 500 stays a 500, recorded")
    ev = s.event("charge.refunded", {"id": "ch_other", "object": "charge", "metadata": {}})
    st, _ = s.send_event(ev, signature="t=1,v1=00")
    hs = rx.got[-1][1]
    t.ok(st == 200 and hs["stripe-signature"] == "t=1,v1=00" and s.deliveries[-1]["signature"] == "t=1,v1=00",
         "send_event: any event with the signature the test gives", hs)
    st, _ = s.send_event(ev, signature=False, body=b"{}")
    t.ok("stripe-signature" not in rx.got[-1][1] and rx.got[-1][2] == b"{}", "or no signature and any body")

    two = StripeStandin(webhook_secret="whsec_new,whsec_old")
    h = two.sign(b'{"id": "evt_1"}', t=1700000000)
    t.ok(h.count("v1=") == 2 and verify(h, b'{"id": "evt_1"}', "whsec_new", now=1700000000) is True
         and verify(h, b'{"id": "evt_1"}', "whsec_old", now=1700000000) is True,
         "two secrets (a rolled secret): one v1 each, each verifies", h)
    t.eq(s.sign(b"x", t=1700000000), "t=1700000000,v1=" + hmac.new(SECRET.encode(), b"1700000000.x",
                                                                      hashlib.sha256).hexdigest(),
         "sign: t=T,v1=HMAC-SHA256(whole whsec_ string, 'T.body')")


def test_parallel():
    n = len(s.sessions)
    out = parallel(20, lambda i: s.api("POST", "/v1/checkout/sessions",
                                       session_params(client_reference_id="par-%d" % i),
                                       idempotency_key="par-%d" % i))
    ids = {b["id"] for st, _, b in out if st == 200}
    t.ok(len(ids) == 20 and len(s.sessions) == n + 20, "20 parallel creates: 20 sessions", out[:2])
    out = parallel(10, lambda i: s.api("POST", "/v1/checkout/sessions",
                                       session_params(client_reference_id="same"), idempotency_key="par-same"))
    oks = [b for st, _, b in out if st == 200]
    others = {(st, b["error"].get("code")) for st, _, b in out if st != 200}
    t.ok(len(s.sessions) == n + 21 and oks and all(b == oks[0] for b in oks)
         and others <= {(409, "idempotency_key_in_use")},
         "10 parallel calls with one key: one session, the same answer (or 409 while it runs)", (oks, others))
    cs = create()
    before = len(rx.got)
    out = parallel(5, lambda i: s.pay(cs["id"])[0])
    s.flush()
    t.ok(sorted(out) == [303, 410, 410, 410, 410] and len(rx.got) == before + 1,
         "5 parallel Pay presses: one payment, one event", out)


def test_program():
    p = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       "stripe_standin.py"),
                          "--port", "0", "--secret-key", KEY, "--webhook-url", rx.url,
                          "--webhook-secret", SECRET],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        m = re.fullmatch(r"listening (http://127\.0\.0\.1:(\d+))", line)
        t.ok(m, "run as a program it prints one line 'listening URL'", line)
        if not m:
            return

        def call(method, path, body=None, headers=None):
            c = http.client.HTTPConnection("127.0.0.1", int(m.group(2)), timeout=10)
            try:
                c.request(method, path, body=body, headers=headers or {})
                r = c.getresponse()
                return r.status, json.loads(r.read() or b"null")
            finally:
                c.close()
        auth = {"Authorization": "Bearer " + KEY}
        ctl = {"Content-Type": "application/json"}
        st, out = call("POST", "/_control", json.dumps({"action": "fail", "endpoint": "GET /v1/checkout/sessions",
                                                        "status": 503, "count": 1}), ctl)
        t.eq(st, 200, "POST /_control fail: accepted")
        t.eq([call("GET", "/v1/checkout/sessions", headers=auth)[0] for _ in range(2)], [503, 200],
             "the failure strikes once")
        st, out = call("POST", "/v1/checkout/sessions", encode_form(session_params()),
                       dict(auth, **{"Content-Type": "application/x-www-form-urlencoded"}))
        t.ok(st == 200 and out["url"] == "%s/pay/%s" % (m.group(1), out["id"]), "it creates sessions", out)
        st, state = call("POST", "/_control", json.dumps({"action": "state"}), ctl)
        t.ok(st == 200 and [x["id"] for x in state["result"]["sessions"]] == [out["id"]]
             and len(state["result"]["requests"]) == 3, "POST /_control state: its sessions and requests", state)
        st, e = call("POST", "/_control", json.dumps({"action": "nope"}), ctl)
        t.ok(st == 400 and "unknown action" in e["error"], "an unknown action: 400", e)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = p.wait()
    t.eq(rc, 0, "SIGTERM stops it, exit 0")


def test_sdk():
    """The official stripe npm package agrees with the stand-in's
    signatures both ways."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        t.missing("signatures equal to the official stripe package's", "node or npm")
        return
    deps, why = node_deps()
    if not t.ok(deps is not None, "the npm packages of tests/browser are installed (npm ci)", why):
        return
    payloads = ['{"id": "evt_1", "object": "event"}',
                json.dumps({"id": "evt_2", "data": {"object": {"name": "Zo\u00eb \u2014 caf\u00e9"}}},
                           ensure_ascii=False)]
    for i, payload in enumerate(payloads):
        ts = 1700000000 + i
        t.eq(s.sign(payload.encode("utf-8"), t=ts), sdk_header(deps, payload, SECRET, ts),
             "sign() equals stripe.webhooks.generateTestHeaderString (payload %d%s)"
             % (i + 1, ", UTF-8" if i else ""))
    cs = create(metadata={"order_id": "12", "note": "Zo\u00eb"})
    n = len(rx.got)
    s.pay(cs["id"])
    _, hs, raw = rx.got[n]
    ok, msg = sdk_verify(deps, raw, hs["stripe-signature"], SECRET)
    t.ok(ok and msg == "ok " + json.loads(raw)["id"],
         "stripe.webhooks.constructEvent accepts a delivery of the stand-in", msg)
    ok, msg = sdk_verify(deps, raw.replace(b'"paid"', b'"unpaid"', 1), hs["stripe-signature"], SECRET)
    t.ok(not ok and "signature" in msg.lower(), "and refuses it with one word changed", msg)
    ok, msg = sdk_verify(deps, raw, hs["stripe-signature"], "whsec_other")
    t.ok(not ok, "or with another secret", msg)
    old = s.sign(raw, t=int(time.time()) - 600)
    ok, msg = sdk_verify(deps, raw, old, SECRET)
    t.ok(not ok and "tolerance" in msg.lower(), "or signed 10 minutes ago", msg)


try:
    for fn in (test_auth, test_form_parsing, test_idempotency, test_session_lifecycle, test_pay, test_refunds,
               test_async_payment, test_failures, test_webhook_control, test_parallel, test_program, test_sdk):
        t.run(fn)
    t.ok(all(d["error"] is None for d in s.deliveries), "every delivery reached the receiver",
         [d for d in s.deliveries if d["error"]])
finally:
    s.stop()
    rx.stop()
sys.exit(t.done())
