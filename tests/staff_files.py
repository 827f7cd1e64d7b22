#!/usr/bin/env python3
"""The consultant's files (issue 19), through real nginx and pmb.fcgi:
the reply, draft and note forms take files (multipart/form-data). A reply
sent with a PDF and a PNG keeps both (the PNG cleaned of its text chunk),
the answer email lists them by name and size with links to
/o/TOKEN/files/ID, and the client downloads them from those links (the
PDF byte for byte); the order page's thread shows them, the image as a
thumbnail. A draft's files stay with the draft (page reloaded), one is
removed (POST, CSRF, audited), another added, one more chosen on the send
form itself survives the no-JavaScript confirmation step, and on sending
all of them become the reply's. A note's file is never the client's (404,
not on the status page). Refused kinds (SVG, a PHP file named .png) keep
the typed reply or note, say why by the files field, and store nothing.
A client's email reply piped to `pmbctl mail receive` with a PDF, a JPEG
with GPS EXIF and an SVG lands as a follow-up with the PDF and the JPEG
(cleaned) stored as its files, the SVG not, its text saying which were
kept; mail that waits in the inbox keeps only the list, and an email that
names none of ours never has its images given to the helper."""
import email
import email.policy
import glob
import os
import re
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, login, admin_csrf,  # noqa: E402
                     STAFF, SRC, BUILD, PMBCTL, multipart_form, unescape)
from email.message import EmailMessage  # noqa: E402

os.environ.setdefault("PMB_IMGCLEAN", os.path.join(BUILD, "pmb-imgclean"))
t = Tap()
site = Site(users=STAFF, settings={"reply_address": "answers@example.com"})
site.start()
staff = Browser(site)
login(staff)
FILES = os.path.join(SRC, "tests", "files")


def sample(name):
    with open(os.path.join(FILES, name), "rb") as f:
        return f.read()


def png_with_text(png):
    """png with a tEXt chunk (a place) after IHDR: what cleaning drops."""
    body = b"tEXt" + b"Comment\0taken at 48.8580 N, 2.2945 E"
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]


def post_files(browser, path, fields, files):
    body, ctype = multipart_form(fields, files)
    return browser.post(path, body, headers={"Content-Type": ctype})


def paid_order(email):
    """A paid order waiting for its answer: (client, track path, id)."""
    c = Browser(site)
    path = track_path(ask(c, email=email).header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
    staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                               "csrf_token": admin_csrf(staff)})
    return c, path, oid


def files_of(oid):
    return site.sql("SELECT id, coalesce(message_id, 0), name, kind, size FROM files WHERE order_id = ? ORDER BY id",
                    oid)


def data_of(fid):
    return site.sql1("SELECT data FROM files WHERE id = ?", fid)


def answer_mail(oid):
    return site.sql("SELECT body_text, body_html FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id",
                    oid)[-1]


def mail_links(text):
    """{file name: (path /o/TOKEN/files/ID, size text)} in an answer
    email's text part."""
    out = {}
    for m in re.finditer(r"^(.+?) \(([^()]+)\):\nhttps?://[^/\s]+(/o/[A-Za-z0-9_-]+/files/\d+)$", text, re.M):
        out[m.group(1)] = (m.group(3), m.group(2))
    return out


