#!/usr/bin/env python3
"""The consultant's side of mail that comes in (issue 18), through real
nginx and pmb.fcgi: GET /admin/inbox (the messages waiting, newest first,
keyset paged; ?show=done; the dropped counts in words), one message's
page and its raw download, attaching (as an internal note, as the
client's message: 'info' before the answer, 'extra' after) and
discarding, each audited, once (409 for the second), behind CSRF (403),
a bad order number (400, what was typed kept); the thread's new kinds on
the order page and the status page (a stranger's text never reaches the
client's page until the consultant attaches it as the client's); and the
bounce flag on the order page, the queue and the outbox. Real messages
come in through `pmbctl mail receive` (a stranger's reply to an order's
Reply-To, the client's own, a DSN of our confirmation, an auto-reply);
the pages' finer cases are written into `inbound` as the intake
(src/mail_intake.c) stores them."""
import email
import email.policy
import glob
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, login, admin_csrf,  # noqa: E402
                     answered_order, unescape, STAFF, SRC, PMBCTL)

t = Tap()
site = Site(users=STAFF, settings={"reply_address": "answers@example.com"})
site.start()
staff = Browser(site)
login(staff)
N = [0]


def order_with_path(paid=False):
    """A new client's order (paid by bank transfer if paid); returns
    (client Browser, status path, order id)."""
    N[0] += 1
    email = "client%d@bakery.example" % N[0]
    c = Browser(site, remote="198.51.100.%d" % N[0])
    r = ask(c, email=email)
    assert r.status == 303, r
    path = track_path(r.header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
    if paid:
        p = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                       "csrf_token": admin_csrf(staff)})
        assert p.status == 303, p
    return c, path, oid


def inbound(body, subject="Re: your question", from_addr="stranger@elsewhere.example",
            from_name="A Stranger", reason="the sender is not the order's client", suggested=None,
            status="inbox", raw=None, attachments="", order_id=None):
    """Stores a received message as the intake does; returns its id."""
    raw = raw if raw is not None else (
        "From: %s <%s>\r\nSubject: %s\r\nMessage-ID: <m%d@elsewhere.example>\r\n\r\n%s\r\n"
        % (from_name, from_addr, subject, N[0], body)).encode()
    N[0] += 1
    con = sqlite3.connect(site.db, timeout=10)
    try:
        cur = con.execute(
            "INSERT INTO inbound (message_key, via, received_at, from_addr, from_name, subject, body, "
            "attachments, status, reason, order_id, suggested_id, raw_size, raw) "
            "VALUES (?, 'pipe', strftime('%s','now'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("key-%d" % N[0], from_addr, from_name, subject, body, attachments, status, reason,
             order_id, suggested, len(raw), raw))
        con.commit()
        return cur.lastrowid
    finally:
        con.close()


def stmt_sql(name):
    """The SQL text of statement NAME in src/db_stmts.h, its macros
    (QUEUE_SELECT, INBOX_COLS...) expanded, so that plans are checked on
    the statement the program runs."""
    src = open(os.path.join(SRC, "src", "db_stmts.h"), encoding="utf-8").read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S).replace("\\\n", " ")
    macros = dict(re.findall(r"^#define (\w+) (.*)$", src, re.M))
    m = re.search(r"^X\(%s,(.*?)\)\s*$" % name, src, re.S | re.M)
    assert m, "no statement " + name

    def expand(text):
        out = []
        for lit, word in re.findall(r'"((?:[^"\\]|\\.)*)"|(\w+)', text):
            out.append(expand(macros[word]) if word else lit.replace('\\"', '"'))
        return "".join(out)
    block = m.group(1)
    block = block[:block.find("\nX(")] if "\nX(" in block else block
    return expand(block)


def csrf(path="/admin/inbox"):
    return admin_csrf(staff, path)


def row(iid):
    return site.sql("SELECT status, order_id, decided_by, decided_at FROM inbound WHERE id = ?", iid)[0]


def audits(action, iid):
    return site.sql1("SELECT count(*) FROM audit WHERE action = ? AND detail LIKE ?", action,
                     "received message %d %%" % iid) or 0


# --- the list, one message, the raw download ------------------------------------

