#!/usr/bin/env python3
"""The hard suite's quick part (issue 8): concurrency, crashes and
durability, raw FastCGI records, and sessions and signed links, at a size
that runs in a couple of minutes in `make check`.

scripts/check-hard runs the same tests at full size (HARD_SIZE=full: 8
processes x 500 questions, a longer kill test, 1,000 logins) and then
tests/hard_full.py. HARD_PARTS (space-separated names from PARTS below)
runs only some parts. Lines "# summary: ..." carry the figures that
scripts/check-hard prints at the end; "# time PART: N s" how long a part
took."""
import base64
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
import http.client
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, answered_order, parallel, run_parts, Site, Browser, ask, track_path, login, admin_csrf, STAFF,  # noqa: E402
                     GOOD_QUESTION, parse_cgi_output, fcgi_record, fcgi_params,
                     fcgi_read_response, FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN)

FULL = os.environ.get("HARD_SIZE") == "full"
SIZE = {
    "ask_procs": 8 if FULL else 2,        # processes posting questions at once
    "ask_each": 500 if FULL else 100,     # questions per process
    "kill_procs": 8 if FULL else 2,
    "kill_seconds": 30 if FULL else 5,    # SIGKILL a worker every 200 ms for this long
    "logins": 1000 if FULL else 20,
    "parallel": 50,                       # parallel refund POSTs / replies
}
NO_LIMITS = {"rate_limit_email_per_hour": "0", "rate_limit_ip_per_hour": "0"}

t = Tap()


def summary(text):
    """A figure for scripts/check-hard's results summary."""
    print("# summary: " + text)
    sys.stdout.flush()


# --- helpers ------------------------------------------------------------------

def token_id(path):
    """The subject id inside a /o/TOKEN or /r/TOKEN path's token."""
    tok = path.rsplit("/", 1)[1]
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    return int.from_bytes(raw[3:11], "big")


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(tok):
    return base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))


class Conn:
    """One keep-alive HTTP connection to nginx with a cookie jar: fast
    enough for thousands of requests from one process."""

    def __init__(self, port):
        self.port = port
        self.c = None
        self.cookies = {}

    def request(self, method, path, body=None):
        h = {"Host": "127.0.0.1:%d" % self.port}
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # nginx closed an idle keep-alive connection: retry once,
                # only when nothing of the request can have been processed.
                self.c.close()
                self.c = None
                if attempt or method == "POST":
                    raise
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, val = v.split(";", 1)[0].partition("=")
                self.cookies[name.strip()] = val.strip()
        if r.getheader("Connection", "").lower() == "close":
            self.c.close()
            self.c = None
        return r.status, r.getheader("Location"), data

    def close(self):
        if self.c is not None:
            self.c.close()


def hidden_fields(html):
    """The hidden inputs of a page's form, as a dict."""
    return {m.group(1).decode(): m.group(2).decode().replace("&amp;", "&")
            for m in re.finditer(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)}


def ask_worker(port, tag, count, deadline, out_path):
    """One client process: GET /ask then POST /ask, count times (or until
    deadline). Writes one JSON line per question: email, status,
    Location, error."""
    conn = Conn(port)
    with open(out_path, "w") as out:
        for i in range(count):
            if deadline and time.time() > deadline:
                break
            email = "%s-%d@load.example" % (tag, i)
            rec = {"email": email, "status": None, "location": None, "error": None}
            try:
                st, _, html = conn.request("GET", "/ask")
                if st != 200:
                    rec["status"] = st
                    rec["error"] = "GET /ask answered %d" % st
                else:
                    fields = dict(GOOD_QUESTION)
                    fields.update(hidden_fields(html))
                    fields["email"] = email
                    st, loc, _ = conn.request("POST", "/ask", fields)
                    rec["status"], rec["location"] = st, loc
            except Exception as e:   # a worker killed under us
                rec["error"] = "%s: %s" % (type(e).__name__, e)
                conn.close()
                conn = Conn(port)
            out.write(json.dumps(rec) + "\n")
    conn.close()