def test_reply_with_files():
    client, path, oid = paid_order("reply.files@example.com")
    pdf, png = sample("sample.pdf"), png_with_text(sample("sample.png"))
    r = post_files(staff, "/admin/orders/%d/reply" % oid,
                   {"csrf_token": admin_csrf(staff), "body": "See the **price list**.", "confirm": "yes"},
                   [("Price list.pdf", pdf), ("chart.png", png)])
    t.eq(r.status, 303, "a reply with a PDF and a PNG is sent")
    reply = site.sql1("SELECT id FROM messages WHERE order_id = ? AND kind = 'reply'", oid)
    rows = files_of(oid)
    t.eq([(m, n, k) for _, m, n, k, _ in rows], [(reply, "Price list.pdf", "pdf"), (reply, "chart.png", "png")],
         "both files belong to the reply message")
    byname = {n: (i, s) for i, _, n, _, s in rows}
    stored_png = data_of(byname["chart.png"][0])
    t.ok(data_of(byname["Price list.pdf"][0]) == pdf, "the PDF is stored as sent")
    t.ok(stored_png[:8] == b"\x89PNG\r\n\x1a\n" and b"tEXt" not in stored_png and b"48.8580" not in stored_png,
         "the PNG is stored cleaned: its text chunk (a place) is gone")
    text, html = answer_mail(oid)
    links = mail_links(text)
    t.eq(sorted(links), ["Price list.pdf", "chart.png"], "the answer email's text lists both files by name")
    t.eq(links.get("Price list.pdf", (None, ""))[1], "1 KB", "with the PDF's size (1,515 bytes: 1 KB)")
    t.ok("Content-Disposition: attachment" not in text and "Price list.pdf" in html and
         all(p in html for p, _ in links.values()), "the HTML part lists them with the same links; nothing attached")
    for name, (link, _) in links.items():
        t.ok(link.startswith(path.split("/o/")[0] + "/o/"), "the link to %s is under a signed status link" % name)
        r = client.get(link)
        want = pdf if name.endswith(".pdf") else stored_png
        t.ok(r.status == 200 and r.body == want, "the client downloads %s from the email's link, byte for byte" % name,
             r.status)
    page = staff.get("/admin/orders/%d" % oid).text
    for name, (fid, _) in byname.items():
        t.ok('<a href="/admin/files/%d">%s</a>' % (fid, name) in page, "the thread links %s for staff" % name)
    t.ok('<img class="thumb" src="/admin/files/%d"' % byname["chart.png"][0] in page and
         'src="/admin/files/%d"' % byname["Price list.pdf"][0] not in page, "the PNG shows as a thumbnail, the PDF not")
    t.ok(staff.get("/admin/files/%d" % byname["Price list.pdf"][0]).body == pdf, "staff download the PDF")


def draft_files(oid):
    page = staff.get("/admin/orders/%d" % oid).text
    """The ids of the files listed on the draft, each with a Remove button
    of its own form (posting to /admin/orders/ID/files/FILE/remove, with
    the CSRF field), and the page."""
    m = re.search(r'<ul class="files draft-files" id="draft-files"[^>]*>(.*?)</ul>', page, re.S)
    ids = re.findall(r'<button type="submit" class="secondary" form="draft-file-(\d+)">Remove ', m.group(1)) if m else []
    forms = re.findall(r'<form id="draft-file-(\d+)" method="post" action="/admin/orders/%d/files/(\d+)/remove">'
                       r'\s*<input type="hidden" name="csrf_token"' % oid, page)
    return [i for i in ids if (i, i) in forms], page


def test_draft_files():
    client, path, oid = paid_order("draft.files@example.com")
    tok = admin_csrf(staff)
    r = post_files(staff, "/admin/orders/%d/draft" % oid, {"csrf_token": tok, "body": "Draft one."},
                   [("first.csv", sample("numbers.csv"))])
    t.eq(r.status, 303, "a draft saved with a file")
    first = site.sql1("SELECT id FROM files WHERE order_id = ? AND name = 'first.csv' AND message_id IS NULL", oid)
    ids, page = draft_files(oid)
    t.ok(first is not None and ids == [str(first)] and "Draft one." in page,
         "the page reloaded: the file is still on the draft, with a Remove button", ids)
    t.eq(client.get("%s/files/%d" % (path, first)).status, 404, "the client cannot fetch a draft's file")
    r = staff.post("/admin/orders/%d/files/%d/remove" % (oid, first), {"csrf_token": "x" * 43})
    t.ok(r.status == 403 and files_of(oid), "removing without the CSRF token: 403, the file kept", r.status)
    r = staff.post("/admin/orders/%d/files/%d/remove" % (oid, first), {"csrf_token": tok})
    t.ok(r.status == 303 and not files_of(oid), "removed from the draft", r.status)
    t.ok(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'remove draft file'", oid) == 1,
         "the removal is audited")
    r = staff.post("/admin/orders/%d/files/%d/remove" % (oid, first), {"csrf_token": tok})
    t.eq(r.status, 404, "removing it again: 404")
    r = post_files(staff, "/admin/orders/%d/draft" % oid, {"csrf_token": tok, "body": "Draft two."},
                   [("second.txt", sample("notes.txt"))])
    ids, page = draft_files(oid)
    t.ok(r.status == 303 and len(ids) == 1 and "second.txt" in page, "another file added to the draft")
    # Send without JavaScript, with one more file chosen on the send form.
    r = post_files(staff, "/admin/orders/%d/reply" % oid, {"csrf_token": tok, "body": "The reply."},
                   [("third.pdf", sample("sample.pdf"))])
    t.ok(r.status == 200 and "Send this reply" in r.text and "second.txt" in r.text and "third.pdf" in r.text,
         "the confirmation step lists the draft's file and the one chosen on the send form", r.status)
    t.eq([(m, n) for _, m, n, _, _ in files_of(oid)], [(0, "second.txt"), (0, "third.pdf")],
         "the file chosen on the send form is stored with the draft before the confirmation")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind = 'reply'", oid), 0, "not sent yet")
    r = staff.post("/admin/orders/%d/reply" % oid, {"csrf_token": tok, "body": "The reply.", "confirm": "yes"})
    reply = site.sql1("SELECT id FROM messages WHERE order_id = ? AND kind = 'reply'", oid)
    t.ok(r.status == 303 and reply is not None, "sent", r.status)
    t.eq([(m, n) for _, m, n, _, _ in files_of(oid)], [(reply, "second.txt"), (reply, "third.pdf")],
         "on sending, the draft's files belong to the reply")
    t.eq(sorted(mail_links(answer_mail(oid)[0])), ["second.txt", "third.pdf"], "the answer email lists both")
    ids, _ = draft_files(oid)
    t.eq(ids, [], "no file left on a draft")
    for fid, _, name, _, _ in files_of(oid):
        t.eq(client.get("%s/files/%d" % (path, fid)).status, 200, "the client may now fetch %s" % name)


