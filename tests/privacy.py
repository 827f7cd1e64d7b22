#!/usr/bin/env python3
"""Erasure and retention (issue 20), through the real pmbctl and real
nginx + pmb.fcgi: `pmbctl privacy columns` lists every column of the
migrated schema once; `pmbctl privacy erase` of a rich order leaves the
client's name, address and a unique phrase of the question nowhere (no
table, not fts5vocab, not the bytes of the database file or its -wal)
while the ledger, the dashboard's revenue and the CSV's amounts stay and
another client's data is untouched; an order with a refund open, money
held in the guarantee or a payment job pending is refused, an unpaid one
is cancelled and erased; `pmbctl privacy sweep` erases exactly the
orders closed longer than retention_days ago, 500 per transaction; the
"erased" email is delivered to a real SMTP server (aiosmtpd) and wiped
once delivered or given up."""
import csv
import io
import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     answered_order, track_path, free_port, STAFF, PMBCTL)

try:
    import aiosmtpd  # noqa: F401
except ImportError:
    # Debian's package, seen from a python3 that is not Debian's own.
    sys.path.append("/usr/lib/python3/dist-packages")
try:
    from aiosmtpd.controller import Controller
except ImportError:
    Controller = None
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

t = Tap()


def eq(got, want, name, detail=""):
    """t.eq, with what else to print when it fails."""
    return t.ok(got == want, name, "got %r, want %r\n%s" % (got, want, detail))


DAY = 86400

NAME = "Zed Quorblewick"
EMAIL = "Zed.Quorble@Privacy-Test.example"
PHRASE = "zorbiflax quantum marmalade"
OTHER_NAME = "Olga Untouchedsson"
OTHER_EMAIL = "olga.untouched@keep.example"
OTHER_PHRASE = "wibblequark lemon curd"


def ctl(site, *args, env=None):
    """site.ctl that returns a failure for the test to check, with env
    added to the site's environment."""
    return site.ctl(*args, check=False, env=dict(site.env(), **(env or {})))


def schema_columns(db):
    """{(table, column)} of every table of the database (hidden FTS5
    columns left out; generated columns in)."""
    c = sqlite3.connect(db)
    try:
        out = set()
        for (tb,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                               "AND name NOT LIKE 'sqlite_%'"):
            for row in c.execute("PRAGMA table_xinfo(\"%s\")" % tb):
                if row[6] != 1:
                    out.add((tb, row[1]))
        return out
    finally:
        c.close()


def text_hits(db, needles):
    """[(table, column, needle)] of every text or blob value of every
    table holding one of needles (any case)."""
    c = sqlite3.connect(db)
    c.text_factory = bytes
    hits = []
    try:
        for (tb,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                               "AND name NOT LIKE 'sqlite_%'"):
            tb = tb.decode()
            cols = [r[1].decode() for r in c.execute("PRAGMA table_xinfo(\"%s\")" % tb) if r[6] != 1]
            for col in cols:
                for (v,) in c.execute("SELECT \"%s\" FROM \"%s\"" % (col, tb)):
                    if isinstance(v, bytes):
                        low = v.lower()
                        for n in needles:
                            if n.lower().encode() in low:
                                hits.append((tb, col, n))
        return hits
    finally:
        c.close()


def vocab_hits(db, words):
    """The words (lowercased terms) fts5vocab still lists."""
    c = sqlite3.connect(db)
    try:
        c.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, search_fts, row)")
        return [w for w in words if c.execute("SELECT 1 FROM temp.v WHERE term = ?", (w.lower(),)).fetchone()]
    finally:
        c.close()


def file_hits(db, needles):
    """[(file, needle, count)] of the needles (as typed and lowercased)
    that grep -c -a -i finds in the database file and its -wal."""
    hits = []
    for path in (db, db + "-wal"):
        if not os.path.exists(path):
            continue
        for n in needles:
            for form in {n, n.lower()}:
                p = subprocess.run(["grep", "-c", "-a", "-i", "-F", form, path], capture_output=True, text=True)
                if p.stdout.strip() not in ("", "0"):
                    hits.append((os.path.basename(path), form, p.stdout.strip()))
    return hits


