#!/usr/bin/env python3
"""Replies by email land in the order (issue 18): `pmbctl mail receive`
reads one message on standard input, as a mail server's pipe gives it,
through the real pmbctl into the real SQLite file, with the pages read
through real nginx. A client's reply before the answer is more
information; after it, a follow-up exactly as the status page makes one;
with the allowance used up, a message outside it (the client told once).
Strangers, messages naming no order and refunded orders wait in the
inbox; auto-replies, bulk mail, our own mail come back and floods are
dropped and counted; a bounce marks the email it names. Exit 75 while
the database is locked; the same message twice is stored once. Also the
reply marker in our emails, and migration 021 on a database with rows."""
import base64
import email
import email.policy
import glob
import hashlib
import hmac
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     answered_order, track_path, schema_at, STAFF, SRC, PMBCTL)

t = Tap()
SAMPLES = os.path.join(SRC, "tests", "mail-samples")
MARKER = "-- Reply above this line --"
site = Site(users=STAFF, settings={"reply_address": "answers@example.com",
                                   "followups_included": "1", "busy_timeout_ms": "300"})
site.start()
staff = Browser(site)
login(staff)
SEQ = [0]


def receive(raw, env=None):
    """Pipes raw (bytes) to pmbctl mail receive; returns (exit, stdout+stderr)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw, capture_output=True,
                       env=env or site.env(), timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def send_mail():
    site.ctl("mail", "send")


def sent(oid, kind):
    """The email of kind sent for order oid (from mail_dir), parsed."""
    ids = [i for (i,) in site.sql("SELECT id FROM outbox WHERE order_id = ? AND kind = ? ORDER BY id", oid, kind)]
    assert ids, "no %s for order %d" % (kind, oid)
    paths = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % ids[-1]))
    assert len(paths) == 1, paths
    with open(paths[0], "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def reply(to_msg, sender, text, to=None, thread=True, subject=None, headers=(), msgid=None):
    """A reply to our email to_msg from sender: To its Reply-To (or to),
    In-Reply-To its Message-ID (thread), the original quoted below an
    "On ... wrote:" line as Gmail writes it."""
    SEQ[0] += 1
    quoted = "\n".join("> " + line for line in to_msg.get_body(preferencelist=("plain",)).get_content().splitlines())
    lines = ["From: %s" % sender,
             "To: %s" % (to or to_msg["Reply-To"].addresses[0].addr_spec),
             "Subject: %s" % (subject or "Re: " + str(to_msg["Subject"])),
             "Date: Mon, 7 Dec 2026 12:00:%02d +0000" % (SEQ[0] % 60),
             "Message-ID: %s" % (msgid or "<reply.%d.%d@client.example>" % (os.getpid(), SEQ[0])),
             "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8"]
    if thread:
        lines.append("In-Reply-To: %s" % to_msg["Message-ID"])
        lines.append("References: %s" % to_msg["Message-ID"])
    lines += list(headers)
    body = "%s\n\nOn Mon, 7 Dec 2026 at 11:00, Sam Carter <sam@example.com> wrote:\n%s\n" % (text, quoted)
    return ("\r\n".join(lines) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def new_order(email_addr, pay=False):
    """A new order of email_addr (paid if pay), its mail sent. Returns
    (order id, status path)."""
    c = Browser(site, remote="192.0.2.%d" % (100 + SEQ[0] % 100))
    SEQ[0] += 1
    path = track_path(ask(c, email=email_addr).header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email_addr)
    if pay:
        staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                   "csrf_token": admin_csrf(staff)})
    send_mail()
    return oid, path


def thread(oid):
    return site.sql("SELECT kind, body, inbound_id IS NOT NULL FROM messages WHERE order_id = ? ORDER BY id", oid)


def alerts(oid, kind):
    return site.sql("SELECT to_addr, body_text FROM outbox WHERE order_id = ? AND kind = ?", oid, kind)


def drops():
    return dict(site.sql("SELECT reason, n FROM inbound_drops"))


def test_marker():
    """Our emails to a client carry the reply marker above the text, in
    both parts; the consultant's alerts do not."""
    oid, _ = new_order("marker.client@example.com")
    msg = sent(oid, "confirmation")
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    t.ok(text.startswith(MARKER + "\n"), "the confirmation's text part starts with the marker: %r" % text[:60])
    t.ok(MARKER in html and html.index(MARKER) < html.index("Thank you for your question"), "its HTML part shows the marker above the text")
    site.sql("INSERT INTO outbox (kind, order_id, to_addr, subject, body_text, body_html, next_at, created_at) "
             "VALUES ('followup_alert', ?, 'consultant@example.com', 'Alert', 'alert text', '<p>alert</p>', 0, 0)", oid)
    send_mail()
    alert = sent(oid, "followup_alert")
    t.ok(MARKER not in alert.get_body(preferencelist=("plain",)).get_content() and
         MARKER not in alert.get_body(preferencelist=("html",)).get_content(),
         "the consultant's alert has no marker")


