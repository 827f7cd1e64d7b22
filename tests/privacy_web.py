#!/usr/bin/env python3
"""Privacy's pages (issue 20) through real nginx and pmb.fcgi: GET
/privacy from the settings (escaped; retention 0 or N days; cards on or
off; the fallbacks), linked from every page's footer and the ask form's
consent line; "Delete my data" offered on closed orders only (an open
one has no form and a POST there answers 409), CSRF refused, a second
request a no-op, the request on the order page and in the queue (flag,
filter, count), the consultant's alert delivered (pmbctl mail send to the
mail folder); an erased order: every client link 410 Gone (not 200 or
404) with no personal data, every staff POST 409, the order page's banner
without the client; the erase's confirmation step: the reason when it is
blocked, GET changing nothing, POST without confirm 400, with it erased
(erased_at set, the name gone), audited with the user and no data."""
import email
import email.policy
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf, answered_order, track_path,  # noqa: E402
                     STAFF, unescape)

t = Tap()
DAY = 86400
CONTROLLER = "<b>Acme</b> Consulting Ltd, 1 High Street, Bristol"
site = Site(users=STAFF, settings={"privacy_controller": CONTROLLER,
                                   "privacy_contact": "privacy@acme.example",
                                   "retention_days": "0",
                                   "refund_if_late": "yes"})
site.start()
staff = Browser(site)
login(staff)


def text_of(html):
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def close(oid, days=31):
    """Moves an answered order's times back by days: its guarantee
    (30 days) is over."""
    site.sql("UPDATE orders SET created_at = created_at - ?1, paid_at = paid_at - ?1, "
             "due_at = due_at - ?1, answered_at = answered_at - ?1, last_answered_at = last_answered_at - ?1 "
             "WHERE id = ?2", days * DAY, oid)


def client_csrf(c, path):
    return c.form(path)[1].get("csrf_token", "")


def staff_post(path, fields, page="/admin"):
    return staff.post(path, dict(fields, csrf_token=admin_csrf(staff, page)))


# --- the notice ------------------------------------------------------------------

def test_privacy_page():
    r = site.get("/privacy")
    text = text_of(r.text)
    t.ok(r.status == 200 and "<title>Privacy notice" in r.text and 'class="site"' in r.text,
         "/privacy is a page in the site's layout", r.status)
    t.ok("&lt;b&gt;Acme&lt;/b&gt; Consulting Ltd, 1 High Street, Bristol" in r.text and "<b>Acme</b>" not in r.text,
         "privacy_controller is shown, escaped")
    t.ok('href="mailto:privacy@acme.example"' in r.text and "consultant@example.com is responsible" not in text,
         "privacy_contact is the address to write to, as a mailto link")
    t.ok("kept until you ask us to delete it, and the accounting records as long as the law requires" in text
         and "days after your order is closed" not in text,
         "retention_days = 0: kept until the client asks", text)
    for want in ("name, email address", "business and its website", "Your question, your follow-up questions",
                 "IP) address", "payment", "contract", "legal obligation", "mail server or email provider",
                 "Delete my data", "data protection authority", "get a copy"):
        t.ok(want in text, "/privacy says %r" % want)
    t.ok("Stripe" not in text, "without card payment the notice does not speak of Stripe")
    for page in ("/", "/ask", "/terms", "/lost", "/privacy"):
        t.ok('<a href="/privacy" id="privacy-footer">Privacy</a>' in site.get(page).text,
             "the footer of %s links to /privacy" % page)
    form = site.get("/ask").text
    label = re.search(r'<label class="check" for="agree">(.*?)</label>', form, re.S)
    t.ok(label and '<a href="/privacy" id="privacy-link">' in label.group(1),
         "the ask form's consent line links to /privacy")