def run_load(site, procs, each, tmpdir, tag, seconds=0, during=None):
    """Runs procs ask_worker processes at once; calls during() in this
    process while they run (it should return when they are done or when
    told to stop through the event it gets). Returns the records."""
    deadline = time.time() + seconds if seconds else 0
    ps = []
    for k in range(procs):
        path = os.path.join(tmpdir, "%s-%d.jsonl" % (tag, k))
        p = multiprocessing.Process(target=ask_worker,
                                    args=(site.port, "%s%d" % (tag, k), each, deadline, path))
        p.start()
        ps.append((p, path))
    done = threading.Event()
    result = {}
    th = None
    if during is not None:
        th = threading.Thread(target=lambda: result.update(during=during(done)))
        th.start()
    for p, _ in ps:
        p.join(timeout=900)
        if p.is_alive():
            p.kill()
    done.set()
    if th is not None:
        th.join()
    recs = []
    for _, path in ps:
        with open(path) as f:
            recs += [json.loads(line) for line in f if line.strip()]
    return recs, result.get("during")


def orders_by_email(site):
    return {e: i for i, e in site.sql("SELECT id, email FROM orders")}


def check_acknowledged(site, recs, what):
    """Every 303 the clients saw has its order, with the id in the link."""
    have = orders_by_email(site)
    acked = [r for r in recs if r["status"] == 303]
    missing = [r for r in acked if r["email"] not in have or
               token_id(track_path(r["location"])) != have[r["email"]]]
    t.ok(not missing, "%s: every question whose 303 the client saw is in the database (%d)"
         % (what, len(acked)), missing[:5])
    # Every stored order is whole: question, history, mail.
    broken = site.sql(
        "SELECT o.id FROM orders o WHERE "
        "(SELECT count(*) FROM messages m WHERE m.order_id = o.id AND m.kind = 'question') != 1 OR "
        "(SELECT count(*) FROM status_history h WHERE h.order_id = o.id) < 1 OR "
        "(SELECT count(*) FROM outbox x WHERE x.order_id = o.id AND x.kind = 'confirmation') != 1")
    t.ok(not broken, "%s: every stored order is whole (question, history, mail)" % what, broken[:5])
    return len(acked), len(have)


def integrity(path):
    c = sqlite3.connect(path, timeout=30)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        c.close()


