#!/usr/bin/env python3
"""The whole journey in a real browser: Debian's chromium, headless, driven
by playwright-core (tests/browser/journey.mjs) against the site as the
other HTTP tests run it (nginx + pmb.fcgi --listen on a loopback port, a
fresh database) with mail delivered by the real `pmbctl mail run` to a real
SMTP server (aiosmtpd) in this process. Card payments go to the Stripe
stand-in (tests/stripe_standin.py) in this process: the browser opens its
checkout page, its webhooks reach the site, and the real `pmbctl pay run`
sends the refund to it (refund_auto_approve = yes).

The journey runs twice, on a fresh site each time: at desktop size
(1280x800) and at phone size (375x812) with JavaScript disabled. Then
tests/browser/privacy.mjs (issue 20), on a fresh site too: the privacy
notice at phone size (390x844), the staff's erase with its confirmation
step, and the 410 page of the erased order's status link. Each
received email is written to MAIL_DIR/NNN.eml, with NNN.json beside it
(envelope, subject and the decoded text and HTML parts) for the node
script to read; the script wakes `pmbctl mail run` with SIGUSR1 when it
waits for one. The script prints TAP points without numbers; this file
numbers them; among them one per page visited, "no serious or critical
axe violations on PAGE" (axe-core, pinned in tests/browser/package.json,
with the WCAG 2.1 A/AA and best-practice rules). Screenshots (PNG) go to
tests/browser-out/ under the build folder (or $PMB_BROWSER_OUT), and the
path is printed."""
import email
import email.policy
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, STAFF, BUILD, SRC, PMBCTL, Browser, answered_order, login, free_port,  # noqa: E402
                     missing_tool, node_deps, node_tap)
from stripe_standin import StripeStandin  # noqa: E402

CHROMIUM = os.environ.get("PMB_CHROMIUM", "/usr/bin/chromium")
HERE = os.path.join(SRC, "tests", "browser")
OUT = os.environ.get("PMB_BROWSER_OUT") or os.path.join(BUILD, "tests", "browser-out")
# Each size's journey takes some 30 to 50 s (axe-core's runs some 10 to 20 s
# of it); this only stops a hung browser.
JOURNEY_TIMEOUT = 150
STRIPE_KEY = "sk_test_pmbBrowserJourney4242"
STRIPE_SECRET = "whsec_pmb_browser_journey"
SIZES = [
    {"label": "desktop", "width": 1280, "height": 800, "javaScript": True},
    {"label": "phone", "width": 375, "height": 812, "javaScript": False},
]
# PMB_BROWSER_ONLY=phone (or desktop, or privacy) runs one part, while working on it.
if os.environ.get("PMB_BROWSER_ONLY"):
    SIZES = [s for s in SIZES if s["label"] == os.environ["PMB_BROWSER_ONLY"]]

if not os.path.exists(CHROMIUM) or shutil.which("node") is None or shutil.which("npm") is None:
    missing_tool("chromium, node or npm")
try:
    import aiosmtpd  # noqa: F401
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
try:
    from aiosmtpd.controller import Controller
except ImportError:
    missing_tool("python3-aiosmtpd")

logging.getLogger("mail.log").setLevel(logging.CRITICAL)
t = Tap()


class MailFolder:
    """An aiosmtpd handler that writes each message it accepts to a
    folder: NNN.eml (the bytes received) and NNN.json (decoded)."""

    def __init__(self, folder):
        self.folder = folder
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        with self.lock:
            self.n += 1
            base = os.path.join(self.folder, "%03d" % self.n)
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        info = {
            "n": self.n,
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(msg["Subject"] or ""),
            "text": text.get_content() if text is not None else "",
            "html": html.get_content() if html is not None else "",
            "replyTo": str(msg["Reply-To"] or ""),
            "messageId": str(msg["Message-ID"] or ""),
        }
        # Written whole, then renamed: the reader never sees half a file.
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 Ok: queued"


def journey(size, deps, shots):
    """Runs journey.mjs at one size on a fresh site; re-numbers its TAP."""
    mail_dir = os.path.join(OUT, "mail-" + size["label"])
    shutil.rmtree(mail_dir, ignore_errors=True)
    os.makedirs(mail_dir)
    smtp = Controller(MailFolder(mail_dir), hostname="127.0.0.1", port=free_port())
    smtp.start()
    stripe = StripeStandin(secret_key=STRIPE_KEY, webhook_secret=STRIPE_SECRET)
    stripe.start()
    site = Site(users=STAFF, settings={
        "mail_transport": "smtp",
        "smtp_url": "smtp://127.0.0.1:%d" % smtp.port,
        "smtp_timeout": "5",
        "stripe_secret_key": STRIPE_KEY,
        "stripe_webhook_secret": STRIPE_SECRET,
        "stripe_api_url": stripe.url,
        "stripe_timeout": "5",
        "refund_auto_approve": "yes",
        # Replies by email (issue 18): the journey answers an email,
        # and its second follow-up comes by email.
        "reply_address": "answers@example.com",
        "followups_included": "2",
    })
    stripe.configure(webhook_url=site.base + "/hooks/stripe")
    try:
        site.start()
        mailer = daemon(site, "mail", "mail: delivering")
        payer = daemon(site, "pay", "pay: carrying out")
        user, password = next(iter(STAFF.items()))
        config = {
            "base": site.base,
            "user": user,
            "password": password,
            "mailDir": mail_dir,
            "mailPid": mailer.pid,
            "payPid": payer.pid,
            "stripe": stripe.url,
            "shots": shots,
            "deps": deps,
            "chromium": CHROMIUM,
            "size": size,
            "clientEmail": "ada.%s@bakery.example" % size["label"],
            # pmbctl mail receive, as a mail server's pipe runs it.
            "pmbctl": PMBCTL,
            "config": site.conf_path,
        }
        rc, points = node_tap(t, [os.path.join(HERE, "journey.mjs"), json.dumps(config)], JOURNEY_TIMEOUT,
                              size["label"] + ": ")
        t.ok(rc == 0, "%s: the journey script ran to its end (exit %s)" % (size["label"], rc))
        t.ok(points > 0, "%s: the journey script reported its steps" % size["label"])
        stripe_seen(size["label"], stripe, site)
    finally:
        site.stop()
        stripe.stop()
        smtp.stop()
        if rc_failed() and os.path.exists(getattr(site, "log_path", "")):
            print("# the site's log, last lines:")
            for line in open(site.log_path, errors="replace").read()[-1500:].splitlines():
                print("#   " + line)
        site.cleanup()