def revenue(staff):
    page = staff.get("/admin/dashboard").text
    m = re.search(r'<table id="revenue">.*?</table>', page, re.S)
    return m.group(0) if m else page


def export_amounts(staff):
    rows = list(csv.reader(io.StringIO(staff.get("/admin/export.csv").body.decode("utf-8"), newline="")))
    head = rows[0]
    keep = [i for i, h in enumerate(head) if h in ("number", "price", "currency", "paid", "refunded", "net",
                                                  "paid_by_card", "paid_otherwise", "refunded_to_card",
                                                  "refunded_otherwise")]
    return [[r[i] for i in keep] for r in rows]


def test_columns():
    site = Site()
    try:
        p = ctl(site, "privacy", "columns")
        eq(p.returncode, 0, "privacy columns exits 0")
        lines = p.stdout.splitlines()
        eq(lines[0], "table\tcolumn\tpersonal\twhy", "a TSV with a header")
        listed = [tuple(line.split("\t")[:2]) for line in lines[1:]]
        dup = sorted({x for x in listed if listed.count(x) > 1})
        t.ok(not dup, "no column is listed twice", dup)
        schema = schema_columns(site.db)
        t.ok(not (schema - set(listed)), "every column of every table is listed",
             sorted(schema - set(listed)))
        t.ok(not (set(listed) - schema), "nothing listed is missing from the schema",
             sorted(set(listed) - schema))
        bad = [line for line in lines[1:] if line.split("\t")[2] not in ("0", "1") or not line.split("\t")[3]]
        t.ok(not bad, "each says personal 0 or 1 and why", bad)
        personal = {tuple(line.split("\t")[:2]) for line in lines[1:] if line.split("\t")[2] == "1"}
        for col in (("orders", "name"), ("orders", "email"), ("orders", "client_ip"), ("messages", "body"),
                    ("audit", "ip"), ("outbox", "body_text"), ("inbound", "raw"), ("files", "data")):
            t.ok(col in personal, "%s.%s is personal" % col)
        t.ok(("ledger", "amount") not in personal and ("orders", "price") not in personal,
             "the books are not")
    finally:
        site.cleanup()