def log_text(site):
    try:
        with open(site.log_path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def restarts(site):
    return len(re.findall(r"worker \d+ ended", log_text(site)))


def wait_pool(site, n, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if len(site.workers()) == n:
            return True
        time.sleep(0.05)
    return len(site.workers()) == n


# --- 4. concurrency, crashes, durability ---------------------------------------------

def part_concurrency():
    """N processes x M questions through nginx at once, with pmbctl backup
    taken in the middle of the load."""
    procs, each = SIZE["ask_procs"], SIZE["ask_each"]
    site = Site(settings=NO_LIMITS)
    try:
        site.start(workers=4)
        backup = os.path.join(site.dir, "backup.db")

        def take_backup(done):
            # Wait until a third of the questions are in, then back up.
            target = procs * each // 3
            while not done.is_set() and site.sql1("SELECT count(*) FROM orders") < target:
                time.sleep(0.05)
            before = {i for (i,) in site.sql("SELECT id FROM orders")}
            t0 = time.time()
            p = site.ctl("backup", backup, check=False)
            return before, p, time.time() - t0

        t0 = time.time()
        recs, (before, bp, bsecs) = run_load(site, procs, each, site.dir, "c", during=take_backup)
        secs = time.time() - t0
        statuses = {}
        for r in recs:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        errors = [r for r in recs if r["error"]]
        five = [r for r in recs if (r["status"] or 0) >= 500]
        t.eq(len(recs), procs * each, "%d processes x %d questions were all sent" % (procs, each))
        t.ok(not five and not errors, "no 5xx and no failed connection under load",
             (five + errors)[:5])
        t.eq(statuses.get(303, 0), procs * each, "every question answered 303 (%r)" % statuses)
        acked, found = check_acknowledged(site, recs, "load")
        t.eq(found, acked, "as many orders in the database as 303s seen")
        log = log_text(site)
        t.ok("database is locked" not in log and "SQLITE_BUSY" not in log,
             "no \"database is locked\" in the server's log",
             [l for l in log.splitlines() if "locked" in l or "BUSY" in l][:5])
        t.eq(integrity(site.db), "ok", "PRAGMA integrity_check is ok after the load")
        t.ok(bp.returncode == 0, "pmbctl backup during the load succeeds", bp.stderr)
        t.ok(0 < len(before) < procs * each, "the backup began while questions were "
             "coming in (%d of %d stored)" % (len(before), procs * each))
        t.eq(integrity(backup), "ok", "the backup passes integrity_check")
        c = sqlite3.connect(backup)
        inb = {i for (i,) in c.execute("SELECT id FROM orders")}
        c.close()
        t.ok(before <= inb, "the backup has every order committed before it began (%d of %d)"
             % (len(before & inb), len(before)), sorted(before - inb)[:10])
        summary("load: %d processes x %d POST /ask in %.1f s (%.0f questions/s): "
                "%d acknowledged (303), %d orders found, statuses %r"
                % (procs, each, secs, procs * each / secs, acked, found, statuses))
        summary("backup during load: %d orders committed before it, all %d in the copy "
                "(%.2f s, integrity %s)" % (len(before), len(before & inb), bsecs, integrity(backup)))
    finally:
        site.cleanup()


def part_kill():
    """The load while a random worker is SIGKILLed every 200 ms."""
    procs = SIZE["kill_procs"]
    site = Site(settings=NO_LIMITS)
    try:
        site.start(workers=4)

        def killer(done):
            kills, short, rng = 0, 0, random.Random(8)
            while not done.is_set():
                ws = site.workers()
                if len(ws) < 4:
                    short += 1
                if ws:
                    try:
                        os.kill(rng.choice(ws), signal.SIGKILL)
                        kills += 1
                    except ProcessLookupError:
                        pass
                time.sleep(0.2)
            return kills, short

        t0 = time.time()
        recs, (kills, short) = run_load(site, procs, 100000, site.dir, "k",
                                        seconds=SIZE["kill_seconds"], during=killer)
        secs = time.time() - t0
        acked, found = check_acknowledged(site, recs, "kill test")
        t.ok(acked > 0, "questions were still acknowledged while workers died (%d)" % acked)
        t.ok(found >= acked, "no acknowledged question was lost (%d found, %d acknowledged)"
             % (found, acked))
        full = wait_pool(site, 4, timeout=3)
        t.ok(full, "the supervisor keeps the pool full (4 workers)", site.workers())
        t.eq(integrity(site.db), "ok", "integrity_check is ok after the kills")
        st, _, _ = Conn(site.port).request("GET", "/")
        t.eq(st, 200, "the site serves after the kills")
        n_restart = restarts(site)
        t.ok(n_restart >= kills * 0.9, "the supervisor replaced the killed workers (%d of %d)"
             % (n_restart, kills))
        codes = {}
        for r in recs:
            k = r["status"] if r["status"] else "conn-error"
            codes[k] = codes.get(k, 0) + 1
        summary("kill test: %.1f s, %d SIGKILLs, %d worker restarts, %d questions sent, "
                "%d acknowledged, %d orders found (unacknowledged ones may be stored), "
                "outcomes %r" % (secs, kills, n_restart, len(recs), acked, found, codes))
    finally:
        site.cleanup()


def part_parallel_once():
    """50 parallel POSTs of one refund link; 50 parallel replies."""
    n = SIZE["parallel"]
    site = Site(users=STAFF, settings=NO_LIMITS)
    try:
        site.start(workers=4)
        staff = Browser(site)
        login(staff)
        c, path, oid, rpath = answered_order(site, staff, "once-refund@example.com")
        _, hidden = c.form(rpath)
        res = parallel(n, lambda i: c.post(rpath, {"reason": "Not what I needed",
                                                   "csrf_token": hidden["csrf_token"]}).status)
        t.ok(all(isinstance(s, int) and s < 500 for s in res),
             "%d parallel refund POSTs: no 5xx, no error" % n, res)
        t.eq(site.sql1("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid), 1,
             "%d parallel POSTs of one refund link make exactly one refund request" % n)
        t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'refund_receipt'", oid),
             1, "and one receipt email")
        # Once the request exists, a POST without this browser's token is
        # still refused (wapiti's csrf module flagged the 200 it got).
        for tok in ("", "x" * 43):
            r = c.post(rpath, {"reason": "forged", "csrf_token": tok})
            t.eq(r.status, 403, "a refund POST with a %s CSRF token answers 403 after the request"
                 % ("missing" if not tok else "wrong"))
        # 50 parallel "send reply" for one paid order.
        b = Browser(site)
        r = ask(b, email="once-reply@example.com")
        oid2 = site.sql1("SELECT id FROM orders WHERE email = ?", "once-reply@example.com")
        tok = admin_csrf(staff)
        staff.post("/admin/orders/%d/paid" % oid2, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
        res2 = parallel(n, lambda i: staff.post("/admin/orders/%d/reply" % oid2,
                                                {"body": "Answer number %d" % i,
                                                 "csrf_token": tok, "confirm": "yes"}).status)
        t.ok(all(isinstance(s, int) and s < 500 for s in res2),
             "%d parallel replies: no 5xx, no error" % n, res2)
        t.eq(sorted(set(res2)), [303, 409], "one reply answers 303, the others 409")
        t.eq(res2.count(303), 1, "exactly one reply was accepted")
        t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind = 'reply'", oid2),
             1, "%d parallel replies for one order store one reply" % n)
        t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'answer'", oid2),
             1, "and send one answer email")
        summary("parallel: %d refund POSTs -> %d request; %d replies -> %d reply"
                % (n, site.sql1("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid), n,
                   site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind = 'reply'", oid2)))
    finally:
        site.cleanup()


def part_readonly():
    """A database file that cannot be written: 503, nothing half-written,
    and the site recovers when it can be written again. As root, file
    modes do not stop writes, so the file is made immutable (chattr +i)
    while the server is stopped (workers open the file after it)."""
    if shutil.which("chattr") is None:
        t.missing("a read-only database", "chattr (e2fsprogs)")
        return
    site = Site(users=STAFF, settings=NO_LIMITS)
    immutable = []
    try:
        site.start(workers=2)
        b = Browser(site)
        t.eq(ask(b, email="before-ro@example.com").status, 303, "a question is stored before")
        site.stop()
        # Read first: the last connection to close removes the -wal and
        # -shm files, which chattr would then not find.
        before = site.dump()
        files = [site.db] + [site.db + s for s in ("-wal", "-shm") if os.path.exists(site.db + s)]
        for f in files:
            p = subprocess.run(["chattr", "+i", f], capture_output=True, text=True)
            if p.returncode != 0:
                # The file system's limit (overlayfs, tmpfs...), not a missing tool.
                t.skip("a read-only database", "chattr +i does not work here: " + p.stderr.strip())
                return
            immutable.append(f)
        site.start(workers=2)
        b = Browser(site)
        r = ask(b, email="during-ro@example.com")
        t.eq(r.status, 503, "POST /ask on a read-only database answers 503")
        t.ok("nothing was saved" in r.text and GOOD_QUESTION["question"] in r.text,
             "the 503 page says nothing was saved and keeps the question typed")
        t.ok(r.header("Retry-After") is not None, "the 503 carries Retry-After")
        st = site.get("/healthz").status
        t.ok(st in (200, 503), "/healthz answers (%d)" % st)
        for f in immutable:
            subprocess.run(["chattr", "-i", f], check=True)
        immutable = []
        t.eq(site.dump(), before, "nothing was written while the database was read-only")
        ok = False
        for _ in range(40):
            r = ask(Browser(site), email="after-ro@example.com")
            if r.status == 303:
                ok = True
                break
            time.sleep(0.25)
        t.ok(ok, "the site recovers by itself when the file can be written again", r)
        t.eq(integrity(site.db), "ok", "integrity_check is ok")
        summary("read-only database (chattr +i): POST /ask -> %d with nothing written; "
                "recovered without a restart: %s" % (503, ok))
    finally:
        for f in immutable:
            subprocess.run(["chattr", "-i", f])
        site.cleanup()


# --- raw FastCGI records ----------------------------------------------------------------

def fcgi_begin(req_id=1, role=1, flags=0):
    return fcgi_record(FCGI_BEGIN, bytes([0, role, flags, 0, 0, 0, 0, 0]), req_id)


def malformed_records():
    """(name, bytes) pairs, each written alone on a new connection."""
    good = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "QUERY_STRING": "",
            "REMOTE_ADDR": "127.0.0.1", "SCRIPT_NAME": "", "SERVER_PROTOCOL": "HTTP/1.1"}
    huge = struct_pack_len(0x7ffffffe)
    rng = random.Random(1)
    return [
        ("a parameter name length of 0x7ffffffe (aborts libfcgi 2.4.2)",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, huge + struct_pack_len(1) + b"ab")),
        ("a parameter value length of 0x7ffffffe",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, bytes([1]) + huge + b"A" + b"x" * 16)),
        ("lengths of 0x7fffffff in both name and value",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, struct_pack_len(0x7fffffff) * 2 + b"xy")),
        ("a parameter longer than its record",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, bytes([100, 100]) + b"short")),
        ("a truncated header", b"\x01\x01\x00"),
        ("version 9", bytes([9]) + fcgi_begin()[1:]),
        ("an unknown role", fcgi_begin(role=99) + fcgi_record(FCGI_PARAMS, b"")),
        ("request id 0", fcgi_begin(req_id=0) + fcgi_record(FCGI_PARAMS, b"", req_id=0)),
        ("stdin before params", fcgi_begin() + fcgi_record(FCGI_STDIN, b"a=1")),
        ("params with no begin", fcgi_record(FCGI_PARAMS, fcgi_params(good))),
        ("an unknown record type", fcgi_begin() + fcgi_record(77, b"x" * 10)),
        ("a content length of 65535 and then nothing", b"\x01\x04\x00\x01\xff\xff\x00\x00"),
        ("a padding length of 255 and no padding", b"\x01\x04\x00\x01\x00\x00\xff\x00"),
        ("two begins", fcgi_begin() + fcgi_begin() + fcgi_record(FCGI_PARAMS, fcgi_params(good))),
        ("a CONTENT_LENGTH of 2^63 with little stdin",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, fcgi_params(dict(
             good, REQUEST_METHOD="POST", REQUEST_URI="/ask",
             CONTENT_TYPE="application/x-www-form-urlencoded",
             CONTENT_LENGTH="9223372036854775807"))) + fcgi_record(FCGI_PARAMS, b"") +
         fcgi_record(FCGI_STDIN, b"a=1") + fcgi_record(FCGI_STDIN, b"")),
        ("a CONTENT_LENGTH of -1",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, fcgi_params(dict(
             good, REQUEST_METHOD="POST", REQUEST_URI="/ask",
             CONTENT_TYPE="application/x-www-form-urlencoded", CONTENT_LENGTH="-1"))) +
         fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b"")),
        ("parameters without a method or a URI",
         fcgi_begin() + fcgi_record(FCGI_PARAMS, fcgi_params({"X": "y"})) +
         fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b"")),
        ("random bytes", bytes(rng.randrange(256) for _ in range(4096))),
        ("random records", b"".join(fcgi_record(rng.randrange(1, 12),
                                                bytes(rng.randrange(256) for _ in range(rng.randrange(200))),
                                                rng.randrange(3)) for _ in range(40))),
    ]