def test_note_files():
    client, path, oid = paid_order("note.files@example.com")
    tok = admin_csrf(staff)
    r = post_files(staff, "/admin/orders/%d/note" % oid, {"csrf_token": tok, "body": "Staff only."},
                   [("internal-costs.csv", sample("numbers.csv"))])
    note = site.sql1("SELECT id FROM messages WHERE order_id = ? AND kind = 'note'", oid)
    rows = files_of(oid)
    t.ok(r.status == 303 and [(m, n) for _, m, n, _, _ in rows] == [(note, "internal-costs.csv")],
         "a note's file belongs to the note", rows)
    fid = rows[0][0]
    t.eq(client.get("%s/files/%d" % (path, fid)).status, 404, "the client cannot download a note's file")
    t.ok("internal-costs.csv" in staff.get("/admin/orders/%d" % oid).text, "the order page lists it for staff")
    t.ok("internal-costs.csv" not in client.get(path).text, "the status page never lists it")
    t.eq(staff.get("/admin/files/%d" % fid).status, 200, "staff download it")
    # Answered: the note's file is still not the client's.
    staff.post("/admin/orders/%d/reply" % oid, {"csrf_token": tok, "body": "Answer.", "confirm": "yes"})
    t.ok(client.get("%s/files/%d" % (path, fid)).status == 404 and
         "internal-costs.csv" not in answer_mail(oid)[0], "after the answer too: 404, and not in the answer email")


def test_refused():
    client, path, oid = paid_order("refused.files@example.com")
    tok = admin_csrf(staff)
    staff.post("/admin/orders/%d/draft" % oid, {"csrf_token": tok, "body": "Saved text."})
    cases = (("reply", {"body": "Typed <reply> here", "confirm": "yes"}, "image.svg", "reply-files-error"),
             ("draft", {"body": "Typed <draft> here"}, "php.png", "reply-files-error"),
             ("note", {"body": "Typed <note> here"}, "image.svg", "note-files-error"))
    for action, fields, bad, err_id in cases:
        f = dict(fields, csrf_token=tok)
        r = post_files(staff, "/admin/orders/%d/%s" % (oid, action), f,
                       [("fine.pdf", sample("sample.pdf")), (bad, sample(bad))])
        typed = fields["body"].replace("<", "&lt;").replace(">", "&gt;")
        m = re.search(r'<p class="error" id="%s">([^<]*)</p>' % err_id, r.text)
        t.ok(r.status == 400 and m and bad in unescape(m.group(1)) and "again" in m.group(1),
             "%s with %s: 400, why by the files field" % (action, bad), (r.status, m and m.group(1)))
        t.ok(typed in r.text, "the typed %s is kept" % action)
        t.ok(re.search(r'<input type="file" id="%s" name="files" multiple aria-describedby="[^"]*\b%s\b[^"]*" '
                       r'aria-invalid="true">' % (err_id.replace("-error", ""), err_id), r.text),
             "the files input is marked invalid and described by the error")
        t.ok(files_of(oid) == [] and
             site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind <> 'question'", oid) == 0 and
             site.sql1("SELECT reply_draft FROM orders WHERE id = ?", oid) == "Saved text.",
             "nothing stored (no file, no message, the draft as it was)")
    # One file too many (the gate's upload_error): the same.
    r = post_files(staff, "/admin/orders/%d/note" % oid, {"csrf_token": tok, "body": "Six files"},
                   [("n%d.txt" % i, sample("notes.txt")) for i in range(6)])
    m = re.search(r'<p class="error" id="note-files-error">([^<]*)</p>', r.text)
    t.ok(r.status == 400 and m and "5" in m.group(1) and "Six files" in r.text and files_of(oid) == [] and
         site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind = 'note'", oid) == 0,
         "six files with a note: 400, why by the field, the note kept, nothing stored", m and m.group(1))
    r = staff.get("/admin/orders/%d" % oid)
    t.ok('enctype="multipart/form-data"' in r.text and
         re.search(r'<label for="reply-files">[^<]+</label>\s*<input type="file" id="reply-files" name="files" multiple',
                   r.text) and "Up to 5 files, 10 MB each" in r.text,
         "the order page's forms take files: a labelled multiple input, the limits as a hint")


