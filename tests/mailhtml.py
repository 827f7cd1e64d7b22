#!/usr/bin/env python3
"""Emails that look like a business sent them (issue 16): every kind of
email (every www/templates/mail/*.txt) is made for real, through the site
(the client's and the consultant's pages), the Stripe stand-in's webhooks
(tests/stripe_standin.py) and `pmbctl mail send` with the test clock
(PMB_TEST_NOW) for the reminder, the closing and the digest; each is read
from the outbox and checked: the client's hostile text shows as text, not
markup, in both parts; the buttons are there with the right links;
nothing external (no image, stylesheet, script, no src=, no link off the
site but the links it means); every element with a background has a text
colour; the plain-text part carries none of Markdown's noise. The
confirmation and the consultant's alert of orders stored together keep
no stand-in (page_ask.c) in either part. Then each HTML part is
screenshot at 375 and 1280 px in Debian's chromium (playwright-core,
tests/browser/mailshots.mjs), and checked there: no horizontal
scrolling, buttons 44 px tall and visible, text contrast 4.5:1. The
shots go to tests/mail-shots/ under the build folder (or
$PMB_MAIL_SHOTS)."""
import email
import email.policy
import glob
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, PMBCTL, ask, track_path, link_token, login, admin_csrf,  # noqa: E402
                     STAFF, SRC, BUILD, node_deps, node_tap, unescape, multipart_form)
from stripe_standin import StripeStandin  # noqa: E402

t = Tap()
KINDS = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(SRC, "www", "templates", "mail", "*.txt")))
CHROMIUM = os.environ.get("PMB_CHROMIUM", "/usr/bin/chromium")
OUT = os.environ.get("PMB_MAIL_SHOTS") or os.path.join(BUILD, "tests", "mail-shots")
WIDTHS = [375, 1280]
SHOTS_TIMEOUT = 60
HOUR, DAY = 3600, 86400

# The client's hostile text: each must show as text in the HTML part.
NAME = "<b>Zoë</b> & <i>Co</i>"
NAME_SHOWN = "&lt;b&gt;Zoë&lt;/b&gt; &amp; &lt;i&gt;Co&lt;/i&gt;"
QUESTION = ("<script>alert('q')</script> How do I sell  more sourdough on weekdays?\n"
            "Weekends sell out; on Tuesdays half of it is left.")
HOSTILE = {   # what else of the client's (or the consultant's) each kind shows
    "order_alert": "<script>alert('q')</script>",
    "followup_alert": "<script>alert('f')</script>",
    "refund_alert": "<script>alert('r')</script>",
    "cancelled": "<img src=x onerror=alert('c')>",
    "refund_declined": "<img src=x onerror=alert('d')>",
    "info_alert": "<script>alert('i')</script>",
    "extra_alert": "<script>alert('e')</script>",
}
ANSWER = "\n".join([
    "Thank you. Here are **three ideas** for weekday_sourdough:",
    "",
    "- A *weekday loyalty card*: the fifth loaf is free.",
    "- A tasting board at the till on Tuesday mornings.",
    "",
    "Start with the card: it costs little.  You will see results within a month.",
    "",
    "![A loyalty card](https://example.com/card.png)",
])
ANSWER_IMAGE = "https://example.com/card.png"
ANSWER_FILE = "<b>Loyalty & card<b>.pdf"     # a file with the answer
KEY = "sk_test_pmbMailHtml4242"
SECRET = "whsec_pmb_mail_html"

stripe = StripeStandin(secret_key=KEY, webhook_secret=SECRET)
stripe.start()
site = Site(users=STAFF, settings={
    "alert_new_orders": "yes", "stripe_secret_key": KEY, "stripe_webhook_secret": SECRET,
    "stripe_api_url": stripe.url, "stripe_timeout": "2", "unpaid_reminder_hours": "24",
    "unpaid_cancel_days": "14", "digest_hour": "8", "rate_limit_ip_per_hour": "1000",
    "rate_limit_email_per_hour": "1000"})
stripe.configure(webhook_url=site.base + "/hooks/stripe")
site.start()
staff = Browser(site)
login(staff)
n = [0]
lock = threading.Lock()


# --- making every kind of email ---------------------------------------------------