def rich_order(site, staff):
    """An order of NAME/EMAIL made through the pages: a question with
    PHRASE, a file, paid, answered, a follow-up and its answer, a refund
    request refunded in full, a rating with feedback and a testimonial,
    an email from the client in the inbox. Returns its id."""
    c = Browser(site, remote="198.51.100.77")
    r = ask(c, name=NAME, email=EMAIL, company="Quorble Holdings", website="quorble.example",
            question="Please help: " + PHRASE + " pricing, from " + NAME)
    path = track_path(r.header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", EMAIL)
    site.sql("INSERT INTO files (order_id, message_id, name, kind, size, sha256, user_id, created_at, data) "
             "VALUES (?, (SELECT min(id) FROM messages WHERE order_id = ?), ?, 'text', ?, zeroblob(32), NULL, 1, ?)",
             oid, oid, PHRASE + ".txt", len(PHRASE), PHRASE.encode())
    tok = admin_csrf(staff)
    staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                               "reference": "BANK-REF-1", "csrf_token": tok})
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Dear %s, about %s: try it." % (NAME, PHRASE),
                                                    "csrf_token": tok, "confirm": "yes"})
    eq(r.status, 303, "the answer is sent")
    _, hidden = c.form(path)
    c.post(path + "/messages", {"message": "And " + PHRASE + " on Mondays?", "csrf_token": hidden["csrf_token"]})
    staff.post("/admin/orders/%d/reply" % oid, {"body": "Yes, Mondays too.", "csrf_token": tok, "confirm": "yes"})
    _, hidden = c.form(path + "?rating=yes")
    c.post(path + "/rating", {"rating": "yes", "feedback": "Loved the " + PHRASE,
                              "csrf_token": hidden["csrf_token"]})
    _, hidden = c.form(path + "?rating=yes")
    c.post(path + "/testimonial", {"sentence": "Great about " + PHRASE, "consent": "yes",
                                   "csrf_token": hidden["csrf_token"]})
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id", oid)
    rpath = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail).group(1)
    _, hidden = c.form(rpath)
    c.post(rpath, {"reason": "Not about " + PHRASE, "csrf_token": hidden["csrf_token"]})
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    tok = admin_csrf(staff, "/admin/refunds")
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "bank_transfer",
                                                        "reference": "REFUND-REF-1", "csrf_token": tok})
    eq(r.status, 303, "the refund is recorded")
    raw = ("From: %s <%s>\r\nTo: sam@example.com\r\nSubject: about %s\r\nMessage-ID: <q1@privacy-test.example>\r\n"
           "Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\nHello, %s again.\r\n" % (NAME, EMAIL, PHRASE, PHRASE))
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw.encode(), capture_output=True, env=site.env(),
                       timeout=60)
    eq(p.returncode, 0, "an email from the client is received", p.stderr)
    # A second email, discarded by staff: an audit row of no order that
    # names the sender.
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw.replace("<q1@", "<q2@").encode(),
                       capture_output=True, env=site.env(), timeout=60)
    iid = site.sql1("SELECT max(id) FROM inbound")
    r = staff.post("/admin/inbox/%d/discard" % iid, {"csrf_token": admin_csrf(staff, "/admin/inbox/%d" % iid)})
    eq(r.status, 303, "staff discard the second email", r.text[-300:])
    # The lost-link form: an email of no order to the address, and a
    # rate-limit row keyed by it.
    _, hidden = c.form("/lost")
    c.post("/lost", {"email": EMAIL.lower(), "csrf_token": hidden.get("csrf_token", "")})
    return oid