def test_privacy_settings():
    """Another site, as CGI: retention N days, cards on, the fallbacks."""
    s = Site(settings={"retention_days": "90", "consultant_name": "Sam <i>Carter</i>",
                       "stripe_secret_key": "sk_test_privacyNotice42"})
    try:
        r = s.cgi("GET", "/privacy")
        text = text_of(r.text)
        t.ok(r.status == 200 and "deleted 90 days after your order is closed" in text
             and "until you ask us to delete it" not in text, "retention_days = 90: 90 days after the order is closed",
             text)
        t.ok("Sam &lt;i&gt;Carter&lt;/i&gt; is responsible" in r.text,
             "an empty privacy_controller is the consultant_name (escaped)")
        t.ok('href="mailto:consultant@example.com"' in r.text, "an empty privacy_contact is admin_email")
        t.ok("Stripe keeps them" in text and "payments by card go through Stripe" in text,
             "with card payment on, the notice says card details stay with Stripe")
        s.conf["privacy_contact"] = "https://acme.example/privacy"
        s.write_conf()
        r = s.cgi("GET", "/privacy")
        t.ok('href="https://acme.example/privacy"' in r.text, "a web page as privacy_contact is linked")
        s.conf["privacy_contact"] = "javascript:alert(1)"
        s.write_conf()
        r = s.cgi("GET", "/privacy")
        t.ok('href="javascript' not in r.text and "javascript:alert(1)" in r.text,
             "anything else is shown as text, never linked")
    finally:
        s.cleanup()


# --- "Delete my data" ------------------------------------------------------------

def test_open_orders_no_form():
    c, path, oid, _ = answered_order(site, staff, "open.client@example.com")
    page = c.get(path)
    t.ok(page.status == 200 and "erasure-form" not in page.text and "/erasure" not in page.text,
         "an answered order within its guarantee offers no \"Delete my data\"")
    r = c.post(path + "/erasure", {"csrf_token": client_csrf(c, path)})
    t.eq(r.status, 409, "POST /o/TOKEN/erasure on an open order answers 409")
    t.ok("write to privacy@acme.example" in text_of(r.text), "naming privacy_contact to write to until then",
         text_of(r.text)[-400:])
    t.eq(site.sql1("SELECT count(*) FROM erasure_requests WHERE order_id = ?", oid), 0, "and records nothing")
    u = Browser(site)
    upath = track_path(ask(u, email="unpaid.client@example.com").header("Location"))
    t.ok("erasure-form" not in u.get(upath).text, "nor does an order awaiting payment")
    # A refund request open: not closed, even with the guarantee over.
    c2, path2, oid2, rpath = answered_order(site, staff, "refunding.client@example.com")
    c2.post(rpath, {"reason": "", "csrf_token": client_csrf(c2, rpath)})
    close(oid2)
    t.ok(site.sql1("SELECT status FROM orders WHERE id = ?", oid2) == "refund_requested"
         and "erasure-form" not in c2.get(path2).text, "nor one with a refund request open")
    t.eq(c2.post(path2 + "/erasure", {"csrf_token": client_csrf(c2, path2)}).status, 409,
         "and a POST there answers 409")
    # Answered late with refund_if_late = yes: the refund link stays
    # valid for good, so the order never closes and its money stays held
    # (privacy_guarantee_end, for the client's request and the erase).
    c3, path3, oid3, _ = answered_order(site, staff, "late.client@example.com", late=True)
    close(oid3)
    t.ok("erasure-form" not in c3.get(path3).text,
         "nor one answered late while refund_if_late keeps its refund link open")
    t.eq(c3.post(path3 + "/erasure", {"csrf_token": client_csrf(c3, path3)}).status, 409,
         "and a POST there answers 409")
    r = staff.get("/admin/orders/%d/erase" % oid3)
    t.ok(r.status == 200 and 'id="erase-blocked"' in r.text and "Money was received and not refunded" in r.text,
         "staff's erase of it is blocked: its money is held", text_of(r.text)[:400])
    r = staff_post("/admin/orders/%d/erase" % oid3, {"confirm": "yes"})
    t.ok(r.status == 409 and site.sql1("SELECT erased_at FROM orders WHERE id = ?", oid3) is None,
         "a POST anyway answers 409 and erases nothing", r.status)


