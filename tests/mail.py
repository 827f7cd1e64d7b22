#!/usr/bin/env python3
"""Mail delivery against a real SMTP server on loopback.

The server is aiosmtpd (Debian's python3-aiosmtpd), run in this process
on a free loopback port: it records the raw bytes of each message with
its envelope, and can be stopped and started again to play a mail server
that is down. Delivery is `pmbctl mail send` / `pmbctl mail run`, the real
programs; orders are placed through nginx with the real site."""
import base64
import email
import email.policy
import email.utils
import hashlib
import hmac
import logging
import os
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, Site, Browser, ask, track_path, link_token, free_port, PMBCTL, missing_tool, stop_daemon  # noqa: E402
from pmbtest import STAFF, login, answered_order  # noqa: E402

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's package, seen from a python3 that is not Debian's own.
    sys.path.append("/usr/lib/python3/dist-packages")
try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:
    missing_tool("python3-aiosmtpd")

logging.getLogger("mail.log").setLevel(logging.CRITICAL)
t = Tap()
HERE = os.path.dirname(os.path.abspath(__file__))


class Recorder:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []          # dicts: from, to, raw, tls, login

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "raw": envelope.original_content,
                "tls": session.ssl is not None or
                server.transport.get_extra_info("sslcontext") is not None,
                "login": session.auth_data.login if session.authenticated else None,
            })
        return "250 2.0.0 Ok: queued"

    def take(self):
        with self.lock:
            out, self.messages = self.messages, []
        return out


class SMTPServer:
    """A real SMTP server on a loopback port that can go down and up."""

    def __init__(self, **kw):
        self.port = free_port()
        self.rec = Recorder()
        self.kw = kw
        self.ctl = None

    def start(self):
        self.ctl = Controller(self.rec, hostname="127.0.0.1", port=self.port, **self.kw)
        self.ctl.start()

    def stop(self):
        if self.ctl is not None:
            self.ctl.stop()
            self.ctl = None


smtp = SMTPServer()
smtp.start()
site = Site(settings={
    "mail_transport": "smtp",
    "smtp_url": "smtp://127.0.0.1:%d" % smtp.port,
    "smtp_timeout": "5",
    "mail_max_attempts": "6",
}, users=STAFF)
site.start()
SMTP_CONF = dict(site.conf)


def set_conf(**kw):
    """Rewrites the settings file: the SMTP defaults of this test plus kw."""
    site.conf = dict(SMTP_CONF)
    site.conf.update(kw)
    site.write_conf()


def mail(*args, now=None, check=True):
    """Runs pmbctl mail ARGS, with PMB_TEST_NOW when now is given."""
    env = site.env()
    if now is not None:
        env["PMB_TEST_NOW"] = str(now)
    return site.ctl("mail", *args, env=env, check=check)


def queue(to_addr="zoe@example.com", to_name="Zoe", subject="Hello", kind="test",
          text="Hello\n", html="<p>Hello</p>\n", now=None, status="queued", claimed_until=None):
    """Writes an outbox row as mail_queue would (or as it never could)."""
    now = int(time.time()) if now is None else now
    c = sqlite3.connect(site.db, timeout=10)
    try:
        cur = c.execute(
            "INSERT INTO outbox (kind, to_addr, to_name, subject, body_text, body_html, "
            "status, next_at, claimed_until, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (kind, to_addr, to_name, subject, text, html, status, now, claimed_until, now))
        c.commit()
        return cur.lastrowid
    finally:
        c.close()


def row(mid):
    r = site.sql("SELECT status, attempts, next_at, last_error, sent_at, claimed_until "
                 "FROM outbox WHERE id = ?", mid)[0]
    return dict(zip(("status", "attempts", "next_at", "last_error", "sent_at", "claimed_until"), r))


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_names(raw):
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0] for line in head.split("\r\n") if line and line[0] not in " \t"]


def signing_keys():
    """The key file (README, Operations): lines ID:KEY, KEY base64url."""
    keys = {}
    for line in open(site.conf["key_file"]):
        line = line.strip()
        if line and not line.startswith("#"):
            kid, k = line.split(":", 1)
            keys[int(kid)] = base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))
    return keys


