#!/usr/bin/env python3
"""Files with questions and answers (issue 19), through real nginx and
pmb.fcgi: downloads. GET /o/TOKEN/files/ID serves the client only files
of their order whose message they see (never a note's, never one on the
consultant's draft, never another order's: 404); GET /admin/files/ID
serves staff any file; every download carries Content-Type from the
stored kind, nosniff, Content-Disposition: attachment with the name in
RFC 6266's two forms, a sandboxing CSP and private, no-store; a 3 MB
file comes back byte for byte, the worker's memory does not grow by it."""
import hashlib
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf, answered_order, track_path,  # noqa: E402
                     STAFF, asan_build)

t = Tap()
site = Site(users=STAFF)
site.start()
staff = Browser(site)
login(staff)


def put_file(oid, message_id, name, kind, data, user_id=None):
    """A file row as files.c stores one (the upload path has its own
    tests)."""
    site.sql("INSERT INTO files (order_id, message_id, name, kind, size, sha256, user_id, created_at, data) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)", oid, message_id, name, kind, len(data),
             hashlib.sha256(data).digest(), user_id, data)
    return site.sql1("SELECT max(id) FROM files")


def message_of(oid, kind):
    return site.sql1("SELECT id FROM messages WHERE order_id = ? AND kind = ? ORDER BY id", oid, kind)


def vmrss(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_downloads():
    client, path, oid, _ = answered_order(site, staff, "files.client@example.com")
    _, path2, oid2, _ = answered_order(site, staff, "other.client@example.com")
    q = message_of(oid, "question")
    pdf = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024) + b"\n%%EOF\n"
    fid = put_file(oid, q, "Price list “2027”.pdf", "pdf", pdf)
    site.sql("INSERT INTO messages (order_id, kind, body, user_id, created_at) VALUES (?, 'note', 'n', 1, 2)", oid)
    note_file = put_file(oid, message_of(oid, "note"), "internal.txt", "txt", b"staff only\n", user_id=1)
    draft_file = put_file(oid, None, "draft.csv", "csv", b"a,b\n1,2\n", user_id=1)
    other = put_file(oid2, message_of(oid2, "question"), "theirs.png", "png", b"\x89PNG\r\n\x1a\nxx")

    r = client.get("%s/files/%d" % (path, fid))
    t.ok(r.status == 200 and r.body == pdf, "the client downloads their 3 MB PDF byte for byte", r.status)
    want = {
        "Content-Type": "application/pdf",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
        "Content-Length": str(len(pdf)),
    }
    for k, v in want.items():
        t.eq(r.header(k), v, "its %s" % k)
    cd = r.header("Content-Disposition") or ""
    t.ok(cd.startswith('attachment; filename="Price list _2027_.pdf"; ') and
         urllib.parse.unquote(cd.split("filename*=UTF-8''", 1)[-1]) == "Price list “2027”.pdf",
         "Content-Disposition: attachment, an ASCII name and the UTF-8 name (RFC 6266)", cd)
    for label, fpath in (("a note's file", "%s/files/%d" % (path, note_file)),
                         ("a file on the consultant's draft", "%s/files/%d" % (path, draft_file)),
                         ("another order's file", "%s/files/%d" % (path, other)),
                         ("a file that does not exist", "%s/files/999999" % path),
                         ("a file id that is not a number", "%s/files/1x" % path)):
        r = client.get(fpath)
        t.ok(r.status == 404 and b"staff only" not in r.body, "the client asking for %s: 404" % label, r.status)
    r = Browser(site).get("/o/%s/files/%d" % ("A" * 68, fid))
    t.eq(r.status, 404, "a made-up status link: 404")
    # staff
    for f, body, kind in ((note_file, b"staff only\n", "text/plain; charset=utf-8"),
                          (draft_file, b"a,b\n1,2\n", "text/csv; charset=utf-8"),
                          (other, b"\x89PNG\r\n\x1a\nxx", "image/png")):
        r = staff.get("/admin/files/%d" % f)
        t.ok(r.status == 200 and r.body == body and r.header("Content-Type") == kind and
             r.header("Content-Security-Policy") == "sandbox; default-src 'none'",
             "staff download file %d, %s, sandboxed" % (f, kind))
    r = Browser(site).get("/admin/files/%d" % fid)
    t.ok(r.body != pdf and r.header("Content-Disposition") is None and
         (r.status in (302, 303, 401, 403) or "Sign in" in r.text),
         "no file for a visitor without a session: the sign-in, never the file", r.status)
    # the worker streams: its memory does not grow by the file's size
    workers = site.workers()
    before = {p: vmrss(p) for p in workers}
    for _ in range(3):
        client.get("%s/files/%d" % (path, fid))
    grew = max(vmrss(p) - before.get(p, 0) for p in site.workers())
    if asan_build():
        t.skip("three 3 MB downloads grow no worker by 2 MB or more", "built with ASan (%d kB)" % grew)
    else:
        t.ok(grew < 2048, "three 3 MB downloads grow no worker by 2 MB or more (%d kB)" % grew)
    log = open(site.log_path, errors="replace").read()
    t.ok(path.split("/")[2] not in log, "the status token is not in the log")