def test_request():
    c, path, oid, _ = answered_order(site, staff, "closed.client@example.com")
    close(oid)
    page = c.get(path)
    t.ok('id="erasure-form"' in page.text and 'action="%s/erasure"' % path in page.text
         and "Delete my data" in page.text, "a closed order's status page offers \"Delete my data\"")
    before = site.dump()
    r = c.post(path + "/erasure", {"csrf_token": "not-the-token"})
    t.eq(r.status, 403, "without the page's CSRF token: 403")
    t.eq(site.dump(), before, "and nothing is written")
    r = c.post(path + "/erasure", {"csrf_token": client_csrf(c, path)})
    t.ok(r.status == 303 and r.header("Location").endswith(path + "#erasure"),
         "POST answers 303 back to the status page", (r.status, r.header("Location")))
    rows = site.sql("SELECT requested_at, done_at FROM erasure_requests WHERE order_id = ?", oid)
    t.ok(len(rows) == 1 and rows[0][1] is None and abs(rows[0][0] - time.time()) < 60,
         "one open erasure request is recorded", rows)
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'erasure requested'", oid), 1,
         "it is audited")
    alerts = site.sql("SELECT to_addr, subject FROM outbox WHERE order_id = ? AND kind = 'erasure_alert'", oid)
    t.ok(len(alerts) == 1 and alerts[0][0] == "consultant@example.com" and "PMB-" in alerts[0][1],
         "the consultant's alert is queued to admin_email", alerts)
    r = c.post(path + "/erasure", {"csrf_token": client_csrf(c, path)})
    t.ok(r.status == 303 and site.sql1("SELECT count(*) FROM erasure_requests WHERE order_id = ?", oid) == 1
         and site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'erasure_alert'", oid) == 1,
         "a second request answers the same and changes nothing (one request, one alert)")
    page = c.get(path)
    t.ok(re.search(r"You asked on \d+ \w+ \d{4} for your personal data to be deleted\. You'll get an email "
                   r"when it is done\.", text_of(page.text)) and "erasure-form" not in page.text,
         "the status page then says it was asked, and offers the form no more", text_of(page.text)[-600:])
    order = staff.get("/admin/orders/%d" % oid)
    t.ok('id="erasure-request"' in order.text and "The client asked on " in order.text
         and 'href="/admin/orders/%d/erase"' % oid in order.text,
         "the order page shows the request with the \"Erase personal data\" button")
    q = staff.get("/admin?status=answered")
    row = re.search(r'<tr[^>]*>\s*<td><a href="/admin/orders/%d">.*?</tr>' % oid, q.text, re.S)
    t.ok(row and "erasure asked" in row.group(0), "the queue flags the order's row")
    q = staff.get("/admin?status=erasure")
    t.ok(q.status == 200 and 'href="/admin/orders/%d"' % oid in q.text and "open.client" not in q.text
         and re.search(r'href="/admin\?status=erasure"[^>]*>Erasure requests <span class="count">1</span>', q.text),
         "the queue's erasure filter lists it, with its count")
    # No order waits for an answer here (the orders above are answered,
    # unpaid or refunding): the default view says what still waits.
    q = staff.get("/admin")
    t.ok('<a href="/admin?status=erasure">1 erasure request waits</a>' in q.text,
         "the queue's empty default view names the erasure request among what still waits",
         text_of(q.text)[:500])
    # The alert reaches the consultant: delivered by pmbctl mail send.
    site.ctl("mail", "send")
    aid = site.sql1("SELECT id FROM outbox WHERE order_id = ? AND kind = 'erasure_alert'", oid)
    files = glob.glob(os.path.join(site.conf["mail_dir"], "%d-*.eml" % aid))
    msg = email.message_from_binary_file(open(files[0], "rb"), policy=email.policy.default) if files else None
    t.ok(msg is not None and "consultant@example.com" in msg["To"] and msg["Subject"].startswith("Erasure requested")
         and "/admin/orders/%d" % oid in msg.get_body(("plain",)).get_content()
         and site.sql1("SELECT status FROM outbox WHERE id = ?", aid) == "sent",
         "the consultant's alert is delivered, with the order's link", files)


def test_refunded_and_cancelled_are_closed():
    c, path, oid, rpath = answered_order(site, staff, "refunded.client@example.com")
    c.post(rpath, {"reason": "", "csrf_token": client_csrf(c, rpath)})
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    staff_post("/admin/refunds/%d/refunded" % rid, {"method": "bank_transfer", "amount": ""}, "/admin/refunds")
    t.ok(site.sql1("SELECT status FROM orders WHERE id = ?", oid) == "refunded" and
         'id="erasure-form"' in c.get(path).text, "a refunded order offers \"Delete my data\" at once")
    u = Browser(site)
    upath = track_path(ask(u, email="cancelled.client@example.com").header("Location"))
    uid = site.sql1("SELECT id FROM orders WHERE email = 'cancelled.client@example.com'")
    staff_post("/admin/orders/%d/cancel" % uid, {"reason": "A duplicate."})
    t.ok('id="erasure-form"' in u.get(upath).text, "so does a cancelled one")
    t.eq(u.post(upath + "/erasure", {"csrf_token": client_csrf(u, upath)}).status, 303,
         "and its request is taken")


# --- an erased order ----------------------------------------------------------------