def short_mac(kid, purpose, num):
    """src/mail_token.c's MAC: HMAC-SHA-512-256(key, PURPOSE ":" ID), 10 bytes."""
    key = signing_keys().get(kid)
    if key is None:
        return None
    return hmac.new(key, ("%s:%d" % (purpose, num)).encode(), hashlib.sha512).digest()[:32][:10]


def b32(text, nbytes):
    """Decodes lowercase unpadded base32 of nbytes bytes, or None."""
    if not re.fullmatch(r"[a-z2-7]+", text) or len(text) != (nbytes * 8 + 4) // 5:
        return None
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def reply_order(addr, local="answers", domain="example.com"):
    """The order a Reply-To address LOCAL+TOKEN@DOMAIN names, or None."""
    m = re.fullmatch(r"%s\+([a-z2-7]{26})@%s" % (local, re.escape(domain)), addr)
    raw = b32(m.group(1), 16) if m else None
    if raw is None:
        return None
    oid = int.from_bytes(raw[1:6], "big")
    return oid if hmac.compare_digest(short_mac(raw[0], "reply", oid) or b"", raw[6:]) else None


def sig_ok(sig, purpose, num):
    raw = b32(sig, 11)
    return raw is not None and hmac.compare_digest(short_mac(raw[0], purpose, num) or b"", raw[1:])


def msgid_outbox(msgid):
    """The outbox row a Message-ID <pmb.ID.SIG@example.com> names, or None."""
    m = re.fullmatch(r"<pmb\.([1-9][0-9]*)\.([a-z2-7]{18})@example\.com>", msgid)
    return int(m.group(1)) if m and sig_ok(m.group(2), "msgid", int(m.group(1))) else None


def verp_outbox(addr):
    """The outbox row a VERP address answers+b-ID-SIG@example.com names, or None."""
    m = re.fullmatch(r"answers\+b-([1-9][0-9]*)-([a-z2-7]{18})@example\.com", addr)
    return int(m.group(1)) if m and sig_ok(m.group(2), "bounce", int(m.group(1))) else None


def test_reply_address():
    """With reply_address set, each email to a client says Reply-To:
    answers+TOKEN@example.com, TOKEN signed for its order; every email's
    envelope sender is the VERP address of its outbox row, its Message-ID
    signed; the consultant's alerts keep Reply-To: admin_email; From stays
    mail_from."""
    smtp.rec.take()
    set_conf(reply_address="answers@example.com")
    try:
        staff = Browser(site)
        login(staff)
        orders = []
        for who in ("rt.one@example.com", "rt.two@example.com"):
            answered_order(site, staff, who)
            orders.append(site.sql1("SELECT id FROM orders WHERE email = ?", who))
        # a consultant's alert about the first order, as page_track.c queues it
        site.sql("INSERT INTO outbox (kind, order_id, to_addr, subject, body_text, next_at, created_at) "
                 "VALUES ('followup_alert', ?, 'consultant@example.com', 'Follow-up', 'x', 0, 0)", orders[0])
        p = mail("send")
        got = smtp.rec.take()
        rows = {r[0]: r[1:] for r in site.sql("SELECT id, kind, order_id, to_addr FROM outbox WHERE order_id IN (?, ?)",
                                              orders[0], orders[1])}
        t.eq(len(got), len(rows), "every message of the two orders arrived " + p.stdout.strip())
        tokens = {}
        kinds = set()
        for m in got:
            msg = parse(m["raw"])
            mid = msgid_outbox(str(msg["Message-ID"]))
            t.ok(mid in rows, "the Message-ID is signed and names its row: %s" % msg["Message-ID"])
            if mid not in rows:
                continue
            kind, oid, to = rows[mid]
            t.eq(verp_outbox(m["from"]), mid, "%s: the envelope sender is its row's VERP address: %s" % (kind, m["from"]))
            t.eq(str(msg["From"]), "Sam Carter <sam@example.com>", "%s: From stays mail_from" % kind)
            rt = msg["Reply-To"].addresses[0].addr_spec
            if to == "consultant@example.com":
                t.eq(rt, "consultant@example.com", "%s: the consultant's alert carries no client Reply-To" % kind)
                kinds.add("alert")
                continue
            t.eq(reply_order(rt), oid, "%s to the client: Reply-To %s names its order" % (kind, rt))
            t.ok(len(rt.split("@")[0]) <= 64, "the local part fits an address")
            tokens.setdefault(oid, set()).add(rt)
            kinds.add(kind)
        t.ok({"confirmation", "answer", "alert"} <= kinds, "a confirmation, an answer and an alert seen: %s" % kinds)
        t.ok(len(tokens) == 2 and not (tokens[orders[0]] & tokens[orders[1]]),
             "two orders, two different reply tokens: %s" % tokens)
        good = min(tokens[orders[0]])
        i = good.index("+") + 20    # in the MAC
        bad = good[:i] + ("b" if good[i] == "a" else "a") + good[i + 1:]
        t.eq(reply_order(bad), None, "a changed token no longer names the order (the check is a real one)")
    finally:
        set_conf()
    for bad, why in (("a.local.part.of.25.charsx@example.com", "at most 24 characters"),
                     ("answers+x@example.com", "may not have")):
        set_conf(reply_address=bad)
        p = mail("send", check=False)
        t.ok(p.returncode != 0 and why in p.stderr, "reply_address %s refused: %s" % (bad, p.stderr.strip()))
    set_conf()
    # empty reply_address: as before
    queue(kind="plain", to_addr="zoe.plain@example.com")
    mail("send")
    got = smtp.rec.take()
    t.eq([(m["from"], str(parse(m["raw"])["Reply-To"])) for m in got], [("sam@example.com", "consultant@example.com")],
         "reply_address empty: envelope mail_from, Reply-To admin_email")