def has_exif(data):
    """Whether a JPEG has an APP1 Exif segment (before its image data)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xff:
        marker, n = data[i + 1], struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xe1 and data[i + 4:i + 10] == b"Exif\0\0":
            return True
        if marker == 0xda:
            break
        i += 2 + n
    return False


def receive(raw, env=None):
    p = subprocess.run([PMBCTL, "mail", "receive"], input=raw, capture_output=True, env=env or site.env(),
                       timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def sent(oid, kind):
    """The email of kind sent for order oid, as the mail folder has it."""
    site.ctl("mail", "send")
    oid_rows = site.sql("SELECT id FROM outbox WHERE order_id = ? AND kind = ? ORDER BY id", oid, kind)
    paths = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % oid_rows[-1][0]))
    with open(paths[0], "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def reply_with_files(to_msg, sender, text, files, msgid):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to_msg["Reply-To"].addresses[0].addr_spec, "Re: files"
    m["Message-ID"] = msgid
    m["In-Reply-To"] = m["References"] = to_msg["Message-ID"]
    m.set_content(text)
    for name, data, ctype in files:
        main, sub = ctype.split("/")
        m.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return m.as_bytes()


def test_email_files():
    client, path, oid = paid_order("mail.files@example.com")
    staff.post("/admin/orders/%d/reply" % oid, {"csrf_token": admin_csrf(staff), "body": "Answer.", "confirm": "yes"})
    answer = sent(oid, "answer")
    pdf, jpeg, svg = sample("sample.pdf"), sample("gps.jpeg"), sample("image.svg")
    t.ok(has_exif(jpeg) and b"PmbTestCamera" in jpeg, "the sample JPEG has GPS EXIF")
    raw = reply_with_files(answer, "mail.files@example.com", "Here are the numbers and a photo.",
                           [("C:\\Users\\ada\\numbers.pdf", pdf, "application/pdf"), ("whiteboard.jpg", jpeg, "image/jpeg"),
                            ("logo.svg", svg, "image/svg+xml")], "<files.%d@client.example>" % os.getpid())
    rc, out = receive(raw)
    msg = site.sql("SELECT id, kind, body FROM messages WHERE order_id = ? ORDER BY id DESC LIMIT 1", oid)[0]
    t.ok(rc == 0 and msg[1] == "followup", "the email reply with files is a follow-up: " + out.strip(), msg)
    rows = files_of(oid)
    mine = [(n, k) for _, m, n, k, _ in rows if m == msg[0]]
    t.eq(mine, [("numbers.pdf", "pdf"), ("whiteboard.jpg", "jpeg")],
         "the PDF and the JPEG are stored as the follow-up's files (the PDF by its name without its folders), "
         "the SVG not")
    byname = {n: i for i, m, n, _, _ in rows if m == msg[0]}
    t.ok(data_of(byname.get("numbers.pdf", 0)) == pdf, "the PDF byte for byte")
    stored = data_of(byname.get("whiteboard.jpg", 0)) or b""
    t.ok(stored[:2] == b"\xff\xd8" and not has_exif(stored) and b"PmbTestCamera" not in stored,
         "the JPEG is stored cleaned: no EXIF (no GPS position)")
    body = msg[2]
    t.ok(re.search(r"^C:\\Users\\ada\\numbers\.pdf \(application/pdf, [^)]+\): kept$", body, re.M) and
         re.search(r"^whiteboard\.jpg \(image/jpeg, [^)]+\): kept$", body, re.M) and
         re.search(r"^logo\.svg \(image/svg\+xml, [^)]+\): not kept: .*svg", body, re.M),
         "the text's list says which were kept, and why the SVG was not", body)
    t.eq(site.sql1("SELECT attachments FROM inbound WHERE order_id = ? ORDER BY id DESC LIMIT 1", oid).count("kept"),
         0, "the email's own row keeps the plain list")
    for name, fid in byname.items():
        r = client.get("%s/files/%d" % (path, fid))
        t.ok(r.status == 200 and r.body == data_of(fid), "the client downloads %s from their status link" % name)
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok(all('<a href="/admin/files/%d">%s</a>' % (fid, n) in page for n, fid in byname.items()) and
         '<img class="thumb" src="/admin/files/%d"' % byname.get("whiteboard.jpg", 0) in page,
         "the order page shows them in the thread, the JPEG as a thumbnail")
    # Before the answer: more information, with its file.
    client2, path2, oid2 = paid_order("mail.info@example.com")
    conf = sent(oid2, "confirmation")
    rc, out = receive(reply_with_files(conf, "mail.info@example.com", "Our price list.",
                                       [("prices.pdf", pdf, "application/pdf")],
                                       "<info.%d@client.example>" % os.getpid()))
    info = site.sql("SELECT id, kind FROM messages WHERE order_id = ? ORDER BY id DESC LIMIT 1", oid2)[0]
    t.ok(info[1] == "info" and [(m, n) for _, m, n, _, _ in files_of(oid2)] == [(info[0], "prices.pdf")],
         "a reply before the answer: more information, with its PDF: " + out.strip())
    # A stranger's email waits in the inbox: only listed, no file stored.
    before = site.sql1("SELECT count(*) FROM files")
    rc, out = receive(reply_with_files(conf, "stranger@elsewhere.example", "Take this.",
                                       [("stranger.pdf", pdf, "application/pdf")],
                                       "<stranger.%d@client.example>" % os.getpid()))
    t.ok("inbox" in out and site.sql1("SELECT count(*) FROM files") == before and
         "stranger.pdf" in site.sql1("SELECT attachments FROM inbound ORDER BY id DESC LIMIT 1"),
         "a stranger's email with a file waits in the inbox, its file listed, not stored: " + out.strip())
    # Only a message that names one of our emails by signature has its
    # images cleaned (a helper process each): a spy in the helper's place.
    spy_log = os.path.join(site.dir, "imgclean-runs")
    spy = os.path.join(site.dir, "imgclean-spy")
    with open(spy, "w") as f:
        f.write('#!/bin/sh\necho run >> "%s"\nexec "%s" "$@"\n' % (spy_log, os.environ["PMB_IMGCLEAN"]))
    os.chmod(spy, 0o755)
    env = dict(site.env(), PMB_IMGCLEAN=spy)
    unsigned = EmailMessage()
    unsigned["From"], unsigned["To"], unsigned["Subject"] = "mail.info@example.com", "answers@example.com", "Photo"
    unsigned["Message-ID"] = "<unsigned.%d@client.example>" % os.getpid()
    unsigned.set_content("A photo.")
    unsigned.add_attachment(jpeg, maintype="image", subtype="jpeg", filename="photo.jpg")
    rc, out = receive(unsigned.as_bytes(), env)
    t.ok("inbox" in out and not os.path.exists(spy_log),
         "an email naming none of ours waits in the inbox, its image never given to the helper: " + out.strip())
    rc, out = receive(reply_with_files(conf, "mail.info@example.com", "A photo.", [("photo.jpg", jpeg, "image/jpeg")],
                                       "<signed.%d@client.example>" % os.getpid()), env)
    t.ok("more information" in out and os.path.exists(spy_log) and open(spy_log).read() == "run\n",
         "a reply to one of ours: its image is cleaned by the helper, once: " + out.strip())


for fn in (test_reply_with_files, test_draft_files, test_note_files, test_refused, test_email_files):
    t.run(fn)
site.stop()
site.cleanup()
sys.exit(t.done())