def test_erase():
    site = Site(users=STAFF)
    site.start()
    try:
        staff = Browser(site)
        login(staff)
        oid = rich_order(site, staff)
        other = answered_order(site, staff, OTHER_EMAIL)[2]
        site.sql("UPDATE orders SET name = ? WHERE id = ?", OTHER_NAME, other)
        c2 = Browser(site)
        ask(c2, name=OTHER_NAME, email=OTHER_EMAIL, question="Also " + OTHER_PHRASE)
        site.ctl("search", "index")
        needles = [NAME, EMAIL, PHRASE, "zorbiflax", "marmalade", "Quorblewick", "Quorble Holdings",
                   "198.51.100.77"]
        where = {tb for tb, _, _ in text_hits(site.db, needles)}
        want = {"orders", "messages", "outbox", "inbound", "feedback", "testimonials", "refund_requests", "files",
                "rate_events", "search_fts_content", "search_fts_data", "audit"}
        t.ok(site.sql1("SELECT count(*) FROM outbox WHERE order_id IS NULL AND kind = 'lost' AND to_addr = ?",
                       EMAIL.lower()) == 1, "before: a lost-link email of no order to the address")
        t.ok(site.sql1("SELECT count(*) FROM audit WHERE order_id IS NULL AND instr(lower(detail), ?) > 0",
                       EMAIL.lower()) >= 1, "before: an audit row of no order naming the address")
        t.ok(want <= where, "before: the client's data is in every kind of place", sorted(want - where))
        t.ok(vocab_hits(site.db, ["zorbiflax", "quorblewick"]), "before: the search index holds its terms")
        ledger = site.sql("SELECT * FROM ledger ORDER BY id")
        rev, csv_before = revenue(staff), export_amounts(staff)
        other_before = site.sql("SELECT name, email, company FROM orders WHERE lower(email) = ?", OTHER_EMAIL)
        other_msgs = site.sql("SELECT m.body FROM messages m JOIN orders o ON o.id = m.order_id "
                              "WHERE o.email = ? ORDER BY m.id", OTHER_EMAIL)
        site.sql("INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at, ip) "
                 "VALUES (zeroblob(32), 1, 'x', 1, 1, '192.0.2.200')")
        p = ctl(site, "privacy", "erase", "--email", EMAIL.upper())
        eq(p.returncode, 0, "privacy erase --email (another case) exits 0", p.stderr)
        t.ok("PMB-%06d" % oid in p.stdout, "it prints what it erased", p.stdout)
        hits = text_hits(site.db, needles)
        t.ok(not hits, "the name, address, phrase, company and IP are in no table", hits)
        t.ok(not vocab_hits(site.db, ["zorbiflax", "marmalade", "quorblewick", "quorble"]),
             "and not in fts5vocab")
        fh = file_hits(site.db, [NAME, EMAIL, PHRASE, "zorbiflax", "quorblewick"])
        t.ok(not fh, "grep -c finds none in the database file or its -wal", fh)
        t.ok(site.sql1("SELECT erased_at FROM orders WHERE id = ?", oid) is not None, "erased_at is set")
        eq(site.sql("SELECT * FROM ledger ORDER BY id"), ledger, "the ledger rows are the same")
        eq(revenue(staff), rev, "the dashboard's revenue is the same")
        eq(export_amounts(staff), csv_before, "the CSV's amounts are the same")
        eq(site.sql("SELECT name, email, company FROM orders WHERE lower(email) = ?", OTHER_EMAIL), other_before,
             "the other client's details are untouched")
        eq(site.sql("SELECT m.body FROM messages m JOIN orders o ON o.id = m.order_id "
                      "WHERE o.email = ? ORDER BY m.id", OTHER_EMAIL), other_msgs,
             "and their messages too")
        t.ok(vocab_hits(site.db, ["wibblequark", "untouchedsson"]) == ["wibblequark", "untouchedsson"],
             "and their search terms")
        eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'privacy_erase' AND order_id = ?", oid), 1,
             "the erase is audited")
        eq(site.sql1("SELECT count(*) FROM files WHERE order_id = ?", oid), 0, "its files are gone")
        eq(site.sql1("SELECT count(*) FROM sessions WHERE ip = '192.0.2.200'"), 0, "an expired staff session is pruned")
        t.ok(site.sql1("SELECT count(*) FROM sessions") >= 1, "the signed-in session stays")
        eq(site.sql1("SELECT count(*) FROM testimonials WHERE order_id = ?", oid), 0, "its testimonial is gone")
        eq(site.sql1("SELECT rating FROM orders WHERE id = ?", oid), "yes", "its rating (yes/no) stays")
        r = staff.get("/admin/orders/%d" % oid)
        eq(r.status, 200, "the order page still opens")
        p = ctl(site, "privacy", "erase", "--order", "PMB-%06d" % oid)
        eq(p.returncode, 1, "erasing it again is refused (exit 1)")
        t.ok("erased already" in p.stderr, "saying it was erased already", p.stderr)
        eq(ctl(site, "privacy", "erase", "--email", "nobody@nowhere.example").returncode, 1,
             "an address with no order: exit 1")
        eq(ctl(site, "privacy", "erase", "--order", "999999").returncode, 1, "no such order: exit 1")
        eq(ctl(site, "privacy", "erase", "--name", "x").returncode, 2, "a wrong option: exit 2")
        eq(ctl(site, "privacy", "erase").returncode, 2, "no option: exit 2")
    finally:
        site.cleanup()