def test_order_confirmation():
    """An order placed through nginx leads to a confirmation at the SMTP
    server whose link opens that order's status page."""
    smtp.rec.take()
    b = Browser(site)
    r = ask(b, name="Zoë Ünal", email="zoe.order@example.com")
    t.eq(r.status, 303, "the question form accepts the order")
    path = track_path(r.header("Location"))
    oid, number = site.sql("SELECT id, number FROM orders WHERE email = 'zoe.order@example.com'")[0]
    mid, created = site.sql("SELECT id, created_at FROM outbox WHERE order_id = ?", oid)[0]
    p = mail("send")
    t.ok("1 sent, 0 failed" in p.stdout, "pmbctl mail send sent one message", p.stdout + p.stderr)
    got = smtp.rec.take()
    t.eq(len(got), 1, "the SMTP server received one message")
    if not got:
        return
    m = got[0]
    t.eq((m["from"], m["to"]), ("sam@example.com", ["zoe.order@example.com"]),
         "envelope: from mail_from's address to the client only")
    msg = parse(m["raw"])
    t.eq(msg["To"].addresses[0].display_name, "Zoë Ünal", "To: the client's UTF-8 name decodes")
    t.eq(msg["To"].addresses[0].addr_spec, "zoe.order@example.com", "To: the client's address")
    t.eq(str(msg["From"]), "Sam Carter <sam@example.com>", "From: mail_from")
    t.eq(str(msg["Reply-To"]), "consultant@example.com", "Reply-To: admin_email")
    t.ok(number in str(msg["Subject"]), "the subject names the order: %s" % msg["Subject"])
    t.eq(msgid_outbox(str(msg["Message-ID"])), mid,
         "Message-ID at the domain of mail_from, signed, naming the row: %s" % msg["Message-ID"])
    t.eq(email.utils.parsedate_to_datetime(str(msg["Date"])).timestamp(), float(created),
         "Date: when the message was queued")
    t.eq(msg.get_content_type(), "multipart/alternative", "multipart/alternative")
    t.ok(all(b < 128 for b in m["raw"]), "the message is 7-bit on the wire")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    t.ok("Zoë Ünal" in text and "Zoë Ünal" in html, "both parts greet the client in UTF-8")
    link = re.search(re.escape(site.base) + r"(/o/[A-Za-z0-9_-]+)", text)
    # The redirect's link was made at another moment (a token carries its
    # second): the order's link is the one whose token agrees.
    t.ok(link is not None and link_token(path) is not None and link_token(link.group(1)) == link_token(path),
         "the text part carries the order's status link", text)
    t.ok(link is not None and (site.base + link.group(1)) in html, "the HTML part carries the same link")
    if link:
        page = Browser(site).get(link.group(1))
        t.eq(page.status, 200, "the link from the email opens a page")
        t.ok(number in page.text, "it is the status page of that order")
    st = row(mid)
    t.eq((st["status"], st["attempts"], st["claimed_until"]), ("sent", 1, None),
         "the outbox row is sent after one try")
    p = mail("send")
    t.ok("0 sent, 0 failed" in p.stdout and not smtp.rec.take(), "a second run sends nothing")