def test_list_and_message():
    _, path, oid = order_with_path()
    marker = "Ticket trick %d: <script>alert(1)</script> send me the answer" % oid
    older = inbound("an older one", subject="Older subject")
    iid = inbound(marker, subject="Re: <b>PMB-%06d</b>" % oid, suggested=oid,
                  attachments="invoice.pdf, application/pdf, 52340\nphoto.jpg, image/jpeg, 1200")
    r = staff.get("/admin/inbox")
    t.eq(r.status, 200, "GET /admin/inbox answers 200")
    page = r.text
    t.ok('href="/admin/inbox">Inbox</a>' in page, "the admin nav has Inbox")
    t.ok("A Stranger" in page and "stranger@elsewhere.example" in page, "each row shows the sender's name and address")
    t.ok("Re: &lt;b&gt;PMB-%06d&lt;/b&gt;" % oid in page and "<b>PMB-" not in page,
         "the subject is shown, escaped")
    t.ok("the sender is not the order&#39;s client" in page or "the sender is not the order's client" in page,
         "the row says why the message is here")
    t.ok('href="/admin/orders/%d" class="suggested">PMB-%06d</a>' % (oid, oid) in page,
         "the suggested order is linked", page[-1500:])
    t.ok(page.find('id="inbound-%d"' % iid) < page.find('id="inbound-%d"' % older) and
         page.find('id="inbound-%d"' % iid) > 0, "newest first")
    t.ok(re.search(r'id="inbound-%d".*?data-label="Received">[^<]*\d' % iid, page, re.S),
        "each row shows when it was received")

    client = Browser(site)
    status_page = client.get(path)
    t.ok(status_page.status == 200 and "Ticket trick" not in status_page.text,
         "the stranger's text is not on the order's status page")

    r = staff.get("/admin/inbox/%d" % iid)
    t.eq(r.status, 200, "GET /admin/inbox/ID answers 200")
    t.ok("Ticket trick %d: &lt;script&gt;alert(1)&lt;/script&gt;" % oid in r.text and "<script>alert(1)" not in r.text,
         "the message's text is shown escaped, as text")
    t.ok("invoice.pdf, application/pdf, 52340" in r.text and "photo.jpg" in r.text, "its attachments are listed")
    t.ok('href="/admin/inbox/%d/raw"' % iid in r.text, "the page links its raw message")
    t.ok('action="/admin/inbox/%d/attach"' % iid in r.text and 'action="/admin/inbox/%d/discard"' % iid in r.text,
         "the page has the attach and discard forms")
    t.ok(re.search(r'name="order" value="PMB-%06d"' % oid, r.text), "the attach form is prefilled with the suggestion")
    t.ok(re.search(r'value="note" checked', r.text) and not re.search(r'value="client" checked', r.text),
         "attach defaults to an internal note")
    t.ok(staff.get("/admin/inbox/999999").status == 404 and staff.get("/admin/inbox/x").status == 404,
         "an unknown message is 404")
    anon = Browser(site)
    r = anon.get("/admin/inbox")
    t.ok(r.status in (302, 303) or "Ticket trick" not in r.text, "the inbox needs a session")
    t.ok("Ticket trick" not in anon.get("/admin/inbox/%d" % iid).text and
         anon.get("/admin/inbox/%d/raw" % iid).status != 200, "a message and its raw need a session")
    r = staff.get("/admin/inbox?before=abc")
    t.eq(r.status, 400, "a bad page cursor is 400")