def privacy(deps, shots):
    """Runs privacy.mjs (issue 20) on a fresh site: the privacy notice at
    phone size, the staff's erase with its confirmation step, the 410
    page. The order is made here: answered, its guarantee over; its
    client asks for the erasure in the browser."""
    site = Site(users=STAFF)
    try:
        site.start()
        staff = Browser(site)
        login(staff)
        client_email = "ada.privacy@bakery.example"
        c, status_path, oid, _ = answered_order(site, staff, client_email)
        site.sql("UPDATE orders SET created_at = created_at - ?1, paid_at = paid_at - ?1, due_at = due_at - ?1, "
                 "answered_at = answered_at - ?1, last_answered_at = last_answered_at - ?1 WHERE id = ?2",
                 31 * 86400, oid)
        user, password = next(iter(STAFF.items()))
        config = {"base": site.base, "user": user, "password": password, "orderPath": "/admin/orders/%d" % oid,
                  "statusPath": status_path, "clientName": "Ada Baker", "clientEmail": client_email,
                  "shots": shots, "deps": deps, "chromium": CHROMIUM}
        rc, points = node_tap(t, [os.path.join(HERE, "privacy.mjs"), json.dumps(config)], JOURNEY_TIMEOUT,
                              "privacy: ")
        t.ok(rc == 0 and points > 0, "privacy: the script ran to its end (exit %s)" % rc)
        t.eq(site.sql1("SELECT count(*) FROM erasure_requests WHERE order_id = ? AND done_at IS NOT NULL", oid), 1,
             "privacy: the client's request (made in the browser) was marked done by the erase")
    finally:
        site.cleanup()


def daemon(site, what, says):
    """Starts `pmbctl WHAT run` for site and waits until its log line
    (says) shows it has blocked SIGUSR1, which wakes it. Returns it."""
    p = subprocess.Popen([PMBCTL, what, "run"], env=site.env(), stdout=site.log, stderr=site.log)
    site.procs.append(p)
    end = time.time() + 15
    while says not in open(site.log_path, errors="replace").read():
        if time.time() > end or p.poll() is not None:
            raise RuntimeError("pmbctl %s run did not start" % what)
        time.sleep(0.05)
    return p


def stripe_seen(label, stripe, site):
    """What the stand-in saw of the card order: one Checkout Session, one
    refund, every webhook answered 2xx, the payment's and the refund's
    among them, and each stored once by the site."""
    stripe.flush(5)
    made = stripe.requests_to("POST /v1/checkout/sessions")
    refunds = stripe.requests_to("POST /v1/refunds")
    t.ok(len(made) == 1 and len(refunds) == 1 and refunds[0]["status"] == 200,
         "%s: Stripe was asked for one Checkout Session and one refund" % label,
         [(r["endpoint"], r["status"]) for r in stripe.requests])
    sent = stripe.deliveries_of()
    t.ok(sent and all(200 <= d["status"] < 300 for d in sent),
         "%s: the site answered 2xx to every webhook" % label,
         [(d["type"], d["status"], d["body"][:80]) for d in sent])
    types = {d["type"] for d in sent}
    t.ok("checkout.session.completed" in types and types & {"charge.refunded", "refund.updated"},
         "%s: Stripe sent the payment's and the refund's webhooks (%s)" % (label, ", ".join(sorted(types))))
    stored = site.sql("SELECT id, type, outcome FROM stripe_events ORDER BY received_at, id")
    t.ok(sorted(r[0] for r in stored) == sorted({d["event_id"] for d in sent}),
         "%s: the site stored each of them once" % label, stored)
    # Which came first, the webhook or the client's return, is the race
    # the one fulfil function settles; said, not tested.
    for _, kind, outcome in stored:
        print("# %s: %s: %s" % (label, kind, outcome))


def rc_failed():
    return t.failed > 0


start = time.time()
try:
    deps, err = node_deps()
    if t.ok(deps is not None,
            "the npm packages of tests/browser (playwright-core, axe-core, stripe) are installed (npm ci)", err):
        for size in SIZES:
            shots = os.path.join(OUT, size["label"])
            shutil.rmtree(shots, ignore_errors=True)
            os.makedirs(shots)
            t.run(lambda: journey(size, deps, shots))
        if not os.environ.get("PMB_BROWSER_ONLY") or os.environ["PMB_BROWSER_ONLY"] == "privacy":
            shots = os.path.join(OUT, "privacy")
            shutil.rmtree(shots, ignore_errors=True)
            os.makedirs(shots)
            t.run(lambda: privacy(deps, shots))
        print("# screenshots: %s" % OUT)
finally:
    print("# %.1f s" % (time.time() - start))
sys.exit(t.done())