def struct_pack_len(n):
    return (n | 0x80000000).to_bytes(4, "big")


def part_fastcgi():
    """Malformed records straight to the socket; the socket's mode; no
    TCP listener."""
    site = Site()
    plain_env = site.env

    asan_log = os.path.join(site.dir, "asan")

    def env():
        # Under ASan (scripts/check-sanitizers), libfcgi's malloc of ~2^64
        # bytes for a 0x7ffffffe length is itself an ASan report: let
        # malloc return NULL as libc's does, so that the worker dies of
        # libfcgi's own assertion, as it does in production. ASan still
        # warns of the failed allocation: its reports go to asan_log,
        # checked below, where only that warning is allowed.
        e = plain_env()
        if e.get("ASAN_OPTIONS"):
            e["ASAN_OPTIONS"] += ":allocator_may_return_null=1:log_path=" + asan_log
        return e
    site.env = env
    try:
        site.start(workers=2)
        mode = stat.S_IMODE(os.stat(site.sock).st_mode)
        t.eq(oct(mode), oct(0o660), "the FastCGI socket is mode 0660")
        pids = {site.server.pid} | set(site.workers())
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        tcp = [l for l in out.splitlines() if any("pid=%d," % p in l for p in pids)]
        t.ok(not tcp, "pmb.fcgi --listen unix: opens no TCP listener", tcp)
        out = subprocess.run(["ss", "-lxpH"], capture_output=True, text=True).stdout
        t.ok(site.sock in out, "it listens on its Unix socket only")
        r0 = restarts(site)
        cases = malformed_records()
        bad = []
        for name, data in cases:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(3)
            try:
                s.connect(site.sock)
                s.sendall(data)
                try:
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):
                        pass
                except (socket.timeout, OSError):
                    pass
            except OSError:
                pass
            finally:
                s.close()
            # After each record the site still serves through nginx.
            ok = False
            for _ in range(60):
                try:
                    if site.get("/").status == 200:
                        ok = True
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            if not ok:
                bad.append(name)
        t.ok(not bad, "after each of %d malformed records the site keeps serving" % len(cases), bad)
        t.ok(wait_pool(site, 2), "the pool is full again (2 workers)", site.workers())
        died = restarts(site) - r0
        t.ok(died >= 1, "the 0x7ffffffe record killed a worker, and it was replaced (%d restarts)" % died)
        # A good request on the socket still works.
        s = socket.socket(socket.AF_UNIX)
        s.connect(site.sock)
        s.sendall(fcgi_begin() + fcgi_record(FCGI_PARAMS, fcgi_params({
            "REQUEST_METHOD": "GET", "REQUEST_URI": "/healthz", "QUERY_STRING": "",
            "REMOTE_ADDR": "127.0.0.1"})) + fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b""))
        out, ended = fcgi_read_response(s)
        s.close()
        t.ok(ended and parse_cgi_output(out).status == 200, "a well-formed record still gets its answer")
        reports = []
        for f in os.listdir(site.dir):
            if f.startswith("asan."):
                reports += [l for l in open(os.path.join(site.dir, f), errors="replace").read().splitlines()
                            if l.strip() and "AddressSanitizer failed to allocate" not in l]
        t.ok(not reports, "no sanitizer report but libfcgi's failed allocation", "\n".join(reports[:40]))
        summary("malformed FastCGI: %d records sent, %d worker restarts, site served after each: %s"
                % (len(cases), died, "yes" if not bad else "no (%s)" % bad))
    finally:
        site.cleanup()