def test_before_answer():
    """A reply before the answer is more information: in the thread (only
    what the client wrote, not the quote), the consultant alerted, the
    status unchanged; the same message again is stored once."""
    oid, path = new_order("info.client@example.com", pay=True)
    before = site.sql1("SELECT status || ' ' || due_at FROM orders WHERE id = ?", oid)
    raw = reply(sent(oid, "confirmation"), "Ivy Client <info.client@example.com>",
                "We sell <b>handmade</b> soap, mostly online.\nOur budget is 500 a month.")
    rc, out = receive(raw)
    t.ok(rc == 0 and "more information" in out, "mail receive exits 0: " + out.strip())
    t.eq(thread(oid)[1:], [("info", "We sell <b>handmade</b> soap, mostly online.\nOur budget is 500 a month.", 1)],
         "the thread gains the client's text as more information, quote cut, marked as by email")
    t.eq(site.sql1("SELECT status || ' ' || due_at FROM orders WHERE id = ?", oid), before,
         "the order's status and due time are unchanged")
    a = alerts(oid, "info_alert")
    t.ok(len(a) == 1 and a[0][0] == "consultant@example.com" and "handmade" in a[0][1],
         "the consultant is alerted with the text")
    t.eq(site.sql("SELECT status, order_id, via FROM inbound WHERE order_id = ?", oid), [("routed", oid, "pipe")],
         "the email is kept, routed to the order")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'more information received'", oid), 1,
         "audited")
    rc, out = receive(raw)
    t.ok(rc == 0 and "duplicate" in out, "the same message again exits 0 as a duplicate: " + out.strip())
    t.eq((len(thread(oid)), len(alerts(oid, "info_alert")),
          site.sql1("SELECT count(*) FROM inbound WHERE order_id = ?", oid)), (2, 1, 1),
         "stored once: one message, one alert, one inbound row")
    raw_kept = site.sql1("SELECT raw FROM inbound WHERE order_id = ?", oid)
    t.eq(raw_kept, raw, "the raw message is kept byte for byte")


