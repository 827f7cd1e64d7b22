#!/usr/bin/env python3
"""The client's side through real nginx: the question form, the order it
makes, the status page, follow-ups, /lost, and their abuse limits."""
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, link_token, login, admin_csrf,  # noqa: E402
                     GOOD_QUESTION, STAFF)

t = Tap()
site = Site()
site.start()


def count(table, where="1", *args):
    return site.sql1("SELECT count(*) FROM %s WHERE %s" % (table, where), *args)


def test_valid_question():
    b = Browser(site)
    r, hidden = b.form("/ask")
    t.eq(r.status, 200, "GET /ask answers 200")
    t.ok(hidden.get("csrf_token") and hidden.get("form_token"),
         "the form carries a CSRF token and a one-time form token")
    for name in ("name", "email", "company", "website", "topic", "question", "agree"):
        t.ok('name="%s"' % name in r.text, "the form has the field %s" % name)
    before = count("orders")
    q = dict(GOOD_QUESTION, email="valid@example.com")
    r = ask(b, **q)
    t.eq(r.status, 303, "a valid question answers 303")
    path = track_path(r.header("Location"))
    t.ok(path is not None and r.header("Location").startswith(site.base + "/o/"),
         "303 goes to /o/TOKEN", r.header("Location"))
    t.eq(count("orders"), before + 1, "one order was made")
    oid, number, status, price, cur = site.sql(
        "SELECT id, number, status, price, currency FROM orders WHERE email = 'valid@example.com'")[0]
    t.ok(re.match(r"^PMB-\d{6}$", number), "the order has a human number: " + number)
    t.eq((status, price, cur), ("awaiting_payment", 15000, "GBP"),
         "status, price and currency copied from the settings")
    t.eq(site.sql1("SELECT body FROM messages WHERE order_id = ? AND kind = 'question'", oid),
         q["question"], "the question is the order's first message")
    t.eq(count("status_history", "order_id = ?", oid), 1, "one status-history row")
    mails = site.sql("SELECT kind, to_addr, body_text, body_html FROM outbox WHERE order_id = ?", oid)
    t.eq(len(mails), 1, "one outbox row")
    t.ok(mails and mails[0][0] == "confirmation" and mails[0][1] == "valid@example.com",
         "the outbox row is the confirmation to the client")
    # The email's link and the redirect's are made at different moments
    # (a token carries its second): the same page when their tokens agree.
    link = re.search(re.escape(site.base) + r"(/o/[A-Za-z0-9_-]+)", mails[0][2]) if mails else None
    t.ok(link and link_token(path) is not None and link_token(link.group(1)) == link_token(path) and
         ('href="%s"' % (site.base + link.group(1))) in mails[0][3],
         "the confirmation carries the status link in both parts, as a link in HTML", mails and mails[0][3])
    subject, text, html = site.sql("SELECT subject, body_text, body_html FROM outbox WHERE order_id = ?", oid)[0]
    t.ok(number in subject and number in text and number in html,
         "the confirmation carries the order's number in the subject and both parts", subject)
    t.ok(not re.search(r"pmb[nt][0-9a-f]{24}", subject + text + html),
         "no stand-in is left in the confirmation (page_ask.c renders it before the transaction)")
    due, created = site.sql("SELECT due_at, created_at FROM orders WHERE id = ?", oid)[0]
    t.eq(due - created, 48 * 3600, "due time = now + answer promise")
    page = b.get(path)
    t.eq(page.status, 200, "the status page answers 200")
    t.ok(number in page.text and "Received" in page.text and q["question"] in page.text,
         "the status page shows the number, 'received' and the question")
    t.ok("How to pay" in page.text and "sort code" in page.text,
         "the status page shows payment instructions while unpaid")
    t.eq(page.header("Cache-Control"), "no-store", "the status page is not cached")
    log = open(site.log_path).read()
    t.ok(path[3:] not in log and "GET /o/[token] 200" in log,
         "the log has the request with its token masked", log[-500:])