# --- 5. sessions and signed links -----------------------------------------------------

def session_ok(site, cookie):
    b = Browser(site)
    b.cookies = {"pmb_session": cookie}
    return b.get("/admin").status == 200


def part_sessions():
    n = SIZE["logins"]
    site = Site(users=STAFF, settings=dict(NO_LIMITS, session_idle_minutes="30", session_max_hours="2"))
    try:
        site.start(workers=2)
        # n logins, two at a time (Argon2id takes ~0.1 s and 64 MiB each).
        t0 = time.time()
        def one(i):
            b = Browser(site)
            b.cookies = {}
            _, h = b.form("/admin/login")
            r = b.post("/admin/login", {"username": "sam", "password": STAFF["sam"],
                                        "csrf_token": h.get("csrf_token", "")})
            return r.status, b.cookies.get("pmb_session")
        res = []
        lock = threading.Lock()

        def worker(k):
            for i in range(k, n, 2):
                x = one(i)
                with lock:
                    res.append(x)
        ths = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
        [th.start() for th in ths]
        [th.join() for th in ths]
        secs = time.time() - t0
        codes = sorted({s for s, _ in res})
        cookies = [c for _, c in res if c]
        t.eq(codes, [303], "%d sign-ins all answer 303" % n)
        t.eq(len(set(cookies)), n, "%d sign-ins give %d distinct session cookies" % (n, n))
        sids = {unb64(c)[1:33] for c in cookies}
        t.eq(len(sids), n, "and %d distinct session ids inside them" % n)
        t.eq(site.sql1("SELECT count(DISTINCT id_hash) FROM sessions"), n,
             "%d distinct hashed ids stored" % n)
        summary("sessions: %d sign-ins in %.1f s, %d distinct session ids" % (n, secs, len(sids)))

        # A cookie planted before sign-in is not the session after it.
        old = cookies[0]
        b = Browser(site)
        b.cookies = {"pmb_session": old}
        tok = admin_csrf(b)
        t.ok(tok, "a cookie of an earlier sign-in works")
        site.sql("DELETE FROM sessions")
        planted = [old, "A" * 44, b64(b"\x01" + os.urandom(32 + 32))]
        for p in planted:
            v = Browser(site)
            v.cookies = {"pmb_session": p}
            r = login(v)
            t.eq(r.status, 303, "sign-in with a planted cookie works")
            t.ok(v.cookies.get("pmb_session") not in (None, p), "and sets a new session id")
            t.ok(not session_ok(site, p), "the planted cookie is not accepted after sign-in")
            t.ok(session_ok(site, v.cookies["pmb_session"]), "the new one is")

        # Logout, idle timeout, absolute timeout.
        b = Browser(site)
        login(b)
        c = b.cookies["pmb_session"]
        r = b.post("/admin/logout", {"csrf_token": admin_csrf(b)})
        t.eq(r.status, 303, "sign-out answers 303")
        t.ok(not session_ok(site, c), "the session cookie is rejected after sign-out")
        b = Browser(site)
        login(b)
        c = b.cookies["pmb_session"]
        site.sql("UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60")
        t.ok(not session_ok(site, c), "rejected after the idle timeout (30 min)")
        b = Browser(site)
        login(b)
        c = b.cookies["pmb_session"]
        site.sql("UPDATE sessions SET last_seen_at = last_seen_at - 29 * 60")
        t.ok(session_ok(site, c), "accepted just inside the idle timeout")
        site.sql("UPDATE sessions SET created_at = created_at - 2 * 3600 - 1")
        t.ok(not session_ok(site, c), "rejected after the absolute timeout (2 h), even in use")
        b = Browser(site)
        login(b)
        c = b.cookies["pmb_session"]
        raw = bytearray(unb64(c))
        flips = 0
        for i in range(len(raw)):
            x = bytearray(raw)
            x[i] ^= 0x01
            flips += not session_ok(site, b64(bytes(x)))
        t.eq(flips, len(raw), "a session cookie with any one byte flipped is rejected (%d)" % len(raw))
        t.ok(session_ok(site, c), "while the cookie itself still works")
    finally:
        site.cleanup()