def erase_by_sql(oid):
    """Marks oid erased as privacy_erase would, leaving the name in place
    so that the pages are shown not to print it."""
    site.sql("UPDATE orders SET erased_at = ? WHERE id = ?", int(time.time()), oid)


def test_erased_links_410():
    c, path, oid, rpath = answered_order(site, staff, "erased.client@example.com")
    close(oid)
    tok = client_csrf(c, path)
    rtok = client_csrf(c, rpath)
    site.sql("INSERT INTO files (order_id, message_id, name, kind, size, sha256, created_at, data) "
             "SELECT ?1, id, 'a.txt', 'txt', 2, zeroblob(32), 1, X'6869' FROM messages "
             "WHERE order_id = ?1 AND kind = 'question'", oid)
    fid = site.sql1("SELECT id FROM files WHERE order_id = ?", oid)
    t.eq(c.get("%s/files/%d" % (path, fid)).status, 200, "before the erase the client's file downloads")
    erase_by_sql(oid)
    number = site.sql1("SELECT number FROM orders WHERE id = ?", oid)
    urls = [("GET", path, None), ("GET", path + "?rating=yes", None),
            ("POST", path + "/messages", {"message": "One more thing about my bakery", "csrf_token": tok}),
            ("POST", path + "/viewed", {"csrf_token": tok}),
            ("POST", path + "/rating", {"rating": "yes", "csrf_token": tok}),
            ("POST", path + "/testimonial", {"consent": "yes", "sentence": "Great", "csrf_token": tok}),
            ("POST", path + "/pay", {"csrf_token": tok}),
            ("GET", "%s/files/%d" % (path, fid), None),
            ("POST", path + "/erasure", {"csrf_token": tok}),
            ("GET", rpath, None), ("POST", rpath, {"reason": "x", "csrf_token": rtok})]
    before = site.dump()
    for method, url, body in urls:
        r = c.get(url) if method == "GET" else c.post(url, body)
        shown = url.replace(path, "/o/TOKEN").replace(rpath, "/r/TOKEN")
        t.ok(r.status == 410 and "This order's personal data was deleted on " in text_of(r.text)
             and "The order number %s is kept for the accounts." % number in r.text
             and "Ada" not in r.text and "erased.client" not in r.text and "sourdough" not in r.text,
             "%s %s of an erased order answers 410 Gone, without personal data" % (method, shown),
             (r.status, text_of(r.text)[:300]))
    t.eq(site.dump(), before, "and none of them writes anything")
    bad = rpath[:-3] + ("AAA" if not rpath.endswith("AAA") else "BBB")
    t.eq(c.get(bad).status, 404, "a forged refund link of the erased order still answers 404")


def test_erased_staff():
    c, path, oid, _ = answered_order(site, staff, "erased.staff@example.com")
    staff_post("/admin/orders/%d/note" % oid, {"body": "Staff note zebrafinch"}, "/admin/orders/%d" % oid)
    erase_by_sql(oid)
    page = staff.get("/admin/orders/%d" % oid)
    text = text_of(page.text)
    t.ok(page.status == 200 and 'id="erased"' in page.text and "Personal data erased on " in text
         and "(by pmbctl or the retention sweep)" in text, "the order page shows the erased banner", text[:600])
    t.ok("Ada Baker" not in page.text and "erased.staff" not in page.text and "zebrafinch" not in page.text
         and "sourdough" not in page.text and "192.0.2.10" not in page.text,
         "and no client name, address, IP or conversation (even while the store still held them)")
    t.ok("150.00" in text and "Status history" in text and "Payments and refunds" in text,
         "it keeps the prices, the ledger and the status history")
    # (The export's form answers 409 for an erased order: its own test.)
    forms = [f for f in re.findall(r'<form[^>]*action="(/admin/orders/[^"]*)"', page.text)
             if not f.endswith("/export")]
    t.eq(forms, [], "it has no reply, note, claim or other form")
    t.ok("/erase" not in page.text, "nor an erase link")
    fid = site.sql1("SELECT max(id) FROM files") or 1
    before = site.dump()
    for action, fields in (("reply", {"body": "More", "confirm": "yes"}), ("draft", {"body": "More"}),
                           ("note", {"body": "A note"}), ("paid", {"amount": "1.00", "method": "cash"}),
                           ("cancel", {"reason": "x"}), ("claim", {}), ("release", {}),
                           ("refund", {"amount": ""}), ("files/%d/remove" % fid, {})):
        r = staff_post("/admin/orders/%d/%s" % (oid, action), fields)
        t.ok(r.status == 409 and "personal data was erased" in text_of(r.text),
             "POST /admin/orders/ID/%s on an erased order answers 409" % action.split("/")[0], r.status)
    t.eq(site.dump(), before, "and nothing was written")


