#!/usr/bin/env python3
"""Files with the client's question and follow-ups (issue 19), through
real nginx and pmb.fcgi, the multipart bodies built here by hand: the
forms' file input (hint and accept list from the settings, none with
attachments off); each accepted kind of tests/files/ round-trips through
POST /ask and back through the status page's link, byte for byte but for
images, which come back cleaned (a JPEG with GPS EXIF without its APP1
segment, and upright); the consultant's alerts name the files; SVG,
HTML, a PHP file named .png, the GIF/PHP polyglot, a file over
attachment_max_mb, too many files, a malformed body and a truncated
upload are refused with nothing stored, the typed text kept and the
message by the files field; multipart on a route without files is 415;
a follow-up with a file shows it on the status page, and search finds
the order by the file's name; the download headers; questions with files
are stored alone, not through the group commit; and five 10 MB files
arriving at once keep every worker's peak resident memory under 16 MB.

The tests' nginx allows the body of a route that takes files on /ask and
/o/TOKEN/messages (conf/nginx.conf.in keeps body_limit everywhere until
the per-location limits land there): see upload_locations."""
import hashlib
import os
import re
import socket
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, BUILD, SRC, GOOD_QUESTION, login, answered_order,  # noqa: E402
                     track_path, unescape, jpeg_segments, jpeg_size, multipart_form, STAFF, asan_build)

FILES = os.path.join(SRC, "tests", "files")
os.environ["PMB_IMGCLEAN"] = os.path.join(BUILD, "pmb-imgclean")
t = Tap()

UPLOAD_MAX = "64m"


def upload_locations(conf):
    """The tests' nginx: /ask and /o/TOKEN/messages take a body as large
    as pmb.fcgi allows there (upload_body_limit); every other URL keeps
    client_max_body_size = body_limit."""
    if "location = /ask" in conf:
        return conf
    block = ("        location %s {\n"
             "            include /etc/nginx/fastcgi_params;\n"
             "            fastcgi_pass pmb;\n"
             "            client_max_body_size " + UPLOAD_MAX + ";\n"
             "            error_page 413 = @pmb_413;\n"
             "            error_log /dev/null;\n"
             "        }\n\n")
    anchor = "        location ~ ^/[or]/ {"
    assert anchor in conf, "the tests' nginx configuration changed"
    return conf.replace(anchor, block % "= /ask" + block % "~ ^/o/[^/]+/messages$" + anchor, 1)


def sample(name):
    with open(os.path.join(FILES, name), "rb") as f:
        return f.read()


def multipart(fields, files):
    """A multipart/form-data body (pmbtest.multipart_form) of fields
    {name: value} and files [(field, file name, bytes, Content-Type)]:
    the field is always files, the Content-Type is not read (kinds come
    from the content). Returns (body, Content-Type)."""
    return multipart_form(fields, [(name, data) for _, name, data, _ in files])


def post_multipart(browser, path, fields, files):
    body, ctype = multipart(fields, files)
    return browser._send("POST", path, body=body, headers={"Content-Type": ctype})


def ask_fields(browser, **over):
    """The question form's fields (hidden ones from GET /ask) with over."""
    _, hidden = browser.form("/ask")
    f = dict(GOOD_QUESTION)
    f.update(hidden)
    f.update(over)
    return {k: v for k, v in f.items() if v is not None}


def ask_with(browser, files, **over):
    return post_multipart(browser, "/ask#errors", ask_fields(browser, **over), files)


def counts(site):
    return (site.sql1("SELECT count(*) FROM files"), site.sql1("SELECT count(*) FROM messages"),
            site.sql1("SELECT count(*) FROM orders"))


def file_links(html):
    """The status page's file links: [(url, name)] in the page's order."""
    return [(m.group(1), unescape(m.group(2))) for m in
            re.finditer(r'<a href="(/o/[A-Za-z0-9_-]+/files/\d+)">([^<]*)</a>', html)]