def test_html_and_large():
    """An HTML-only reply reaches the order as text (libxml2), the quote
    cut; a message over 25 MB waits in the inbox, cut, its size said."""
    oid, _ = new_order("html.client@example.com", pay=True)
    conf = sent(oid, "confirmation")
    raw = ("From: html.client@example.com\r\nTo: %s\r\nSubject: Re\r\nMessage-ID: <h.%d@c.example>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           "<div dir=\"ltr\">We also sell <b>candles</b> &amp; soap.<br>Since 2019.</div><br>"
           "<div class=\"gmail_quote\"><blockquote>%s<br>Hello</blockquote></div>\r\n"
           % (conf["Reply-To"].addresses[0].addr_spec, os.getpid(), MARKER)).encode()
    rc, out = receive(raw)
    t.eq(thread(oid)[-1], ("info", "We also sell candles & soap.\nSince 2019.", 1),
         "an HTML-only reply is its text in the thread: " + out.strip())
    # a reply with a file: the text, then the file listed, saying it was
    # kept as a file of the message (tests/staff_files.py); the email's
    # row keeps the plain list
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "html.client@example.com", conf["Reply-To"].addresses[0].addr_spec, "Re"
    m["Message-ID"] = "<att.%d@c.example>" % os.getpid()
    m.set_content("Our price list is attached.")
    m.add_attachment(b"%PDF-1.4\n" + b"0" * 2000, maintype="application", subtype="pdf", filename="price list.pdf")
    rc, out = receive(m.as_bytes())
    t.eq(thread(oid)[-1], ("info", "Our price list is attached.\n\nAttached to the email:\n"
                                   "price list.pdf (application/pdf, 2 KB): kept", 1),
         "a reply's file is listed under its text: " + out.strip())
    t.eq(site.sql1("SELECT attachments FROM inbound WHERE message_key = ?", "att.%d@c.example" % os.getpid()),
         "price list.pdf (application/pdf, 2 KB)", "and kept listed with the email")
    t.eq(site.sql("SELECT name, kind, size FROM files WHERE message_id = "
                  "(SELECT max(id) FROM messages WHERE order_id = ?)", oid),
         [("price list.pdf", "pdf", 2009)], "and kept as a file of the message it came with")
    big = reply(conf, "html.client@example.com", "See the attached catalogue.")
    big += b"x" * (25 * 1024 * 1024 + 1000) + b"\r\n"
    rc, out = receive(big)
    row = site.sql("SELECT status, reason, raw_size, length(raw) FROM inbound WHERE raw_size > 25000000")
    t.ok(rc == 0 and row and row[0][0] == "inbox" and "too large" in row[0][1] and row[0][2] == len(big) and
         row[0][3] == 25 * 1024 * 1024, "a message over 25 MB: the inbox, cut, its size kept: %r" % (row[:1],))


def test_followup():
    """After the answer, a reply is a follow-up exactly as the status
    page makes one: status, one of the allowance, due time, alert, audit.
    With the allowance used up, the next reply is a message outside it:
    no new due time, the consultant sees it, the client is told once."""
    client, path, oid, _ = answered_order(site, staff, "fu.client@example.com")
    send_mail()
    answer = sent(oid, "answer")
    now = int(time.time())
    rc, out = receive(reply(answer, "fu.client@example.com", "Thanks! And for a shop with two staff?"))
    t.ok(rc == 0 and "follow-up" in out, "a reply to the answer is a follow-up: " + out.strip())
    st, used, due = site.sql("SELECT status, followups_used, due_at FROM orders WHERE id = ?", oid)[0]
    hours = int(site.conf.get("answer_hours", 48))
    t.ok(st == "followup" and used == 1 and abs(due - (now + hours * 3600)) < 120,
         "status followup, allowance 1 used, due in answer_hours: %s %s %s" % (st, used, due - now))
    t.eq(thread(oid)[-1], ("followup", "Thanks! And for a shop with two staff?", 1), "the thread's follow-up, by email")
    t.eq(len(alerts(oid, "followup_alert")), 1, "the consultant's follow-up alert is queued")
    t.eq(site.sql1("SELECT detail FROM audit WHERE order_id = ? AND action = 'follow-up received'", oid), "by email",
         "audited as by email")
    page = client.get(path).text
    t.ok("And for a shop with two staff?" in page, "the client's status page shows the follow-up")
    # the consultant answers the follow-up: the allowance (1) is used up
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Same idea.", "csrf_token": admin_csrf(staff),
                                                    "confirm": "yes"})
    t.eq(r.status, 303, "the follow-up is answered")
    send_mail()
    before = site.sql1("SELECT status || ' ' || due_at || ' ' || followups_used FROM orders WHERE id = ?", oid)
    rc, out = receive(reply(sent(oid, "answer"), "fu.client@example.com", "One more thing: and for three staff?"))
    t.ok(rc == 0 and "outside the allowance" in out, "a reply with the allowance used up: " + out.strip())
    t.eq(site.sql1("SELECT status || ' ' || due_at || ' ' || followups_used FROM orders WHERE id = ?", oid), before,
         "no new status, due time or allowance")
    t.eq(thread(oid)[-1], ("extra", "One more thing: and for three staff?", 1), "the thread shows it as extra")
    t.eq(len(alerts(oid, "extra_alert")), 1, "the consultant is alerted")
    told = alerts(oid, "followups_used")
    t.ok(len(told) == 1 and told[0][0] == "fu.client@example.com", "the client is told the follow-ups are used up")
    rc, out = receive(reply(sent(oid, "answer"), "fu.client@example.com", "And four?"))
    t.ok(rc == 0 and len(alerts(oid, "followups_used")) == 1 and len(alerts(oid, "extra_alert")) == 2,
         "a second such message: alerted again, the client told only once: " + out.strip() + repr((alerts(oid, "followups_used"), alerts(oid, "extra_alert"))))
    t.ok("three staff" not in client.get(path).text, "a message outside the allowance is not on the status page")