def test_raw():
    raw = (b"From: Zo\xeb <zoe@elsewhere.example>\r\nSubject: =?iso-8859-1?q?caf=E9?=\r\n"
           b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n<html><script>alert(1)</script>caf\xe9</html>\r\n")
    iid = inbound("café", raw=raw)
    r = staff.get("/admin/inbox/%d/raw" % iid)
    t.eq(r.status, 200, "the raw download answers 200")
    t.eq(r.body, raw, "the raw download is the message byte for byte")
    t.ok((r.header("Content-Type") or "").startswith("message/rfc822"), "as message/rfc822, never HTML",
         r.header("Content-Type"))
    t.ok((r.header("Content-Disposition") or "").startswith("attachment;") and
         ("pmb-inbound-%d.eml" % iid) in r.header("Content-Disposition"), "as a download (Content-Disposition: attachment)",
         r.header("Content-Disposition"))
    t.eq(r.header("X-Content-Type-Options"), "nosniff", "with X-Content-Type-Options: nosniff")
    t.eq(staff.get("/admin/inbox/999999/raw").status, 404, "an unknown message's raw is 404")


# --- deciding ---------------------------------------------------------------------

def test_csrf():
    _, _, oid = order_with_path()
    iid = inbound("csrf please")
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": str(oid), "as": "note"})
    t.eq(r.status, 403, "attach without the CSRF token is 403")
    r = staff.post("/admin/inbox/%d/discard" % iid, {})
    t.eq(r.status, 403, "discard without the CSRF token is 403")
    r = staff.post("/admin/inbox/%d/discard" % iid, {"csrf_token": "forged"})
    t.eq(r.status, 403, "discard with a wrong token is 403")
    t.eq(row(iid)[0], "inbox", "and the message still waits")
    t.eq(staff.get("/admin/inbox/%d/attach" % iid).status, 405, "GET never attaches (405)")


def test_bad_order():
    iid = inbound("bad order")
    for typed, says in (("PMB-999999", "There is no order PMB-999999."),
                        ("nonsense<b>", "Enter an order number such as PMB-000123 or 123.")):
        r = staff.post("/admin/inbox/%d/attach" % iid, {"order": typed, "as": "client", "csrf_token": csrf()})
        t.eq(r.status, 400, "attach to %r is 400" % typed)
        t.ok(says in unescape(r.text), "the page says so: " + says, unescape(r.text)[-1500:])
        t.ok(('value="%s"' % typed.replace("<", "&lt;").replace(">", "&gt;")) in r.text,
             "and keeps what was typed (%r)" % typed)
        t.ok(re.search(r'value="client" checked', r.text), "and the choice of client")
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "12", "as": "public", "csrf_token": csrf()})
    t.ok(r.status == 400 and "Attach it as the client&#39;s message or as an internal note." in r.text
         or r.status == 400 and "Attach it as the client's message or as an internal note." in r.text,
         "attach as anything but client or note is 400, saying so")
    t.eq(row(iid)[0], "inbox", "the message still waits")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE inbound_id = ?", iid), 0, "no message was added")


def test_attach_note():
    _, path, oid = order_with_path(paid=True)
    marker = "Note from email %d <i>hi</i>" % oid
    iid = inbound(marker, suggested=oid)
    uid = site.sql1("SELECT id FROM users WHERE username = 'sam'")
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "PMB-%06d" % oid, "as": "note", "csrf_token": csrf()})
    t.eq(r.status, 303, "attach answers 303")
    t.ok((r.header("Location") or "").endswith("/admin/inbox?done=attached"), "to the inbox with ?done=attached",
         r.header("Location"))
    st, o, by, at = row(iid)
    t.ok(st == "attached" and o == oid and by == uid and at, "the message is attached, with who and when", (st, o, by, at))
    m = site.sql("SELECT kind, body, user_id FROM messages WHERE inbound_id = ?", iid)
    t.eq(m, [("note", marker, uid)], "a note of the order, with the message's text and inbound_id")
    t.eq(audits("attach email", iid), 1, "audited")
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok("Note from email %d &lt;i&gt;hi&lt;/i&gt;" % oid in page, "the order page shows the note as text")
    t.ok(re.search(r"Internal note by sam</strong>[^<]*· by email \(<a href=\"/admin/inbox/%d\">message</a>, "
                   r"<a href=\"/admin/inbox/%d/raw\">raw</a>" % (iid, iid), page), "marked by email, with its raw linked")
    t.ok("Note from email" not in Browser(site).get(path).text, "a note is never on the status page")
    t.ok("The message was attached to the order." in staff.get("/admin/inbox?done=attached").text,
         "the inbox shows the notice")
    t.ok('id="inbound-%d"' % iid not in staff.get("/admin/inbox").text, "it no longer waits")
    done = staff.get("/admin/inbox?show=done").text
    t.ok(re.search(r'id="inbound-%d".*?attached to PMB-%06d by sam' % (iid, oid), done, re.S),
         "?show=done lists it, with what became of it and who decided")

    again = staff.post("/admin/inbox/%d/attach" % iid, {"order": str(oid), "as": "client", "csrf_token": csrf()})
    t.eq(again.status, 409, "attaching twice is 409")
    t.ok("Someone decided on this message first" in again.text, "the 409 page says someone decided first")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE inbound_id = ?", iid), 1, "no second message")
    t.eq(staff.post("/admin/inbox/%d/discard" % iid, {"csrf_token": csrf()}).status, 409,
         "discarding an attached message is 409")
    t.eq(row(iid)[0], "attached", "it stays attached")
    t.eq(audits("attach email", iid) + audits("discard email", iid), 1, "one audit row")