SIGNATURE = {"png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF8", "webp": b"RIFF", "jpeg": b"\xff\xd8\xff"}
ACCEPTED = [("sample.pdf", "pdf", "application/pdf"), ("notes.txt", "txt", "text/plain"),
            ("numbers.csv", "csv", "text/csv"), ("sample.docx", "docx", "application/octet-stream"),
            ("sample.xlsx", "xlsx", "application/octet-stream"), ("sample.pptx", "pptx", "application/zip"),
            ("sample.odt", "odt", "application/octet-stream"), ("sample.ods", "ods", "application/octet-stream"),
            ("sample.png", "png", "image/png"), ("sample.gif", "gif", "image/gif"),
            ("sample.webp", "webp", "image/webp"), ("gps.jpeg", "jpeg", "image/jpeg")]

site = Site(users=STAFF, settings={"attachment_max_mb": "1", "alert_new_orders": "yes",
                                   "rate_limit_email_per_hour": "1000", "rate_limit_ip_per_hour": "1000"})
site.start(nginx_conf=upload_locations)
staff = Browser(site)
login(staff)


def test_form():
    """The question form and the follow-up form take files: multipart,
    a labelled multiple file input with the settings' accept list and
    hint; none with attachment_max_mb = 0."""
    page = Browser(site).get("/ask").text
    form = re.search(r'<form class="card"[^>]*>', page).group(0)
    t.ok('enctype="multipart/form-data"' in form and 'method="post"' in form, "the question form is multipart", form)
    inp = re.search(r'<input type="file"[^>]*>', page)
    inp = inp.group(0) if inp else ""
    t.ok('id="files"' in inp and 'name="files"' in inp and " multiple" in inp and
         '<label for="files">' in page, "a labelled file input, id and name files, multiple", inp)
    acc = re.search(r'accept="([^"]*)"', inp)
    acc = acc.group(1).split(",") if acc else []
    t.ok({".pdf", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".txt", ".csv", ".docx", ".xlsx", ".pptx",
          ".odt", ".ods"} == set(acc), "its accept list is attachment_types'", acc)
    t.ok("Up to 5 files of 1 MB each: PDF, images (PNG, JPEG, GIF, WebP), text, CSV, Word, Excel, "
         "PowerPoint, OpenDocument text, OpenDocument spreadsheet." in page and
         'aria-describedby="files-hint"' in inp, "the hint says the settings' limits and kinds", inp)
    off = os.path.join(site.dir, "off.conf")
    with open(off, "w") as f:
        f.write(open(site.conf_path).read().replace("attachment_max_mb = 1", "attachment_max_mb = 0"))
    r = site.cgi("GET", "/ask", env={"PMB_CONFIG": off})
    t.ok(r.status == 200 and 'type="file"' not in r.text and "multipart" not in r.text,
         "attachment_max_mb = 0: no file input, a plain form", r.status)
    some = dict(site.conf)
    some["attachment_types"] = "pdf csv"
    with open(off, "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in some.items()))
    r = site.cgi("GET", "/ask", env={"PMB_CONFIG": off})
    t.ok('accept=".pdf,.csv"' in r.text and "Up to 5 files of 1 MB each: PDF, CSV." in r.text,
         "attachment_types pdf csv: accept and hint say only those", re.findall(r"Up to[^<]*", r.text))
    # a file sent anyway with attachments off: refused, said in the summary
    some["attachment_max_mb"] = "0"
    with open(off, "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in some.items()))
    c = Browser(site)
    body, ctype = multipart(ask_fields(c, email="off@example.com"),
                            [("files", "ok.pdf", sample("sample.pdf"), "application/pdf")])
    before = counts(site)
    r = site.cgi("POST", "/ask", body=body, content_type=ctype, env={"PMB_CONFIG": off},
                 headers={"Cookie": "; ".join("%s=%s" % kv for kv in c.cookies.items()), "Origin": site.base})
    t.ok(r.status == 400 and counts(site) == before and "This site does not take files." in r.text and
         'type="file"' not in r.text and 'Ada Baker' in r.text,
         "attachment_max_mb = 0 and a file sent anyway: 400, nothing stored, said at the top", r.status)


def test_roundtrip():
    """Each accepted kind, sent with the question (five, five and two at
    a time), comes back from the status page's link: byte for byte, but
    for images, which are cleaned; the JPEG with GPS EXIF comes back with
    no Exif APP1 and upright (2x1 with orientation 6 -> 1x2)."""
    sent = {}
    for i in range(0, len(ACCEPTED), 5):
        group = ACCEPTED[i:i + 5]
        c = Browser(site)
        before = site.sql1("SELECT count(*) FROM orders")
        r = ask_with(c, [("files", name, sample(name), ctype) for name, _, ctype in group],
                     email="round%d@example.com" % i)
        path = track_path(r.header("Location"))
        t.ok(r.status == 303 and path, "a question with %d files: 303 to its status page" % len(group),
             (r.status, r.text[:300]))
        oid = site.sql1("SELECT id FROM orders WHERE email = ?", "round%d@example.com" % i)
        t.eq(site.sql1("SELECT count(*) FROM orders") - before, 1, "one order")
        q = site.sql1("SELECT id FROM messages WHERE order_id = ? AND kind = 'question'", oid)
        rows = site.sql("SELECT name, kind, message_id FROM files WHERE order_id = ? ORDER BY id", oid)
        t.eq(rows, [(name, kind, q) for name, kind, _ in group], "stored with the question, kinds from content")
        page = c.get(path).text
        links = dict((n, u) for u, n in file_links(page))
        for name, kind, _ in group:
            sent[name] = (kind, c, links.get(name), page)
    for name, (kind, c, url, page) in sent.items():
        data = sample(name)
        if url is None:
            t.ok(False, "%s is linked on the status page" % name)
            continue
        r = c.get(url)
        if kind not in SIGNATURE:
            t.ok(r.status == 200 and r.body == data, "%s (%s) comes back byte for byte" % (name, kind),
                 (r.status, len(r.body), len(data)))
        else:
            t.ok(r.status == 200 and r.body.startswith(SIGNATURE[kind]),
                 "%s comes back a %s image" % (name, kind), r.body[:12])
            t.ok(re.search(r'<img class="thumb" src="%s" alt="%s"' % (re.escape(url), re.escape(name)), page),
                 "%s is shown as a thumbnail of its link, with alt text" % name)
    jpeg = sent["gps.jpeg"][1].get(sent["gps.jpeg"][2]).body
    t.ok(not any(m == 0xe1 for m, _ in jpeg_segments(jpeg)) and b"Exif" not in jpeg,
         "the JPEG comes back without its Exif APP1 segment (no GPS)",
         [hex(m) for m, _ in jpeg_segments(jpeg)])
    t.eq(jpeg_size(jpeg), (1, 2), "the JPEG comes back upright")
    t.ok(any(m == 0xe1 for m, _ in jpeg_segments(sample("gps.jpeg"))), "(the sent JPEG had an APP1)")
    _, c, _, page = sent["sample.pdf"]
    t.ok(re.search(r'>sample\.pdf</a> \(pdf, 1 KB\)', page),
         "the status page names each file's kind and size", re.findall(r"sample\.pdf.{0,80}", page))
    t.ok(page.index("Your question") < page.index("sample.pdf"), "the files are under the question")


def test_alert():
    """The consultant's new-order alert names the files and their sizes."""
    c = Browser(site)
    r = ask_with(c, [("files", "price list.pdf", sample("sample.pdf"), "application/pdf"),
                     ("files", "ad.png", sample("sample.png"), "image/png")], email="alert@example.com")
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", "alert@example.com")
    size = site.sql1("SELECT size FROM files WHERE order_id = ? AND name = 'ad.png'", oid)
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'order_alert'", oid) or ""
    want = "With 2 files: price list.pdf (1 KB), ad.png (%d bytes)" % (size or 0)
    t.ok(r.status == 303 and want in mail, "the alert: " + want, mail[-400:])
    html = site.sql1("SELECT body_html FROM outbox WHERE order_id = ? AND kind = 'order_alert'", oid) or ""
    t.ok("price list.pdf (1 KB)" in html, "and its HTML part")
    r = Browser(site)
    plain = r.post("/ask", ask_fields(r, email="nofiles@example.com"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", "nofiles@example.com")
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'order_alert'", oid) or ""
    t.ok(plain.status == 303 and "With " not in mail and " file" not in mail,
         "a question without files: a plain form post, an alert without a files line", (plain.status, mail))


def refused(label, files, want, path="/ask", fields=None, browser=None, raw=None):
    """Sends files; checks 400, nothing stored, the typed text kept, the
    message by the files field and the note to choose them again."""
    c = browser or Browser(site)
    before = counts(site)
    typed = "My own typed words about %s, kept when refused." % label
    if path == "/ask":
        f = ask_fields(c, question=typed, company="Kept Company Ltd")
    else:
        f = dict(fields, message=typed)
    if raw is not None:
        body, ctype = raw(f)
        r = c._send("POST", path, body=body, headers={"Content-Type": ctype})
    else:
        r = post_multipart(c, path, f, files)
    after = counts(site)
    t.ok(r.status == 400 and after == before, "%s: 400, nothing stored (files, messages, orders)" % label,
         (r.status, before, after))
    if want is None:
        return r
    page = r.text
    err = re.search(r'<p class="error" id="files-error">([^<]*)</p>', page)
    t.ok(err and want in unescape(err.group(1)), "%s: the message by the files field says %r" % (label, want),
         err.group(1) if err else page[:600])
    inp = re.search(r'<input type="file"[^>]*>', page)
    t.ok(inp and 'aria-invalid="true"' in inp.group(0) and "files-error" in inp.group(0) and
         "files-again" in inp.group(0), "%s: the input described by the message and the note" % label,
         inp.group(0) if inp else None)
    t.ok(typed in unescape(page) and "please choose them again" in page,
         "%s: the typed text kept, and the files to be chosen again" % label)
    if path == "/ask":
        t.ok('<a href="#files">' in page and 'value="Kept Company Ltd"' in page,
             "%s: the error summary links to the files field; every field kept" % label)
    return r


def test_refused():
    """Refused cleanly with nothing stored."""
    refused("an SVG", [("files", "logo.svg", sample("image.svg"), "image/svg+xml")], "SVG")
    refused("an HTML page", [("files", "page.html", sample("page.html"), "text/html")], "cannot be taken")
    refused("a PHP file named .png", [("files", "photo.png", sample("php.png"), "image/png")],
            '"photo.png" cannot be taken')
    refused("the GIF/PHP polyglot", [("files", "anim.gif", sample("polyglot.gif"), "image/gif")],
            '"anim.gif" cannot be taken')
    refused("a good file with an SVG", [("files", "ok.pdf", sample("sample.pdf"), "application/pdf"),
                                        ("files", "logo.svg", sample("image.svg"), "image/svg+xml")], "logo.svg")
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024) + b"\n%%EOF\n"
    refused("a file over attachment_max_mb (1)", [("files", "big.pdf", big, "application/pdf")], "1 MB")
    refused("six files (attachments_per_message 5)",
            [("files", "n%d.txt" % i, sample("notes.txt"), "text/plain") for i in range(6)], "5 files")
    c = Browser(site)
    before = counts(site)
    r = post_multipart(c, "/ask", ask_fields(c, email="not an address"),
                       [("files", "ok.pdf", sample("sample.pdf"), "application/pdf")])
    t.ok(r.status == 400 and counts(site) == before and "please choose them again" in r.text and
         'id="email-error"' in r.text, "a field refused with a good file: 400, nothing stored, the note")
    r = post_multipart(c, "/ask", ask_fields(c, email="not an address"),
                       [("files", "n%d.txt" % i, sample("notes.txt"), "text/plain") for i in range(6)])
    summary = re.findall(r'<li><a href="#(\w+)">', r.text)
    t.ok(r.status == 400 and counts(site) == before and summary == ["email", "files"] and
         "Please check the fields marked below." in r.text,
         "a field refused and too many files: both in the summary, in the form's order", summary)

    def malformed(f):
        body, ctype = multipart(f, [("files", "ok.pdf", sample("sample.pdf"), "application/pdf")])
        return body.replace(b"--\r\n", b"\r\n")[:-2], ctype     # no closing boundary
    r = refused("a malformed multipart body", None, None, raw=malformed)
    r = refused("a boundary the body never uses", None, None,
                raw=lambda f: (multipart(f, [])[0], "multipart/form-data; boundary=other"))
    # multipart on a route that does not take files
    c = Browser(site)
    _, hidden = c.form("/lost")
    body, ctype = multipart(dict(hidden, email="ada@bakery.example"), [])
    r = c._send("POST", "/lost", body=body, headers={"Content-Type": ctype})
    t.eq(r.status, 415, "multipart on /lost (no files there): 415")


def test_truncated():
    """An upload cut short (Content-Length larger than what is sent, then
    the socket closed) stores nothing, through nginx and to pmb.fcgi
    itself (CGI: the body ends early)."""
    c = Browser(site)
    f = ask_fields(c, email="cut@example.com")
    body, ctype = multipart(f, [("files", "ok.pdf", sample("sample.pdf"), "application/pdf")])
    before = counts(site)
    s = socket.create_connection(("127.0.0.1", site.port), timeout=10)
    head = ("POST /ask HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            "Cookie: %s\r\n\r\n" % (site.port, ctype, len(body) + 100000,
                                    "; ".join("%s=%s" % kv for kv in c.cookies.items())))
    s.sendall(head.encode() + body)
    s.close()
    t.ok(site.get("/").status == 200, "the site answers after a cut upload")
    t.eq(counts(site), before, "a cut upload through nginx: nothing stored")
    hdr = {"Cookie": "; ".join("%s=%s" % kv for kv in c.cookies.items()), "Origin": site.base}
    r = site.cgi("POST", "/ask", body=body, headers=hdr, content_type=ctype,
                 content_length=str(len(body) + 100000))
    t.ok(r.status == 400 and counts(site) == before, "cut short to pmb.fcgi itself: 400, nothing stored",
         (r.status, r.text[:200]))
    r = site.cgi("POST", "/ask", body=body[:len(body) // 2], headers=hdr, content_type=ctype,
                 content_length=str(len(body)))
    t.ok(r.status == 400 and counts(site) == before, "cut in the middle of the file: 400, nothing stored",
         r.status)


def test_followup():
    """A follow-up with a file: stored with the follow-up's message, shown
    under it on the status page, named in the consultant's alert, found by
    search; a refused file keeps the follow-up's text. The download's
    headers."""
    client, path, oid, _ = answered_order(site, staff, "follow@example.com")
    _, hidden = client.form(path)
    refused("a follow-up with an SVG", [("files", "chart.svg", sample("image.svg"), "image/svg+xml")],
            "SVG", path=path + "/messages", fields=hidden, browser=client)
    data = sample("numbers.csv")
    r = post_multipart(client, path + "/messages", dict(hidden, message="And what about these numbers?"),
                       [("files", "Zebra numbers “Q3”.csv", data, "text/csv")])
    t.ok(r.status == 303 and "followup=sent" in (r.header("Location") or ""), "the follow-up with a file: 303",
         (r.status, r.text[:300]))
    fu = site.sql1("SELECT max(id) FROM messages WHERE order_id = ? AND kind = 'followup'", oid)
    row = site.sql("SELECT id, name, kind, size FROM files WHERE message_id = ?", fu)
    t.eq([x[1:] for x in row], [("Zebra numbers “Q3”.csv", "csv", len(data))],
         "stored with the follow-up's message")
    page = client.get(path).text
    links = file_links(page)
    t.ok(len(links) == 1 and links[0][1] == "Zebra numbers “Q3”.csv" and
         page.index("Your follow-up question") < page.index("Zebra numbers"),
         "the status page shows the file under the follow-up", links)
    d = client.get(links[0][0]) if links else None
    t.ok(d and d.status == 200 and d.body == data, "it downloads byte for byte")
    if d:
        for k, v in (("Content-Type", "text/csv; charset=utf-8"), ("X-Content-Type-Options", "nosniff"),
                     ("Content-Security-Policy", "sandbox; default-src 'none'"),
                     ("Cache-Control", "private, no-store")):
            t.eq(d.header(k), v, "the download's " + k)
        cd = d.header("Content-Disposition") or ""
        t.ok(cd.startswith("attachment;") and
             urllib.parse.unquote(cd.split("filename*=UTF-8''", 1)[-1]) == "Zebra numbers “Q3”.csv",
             "Content-Disposition: attachment; filename*=UTF-8''...", cd)
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'followup_alert'", oid) or ""
    t.ok("With 1 file: Zebra numbers “Q3”.csv (71 bytes)" in mail, "the follow-up alert names the file",
         mail[-300:])
    s = staff.get("/admin/search?q=Zebra").text
    t.ok("/admin/orders/%d" % oid in s, "search finds the order by the file's name")
    # the thread never shows a note's file
    site.sql("INSERT INTO messages (order_id, kind, body, user_id, created_at) VALUES (?, 'note', 'n', 1, 2)", oid)
    note = site.sql1("SELECT max(id) FROM messages WHERE order_id = ?", oid)
    site.sql("INSERT INTO files (order_id, message_id, name, kind, size, sha256, user_id, created_at, data) "
             "VALUES (?, ?, 'secret-note.txt', 'txt', 2, ?, 1, 1, ?)", oid, note,
             hashlib.sha256(b"x\n").digest(), b"x\n")
    site.sql("INSERT INTO files (order_id, message_id, name, kind, size, sha256, user_id, created_at, data) "
             "VALUES (?, NULL, 'draft-file.txt', 'txt', 2, ?, 1, 1, ?)", oid,
             hashlib.sha256(b"x\n").digest(), b"x\n")
    page = client.get(path).text
    t.ok("secret-note.txt" not in page and "draft-file.txt" not in page,
         "the status page never shows a note's or a draft's file")


def test_alone():
    """Questions with files are stored alone, not through the group
    commit: the supervisor's count of grouped orders is the orders
    without files."""
    site.stop()
    log = open(site.log_path, errors="replace").read()
    m = re.findall(r"group commit: (\d+) orders in \d+ commits", log)
    n = site.sql1("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM files f JOIN messages m "
                  "ON m.id = f.message_id WHERE f.order_id = o.id AND m.kind = 'question')")
    t.ok(m and int(m[-1]) == n, "the group commit stored the %d orders without files, no others" % n, m)


def vmhwm(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_memory():
    """Five questions with a 10 MB PDF each, sent at once: all stored
    byte for byte, and no worker's peak resident memory reaches 16 MB."""
    big = Site(settings={"rate_limit_email_per_hour": "1000", "rate_limit_ip_per_hour": "1000"})
    try:
        big.start(nginx_conf=upload_locations)
        pdfs = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + os.urandom(10 * 1024 * 1024 - 40) + b"\n%%EOF\n"
                for _ in range(5)]
        bodies = []
        for i in range(5):
            c = Browser(big)
            f = ask_fields(c, email="big%d@example.com" % i)
            bodies.append((c, f, pdfs[i]))
        res = [None] * 5

        def send(i):
            c, f, data = bodies[i]
            res[i] = post_multipart(c, "/ask", f, [("files", "big%d.pdf" % i, data, "application/pdf")]).status
        th = [threading.Thread(target=send, args=(i,)) for i in range(5)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        t.eq(res, [303] * 5, "five 10 MB questions at once: each 303")
        got = big.sql("SELECT name, size, sha256 FROM files ORDER BY name")
        t.eq(got, [("big%d.pdf" % i, len(pdfs[i]), hashlib.sha256(pdfs[i]).digest()) for i in range(5)],
             "all five stored, sizes and SHA-256 as sent")
        peaks = [vmhwm(p) for p in big.workers()]
        if asan_build():
            t.skip("peak resident memory per worker under 16 MB", "built with ASan (%s kB)" % peaks)
        else:
            t.ok(peaks and max(peaks) < 16 * 1024, "peak resident memory per worker under 16 MB: %s kB" % peaks)
        print("# VmHWM per worker after five 10 MB uploads: %s kB" % peaks)
    finally:
        big.stop()
        big.cleanup()


try:
    for fn in (test_form, test_roundtrip, test_alert, test_refused, test_truncated, test_followup,
               test_memory, test_alone):
        t.run(fn)
finally:
    site.stop()
    site.cleanup()
sys.exit(t.done())