def test_dashboard():
    """The dashboard says what the files take, from the counter the
    triggers keep."""
    n, size = site.sql("SELECT count(*), coalesce(sum(size), 0) FROM files")[0]
    page = staff.get("/admin/dashboard").text
    m = re.search(r'<dd id="files">(\d+) <span class="muted">\(([\d.]+) MB\)</span>', page)
    t.ok(m and int(m.group(1)) == n and m.group(2) == "%.1f" % (size / 1048576.0),
         "the dashboard: %d files, %.1f MB" % (n, size / 1048576.0), m.group(0) if m else page[-300:])
    t.eq(site.sql("SELECT files, bytes FROM files_usage"), [(n, size)], "the counter agrees with the files")


def test_cancel():
    """A cancelled order keeps no file: by the consultant, and by the mail
    daemon's automatic cancellation of an unpaid order."""
    def unpaid(email):
        c = Browser(site, remote="192.0.2.%d" % (len(email) % 200 + 20))
        path = track_path(ask(c, email=email).header("Location"))
        oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
        fid = put_file(oid, message_of(oid, "question"), "brief.pdf", "pdf", b"%PDF-1.4\nx\n")
        return c, path, oid, fid
    c, path, oid, fid = unpaid("cancel.files@example.com")
    before = site.sql("SELECT files, bytes FROM files_usage")[0]
    t.eq(c.get("%s/files/%d" % (path, fid)).status, 200, "an unpaid order's file downloads")
    r = staff.post("/admin/orders/%d/cancel" % oid, {"reason": "a duplicate", "csrf_token": admin_csrf(staff)})
    t.ok(r.status == 303 and site.sql1("SELECT status FROM orders WHERE id = ?", oid) == "cancelled",
         "the consultant cancels it", r.status)
    t.eq(site.sql1("SELECT count(*) FROM files WHERE order_id = ?", oid), 0, "its files are gone")
    t.eq(site.sql("SELECT files, bytes FROM files_usage")[0], (before[0] - 1, before[1] - len(b"%PDF-1.4\nx\n")),
         "and counted out of the dashboard's storage")
    t.eq(c.get("%s/files/%d" % (path, fid)).status, 404, "its link answers 404")
    _, _, oid2, _ = unpaid("autocancel.files@example.com")
    site.conf["unpaid_cancel_days"] = "14"
    site.write_conf()
    env = site.env()
    env["PMB_TEST_NOW"] = str(site.sql1("SELECT created_at FROM orders WHERE id = ?", oid2) + 15 * 86400)
    site.ctl("mail", "send", env=env)
    site.conf["unpaid_cancel_days"] = "0"
    site.write_conf()
    t.ok(site.sql1("SELECT status FROM orders WHERE id = ?", oid2) == "cancelled" and
         site.sql1("SELECT count(*) FROM files WHERE order_id = ?", oid2) == 0,
         "an unpaid order cancelled by the mail daemon keeps no file either")


def test_check():
    """pmbctl check reads every file back against its SHA-256."""
    p = site.ctl("check", check=False)
    n = site.sql1("SELECT count(*) FROM files")
    t.ok(p.returncode == 0 and "files: %d, every one matches its SHA-256" % n in p.stdout,
         "pmbctl check: every file matches", p.stdout)
    fid = site.sql1("SELECT min(id) FROM files")
    site.sql("UPDATE files SET data = zeroblob(size) WHERE id = ?", fid)
    p = site.ctl("check", check=False)
    t.ok(p.returncode != 0 and "file %d (" % fid in p.stdout and "does not match its SHA-256" in p.stdout,
         "a damaged file is named and check fails", p.stdout)
    site.sql("UPDATE files SET data = zeroblob(size - 1) WHERE id = ?", fid)
    p = site.ctl("check", check=False)
    t.ok(p.returncode != 0 and "file %d (" % fid in p.stdout, "a file of the wrong size too", p.stdout)
    site.sql("DELETE FROM files WHERE id = ?", fid)


try:
    t.run(test_downloads)
    t.run(test_dashboard)
    t.run(test_cancel)
    t.run(test_check)
finally:
    site.cleanup()
t.done()