def test_attach_client_before_answer():
    _, path, oid = order_with_path(paid=True)
    marker = "More detail by email %d: the shop is in Leeds" % oid
    iid = inbound(marker, from_addr="client-other@bakery.example", suggested=oid)
    client = Browser(site)
    t.ok(marker not in client.get(path).text, "before it is attached, the status page does not show it")
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "%d" % oid, "as": "client", "csrf_token": csrf()})
    t.eq(r.status, 303, "attach as client answers 303")
    t.eq(site.sql("SELECT kind, user_id FROM messages WHERE inbound_id = ?", iid), [("info", None)],
         "before the answer, the client's message is 'info' (more information)")
    page = client.get(path).text
    t.ok(marker in page and "More information you sent" in page, "the status page shows it as more information")
    admin = staff.get("/admin/orders/%d" % oid).text
    t.ok(marker in admin and "More information from the client" in admin, "so does the order page")
    t.eq(audits("attach email", iid), 1, "audited")


def test_attach_client_after_answer():
    client, path, oid, _ = answered_order(site, staff, "answered%d@bakery.example" % N[0])
    marker = "After the answer by email %d" % oid
    iid = inbound(marker, reason="the order is refunded", suggested=oid)
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "pmb-%06d" % oid, "as": "client", "csrf_token": csrf()})
    t.eq(r.status, 303, "attach as client to an answered order answers 303")
    t.eq(site.sql1("SELECT kind FROM messages WHERE inbound_id = ?", iid), "extra",
         "after the answer, the client's message is 'extra'")
    t.ok(marker not in client.get(path).text, "the status page never shows an 'extra' message")
    admin = staff.get("/admin/orders/%d" % oid).text
    t.ok(marker in admin and "Message after the follow-ups were used up — not counted, no new due time" in admin,
         "the order page shows it, saying it is not counted")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "answered", "the order's status is unchanged")


def test_discard():
    iid = inbound("throw me away", subject="Discard me")
    r = staff.post("/admin/inbox/%d/discard" % iid, {"csrf_token": csrf("/admin/inbox/%d" % iid)})
    t.eq(r.status, 303, "discard answers 303")
    t.ok((r.header("Location") or "").endswith("/admin/inbox?done=discarded"), "to the inbox with ?done=discarded")
    st, o, by, at = row(iid)
    t.ok(st == "discarded" and o is None and by and at, "the message is discarded, with who and when")
    t.eq(audits("discard email", iid), 1, "audited")
    t.ok("The message was discarded." in staff.get("/admin/inbox?done=discarded").text, "the notice")
    t.ok('id="inbound-%d"' % iid not in staff.get("/admin/inbox").text, "it no longer waits")
    t.ok(re.search(r'id="inbound-%d".*?discarded by sam' % iid, staff.get("/admin/inbox?show=done").text, re.S),
         "?show=done lists it as discarded by sam")
    t.eq(staff.post("/admin/inbox/%d/discard" % iid, {"csrf_token": csrf()}).status, 409, "discarding twice is 409")
    t.eq(audits("discard email", iid), 1, "still one audit row")
    r = staff.get("/admin/inbox/%d" % iid)
    t.ok('action="/admin/inbox/%d/attach"' % iid not in r.text, "a decided message has no forms")


def test_drops_footer():
    for reason, n in (("auto_submitted", 12), ("precedence", 3), ("loop", 1), ("rate", 0),
                      ("bounce_unknown", 2), ("empty", 0)):
        site.sql("UPDATE inbound_drops SET n = ? WHERE reason = ?", n, reason)
    text = unescape(staff.get("/admin/inbox").text)
    want = ("12 auto-replies, 3 bulk or list messages, 1 of our own messages come back, 0 over the hourly "
            "limit from one sender, 2 bounces of no message of ours, 0 empty")
    t.ok(want in text, "the footer counts the dropped messages in words", text[-600:])
    site.sql("UPDATE inbound_drops SET n = 1 WHERE reason = 'auto_submitted'")
    t.ok("1 auto-reply," in unescape(staff.get("/admin/inbox?show=done").text), "one is said as one")


