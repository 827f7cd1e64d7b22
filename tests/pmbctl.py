#!/usr/bin/env python3
"""pmbctl tests: the real operator's tool run against a fresh site in a
temporary folder. Every run's output is kept, to prove at the end that no
password ever appeared in it."""
import base64
import ctypes
import ctypes.util
import glob
import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, Site, PMBCTL, SRC  # noqa: E402

t = Tap()
MIGRATIONS = len(glob.glob(os.path.join(SRC, "sql", "*.sql")))
PASSWORDS = []      # every password a test typed
OUTPUTS = []        # everything pmbctl printed, on stdout and stderr


def eq(got, want, name, detail=None):
    return t.ok(got == want, name, "got %r, want %r" % (got, want) +
                ("" if detail is None else "\n" + str(detail)))


def password(text):
    PASSWORDS.append(text)
    return text


def ctl(site, *args, input=None, env=None):
    """Runs pmbctl for site; returns the CompletedProcess, never raises."""
    p = site.ctl(*args, input=input, check=False, env=env)
    OUTPUTS.append(p.stdout + p.stderr)
    return p


def user_version(path):
    c = sqlite3.connect(path)
    try:
        return c.execute("PRAGMA user_version").fetchone()[0]
    finally:
        c.close()


def set_user_version(path, v):
    c = sqlite3.connect(path)
    try:
        c.execute("PRAGMA user_version = %d" % v)
        c.commit()
    finally:
        c.close()


def dump(path):
    """Every row of every table of the database at path."""
    c = sqlite3.connect(path)
    try:
        out = {}
        names = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for name in names:
            try:
                out[name] = c.execute("SELECT * FROM \"%s\" ORDER BY rowid" % name).fetchall()
            except sqlite3.OperationalError:    # WITHOUT ROWID (FTS5 shadow tables)
                out[name] = sorted(c.execute("SELECT * FROM \"%s\"" % name).fetchall(), key=repr)
        return out
    finally:
        c.close()


def integrity(path):
    c = sqlite3.connect(path)
    try:
        return c.execute("PRAGMA integrity_check").fetchall()
    finally:
        c.close()


def read_key(site):
    with open(site.conf["key_file"]) as f:
        return f.read()


def key_bytes(text):
    """The key of the key file's first line, decoded (base64url)."""
    line = text.splitlines()[0]
    kid, _, b64 = line.partition(":")
    return kid, base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))


_sodium = None


def pwhash_verify(h, pw):
    """True/False from libsodium's crypto_pwhash_str_verify; None if
    libsodium cannot be loaded."""
    global _sodium
    if _sodium is None:
        name = ctypes.util.find_library("sodium")
        if name is None:
            return None
        _sodium = ctypes.CDLL(name)
        if _sodium.sodium_init() < 0:
            return None
    b = pw.encode()
    return _sodium.crypto_pwhash_str_verify(ctypes.c_char_p(h.encode()), ctypes.c_char_p(b),
                                            ctypes.c_ulonglong(len(b))) == 0


# Writes rows to the database at argv[1], one transaction each, until the
# file argv[2] exists; prints "started N" once N rows are in, then at the
# end what it did as JSON.
WRITER = r"""
import json, os, sqlite3, sys
db, stop = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, timeout=30, isolation_level=None)
n, errors, started = 0, [], False
while not os.path.exists(stop):
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO rate_events (key, at) VALUES (?, ?)",
                  ("live%07d" % n + "y" * 200, 100000 + n))
        c.execute("COMMIT")
        n += 1
    except sqlite3.Error as e:
        errors.append(str(e))
        if c.in_transaction:
            c.execute("ROLLBACK")
    if n == 200 and not started:
        print("started", n, flush=True)
        started = True
print(json.dumps({"written": n, "errors": errors}))
"""


def add_session(site, user):
    uid = site.sql1("SELECT id FROM users WHERE username = ?", user)
    c = sqlite3.connect(site.db)
    try:
        c.execute("INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at) "
                  "VALUES (?, ?, 'csrf', 1, 1)", (os.urandom(32), uid))
        c.commit()
    finally:
        c.close()