def test_invalid_fields():
    b = Browser(site)
    cases = [
        ("name", "", "Please fill in your name"),
        ("name", "x" * 101, "too long"),
        ("email", "not-an-email", "email address such as"),
        ("email", "a@b", "domain such as"),
        ("email", "ada@example.com\r\nBcc: x@evil.example", "not allowed"),
        ("question", "too short", "too short"),
        ("question", "q" * 10001, "too long"),
        ("topic", "Astrology", "choose a topic"),
        ("agree", None, "Please tick"),
        ("website", "javascript:alert(1)", "website"),
        ("name", "Ada\nBcc: evil@example.com", "not allowed"),
    ]
    before = count("orders")
    for field, value, msg in cases:
        r = ask(b, **{field: value})
        t.eq(r.status, 400, "invalid %s (%r) answers 400" % (field, (value or "")[:20]))
        t.ok(msg.lower() in r.text.lower(), "invalid %s: the page says %r" % (field, msg),
             re.findall(r'<p class="error"[^>]*>([^<]*)', r.text))
        if field != "question":
            t.ok(GOOD_QUESTION["question"] in r.text, "invalid %s: the question typed is kept" % field)
        if field != "email":
            t.ok('value="ada@bakery.example"' in r.text, "invalid %s: the email typed is kept" % field)
    t.eq(count("orders"), before, "no order made by an invalid form")


def test_script_shown_as_text():
    b = Browser(site)
    evil = "<script>alert('pwned')</script> how do I sell more bread?"
    r = ask(b, question=evil, name="<b>Bold</b>", email="xss@example.com")
    path = track_path(r.header("Location"))
    page = b.get(path)
    t.ok("<script>alert" not in page.text and "&lt;script&gt;alert(&#39;pwned&#39;)" in page.text,
         "a script tag in the question is shown as text on the status page")
    t.ok("<b>Bold</b>" not in page.text and "&lt;b&gt;Bold&lt;/b&gt;" in page.text,
         "HTML in the name is shown as text")
    html = site.sql1("SELECT body_html FROM outbox WHERE to_addr = 'xss@example.com'")
    t.ok(html is not None and "<b>Bold</b>" not in html and "<script" not in html,
         "the confirmation email's HTML part escapes the client's text")
    r = ask(b, question=evil, name="", email="xss@example.com")
    t.ok("<script>alert" not in r.text and "&lt;script&gt;" in r.text,
         "a script tag is shown as text on the form's error page")


