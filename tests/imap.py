#!/usr/bin/env python3
"""Replies by IMAP (issue 18): `pmbctl mail fetch` and `pmbctl mail run`
against a real Dovecot (tests/dovecot.py) on a loopback port.

Messages are put in the mailbox with imaplib's APPEND, and their flags
read back with imaplib. Orders are placed through nginx with the real
site, their Reply-To token read from the confirmation the dir transport
wrote. Checked: a client's reply lands in its order, a stranger's in the
inbox; each message taken carries PmbStored and not \\Seen (and one the
consultant had read keeps \\Seen); a second pass takes nothing; a later
message is taken by the next pass; a message libcurl's own custom FETCH
would cut (lines like the command's tag, a long line, 600 KB) is stored
byte for byte; imap_done_folder moves them; a locked database leaves the
message unmarked for the next pass; a wrong password exits 1 without the
password anywhere; the daemon fetches every imap_poll_seconds; and a
SIGKILL between the COMMIT and the mark (a proxy holds the UID STORE)
stores nothing twice."""
import email
import email.policy
import glob
import os
import shutil
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, PMBCTL, STAFF,  # noqa: E402
                     login, missing_tool, stop_daemon, logs_holding, free_port)
import dovecot  # noqa: E402

if not dovecot.installed():
    missing_tool("dovecot-imapd")

t = Tap()
dc = dovecot.Dovecot()
dc.start()
PASSWORD = dc.password
site = Site(users=STAFF, settings={
    "reply_address": "answers@example.com",
    "imap_url": dc.url(),
    "imap_user": dc.user,
    "imap_password": PASSWORD,
})
site.start()
REMOTE = [0]
SEQ = [0]


def set_conf(**kw):
    site.conf.update(kw)
    site.write_conf()