def test_paging():
    site.sql("UPDATE inbound SET status = 'discarded' WHERE status = 'inbox'")
    ids = [inbound("page %d" % i, subject="Page %d" % i) for i in range(57)]
    seen, path = [], "/admin/inbox"
    for _ in range(5):
        r = staff.get(path)
        seen += [int(x) for x in re.findall(r'<tr id="inbound-(\d+)"', r.text)]
        m = re.search(r'href="(/admin/inbox\?before=\d+)" id="older"', r.text)
        if not m:
            break
        path = m.group(1)
    t.eq(seen, sorted(ids, reverse=True), "keyset paging (?before=ID) shows every waiting message once, newest first")
    con = sqlite3.connect(site.db)
    try:
        for name, index in (("INBOX_WAITING", "inbound_status"), ("INBOX_DONE", "INTEGER PRIMARY KEY")):
            sql = stmt_sql(name)
            plan = " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + sql, (10 ** 9, 51)))
            t.ok(index in plan and "TEMP B-TREE" not in plan and "SCAN i " not in plan + " ",
                 "%s walks %s, no sort" % (name, index), plan)
    finally:
        con.close()


# --- real mail, through pmbctl mail receive -----------------------------------------

def receive(raw):
    """Pipes raw (bytes) to `pmbctl mail receive`, as a mail server does;
    returns (exit status, what it wrote)."""
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw, capture_output=True, env=site.env(), timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def our_email(oid, kind):
    """Our email of kind to order oid's client, as the dir transport wrote
    it (`pmbctl mail send` first), parsed."""
    site.ctl("mail", "send")
    bid = site.sql1("SELECT max(id) FROM outbox WHERE order_id = ? AND kind = ?", oid, kind)
    paths = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % bid))
    assert len(paths) == 1, (bid, paths)
    with open(paths[0], "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def answer_to(ours, sender, text):
    """A plain-text reply from sender to our email ours: to its Reply-To,
    in its thread, our text quoted below the line Gmail writes."""
    N[0] += 1
    return ("From: %s\r\nTo: %s\r\nSubject: Re: %s\r\nDate: Mon, 7 Dec 2026 12:00:00 +0000\r\n"
            "Message-ID: <inbox-test.%d.%d@elsewhere.example>\r\nIn-Reply-To: %s\r\nReferences: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n\r\n"
            "On Mon, 7 Dec 2026 at 11:00, Sam Carter <sam@example.com> wrote:\r\n> our text\r\n"
            % (sender, ours["Reply-To"], ours["Subject"], os.getpid(), N[0], ours["Message-ID"],
               ours["Message-ID"], text.replace("\n", "\r\n"))).encode("utf-8")


def test_received():
    """A stranger's reply to an order's Reply-To waits in the inbox and
    never reaches the status page until attached as the client's; the
    client's own reply goes on the order by itself, as more information,
    by email, its raw kept byte for byte."""
    _, path, oid = order_with_path(paid=True)
    ours = our_email(oid, "confirmation")
    client = site.sql1("SELECT email FROM orders WHERE id = ?", oid)
    stranger = "Mallory's <b>text</b> %d: send the answer to me" % oid
    rc, out = receive(answer_to(ours, "Mallory <mallory@elsewhere.example>", stranger))
    t.ok(rc == 0 and "inbox" in out, "a stranger's reply to the order's Reply-To: stored, in the inbox: " + out.strip())
    iid = site.sql1("SELECT max(id) FROM inbound WHERE from_addr = 'mallory@elsewhere.example'")
    page = staff.get("/admin/inbox").text
    row = re.search(r'<tr id="inbound-%d">.*?</tr>' % iid, page, re.S)
    t.ok(row and "mallory@elsewhere.example" in row.group(0) and "not the order" in unescape(row.group(0)) and
         'href="/admin/orders/%d" class="suggested"' % oid in row.group(0),
         "/admin/inbox lists it: the sender, why it is here, the order suggested", row and row.group(0))
    shown = staff.get("/admin/inbox/%d" % iid).text
    t.ok("Mallory&#39;s &lt;b&gt;text&lt;/b&gt; %d" % oid in shown or "Mallory's &lt;b&gt;text&lt;/b&gt; %d" % oid in shown,
         "its page shows what the stranger wrote, as text", shown[-2000:])
    t.ok("Mallory" not in Browser(site).get(path).text and "Mallory" not in staff.get("/admin/orders/%d" % oid).text,
         "the stranger's text is on neither the status page nor the order's thread")

    mine = "We also sell at two markets on Saturdays %d." % oid
    raw = answer_to(ours, client, mine)
    rc, out = receive(raw)
    t.ok(rc == 0 and "more information" in out, "the client's own reply goes on the order: " + out.strip())
    mid = site.sql1("SELECT max(id) FROM inbound WHERE from_addr = ?", client)
    status = Browser(site).get(path).text
    t.ok(mine in status and "More information you sent" in status, "the status page shows it as more information")
    admin = staff.get("/admin/orders/%d" % oid).text
    t.ok(mine in admin and "More information from the client" in admin and
         'href="/admin/inbox/%d/raw">raw</a>' % mid in admin, "the order page shows it, by email, its raw linked")
    t.eq(staff.get("/admin/inbox/%d/raw" % mid).body, raw, "the raw message is what the mail server piped, byte for byte")
    done = staff.get("/admin/inbox?show=done").text
    t.ok(re.search(r'id="inbound-%d".*?put on PMB-%06d by itself, the client&#39;s reply: more information'
                   % (mid, oid), done, re.S) or
         re.search(r"id=\"inbound-%d\".*?put on PMB-%06d by itself, the client's reply: more information"
                   % (mid, oid), done, re.S), "?show=done lists it as put on the order by itself")

    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "PMB-%06d" % oid, "as": "client", "csrf_token": csrf()})
    t.eq(r.status, 303, "the consultant attaches the stranger's message as the client's")
    t.ok("Mallory" in Browser(site).get(path).text, "only then is it on the status page")


