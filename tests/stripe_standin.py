#!/usr/bin/env python3
"""stripe_standin: a local stand-in for the part of Stripe's API v1 that
Pick My Brain uses (issue 15), for the tests: no real Stripe is reachable
from the test machines. Standard library only.

It follows Stripe's documentation for API version 2024-06-20: form-encoded
requests with nested fields (`line_items[0][price_data][currency]=gbp`),
JSON answers, errors as `{"error": {"type", "code", "message", "param"}}`,
Bearer authentication, `Idempotency-Key` replay, Checkout Sessions,
PaymentIntents and Charges made by paying, Refunds, Disputes, and signed
webhook events (`Stripe-Signature: t=...,v1=...`). A small HTML page at
`/pay/{session id}` stands in for the hosted Checkout page; its Pay button
completes the session and sends `checkout.session.completed`.

Two ways to use it:

    s = StripeStandin(secret_key="sk_test_x", webhook_url="http://127.0.0.1:N/hooks/stripe",
                      webhook_secret="whsec_x")
    s.start()            # binds 127.0.0.1 on a free port, serves from a thread
    ... s.url ...        # "http://127.0.0.1:NNNN": pmb's stripe_api_url
    s.stop()

    python3 tests/stripe_standin.py --port 0 --secret-key sk_test_x \\
        --webhook-url http://127.0.0.1:N/hooks/stripe --webhook-secret whsec_x
    # prints one line "listening http://127.0.0.1:NNNN"; POST /_control (JSON)
    # steers it (see StripeStandin.control); SIGTERM stops it.

Tests steer it with methods (fail, hang, decline, next_payment_async,
complete_async_payment, set_refund_status, settle_refund, dispute,
close_dispute, forget_idempotency_keys, advance_clock, hold_webhooks,
deliver_all, configure...) and read what happened in `requests` (every
request received) and `deliveries` (every webhook sent, with pmb's
answer).

As in API 2024-06-20, a Charge (in charge.refunded too) has no `refunds`
list unless a GET expands it (Stripe stopped including it in 2022-11-15):
read `amount_refunded`, the refund.* events, or GET /v1/refunds.

Where this differs from Stripe on purpose, it says so: a Checkout Session
takes exactly one line item of quantity 1 (what pmb sends); the minimum
amounts of currencies Stripe does not settle in are approximations; an
injected failure (fail()) happens in front of the idempotency layer unless
save=True (like a load balancer's error, so a retry with the same key goes
through), while a decline, a refused refund or a fail(save=True) happen
inside it and are replayed to a retry with the same key, as Stripe does.
"""
import argparse
import copy
import hashlib
import hmac
import html
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.parse

API_VERSION = "2024-06-20"
DAY = 24 * 3600
# Stripe keeps idempotency keys at least 24 hours.
IDEMPOTENCY_WINDOW = DAY
IDEMPOTENCY_KEY_MAX = 255
BODY_MAX = 1 << 20
WEBHOOK_TIMEOUT = 10
# Stripe's metadata limits: 50 keys, keys of 40 characters, values of 500.
META_KEYS_MAX, META_KEY_MAX, META_VALUE_MAX = 50, 40, 500
CLIENT_REFERENCE_MAX = 200
LIST_LIMIT_MAX = 100

# Currencies: ISO 4217 exponent (Stripe's zero-decimal and three-decimal
# lists) and the minimum charge in minor units. The minimums of the
# currencies Stripe settles in are Stripe's published ones (gbp 0.30,
# usd/eur 0.50, jpy 50...); the others (krw, clp, vnd and the
# three-decimal ones) are this stand-in's approximations of 0.50 USD. Tests may change an
# instance's copy (s.currencies).
CURRENCIES = {
    "usd": (2, 50), "eur": (2, 50), "gbp": (2, 30), "aud": (2, 50), "cad": (2, 50),
    "chf": (2, 50), "nzd": (2, 50), "sgd": (2, 50), "hkd": (2, 400), "dkk": (2, 250),
    "nok": (2, 300), "sek": (2, 300), "pln": (2, 200), "czk": (2, 1500), "huf": (2, 17500),
    "ron": (2, 200), "bgn": (2, 100), "mxn": (2, 1000), "brl": (2, 50), "inr": (2, 50),
    "aed": (2, 200), "thb": (2, 1000), "myr": (2, 200),
    "jpy": (0, 50), "krw": (0, 700), "clp": (0, 500), "vnd": (0, 13000),
    "bhd": (3, 200), "jod": (3, 400), "kwd": (3, 200), "omr": (3, 200), "tnd": (3, 2000),
}
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
ID_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix, n=24):
    """A Stripe-like id: prefix and n random letters and digits."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(n))


def format_amount(amount, currency, exponent):
    """150.00 GBP, 15000 JPY, 1.500 BHD."""
    if exponent == 0:
        return "%d %s" % (amount, currency.upper())
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** exponent)
    return "%s%d.%0*d %s" % (sign, whole, exponent, frac, currency.upper())


# --- the official SDK's signer (node, tests/stripe_sign.mjs) -----------------
SIGN_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stripe_sign.mjs")


def _sdk(args, request):
    p = subprocess.run(["node", SIGN_SCRIPT] + args, input=json.dumps(request), capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def sdk_header(deps, payload, secret, timestamp):
    """The Stripe-Signature header that the official stripe npm package's
    webhooks.generateTestHeaderString({payload, secret, timestamp}) makes.
    deps: the folder of its node_modules (tests/pmbtest.py's node_deps());
    payload: str or UTF-8 bytes. Raises RuntimeError if node fails."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    rc, out, err = _sdk([deps], {"payload": payload, "secret": secret, "timestamp": int(timestamp)})
    if rc != 0 or not out.startswith("t="):
        raise RuntimeError("stripe_sign.mjs failed (%d): %s %s" % (rc, out, err))
    return out


def sdk_verify(deps, payload, header, secret, tolerance=None):
    """Whether the official package's webhooks.constructEvent accepts
    payload with header for secret: (True, "ok EVENT_ID") or (False,
    Stripe's message)."""
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    req = {"payload": payload, "secret": secret, "header": header}
    if tolerance is not None:
        req["tolerance"] = tolerance
    rc, out, err = _sdk(["--verify", deps], req)
    return rc == 0 and out.startswith("ok "), out or err


# --- errors -------------------------------------------------------------
class ApiError(Exception):
    """An answer in Stripe's error format. Whether it is saved under the
    request's Idempotency-Key depends on where it was raised: before the
    endpoint began executing (parameters refused) it is not, after it is."""

    def __init__(self, status, message, type="invalid_request_error", code=None,
                 param=None, decline_code=None, headers=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message}}
        if code is not None:
            self.body["error"]["code"] = code
            self.body["error"]["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
        if param is not None:
            self.body["error"]["param"] = param
        if decline_code is not None:
            self.body["error"]["decline_code"] = decline_code
        self.headers = headers or {}


def invalid(message, code=None, param=None):
    return ApiError(400, message, code=code, param=param)


def missing_param(param):
    return invalid("Missing required param: %s." % param, "parameter_missing", param)


def no_such(kind, ident, param=None):
    return ApiError(404, "No such %s: '%s'" % (kind, ident), code="resource_missing", param=param)


def injected_error(status, code=None, message=None):
    """The error an injected failure answers with: Stripe's type and code
    for the status, unless code or message say otherwise."""
    if status == 402:
        return ApiError(402, message or "Your card was declined.", "card_error",
                        code or "card_declined", decline_code="generic_decline")
    if status == 429:
        return ApiError(429, message or "Request rate limit exceeded. Learn more about rate limits "
                        "here https://stripe.com/docs/rate-limits.", code=code or "rate_limit",
                        headers={"Stripe-Should-Retry": "true"})
    if status >= 500:
        return ApiError(status, message or "An unknown error occurred (stand-in: injected failure).",
                        "api_error", code, headers={"Stripe-Should-Retry": "true"})
    return ApiError(status, message or "Stand-in: injected failure.", code=code)


# --- form encoding (Stripe's nested fields) ------------------------------------
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEG = re.compile(r"\[([^\[\]]*)\]")


def parse_form(text):
    """Parses a form-encoded body or query as Stripe does: `a[b][c]=v` into
    nested dicts, `a[]=v` appended to a list, and a dict whose keys are
    0, 1, 2... into a list (`line_items[0][quantity]=1`), except a
    metadata hash. Raises ApiError (400) on malformed brackets, a field
    given twice, a name used both as a value and as a hash, or bad
    UTF-8."""
    root = {}
    for piece in (text or "").split("&"):
        if piece == "":
            continue
        k, _, v = piece.partition("=")
        try:
            k = urllib.parse.unquote_plus(k, errors="strict")
            v = urllib.parse.unquote_plus(v, errors="strict")
        except UnicodeDecodeError:
            raise invalid("Invalid UTF-8 in the request's parameters.")
        m = _KEY.match(k)
        if not m:
            raise invalid("Invalid parameter name (malformed brackets): %s" % k, param=k)
        segs = [m.group(1)] + _SEG.findall(m.group(2))
        _insert(root, segs, v, k)
    return _listify(root, None)


def _insert(root, segs, value, name):
    cur = root
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "":
            raise invalid("Invalid parameter name (empty brackets inside): %s" % name, param=name)
        if last:
            if seg in cur:
                raise invalid("Received duplicate parameter: %s" % name, param=name)
            cur[seg] = value
        elif segs[i + 1] == "":
            if i + 2 != len(segs):
                raise invalid("Invalid parameter name (empty brackets inside): %s" % name, param=name)
            lst = cur.setdefault(seg, [])
            if not isinstance(lst, list):
                raise invalid("Invalid array: %s is given both as an array and otherwise" % name, param=name)
            lst.append(value)
            return
        else:
            nxt = cur.setdefault(seg, {})
            if not isinstance(nxt, dict):
                raise invalid("Invalid hash: %s is given both as a value and as a hash" % name, param=name)
            cur = nxt


def _listify(node, key):
    if isinstance(node, list):
        return [_listify(x, None) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v, k) for k, v in node.items()}
    if key != "metadata" and out and all(re.fullmatch(r"0|[1-9][0-9]{0,5}", k) for k in out) \
            and sorted(int(k) for k in out) == list(range(len(out))):
        return [out[str(i)] for i in range(len(out))]
    return out