def test_thread_only():
    """A reply to answers@ without the token, but In-Reply-To our
    Message-ID, routes by the thread."""
    oid, _ = new_order("thread.client@example.com", pay=True)
    rc, out = receive(reply(sent(oid, "confirmation"), "Thread.Client@Example.com", "By thread.",
                            to="answers@example.com"))
    t.ok(rc == 0 and thread(oid)[-1] == ("info", "By thread.", 1),
         "routed by In-Reply-To (From compared without case): " + out.strip())


def test_strangers():
    """A stranger's mail to a valid token, mail naming no order, and a
    reply on a refunded order wait in the inbox: never in the thread,
    never on the status page."""
    oid, path = new_order("victim.client@example.com", pay=True)
    conf = sent(oid, "confirmation")
    n = len(thread(oid))
    rc, out = receive(reply(conf, "attacker@evil.example", "Send the answer to attacker@evil.example instead."))
    t.ok(rc == 0 and "inbox" in out, "a stranger's mail to the order's token: exit 0, inbox: " + out.strip())
    t.eq(len(thread(oid)), n, "nothing added to the order's thread")
    row = site.sql("SELECT status, reason, suggested_id, order_id FROM inbound WHERE from_addr = 'attacker@evil.example'")
    t.ok(row and row[0][0] == "inbox" and "not the order's client" in row[0][1] and row[0][2] == oid and
         row[0][3] is None, "in the inbox, why, the order suggested: %r" % row)
    c = Browser(site)
    t.ok("attacker@evil.example" not in c.get(path).text, "the stranger's text is not on the status page")
    t.eq(len(alerts(oid, "info_alert")), 0, "no alert as if the client wrote")
    # no token, no thread: the subject only suggests
    SEQ[0] += 1
    raw = ("From: someone@else.example\r\nTo: answers@example.com\r\nSubject: About PMB-%06d\r\n"
           "Message-ID: <loose.%d@else.example>\r\n\r\nHello, is this about my order?\r\n" % (oid, SEQ[0]))
    rc, out = receive(raw)
    row = site.sql("SELECT status, suggested_id, reason FROM inbound WHERE from_addr = 'someone@else.example'")
    t.ok(rc == 0 and row == [("inbox", oid, "not a reply to one of this site's emails")],
         "no token, no thread: the inbox, the order its subject names suggested: %r" % row)
    # the spoofed sample: From looks like a client, the token is not ours
    with open(os.path.join(SAMPLES, "spoofed.eml"), "rb") as f:
        rc, out = receive(f.read())
    t.ok(rc == 0 and "inbox" in out, "the spoofed sample goes to the inbox: " + out.strip())
    # a refunded order's client
    client, path2, oid2, refund = answered_order(site, staff, "refunded.client@example.com")
    site.sql("UPDATE orders SET status = 'refunded' WHERE id = ?", oid2)
    send_mail()
    rc, out = receive(reply(sent(oid2, "answer"), "refunded.client@example.com", "Thanks anyway."))
    t.ok(rc == 0 and site.sql1("SELECT reason FROM inbound WHERE from_addr = 'refunded.client@example.com'")
         == "the order is Refunded", "a refunded order's reply waits in the inbox: " + out.strip())