def test_server_down_then_up():
    """Server down: the message stays queued with its error and try count;
    server back: delivered exactly once."""
    smtp.rec.take()
    smtp.stop()
    try:
        b = Browser(site)
        r = ask(b, email="down@example.com")
        t.eq(r.status, 303, "an order is placed while the mail server is down")
        mid = site.sql1("SELECT o.id FROM outbox o JOIN orders r ON r.id = o.order_id "
                        "WHERE r.email = 'down@example.com'")
        before = int(time.time())
        p = mail("send", check=False)
        t.eq(p.returncode, 0, "pmbctl mail send exits 0 when the server is down")
        t.ok("0 sent, 1 failed" in p.stdout, "it reports the failure", p.stdout)
        st = row(mid)
        t.eq((st["status"], st["attempts"]), ("queued", 1), "the message stays queued, 1 try counted")
        t.ok("connect" in st["last_error"].lower(), "last_error says why: " + st["last_error"])
        t.ok(before + 60 <= st["next_at"] <= int(time.time()) + 60,
             "next try in 1 minute", st["next_at"] - before)
        t.ok("#%d confirmation failed (try 1 of 6)" % mid in p.stderr and "Hello" not in p.stderr,
             "the log names the message and kind, not its body", p.stderr)
    finally:
        smtp.start()
    p = mail("send")
    t.ok("0 sent, 0 failed" in p.stdout and not smtp.rec.take(),
         "server back, but the message is not due yet: nothing sent")
    p = mail("send", now=st["next_at"])
    got = smtp.rec.take()
    t.eq([m["to"] for m in got], [["down@example.com"]], "once due, it is delivered")
    st = row(mid)
    t.eq((st["status"], st["attempts"]), ("sent", 2), "sent on the second try")
    mail("send", now=st["next_at"] + 100000)
    t.eq(smtp.rec.take(), [], "and never again")