def new_order(**over):
    """A new client's order (the hostile name and question); returns
    (client Browser, status path, order id)."""
    with lock:
        n[0] += 1
        i = n[0]
    email = "client%d@bakery.example" % i
    c = Browser(site, remote="198.51.100.%d" % i)
    r = ask(c, email=email, name=NAME, question=QUESTION, **over)
    assert r.status == 303, r
    return c, track_path(r.header("Location")), site.sql1("SELECT id FROM orders WHERE email = ?", email)


def staff_post(path, fields, page="/admin"):
    fields = dict(fields, csrf_token=admin_csrf(staff, page))
    r = staff.post(path, fields)
    assert r.status in (200, 303), (path, r.status, r.text[:300])
    return r


def client_post(c, path, form, fields):
    _, hidden = c.form(form)
    r = c.post(path, dict(fields, csrf_token=hidden.get("csrf_token", "")))
    assert r.status in (200, 303), (path, r.status, r.text[:300])
    return r


def paid_and_answered(oid):
    """Paid, and answered with a file (named with markup in it): the
    answer email lists it with its link."""
    staff_post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "reference": ""})
    with open(os.path.join(SRC, "tests", "files", "sample.pdf"), "rb") as f:
        body, ctype = multipart_form({"body": ANSWER, "confirm": "yes", "csrf_token": admin_csrf(staff)},
                                     [(ANSWER_FILE, f.read())])
    r = staff.post("/admin/orders/%d/reply" % oid, body, headers={"Content-Type": ctype})
    assert r.status == 303, (r.status, r.text[:300])


def refund_path(oid):
    text = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id", oid)
    return re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", text).group(1)


def ask_refund(c, oid, reason):
    rpath = refund_path(oid)
    client_post(c, rpath, rpath, {"reason": reason})
    return site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)


def card_order():
    """An order paid by card through the Pay button and the stand-in's
    checkout (its webhook fulfils it); returns (id, PaymentIntent)."""
    c, path, oid = new_order()
    _, hidden = c.form(path)
    r = c.post(path + "/pay", {"csrf_token": hidden.get("csrf_token", "")})
    cs = re.search(r"/pay/(cs_[A-Za-z0-9_]+)$", r.header("Location") or "").group(1)
    stripe.pay(cs)
    stripe.flush()
    return oid, site.sql1("SELECT reference FROM ledger WHERE order_id = ? AND kind = 'payment'", oid)


def email_reply(oid, text):
    """The client of order oid replies by email to its newest email (by
    its signed Message-ID, In-Reply-To), through pmbctl mail receive."""
    mail_send(int(time.time()))
    rid = site.sql1("SELECT max(id) FROM outbox WHERE order_id = ?", oid)
    with open(glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % rid))[0], "rb") as f:
        msgid = email.message_from_binary_file(f, policy=email.policy.default)["Message-ID"]
    raw = ("From: %s\r\nTo: sam@example.com\r\nSubject: Re: your email\r\nMessage-ID: <r%d.%d@bakery.example>\r\n"
           "In-Reply-To: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
           % (site.sql1("SELECT email FROM orders WHERE id = ?", oid), oid, rid, msgid, text))
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw.encode(), capture_output=True, env=site.env(),
                       timeout=60)
    assert p.returncode == 0, p


def mail_send(now):
    """One pass of the mail daemon (pmbctl mail send) at test time now."""
    env = site.env()
    env["PMB_TEST_NOW"] = str(now)
    site.ctl("mail", "send", env=env)


