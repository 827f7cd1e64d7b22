#!/usr/bin/env python3
"""The offer page earns trust (issue 16), through real nginx: "About me"
from consultant_bio, consultant_photo (checked at start-up, its size in
the img's width and height) and consultant_credentials; testimonials
behind both consents (the client's box, the consultant's approval), the
name shown and the business only; the share of happy ratings from the
counter table, hidden under happy_min_ratings; the sample question and
answer (Markdown rendered at start); /terms from the settings, linked
from the ask form's consent line."""
import base64
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
import tempfile
import zlib
from html import unescape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, PMB, SRC, ask, track_path, login,  # noqa: E402
                     admin_csrf, answered_order, stmt_sql, STAFF)

t = Tap()
CONSENT = ("I understand that the answer costs 150.00 GBP, that I pay after sending this form, and "
           "that I can have my money back in full within 30 days of the answer if I am not happy with it.")


def png(w, h):
    """A real w x h PNG (grey), made here."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + b"\x80" * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg_header(w, h):
    """The first segments of a baseline JPEG: SOI, an APP0 (JFIF), SOF0."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\x08" + struct.pack(">HH", h, w) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 +
            b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xda\x00\x02")


def webp_vp8x(w, h):
    """A WebP's RIFF header and VP8X chunk (sizes minus one, 24 bits)."""
    body = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + \
        (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def static_tree(files):
    """A www/ folder whose templates are the source tree's and whose
    static folder holds the source's files and files (name: bytes).
    Returns (template_dir, static_dir)."""
    root = tempfile.mkdtemp(prefix="pmb-offer-www-")
    os.symlink(os.path.join(SRC, "www", "templates"), os.path.join(root, "templates"))
    static = os.path.join(root, "static")
    os.mkdir(static)
    for f in os.listdir(os.path.join(SRC, "www", "static")):
        shutil.copy(os.path.join(SRC, "www", "static", f), static)
    for name, data in files.items():
        with open(os.path.join(static, name), "wb") as fh:
            fh.write(data)
    return os.path.join(root, "templates"), static


def start_with_static(site, static):
    """Serves site through nginx with /static/ from static."""
    src_static = os.path.join(SRC, "www", "static")
    site.start(nginx_conf=lambda c: c.replace(src_static, static))


def section(html, cls):
    m = re.search(r'<section class="card %s"(.*?)</section>' % cls, html, re.S)
    return m.group(1) if m else ""


def test_about():
    tdir, static = static_tree({"sam.png": png(40, 52)})
    bio = "I ran <b>marketing</b> for 12 years.\\n\\nNow I help small firms & shops."
    site = Site(settings={"template_dir": tdir, "consultant_photo": "sam.png", "consultant_bio": bio,
                          "consultant_credentials": "CIM Fellow; 300 businesses helped ;",
                          "consultant_name": "Sam \"Q\" Carter"})
    try:
        start_with_static(site, static)
        r = site.get("/")
        about = section(r.text, "about")
        t.ok(r.status == 200 and '<h2 id="about-heading">About me</h2>' in about, "the landing page has an About me section")
        t.eq(re.findall(r"<p>(.*?)</p>", about),
             ["I ran &lt;b&gt;marketing&lt;/b&gt; for 12 years.", "Now I help small firms &amp; shops."],
             "the bio is one paragraph per blank line (\\n\\n), escaped")
        t.eq(re.findall(r"<li>(.*?)</li>", about), ["CIM Fellow", "300 businesses helped"],
             "the credentials are a list split at ';', blanks and empty items dropped")
        img = re.search(r"<img [^>]*>", about)
        img = img.group(0) if img else ""
        t.ok('src="/static/sam.png"' in img and 'alt="Sam &quot;Q&quot; Carter"' in img and
             'width="40"' in img and 'height="52"' in img,
             "the photo has the consultant's name as alt text and its real width and height", img)
        ph = site.get("/static/sam.png")
        t.ok(ph.status == 200 and ph.body[:8] == b"\x89PNG\r\n\x1a\n", "the photo is served from the static folder")
        csp = r.header("Content-Security-Policy") or ""
        t.ok("default-src 'self'" in csp and "img-src" not in csp,
             "the CSP lets the page show a same-origin image", csp)
    finally:
        site.cleanup()
        shutil.rmtree(os.path.dirname(tdir), ignore_errors=True)


def start_error(settings, tdir=None):
    """Runs pmb.fcgi once as CGI with settings; returns (exit code,
    stderr)."""
    d = tempfile.mkdtemp(prefix="pmb-offer-conf-")
    conf = {"database": os.path.join(d, "pmb.db"), "key_file": os.path.join(d, "pmb.key"),
            "template_dir": tdir or os.path.join(SRC, "www", "templates")}
    conf.update(settings)
    with open(conf["key_file"], "w") as f:
        f.write("1:" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=") + "\n")
    os.chmod(conf["key_file"], 0o600)
    path = os.path.join(d, "pmb.conf")
    with open(path, "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in conf.items()))
    env = dict(os.environ, PMB_CONFIG=path, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
               REQUEST_URI="/", REMOTE_ADDR="192.0.2.1")
    p = subprocess.run([PMB], env=env, capture_output=True, timeout=30)
    shutil.rmtree(d, ignore_errors=True)
    return p.returncode, p.stderr.decode("utf-8", "replace"), p.stdout.decode("utf-8", "replace")


def test_photo_checked_at_start():
    tdir, static = static_tree({"fake.png": b"not an image at all", "sam.jpg": jpeg_header(320, 240),
                                "sam.webp": webp_vp8x(640, 480), "notes.txt": b"x"})
    try:
        for value, want in (("../secret.png", "no folder"), ("sub/sam.png", "no folder"),
                            ("notes.txt", ".jpg, .jpeg, .png or .webp"), ("missing.png", "cannot read"),
                            ("fake.png", "not a PNG, JPEG or WebP image")):
            rc, err, _ = start_error({"consultant_photo": value}, tdir)
            t.ok(rc != 0 and "consultant_photo" in err and want in err,
                 "consultant_photo = %s: pmb.fcgi refuses to start and says why" % value, (rc, err))
        for name, w, h in (("sam.jpg", 320, 240), ("sam.webp", 640, 480)):
            rc, err, out = start_error({"consultant_photo": name}, tdir)
            t.ok(rc == 0 and 'width="%d" height="%d"' % (w, h) in out,
                 "a %s photo's size is read from its header" % name.split(".")[1], (rc, err, out[-300:]))
        site = Site(settings={"template_dir": tdir, "consultant_photo": "fake.png"})
        p = site.ctl("check", check=False)
        t.ok(p.returncode != 0 and "consultant_photo" in p.stdout, "pmbctl check finds a bad photo too", p.stdout)
        site.cleanup()
    finally:
        shutil.rmtree(os.path.dirname(tdir), ignore_errors=True)


def test_nothing_when_empty():
    site = Site()
    try:
        site.start()
        page = site.get("/").text
        t.ok("About me" not in page and "<img" not in page and "sample question" not in page
             and "What clients say" not in page,
             "with the settings empty, no About me, sample or quotes section shows")
        site.stop()
        rc, _, out = start_error({"database": "/nonexistent/dir/pmb.db"})
        t.ok(rc == 0 and "Status: 200" in out.split("\r\n\r\n")[0] and "Ask your question" in out,
             "the landing page still answers 200 when the store cannot be opened")
    finally:
        site.cleanup()


def test_sample():
    site = Site(settings={"sample_question": "We sell <tea> online.\\n\\nHow do we get repeat buyers?",
                          "sample_answer": "Start a **refill club**.\\n\\n- one\\n- two\\n\\n<script>alert(1)</script>"})
    only_q = Site(settings={"sample_question": "A question with no answer"})
    try:
        site.start()
        sample = section(site.get("/").text, "sample")
        t.ok("A sample question and answer" in sample and "<p>We sell &lt;tea&gt; online.</p>" in sample and
             "<p>How do we get repeat buyers?</p>" in sample, "the sample question shows, escaped, in paragraphs")
        t.ok("<strong>refill club</strong>" in sample and "<li>one</li>" in sample and "<script" not in sample,
             "the sample answer is Markdown rendered by cmark, raw HTML dropped", sample)
        only_q.start()
        t.ok("sample question" not in only_q.get("/").text, "a sample question without an answer shows nothing")
    finally:
        site.cleanup()
        only_q.cleanup()


def test_terms():
    site = Site(settings={"refund_days": "7", "followups_included": "2", "consultant_name": "Sam Carter"})
    try:
        site.start()
        r = site.get("/terms")
        text = unescape(re.sub(r"<[^>]+>", "", r.text))
        text = re.sub(r"\s+", " ", text)
        for want in ("150.00 GBP", "within 48 hours", "Up to 2 follow-up questions", "within 30 days",
                     "by bank transfer within 7 days", "to the card you paid with, in 5–10 days",
                     "Sam Carter", "consultant@example.com"):
            t.ok(want in text, "/terms says %r" % want)
        t.ok(r.status == 200 and "<title>Terms of the offer" in r.text and 'class="site"' in r.text,
             "/terms is a page in the site's layout")
        b = Browser(site)
        form = b.get("/ask").text
        label = re.search(r'<label class="check" for="agree">(.*?)</label>', form, re.S)
        label = label.group(1) if label else ""
        shown = re.search(r"<span>([^<]*)</span>", label)
        t.ok('<a href="/terms" id="terms-link">' in label and shown and unescape(shown.group(1)) == CONSENT,
             "the ask form's consent line links to /terms, its text as it was", label)
    finally:
        site.cleanup()


def rate_yes(c, path):
    _, hidden = c.form(path + "?rating=yes")
    r = c.post(path + "/rating", {"rating": "yes", "csrf_token": hidden["csrf_token"]})
    assert r.status == 303, r


def quote_form(c, path):
    page = c.get(path + "?rating=yes")
    m = re.search(r'<form method="post" action="([^"]+)" id="quote-form">', page.text)
    tok = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return page, (m.group(1) if m else None), (tok.group(1) if tok else None)


def test_testimonials():
    site = Site(users=STAFF)
    try:
        site.start()
        staff = Browser(site)
        login(staff)
        c, path, oid, _ = answered_order(site, staff, "ada@bakery.example")
        page, _, _ = quote_form(c, path)
        t.ok("May I quote you?" not in page.text, "the 'yes' page asks nothing before the rating is saved")
        rate_yes(c, path)
        page, action, tok = quote_form(c, path)
        t.ok("May I quote you?" in page.text and action == path + "/testimonial" and "“Ada”" in page.text,
             "after a yes, the thank-you page asks 'May I quote you?' and says the name it would show")
        words = "Clear, kind & <useful> — worth every penny."
        r = c.post(action, {"sentence": words, "csrf_token": tok})
        t.ok(r.status == 400 and site.sql1("SELECT count(*) FROM testimonials") == 0 and
             'value="%s"' % words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in r.text
             and "Please tick" in unescape(r.text),
             "without the consent box nothing is stored, and the form comes back with the sentence", r.status)
        r = c.post(action, {"sentence": "x" * 301, "consent": "yes", "csrf_token": tok})
        t.ok(r.status == 400 and site.sql1("SELECT count(*) FROM testimonials") == 0,
             "a sentence over 300 characters is refused")
        r = c.post(action, {"sentence": words, "consent": "yes", "csrf_token": "forged"})
        t.ok(r.status == 403 and site.sql1("SELECT count(*) FROM testimonials") == 0, "a bad CSRF token stores nothing")
        r = c.post(action, {"sentence": words, "consent": "yes", "csrf_token": tok})
        t.ok(r.status == 303 and r.header("Location").endswith(path + "?rating=yes&quote=sent#quote"),
             "with consent the form answers 303 back to the thank-you page", r.header("Location"))
        t.eq(site.sql("SELECT sentence, name_shown, status FROM testimonials WHERE order_id = ?", oid),
             [(words, "Ada", "pending")], "the testimonial is stored pending, named by the client's first name")
        t.ok("Thank you — I will read your words" in unescape(c.get(r.header("Location").split("#")[0]).text),
             "the page the 303 opens says thank you")
        home = site.get("/").text
        t.ok("worth every penny" not in home, "a pending quote is not on the landing page (no approval yet)")
        r = c.post(action, {"sentence": "Even better the second time.", "consent": "yes", "csrf_token": tok})
        t.ok(r.status == 303 and site.sql("SELECT sentence FROM testimonials") == [("Even better the second time.",)],
             "a second post updates the one pending testimonial of the order")
        r = c.post(action, {"sentence": "Changed my mind", "csrf_token": tok})
        t.ok(r.status == 303 and r.header("Location").endswith("?rating=yes&quote=withdrawn#quote") and
             site.sql1("SELECT count(*) FROM testimonials") == 0 and
             site.sql1("SELECT count(*) FROM audit WHERE action = 'testimonial withdrawn'") == 1,
             "unticking the box on a pending testimonial takes it back (audited)")
        t.ok("your words were taken back" in c.get(r.header("Location").split("#")[0]).text,
             "and the page says so")
        r = c.post(action, {"sentence": words, "consent": "yes", "csrf_token": tok})

        admin = staff.get("/admin/testimonials")
        t.ok(admin.status == 200 and "worth every penny" in unescape(admin.text) and
             '<a href="/admin/testimonials">Testimonials</a>' in admin.text,
             "the admin page lists the pending quote, linked from the admin nav")
        tid = site.sql1("SELECT id FROM testimonials WHERE order_id = ?", oid)
        atok = admin_csrf(staff, "/admin/testimonials")
        r = staff.post("/admin/testimonials/%d" % tid, {"name_shown": "Ada B.", "action": "approve",
                                                        "seen": "an older sentence", "csrf_token": atok})
        t.ok(r.status == 409 and site.sql1("SELECT status FROM testimonials") == "pending",
             "approving a sentence other than the one stored changes nothing (409)")
        r = staff.post("/admin/testimonials/%d" % tid, {"name_shown": "Ada B.", "action": "approve",
                                                        "seen": words})
        t.ok(r.status == 403 and site.sql1("SELECT status FROM testimonials") == "pending",
             "an approval without the CSRF token is refused")
        r = staff.post("/admin/testimonials/%d" % tid, {"name_shown": "Ada B.", "action": "approve",
                                                        "seen": words, "csrf_token": atok})
        t.ok(r.status == 303 and site.sql("SELECT status, name_shown FROM testimonials") == [("approved", "Ada B.")],
             "the consultant approves it, with the name shown edited")
        t.ok(site.sql1("SELECT count(*) FROM audit WHERE action = 'approve testimonial' AND order_id = ?", oid) == 1,
             "the approval is audited")
        home = site.get("/").text
        proof = section(home, "proof")
        t.ok("worth every penny" in proof and "Ada B., Ada&#39;s Bakery" in proof.replace("&#x27;", "&#39;")
             and "&lt;useful&gt;" in proof,
             "the approved quote is on the landing page with the name shown and the business, escaped", proof)
        t.ok("ada@bakery.example" not in home and "PMB-" not in home and "Ada Baker" not in home,
             "the landing page shows neither the email, the order, nor the full name")
        r = c.post(action, {"sentence": "changed after approval", "consent": "yes", "csrf_token": tok})
        t.ok(r.status == 409 and "changed after approval" not in site.get("/").text,
             "once approved, the client's words can no longer be changed (409)")
        r = staff.post("/admin/testimonials/%d" % tid, {"name_shown": "A. B.", "action": "save",
                                                        "seen": "", "csrf_token": atok})
        t.ok(r.status == 303 and "A. B., Ada" in unescape(site.get("/").text),
             "the name shown can be edited after approval")
        r = staff.post("/admin/testimonials/%d" % tid, {"name_shown": "A. B.", "action": "reject",
                                                        "seen": words, "csrf_token": atok})
        t.ok(r.status == 303 and "worth every penny" not in site.get("/").text and
             site.sql1("SELECT count(*) FROM audit WHERE action = 'reject testimonial'") == 1,
             "taken down (rejected, audited), it leaves the landing page")

        # The client's gate: a yes rating without the box ticked shows nothing,
        # and a 'no' takes a pending consent back.
        c2, path2, oid2, _ = answered_order(site, staff, "bo@shop.example")
        rate_yes(c2, path2)
        _, action2, tok2 = quote_form(c2, path2)
        c2.post(action2, {"sentence": "Great help.", "consent": "yes", "csrf_token": tok2})
        _, hidden = c2.form(path2 + "?rating=no")
        c2.post(path2 + "/rating", {"rating": "no", "csrf_token": hidden["csrf_token"]})
        t.eq(site.sql1("SELECT count(*) FROM testimonials WHERE order_id = ?", oid2), 0,
             "rating 'no' afterwards takes the client's consent back")
        r = c2.post(action2, {"sentence": "Great help.", "consent": "yes", "csrf_token": tok2})
        t.ok(r.status == 409 and site.sql1("SELECT count(*) FROM testimonials WHERE order_id = ?", oid2) == 0,
             "an order not rated yes cannot give a quote")
        plan = " ".join(str(row[3]) for row in sqlite3.connect(site.db).execute(
            "EXPLAIN QUERY PLAN " + stmt_sql("HOME_PROOF"), (3,)))
        t.ok("testimonials_status" in plan and "SCAN t" not in plan and "TEMP B-TREE" not in plan,
             "the landing page's quotes are read from the index testimonials_status", plan)
    finally:
        site.cleanup()


def test_happy_share():
    site = Site(settings={"happy_min_ratings": "5"})
    try:
        site.start()
        c = Browser(site)
        for i in range(5):
            ask(c, email="client%d@example.com" % i)
        ids = [row[0] for row in site.sql("SELECT id FROM orders ORDER BY id")]
        for oid in ids[:4]:
            site.sql("UPDATE orders SET rating = 'yes', answered_at = 1 WHERE id = ?", oid)
        t.ok("happy with their answer" not in site.get("/").text, "under 5 ratings no share is shown")
        site.sql("UPDATE orders SET rating = 'no', answered_at = 1 WHERE id = ?", ids[4])
        t.eq(site.sql("SELECT rating, n FROM rating_counts ORDER BY rating"), [("no", 1), ("yes", 4)],
             "the counter table follows the ratings")
        m = re.search(r'<p class="big" id="happy-share">([^<]*)</p>', site.get("/").text)
        t.eq(m.group(1) if m else None, "80% of clients were happy with their answer",
             "at 5 ratings the landing page shows the share of happy ones")
        site.sql("UPDATE orders SET rating = 'yes' WHERE id = ?", ids[4])
        t.ok("100% of clients" in site.get("/").text, "a changed rating moves the count")
    finally:
        site.cleanup()


def test_proof_cache():
    """Each worker keeps the proof proof_cache_seconds (one worker here, so
    that the second request meets the first one's copy)."""
    site = Site(settings={"happy_min_ratings": "1", "proof_cache_seconds": "2"})
    try:
        site.start(workers=1)
        ask(Browser(site), email="cached@example.com")
        t.ok("happy with their answer" not in site.get("/").text, "no rating yet: no share (and the worker keeps that)")
        site.sql("UPDATE orders SET rating = 'yes', answered_at = 1")
        t0 = time.monotonic()
        text = site.get("/").text
        if time.monotonic() - t0 < 1.5:
            t.ok("happy with their answer" not in text, "a rating given within proof_cache_seconds is not read again")
        time.sleep(2.2)
        t.ok("100% of clients were happy" in site.get("/").text, "after proof_cache_seconds it is read again")
    finally:
        site.cleanup()

for fn in (test_about, test_photo_checked_at_start, test_nothing_when_empty, test_sample, test_terms,
           test_testimonials, test_happy_share, test_proof_cache):
    t.run(fn)
sys.exit(t.done())