def test_drops():
    """Auto-replies, bulk and list mail, our own mail come back, a flood
    from one sender and empty input are dropped, each counted."""
    before = drops()
    for name, reason in (("autoreply.eml", "auto_submitted"), ("list.eml", "precedence")):
        with open(os.path.join(SAMPLES, name), "rb") as f:
            rc, out = receive(f.read())
        t.ok(rc == 0 and reason in out, "%s is dropped as %s: %s" % (name, reason, out.strip()))
    oid, _ = new_order("loop.client@example.com")
    ours = sent(oid, "confirmation")
    rc, out = receive(ours.as_bytes())
    t.ok(rc == 0 and "loop" in out, "our own confirmation come back is dropped as a loop: " + out.strip())
    rc, out = receive(b"")
    t.ok(rc == 0 and "empty" in out, "empty input: exit 0, counted: " + out.strip())
    limit = 20
    for i in range(limit + 2):
        raw = ("From: flood@spam.example\r\nTo: answers@example.com\r\nSubject: hi %d\r\n"
               "Message-ID: <flood.%d.%d@spam.example>\r\n\r\nbuy now\r\n" % (i, os.getpid(), i))
        rc, out = receive(raw)
    t.eq(site.sql1("SELECT count(*) FROM inbound WHERE from_addr = 'flood@spam.example'"), limit,
         "one sender: %d kept in an hour, the rest dropped" % limit)
    after = drops()
    t.eq({k: after[k] - before.get(k, 0) for k in after},
         {"auto_submitted": 1, "precedence": 1, "loop": 1, "rate": 2, "bounce_unknown": 0, "empty": 1},
         "each drop counted under its reason")


def dsn(original, verp=None, status="5.1.1", diag="smtp; 550 5.1.1 <x@invalid.example>: User unknown"):
    """A delivery status notification of original (our email, parsed),
    as Postfix writes one: to the envelope sender (the VERP address), the
    returned headers in text/rfc822-headers."""
    SEQ[0] += 1
    headers = "".join("%s: %s\r\n" % (k, v) for k, v in original.items())
    return ("From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
            "To: %s\r\nSubject: Undelivered Mail Returned to Sender\r\n"
            "Auto-Submitted: auto-replied\r\nMessage-ID: <dsn.%d.%d@mx.example.net>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message could not "
            "be delivered.\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            "Final-Recipient: rfc822; x@invalid.example\r\nAction: failed\r\nStatus: %s\r\n"
            "Diagnostic-Code: %s\r\n\r\n"
            "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n%s\r\n--B--\r\n"
            % (verp or "sam@example.com", os.getpid(), SEQ[0], status, diag, headers)).encode("utf-8")