def fetch(check=True, url=None, **conf):
    """One `pmbctl mail fetch`; returns the CompletedProcess."""
    if conf or url:
        old = dict(site.conf)
        set_conf(**conf)
        if url:
            set_conf(imap_url=url)
    try:
        p = site.ctl("mail", "fetch", check=False)
    finally:
        if conf or url:
            site.conf.clear()
            site.conf.update(old)
            site.write_conf()
    if check and p.returncode != 0:
        raise RuntimeError("mail fetch failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
    return p


def summary(p):
    """The last line of a mail fetch: its counts (the lines before name
    each message)."""
    lines = [ln for ln in p.stdout.splitlines() if " stored, " in ln]
    return lines[-1] if lines else "(no summary) " + " | ".join(p.stderr.splitlines())[-300:]


def line_with(text, part):
    """The first line of text that holds part, or "" (a test point's name
    is one line)."""
    return next((ln for ln in text.splitlines() if part in ln), "")


def counts(p):
    m = re.search(r"mail fetch: (\d+) stored, (\d+) duplicate, (\d+) dropped, (\d+) left", p.stdout)
    return tuple(int(x) for x in m.groups()) if m else p.stdout + p.stderr


def new_order(addr):
    """An order placed through nginx by a new client; returns (id, the
    Reply-To address and Message-ID of its confirmation)."""
    REMOTE[0] += 1
    c = Browser(site, remote="198.51.100.%d" % REMOTE[0])
    r = ask(c, email=addr)
    assert r.status == 303, r
    oid = site.sql1("SELECT id FROM orders WHERE email = ? ORDER BY id DESC", addr)
    site.ctl("mail", "send")
    for path in glob.glob(os.path.join(site.conf["mail_dir"], "*-confirmation.eml")):
        with open(path, "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        if msg["To"].addresses[0].addr_spec == addr:
            return oid, msg["Reply-To"].addresses[0].addr_spec, str(msg["Message-ID"])
    raise AssertionError("no confirmation to %s" % addr)


def message(frm, to, body, subject="Re: your question", extra=""):
    """A plain message with a Message-ID of its own."""
    SEQ[0] += 1
    mid = "<imap-test-%d-%d@client.example>" % (SEQ[0], os.getpid())
    raw = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
           "Message-ID: %s\r\n%sMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n"
           % (frm, to, subject, mid, extra, body))
    return raw.encode(), mid


def inbound(mid):
    return site.sql("SELECT id, via, order_id, status FROM inbound WHERE message_key = ?", mid.strip("<>"))


def flags_of(uid, mailbox="INBOX"):
    return dc.flags(mailbox).get(uid)


def test_fetch():
    """A client's reply to a real order's Reply-To lands in the order; a
    stranger's and a read one go to the inbox; all marked PmbStored,
    \\Seen untouched; a second pass takes nothing; a later one is taken."""
    oid, reply_to, conf_mid = new_order("ada.imap@bakery.example")
    t.ok(reply_to.startswith("answers+"), "the confirmation's Reply-To carries a token: %s" % reply_to)
    raw1, mid1 = message("Ada Baker <ada.imap@bakery.example>", reply_to,
                         "We open at seven on weekdays, if that helps.",
                         extra="In-Reply-To: %s\r\n" % conf_mid)
    raw2, mid2 = message("Mallory <mallory@stranger.example>", reply_to, "Stranger text must not show.")
    raw3, mid3 = message("Bob <bob@other.example>", "answers@example.com", "Read already by the consultant.")
    u1, u2 = dc.append(raw1), dc.append(raw2)
    u3 = dc.append(raw3, flags="\\Seen")
    p = fetch()
    t.eq(counts(p), (3, 0, 0, 0), "mail fetch takes the three messages: " + summary(p))
    t.ok("UID %d:" % u1 in p.stdout and "order %d)" % oid in line_with(p.stdout, "UID %d:" % u1),
         "it prints what became of each, the reply's order named: " + line_with(p.stdout, "UID %d:" % u1))
    rows = [inbound(m) for m in (mid1, mid2, mid3)]
    t.ok(all(len(r) == 1 and r[0][1] == "imap" for r in rows), "each is stored once, via imap: %s" % rows)
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND body LIKE '%open at seven%'", oid), 1,
         "the client's reply is a message of its order")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE body LIKE '%Stranger text%'"), 0,
         "the stranger's text is in no order")
    staff = Browser(site)
    login(staff)
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok("open at seven" in page, "the order's page shows the reply (through nginx)")
    fl = dc.flags()
    t.ok(all("PmbStored" in fl[u] for u in (u1, u2, u3)), "each carries the keyword PmbStored: %s" % fl)
    t.ok("\\Seen" not in fl[u1] and "\\Seen" not in fl[u2], "and none was marked \\Seen: %s" % fl)
    t.ok("\\Seen" in fl[u3], "the one the consultant had read keeps \\Seen")
    n = site.sql1("SELECT count(*) FROM inbound")
    p = fetch()
    t.eq(counts(p), (0, 0, 0, 0), "a second pass takes nothing")
    t.eq(site.sql1("SELECT count(*) FROM inbound"), n, "and stores nothing")
    raw4, mid4 = message("Ada Baker <ada.imap@bakery.example>", reply_to, "One more thing: parking is free.")
    u4 = dc.append(raw4)
    p = fetch()
    t.eq(counts(p), (1, 0, 0, 0), "a message appended later is taken by the next pass")
    t.ok(len(inbound(mid4)) == 1 and "PmbStored" in flags_of(u4) and "\\Seen" not in flags_of(u4),
         "stored and marked, not \\Seen: %s" % flags_of(u4))
    raw5, mid5 = message("Vacation <away@other.example>", reply_to, "I am away.",
                         extra="Auto-Submitted: auto-replied\r\n")
    u5 = dc.append(raw5)
    p = fetch()
    t.eq(counts(p), (0, 0, 1, 0), "an auto-reply is dropped, and counted as such")
    t.ok("PmbStored" in flags_of(u5), "a dropped message is marked too (not fetched again)")


def test_whole_bytes():
    """Messages that libcurl 7.88's custom "UID FETCH N BODY.PEEK[]" cuts
    or misreads (measured: it reads the literal as response lines) are
    stored byte for byte: lines that look like IMAP tags and responses, a
    200 KB line, 600 KB in all, no final newline."""
    tags = "".join("%s%03d OK fake\r\n" % (c, i) for c in "AP" for i in range(0, 40))
    tags += "".join("p%d OK fake\r\n" % i for i in range(0, 40))
    body = ("* 9 EXISTS\r\n+ go on\r\n" + tags + "x" * 200000 + "\r\n" +
            ("y" * 76 + "\r\n") * 5000 + ") {5}\r\nno final newline")
    raw, mid = message("Carol <carol@other.example>", "answers@example.com", body)
    raw = raw[:-2]
    uid = dc.append(raw)
    p = fetch()
    t.eq(counts(p), (1, 0, 0, 0), "the message is taken: " + summary(p))
    got = site.sql1("SELECT raw FROM inbound WHERE message_key = ?", mid.strip("<>"))
    t.ok(got == raw, "stored byte for byte (%d bytes; got %s)" % (len(raw), None if got is None else len(got)))
    t.ok("PmbStored" in flags_of(uid), "and marked")