def test_refusals():
    site = Site(users=STAFF)
    site.start()
    try:
        staff = Browser(site)
        login(staff)
        # A refund request open.
        c, path, oid, rpath = answered_order(site, staff, "open.refund@example.com")
        _, hidden = c.form(rpath)
        c.post(rpath, {"reason": "meh", "csrf_token": hidden["csrf_token"]})
        before = site.dump()
        p = ctl(site, "privacy", "erase", "--order", str(oid))
        eq(p.returncode, 1, "an open refund request: refused, exit 1")
        t.ok("PMB-%06d" % oid in p.stderr and "refund request is open" in p.stderr,
             "naming the order and the reason", p.stderr)
        eq(site.dump(), before, "nothing changed")
        # Money held within the guarantee, with another order of the same
        # person that could be erased: none is.
        c, path, held, _ = answered_order(site, staff, "held@example.com")
        free = answered_order(site, staff, "HELD@example.com")[2]
        site.sql("UPDATE orders SET answered_at = answered_at - 400 * 86400, "
                 "last_answered_at = last_answered_at - 400 * 86400 WHERE id = ?", free)
        before = site.dump()
        p = ctl(site, "privacy", "erase", "--email", "held@example.com")
        eq(p.returncode, 1, "money held in the guarantee: refused")
        t.ok("PMB-%06d" % held in p.stderr and "guarantee" in p.stderr and "PMB-%06d" % free not in p.stderr,
             "naming the blocked order only", p.stderr)
        eq(site.dump(), before, "and the erasable one is not erased either")
        p = ctl(site, "privacy", "erase", "--order", str(free))
        eq(p.returncode, 0, "with the guarantee over, paid money does not block", p.stderr)
        # A payment job pending.
        c, path, job, _ = answered_order(site, staff, "job@example.com")
        site.sql("UPDATE orders SET answered_at = 1, last_answered_at = 1 WHERE id = ?", job)
        site.sql("INSERT INTO checkout_sessions (order_id, amount, currency, status, created_at) "
                 "VALUES (?, 100, 'GBP', 'open', 1)", job)
        site.sql("INSERT INTO pay_jobs (kind, order_id, session_id, status, next_at, created_at) "
                 "VALUES ('expire', ?, last_insert_rowid(), 'queued', 1, 1)", job)
        p = ctl(site, "privacy", "erase", "--order", "PMB-%06d" % job)
        eq(p.returncode, 1, "a payment job pending: refused")
        t.ok("payment job" in p.stderr, "saying so", p.stderr)
        # Awaiting payment, nothing received: cancelled and erased.
        c = Browser(site)
        ask(c, email="unpaid@example.com", name="Una Paid")
        unpaid = site.sql1("SELECT id FROM orders WHERE email = 'unpaid@example.com'")
        p = ctl(site, "privacy", "erase", "--order", str(unpaid))
        eq(p.returncode, 0, "an unpaid order is erased", p.stderr)
        row = site.sql("SELECT status, cancelled_at IS NOT NULL, erased_at IS NOT NULL, email FROM orders "
                       "WHERE id = ?", unpaid)[0]
        eq(row, ("cancelled", 1, 1, ""), "and cancelled")
        eq(site.sql1("SELECT count(*) FROM status_history WHERE order_id = ? AND status = 'cancelled'", unpaid),
             1, "with its history row")
    finally:
        site.cleanup()


def closed_orders(site, n, status, at, email="bulk%d@example.com"):
    """Inserts n orders closed at time at (refunded, cancelled or
    answered), cheaply with SQL; returns their ids."""
    c = sqlite3.connect(site.db)
    ids = []
    try:
        for i in range(n):
            cur = c.execute(
                "INSERT INTO orders (form_token, name, email, price, currency, status, created_at, due_at, "
                "paid_at, answered_at, last_answered_at, refunded_at, cancelled_at, updated_at, client_ip) "
                "VALUES (?, ?, ?, 15000, 'GBP', ?, ?, ?, ?, ?, ?, ?, ?, ?, '203.0.113.5')",
                ("tok-%s-%d-%d" % (status, at, i), "Bulk Person %d" % i, email % len(ids) + "." + status,
                 status, at - 10, at, at - 5 if status != "cancelled" else None,
                 at if status != "cancelled" else None, at if status != "cancelled" else None,
                 at if status == "refunded" else None, at if status == "cancelled" else None, at))
            oid = cur.lastrowid
            ids.append(oid)
            c.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'question', ?, ?)",
                      (oid, "bulk question %d" % oid, at))
            if status != "cancelled":
                c.execute("INSERT INTO ledger (order_id, kind, amount, currency, at) VALUES (?, 'payment', 15000, "
                          "'GBP', ?)", (oid, at - 5))
            if status == "refunded":
                c.execute("INSERT INTO ledger (order_id, kind, amount, currency, at) VALUES (?, 'refund', 15000, "
                          "'GBP', ?)", (oid, at))
        c.commit()
        return ids
    finally:
        c.close()