def encode_form(params, prefix=None):
    """The form encoding of nested params, as Stripe's libraries send it:
    dicts as a[b], lists as a[0], booleans as true/false, None left out."""
    pairs = []

    def walk(v, name):
        if v is None:
            return
        if isinstance(v, dict):
            for k, x in v.items():
                walk(x, "%s[%s]" % (name, k) if name else k)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, "%s[%d]" % (name, i))
        elif isinstance(v, bool):
            pairs.append((name, "true" if v else "false"))
        else:
            pairs.append((name, str(v)))
    walk(params, prefix)
    return urllib.parse.urlencode(pairs)


# --- parameter schemas ------------------------------------------------------
# A schema is STR, INT, META (a metadata hash), RANGE (an integer or a
# hash of gt/gte/lt/lte), a dict of field schemas, or a one-element list
# (an array of that schema). Unknown fields are refused as Stripe does.
STR, INT, META, RANGE = "string", "integer", "metadata", "range"


def param_name(path):
    return path[0] + "".join("[%s]" % p for p in path[1:])


def check(value, schema, path):
    """value checked against schema; returns it typed (INT as int, lists
    as lists). Raises ApiError (400) as Stripe does."""
    name = param_name(path) if path else ""
    if schema == STR:
        if not isinstance(value, str):
            raise invalid("Invalid string: %s" % name, param=name)
        if value == "":
            raise invalid("You passed an empty string for '%s'. We assume empty values are an attempt "
                          "to unset a parameter; however '%s' cannot be unset. You should remove '%s' "
                          "from your request or supply a non-empty value." % (name, name, name),
                          "parameter_invalid_empty", name)
        return value
    if schema == INT:
        if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]{1,18}", value):
            raise invalid("Invalid integer: %s" % (value if isinstance(value, str) else name),
                          "parameter_invalid_integer", name)
        return int(value)
    if schema == META:
        if value == "":
            return {}
        if not isinstance(value, dict) or any(not isinstance(v, str) for v in value.values()):
            raise invalid("Invalid hash", param=name)
        out = {k: v for k, v in value.items() if v != ""}
        if len(out) > META_KEYS_MAX:
            raise invalid("Invalid metadata: metadata can have up to %d keys" % META_KEYS_MAX, param=name)
        for k, v in out.items():
            if len(k) > META_KEY_MAX:
                raise invalid("Invalid metadata: keys can be up to %d characters long" % META_KEY_MAX,
                              param=name)
            if len(v) > META_VALUE_MAX:
                raise invalid("Invalid metadata: values can be up to %d characters long" % META_VALUE_MAX,
                              param=name)
        return out
    if schema == RANGE:
        if isinstance(value, str):
            return check(value, INT, path)
        return check(value, {"gt": INT, "gte": INT, "lt": INT, "lte": INT}, path)
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise invalid("Invalid array", param=name)
        return [check(v, schema[0], path + [str(i)]) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        raise invalid("Invalid object", param=name)
    out = {}
    for k, v in value.items():
        if k not in schema:
            full = param_name(path + [k])
            raise invalid("Received unknown parameter: %s" % full, "parameter_unknown", full)
        out[k] = check(v, schema[k], path + [k])
    return out


def dig(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


LIST_PARAMS = {"limit": INT, "starting_after": STR, "ending_before": STR, "created": RANGE,
               "expand": [STR]}
SCHEMAS = {
    "POST /v1/checkout/sessions": {
        "mode": STR,
        "line_items": [{
            "price_data": {"currency": STR, "unit_amount": INT,
                           "product_data": {"name": STR, "description": STR, "metadata": META}},
            "quantity": INT}],
        "success_url": STR, "cancel_url": STR, "customer_email": STR, "client_reference_id": STR,
        "metadata": META, "payment_intent_data": {"metadata": META, "description": STR,
                                                  "receipt_email": STR},
        "expires_at": INT, "locale": STR, "payment_method_types": [STR], "submit_type": STR,
        "expand": [STR],
    },
    "GET /v1/checkout/sessions": dict(LIST_PARAMS, payment_intent=STR, status=STR),
    "GET /v1/checkout/sessions/:id": {"expand": [STR]},
    "POST /v1/checkout/sessions/:id/expire": {"expand": [STR]},
    "POST /v1/refunds": {"payment_intent": STR, "charge": STR, "amount": INT, "reason": STR,
                         "metadata": META, "expand": [STR]},
    "GET /v1/refunds": dict(LIST_PARAMS, payment_intent=STR, charge=STR),
    "GET /v1/refunds/:id": {"expand": [STR]},
    "GET /v1/payment_intents/:id": {"expand": [STR]},
    "GET /v1/charges/:id": {"expand": [STR]},
    "GET /v1/events": dict(LIST_PARAMS, type=STR, types=[STR]),
    "GET /v1/events/:id": {"expand": [STR]},
}
# The routes: method, path pattern (":id" one segment), handler. The
# pattern with its method ("POST /v1/refunds") names the endpoint for
# failure injection and in s.requests.
ROUTES = [
    ("POST", "/v1/checkout/sessions", "_create_session"),
    ("GET", "/v1/checkout/sessions", "_list_sessions"),
    ("GET", "/v1/checkout/sessions/:id", "_get_session"),
    ("POST", "/v1/checkout/sessions/:id/expire", "_expire_session"),
    ("POST", "/v1/refunds", "_create_refund"),
    ("GET", "/v1/refunds", "_list_refunds"),
    ("GET", "/v1/refunds/:id", "_get_refund"),
    ("GET", "/v1/payment_intents/:id", "_get_payment_intent"),
    ("GET", "/v1/charges/:id", "_get_charge"),
    ("GET", "/v1/events", "_list_events"),
    ("GET", "/v1/events/:id", "_get_event"),
    ("GET", "/pay/:id", "_pay_page"),
    ("POST", "/pay/:id", "_pay"),
]


def match_route(method, path):
    """(endpoint name, handler name, path ids) or (None, None, None)."""
    parts = path.split("/")
    for m, pattern, handler in ROUTES:
        pp = pattern.split("/")
        if m != method or len(pp) != len(parts):
            continue
        ids = []
        for a, b in zip(pp, parts):
            if a == ":id":
                if b == "":
                    break
                ids.append(b)
            elif a != b:
                break
        else:
            return "%s %s" % (m, pattern), handler, ids
    return None, None, None


def check_endpoint(endpoint):
    """Raises ValueError unless endpoint names a route ("POST
    /v1/refunds") or is "*", so that a misspelt failure cannot wait
    unused."""
    names = ["%s %s" % (m, p) for m, p, _ in ROUTES]
    if endpoint != "*" and endpoint not in names:
        raise ValueError("unknown endpoint %r; known: *, %s" % (endpoint, ", ".join(names)))


class Call:
    """One API request on its way through the stand-in."""

    def __init__(self, standin, method, path, endpoint, ids, params, headers, idem_key):
        self.s = standin
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.ids = ids
        self.params = params
        self.headers = headers
        self.idempotency_key = idem_key
        self.request_id = new_id("req_", 14)
        self.events = []        # events to send once the answer is out
        self.began = False      # the endpoint began executing (results saved)

    def begin(self):
        """Marks the parameters accepted and the endpoint's execution
        begun: from here errors are saved under the Idempotency-Key. An
        injected failure with save=True strikes here."""
        self.began = True
        spec = self.s._take_failure(self.endpoint, "fail", saved=True)
        if spec is not None:
            raise injected_error(spec["status"], spec.get("code"), spec.get("message"))

    def emit(self, type, obj, previous=None):
        self.events.append(self.s.event(type, obj, previous, request=(self.request_id, self.idempotency_key)))


# --- the stand-in -------------------------------------------------------------
class StripeStandin:
    """A local, stateful stand-in for Stripe's API v1 (see the module's
    comment). Every public method is safe to call from any thread."""

    def __init__(self, secret_key="sk_test_standin", webhook_url=None, webhook_secret="whsec_standin",
                 host="127.0.0.1", port=0, verbose=False):
        self.secret_key = secret_key
        self.webhook_url = webhook_url
        # One secret or several (a rolled secret: each signs, one v1 each).
        self.webhook_secret = webhook_secret
        self.host, self.port = host, port
        self.verbose = verbose
        self.api_version = API_VERSION
        self.currencies = dict(CURRENCIES)
        self.lock = threading.RLock()
        self.sessions, self.payment_intents, self.charges = {}, {}, {}
        self.refunds, self.disputes = {}, {}
        self.events = []            # every event made, oldest first
        self.requests = []          # every request received (but /_control)
        self.deliveries = []        # every webhook delivery attempt
        self._events_by_id = {}
        self._seq = {}              # id -> creation order, for lists
        self._next_seq = 0
        self._session_items = {}    # cs id -> (line items, payment_intent_data)
        self._idem = {}             # key -> saved answer
        self._idem_busy = set()
        self._failures = []
        self._declines = {"pay": 0, "refund": 0}
        self._async_next = 0
        self.refund_status = "succeeded"
        self.clock_offset = 0
        # Webhooks: sent in order by one thread after the API answer is
        # out (the Pay button waits for its event before redirecting);
        # hold_webhooks queues them for the test instead.
        self.hold_webhooks = False
        self.auto_retry = False
        self.retry_delay = 0.2
        self.retry_max = 3
        self.webhook_timeout = WEBHOOK_TIMEOUT
        # API 2024-06-20 sends a Charge without its refunds list (Stripe
        # stopped expanding it in 2022-11-15); True adds it to events.
        self.charge_refunds_in_events = False
        self._held = []
        self._queue = []            # (due, n, event, attempt, gate)
        self._queue_n = 0
        self._sending = 0
        self._first_done = set()    # event ids whose first attempt ended
        self._cond = threading.Condition(self.lock)
        self._server = None
        self._threads = []
        self._stopping = False

    # --- life ---------------------------------------------------------------
    def start(self):
        """Binds host:port (0: a free port) and serves from a thread;
        returns self."""
        standin = self

        class Handler(_Handler):
            s = standin
        self._server = _Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._stopping = False
        for target in (self._server.serve_forever, self._deliver_loop):
            th = threading.Thread(target=target, daemon=True)
            th.start()
            self._threads.append(th)
        return self

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        """Stops serving and sending; events still queued are dropped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for th in self._threads:
            th.join(timeout=self.webhook_timeout + 5)
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def now(self):
        """Unix seconds as the stand-in sees them (advance_clock moves it)."""
        return int(time.time()) + self.clock_offset

    def _new_seq(self, ident):
        self._next_seq += 1
        self._seq[ident] = self._next_seq

    # --- steering (also through POST /_control) -------------------------------
    def fail(self, endpoint="*", status=500, count=1, code=None, message=None, save=False):
        """The next count calls of endpoint ("POST /v1/refunds", "GET
        /v1/checkout/sessions/:id", "POST /pay/:id", or "*" for every /v1
        call; count None: until clear_failures) answer status with
        Stripe's error for it (402 card_declined, 429 rate_limit, 5xx
        api_error) and change nothing. status 0 closes the connection with
        no answer. save=False: the failure strikes in front of Stripe's
        idempotency layer, so a retry with the same key runs the call;
        save=True: it strikes once the call began, so Stripe saves it
        under the key and a retry gets it again."""
        check_endpoint(endpoint)
        with self.lock:
            self._failures.append({"kind": "fail", "endpoint": endpoint, "status": int(status),
                                   "count": count, "code": code, "message": message, "save": bool(save)})

    def hang(self, endpoint="*", seconds=5.0, count=1, when="before"):
        """The next count calls of endpoint wait seconds: when="before"
        they wait and then run (the Idempotency-Key is held meanwhile: a
        retry with it gets 409 idempotency_key_in_use), when="after" they
        run (and are saved) and then wait before answering, as when the
        answer is lost to a client's timeout."""
        check_endpoint(endpoint)
        if when not in ("before", "after"):
            raise ValueError("hang when: before or after")
        with self.lock:
            self._failures.append({"kind": "hang", "endpoint": endpoint, "seconds": float(seconds),
                                   "count": count, "when": when, "save": when == "after"})

    def clear_failures(self, endpoint=None):
        """Forgets injected failures and hangs (of endpoint, or all),
        declines and the async payments to come."""
        with self.lock:
            self._failures = [f for f in self._failures if endpoint is not None and f["endpoint"] != endpoint]
            if endpoint is None:
                self._declines = {"pay": 0, "refund": 0}
                self._async_next = 0

    def _take_failure(self, endpoint, kind, saved):
        with self.lock:
            for f in self._failures:
                if f["kind"] == kind and f["save"] == saved and f["endpoint"] in (endpoint, "*") \
                        and not (f["endpoint"] == "*" and not endpoint.split(" ")[1].startswith("/v1/")):
                    if f["count"] is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            self._failures.remove(f)
                    return dict(f)
        return None

    def decline(self, what="pay", count=1):
        """The next count card payments ("pay": the Pay button shows a
        decline, the session stays open and no event is sent) or refunds
        ("refund": 402 card_declined, saved under the key) are declined."""
        if what not in self._declines:
            raise ValueError("decline what: pay or refund")
        with self.lock:
            self._declines[what] += int(count)

    def next_payment_async(self, count=1):
        """The next count payments are asynchronous: the session completes
        with payment_status "unpaid" (checkout.session.completed) until
        complete_async_payment says how it ended."""
        with self.lock:
            self._async_next += int(count)

    def complete_async_payment(self, session=None, succeeded=True):
        """Ends the async payment of session (a cs id; None: the newest
        session waiting): checkout.session.async_payment_succeeded (paid)
        or ..._failed. Returns the session."""
        with self.lock:
            if session is None:
                waiting = [c for c in self.sessions.values()
                           if c["status"] == "complete" and c["payment_status"] == "unpaid"
                           and self.payment_intents[c["payment_intent"]]["status"] == "processing"]
                if not waiting:
                    raise ValueError("no session waits for an async payment")
                session = max(waiting, key=lambda c: self._seq[c["id"]])["id"]
            cs = self.sessions[session]
            pi = self.payment_intents[cs["payment_intent"]]
            if pi["status"] != "processing":
                raise ValueError("session %s has no payment in progress" % session)
            ch = self.charges[pi["latest_charge"]]
            if succeeded:
                pi.update(status="succeeded", amount_received=pi["amount"])
                ch.update(status="succeeded", paid=True, captured=True, amount_captured=ch["amount"])
                cs["payment_status"] = "paid"
                ev = self.event("checkout.session.async_payment_succeeded", self._view(cs))
            else:
                pi.update(status="requires_payment_method",
                          last_payment_error={"type": "card_error", "code": "payment_method_provider_decline",
                                              "message": "The payment failed."})
                ch.update(status="failed", failure_code="payment_method_provider_decline",
                          failure_message="The payment failed.")
                ev = self.event("checkout.session.async_payment_failed", self._view(cs))
            out = self._view(cs)
        self._dispatch([ev])
        return out

    def settle_refund(self, refund, status="succeeded", failure_reason="expired_or_canceled_card"):
        """Ends a pending refund: succeeded (refund.updated) or failed
        (refund.updated and refund.failed; the amount is no longer counted
        as refunded on the charge). Returns the refund."""
        with self.lock:
            events = self._settle_refund(refund, status, failure_reason)
            out = self._view(self.refunds[refund])
        self._dispatch(events)
        return out

    def _settle_refund(self, rid, status, failure_reason):
        re_ = self.refunds[rid]
        if re_["status"] != "pending":
            raise ValueError("refund %s is %s, not pending" % (rid, re_["status"]))
        if status not in ("succeeded", "failed", "canceled"):
            raise ValueError("a refund ends succeeded, failed or canceled")
        re_["status"] = status
        events = []
        if status in ("failed", "canceled"):
            ch = self.charges[re_["charge"]]
            ch["amount_refunded"] -= re_["amount"]
            ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
            if status == "failed":
                re_["failure_reason"] = failure_reason
                re_["failure_balance_transaction"] = new_id("txn_")
        events.append(self.event("refund.updated", self._view(re_), {"status": "pending"}))
        if status == "failed":
            events.append(self.event("refund.failed", self._view(re_)))
        return events

    def dispute(self, payment_intent, amount=None, reason="fraudulent"):
        """Opens a dispute on the charge of payment_intent
        (charge.dispute.created, status needs_response); refunds of that
        charge answer 400 charge_disputed until it is won. Returns it."""
        with self.lock:
            pi = self.payment_intents[payment_intent]
            ch = self.charges[pi["latest_charge"]]
            du = {"id": new_id("du_"), "object": "dispute",
                  "amount": ch["amount"] if amount is None else int(amount),
                  "balance_transactions": [], "charge": ch["id"], "created": self.now(),
                  "currency": ch["currency"], "evidence": {}, "is_charge_refundable": False,
                  "livemode": False, "metadata": {}, "payment_intent": pi["id"], "reason": reason,
                  "status": "needs_response"}
            self.disputes[du["id"]] = du
            self._new_seq(du["id"])
            ch["disputed"] = True
            ev = self.event("charge.dispute.created", self._view(du))
            out = self._view(du)
        self._dispatch([ev])
        return out

    def close_dispute(self, dispute, won=True):
        """Closes a dispute as won or lost (charge.dispute.closed)."""
        with self.lock:
            du = self.disputes[dispute]
            previous = {"status": du["status"]}
            du["status"] = "won" if won else "lost"
            ev = self.event("charge.dispute.closed", self._view(du), previous)
            out = self._view(du)
        self._dispatch([ev])
        return out

    def forget_idempotency_keys(self):
        """Drops every saved Idempotency-Key, as Stripe does after 24 h."""
        with self.lock:
            self._idem.clear()

    def advance_clock(self, seconds):
        """Moves the stand-in's clock: sessions past their expires_at
        expire when next read, keys older than 24 h are dropped."""
        with self.lock:
            self.clock_offset += int(seconds)
            return self.now()

    def set_hold_webhooks(self, on=True):
        with self.lock:
            self.hold_webhooks = bool(on)

    def set_refund_status(self, status):
        """How the next refunds go: "succeeded" (the default), "pending"
        (until settle_refund) or "failed" (answered pending, then
        refund.updated and refund.failed)."""
        if status not in ("succeeded", "pending", "failed"):
            raise ValueError("refund status: succeeded, pending or failed")
        with self.lock:
            self.refund_status = status

    SETTINGS = ("webhook_url", "webhook_secret", "auto_retry", "retry_delay", "retry_max", "webhook_timeout",
                "charge_refunds_in_events", "hold_webhooks", "verbose")

    def configure(self, **settings):
        """Sets attributes that steer it (SETTINGS: webhook_url,
        webhook_secret, auto_retry, retry_delay, retry_max,
        webhook_timeout, charge_refunds_in_events, hold_webhooks,
        verbose); returns their values."""
        unknown = sorted(set(settings) - set(self.SETTINGS))
        if unknown:
            raise ValueError("unknown settings %s; known: %s" % (", ".join(unknown), ", ".join(self.SETTINGS)))
        with self.lock:
            for k, v in settings.items():
                setattr(self, k, v)
            return {k: getattr(self, k) for k in self.SETTINGS}

    CONTROL_ACTIONS = {
        "fail": "fail", "hang": "hang", "clear_failures": "clear_failures", "decline": "decline",
        "next_payment_async": "next_payment_async", "complete_async_payment": "complete_async_payment",
        "refund_status": "set_refund_status", "settle_refund": "settle_refund", "dispute": "dispute",
        "close_dispute": "close_dispute", "forget_idempotency_keys": "forget_idempotency_keys",
        "advance_clock": "advance_clock", "hold_webhooks": "set_hold_webhooks",
        "deliver_all": "_control_deliver_all", "redeliver": "redeliver", "flush": "flush",
        "state": "state", "configure": "configure",
    }

    def control(self, command):
        """Runs one steering command, as POST /_control does with its JSON
        body: {"action": NAME, ...arguments}; returns the result."""
        command = dict(command)
        action = command.pop("action", None)
        if action not in self.CONTROL_ACTIONS:
            raise ValueError("unknown action %r; known: %s" % (action, ", ".join(sorted(self.CONTROL_ACTIONS))))
        return getattr(self, self.CONTROL_ACTIONS[action])(**command)

    def _control_deliver_all(self, order="received"):
        if order not in ("received", "reversed"):
            raise ValueError("order: received or reversed")
        return self.deliver_all(reversed if order == "reversed" else None)

    def state(self):
        """Everything stored, for a test to read: objects by kind (the
        Charge with its refunds), events, deliveries and requests."""
        with self.lock:
            return {
                "sessions": [self._view(x) for x in self.sessions.values()],
                "payment_intents": [self._view(x) for x in self.payment_intents.values()],
                "charges": [self._view(x, ["refunds"]) for x in self.charges.values()],
                "refunds": [self._view(x) for x in self.refunds.values()],
                "disputes": [self._view(x) for x in self.disputes.values()],
                "events": copy.deepcopy(self.events),
                "deliveries": [{k: v for k, v in d.items() if k != "event"} for d in self.deliveries],
                "requests": copy.deepcopy(self.requests),
                "held_events": [e["id"] for e in self._held],
            }

    # --- what tests read ---------------------------------------------------
    def requests_to(self, endpoint):
        """The requests received for endpoint ("POST /v1/refunds")."""
        with self.lock:
            return [r for r in self.requests if r["endpoint"] == endpoint]

    def deliveries_of(self, type=None):
        with self.lock:
            return [d for d in self.deliveries if type is None or d["type"] == type]

    def wait_deliveries(self, type=None, count=1, timeout=10):
        """Waits until count deliveries (of type) have an answer; returns
        them (fewer on timeout)."""
        end = time.time() + timeout
        with self._cond:
            while True:
                found = self.deliveries_of(type)
                if len(found) >= count or time.time() >= end:
                    return found
                self._cond.wait(min(0.1, max(0, end - time.time())))

    # --- webhooks ---------------------------------------------------------------
    def _secrets(self, secret=None):
        s = self.webhook_secret if secret is None else secret
        if isinstance(s, str):
            s = [x.strip() for x in s.split(",") if x.strip()]
        return list(s)

    def sign(self, body, t=None, secret=None):
        """The Stripe-Signature header for body (bytes or str): "t=T,v1=HEX"
        with one v1 per secret (webhook_secret unless secret is given, one
        or a list); HMAC-SHA256 of "T.body" keyed with the whole whsec_
        string."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        t = self.now() if t is None else int(t)
        sigs = ["v1=" + hmac.new(k.encode("utf-8"), b"%d." % t + body, hashlib.sha256).hexdigest()
                for k in self._secrets(secret)]
        return ",".join(["t=%d" % t] + sigs)

    def event(self, type, obj, previous_attributes=None, request=None):
        """A new event (recorded in s.events) of type about obj (copied)."""
        with self.lock:
            ev = {"id": new_id("evt_"), "object": "event", "api_version": self.api_version,
                  "created": self.now(), "data": {"object": copy.deepcopy(obj)}, "livemode": False,
                  "pending_webhooks": 1,
                  "request": {"id": request[0] if request else None,
                              "idempotency_key": request[1] if request else None},
                  "type": type}
            if previous_attributes is not None:
                ev["data"]["previous_attributes"] = copy.deepcopy(previous_attributes)
            self.events.append(ev)
            self._events_by_id[ev["id"]] = ev
            self._new_seq(ev["id"])
            return ev

    @staticmethod
    def event_body(event):
        """The bytes sent for event: JSON, two-space indented, UTF-8."""
        return json.dumps(event, indent=2, ensure_ascii=False).encode("utf-8")

    def send_event(self, event, signature=None, body=None, t=None, secret=None, url=None, headers=None):
        """POSTs event to the webhook URL now, in this thread, and records
        the delivery. body (bytes or str) replaces the event's JSON,
        signature the Stripe-Signature header (None: signed as Stripe
        would; False: no header). Returns (status, answer text); status 0
        when no answer came (the error is in the delivery's "error")."""
        return self._post_event(event, signature, body, t, secret, url, headers, attempt=None)

    def _post_event(self, event, signature=None, body=None, t=None, secret=None, url=None,
                    headers=None, attempt=None):
        url = url or self.webhook_url
        if body is None:
            body = self.event_body(event)
        elif isinstance(body, str):
            body = body.encode("utf-8")
        if signature is None:
            signature = self.sign(body, t, secret)
        h = {"Content-Type": "application/json; charset=utf-8", "Accept": "*/*; q=0.5, application/xml",
             "Cache-Control": "no-cache", "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
        if signature is not False:
            h["Stripe-Signature"] = signature
        h.update(headers or {})
        rec = {"event_id": event.get("id"), "type": event.get("type"), "event": event, "url": url,
               "signature": h.get("Stripe-Signature"), "attempt": attempt, "time": time.time(),
               "status": 0, "body": "", "error": None}
        if not url:
            rec["error"] = "no webhook_url"
        else:
            u = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=self.webhook_timeout)
            try:
                conn.request("POST", (u.path or "/") + ("?" + u.query if u.query else ""), body=body, headers=h)
                r = conn.getresponse()
                rec["status"] = r.status
                rec["body"] = r.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as e:
                rec["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                conn.close()
        with self._cond:
            self.deliveries.append(rec)
            self._cond.notify_all()
        if self.verbose:
            sys.stderr.write("stripe-standin: webhook %s %s -> %s %s\n"
                             % (rec["type"], rec["event_id"], rec["status"], rec["error"] or ""))
        return rec["status"], rec["body"]

    def pending_events(self):
        """The events held (hold_webhooks), oldest first."""
        with self.lock:
            return list(self._held)

    def deliver(self, event, **kw):
        """Sends one event now (taking it off the held ones if there);
        returns (status, answer text). Keywords as send_event's."""
        with self.lock:
            if event in self._held:
                self._held.remove(event)
        return self.send_event(event, **kw)

    def deliver_all(self, order=None):
        """Sends every held event now, oldest first or as order(list) says
        (e.g. reversed); returns [(event id, status, answer text)]."""
        with self.lock:
            held, self._held = self._held, []
        events = list(order(held)) if order is not None else held
        return [(e["id"],) + self.send_event(e) for e in events]

    def redeliver(self, event_id):
        """Sends an event made before once more (as Stripe's retries and
        "Resend" do); returns (status, answer text)."""
        with self.lock:
            event = self._events_by_id[event_id]
        return self.send_event(event)

    def flush(self, timeout=10):
        """Waits until every queued delivery (retries included) is done;
        returns whether it got there before timeout."""
        end = time.time() + timeout
        with self._cond:
            while self._queue or self._sending:
                left = end - time.time()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def _dispatch(self, events, wait=False, gate=None):
        """Hands events to the sender (or holds them); wait: until the
        first attempt of each has an answer; gate: a threading.Event the
        sender waits for (set once the API answer is written), so that
        flush() already sees the events while the answer goes out."""
        if not events:
            return
        with self._cond:
            if self.hold_webhooks or self._stopping:
                self._held.extend(events)
                return
            for e in events:
                self._queue_n += 1
                self._queue.append((time.time(), self._queue_n, e, 1, gate))
            self._cond.notify_all()
            if not wait:
                return
            end = time.time() + self.webhook_timeout + 5
            while not all(e["id"] in self._first_done for e in events) and time.time() < end \
                    and not self._stopping:
                self._cond.wait(0.1)

    def _deliver_loop(self):
        """The sender: one delivery at a time, in order; a non-2xx answer
        is retried after retry_delay when auto_retry, up to retry_max
        attempts in all."""
        while True:
            with self._cond:
                while not self._stopping:
                    due = [q for q in self._queue if q[0] <= time.time() and (q[4] is None or q[4].is_set())]
                    if due:
                        break
                    self._cond.wait(0.05)
                if self._stopping:
                    return
                item = min(due, key=lambda q: (q[0], q[1]))
                self._queue.remove(item)
                self._sending += 1
            event, attempt = item[2], item[3]
            status = 0
            try:
                status, _ = self._post_event(event, attempt=attempt)
            finally:
                with self._cond:
                    self._sending -= 1
                    self._first_done.add(event["id"])
                    if not 200 <= status < 300 and self.auto_retry and attempt < self.retry_max:
                        self._queue_n += 1
                        self._queue.append((time.time() + self.retry_delay, self._queue_n, event,
                                            attempt + 1, None))
                    self._cond.notify_all()

    # --- a client, for tests that call the API themselves -----------------------
    def api(self, method, path, params=None, idempotency_key=None, key=None, headers=None, body=None,
            timeout=30, raw=False):
        """Calls the stand-in's API: params (nested) form-encoded in the
        body (POST) or query (GET); key the Bearer key (default the right
        one, False: no Authorization). Returns (status, headers with
        lower-case names, parsed JSON, or the text when raw or not
        JSON)."""
        h = {}
        if key is not False:
            h["Authorization"] = "Bearer " + (key or self.secret_key)
        if idempotency_key is not None:
            h["Idempotency-Key"] = idempotency_key
        q = encode_form(params or {})
        if method == "GET":
            path = path + ("?" + q if q else "")
        elif body is None:
            body = q
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        return self._http(method, path, body, h, timeout, raw)

    def pay(self, session_id, email=None):
        """Presses Pay on the checkout page; returns (status, headers,
        text)."""
        body = urllib.parse.urlencode({"email": email} if email is not None else {})
        return self._http("POST", "/pay/" + session_id, body,
                          {"Content-Type": "application/x-www-form-urlencoded"}, 30)

    def _http(self, method, path, body, headers, timeout, raw=False):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            hs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()
        text = data.decode("utf-8", "replace")
        if not raw and hs.get("content-type", "").startswith("application/json"):
            return r.status, hs, json.loads(text)
        return r.status, hs, text

    # --- objects as Stripe shows them ---------------------------------------
    def _view(self, obj, expand=()):
        """A copy of obj as the API answers it, with the expand paths
        ("payment_intent", "payment_intent.latest_charge", "refunds",
        "line_items", "charge") expanded. Raises ApiError on a path that
        cannot be expanded."""
        out = copy.deepcopy(obj)
        if out.get("object") == "charge" and "refunds" not in expand:
            out.pop("refunds", None)
        for path in expand:
            self._expand(out, path.split("."), path)
        return out

    def _expand(self, obj, parts, full):
        head, rest = parts[0], parts[1:]
        if obj.get("object") == "charge" and head == "refunds":
            obj["refunds"] = self._list_object([self._view(r) for r in self._sorted(self.refunds.values())
                                                if r["charge"] == obj["id"]], False,
                                               "/v1/charges/%s/refunds" % obj["id"])
            return
        if obj.get("object") == "checkout.session" and head == "line_items":
            items = self._session_items.get(obj["id"], ([], {}))[0]
            obj["line_items"] = self._list_object(items, False, "/v1/checkout/sessions/%s/line_items" % obj["id"])
            return
        if obj.get("object") == "list" and head == "data":
            for x in obj["data"]:
                self._expand(x, rest, full)
            return
        value = obj.get(head)
        stores = {"pi_": self.payment_intents, "ch_": self.charges, "re_": self.refunds, "du_": self.disputes,
                  "cs_": self.sessions}
        if head not in obj or (value is not None and not isinstance(value, (str, dict))):
            raise invalid("This property cannot be expanded (%s)." % full, param="expand")
        if isinstance(value, str):
            store = next((st for p, st in stores.items() if value.startswith(p)), None)
            if store is None or value not in store:
                raise invalid("This property cannot be expanded (%s)." % full, param="expand")
            obj[head] = self._view(store[value], [".".join(rest)] if rest else [])
        elif isinstance(value, dict) and rest:
            self._expand(value, rest, full)

    def _sorted(self, objs):
        """objs newest first."""
        return sorted(objs, key=lambda o: self._seq[o["id"]], reverse=True)

    @staticmethod
    def _list_object(data, has_more, url):
        return {"object": "list", "data": data, "has_more": has_more, "url": url}

    def _list(self, call, objs, url, params):
        """A Stripe list of objs (newest first) as params page it."""
        limit = params.get("limit", 10)
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise invalid("Invalid limit: must be between 1 and %d" % LIST_LIMIT_MAX, param="limit")
        created = params.get("created")
        if isinstance(created, int):
            objs = [o for o in objs if o["created"] == created]
        elif isinstance(created, dict):
            ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
                   "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
            objs = [o for o in objs if all(ops[k](o["created"], v) for k, v in created.items())]
        objs = self._sorted(objs)
        if "starting_after" in params and "ending_before" in params:
            raise invalid("You may only specify one of these parameters: starting_after, ending_before.",
                          "parameters_exclusive")
        if "starting_after" in params:
            cursor = params["starting_after"]
            if cursor not in self._seq:
                raise no_such("object", cursor, "starting_after")
            seq = self._seq[cursor]
            objs = [o for o in objs if self._seq[o["id"]] < seq]
            page, more = objs[:limit], len(objs) > limit
        elif "ending_before" in params:
            cursor = params["ending_before"]
            if cursor not in self._seq:
                raise no_such("object", cursor, "ending_before")
            seq = self._seq[cursor]
            objs = [o for o in objs if self._seq[o["id"]] > seq]
            page, more = objs[-limit:], len(objs) > limit
        else:
            page, more = objs[:limit], len(objs) > limit
        call.begin()
        expand = [p[len("data."):] for p in params.get("expand", []) if p.startswith("data.")]
        bad = [p for p in params.get("expand", []) if not p.startswith("data.")]
        if bad:
            raise invalid("This property cannot be expanded (%s)." % bad[0], param="expand")
        return 200, self._list_object([self._view(o, expand) for o in page], more, url)

    # --- Checkout Sessions ---------------------------------------------------------
    def _expire_if_due(self, cs, events):
        if cs["status"] == "open" and self.now() >= cs["expires_at"]:
            self._expire(cs, events)

    def _expire(self, cs, events):
        cs.update(status="expired", url=None)
        events.append(self.event("checkout.session.expired", self._view(cs)))

    def _create_session(self, call, p):
        now = self.now()
        if p.get("mode") is None:
            raise missing_param("mode")
        if p["mode"] != "payment":
            raise invalid("Stand-in: only mode=payment is supported (pmb sells one answer).", param="mode")
        items = p.get("line_items")
        if not items:
            raise missing_param("line_items")
        if len(items) != 1:
            raise invalid("Stand-in: a Checkout Session of pmb has exactly one line item.", param="line_items")
        item = items[0]
        if "quantity" not in item:
            raise invalid("Quantity is required. Add `quantity` to `line_items[0]`", "parameter_missing",
                          "line_items[0][quantity]")
        if item["quantity"] != 1:
            raise invalid("Stand-in: pmb sells one answer: quantity must be 1.", param="line_items[0][quantity]")
        pd = item.get("price_data")
        if pd is None:
            raise missing_param("line_items[0][price_data]")
        for f in ("currency", "unit_amount"):
            if f not in pd:
                raise missing_param("line_items[0][price_data][%s]" % f)
        if dig(pd, "product_data", "name") is None:
            raise missing_param("line_items[0][price_data][product_data][name]")
        currency = pd["currency"].lower()
        if currency not in self.currencies:
            raise invalid("Invalid currency: %s. Stripe currently supports these currencies: %s"
                          % (pd["currency"], ", ".join(sorted(self.currencies))),
                          param="line_items[0][price_data][currency]")
        exponent, minimum = self.currencies[currency]
        amount = pd["unit_amount"]
        if amount < 0:
            raise invalid("Invalid non-negative integer", "parameter_invalid_integer",
                          "line_items[0][price_data][unit_amount]")
        if exponent == 3 and amount % 10:
            raise invalid("Amounts in %s must be divisible by 10 (the last digit is always 0)." % currency.upper(),
                          "invalid_amount", "line_items[0][price_data][unit_amount]")
        if amount < minimum:
            raise invalid("The Checkout Session's total amount due must add up to at least %s"
                          % format_amount(minimum, currency, exponent).lower(), "amount_too_small",
                          "line_items[0][price_data][unit_amount]")
        for f in ("success_url", "cancel_url"):
            if f not in p:
                raise missing_param(f)
            u = urllib.parse.urlsplit(p[f])
            if u.scheme not in ("http", "https") or not u.netloc or len(p[f]) > 5000:
                raise invalid("Not a valid URL", "url_invalid", f)
        email = p.get("customer_email")
        if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            raise invalid("Invalid email address: %s" % email, "email_invalid", "customer_email")
        ref = p.get("client_reference_id")
        if ref is not None and len(ref) > CLIENT_REFERENCE_MAX:
            raise invalid("client_reference_id: must be at most %d characters" % CLIENT_REFERENCE_MAX,
                          param="client_reference_id")
        expires_at = p.get("expires_at", now + DAY)
        if not now + 1800 <= expires_at <= now + DAY:
            raise invalid("The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                          "Checkout Session creation.", param="expires_at")
        expand = p.get("expand", [])
        call.begin()
        cs_id = new_id("cs_test_", 58)
        cs = {
            "id": cs_id, "object": "checkout.session", "amount_subtotal": amount * item["quantity"],
            "amount_total": amount * item["quantity"], "cancel_url": p["cancel_url"],
            "client_reference_id": ref, "created": now, "currency": currency, "customer": None,
            "customer_creation": "if_required", "customer_details": None, "customer_email": email,
            "expires_at": expires_at, "livemode": False, "locale": p.get("locale"),
            "metadata": p.get("metadata", {}), "mode": "payment", "payment_intent": None,
            "payment_method_types": p.get("payment_method_types", ["card"]), "payment_status": "unpaid",
            "status": "open", "submit_type": p.get("submit_type"), "success_url": p["success_url"],
            "url": "%s/pay/%s" % (self.url, cs_id),
        }
        line = {"id": new_id("li_"), "object": "item", "amount_subtotal": cs["amount_subtotal"],
                "amount_total": cs["amount_total"], "currency": currency,
                "description": pd["product_data"]["name"], "quantity": item["quantity"],
                "price": {"id": new_id("price_"), "object": "price", "currency": currency,
                          "unit_amount": amount, "product": new_id("prod_"), "type": "one_time"}}
        self.sessions[cs_id] = cs
        self._session_items[cs_id] = ([line], p.get("payment_intent_data", {}))
        self._new_seq(cs_id)
        return 200, self._view(cs, expand)

    def _session(self, call):
        cs_id = call.ids[0]
        cs = self.sessions.get(cs_id)
        if cs is None:
            raise no_such("checkout.session", cs_id, "session")
        return cs

    def _get_session(self, call, p):
        cs = self._session(call)
        call.begin()
        self._expire_if_due(cs, call.events)
        return 200, self._view(cs, p.get("expand", []))

    def _expire_session(self, call, p):
        cs = self._session(call)
        call.begin()
        self._expire_if_due(cs, call.events)
        if call.events:
            return 200, self._view(cs, p.get("expand", []))
        if cs["status"] != "open":
            raise invalid("Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout "
                          "Session has a status of \"%s\"." % cs["status"])
        self._expire(cs, call.events)
        return 200, self._view(cs, p.get("expand", []))

    def _list_sessions(self, call, p):
        objs = list(self.sessions.values())
        for cs in objs:
            self._expire_if_due(cs, call.events)
        if "payment_intent" in p:
            objs = [o for o in objs if o["payment_intent"] == p["payment_intent"]]
        if "status" in p:
            objs = [o for o in objs if o["status"] == p["status"]]
        return self._list(call, objs, "/v1/checkout/sessions", p)

    # --- the checkout page --------------------------------------------------------
    def _page(self, cs, error=None):
        exponent = self.currencies[cs["currency"]][0]
        name = self._session_items[cs["id"]][0][0]["description"]
        email = (cs.get("customer_details") or {}).get("email") or cs.get("customer_email") or ""
        if cs["status"] != "open":
            body = ('<p id="closed">This Checkout Session is %s.</p>\n<p><a id="cancel" href="%s">Back</a></p>'
                    % (html.escape(cs["status"]), html.escape(cs["cancel_url"])))
        else:
            body = (
                '<p id="product">%s</p>\n<p id="amount" class="amount">%s</p>\n%s'
                '<form method="post" action="/pay/%s">\n'
                '<p><label for="email">Email</label><br>\n'
                '<input id="email" name="email" type="email" autocomplete="email" value="%s"></p>\n'
                '<p><label for="card">Card number</label><br>\n'
                '<input id="card" name="card" inputmode="numeric" autocomplete="off"'
                ' value="4242 4242 4242 4242" readonly></p>\n'
                '<p><button id="pay" type="submit">Pay</button></p>\n'
                '</form>\n<p><a id="cancel" href="%s">Back</a></p>'
                % (html.escape(name), html.escape(format_amount(cs["amount_total"], cs["currency"], exponent)),
                   '<p id="error" role="alert">%s</p>\n' % html.escape(error) if error else "",
                   html.escape(cs["id"]), html.escape(email), html.escape(cs["cancel_url"])))
        return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<title>Stand-in Checkout</title>\n<style>body{font-family:sans-serif;margin:1rem auto;"
                "max-width:26rem;padding:0 1rem}input,button{font-size:1rem;padding:.5rem;max-width:100%%;"
                "box-sizing:border-box;width:100%%}.amount{font-size:1.5rem;font-weight:bold}"
                "#error{color:#a00}</style>\n</head><body><main>\n<h1>Stand-in Checkout</h1>\n"
                "<p>This page stands in for Stripe Checkout in tests: no card is charged.</p>\n%s\n"
                "</main></body></html>\n" % body)

    def _pay_page(self, call, p):
        cs = self.sessions.get(call.ids[0])
        if cs is None:
            return 404, "<!doctype html><title>Stand-in Checkout</title><p>No such Checkout Session.</p>\n"
        self._expire_if_due(cs, call.events)
        return (200 if cs["status"] == "open" else 410), self._page(cs)

    def _pay(self, call, p):
        """The Pay button: completes the session (paid, or unpaid when the
        payment is async) with a PaymentIntent and a Charge, sends
        checkout.session.completed, then 303 to success_url."""
        cs = self.sessions.get(call.ids[0])
        if cs is None:
            return 404, "<!doctype html><title>Stand-in Checkout</title><p>No such Checkout Session.</p>\n"
        self._expire_if_due(cs, call.events)
        if cs["status"] != "open":
            return 410, self._page(cs)
        email = (p.get("email") if isinstance(p.get("email"), str) else "") or cs["customer_email"] or ""
        if self._declines["pay"] > 0:
            self._declines["pay"] -= 1
            return 402, self._page(cs, "Your card was declined.")
        is_async = self._async_next > 0
        if is_async:
            self._async_next -= 1
        now = self.now()
        pi_data = self._session_items[cs["id"]][1]
        meta = dict(pi_data.get("metadata", {}))
        pi = {"id": new_id("pi_"), "object": "payment_intent", "amount": cs["amount_total"],
              "amount_received": 0 if is_async else cs["amount_total"], "canceled_at": None,
              "created": now, "currency": cs["currency"], "customer": None,
              "description": pi_data.get("description"), "last_payment_error": None, "latest_charge": None,
              "livemode": False, "metadata": meta, "payment_method": new_id("pm_"),
              "payment_method_types": ["card"], "receipt_email": pi_data.get("receipt_email"),
              "status": "processing" if is_async else "succeeded"}
        ch = {"id": new_id("ch_"), "object": "charge", "amount": pi["amount"],
              "amount_captured": 0 if is_async else pi["amount"], "amount_refunded": 0,
              "balance_transaction": new_id("txn_"), "billing_details": {"email": email or None, "name": None},
              "captured": not is_async, "created": now, "currency": pi["currency"], "customer": None,
              "description": pi["description"], "disputed": False, "failure_code": None,
              "failure_message": None, "livemode": False, "metadata": dict(meta), "paid": not is_async,
              "payment_intent": pi["id"], "payment_method": pi["payment_method"],
              "receipt_email": pi["receipt_email"], "refunded": False, "refunds": None,
              "status": "pending" if is_async else "succeeded"}
        pi["latest_charge"] = ch["id"]
        self.payment_intents[pi["id"]] = pi
        self.charges[ch["id"]] = ch
        self._new_seq(pi["id"])
        self._new_seq(ch["id"])
        cs.update(status="complete", payment_status="unpaid" if is_async else "paid", payment_intent=pi["id"],
                  url=None, customer_details={"address": None, "email": email or None, "name": None,
                                              "phone": None, "tax_exempt": "none", "tax_ids": []})
        call.emit("checkout.session.completed", self._view(cs))
        call.redirect = cs["success_url"].replace("{CHECKOUT_SESSION_ID}", cs["id"])
        return 303, ""

    # --- Refunds -----------------------------------------------------------------
    def _create_refund(self, call, p):
        if "payment_intent" not in p and "charge" not in p:
            raise invalid("One of the following params should be provided for this request: payment_intent "
                          "or charge.", "parameter_missing")
        if "payment_intent" in p:
            pi = self.payment_intents.get(p["payment_intent"])
            if pi is None:
                raise no_such("payment_intent", p["payment_intent"], "payment_intent")
            ch = self.charges.get(pi["latest_charge"])
            if "charge" in p and p["charge"] != pi["latest_charge"]:
                raise invalid("The charge %s does not belong to payment_intent %s." % (p["charge"], pi["id"]),
                              param="charge")
        else:
            ch = self.charges.get(p["charge"])
            if ch is None:
                raise no_such("charge", p["charge"], "charge")
            pi = self.payment_intents[ch["payment_intent"]]
        if "reason" in p and p["reason"] not in REFUND_REASONS:
            raise invalid("Invalid reason: must be one of %s" % ", ".join(REFUND_REASONS), param="reason")
        if "amount" in p and p["amount"] < 1:
            raise invalid("Invalid positive integer", "parameter_invalid_integer", "amount")
        call.begin()
        if ch is None or ch["status"] != "succeeded":
            raise invalid("This PaymentIntent (%s) does not have a successful charge to refund." % pi["id"],
                          param="payment_intent")
        disputed = [d for d in self.disputes.values() if d["charge"] == ch["id"] and d["status"] != "won"]
        if disputed:
            raise invalid("Charge %s has been charged back; cannot issue a refund." % ch["id"],
                          "charge_disputed")
        left = ch["amount"] - ch["amount_refunded"]
        if left <= 0:
            raise invalid("Charge %s has already been refunded." % ch["id"], "charge_already_refunded")
        amount = p.get("amount", left)
        exponent = self.currencies[ch["currency"]][0]
        if amount > left:
            raise invalid("Refund amount (%s) is greater than unrefunded amount on charge (%s)"
                          % (format_amount(amount, ch["currency"], exponent),
                             format_amount(left, ch["currency"], exponent)), "amount_too_large", "amount")
        if self._declines["refund"] > 0:
            self._declines["refund"] -= 1
            raise ApiError(402, "Your card was declined.", "card_error", "card_declined",
                           decline_code="generic_decline")
        outcome = self.refund_status
        re_ = {"id": new_id("re_"), "object": "refund", "amount": amount,
               "balance_transaction": new_id("txn_"), "charge": ch["id"], "created": self.now(),
               "currency": ch["currency"], "destination_details": {"type": "card", "card": {"type": "refund"}},
               "metadata": p.get("metadata", {}), "payment_intent": pi["id"], "reason": p.get("reason"),
               "receipt_number": None, "source_transfer_reversal": None,
               "status": "succeeded" if outcome == "succeeded" else "pending", "transfer_reversal": None}
        self.refunds[re_["id"]] = re_
        self._new_seq(re_["id"])
        ch["amount_refunded"] += amount
        ch["refunded"] = ch["amount_refunded"] >= ch["amount"]
        answer = self._view(re_, p.get("expand", []))
        previous = {"amount_refunded": ch["amount_refunded"] - amount}
        call.emit("charge.refunded", self._view(ch, ["refunds"] if self.charge_refunds_in_events else []),
                  previous)
        call.emit("refund.created", self._view(re_))
        if outcome == "failed":
            call.events.extend(self._settle_refund(re_["id"], "failed", "expired_or_canceled_card"))
        return 200, answer

    def _list_refunds(self, call, p):
        objs = list(self.refunds.values())
        if "payment_intent" in p:
            if p["payment_intent"] not in self.payment_intents:
                raise no_such("payment_intent", p["payment_intent"], "payment_intent")
            objs = [o for o in objs if o["payment_intent"] == p["payment_intent"]]
        if "charge" in p:
            objs = [o for o in objs if o["charge"] == p["charge"]]
        return self._list(call, objs, "/v1/refunds", p)

    def _get_one(self, call, p, store, kind):
        obj = store.get(call.ids[0])
        if obj is None:
            raise no_such(kind, call.ids[0], "id")
        call.begin()
        return 200, self._view(obj, p.get("expand", []))

    def _get_refund(self, call, p):
        return self._get_one(call, p, self.refunds, "refund")

    def _get_payment_intent(self, call, p):
        return self._get_one(call, p, self.payment_intents, "payment_intent")

    def _get_charge(self, call, p):
        return self._get_one(call, p, self.charges, "charge")

    def _get_event(self, call, p):
        return self._get_one(call, p, self._events_by_id, "event")

    def _list_events(self, call, p):
        objs = list(self.events)
        if "type" in p:
            pat = re.compile(re.escape(p["type"]).replace(r"\*", ".*") + "$")
            objs = [e for e in objs if pat.match(e["type"])]
        if "types" in p:
            objs = [e for e in objs if e["type"] in p["types"]]
        return self._list(call, objs, "/v1/events", p)

    # --- one request ---------------------------------------------------------------
    def _handle(self, method, target, headers, body):
        """Answers one request (headers: a dict with lower-case names):
        (status, headers, body bytes, events to send), or None to close
        the connection without an answer. Called by the server's
        threads."""
        path, _, query = target.partition("?")
        if path == "/_control" and method == "POST":
            return self._handle_control(body)
        endpoint, handler, ids = match_route(method, path)
        rec = {"method": method, "path": path, "query": query, "endpoint": endpoint,
               "headers": dict(headers), "body": body.decode("utf-8", "replace"),
               "params": None, "idempotency_key": headers.get("idempotency-key"), "time": time.time(),
               "status": None, "answer": None, "replayed": False}
        with self.lock:
            self.requests.append(rec)
        call = None
        try:
            status, out_headers, payload, call = self._answer(method, path, query, headers, body, rec,
                                                              endpoint, handler, ids)
        except ApiError as e:
            status, out_headers, payload = e.status, dict(e.headers), json.dumps(e.body, indent=2)
            out_headers["Content-Type"] = "application/json"
        rec["status"] = status
        if status == 0:
            return None
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        rec["answer"] = payload.decode("utf-8", "replace")
        out_headers.setdefault("Request-Id", call.request_id if call else new_id("req_", 14))
        if path.startswith("/v1/"):
            out_headers.setdefault("Content-Type", "application/json")
            out_headers.setdefault("Stripe-Version", self.api_version)
        else:
            out_headers.setdefault("Content-Type", "text/html; charset=utf-8")
        return status, out_headers, payload, (call.events if call else [])

    def _answer(self, method, path, query, headers, body, rec, endpoint, handler, ids):
        is_api = path.startswith("/v1/")
        if is_api:
            auth = headers.get("authorization") or ""
            if not auth:
                raise ApiError(401, "You did not provide an API key. You need to provide your API key in the "
                               "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                               "YOUR_SECRET_KEY').")
            if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].strip().encode(),
                                                                         self.secret_key.encode()):
                shown = auth[7:].strip() if auth.startswith("Bearer ") else auth
                raise ApiError(401, "Invalid API Key provided: %s" % (shown[:8] + "*" * max(0, len(shown) - 12)
                                                                      + shown[-4:]))
        if endpoint is None:
            raise ApiError(404, "Unrecognized request URL (%s: %s). Please see https://stripe.com/docs "
                           "or we can help at https://support.stripe.com/." % (method, path))
        spec = self._take_failure(endpoint, "fail", saved=False)
        if spec is not None:
            if spec["status"] == 0:
                return 0, {}, b"", None
            raise injected_error(spec["status"], spec.get("code"), spec.get("message"))
        if method == "POST":
            ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
            if body and ctype != "application/x-www-form-urlencoded":
                raise invalid("Invalid request: the body must be application/x-www-form-urlencoded, "
                              "not %r." % ctype)
            params = parse_form(self._utf8(body))
        else:
            params = parse_form(query)
        rec["params"] = params
        key = headers.get("idempotency-key") if method == "POST" and is_api else None
        if key is not None:
            replay = self._idempotency_claim(key, method, path, params)
            if replay is not None:
                rec["replayed"] = True
                return replay
        call = Call(self, method, path, endpoint, ids, params, headers, key)
        try:
            hang = self._take_failure(endpoint, "hang", saved=False)
            if hang is not None:
                time.sleep(hang["seconds"])
            try:
                with self.lock:
                    typed = check(params, SCHEMAS[endpoint], []) if endpoint in SCHEMAS else params
                    status, obj = getattr(self, handler)(call, typed)
                out_headers = {}
                if status == 303:
                    out_headers["Location"] = call.redirect
                payload = json.dumps(obj, indent=2) if is_api else obj
            except ApiError as e:
                if not call.began:
                    raise
                status, out_headers, payload = e.status, dict(e.headers), json.dumps(e.body, indent=2)
            if key is not None and call.began:
                out_headers["Idempotency-Key"] = key
                self._idempotency_save(key, method, path, params, status, out_headers, payload)
        finally:
            if key is not None:
                with self.lock:
                    self._idem_busy.discard(key)
        hang = self._take_failure(endpoint, "hang", saved=True)
        if hang is not None:
            time.sleep(hang["seconds"])
        return status, out_headers, payload, call

    @staticmethod
    def _utf8(body):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid("Invalid UTF-8 in the request body.")

    def _idempotency_claim(self, key, method, path, params):
        """None when the call may run (the key is now held), or the saved
        answer to replay. Raises ApiError for a key in use or reused with
        other parameters."""
        if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
            raise invalid("Idempotency-Key must be 1 to %d characters long." % IDEMPOTENCY_KEY_MAX)
        with self.lock:
            saved = self._idem.get(key)
            if saved is not None and self.now() - saved["created"] >= IDEMPOTENCY_WINDOW:
                del self._idem[key]
                saved = None
            if saved is not None:
                if saved["method"] != method or saved["path"] != path:
                    raise ApiError(400, "Keys for idempotent requests can only be used for the same endpoint they "
                                   "were first used for ('%s %s'). Try using a key other than '%s' if you meant "
                                   "to execute a different request." % (saved["method"], saved["path"], key),
                                   "idempotency_error")
                if saved["params"] != params:
                    raise ApiError(400, "Keys for idempotent requests can only be used with the same parameters "
                                   "they were first used with. Try using a key other than '%s' if you meant to "
                                   "execute a different request." % key, "idempotency_error")
                h = dict(saved["headers"])
                h["Idempotent-Replayed"] = "true"
                h["Original-Request"] = saved["request_id"]
                return saved["status"], h, saved["body"], None
            if key in self._idem_busy:
                raise ApiError(409, "There is currently another in-progress request using this Idempotent "
                               "Key (that probably means you submitted twice, and the other request is still "
                               "going through): %s. Please try again later." % key,
                               code="idempotency_key_in_use", headers={"Stripe-Should-Retry": "true"})
            self._idem_busy.add(key)
        return None

    def _idempotency_save(self, key, method, path, params, status, headers, payload):
        with self.lock:
            self._idem[key] = {"method": method, "path": path, "params": copy.deepcopy(params),
                               "status": status, "headers": dict(headers), "body": payload,
                               "created": self.now(), "request_id": new_id("req_", 14)}

    def _handle_control(self, body):
        """POST /_control: {"action": ..., ...} (see control); answers
        {"result": ...} or 400 {"error": message}."""
        try:
            result = self.control(json.loads(body.decode("utf-8") or "{}"))
            status, payload = 200, {"result": result}
        except (ValueError, TypeError, KeyError) as e:
            status, payload = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        return status, {"Content-Type": "application/json"}, json.dumps(payload).encode(), []


class _Server(http.server.ThreadingHTTPServer):
    """A thread per connection; room for pmb's workers calling at once;
    a client that hung up (its timeout) is no error."""
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Hands each request to the stand-in (cls.s) and writes its answer;
    then hands the events the request made to the sender (the Pay button
    waits for their delivery before answering)."""
    protocol_version = "HTTP/1.1"
    server_version = "stripe-standin"
    sys_version = ""
    s = None

    def _run(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > BODY_MAX:
            self.send_error(413)
            return
        body = self.rfile.read(n) if n else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        result = self.s._handle(self.command, self.path, headers, body)
        if result is None:
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        status, headers, payload, events = result
        gate = threading.Event()
        if status == 303:
            # The checkout page: the event goes out before the redirect.
            self.s._dispatch(events, wait=True)
        else:
            self.s._dispatch(events, gate=gate)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        finally:
            gate.set()
            with self.s._cond:
                self.s._cond.notify_all()

    do_GET = do_POST = do_DELETE = _run

    def log_message(self, fmt, *args):
        if self.s.verbose:
            sys.stderr.write("stripe-standin: " + (fmt % args) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="A local stand-in for Stripe's API v1 (tests).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port")
    ap.add_argument("--secret-key", default="sk_test_standin")
    ap.add_argument("--webhook-url", default=None)
    ap.add_argument("--webhook-secret", default="whsec_standin", help="one, or several comma-separated")
    ap.add_argument("--verbose", action="store_true", help="log requests and deliveries to stderr")
    a = ap.parse_args(argv)
    s = StripeStandin(secret_key=a.secret_key, webhook_url=a.webhook_url, webhook_secret=a.webhook_secret,
                      host=a.host, port=a.port, verbose=a.verbose)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    s.start()
    print("listening %s" % s.url, flush=True)
    done.wait()
    s.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