def test_done_folder():
    """With imap_done_folder, a message taken is moved there, unseen;
    every message left in the mailbox (UID SEARCH ALL) is a new one. A
    folder that does not exist: exit 1, the message stored but left, and
    moved (as a duplicate) once the folder is right."""
    dc.create("Moves")
    url = dc.url("Moves")
    raw, mid = message("Dan <dan@other.example>", "answers@example.com", "Move me.")
    dc.append(raw, mailbox="Moves")
    p = fetch(url=url, imap_done_folder="Done")
    t.eq(counts(p), (1, 0, 0, 0), "mail fetch with imap_done_folder takes it: " + summary(p))
    t.eq(dc.count("Moves"), 0, "it left the mailbox")
    done = dc.flags("Done")
    t.ok(len(done) == 1 and all("\\Seen" not in f for f in done.values()),
         "it is in Done, not \\Seen: %s" % done)
    t.eq(len(inbound(mid)), 1, "and stored once")
    raw, mid = message("Dan <dan@other.example>", "answers@example.com", "Move me too.")
    dc.append(raw, mailbox="Moves")
    p = fetch(check=False, url=url, imap_done_folder="No such folder")
    t.eq(p.returncode, 1, "a done folder that does not exist: exit 1")
    t.ok("UID MOVE" in p.stderr and "No such folder" in p.stderr, "naming the move that failed: " + line_with(p.stderr, "UID MOVE"))
    t.eq((len(inbound(mid)), dc.count("Moves")), (1, 1), "the message is stored, and left in the mailbox")
    p = fetch(url=url, imap_done_folder="Done")
    t.eq(counts(p), (0, 1, 0, 0), "the next pass moves it, a duplicate: " + summary(p))
    t.eq((dc.count("Moves"), dc.count("Done"), len(inbound(mid))), (0, 2, 1), "moved, stored once")