def test_sweep():
    now = int(time.time())
    site = Site(users=STAFF, settings={"retention_days": "0", "guarantee_days": "30"})
    try:
        old = now - 100 * DAY
        recent = now - 10 * DAY
        bulk = closed_orders(site, 520, "refunded", old)
        cancelled = closed_orders(site, 3, "cancelled", old, "gone%d@example.com")
        answered_old = closed_orders(site, 2, "answered", old - 40 * DAY, "ans%d@example.com")
        # Answered 80 days ago: closed when the guarantee ended 50 days
        # ago, inside retention_days 60: kept.
        answered_recent = closed_orders(site, 2, "answered", now - 80 * DAY, "ansr%d@example.com")
        too_recent = closed_orders(site, 2, "refunded", recent, "recent%d@example.com")
        held = closed_orders(site, 1, "answered", old, "held%d@example.com")
        site.sql("UPDATE orders SET status = 'refund_requested' WHERE id = ?", held[0])
        site.sql("INSERT INTO refund_requests (order_id, status, requested_at) VALUES (?, 'open', ?)", held[0], old)
        env = {"PMB_TEST_NOW": str(now)}
        p = ctl(site, "privacy", "sweep", env=env)
        eq(p.returncode, 0, "with retention_days 0 the sweep exits 0")
        t.ok("0 orders erased" in p.stdout, "and erases nothing", p.stdout)
        eq(site.sql1("SELECT count(*) FROM orders WHERE erased_at IS NOT NULL"), 0, "nothing is erased")
        site.conf["retention_days"] = "60"
        site.write_conf()
        p = ctl(site, "privacy", "sweep", env=env)
        eq(p.returncode, 0, "the sweep exits 0", p.stderr)
        want = len(bulk) + len(cancelled) + len(answered_old)
        t.ok("%d orders erased" % want in p.stdout, "it prints how many it erased (%d)" % want, p.stdout)
        erased = {i for (i,) in site.sql("SELECT id FROM orders WHERE erased_at IS NOT NULL")}
        eq(erased, set(bulk + cancelled + answered_old), "exactly the orders closed more than 60 days ago")
        for label, ids in (("closed too recently", too_recent), ("answered, the guarantee ended recently",
                                                                 answered_recent), ("a refund open", held)):
            t.ok(not erased & set(ids), "not %s" % label)
        steps = re.findall(r"sweep step: (\d+) of (\d+)", p.stderr)
        t.ok(len(steps) >= 2 and all(int(a) <= 500 for a, _ in steps),
             "in steps of at most 500 orders (%s)" % steps, p.stderr)
        eq(site.sql("SELECT detail FROM audit WHERE action = 'privacy_sweep' ORDER BY id"),
             [("%d orders erased" % want,)], "the sweep is audited once, with the count (not when off)")
        eq(site.sql1("SELECT count(*) FROM messages WHERE body LIKE 'bulk question%'"),
             len(too_recent) + len(answered_recent) + len(held), "the erased orders' questions are gone")
        eq(site.sql1("SELECT count(*) FROM ledger"), 2 * len(bulk) + len(answered_old) + 2 * len(too_recent)
             + len(answered_recent) + len(held), "the ledger stays whole")
        p = ctl(site, "privacy", "sweep", env=env)
        t.ok("0 orders erased" in p.stdout, "a second sweep finds nothing", p.stdout)
    finally:
        site.cleanup()