def sessions_of(site, user):
    return site.sql1("SELECT count(*) FROM sessions JOIN users ON users.id = user_id "
                     "WHERE username = ?", user)


# --- init and migrate ----------------------------------------------------------

def test_init():
    site = Site()
    try:
        t.ok(MIGRATIONS >= 1, "the source tree has sql/*.sql migrations (%d)" % MIGRATIONS)
        eq(user_version(site.db), MIGRATIONS,
           "init creates the database at the latest schema version")
        eq(site.sql1("SELECT count(*) FROM sqlite_master WHERE name = 'users'"), 1,
           "init creates the tables")
        st = os.stat(site.conf["key_file"])
        eq(stat.S_IMODE(st.st_mode), 0o600, "init makes the key file with mode 0600")
        key = read_key(site)
        kid, raw = key_bytes(key)
        t.ok(kid == "1" and len(raw) == 32, "the key file holds key 1, a 32-byte key",
             "id %r, %d bytes" % (kid, len(raw)))
        eq(stat.S_IMODE(os.stat(site.db).st_mode) & 0o077, 0,
           "init makes the database readable by its owner only")
        p = ctl(site, "init")
        eq(p.returncode, 0, "init runs a second time", p.stderr)
        eq(read_key(site), key, "a second init keeps the key unchanged")
        eq(user_version(site.db), MIGRATIONS, "a second init keeps the schema version")
        t.ok("created the key file" not in p.stdout, "a second init makes no key file", p.stdout)
        p = ctl(site, "user", "add", "keeper", input=password("keeper-password-1") + "\n")
        ctl(site, "init")
        eq(site.sql1("SELECT count(*) FROM users WHERE username = 'keeper'"), 1,
           "init run again keeps the data")

        with open(site.conf["key_file"], "w") as f:
            f.write("not a key\n")
        p = ctl(site, "init")
        t.ok(p.returncode != 0 and "key" in p.stderr,
             "init refuses an existing bad key file", p.stderr)
        with open(site.conf["key_file"]) as f:
            eq(f.read(), "not a key\n", "init leaves an existing key file alone")
    finally:
        site.cleanup()


def test_migrate():
    site = Site()
    try:
        p = ctl(site, "migrate")
        t.ok(p.returncode == 0 and "0 migrations applied" in p.stdout,
             "migrate on a current database applies nothing", p.stdout + p.stderr)
        # A database made by hand, at version 0: migrate brings it up to date.
        for f in glob.glob(site.db + "*"):
            os.unlink(f)
        sqlite3.connect(site.db).close()
        p = ctl(site, "migrate")
        t.ok(p.returncode == 0 and "%d migrations applied" % MIGRATIONS in p.stdout,
             "migrate applies every migration to an empty database", p.stdout + p.stderr)
        eq(user_version(site.db), MIGRATIONS, "migrate leaves the latest schema version")
        p = ctl(site, "check")
        eq(p.returncode, 0, "a migrated database passes check", p.stdout + p.stderr)

        set_user_version(site.db, MIGRATIONS + 1)
        p = ctl(site, "migrate")
        t.ok(p.returncode != 0 and "newer than this program" in p.stderr
             and "upgrade" in p.stderr,
             "migrate refuses a database newer than the program, saying so", p.stderr)
        eq(user_version(site.db), MIGRATIONS + 1, "the newer database is left alone")
        p = ctl(site, "init")
        t.ok(p.returncode != 0 and "newer" in p.stderr,
             "init refuses a newer database too", p.stderr)
        p = ctl(site, "user", "add", "late", input=password("late-password-1") + "\n")
        t.ok(p.returncode != 0 and "newer" in p.stderr,
             "user add refuses a newer database", p.stderr)

        for f in glob.glob(site.db + "*"):
            os.unlink(f)
        p = ctl(site, "migrate")
        t.ok(p.returncode != 0 and "pmbctl init" in p.stderr and not os.path.exists(site.db),
             "migrate without a database says to run init, and makes none", p.stderr)
    finally:
        site.cleanup()


# --- users ---------------------------------------------------------------------