def test_two_senders():
    """Two pmbctl mail send at once deliver each message exactly once."""
    smtp.rec.take()
    n = 150
    for i in range(n):
        queue(to_addr="many%03d@example.com" % i, kind="many")
    env = site.env()
    procs = [subprocess.Popen([PMBCTL, "mail", "send"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    t.ok(all(p.returncode == 0 for p in procs), "both senders exit 0",
         [o[1][-500:] for o in outs])
    counts = [int(re.search(r"(\d+) sent", o[0]).group(1)) for o in outs]
    got = smtp.rec.take()
    rcpts = sorted(r for m in got for r in m["to"])
    t.eq(len(got), n, "the server received %d messages" % n)
    t.eq(rcpts, sorted("many%03d@example.com" % i for i in range(n)),
         "each message exactly once")
    t.eq(sum(counts), n, "the senders' counts add up: %r" % counts)
    t.ok(min(counts) > 0, "both senders took part: %r" % counts)
    states = site.sql("SELECT status, attempts, count(*) FROM outbox WHERE kind = 'many' "
                      "GROUP BY status, attempts")
    t.eq(states, [("sent", 1, n)], "every row is sent after one try")
    t.eq(len(set(parse(m["raw"])["Message-ID"] for m in got)), n, "distinct Message-IDs")


EVIL_NAME = "Zoë Ünal\r\nBcc: x@evil.example"
EVIL_SUBJECT = "Grüße für Zoë Ünal\r\nBcc: y@evil.example\r\n\r\nbody?"


def test_injection():
    """CR/LF and non-ASCII in the name and subject: decoded as intended,
    no extra header, no extra recipient."""
    smtp.rec.take()
    text = "Hallo Zoë,\n\nhttps://example.com/o/abc\n.\nFrom here on: a line of dots\n"
    mid = queue(to_name=EVIL_NAME, subject=EVIL_SUBJECT, kind="evil", text=text,
                html="<p>Hallo Zoë</p>\n")
    mail("send")
    got = smtp.rec.take()
    t.eq(len(got), 1, "one message")
    if not got:
        return None
    m = got[0]
    t.eq(m["to"], ["zoe@example.com"], "one recipient: the one in to_addr")
    names = header_names(m["raw"])
    t.eq(sorted(names), sorted(["Date", "Message-ID", "From", "Reply-To", "To", "Subject",
                                "MIME-Version", "Auto-Submitted", "Content-Type"]),
         "exactly the headers the builder writes (no Bcc)")
    msg = parse(m["raw"])
    t.eq(len(msg["To"].addresses), 1, "To has one address")
    t.eq(msg["To"].addresses[0].display_name, "Zoë Ünal Bcc: x@evil.example",
         "the name decodes with CR/LF turned to a space")
    t.eq(str(msg["Subject"]), "Grüße für Zoë Ünal Bcc: y@evil.example body?",
         "the subject decodes with CR/LF turned to a space")
    # The subject is also the HTML part's <title> (quoted-printable: a
    # soft line break may put any of its words first on a body line), so
    # the headers are checked: the message's and each part's.
    head = m["raw"].split(b"\r\n\r\n", 1)[0]
    part_heads = [sorted(k.lower() for k in p.keys()) for p in msg.walk() if p is not msg]
    t.ok(b"\nBcc" not in head and b"\nbody?" not in head and part_heads and
         all(h == ["content-transfer-encoding", "content-type"] for h in part_heads),
         "no header line starts with the injected text (the message's, each part's)", part_heads)
    body = msg.get_body(("plain",)).get_content()
    t.eq(body.replace("\r\n", "\n"), text, "the text part arrives whole (dots, 'From ')")
    t.eq(row(mid)["status"], "sent", "the row is sent")
    return mid, m["raw"]


def test_dir_and_sendmail(evil):
    """The dir and sendmail transports write/pipe the same message."""
    if evil is None:
        t.ok(False, "no message to compare")
        return
    mid, raw = evil
    # dir
    set_conf(mail_transport="dir")
    site.sql("UPDATE outbox SET status = 'queued', next_at = 0 WHERE id = ?", mid)
    p = mail("send")
    path = os.path.join(site.conf["mail_dir"], "%d-evil.eml" % mid)
    t.ok(os.path.exists(path), "dir: the message is written as ID-KIND.eml", p.stderr)
    if os.path.exists(path):
        data = open(path, "rb").read()
        t.eq(data, raw, "dir: the file holds the same bytes as the SMTP message")
        t.eq(os.stat(path).st_mode & 0o777, 0o600, "dir: the file is private (0600)")
    t.eq([f for f in os.listdir(site.conf["mail_dir"]) if "tmp" in f], [],
         "dir: no temporary file is left")
    t.eq(row(mid)["status"], "sent", "dir: the row is sent")
    # sendmail: a script that saves its arguments and stdin
    out = os.path.join(site.dir, "sendmail-out")
    os.makedirs(out, exist_ok=True)
    script = os.path.join(site.dir, "fake-sendmail")
    with open(script, "w") as f:
        f.write('#!/bin/sh\nd="%s"\nprintf "%%s\\n" "$@" > "$d/$$.args"\ncat > "$d/$$.eml"\n'
                'exit "${FAKE_SENDMAIL_EXIT:-0}"\n' % out)
    os.chmod(script, 0o755)
    set_conf(mail_transport="sendmail", sendmail_command=script + " -t -i")
    site.sql("UPDATE outbox SET status = 'queued', next_at = 0 WHERE id = ?", mid)
    p = mail("send")
    emls = [f for f in os.listdir(out) if f.endswith(".eml")]
    t.ok(len(emls) == 1, "sendmail: the command ran once", p.stderr)
    if emls:
        data = open(os.path.join(out, emls[0]), "rb").read()
        t.eq(data, raw.replace(b"\r\n", b"\n"),
             "sendmail: stdin is the same message, with local (LF) line ends")
        args = open(os.path.join(out, emls[0][:-4] + ".args")).read().split("\n")
        t.eq(args[:-1], ["-t", "-i"], "sendmail: the command's words, split without a shell")
    t.eq(row(mid)["status"], "sent", "sendmail: exit 0 marks it sent")
    # with reply_address set, the envelope sender goes to sendmail as -f
    set_conf(mail_transport="sendmail", sendmail_command=script + " -t -i", reply_address="answers@example.com")
    for f in os.listdir(out):
        os.unlink(os.path.join(out, f))
    site.sql("UPDATE outbox SET status = 'queued', next_at = 0 WHERE id = ?", mid)
    p = mail("send")
    args = [open(os.path.join(out, f)).read().split("\n")[:-1] for f in os.listdir(out) if f.endswith(".args")]
    t.ok(len(args) == 1 and args[0][:3] == ["-t", "-i", "-f"] and len(args[0]) == 4 and
         verp_outbox(args[0][3]) == mid, "sendmail: -f the row's VERP address: %s" % args, p.stderr)
    set_conf(mail_transport="sendmail", sendmail_command=script + " -t -i")
    # a sendmail that fails
    fail = os.path.join(site.dir, "fail-sendmail")
    with open(fail, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\necho 'queue is full, try later' >&2\nexit 75\n")
    os.chmod(fail, 0o755)
    set_conf(mail_transport="sendmail", sendmail_command=fail + " -t")
    mid2 = queue(kind="sm-fail")
    mail("send")
    st = row(mid2)
    t.eq((st["status"], st["attempts"]), ("queued", 1), "sendmail: a non-zero exit is a failed try")
    t.ok("exited with status 75" in st["last_error"] and "queue is full" in st["last_error"],
         "sendmail: last_error has the status and its message: " + st["last_error"])
    set_conf(mail_transport="sendmail", sendmail_command="/nonexistent/sendmail -t")
    site.sql("UPDATE outbox SET next_at = 0 WHERE id = ?", mid2)
    mail("send")
    st = row(mid2)
    t.ok(st["attempts"] == 2 and "status 127" in st["last_error"] and
         "cannot run" in st["last_error"], "sendmail: a missing command is a failed try: " +
         st["last_error"])
    site.sql("UPDATE outbox SET status = 'failed' WHERE id = ?", mid2)
    set_conf()


def test_backoff():
    """After each failure next_at moves on by 1 min, 5 min, 30 min, 2 h,
    6 h; at mail_max_attempts (6) the message is failed with its error."""
    set_conf(smtp_url="smtp://127.0.0.1:%d" % free_port())
    now = 1900000000
    mid = queue(kind="backoff", now=now)
    for i, pause in enumerate([60, 300, 1800, 7200, 21600]):
        mail("send", now=now - 1 if i == 0 else now)
        if i == 0:
            t.eq(row(mid)["attempts"], 0, "not tried before it is due")
            mail("send", now=now)
        st = row(mid)
        t.eq((st["status"], st["attempts"], st["next_at"] - now), ("queued", i + 1, pause),
             "after failure %d: queued, next try %d s later" % (i + 1, pause))
        mail("send", now=st["next_at"] - 1)
        t.eq(row(mid)["attempts"], i + 1, "not tried again before then")
        now = st["next_at"]
    mail("send", now=now)
    st = row(mid)
    t.eq((st["status"], st["attempts"]), ("failed", 6), "after 6 tries it is failed")
    t.ok("connect" in st["last_error"].lower(), "with the last error: " + st["last_error"])
    mail("send", now=now + 10 ** 7)
    t.eq(row(mid)["attempts"], 6, "a failed message is not tried again by itself")
    p = mail("list", "failed")
    t.ok(re.search(r"^%d\s+failed\s+6 tries" % mid, p.stdout, re.M) and "error:" in p.stdout,
         "pmbctl mail list failed shows it with its error", p.stdout)
    # retry now (what the admin page's button does), with the server back
    set_conf()
    p = mail("retry", str(mid))
    st = row(mid)
    t.ok(st["status"] == "queued" and abs(st["next_at"] - time.time()) < 5,
         "pmbctl mail retry makes it queued and due now")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'mail retry'"), 1,
         "the retry is in the audit log")
    smtp.rec.take()
    mail("send")
    t.eq(row(mid)["status"], "sent", "and the next run delivers it")
    t.eq(len(smtp.rec.take()), 1, "once")
    p = mail("retry", str(mid), check=False)
    t.ok(p.returncode == 1 and "no queued or failed message" in p.stderr,
         "a sent message cannot be retried")
    # an address that no retry can help fails at once
    bad = queue(to_addr="not an address", kind="bad-address")
    mail("send")
    st = row(bad)
    t.ok(st["status"] == "failed" and st["attempts"] == 1 and "address" in st["last_error"],
         "a malformed recipient fails at once: " + st["last_error"])
    p = mail("list")
    want = site.sql("SELECT status, count(*) FROM outbox GROUP BY status")
    want = dict(want)
    t.ok("outbox: %d queued, %d sending, %d sent, %d failed" % tuple(
        want.get(k, 0) for k in ("queued", "sending", "sent", "failed")) in p.stdout,
        "pmbctl mail list ends with the counts of each status", p.stdout[-300:])


def test_claims():
    """A claim of a sender that died expires and the message is taken
    again; a live claim is left alone."""
    smtp.rec.take()
    now = int(time.time())
    dead = queue(kind="claim-dead", status="sending", claimed_until=now - 1)
    live = queue(kind="claim-live", status="sending", claimed_until=now + 600)
    mail("send")
    got = smtp.rec.take()
    t.eq(len(got), 1, "only one of the two claimed messages is sent")
    t.eq(row(dead)["status"], "sent", "the expired claim was taken again and sent")
    st = row(live)
    t.eq((st["status"], st["attempts"]), ("sending", 0), "the live claim was left alone")
    mail("send", now=now + 600)
    t.eq(row(live)["status"], "sent", "once it expires, it is sent too")
    smtp.rec.take()


def test_run_loop():
    """pmbctl mail run: wakes on SIGUSR1, and SIGTERM stops it after the
    message in hand, leaving the rest queued."""
    out = os.path.join(site.dir, "slow-out")
    os.makedirs(out, exist_ok=True)
    slow = os.path.join(site.dir, "slow-sendmail")
    with open(slow, "w") as f:
        f.write('#!/bin/sh\nd="%s"\ntouch "$d/$$.started"\nsleep 1\ncat > "$d/$$.eml"\n' % out)
    os.chmod(slow, 0o755)
    set_conf(mail_transport="sendmail", sendmail_command=slow)
    p = subprocess.Popen([PMBCTL, "mail", "run"], env=site.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.7)
        ids = [queue(to_addr="run%d@example.com" % i, kind="run") for i in range(3)]
        p.send_signal(signal.SIGUSR1)
        end = time.time() + 3
        while time.time() < end and not any(f.endswith(".started") for f in os.listdir(out)):
            time.sleep(0.05)
        woke = time.time() < end
        t.ok(woke, "SIGUSR1 wakes it at once (before its 5 s pause)")
        err = stop_daemon(p)
        t.eq(p.returncode, 0, "SIGTERM: it exits 0")
        states = [row(i)["status"] for i in ids]
        t.ok(sorted(states) == ["queued", "queued", "sent"],
             "it finished the message in hand, and left the rest queued", (states, err))
        t.eq(len([f for f in os.listdir(out) if f.endswith(".eml")]), 1,
             "the message in hand was piped whole")
        t.ok("mail: stopped" in err, "it logs that it stopped")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        set_conf()
    mail("send")
    t.eq(sorted(row(i)["status"] for i in ids), ["sent"] * 3, "the rest go on the next run")


def make_cert():
    """A self-signed certificate for 127.0.0.1; None without openssl."""
    if shutil.which("openssl") is None:
        return None
    key = os.path.join(site.dir, "tls.key")
    crt = os.path.join(site.dir, "tls.crt")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", crt], capture_output=True)
    return (crt, key) if r.returncode == 0 else None


def test_tls_and_login():
    """smtp:// with STARTTLS (required by the server) and a login;
    smtps://. The password never shows in the log or last_error."""
    cert = make_cert()
    if cert is None:
        t.missing("smtp:// with STARTTLS, smtps://", "openssl")
        return
    crt, key = cert
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(crt, key)
    password = "correct horse battery staple"

    def auth(server, session, envelope, mechanism, data):
        good = data.login == b"pmb" and data.password == password.encode()
        return AuthResult(success=good, handled=False, auth_data=data)

    starttls = SMTPServer(tls_context=ctx, require_starttls=True, authenticator=auth,
                          auth_required=True, auth_require_tls=True)
    starttls.start()
    try:
        url = "smtp://127.0.0.1:%d" % starttls.port
        set_conf(smtp_url=url, smtp_user="pmb", smtp_password=password, smtp_ca_file=crt)
        mid = queue(kind="tls")
        p = mail("send")
        got = starttls.rec.take()
        t.ok(len(got) == 1 and got[0]["tls"] and got[0]["login"] == b"pmb",
             "smtp:// upgrades with STARTTLS and logs in", p.stderr)
        t.eq(row(mid)["status"], "sent", "the message is sent")
        set_conf(smtp_url=url, smtp_user="pmb", smtp_password=password)
        mid = queue(kind="tls-untrusted")
        p = mail("send")
        st = row(mid)
        t.ok(st["status"] == "queued" and not starttls.rec.take() and
             ("certificate" in st["last_error"].lower() or "ssl" in st["last_error"].lower()),
             "an untrusted certificate is refused: " + st["last_error"])
        site.sql("UPDATE outbox SET status = 'failed' WHERE id = ?", mid)
        set_conf(smtp_url=url, smtp_user="pmb", smtp_password="wrong " + password,
                 smtp_ca_file=crt)
        mid = queue(kind="tls-badlogin")
        p = mail("send")
        st = row(mid)
        t.ok(st["status"] == "queued" and st["last_error"] and not starttls.rec.take(),
             "a refused login is a failed try: " + st["last_error"])
        t.ok(password not in p.stderr + p.stdout + st["last_error"],
             "the password is in neither the log nor last_error")
        site.sql("UPDATE outbox SET status = 'failed' WHERE id = ?", mid)
    finally:
        starttls.stop()
    implicit = SMTPServer(ssl_context=ctx)
    implicit.start()
    try:
        set_conf(smtp_url="smtps://127.0.0.1:%d" % implicit.port, smtp_ca_file=crt)
        mid = queue(kind="smtps")
        p = mail("send")
        got = implicit.rec.take()
        t.ok(len(got) == 1 and got[0]["tls"], "smtps:// delivers over TLS", p.stderr)
    finally:
        implicit.stop()
        set_conf()


start = time.time()
try:
    t.run(test_order_confirmation)
    t.run(test_server_down_then_up)
    t.run(test_two_senders)
    evil = None

    def test_injection_run():
        global evil
        evil = test_injection()
    t.run(test_injection_run)
    t.run(lambda: test_dir_and_sendmail(evil))
    t.run(test_backoff)
    t.run(test_claims)
    t.run(test_run_loop)
    t.run(test_tls_and_login)
    t.run(test_reply_address)
finally:
    site.cleanup()
    smtp.stop()
print("# %.1f s" % (time.time() - start))
sys.exit(t.done())