# --- the erase's confirmation step ---------------------------------------------------

def test_erase_blocked():
    c, path, oid, rpath = answered_order(site, staff, "blocked.client@example.com")
    c.post(rpath, {"reason": "", "csrf_token": client_csrf(c, rpath)})
    page = staff.get("/admin/orders/%d" % oid)
    t.ok('<a href="/admin/orders/%d/erase" id="erase-link">Erase personal data…</a>' % oid in page.text,
         "the order page of an order not erased links to \"Erase personal data…\"")
    before = site.dump()
    r = staff.get("/admin/orders/%d/erase" % oid)
    t.ok(r.status == 200 and 'id="erase-blocked"' in r.text and "A refund request is open" in r.text
         and 'action="/admin/orders/%d/erase"' % oid not in r.text,
         "an order with an open refund: the confirmation page says why, and has no button", text_of(r.text)[:400])
    r = staff_post("/admin/orders/%d/erase" % oid, {"confirm": "yes"})
    t.ok(r.status == 409 and "A refund request is open" in r.text, "a POST anyway answers 409 with the reason",
         r.status)
    t.eq(site.dump(), before, "and nothing is erased")


def bytes_hits(needles):
    """[(file, needle)] of the needles (lowercase bytes) found in the
    lowercased bytes of the database file and its -wal (grep -c -a -i)."""
    hits = []
    for f in (site.db, site.db + "-wal"):
        if os.path.exists(f):
            with open(f, "rb") as fh:
                data = fh.read().lower()
            hits += [(os.path.basename(f), n) for n in needles if n in data]
    return hits


def test_erase():
    c, path, oid, _ = answered_order(site, staff, "Erase.Me@example.com")
    close(oid)
    c.post(path + "/erasure", {"csrf_token": client_csrf(c, path)})
    t.ok(bytes_hits((b"erase.me@example.com",)), "(before: the address is in the database's bytes)")
    before = site.dump()
    r = staff.get("/admin/orders/%d/erase" % oid)
    t.ok(r.status == 200 and "What goes" in r.text and "What stays" in r.text
         and 'action="/admin/orders/%d/erase"' % oid in r.text
         and '<input type="hidden" name="confirm" value="yes">' in r.text,
         "the confirmation page lists what goes and what stays, with its form")
    t.eq(site.dump(), before, "GET of the confirmation changes nothing")
    r = staff.post("/admin/orders/%d/erase" % oid, {"confirm": "yes", "csrf_token": "forged"})
    t.eq(r.status, 403, "without the CSRF token: 403")
    for fields, what in (({}, "without confirm"), ({"confirm": "no"}, "with confirm=no")):
        r = staff_post("/admin/orders/%d/erase" % oid, fields)
        t.ok(r.status == 400 and 'action="/admin/orders/%d/erase"' % oid in r.text and "Nothing was erased" in r.text,
             "POST %s answers 400 with the confirmation again" % what, r.status)
    t.eq(site.dump(), before, "and nothing is erased")
    r = staff_post("/admin/orders/%d/erase" % oid, {"confirm": "yes"})
    t.ok(r.status == 303 and r.header("Location").endswith("/admin/orders/%d?done=erased" % oid),
         "POST with confirm=yes answers 303 to the order page", (r.status, r.text[:300]))
    row = site.sql("SELECT erased_at, name, email FROM orders WHERE id = ?", oid)[0]
    t.ok(row[0] is not None and abs(row[0] - time.time()) < 60 and row[1] == "" and row[2] == "",
         "the order is erased: erased_at set, the name and address gone", row)
    sam = site.sql1("SELECT id FROM users WHERE username = 'sam'")
    audit = site.sql("SELECT user_id, detail FROM audit WHERE order_id = ? AND action = 'privacy_erase'", oid)
    t.ok(len(audit) == 1 and audit[0][0] == sam and "Erase.Me" not in audit[0][1].lower()
         and "erase.me" not in audit[0][1].lower() and "Ada" not in audit[0][1] and "sourdough" not in audit[0][1],
         "audited with the staff member, without the data", audit)
    t.ok(site.sql1("SELECT done_at IS NOT NULL FROM erasure_requests WHERE order_id = ?", oid) == 1,
         "the client's erasure request is done")
    page = staff.get("/admin/orders/%d?done=erased" % oid)
    t.ok("Personal data erased on " in page.text and "(by sam)" in page.text and "Ada" not in page.text
         and "erase.me" not in page.text.lower(), "the order page shows the banner, by whom, without the client")
    t.eq(c.get(path).status, 410, "the client's status link now answers 410")
    # The page's erase scrubs as pmbctl's does, from inside a worker while the others hold the store open.
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'erased' AND lower(to_addr) = ?",
                   oid, "erase.me@example.com"), 1, "the client is to be told (the 'erased' email is queued)")
    site.ctl("mail", "send")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND to_addr <> ''", oid), 0,
         "once it is delivered, no email of the order keeps a recipient")
    hits = bytes_hits((b"erase.me@example.com", b"erase.me"))
    t.ok(not hits, "the address is then in neither the database file nor its -wal", hits)