def sent_html(oid):
    """The HTML part of outbox row oid as it was sent: the .eml the mail
    daemon wrote to mail_dir (the outbox stores mail/KIND.html without the
    frame of mail/layout.html, which mail_frame puts around it when it
    sends)."""
    paths = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % oid))
    if len(paths) != 1:
        return ""
    with open(paths[0], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else ""


def sent_subject_text(oid):
    """The subject and plain-text part of outbox row oid as sent (from
    mail_dir): for an email whose row is wiped once sent ("erased")."""
    paths = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % oid))
    if len(paths) != 1:
        return "", ""
    with open(paths[0], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    return str(msg["Subject"] or ""), part.get_content().replace("\r\n", "\n") if part is not None else ""


def make_every_kind():
    """Makes an email of every kind; returns {kind: (order id, the
    client's status path or None)} of the orders they are about."""
    about = {}
    # The journey: asked, paid, answered, a follow-up, refunded.
    c, path, oid = new_order()
    for k in ("confirmation", "order_alert", "paid", "answer", "followup_alert",
              "refund_receipt", "refund_alert", "refunded", "lost"):
        about[k] = (oid, path)
    paid_and_answered(oid)
    client_post(c, path + "/messages", path, {"message": HOSTILE["followup_alert"] + " And on Mondays?"})
    rid = ask_refund(c, oid, HOSTILE["refund_alert"] + " I had tried most of it.")
    staff_post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer"}, "/admin/refunds")
    client_post(Browser(site), "/lost", "/lost", {"email": "client1@bakery.example"})
    # Cancelled by the consultant, unpaid.
    c, path, oid = new_order()
    staff_post("/admin/orders/%d/cancel" % oid, {"reason": HOSTILE["cancelled"] + " A duplicate."})
    about["cancelled"] = (oid, path)
    # Closed, so its client may ask for their data to be erased (issue 20).
    client_post(c, path + "/erasure", path, {})
    about["erasure_alert"] = (oid, path)
    # A refund declined.
    c, path, oid = new_order()
    paid_and_answered(oid)
    rid = ask_refund(c, oid, "Not for me")
    staff_post("/admin/refunds/%d/decline" % rid, {"reason": HOSTILE["refund_declined"] + " Asked too late."},
               "/admin/refunds")
    about["refund_declined"] = (oid, path)
    # Paid by card; a refund made in Stripe's dashboard that fails; a chargeback.
    oid, pi = card_order()
    st, _, refund = stripe.api("POST", "/v1/refunds", {"payment_intent": pi})
    stripe.flush()
    stripe.send_event(stripe.event("refund.failed", dict(refund, status="failed",
                                                         failure_reason="lost_or_stolen_card")))
    stripe.dispute(pi)
    stripe.flush()
    for k in ("card_alert", "card_refund_alert", "dispute_alert"):
        about[k] = (oid, None)
    # Unpaid: reminded the next day (with the digest at 09:00), closed after 14 days.
    _, path, oid = new_order()
    created = site.sql1("SELECT created_at FROM orders WHERE id = ?", oid)
    mail_send((created + 25 * HOUR) // DAY * DAY + DAY + 9 * HOUR)
    mail_send(created + 15 * DAY)
    about["unpaid_reminder"] = about["unpaid_cancelled"] = (oid, path)
    about["digest"] = (None, None)
    # Replies by email: more information before the answer; after the
    # follow-ups are used up, a message outside them.
    _, path, oid = new_order()
    staff_post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "reference": ""})
    email_reply(oid, HOSTILE["info_alert"] + " We bake rye too.")
    about["info_alert"] = (oid, path)
    c, path, oid = new_order()
    paid_and_answered(oid)
    client_post(c, path + "/messages", path, {"message": "And on Mondays?"})
    staff_post("/admin/orders/%d/reply" % oid, {"body": "The same.", "confirm": "yes"})
    email_reply(oid, HOSTILE["extra_alert"] + " And on Sundays?")
    about["extra_alert"] = about["followups_used"] = (oid, path)
    # The client asked for erasure (as the status page records it), the
    # guarantee over: the erase tells them (and the outbox row is wiped
    # once sent: test_every_kind reads it from mail_dir).
    _, path, oid = new_order()
    paid_and_answered(oid)
    site.sql("UPDATE orders SET answered_at = 1, last_answered_at = 1 WHERE id = ?", oid)
    site.sql("INSERT INTO erasure_requests (order_id, requested_at) VALUES (?, ?)", oid, int(time.time()))
    site.ctl("privacy", "erase", "--order", str(oid))
    about["erased"] = (oid, None)
    return about


# --- reading an email's HTML ---------------------------------------------------------