def test_received_dropped():
    """An auto-reply is dropped and counted in the inbox's footer."""
    def count():
        m = re.search(r"(\d+) auto-repl", unescape(staff.get("/admin/inbox").text))
        return int(m.group(1)) if m else None
    before = count()
    with open(os.path.join(SRC, "tests", "mail-samples", "autoreply.eml"), "rb") as f:
        rc, out = receive(f.read())
    t.ok(rc == 0 and before is not None and count() == before + 1,
         "an auto-reply is dropped and the footer counts it: %r -> %r %s" % (before, count(), out.strip()))


def test_received_bounce():
    """tests/mail-samples/bounce.eml, the DSN of our confirmation, naming
    a real one of ours: the order page, the queue and the outbox say so."""
    _, _, oid = order_with_path(paid=True)
    ours = our_email(oid, "confirmation")
    bid = site.sql1("SELECT max(id) FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid)
    with open(os.path.join(SRC, "tests", "mail-samples", "bounce.eml"), "rb") as f:
        dsn = f.read().replace(b"<pmb.1234.confirm.k3j9x2@ask.example.com>", ours["Message-ID"].encode())
    rc, out = receive(dsn)
    t.ok(rc == 0 and site.sql1("SELECT status FROM outbox WHERE id = ?", bid) == "bounced",
         "the DSN of our confirmation marks it bounced: " + out.strip())
    subject = site.sql1("SELECT subject FROM outbox WHERE id = ?", bid)
    page = unescape(staff.get("/admin/orders/%d" % oid).text)
    t.ok("Email bounced — the client did not get %s" % subject in page and "User unknown" in page,
         "the order page flags it, with the diagnostic")
    t.ok(re.search(r"/admin/orders/%d\".*?email bounced — the client did not get" % oid,
                   unescape(staff.get("/admin").text), re.S), "so does its row in the queue")
    t.ok('id="mail-%d"' % bid in staff.get("/admin/outbox?status=bounced").text, "and the outbox, under bounced")
    iid = site.sql1("SELECT max(id) FROM inbound WHERE status = 'bounce' AND outbox_id = ?", bid)
    t.ok(iid and 'href="/admin/outbox/%d" id="bounced-email"' % bid in staff.get("/admin/inbox/%d" % iid).text,
         "the bounce itself is kept, linked to the email")


# --- bounces --------------------------------------------------------------------------

def test_bounce():
    _, _, oid = order_with_path(paid=True)
    email = site.sql1("SELECT email FROM orders WHERE id = ?", oid)
    bid, subject = site.sql("SELECT id, subject FROM outbox WHERE order_id = ? AND to_addr = ? ORDER BY id LIMIT 1",
                            oid, email)[0]
    diag = "5.1.1 smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown" % email
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok("Email bounced" not in page, "no flag before a bounce")
    site.sql("UPDATE outbox SET status = 'bounced', bounced_at = strftime('%s','now'), bounce = ? WHERE id = ?",
             diag, bid)
    page = unescape(staff.get("/admin/orders/%d" % oid).text)
    t.ok("Email bounced — the client did not get %s" % subject in page, "the order page flags the bounce, naming the email",
         page[:3000])
    t.ok(diag in page, "with the diagnostic")
    queue = unescape(staff.get("/admin").text)
    t.ok(re.search(r"/admin/orders/%d\".*?email bounced — the client did not get %s" % (oid, re.escape(subject)),
                   queue, re.S), "the queue's row flags it")
    out = staff.get("/admin/outbox?status=bounced")
    t.ok(out.status == 200 and 'id="mail-%d"' % bid in out.text and unescape(out.text).count(diag) == 1,
         "the outbox filters by bounced and shows the diagnostic")
    nb = site.sql1("SELECT count(*) FROM outbox WHERE status = 'bounced'")
    t.ok(re.search(r'id="bounced-count">%d bounced' % nb, out.text), "the outbox counts the bounced (%d)" % nb)
    t.ok('href="/admin/outbox?status=bounced"' in out.text, "bounced is one of the outbox's filters")
    one = unescape(staff.get("/admin/outbox/%d" % bid).text)
    t.ok("the recipient did not get it" in one and diag in one, "the email's page shows the bounce")
    p = site.ctl("mail", "list", "bounced")
    t.ok(diag in p.stdout and ", %d bounced" % nb in p.stdout and
         all(ln.split()[1] == "bounced" for ln in p.stdout.splitlines()[:-1]),
         "pmbctl mail list bounced lists it", p.stdout)

    # A bounce of an email to someone else (the consultant's alert) does not flag the client.
    _, _, other = order_with_path(paid=True)
    site.sql("INSERT INTO outbox (kind, order_id, to_addr, subject, body_text, status, next_at, created_at, "
             "bounced_at, bounce) VALUES ('order_alert', ?, 'consultant@example.com', 'Alert', 'x', 'bounced', 0, 0, 1, "
             "'5.0.0')", other)
    t.ok("Email bounced" not in staff.get("/admin/orders/%d" % other).text,
         "a bounce of an email to another address does not flag the order")
    queue = unescape(staff.get("/admin").text)
    row = re.search(r'<tr[^>]*>\s*<td><a href="/admin/orders/%d">.*?</tr>' % other, queue, re.S)
    t.ok(row and "bounced" not in row.group(0) and "email bounced" in queue,
         "nor its row in the queue (while the other's is)", row and row.group(0))

    # The bounce itself, as the intake keeps it: listed under ?show=done, linked to the email.
    iid = inbound("", subject="Undelivered Mail Returned to Sender", from_addr="MAILER-DAEMON@mx.example",
                  from_name="Mail Delivery System", reason=diag, status="bounce", order_id=oid)
    site.sql("UPDATE inbound SET outbox_id = ? WHERE id = ?", bid, iid)
    done = unescape(staff.get("/admin/inbox?show=done").text)
    t.ok(re.search(r'id="inbound-%d".*?a bounce of our email to PMB-%06d' % (iid, oid), done, re.S),
         "?show=done lists the bounce as a bounce of our email to the order")
    one = staff.get("/admin/inbox/%d" % iid).text
    t.ok('href="/admin/outbox/%d" id="bounced-email"' % bid in one and "/admin/inbox/%d/attach" % iid not in one,
         "its page links the email that bounced, and offers no decision")

    con = sqlite3.connect(site.db)
    try:
        plan = " | ".join(r[3] for r in con.execute(
            "EXPLAIN QUERY PLAN " + stmt_sql("QUEUE_BOUNCED"), (1, 10 ** 6)))
        t.ok("outbox_bounced" in plan and "SCAN" not in plan and "TEMP B-TREE" not in plan,
             "the queue's flags read one range of outbox_bounced", plan)
        plan = " | ".join(r[3] for r in con.execute(
            "EXPLAIN QUERY PLAN " + stmt_sql("OUTBOX_BOUNCED_BY_ORDER"), (oid,)))
        t.ok("outbox_bounced" in plan and "SCAN" not in plan, "the order page's flag probes outbox_bounced", plan)
    finally:
        con.close()


# --- erased orders (issue 20) ---------------------------------------------------------

def test_erased_order():
    """Nothing comes back into an order whose personal data was erased:
    attaching an email to it is refused, a bounce of one of its emails is
    dropped (the bounce would hold the address), and the triggers of
    sql/024_erased_guard.sql refuse any writer."""
    _, _, oid = order_with_path()
    ours = our_email(oid, "confirmation")
    bid = site.sql1("SELECT max(id) FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid)
    p = site.ctl("privacy", "erase", "--order", str(oid))
    t.ok(p.returncode == 0 and site.sql1("SELECT erased_at FROM orders WHERE id = ?", oid),
         "(an unpaid order erased by pmbctl)", p.stdout + p.stderr)
    iid = inbound("Please add this to my order %d" % oid, suggested=oid)
    r = staff.post("/admin/inbox/%d/attach" % iid, {"order": "PMB-%06d" % oid, "as": "client", "csrf_token": csrf()})
    t.eq(r.status, 400, "attaching an email to an erased order is 400")
    t.ok("The personal data of PMB-%06d was erased: nothing can be attached to it." % oid in unescape(r.text),
         "saying why, by the order field")
    t.eq(row(iid)[0], "inbox", "the email still waits in the inbox")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE inbound_id = ?", iid), 0, "no message was added")

    drops = site.sql1("SELECT n FROM inbound_drops WHERE reason = 'bounce_unknown'")
    before = site.sql1("SELECT count(*) FROM inbound")
    with open(os.path.join(SRC, "tests", "mail-samples", "bounce.eml"), "rb") as f:
        dsn = f.read().replace(b"<pmb.1234.confirm.k3j9x2@ask.example.com>", ours["Message-ID"].encode())
    # A bounce of its own (the sample's was taken before, so this is no duplicate).
    dsn = dsn.replace(b"<20261207100209.3F1A22C0B1@mx.ask.example.com>", b"<erased.bounce@mx.ask.example.com>")
    rc, out = receive(dsn)
    t.ok(rc == 0 and "bounce_unknown" in out, "a bounce of the erased order's email: exit 0, dropped: " + out.strip())
    t.eq(site.sql1("SELECT count(*) FROM inbound"), before, "but not stored: it would bring the address back")
    t.eq(site.sql1("SELECT n FROM inbound_drops WHERE reason = 'bounce_unknown'"), drops + 1,
         "it is counted as a bounce of nothing of ours")
    t.ok(site.sql1("SELECT status FROM outbox WHERE id = ?", bid) != "bounced" and
         not site.sql1("SELECT bounce FROM outbox WHERE id = ?", bid), "the wiped email is not marked bounced")

    con = sqlite3.connect(site.db, timeout=10)
    try:
        for sql, what in (("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'note', 'x', 1)",
                           "a message"),
                          ("INSERT INTO feedback (order_id, body, created_at) VALUES (?, 'x', 1)", "feedback"),
                          ("INSERT INTO refund_requests (order_id, reason, status, requested_at) "
                           "VALUES (?, 'x', 'open', 1)", "a refund request"),
                          ("UPDATE orders SET name = 'Back Again' WHERE id = ?", "a name")):
            try:
                con.execute(sql, (oid,))
                con.commit()
                t.ok(False, "the store refuses %s for an erased order" % what)
            except sqlite3.IntegrityError as e:
                con.rollback()
                t.ok("order erased" in str(e), "the store refuses %s for an erased order" % what, str(e))
        t.eq(con.execute("SELECT name FROM orders WHERE id = ?", (oid,)).fetchone()[0], "", "its name stays empty")
    finally:
        con.close()


for fn in (test_received, test_received_dropped, test_received_bounce, test_list_and_message, test_raw, test_csrf, test_bad_order, test_attach_note,
           test_attach_client_before_answer, test_attach_client_after_answer, test_discard, test_drops_footer,
           test_paging, test_bounce, test_erased_order):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