def link_rejected(site, path, text):
    r = site.get(path)
    return r.status in (400, 404, 409, 410) and text not in r.text, r.status


def part_links():
    """Every signed link is rejected after one flipped byte, a swapped id,
    expiry, or the wrong purpose."""
    site = Site(users=STAFF, settings=NO_LIMITS)
    try:
        site.start(workers=2)
        staff = Browser(site)
        login(staff)
        c1, track1, oid1, refund1 = answered_order(site, staff, "links1@example.com")
        c2, track2, oid2, refund2 = answered_order(site, staff, "links2@example.com")
        q = "How do I get more people"
        t.eq(site.get(track1).status, 200, "the status link works")
        t.eq(site.get(refund1).status, 200, "the refund link works")
        results = {}
        for kind, path in (("status", track1), ("refund", refund1)):
            prefix, tok = path.rsplit("/", 1)
            raw = unb64(tok)
            bad = []
            for i in range(len(raw)):
                for bit in (0x01, 0x80):
                    x = bytearray(raw)
                    x[i] ^= bit
                    ok, st = link_rejected(site, prefix + "/" + b64(bytes(x)), q)
                    if not ok:
                        bad.append((i, bit, st))
            t.ok(not bad, "%s link: each of %d bytes flipped (2 bits each) is rejected"
                 % (kind, len(raw)), bad[:5])
            # One character of the text changed, at every position.
            alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            bad = []
            for i in range(len(tok)):
                ch = alpha[(alpha.index(tok[i]) + 1) % 64]
                ok, st = link_rejected(site, prefix + "/" + tok[:i] + ch + tok[i + 1:], q)
                if not ok:
                    bad.append((i, st))
            t.ok(not bad, "%s link: each of %d characters changed is rejected" % (kind, len(tok)), bad[:5])
            results[kind] = len(raw) * 2 + len(tok)
        # A swapped id: order 2's id in order 1's token, MAC kept; and
        # order 1's body with order 2's MAC.
        for kind, a, b_ in (("status", track1, track2), ("refund", refund1, refund2)):
            prefix, ta = a.rsplit("/", 1)
            tb = b_.rsplit("/", 1)[1]
            ra, rb = bytearray(unb64(ta)), unb64(tb)
            x = bytearray(ra)
            x[3:11] = rb[3:11]
            t.ok(link_rejected(site, prefix + "/" + b64(bytes(x)), q)[0],
                 "%s link: another order's id with the MAC kept is rejected" % kind)
            y = bytes(ra[:19]) + rb[19:]
            t.ok(link_rejected(site, prefix + "/" + b64(y), q)[0],
                 "%s link: one order's body with another's MAC is rejected" % kind)
            z = bytearray(ra)
            z[1] = 2  # a key id that is not loaded
            t.ok(link_rejected(site, prefix + "/" + b64(bytes(z)), q)[0],
                 "%s link: an unknown key id is rejected" % kind)
        # Wrong purpose: each token on the other's path, and a form token.
        t.ok(link_rejected(site, "/r/" + track1.rsplit("/", 1)[1], q)[0],
             "a status token on the refund path is rejected")
        t.ok(link_rejected(site, "/o/" + refund1.rsplit("/", 1)[1], q)[0],
             "a refund token on the status path is rejected")
        _, hidden = Browser(site).form("/ask")
        t.ok(link_rejected(site, "/o/" + hidden["form_token"], q)[0],
             "a form token on the status path is rejected")
        t.ok(link_rejected(site, "/r/" + hidden["form_token"], q)[0],
             "a form token on the refund path is rejected")
        # Expiry: the refund link after the guarantee window; and the
        # form token after a day (CGI, with the test clock).
        exp = int.from_bytes(unb64(refund1.rsplit("/", 1)[1])[15:19], "big")
        t.ok(exp > time.time(), "the refund link carries an expiry")
        r = site.cgi("GET", refund1, env={"PMB_TEST_NOW": str(exp + 1)})
        t.eq(r.status, 410, "the refund link is rejected after its expiry (410)")
        r = site.cgi("GET", refund1, env={"PMB_TEST_NOW": str(exp - 60)})
        t.eq(r.status, 200, "and works a minute before it")
        b = Browser(site, via="cgi")
        _, hidden = b.form("/ask")
        fields = dict(GOOD_QUESTION, email="late-form@example.com")
        fields.update(hidden)
        r = b.site.cgi("POST", "/ask", body=fields,
                       headers={"Cookie": "; ".join("%s=%s" % kv for kv in b.cookies.items())},
                       env={"PMB_TEST_NOW": str(int(time.time()) + 2 * 86400)})
        t.eq(r.status, 400, "a form token two days old is rejected")
        t.eq(site.sql1("SELECT count(*) FROM orders WHERE email = 'late-form@example.com'"), 0,
             "and stores nothing")
        summary("signed links: %d tampered status links and %d tampered refund links rejected; "
                "swapped ids, wrong purposes and expiry rejected"
                % (results["status"], results["refund"]))
    finally:
        site.cleanup()


PARTS = {
    "concurrency": part_concurrency,
    "kill": part_kill,
    "parallel": part_parallel_once,
    "readonly": part_readonly,
    "fastcgi": part_fastcgi,
    "sessions": part_sessions,
    "links": part_links,
}


def main():
    sys.exit(run_parts(t, PARTS))


if __name__ == "__main__":
    main()