class Tags(html.parser.HTMLParser):
    """Every start tag of a document, with its attributes, and each
    link's text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.links, self.open_link = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "a":
            self.open_link = [a, ""]
            self.links.append(self.open_link)

    def handle_data(self, data):
        if self.open_link is not None:
            self.open_link[1] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self.open_link = None


def style_of(a):
    return {k.strip().lower(): v.strip() for k, v in
            (d.split(":", 1) for d in a.get("style", "").split(";") if ":" in d)}


def buttons(html_text):
    """The buttons of an email: (text, href) of each link drawn as a
    block with padding, a background, rounded corners, a text colour and
    no underline."""
    out = []
    for a, text in Tags(html_text).links:
        s = style_of(a)
        if (s.get("display") == "inline-block" and "padding" in s and "background-color" in s and
                "border-radius" in s and "color" in s and s.get("text-decoration") == "none"):
            out.append((" ".join(text.split()), a.get("href", "")))
    return out


def expected_buttons(kind, oid, path):
    """{label: href} of the buttons kind must carry (hrefs as regexes)."""
    base = re.escape(site.base)
    mine = base + re.escape(path) if path else "(no status link)"
    order = base + "/admin/orders/%d" % (oid or 0)
    want = {
        "confirmation": {"See payment details": mine},
        "order_alert": {"Open the order": order},
        "paid": {"Follow your order": mine},
        "answer": {"Read your answer": mine, "Yes, thanks": mine + r"\?rating=yes",
                   "Get my money back": base + "/r/[A-Za-z0-9_-]{68}"},
        "followup_alert": {"Answer it": order},
        "refund_receipt": {"Open your order": mine},
        "refund_alert": {"See the refund request": base + "/admin/refunds"},
        "refunded": {"Open your order": mine},
        "refund_declined": {"Open your order": mine},
        "cancelled": {"Ask a new question": base + "/ask"},
        "card_alert": {"Open the order": order, "See the payment in Stripe":
                       r"https://dashboard\.stripe\.com/test/payments/pi_[A-Za-z0-9]+"},
        "card_refund_alert": {"Open the order": order},
        "erasure_alert": {"Open the order": order},
        "dispute_alert": {"Open the order": order},
        "digest": {"Open the reply queue": base + "/admin"},
        "lost": {"Open PMB-%06d" % (oid or 0): mine},
        "unpaid_reminder": {"Pay now": mine},
        "unpaid_cancelled": {"Ask again": base + "/ask"},
        "info_alert": {"Open the order": order},
        "extra_alert": {"Open the order": order},
        "followups_used": {"Open your order": mine},
        "erased": {"Ask a new question": base + "/ask"},
    }
    return want.get(kind, {})


def same_link(href, want, path):
    """Whether href is want (a regex); a link to the client's status
    page by what its token says (two made in different seconds differ in
    their text)."""
    if path and re.escape(path) in want:
        generic = want.replace(re.escape(path), "/o/[A-Za-z0-9_-]{68}")
        return re.fullmatch(generic, href) is not None and link_token(href) == link_token(path)
    return re.fullmatch(want, href) is not None


# --- the checks of one email ---------------------------------------------------------

def check_html(kind, html_text, about):
    tags = Tags(html_text)
    names = {tag for tag, _ in tags.tags}
    t.ok(not names & {"img", "link", "script", "style", "iframe", "object", "embed", "video", "audio"},
         "%s: no image, stylesheet or script in the HTML part" % kind, sorted(names))
    srcs = [(tag, a) for tag, a in tags.tags if {"src", "srcset", "background"} & set(a) or
            "url(" in a.get("style", "")]
    t.ok(not srcs, "%s: no src=, background= or url() (nothing loaded)" % kind, srcs)
    allowed = (site.base + "/", "mailto:", "https://dashboard.stripe.com/") + \
        ((ANSWER_IMAGE,) if kind == "answer" else ())
    off = [a["href"] for tag, a in tags.tags if "href" in a and not
           (a["href"].startswith(allowed) or a["href"] == site.base)]
    t.ok(not off, "%s: no link off the site but the ones it means" % kind, off)
    colourless = [(tag, a) for tag, a in tags.tags if ("bgcolor" in a or any(
        k.startswith("background") for k in style_of(a))) and "color" not in style_of(a)]
    t.ok(not colourless, "%s: every element with a background has a text colour" % kind, colourless)
    t.ok('<meta name="color-scheme" content="light only">' in html_text and "max-width:600px" in html_text,
         "%s: light colours only, one column at most 600 px wide" % kind)
    got = buttons(html_text)
    oid, path = about
    want = expected_buttons(kind, oid, path)
    missing = [(label, href) for label, href in want.items()
               if not any(text == label and same_link(h, href, path) for text, h in got)]
    t.ok(want and not missing, "%s: its buttons: %s" % (kind, ", ".join(want)),
         "missing %r; has %r" % (missing, got))


def check_escaping(kind, subject, text, html_text):
    if NAME in subject:
        title = re.search(r"<title>(.*?)</title>", html_text, re.S)
        t.ok(title and NAME_SHOWN in title.group(1),
             "%s: the subject names the client as text, and so does the HTML part's title" % kind)
    if kind not in ("digest", "lost"):
        t.ok(NAME not in html_text and NAME_SHOWN in html_text and NAME in text,
             "%s: the client's name with markup in it shows as text in both parts" % kind)
    if kind in HOSTILE:
        raw = HOSTILE[kind]
        shown = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
        t.ok(raw not in html_text and shown in html_text and raw in text,
             "%s: the client's or consultant's text shows as text in both parts" % kind)


def check_text(kind, text):
    bad = [w for w in ("<http", "**", "\\_", "\\*") if w in text]
    t.ok(not bad, "%s: no Markdown marks in the text part" % kind, "%r in:\n%s" % (bad, text))
    t.ok(not re.search(r"\S  ", text) and not re.search(r"[ \t]$", text, re.M) and "\n\n\n" not in text,
         "%s: no double space, no trailing blank, never two blank lines in a row" % kind, text)
    # (A link in the consultant's answer stays in its sentence.)
    loose = [ln for ln in text.splitlines() if "http" in ln and not re.fullmatch(r"https?://\S+", ln) and
             ANSWER_IMAGE not in ln]
    t.ok(not loose, "%s: each link of the email on a line of its own" % kind, loose)


def check_answer_text(text):
    t.ok("Here are three ideas for weekday_sourdough:" in text and
         "- A weekday loyalty card: the fifth loaf is free." in text,
         "answer: the consultant's Markdown is plain text in the text part", text)


def test_every_kind():
    about = make_every_kind()
    mails = {}
    mail_send(int(time.time()))     # every email as sent, in mail_dir
    for oid, kind, subject, text in site.sql(
            "SELECT id, kind, subject, body_text FROM outbox ORDER BY id"):
        if kind not in mails:       # the first of each kind
            if kind == "erased":    # wiped once sent
                subject, text = sent_subject_text(oid)
            mails[kind] = (subject, text, sent_html(oid))
    t.eq(sorted(mails), KINDS, "an email of every kind was made (%d kinds)" % len(KINDS))
    # The outbox stores the body; the frame is added when sent, and on the
    # outbox's page of an email, which shows the HTML part as sent.
    first, stored = site.sql("SELECT id, body_html FROM outbox WHERE kind = 'confirmation' ORDER BY id")[0]
    page = staff.get("/admin/outbox/%d" % first)
    shown = re.search(r'<pre class="mail-text">(.*?)</pre>', page.text.split('id="html-part"', 1)[-1], re.S)
    t.ok(page.status == 200 and shown is not None and unescape(shown.group(1)) == sent_html(first).replace("\r\n", "\n")
         and not stored.lower().startswith("<!doctype") and unescape(shown.group(1)).lower().startswith("<!doctype"),
         "the outbox keeps the confirmation's body without the frame; its page shows the HTML part as sent",
         shown.group(1)[:300] if shown else page.text[-500:])
    os.makedirs(OUT, exist_ok=True)
    for kind in KINDS:
        if kind not in mails:
            continue
        subject, text, html_text = mails[kind]
        check_html(kind, html_text, about.get(kind, (None, None)))
        check_escaping(kind, subject, text, html_text)
        check_text(kind, text)
        with open(os.path.join(OUT, kind + ".html"), "w", encoding="utf-8") as f:
            f.write(html_text)
        with open(os.path.join(OUT, kind + ".txt"), "w", encoding="utf-8") as f:
            f.write("Subject: %s\n\n%s" % (subject, text))
    if "answer" in mails:
        check_answer_text(mails["answer"][1])
        t.ok("<strong>three ideas</strong>" in mails["answer"][2] and "<li>" in mails["answer"][2],
             "answer: the consultant's Markdown is rendered in the HTML part")
        t.ok('<a href="%s">A loyalty card</a>' % ANSWER_IMAGE in mails["answer"][2] and
             "A loyalty card (%s)" % ANSWER_IMAGE in mails["answer"][1],
             "answer: an image of the answer is a link to it in both parts (the email loads nothing)")
        link = re.search(r"^%s \(1 KB\):\n(https?://\S+/o/[A-Za-z0-9_-]{68}/files/\d+)$" % re.escape(ANSWER_FILE),
                         mails["answer"][1], re.M)
        shown = ANSWER_FILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        t.ok(link and ('<a href="%s" style="color:#1d4ed8;">%s</a> (1 KB)' % (link.group(1), shown)) in mails["answer"][2]
             and ANSWER_FILE not in mails["answer"][2],
             "answer: its file is listed by name (as text) and size with its download link in both parts",
             mails["answer"][1])
    return sorted(k for k in KINDS if k in mails)


# --- stand-ins -------------------------------------------------------------------------

def test_standins():
    """Orders sent at once (stored by one group commit): each
    confirmation and alert carries its own number and links in both
    parts, and no stand-in survives in either."""
    got = []

    def one(i):
        got.append(new_order())
    th = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    standin = re.compile(r"pmb[nti][0-9a-f]{24}")
    good = 0
    for c, path, oid in got:
        number = site.sql1("SELECT number FROM orders WHERE id = ?", oid)
        rows = dict((k, (s, tx, h)) for k, s, tx, h in site.sql(
            "SELECT kind, subject, body_text, body_html FROM outbox WHERE order_id = ? "
            "AND kind IN ('confirmation', 'order_alert')", oid))
        if sorted(rows) != ["confirmation", "order_alert"]:
            continue
        s, tx, h = rows["confirmation"]
        conf_ok = (not standin.search(s + tx + h) and number in s and number in tx and number in h and
                   any(link_token(href) == link_token(path) for _, href in buttons(h)) and
                   re.search(re.escape(site.base) + r"/o/[A-Za-z0-9_-]{68}\n", tx))
        s, tx, h = rows["order_alert"]
        admin = "%s/admin/orders/%d" % (site.base, oid)
        alert_ok = (not standin.search(s + tx + h) and number in s and number in h and
                    ("Open the order", admin) in buttons(h) and (admin + "\n") in tx)
        good += bool(conf_ok and alert_ok)
    t.eq(good, 6, "orders stored together: each confirmation and alert has its own number and links "
         "in both parts, and no stand-in in either")


# --- screenshots ---------------------------------------------------------------------

def test_shots(kinds):
    if not os.path.exists(CHROMIUM) or shutil.which("node") is None:
        t.missing("the screenshots of the emails", "chromium or node")
        return
    deps, err = node_deps()
    if not t.ok(deps is not None, "the npm packages of tests/browser (playwright-core) are installed", err):
        return
    cfg = {"deps": deps, "chromium": CHROMIUM, "dir": OUT, "kinds": kinds, "widths": WIDTHS}
    rc, points = node_tap(t, [os.path.join(SRC, "tests", "browser", "mailshots.mjs"), json.dumps(cfg)],
                          SHOTS_TIMEOUT)
    t.ok(rc == 0 and points == len(kinds) * len(WIDTHS) * 5,
         "the screenshots of %d emails at %s px were taken and checked (exit %s)" %
         (len(kinds), " and ".join(map(str, WIDTHS)), rc))
    shots = [os.path.join(OUT, "%s-%d.png" % (k, w)) for k in kinds for w in WIDTHS]
    t.ok(all(os.path.getsize(s) > 1000 for s in shots if os.path.exists(s)) and all(map(os.path.exists, shots)),
         "every screenshot is a picture")
    print("# screenshots: %s" % OUT)


start = time.time()
try:
    shutil.rmtree(OUT, ignore_errors=True)
    kinds = []
    t.run(lambda: kinds.extend(test_every_kind()))
    t.run(test_standins)
    t.run(lambda: test_shots(kinds))
finally:
    site.stop()
    site.cleanup()
    stripe.stop()
    print("# %.1f s" % (time.time() - start))
sys.exit(t.done())