def test_erase_person():
    """The confirmation lists the client's other orders (any case of the
    address); with all=yes every one of them is erased with it, all or
    none: one of them blocked, nothing is erased and the 409 names it."""
    email = "Two.Orders@example.com"
    o1 = answered_order(site, staff, email)[2]
    o2 = answered_order(site, staff, email.lower())[2]
    c3, _, o3, rpath3 = answered_order(site, staff, email.upper())
    for oid in (o1, o2):
        close(oid)
    c3.post(rpath3, {"reason": "", "csrf_token": client_csrf(c3, rpath3)})     # a refund open on the third
    r = staff.get("/admin/orders/%d/erase" % o1)
    text = text_of(r.text)
    t.ok('id="erase-others"' in r.text and "PMB-%06d" % o2 in text and "PMB-%06d" % o3 in text
         and "2 other orders" in text, "the confirmation lists the client's 2 other orders", text[:600])
    t.ok(re.search(r"PMB-%06d\s*: cannot be erased now\. A refund request is open" % o3, text)
         and 'name="all"' not in r.text, "one is blocked: it says why, and offers no 'all' box",
         text[text.find("other orders"):][:600])
    before = site.dump()
    r = staff_post("/admin/orders/%d/erase" % o1, {"confirm": "yes", "all": "yes"})
    t.ok(r.status == 409 and "PMB-%06d: A refund request is open" % o3 in text_of(r.text),
         "all=yes with one blocked: 409 naming it and why", (r.status, text_of(r.text)[:400]))
    t.eq(site.dump(), before, "and nothing is erased, not even the orders that could be")

    site.sql("UPDATE refund_requests SET status = 'declined', resolved_at = 1 WHERE order_id = ?", o3)
    site.sql("UPDATE orders SET status = 'answered', refund_requested_at = NULL WHERE id = ?", o3)
    close(o3)
    r = staff.get("/admin/orders/%d/erase" % o1)
    t.ok('<input type="checkbox" name="all" value="yes" id="erase-all">' in r.text,
         "all erasable: the confirmation offers to erase the other orders too")
    r = staff_post("/admin/orders/%d/erase" % o1, {"confirm": "yes", "all": "yes"})
    t.ok(r.status == 303 and r.header("Location").endswith("/admin/orders/%d?done=erased" % o1),
         "all=yes answers 303 to the order page", (r.status, text_of(r.text)[:300]))
    rows = site.sql("SELECT id, erased_at IS NOT NULL, email FROM orders WHERE id IN (?, ?, ?) ORDER BY id",
                    o1, o2, o3)
    t.eq(rows, [(o1, 1, ""), (o2, 1, ""), (o3, 1, "")], "every order of the address is erased")
    sam = site.sql1("SELECT id FROM users WHERE username = 'sam'")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'privacy_erase' AND user_id = ? AND order_id IN "
                   "(?, ?, ?)", sam, o1, o2, o3), 3, "each audited with the staff member")
    hits = bytes_hits((b"two.orders@example.com",))
    t.ok(not hits, "the address is in neither the database file nor its -wal", hits)
    o4 = answered_order(site, staff, "one.order@example.com")[2]
    close(o4)
    r = staff.get("/admin/orders/%d/erase" % o4)
    t.ok('id="erase-others"' not in r.text and 'name="all"' not in r.text,
         "a client with one order: no list of others, no box")


for fn in (test_privacy_page, test_privacy_settings, test_open_orders_no_form, test_request,
           test_refunded_and_cancelled_are_closed, test_erased_links_410, test_erased_staff, test_erase_blocked,
           test_erase, test_erase_person):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