class Sink:
    """A real SMTP server on a loopback port (aiosmtpd) that keeps what
    it accepts and refuses for good (550) any recipient with "refuse"
    in it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []          # (recipients, raw bytes)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "refuse" in address.lower():
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: queued"


def erase_asked(site, staff, email):
    """An answered order of email, the guarantee over, whose client asked
    for erasure (the row H3's status page writes), erased by pmbctl.
    Returns (order id, pmbctl's answer)."""
    oid = answered_order(site, staff, email)[2]
    site.sql("UPDATE orders SET answered_at = 1, last_answered_at = 1 WHERE id = ?", oid)
    site.ctl("mail", "send")
    site.sql("INSERT INTO erasure_requests (order_id, requested_at) VALUES (?, ?)", oid, int(time.time()))
    return oid, ctl(site, "privacy", "erase", "--order", str(oid))


def test_erased_mail():
    if Controller is None:
        t.missing("the 'erased' email through SMTP", "python3-aiosmtpd")
        return
    sink = Sink()
    port = free_port()
    server = Controller(sink, hostname="127.0.0.1", port=port)
    server.start()
    site = Site(users=STAFF, settings={"mail_transport": "smtp", "smtp_url": "smtp://127.0.0.1:%d" % port,
                                       "smtp_timeout": "5", "mail_max_attempts": "1"})
    site.start()
    try:
        staff = Browser(site)
        login(staff)
        email = "Asked.Erase@Example.org"
        oid, p = erase_asked(site, staff, email)
        eq(p.returncode, 0, "an order whose client asked is erased", p.stderr)
        rows = site.sql("SELECT id, to_addr, status, wipe_when_done FROM outbox WHERE kind = 'erased'")
        t.ok(len(rows) == 1 and rows[0][1] == email and rows[0][2] == "queued" and rows[0][3] == 1,
             "the 'erased' email is queued to the client, to be wiped once delivered", rows)
        t.ok(site.sql1("SELECT done_at FROM erasure_requests WHERE order_id = ?", oid) is not None,
             "the erasure request is done")
        sink.messages.clear()
        site.ctl("mail", "send")
        mid = rows[0][0] if rows else 0
        got = [raw.decode("utf-8", "replace") for to, raw in sink.messages if to == [email]]
        t.ok(len(got) == 1 and "PMB-%06d" % oid in got[0] and "was erased" in got[0],
             "pmbctl mail send delivers it to the SMTP server", sink.messages)
        row = site.sql("SELECT to_addr, to_name, subject, body_text, body_html, status, kind FROM outbox "
                       "WHERE id = ?", mid)
        eq(row, [("", "", "", "", "", "sent", "erased")], "then its recipient and text are wiped")
        t.ok(not file_hits(site.db, [email]), "the address is not in the database file or its -wal",
             file_hits(site.db, [email]))
        # Refused for good by the server: given up, and wiped too.
        refused = "Refuse.Me@Example.org"
        oid3, p = erase_asked(site, staff, refused)
        eq(p.returncode, 0, "an order whose address the server refuses is erased", p.stderr)
        site.ctl("mail", "send")
        eq(site.sql("SELECT to_addr, body_text, last_error, status FROM outbox WHERE kind = 'erased' AND "
                    "order_id = ?", oid3), [("", "", "", "failed")],
           "an 'erased' email given up (550) is wiped too, its error with it")
        t.ok(not file_hits(site.db, [refused]), "and its address is not in the file or the -wal",
             file_hits(site.db, [refused]))
        # Without a request: no email.
        c, path, oid2, _ = answered_order(site, staff, "no.request@example.org")
        site.sql("UPDATE orders SET answered_at = 1, last_answered_at = 1 WHERE id = ?", oid2)
        eq(ctl(site, "privacy", "erase", "--order", str(oid2)).returncode, 0, "another order is erased")
        eq(site.sql1("SELECT count(*) FROM outbox WHERE kind = 'erased'"), 2,
             "with no erasure request, no email is sent")
    finally:
        site.cleanup()
        server.stop()


for fn in (test_columns, test_erase, test_refusals, test_sweep, test_erased_mail):
    t0 = time.time()
    t.run(fn)
    print("# time %s: %.1f s" % (fn.__name__, time.time() - t0))
sys.exit(t.done())