def test_bounce():
    """A bounce of our confirmation marks its outbox row bounced with the
    diagnostic, matched by the returned Message-ID or by the VERP address;
    a bounce of no message of ours is dropped and counted."""
    oid, _ = new_order("bounce.client@example.com")
    conf = sent(oid, "confirmation")
    rc, out = receive(dsn(conf))
    row = site.sql("SELECT status, bounce FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid)
    t.ok(rc == 0 and row[0][0] == "bounced" and "5.1.1" in row[0][1] and "User unknown" in row[0][1],
         "the confirmation is bounced, with the diagnostic: %r %s" % (row, out.strip()))
    t.eq(site.sql("SELECT status, order_id FROM inbound WHERE status = 'bounce' AND order_id = ?", oid),
         [("bounce", oid)], "the bounce is kept, with its order")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'email bounced'", oid), 1, "audited")
    # by VERP alone: the returned headers are not ours
    oid2, _ = new_order("bounce2.client@example.com")
    stripped = email.message_from_string("From: x@y.example\r\nSubject: something\r\n\r\n")
    row_id = site.sql1("SELECT id FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid2)
    rc, out = receive(dsn(stripped, verp=verp(row_id)))
    t.eq(site.sql1("SELECT status FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid2), "bounced",
         "matched by the VERP address it came back to: " + out.strip())
    before = drops()["bounce_unknown"]
    with open(os.path.join(SAMPLES, "bounce.eml"), "rb") as f:
        rc, out = receive(f.read())
    t.ok(rc == 0 and drops()["bounce_unknown"] == before + 1, "a bounce of no message of ours: dropped, counted")


def verp(outbox_id):
    """The VERP address mail_transport.c sends outbox row outbox_id from
    (the dir transport keeps no envelope): answers+b-ID-SIG@example.com,
    SIG = base32(key id, HMAC-SHA-512-256(key, "bounce:ID")[:10]), the
    key file's first key signing (README, Operations)."""
    with open(site.conf["key_file"]) as f:
        kid, k = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")][0].split(":", 1)
    key = base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
    mac = hmac.new(key, ("bounce:%d" % outbox_id).encode(), hashlib.sha512).digest()[:10]
    sig = base64.b32encode(bytes([int(kid)]) + mac).decode().lower().rstrip("=")
    return "answers+b-%d-%s@example.com" % (outbox_id, sig)


def test_locked():
    """While another writer holds the database, mail receive exits 75
    (EX_TEMPFAIL) and stores nothing; once free, the same message is
    stored."""
    oid, _ = new_order("locked.client@example.com", pay=True)
    raw = reply(sent(oid, "confirmation"), "locked.client@example.com", "Sent while locked.")
    con = sqlite3.connect(site.db, timeout=1)
    con.execute("BEGIN IMMEDIATE")
    try:
        rc, out = receive(raw)
    finally:
        con.rollback()
        con.close()
    t.ok(rc == 75, "exit 75 while the database is locked: %d %s" % (rc, out.strip()))
    t.eq(site.sql1("SELECT count(*) FROM inbound WHERE from_addr = 'locked.client@example.com'"), 0,
         "nothing stored")
    rc, out = receive(raw)
    t.ok(rc == 0 and thread(oid)[-1] == ("info", "Sent while locked.", 1), "the retry stores it: " + out.strip())
    bad = dict(site.env())
    bad["PMB_CONFIG"] = os.path.join(site.dir, "missing.conf")
    rc, out = receive(raw, env=bad)
    t.eq(rc, 75, "a settings file that cannot be read: 75, so the mail server keeps the message")


def test_migration():
    """Migration 021 rebuilds messages and outbox with every row kept, the
    search index still follows the thread."""
    s = Site()
    try:
        schema_at(s.db, 20)
        con = sqlite3.connect(s.db)
        oid = con.execute("INSERT INTO orders (form_token, name, email, price, currency, status, created_at, "
                          "due_at, updated_at) VALUES ('ft', 'Mo', 'mo@example.com', 100, 'GBP', 'paid', 1, 2, 1)"
                          ).lastrowid
        con.execute("INSERT INTO messages (order_id, kind, body, created_at, html) "
                    "VALUES (?, 'question', 'zanzibar marketing', 1, NULL)", (oid,))
        con.execute("INSERT INTO outbox (kind, order_id, to_addr, subject, body_text, status, next_at, created_at, "
                    "sent_at) VALUES ('confirmation', ?, 'mo@example.com', 'S', 'B', 'sent', 0, 1, 2)", (oid,))
        con.commit()
        con.close()
        p = s.ctl("migrate", check=False)
        t.ok(p.returncode == 0 and s.sql1("PRAGMA user_version") >= 21, "migrate to 021: " + p.stdout + p.stderr)
        t.eq(s.sql("SELECT kind, body FROM messages"), [("question", "zanzibar marketing")], "messages kept")
        t.eq(s.sql("SELECT status, sent_at, bounce FROM outbox"), [("sent", 2, "")], "outbox kept")
        t.eq(s.sql1("PRAGMA foreign_key_check"), None, "no broken reference")
        s.sql("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'info', 'quokka', 3)", oid)
        s.ctl("search", "index")
        t.eq(s.sql("SELECT rowid FROM search_fts WHERE search_fts MATCH 'quokka'"), [(oid,)],
             "more information is searched with the question")
        t.eq(sorted(n for (n,) in s.sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = "
                                        "'messages' AND name LIKE 'search%'")),
             ["search_message_delete", "search_message_insert", "search_message_update"],
             "the search triggers on messages are made again")
    finally:
        s.cleanup()


try:
    for fn in (test_marker, test_before_answer, test_html_and_large, test_followup, test_thread_only, test_strangers, test_drops,
               test_bounce, test_locked, test_migration):
        t.run(fn)
finally:
    site.cleanup()
t.done()