def test_idempotent():
    b = Browser(site)
    _, hidden = b.form("/ask")
    fields = dict(GOOD_QUESTION, email="twice@example.com")
    fields.update(hidden)
    r1 = b.post("/ask", fields)
    r2 = b.post("/ask", fields)
    t.eq((r1.status, r2.status), (303, 303), "the same form posted twice: both 303")
    t.eq(count("orders", "email = 'twice@example.com'"), 1, "the same form token posted twice makes one order")
    t.eq(r1.header("Location")[:40], r2.header("Location")[:40], "both land on the same order's page")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE to_addr = 'twice@example.com'"), 1,
         "one confirmation email")
    # A double click: the same form sent 8 times at once.
    _, hidden = b.form("/ask")
    fields = dict(GOOD_QUESTION, email="race@example.com")
    fields.update(hidden)
    results = []
    threads = [threading.Thread(target=lambda: results.append(b.post("/ask", fields).status))
               for _ in range(8)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    t.eq(sorted(results), [303] * 8, "8 simultaneous posts of one form all answer 303")
    t.eq(count("orders", "email = 'race@example.com'"), 1, "8 simultaneous posts of one form make one order")


def test_tokens():
    b = Browser(site)
    pa = track_path(ask(b, email="a@tokens.example", question="Question of order A, about pricing cakes.").header("Location"))
    pb = track_path(ask(b, email="b@tokens.example", question="Question of order B, about flower shops.").header("Location"))
    ra, rb = b.get(pa), b.get(pb)
    t.ok("order A" in ra.text and "order B" not in ra.text, "A's token shows A only")
    t.ok("order B" in rb.text and "order A" not in rb.text, "B's token shows B only")
    tok = pa[3:]
    changed = 0
    for i in (0, 5, 20, 40, len(tok) - 1):
        c = "A" if tok[i] != "A" else "B"
        r = b.get("/o/" + tok[:i] + c + tok[i + 1:])
        changed += r.status == 404
    t.eq(changed, 5, "a token with one character changed answers 404")
    r = b.get("/o/" + tok[:-3])
    t.eq(r.status, 404, "a truncated token answers 404")
    t.ok("does not work" in r.text and "<html" in r.text, "the 404 is a friendly page")
    r = b.get("/o/not-a-token")
    t.eq(r.status, 404, "garbage token answers 404")


def test_honeypot():
    b = Browser(site)
    before_o, before_m = count("orders"), count("outbox")
    r = ask(b, fax="http://spam.example", email="bot@example.com")
    t.eq(r.status, 200, "a filled honeypot is accepted silently")
    t.eq((count("orders"), count("outbox")), (before_o, before_m), "honeypot: no order and no mail")


def test_rate_limits():
    b = Browser(site)
    st = []
    for i in range(6):
        st.append(ask(b, email="busy@example.com").status)
    t.eq(st, [303] * 5 + [429], "the sixth question within an hour from one address answers 429")
    r = ask(b, email="busy@example.com")
    t.ok(r.header("Retry-After") and int(r.header("Retry-After")) > 0, "429 carries Retry-After")
    t.ok(GOOD_QUESTION["question"] in r.text and "try again" in r.text,
         "the 429 page explains and keeps what was typed")
    s2 = Site(settings={"rate_limit_ip_per_hour": "3"})
    try:
        s2.start()
        b2 = Browser(s2)
        st = [ask(b2, email="ip%d@example.com" % i).status for i in range(4)]
        t.eq(st, [303, 303, 303, 429], "the per-IP limit (setting rate_limit_ip_per_hour) answers 429")
        t.eq(s2.sql1("SELECT count(*) FROM rate_events WHERE key LIKE 'ask-ip:%'"), 3,
             "each stored question is counted against the limit")
        # Through nginx every client is 127.0.0.1; a forged X-Forwarded-For
        # from an untrusted proxy must not give a fresh allowance.
        _, hidden = b2.form("/ask")
        f = dict(GOOD_QUESTION, email="forged@example.com")
        f.update(hidden)
        r = b2.post("/ask", f, headers={"X-Forwarded-For": "203.0.113.5"})
        t.eq(r.status, 429, "X-Forwarded-For from an untrusted proxy is ignored")
    finally:
        s2.cleanup()
    s3 = Site(settings={"rate_limit_email_per_hour": "0", "rate_limit_ip_per_hour": "0"})
    try:
        b4 = Browser(s3)
        st = [ask(b4, email="load@example.com").status for _ in range(7)]
        t.eq(st, [303] * 7, "0 turns the limits off")
        t.eq(s3.sql1("SELECT count(*) FROM rate_events WHERE key LIKE 'ask-%'"), 0,
             "and questions are not counted while they are off")
    finally:
        s3.cleanup()


def test_trusted_proxy():
    s = Site(settings={"rate_limit_ip_per_hour": "2", "trusted_proxies": "192.0.2.1"})
    try:
        b = Browser(s, remote="192.0.2.1")
        codes = []
        for i, ip in enumerate(["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"]):
            _, hidden = b.form("/ask")
            f = dict(GOOD_QUESTION, email="p%d@example.com" % i)
            f.update(hidden)
            codes.append(b._send("POST", "/ask", body=f, headers={"X-Forwarded-For": ip}).status)
        t.eq(codes, [303, 303, 429, 303], "behind a trusted proxy, X-Forwarded-For names the client")
        t.eq(s.sql1("SELECT client_ip FROM orders ORDER BY id DESC LIMIT 1"), "203.0.113.2",
             "the order records the forwarded client IP")
    finally:
        s.cleanup()


def test_csrf():
    b = Browser(site)
    _, hidden = b.form("/ask")
    f = dict(GOOD_QUESTION, email="csrf@example.com")
    f.update(hidden)
    f.pop("csrf_token")
    r = b.post("/ask", f)
    t.eq(r.status, 403, "POST /ask without the CSRF token answers 403")
    t.ok(GOOD_QUESTION["question"] in r.text, "the 403 form keeps what was typed")
    f["csrf_token"] = hidden["csrf_token"]
    r = b.post("/ask", f, headers={"Origin": "https://evil.example"})
    t.eq(r.status, 403, "a cross-origin POST answers 403")
    r = b.post("/ask", f, headers={"Sec-Fetch-Site": "cross-site"})
    t.eq(r.status, 403, "Sec-Fetch-Site: cross-site answers 403")
    other = Browser(site)
    other.get("/ask")
    r = other.post("/ask", f)
    t.eq(r.status, 403, "a token from another browser answers 403")
    t.eq(count("orders", "email = 'csrf@example.com'"), 0, "no order from a refused POST")
    r = b.post("/ask", f, headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
    t.eq(r.status, 403, "Origin: null from another site answers 403")
    r = b.post("/ask", f, headers={"Origin": site.base})
    t.eq(r.status, 303, "the same POST from the site's own origin is accepted")
    # Under the pages' Referrer-Policy: no-referrer, a browser's form POST
    # to the site itself carries "Origin: null" (tests/browser.py).
    _, hidden = b.form("/ask")
    f = dict(GOOD_QUESTION, email="csrf-null@example.com")
    f.update(hidden)
    r = b.post("/ask", f, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    t.eq(r.status, 303, "a browser's same-origin POST with Origin: null is accepted")


def answer(oid, text="**Bake** a weekday loaf."):
    now = site.sql1("SELECT strftime('%s','now')")
    c = __import__("sqlite3").connect(site.db)
    c.execute("UPDATE orders SET status='answered', paid_at=?, answered_at=?, last_answered_at=? "
              "WHERE id=?", (now, now, now, oid))
    c.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'reply', ?, ?)",
              (oid, text, now))
    c.commit()
    c.close()


def test_followups_and_view():
    b = Browser(site)
    path = track_path(ask(b, email="follow@example.com").header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = 'follow@example.com'")
    r = b.post(path + "/messages", {"message": "Too early", "csrf_token": b.form("/ask")[1]["csrf_token"]})
    t.eq(r.status, 409, "a follow-up before the answer is refused")
    answer(oid, "**Bake** a weekday loaf. <script>alert(1)</script>")
    t.eq(site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid), None, "answer not viewed yet")
    page, hidden = b.form(path)
    t.ok("<strong>Bake</strong>" in page.text, "the answer is rendered from Markdown")
    t.ok("<script>alert(1)</script>" not in page.text, "unsafe HTML in an answer is not rendered")
    t.eq(site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid), None,
         "GET of the status page records no view (GET never writes: mail scanners open links)")
    beacon = re.search(r'<form id="view-beacon" method="post" action="([^"]+)" hidden>'
                       r'<input type="hidden" name="csrf_token" value="([^"]+)">', page.text)
    t.ok(beacon and beacon.group(1) == path + "/viewed" and '<script src="/static/viewed.js" defer>' in page.text,
         "the page carries the view beacon's form and script")
    js = b.get("/static/viewed.js")
    t.ok(js.status == 200 and "view-beacon" in js.text and "javascript" in (js.header("Content-Type") or ""),
         "nginx serves www/static/viewed.js as JavaScript")
    r = b.post(path + "/viewed", {"csrf_token": "forged"})
    t.ok(r.status == 403 and site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid) is None,
         "POST /o/TOKEN/viewed without its CSRF token: 403, nothing recorded")
    t.eq(b.post("/o/not-a-token/viewed", {"csrf_token": hidden["csrf_token"]}).status, 404,
         "POST /o/TOKEN/viewed with a bad token: 404")
    r = b.post(path + "/viewed", {"csrf_token": hidden["csrf_token"]})
    v1 = site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid)
    t.ok(r.status == 204 and v1 is not None, "the beacon's POST answers 204 and records the view", r.status)
    site.sql("UPDATE orders SET answer_viewed_at = answer_viewed_at - 100 WHERE id = ?", oid)
    r = b.post(path + "/viewed", {"csrf_token": hidden["csrf_token"]})
    t.eq((r.status, site.sql1("SELECT answer_viewed_at FROM orders WHERE id = ?", oid)), (204, v1 - 100),
         "answer_viewed_at is set once")
    t.ok('id="view-beacon"' not in b.get(path).text, "once the view is recorded, the page sends no beacon")
    t.ok('name="message"' in page.text, "an answered order offers the follow-up form")
    r = b.post(path + "/messages", {"message": "", "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 400, "an empty follow-up answers 400")
    r = b.post(path + "/messages", {"message": "What about Mondays?", "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 303, "a follow-up answers 303")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "followup",
         "a follow-up puts the order back in the queue as follow-up")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'followup_alert'", oid), 1,
         "the consultant is alerted by email")
    page = b.get(path)
    t.ok("What about Mondays?" in page.text, "the follow-up shows in the thread")
    answer(oid, "Mondays: try a loyalty card.")
    page, hidden = b.form(path)
    t.ok('name="message"' not in page.text and "Ask a new question" in page.text,
         "past the allowance the page says so and offers a new question")
    r = b.post(path + "/messages", {"message": "One more?", "csrf_token": b.form("/ask")[1]["csrf_token"]})
    t.eq(r.status, 409, "a follow-up past the allowance is refused")
    t.eq(site.sql1("SELECT count(*) FROM messages WHERE order_id = ? AND kind = 'followup'", oid), 1,
         "only the included follow-up was stored")


def test_lost():
    b = Browser(site)
    ask(b, email="lost@example.com")
    _, hidden = b.form("/lost")
    before = count("outbox", "kind = 'lost'")
    r1 = b.post("/lost", {"email": "lost@example.com", "csrf_token": hidden["csrf_token"]})
    r2 = b.post("/lost", {"email": "nobody@example.com", "csrf_token": hidden["csrf_token"]})
    t.eq((r1.status, r2.status), (200, 200), "/lost answers 200 for known and unknown addresses")
    strip = lambda s: re.sub(r'value="[^"]*"', "", s)
    t.eq(strip(r1.text), strip(r2.text), "/lost answers the same text for both")
    t.eq(count("outbox", "kind = 'lost'"), before + 1, "/lost sends mail only for the known address")
    body = site.sql1("SELECT body_text FROM outbox WHERE kind = 'lost' ORDER BY id DESC LIMIT 1")
    t.ok(body and site.base + "/o/" in body, "the lost-link mail carries the status link")
    codes = [b.post("/lost", {"email": "lost@example.com", "csrf_token": hidden["csrf_token"]}).status
             for _ in range(3)]
    t.eq(codes[-1], 429, "/lost is rate-limited")


def test_failed_write_keeps_text():
    """A write that cannot commit (another process holds the database's
    write lock) answers 503 with everything typed kept, saves nothing,
    and the same form sent again once the lock is gone makes one order."""
    import sqlite3
    s = Site(users=STAFF, settings={"busy_timeout_ms": "100"})
    try:
        c = Browser(s)
        _, hidden = c.form("/ask")
        f = dict(GOOD_QUESTION, email="locked@example.com",
                 question="A question that must survive a locked database, word for word.")
        f.update(hidden)
        lock = sqlite3.connect(s.db, timeout=1, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        r = c.post("/ask", f)
        t.eq(r.status, 503, "POST /ask whose commit fails answers 503")
        t.ok(f["question"] in r.text and 'value="locked@example.com"' in r.text,
             "the 503 form keeps everything typed")
        t.ok(r.header("Retry-After") is not None and "nothing was saved" in r.text,
             "it says nothing was saved and when to retry")
        lock.execute("ROLLBACK")
        t.eq(s.sql1("SELECT count(*) FROM orders"), 0, "no order was stored")
        t.eq(c.post("/ask", f).status, 303, "the same form sent again works")
        c.post("/ask", f)
        t.eq(s.sql1("SELECT count(*) FROM orders"), 1, "and makes exactly one order")
        oid = s.sql1("SELECT id FROM orders")
        path = track_path(c.post("/ask", f).header("Location"))
        now = s.sql1("SELECT strftime('%s','now')")
        s.sql("UPDATE orders SET status='answered', paid_at=?, answered_at=? WHERE id=?", now, now, oid)
        lock.execute("BEGIN IMMEDIATE")
        r = c.post(path + "/messages", {"message": "My follow-up, kept word for word.",
                                        "csrf_token": hidden["csrf_token"]})
        t.eq(r.status, 503, "a follow-up whose commit fails answers 503")
        t.ok("My follow-up, kept word for word." in r.text, "the follow-up text is kept")
        lock.execute("ROLLBACK")
        t.eq(s.sql1("SELECT count(*) FROM messages WHERE kind = 'followup'"), 0, "no follow-up was stored")
        st = Browser(s)
        t.eq(login(st).status, 303, "staff sign in (CGI)")
        tok = admin_csrf(st)
        lock.execute("BEGIN IMMEDIATE")
        r = st.post("/admin/orders/%d/note" % oid, {"body": "An internal note kept word for word.",
                                                   "csrf_token": tok})
        lock.execute("ROLLBACK")
        t.ok(r.status == 503 and "An internal note kept word for word." in r.text,
             "a staff note whose commit fails answers 503 with the note kept")
        lock.execute("BEGIN IMMEDIATE")
        r = login(Browser(s))
        lock.execute("ROLLBACK")
        t.ok(r.status == 503 and all("pmb_session" not in x for x in r.header_all("Set-Cookie")),
             "a sign-in that cannot commit answers 503 and sets no session cookie")
        lock.close()
    finally:
        s.cleanup()


def test_largest_question():
    """The largest question the fields allow, with a raised body_limit, is
    more than a group-commit job holds (src/batch.h, BATCH_JOB_MAX): it is
    stored alone, not refused."""
    s = Site(settings={"body_limit": "262144",         # and a confirmation 12 kB longer
                       "payment_instructions": "&" * 2000})
    try:
        s.start()
        b = Browser(s)
        q = "\U0001F950" * 10000            # 10,000 characters, 40,000 bytes
        name = "&" * 100
        r = ask(b, email="big@example.com", name=name, question=q)
        t.eq(r.status, 303, "a 10,000-character question of 4-byte characters answers 303")
        oid = s.sql1("SELECT id FROM orders WHERE email = 'big@example.com'")
        t.ok(oid and s.sql1("SELECT body FROM messages WHERE order_id = ?", oid) == q and
             s.sql1("SELECT to_name FROM outbox WHERE order_id = ?", oid) == name,
             "it is stored whole, with its confirmation")
    finally:
        s.cleanup()


for fn in (test_failed_write_keeps_text, test_valid_question, test_invalid_fields, test_script_shown_as_text, test_idempotent,
           test_tokens, test_honeypot, test_csrf, test_followups_and_view, test_lost,
           test_rate_limits, test_trusted_proxy, test_largest_question):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