def test_user_add():
    site = Site()
    try:
        pw = password("correct horse battery staple")
        p = ctl(site, "user", "add", "alice", input=pw + "\n")
        t.ok(p.returncode == 0 and "alice" in p.stdout, "user add reads one line from stdin",
             p.stdout + p.stderr)
        h = site.sql1("SELECT pwhash FROM users WHERE username = 'alice'")
        t.ok(h is not None and h.startswith("$argon2id$"), "the stored hash is Argon2id", h)
        t.ok(h is not None and pw not in h, "the password is not stored")
        ok = pwhash_verify(h, pw)
        if ok is None:
            t.missing("the hash verifies the password", "libsodium (loadable by ctypes)")
        else:
            t.ok(ok and not pwhash_verify(h, pw + "x"), "the hash verifies that password only")
        eq(site.sql1("SELECT disabled FROM users WHERE username = 'alice'"), 0,
           "a new user is active")
        t.ok(site.sql1("SELECT count(*) FROM audit WHERE action = 'user add' "
                       "AND detail = 'alice'") == 1, "user add writes an audit row")

        p = ctl(site, "user", "add", "alice", input=password("another good password") + "\n")
        t.ok(p.returncode != 0 and "exists" in p.stderr, "a duplicate user is refused", p.stderr)
        eq(site.sql1("SELECT pwhash FROM users WHERE username = 'alice'"), h,
           "the duplicate leaves the first user as it was")

        def add(name, pw, what, good):
            p = ctl(site, "user", "add", name, input=pw)
            n = site.sql1("SELECT count(*) FROM users WHERE username = ?", name)
            if good:
                t.ok(p.returncode == 0 and n == 1, what, p.stderr)
            else:
                t.ok(p.returncode != 0 and n == 0 and p.stderr.strip() != "", what, p.stderr)
            return p

        p = add("short", password("elevenchars") + "\n", "an 11-character password is refused",
                False)
        t.ok("shorter than 12" in p.stderr, "the refusal says the password is too short", p.stderr)
        add("twelve", password("twelve chars") + "\n", "a 12-character password is accepted",
            True)
        add("maxlen", password("m" * 1024) + "\n", "a 1,024-character password is accepted",
            True)
        p = add("toolong", password("x" * 1025) + "\n", "a 1,025-character password is refused",
                False)
        t.ok("longer than 1,024" in p.stderr, "the refusal says the password is too long",
             p.stderr)
        add("huge", password("y" * 100000) + "\n", "a 100,000-character password is refused",
            False)
        add("wide", password("\u00e9" * 1024) + "\n",
            "1,024 two-byte characters count as 1,024 characters", True)
        add("wide2", password("\u00e9" * 1025) + "\n", "1,025 two-byte characters are refused",
            False)
        add("unicode", password("\u5bc6\u7801\u5bc6\u7801\u5bc6\u7801\u5bc6\u7801\u5bc6\u7801"
                                "\u5bc6\u7801") + "\n",
            "12 CJK characters are accepted", True)
        add("nonl", password("no newline at end"), "a last line without a newline is read",
            True)
        add("crlf", password("windows line end") + "\r\n", "a CRLF line end is dropped", True)
        h = site.sql1("SELECT pwhash FROM users WHERE username = 'crlf'")
        if pwhash_verify(h, "windows line end") is not None:
            t.ok(pwhash_verify(h, "windows line end"), "the CR is not part of the password")
        add("empty", "", "an empty stdin is refused", False)
        add("blank", "\n", "an empty line is refused", False)
        add("ctl", password("has a\x01control char") + "\n",
            "a password with a control character is refused", False)
        p = subprocess.run([PMBCTL, "user", "add", "devnull"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, env=site.env(), timeout=60)
        OUTPUTS.append(p.stdout + p.stderr)
        t.ok(p.returncode != 0 and "no password" in p.stderr, "stdin at /dev/null is refused",
             p.stderr)

        for bad in ("", "bad name", "a" * 65, "-dash", ".dot", "semi;colon", "caf\u00e9",
                    "tab\there", "new\nline", "slash/x"):
            p = ctl(site, "user", "add", bad, input=password("a fine password 1") + "\n")
            t.ok(p.returncode != 0 and "username" in p.stderr,
                 "bad username %r is refused" % bad, p.stderr)
        eq(site.sql1("SELECT count(*) FROM users WHERE username NOT IN "
                     "('alice','twelve','maxlen','wide','unicode','nonl','crlf')"), 0,
           "no refused user was stored")
        for good in ("a" * 64, "bob.smith", "b_b-2@example.com", "X"):
            p = ctl(site, "user", "add", good, input=password("a fine password 2") + "\n")
            eq(p.returncode, 0, "username %r is accepted" % good)

        raw = b""
        for f in glob.glob(site.db + "*"):
            with open(f, "rb") as fh:
                raw += fh.read()
        found = [pw for pw in PASSWORDS if len(pw) >= 12 and pw.encode() in raw]
        eq(found, [], "no password is anywhere in the database's files")
    finally:
        site.cleanup()


def run_on_pty(site, args, answers, timeout=60):
    """Runs pmbctl with a pseudo-terminal as stdin, stdout and stderr;
    types each answer after its prompt appears. Returns (exit status,
    everything the terminal showed, ECHO still on afterwards)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([PMBCTL] + args, stdin=slave, stdout=slave, stderr=slave,
                         env=site.env(), start_new_session=True)
    out = b""
    end = time.time() + timeout

    def read_some(wait):
        nonlocal out
        r, _, _ = select.select([master], [], [], wait)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                return False
            out += data
            return bool(data)
        return True

    try:
        for prompt, answer in answers:
            while prompt.encode() not in out and time.time() < end and p.poll() is None:
                read_some(0.1)
            if prompt.encode() not in out:
                break
            # Count the prompt once: the next prompt may be the same text.
            out = out.replace(prompt.encode(), prompt.lower().encode(), 1)
            os.write(master, answer.encode() + b"\n")
        while p.poll() is None and time.time() < end:
            read_some(0.1)
        if p.poll() is None:
            p.kill()
        p.wait()
        while read_some(0.05) and select.select([master], [], [], 0)[0]:
            pass
        echo = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
    finally:
        os.close(master)
        os.close(slave)
    text = out.decode("utf-8", "replace")
    OUTPUTS.append(text)
    return p.returncode, text, echo


def test_user_add_tty():
    site = Site()
    try:
        pw = password("typed on a real terminal")
        rc, out, echo = run_on_pty(site, ["user", "add", "carol"],
                                   [("Password: ", pw), ("Again: ", pw)])
        eq(rc, 0, "user add from a terminal succeeds")
        t.ok("password: " in out and "again: " in out,
             "a terminal is asked for the password twice", out)
        t.ok(pw not in out, "the typed password is not echoed", out)
        t.ok(echo, "the terminal's echo is back on afterwards")
        h = site.sql1("SELECT pwhash FROM users WHERE username = 'carol'")
        t.ok(h is not None and h.startswith("$argon2id$"), "the terminal's user is stored")
        if pwhash_verify(h or "", pw) is not None:
            t.ok(pwhash_verify(h, pw), "with the password typed")

        rc, out, echo = run_on_pty(site, ["user", "add", "dave"],
                                   [("Password: ", password("first attempt 12345")),
                                    ("Again: ", password("second attempt 1234"))])
        t.ok(rc != 0 and "differ" in out, "two different passwords are refused", out)
        eq(site.sql1("SELECT count(*) FROM users WHERE username = 'dave'"), 0,
           "no user is made when the passwords differ")
        t.ok("first attempt" not in out and "second attempt" not in out,
             "neither password is echoed", out)

        pw2 = password("new terminal password")
        add_session(site, "carol")
        rc, out, echo = run_on_pty(site, ["user", "passwd", "carol"],
                                   [("Password: ", pw2), ("Again: ", pw2)])
        t.ok(rc == 0 and pw2 not in out, "user passwd from a terminal reads without echo", out)
        h2 = site.sql1("SELECT pwhash FROM users WHERE username = 'carol'")
        t.ok(h2 != h and h2.startswith("$argon2id$"), "user passwd stores a new hash")
        eq(sessions_of(site, "carol"), 0, "user passwd ends the user's sessions")
    finally:
        site.cleanup()


def test_user_manage():
    site = Site()
    try:
        for name in ("erin", "frank"):
            ctl(site, "user", "add", name, input=password(name + "-secret-words") + "\n")
        p = ctl(site, "user", "list")
        lines = p.stdout.splitlines()
        t.ok(p.returncode == 0 and len(lines) == 2 and lines[0].startswith("erin ")
             and lines[1].startswith("frank ") and all(" active " in x for x in lines),
             "user list shows every user, active", p.stdout + p.stderr)
        t.ok("$argon2id$" not in p.stdout, "user list shows no hash")

        old = site.sql1("SELECT pwhash FROM users WHERE username = 'erin'")
        add_session(site, "erin")
        add_session(site, "frank")
        pw = password("erin's new password")
        p = ctl(site, "user", "passwd", "erin", input=pw + "\n")
        eq(p.returncode, 0, "user passwd reads stdin", p.stderr)
        new = site.sql1("SELECT pwhash FROM users WHERE username = 'erin'")
        t.ok(new != old and new.startswith("$argon2id$"), "user passwd replaces the hash")
        if pwhash_verify(new, pw) is not None:
            t.ok(pwhash_verify(new, pw) and not pwhash_verify(new, "erin-secret-words"),
                 "the new password works and the old one does not")
        eq(sessions_of(site, "erin"), 0, "user passwd ends that user's sessions")
        eq(sessions_of(site, "frank"), 1, "and leaves other users' sessions")
        p = ctl(site, "user", "passwd", "erin", input="too short\n")
        t.ok(p.returncode != 0 and site.sql1("SELECT pwhash FROM users WHERE username = 'erin'")
             == new, "user passwd refuses a short password and keeps the hash", p.stderr)
        p = ctl(site, "user", "passwd", "nobody", input=password("whatever password") + "\n")
        t.ok(p.returncode != 0 and "no user" in p.stderr, "user passwd of an unknown user fails",
             p.stderr)

        add_session(site, "erin")
        add_session(site, "erin")
        eq(sessions_of(site, "erin"), 2, "erin has two sessions (inserted by SQL)")
        p = ctl(site, "user", "disable", "erin")
        eq(p.returncode, 0, "user disable succeeds", p.stderr)
        eq(site.sql1("SELECT disabled FROM users WHERE username = 'erin'"), 1,
           "user disable marks the user disabled")
        eq(sessions_of(site, "erin"), 0, "user disable ends that user's sessions")
        eq(sessions_of(site, "frank"), 1, "user disable leaves other users' sessions")
        p = ctl(site, "user", "list")
        t.ok(any(x.startswith("erin ") and " disabled " in x for x in p.stdout.splitlines()),
             "user list shows the user disabled", p.stdout)
        p = ctl(site, "user", "enable", "erin")
        eq(p.returncode, 0, "user enable succeeds", p.stderr)
        eq(site.sql1("SELECT disabled FROM users WHERE username = 'erin'"), 0,
           "user enable makes the user active again")
        eq(site.sql1("SELECT count(*) FROM audit WHERE action IN ('user disable', "
                     "'user enable', 'user passwd') AND detail = 'erin'"), 3,
           "passwd, disable and enable are audited")
        for cmd in ("disable", "enable"):
            p = ctl(site, "user", cmd, "nobody")
            t.ok(p.returncode != 0 and "no user nobody" in p.stderr,
                 "user %s of an unknown user fails" % cmd, p.stderr)
            p = ctl(site, "user", cmd, "bad name")
            t.ok(p.returncode != 0 and "username" in p.stderr,
                 "user %s refuses a bad username" % cmd, p.stderr)
    finally:
        site.cleanup()


# --- backup --------------------------------------------------------------------

def test_backup():
    site = Site()
    try:
        ctl(site, "user", "add", "gina", input=password("gina's password 1") + "\n")
        add_session(site, "gina")
        c = sqlite3.connect(site.db)
        c.executemany("INSERT INTO rate_events (key, at) VALUES (?, ?)",
                      (("k%06d" % i + "x" * 200, i) for i in range(20000)))
        c.commit()
        c.close()
        dest = os.path.join(site.dir, "copy.db")
        p = ctl(site, "backup", dest)
        eq(p.returncode, 0, "backup succeeds", p.stderr)
        eq(integrity(dest), [("ok",)], "the backup passes PRAGMA integrity_check")
        t.ok(dump(dest) == dump(site.db) and len(dump(dest)["rate_events"]) == 20000,
             "the backup has the same rows")
        eq(user_version(dest), MIGRATIONS, "the backup keeps the schema version")
        eq(stat.S_IMODE(os.stat(dest).st_mode), 0o600, "the backup is mode 0600")
        eq(sorted(os.listdir(site.dir)).count("copy.db"), 1, "backup made one file")
        t.ok(not [f for f in os.listdir(site.dir) if ".tmp-" in f or f.startswith("copy.db-")],
             "backup leaves no temporary or journal files", os.listdir(site.dir))

        # Again while another process writes to the database all along.
        stopfile = os.path.join(site.dir, "stop-writer")
        w = subprocess.Popen([sys.executable, "-c", WRITER, site.db, stopfile],
                             stdout=subprocess.PIPE, text=True)
        try:
            before = int(w.stdout.readline().split()[1])
            dest2 = os.path.join(site.dir, "live.db")
            t0 = time.time()
            try:
                p = subprocess.run([PMBCTL, "backup", dest2], capture_output=True, text=True,
                                   env=site.env(), timeout=30)
            except subprocess.TimeoutExpired as e:
                p = subprocess.CompletedProcess(e.cmd, -1, "", "timed out after 30s")
            OUTPUTS.append(p.stdout + p.stderr)
            took = time.time() - t0
            mid = site.sql1("SELECT count(*) FROM rate_events WHERE key LIKE 'live%'")
        finally:
            open(stopfile, "w").close()
            out, _ = w.communicate(timeout=60)
        res = json.loads(out.strip().splitlines()[-1])
        during = mid - before
        eq(p.returncode, 0, "backup succeeds while another process writes (%.2fs)" % took,
           p.stderr)
        t.ok(took < 10, "the backup does not restart for every commit (%.2fs)" % took)
        t.ok(during > 0, "the writer kept committing during the backup (%d)" % during)
        eq(res["errors"], [], "the writer was never refused")
        eq(integrity(dest2), [("ok",)], "the live backup passes PRAGMA integrity_check")
        copy, now = dump(dest2), dump(site.db)
        t.ok(all(copy[k] == now[k] for k in now if k != "rate_events"),
             "the live backup has the same rows in every other table")
        live = [r for r in copy["rate_events"] if r[0].startswith("live")]
        t.ok(copy["rate_events"] == now["rate_events"][:len(copy["rate_events"])]
             and before <= len(live) <= mid,
             "the live backup is one consistent snapshot: %d of %d writes" %
             (len(live), res["written"]))

        p = ctl(site, "backup", site.db)
        t.ok(p.returncode != 0 and "database itself" in p.stderr,
             "backup refuses to overwrite the database itself", p.stderr)
        eq(integrity(site.db), [("ok",)], "and the database is unharmed")
        p = ctl(site, "backup", os.path.join(site.dir, "no", "such", "dir.db"))
        t.ok(p.returncode == 0 and os.path.exists(os.path.join(site.dir, "no", "such", "dir.key")),
             "backup into a missing folder makes it (tests/server.py tests the rest)", p.stderr)
    finally:
        site.cleanup()


# --- check ---------------------------------------------------------------------

def test_check():
    site = Site()
    try:
        p = ctl(site, "check")
        t.ok(p.returncode == 0 and "key file: ok" in p.stdout and "integrity: ok" in p.stdout,
             "check passes on a good install", p.stdout + p.stderr)
        keyf = site.conf["key_file"]
        key = read_key(site)

        def bad_check(what, *words):
            p = ctl(site, "check")
            text = p.stdout + p.stderr
            t.ok(p.returncode != 0 and all(w in text for w in words),
                 "check fails for %s, naming it" % what, text)

        os.chmod(keyf, 0o644)
        bad_check("a key file of mode 0644", "key file", "chmod 600")
        os.chmod(keyf, 0o600)
        with open(keyf, "w") as f:
            f.write("1:this-is-not-a-key\n")
        bad_check("a corrupted key file", "key file", keyf)
        with open(keyf, "w") as f:
            f.write(key[:20] + "\n")
        bad_check("a truncated key file", "key file")
        os.unlink(keyf)
        bad_check("a missing key file", "key file", "cannot read")
        with open(keyf, "w") as f:
            f.write(key)
        os.chmod(keyf, 0o600)
        eq(ctl(site, "check").returncode, 0, "check passes again with the key restored")

        set_user_version(site.db, MIGRATIONS + 1)
        bad_check("a database with a newer user_version", "schema", "newer")
        set_user_version(site.db, MIGRATIONS)
        gone = os.path.join(site.dir, "gone.conf")
        with open(gone, "w") as f:
            f.write("database = %s\nkey_file = %s\ntemplate_dir = %s\n" % (
                os.path.join(site.dir, "nowhere", "pmb.db"), keyf, site.conf["template_dir"]))
        p = ctl(site, "--config", gone, "check")
        t.ok(p.returncode != 0 and "database" in p.stderr and "pmbctl init" in p.stdout,
             "check fails for a missing database, naming it", p.stdout + p.stderr)
        t.ok(not os.path.exists(os.path.join(site.dir, "nowhere")), "check creates nothing")
    finally:
        site.cleanup()


# --- the command line --------------------------------------------------------

def test_help_and_errors():
    site = Site()
    try:
        for args in (["--help"], ["-h"]):
            p = ctl(site, *args)
            t.ok(p.returncode == 0 and p.stdout.startswith("usage: pmbctl")
                 and all(w in p.stdout for w in ("init", "migrate", "user add", "backup",
                                                 "check")),
                 "pmbctl %s shows every command" % args[0], p.stdout + p.stderr)
        for cmd in (["init"], ["migrate"], ["user"], ["user", "add"], ["user", "passwd"],
                    ["user", "list"], ["user", "disable"], ["user", "enable"],
                    ["backup"], ["check"]):
            p = ctl(site, *(cmd + ["--help"]))
            t.ok(p.returncode == 0 and "usage: pmbctl" in p.stdout
                 and " ".join(cmd) in p.stdout and p.stderr == "",
                 "pmbctl %s --help" % " ".join(cmd), p.stdout + p.stderr)
        before = sorted(os.listdir(site.dir))
        p = ctl(site, "backup", os.path.join(site.dir, "x.db"), "--help")
        t.ok(p.returncode == 0 and sorted(os.listdir(site.dir)) == before,
             "--help does not run the command")
        p = ctl(site, "user", "add", "henry", "--help", input=password("henry's password") + "\n")
        t.ok(p.returncode == 0 and site.sql1("SELECT count(*) FROM users") == 0,
             "user add --help adds no user")

        def bad(args, what, word, input=None, env=None):
            p = ctl(site, *args, input=input, env=env)
            t.ok(p.returncode != 0 and word in p.stderr, what, p.stdout + p.stderr)

        bad([], "no command fails with a message on stderr", "command")
        bad(["frobnicate"], "an unknown command fails with a message on stderr",
            "unknown command \"frobnicate\"")
        bad(["user", "frob", "x"], "an unknown user command fails", "user")
        bad(["user", "add"], "user add without a name fails", "wrong arguments")
        bad(["user", "add", "a", "b"], "user add with two names fails", "wrong arguments")
        bad(["init", "extra"], "init with an argument fails", "wrong arguments")
        bad(["backup", "a.db", "b.db"], "backup with two files fails", "wrong arguments")
        bad(["--bogus", "check"], "an unknown option fails", "unknown option")
        bad(["--config"], "--config without a file fails", "--config")

        badconf = os.path.join(site.dir, "bad.conf")
        with open(badconf, "w") as f:
            f.write("database = %s\nprice = lots\n" % site.db)
        bad(["--config", badconf, "check"], "a bad settings file fails, naming file and line",
            "bad.conf:2:")
        with open(badconf, "w") as f:
            f.write("no_such_setting = 1\n")
        bad(["check"], "an unknown setting in $PMB_CONFIG fails", "no_such_setting",
            env=dict(site.env(), PMB_CONFIG=badconf))
        with open(badconf, "w") as f:
            f.write("this line has no equals sign\n")
        bad(["user", "add", "ivy"], "a malformed settings file fails before reading a password",
            "bad.conf:1:", input=password("ivy's password 12") + "\n",
            env=dict(site.env(), PMB_CONFIG=badconf))
        bad(["--config", os.path.join(site.dir, "missing.conf"), "check"],
            "a missing settings file fails", "missing.conf")
        p = ctl(site, "--config", site.conf_path, "check", env=dict(site.env(), PMB_CONFIG=""))
        eq(p.returncode, 0, "--config FILE is used instead of $PMB_CONFIG", p.stderr)
    finally:
        site.cleanup()


def test_key_rotation():
    from pmbtest import Browser, ask, track_path
    site = Site()
    try:
        site.start(workers=1)
        old = track_path(ask(Browser(site), email="keys@example.com").header("Location"))
        t.eq(site.get(old).status, 200, "a link signed by key 1 works")
        key_before = open(site.conf["key_file"]).read()
        with open(site.conf["key_file"], "w") as f:
            f.write("# the site's first key\n" + key_before + "\n# end\n")
        p = site.ctl("key", "rotate")
        t.ok("key 2 now signs" in p.stdout, "key rotate adds key 2", p.stdout)
        t.eq(site.ctl("key", "list").stdout, "2 (signs)\n1 (verifies)\n", "key list shows both, the new one signing")
        t.ok(key_before.strip() in open(site.conf["key_file"]).read(), "the old key is kept")
        t.eq(stat.S_IMODE(os.stat(site.conf["key_file"]).st_mode), 0o600, "the key file stays mode 0600")
        site.stop()
        site.start(workers=1)
        t.eq(site.get(old).status, 200, "after rotation the old link still works")
        new = track_path(ask(Browser(site), email="keys2@example.com").header("Location"))
        kid = lambda path: base64.urlsafe_b64decode(path[3:] + "=" * (-len(path[3:]) % 4))[1]
        t.eq((kid(old), kid(new)), (1, 2), "old links carry key id 1, new links key id 2")
        t.eq(site.get(new).status, 200, "the new link works")
        p = site.ctl("key", "remove", "2", check=False)
        t.ok(p.returncode != 0 and "rotate first" in p.stderr, "the signing key cannot be removed")
        site.ctl("key", "remove", "1")
        t.eq(site.ctl("key", "list").stdout, "2 (signs)\n", "key remove drops the old key")
        lines = open(site.conf["key_file"]).read().split("\n")
        t.eq([l if l.startswith("#") or not l else l.split(":")[0] for l in lines],
             ["2", "# the site's first key", "", "# end", ""],
             "rotate and remove keep the key file's comments and blank lines")
        site.stop()
        site.start(workers=1)
        t.eq(site.get(old).status, 404, "a link signed by a removed key stops working")
        t.eq(site.get(new).status, 200, "links of the remaining key still work")
        t.eq(site.ctl("check", check=False).returncode, 0, "check passes after rotation")
    finally:
        site.cleanup()


def test_no_password_leaks():
    t.ok(len(PASSWORDS) > 10 and len(OUTPUTS) > 50,
         "%d passwords typed over %d runs" % (len(PASSWORDS), len(OUTPUTS)))
    leaked = [pw for pw in PASSWORDS if len(pw) >= 8 and any(pw in o for o in OUTPUTS)]
    eq(leaked, [], "no password ever appears in pmbctl's output or log lines")


for fn in (test_init, test_migrate, test_user_add, test_user_add_tty, test_user_manage,
           test_backup, test_check, test_help_and_errors, test_key_rotation, test_no_password_leaks):
    t.run(fn)
sys.exit(t.done())