def test_locked_database():
    """The database locked (busy): the message stays unmarked, exit 1;
    the next pass takes it."""
    raw, mid = message("Erin <erin@other.example>", "answers@example.com", "While locked.")
    uid = dc.append(raw)
    db = sqlite3.connect(site.db, timeout=10, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        p = fetch(check=False, busy_timeout_ms="200")
    finally:
        db.execute("ROLLBACK")
        db.close()
    t.eq(p.returncode, 1, "mail fetch exits 1 while the database is locked")
    t.ok("database" in p.stderr and "next pass" in p.stderr, "and says why: " + line_with(p.stderr, "next pass"))
    t.ok("PmbStored" not in flags_of(uid) and "\\Seen" not in flags_of(uid),
         "the message is left unmarked: %s" % flags_of(uid))
    t.eq(counts(p)[3] if isinstance(counts(p), tuple) else None, 1, "and counted as left")
    p = fetch()
    t.eq(counts(p), (1, 0, 0, 0), "the next pass takes it")
    t.ok("PmbStored" in flags_of(uid), "and marks it")


def test_wrong_password():
    """A wrong password: exit 1 with a clear message, the password in no
    output and no log; pmbctl check does not show it either."""
    secret = "Wr0ng-imap-Secret-%d" % os.getpid()
    p = fetch(check=False, imap_password=secret)
    t.eq(p.returncode, 1, "a wrong password: mail fetch exits 1")
    t.ok("Login denied" in p.stderr and "imap_password" in p.stderr, "with a clear message: " + line_with(p.stderr, "Login denied"))
    t.ok(secret not in p.stdout + p.stderr, "without the password in it")
    REMOTE[0] += 1
    r = ask(Browser(site, remote="198.51.100.%d" % REMOTE[0]), email="hal.imap@bakery.example")
    assert r.status == 303, r
    hal = site.sql1("SELECT id FROM orders WHERE email = 'hal.imap@bakery.example'")
    set_conf(imap_password=secret)
    try:
        c = site.ctl("check", check=False)
        d = subprocess.Popen([PMBCTL, "mail", "run"], env=site.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        # Dovecot answers a failed login after auth_failure_delay (2 s).
        deadline = time.time() + 15
        while time.time() < deadline and site.sql1(
                "SELECT status FROM outbox WHERE order_id = ? AND kind = 'confirmation'", hal) != "sent":
            time.sleep(0.2)
        err = stop_daemon(d)
    finally:
        set_conf(imap_password=PASSWORD)
    t.ok(secret not in c.stdout + c.stderr, "pmbctl check does not show imap_password")
    t.ok("imap_url" not in c.stdout, "nor warns of a complete IMAP setup: " + line_with(c.stdout, "imap_"))
    set_conf(imap_user="", reply_address="")
    try:
        c = site.ctl("check", check=False)
    finally:
        set_conf(imap_user=dc.user, reply_address="answers@example.com")
    t.ok("imap_user is empty" in c.stdout and "reply_address is empty" in c.stdout,
         "pmbctl check warns of imap_url without imap_user, and without reply_address")
    t.ok("Login denied" in err and secret not in err, "mail run logs the failed pass without the password: "
         + line_with(err, "Login denied"))
    t.eq(site.sql("SELECT status FROM outbox WHERE order_id = ? AND kind = 'confirmation'", hal), [("sent",)],
         "the failed pass did not hold up the outbox: the new order's confirmation was delivered")
    _, found = logs_holding(site.dir, secret)
    t.eq(found, [], "no log of the site holds the password")
    _, found = logs_holding(dc.dir, secret)
    t.eq(found, [], "nor Dovecot's log")
    p = subprocess.run([PMBCTL, "--help"], capture_output=True, text=True)
    t.ok("mail fetch" in p.stdout + p.stderr, "pmbctl --help lists mail fetch")


def test_daemon():
    """mail run with imap_poll_seconds = 1 takes a message appended while
    it runs, and still delivers the outbox."""
    set_conf(imap_poll_seconds="1")
    d = subprocess.Popen([PMBCTL, "mail", "run"], env=site.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        raw, mid = message("Fay <fay@other.example>", "answers@example.com", "Taken by the daemon.")
        uid = dc.append(raw)
        deadline = time.time() + 15
        while time.time() < deadline and not inbound(mid):
            time.sleep(0.2)
        t.eq(len(inbound(mid)), 1, "the daemon took a message appended while it ran")
        deadline = time.time() + 5
        while time.time() < deadline and "PmbStored" not in flags_of(uid):
            time.sleep(0.2)
        t.ok("PmbStored" in flags_of(uid), "and marked it")
    finally:
        err = stop_daemon(d)
        set_conf(imap_poll_seconds="60")
    t.ok("mail fetch: 1 stored" in err and "UID %d: inbox" % uid in err,
         "its log says what it took: " + line_with(err, "UID %d" % uid))
    t.ok(PASSWORD not in err, "and never the password")


def test_tls_verified():
    """imaps:// and STARTTLS check the server's certificate: a Dovecot
    with a self-signed one is refused before the login, and the pass
    stores nothing."""
    if shutil.which("openssl") is None:
        t.missing("imap TLS", "openssl")
        return
    tls = dovecot.Dovecot(tls=True)
    try:
        tls.start()
        raw, mid = message("Tia <tia@other.example>", "answers@example.com", "Over TLS.")
        uid = tls.append(raw)
        logins = tls.log_text().count("Login: user=<sam>")
        for url, how in ((tls.url(tls=True), "imaps://"), (tls.url(), "imap:// (STARTTLS offered)")):
            p = fetch(check=False, url=url)
            t.eq(p.returncode, 1, "%s to an untrusted certificate: exit 1" % how)
            t.ok("certificate" in p.stderr, "saying why: " + line_with(p.stderr, "pmbctl"))
        t.eq(inbound(mid), [], "nothing stored")
        t.eq(tls.log_text().count("Login: user=<sam>"), logins, "and the server saw no login of pmbctl's")
        t.ok("PmbStored" not in tls.flags().get(uid, set()), "nor a mark")
    finally:
        tls.cleanup()


class Proxy:
    """A TCP proxy to Dovecot that, once the client sends UID STORE or
    UID MOVE, holds it (forwards nothing more) and sets held."""

    def __init__(self, target, address="127.0.0.1"):
        self.target = target
        self.sent = b""  # all that the client sent
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.held = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.pipe, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pipe, args=(s, c, False), daemon=True).start()

    def pipe(self, a, b, client):
        seen = b""
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if client:
                    self.sent += data
                    seen = (seen + data)[-200:]
                    if b"UID STORE" in seen or b"UID MOVE" in seen:
                        self.held.set()
                        return  # held: never forwarded
                b.sendall(data)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def own_address():
    """This machine's address that is not loopback, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent
        addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    except OSError:
        return None
    finally:
        s.close()


def test_starttls_required():
    """imap:// to a server that is not this machine: without STARTTLS
    offered, the pass ends before the password is sent."""
    addr = own_address()
    if addr is None:
        t.skip("STARTTLS required off loopback", "this machine has no address but loopback")
        return
    proxy = Proxy(dc.port, address=addr)
    try:
        p = fetch(check=False, url="imap://%s:%d/INBOX" % (addr, proxy.port))
    finally:
        proxy.close()
    t.eq(p.returncode, 1, "imap:// to %s, a server without STARTTLS: exit 1" % addr)
    t.ok("TLS" in p.stderr or "SSL" in p.stderr, "saying why: " + line_with(p.stderr, "pmbctl"))
    t.ok(b"CAPABILITY" in proxy.sent and b"AUTHENTICATE" not in proxy.sent and b"LOGIN" not in proxy.sent,
         "the client asked for the server's capabilities and sent no login: %r" % proxy.sent[:200])


def killed_before_mark(conf):
    """Runs `pmbctl mail fetch` through a proxy that holds its UID STORE
    or UID MOVE, with the settings conf, and SIGKILLs it there. Returns
    (whether the mark was held, pmbctl's exit status)."""
    proxy = Proxy(dc.port)
    old = dict(site.conf)
    set_conf(**conf)
    set_conf(imap_url=conf["imap_url"].replace(":%d/" % dc.port, ":%d/" % proxy.port))
    try:
        p = subprocess.Popen([PMBCTL, "mail", "fetch"], env=site.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        held = proxy.held.wait(20)
        p.send_signal(signal.SIGKILL)
        p.communicate()
    finally:
        site.conf.clear()
        site.conf.update(old)
        site.write_conf()
        proxy.close()
    return held, p.returncode


def test_crash_between_commit_and_mark():
    """pmbctl killed (SIGKILL) after the COMMIT, before the server took
    the UID STORE: the next pass stores nothing twice and marks it. The
    same with imap_done_folder and its UID MOVE."""
    oid, reply_to, _ = new_order("gil.imap@bakery.example")
    raw, mid = message("Gil <gil.imap@bakery.example>", reply_to, "Crash test reply: the shop is small.")
    uid = dc.append(raw)
    held, rc = killed_before_mark({"imap_url": dc.url()})
    t.ok(held, "the proxy holds the client's UID STORE")
    t.eq(rc, -signal.SIGKILL, "pmbctl was killed")
    t.eq(len(inbound(mid)), 1, "the message was committed before the mark")
    t.ok("PmbStored" not in flags_of(uid), "and is not marked: %s" % flags_of(uid))
    p = fetch()
    t.eq(counts(p), (0, 1, 0, 0), "the next pass finds it a duplicate: " + summary(p))
    t.eq(len(inbound(mid)), 1, "one inbound row")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND body LIKE '%shop is small%'", oid), 1,
         "one message in the order")
    t.ok("PmbStored" in flags_of(uid) and "\\Seen" not in flags_of(uid), "and now it is marked, unseen")

    dc.create("Crash")
    raw, mid = message("Gil <gil.imap@bakery.example>", reply_to, "Crash test, moved: the till is old.")
    dc.append(raw, mailbox="Crash")
    done = dc.count("Done")
    held, rc = killed_before_mark({"imap_url": dc.url("Crash"), "imap_done_folder": "Done"})
    t.ok(held and rc == -signal.SIGKILL, "killed while the proxy holds its UID MOVE")
    t.eq((len(inbound(mid)), dc.count("Crash"), dc.count("Done")), (1, 1, done),
         "committed, still in the mailbox, not moved")
    p = fetch(url=dc.url("Crash"), imap_done_folder="Done")
    t.eq(counts(p), (0, 1, 0, 0), "the next pass finds it a duplicate: " + summary(p))
    t.eq((len(inbound(mid)), dc.count("Crash"), dc.count("Done")), (1, 0, done + 1), "and moves it, stored once")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND body LIKE '%till is old%'", oid), 1,
         "one message in the order")


def test_bounded_pass():
    """At most 100 messages a pass, oldest first; the rest are left."""
    mids = []
    for i in range(103):
        raw, mid = message("Sender %d <s%d@many.example>" % (i, i), "answers@example.com", "Message %d." % i)
        mids.append((dc.append(raw), mid))
    p = fetch()
    t.eq(counts(p), (100, 0, 0, 3), "one pass takes 100 and leaves 3: " + summary(p))
    fl = dc.flags()
    t.ok(all("PmbStored" in fl[u] for u, _ in mids[:100]) and not any("PmbStored" in fl[u] for u, _ in mids[100:]),
         "the oldest 100 are marked, the newest 3 are not")
    p = fetch()
    t.eq(counts(p), (3, 0, 0, 0), "the next pass takes the 3 left")


try:
    for fn in (test_fetch, test_whole_bytes, test_done_folder, test_locked_database, test_wrong_password,
               test_daemon, test_tls_verified, test_starttls_required, test_crash_between_commit_and_mark, test_bounded_pass):
        t.run(fn)
finally:
    site.stop()
    dc.cleanup()
    site.cleanup()
sys.exit(t.done())
