#!/usr/bin/env python3
"""The consultant's side through real nginx: sign-in and sessions, CSRF,
the reply queue with keyset paging, the order page and its actions."""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, link_token, login, admin_csrf,  # noqa: E402
                     STAFF)

t = Tap()
AMY = "another long passphrase"
site = Site(users=dict(STAFF, amy=AMY))
site.start()


def new_order(email, question=None):
    c = Browser(site)
    r = ask(c, email=email, question=question or "How do I price my wedding cakes for %s?" % email)
    path = track_path(r.header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
    return c, path, oid


def test_login():
    b = Browser(site)
    r1 = login(b, "sam", "wrong password here")
    r2 = login(b, "nobody", "wrong password here")
    t.eq((r1.status, r2.status), (401, 401), "wrong password and unknown user: same status")
    msg = lambda r: re.findall(r'role="alert"><p>([^<]*)', r.text)
    t.ok(msg(r1) == msg(r2) == ["Wrong username or password."], "wrong password and unknown user: same message")
    t.ok("wrong password here" not in r1.text, "the password is never echoed back")
    b2 = Browser(site)
    r = login(b2)
    t.eq(r.status, 303, "a correct sign-in answers 303")
    t.eq(r.header("Location"), site.base + "/admin", "to the queue")
    sc = [c for c in r.header_all("Set-Cookie") if c.startswith("pmb_session=")]
    t.eq(len(sc), 1, "a session cookie is set")
    flags = [f.strip() for f in sc[0].split(";")[1:]] if sc else []
    t.ok("HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags and
         not any(f.lower().startswith("domain") for f in flags), "the cookie is HttpOnly, SameSite=Strict, Path=/, no Domain", flags)
    t.eq(b2.get("/admin").status, 200, "signed in, the queue answers 200")
    raw = b2.cookies["pmb_session"]
    t.eq(site.sql1("SELECT count(*) FROM sessions WHERE hex(id_hash) LIKE ?", "%" + raw[:20] + "%"), 0,
         "the session id is stored hashed, not as sent")
    # logout kills the session server-side
    old = dict(b2.cookies)
    r = b2.post("/admin/logout", {"csrf_token": admin_csrf(b2)})
    t.eq(r.status, 303, "logout answers 303")
    b3 = Browser(site)
    b3.cookies = old
    r = b3.get("/admin")
    t.ok(r.status == 303 and r.header("Location").endswith("/admin/login"),
         "after logout the old cookie answers 303 to the sign-in page")


def test_brute_force():
    b = Browser(site)
    codes = [login(b, "amy", "not the password %d" % i).status for i in range(6)]
    t.eq(codes, [401] * 5 + [429], "the sixth wrong password answers 429")
    r = login(b, "amy", AMY)
    t.eq(r.status, 429, "even the right password is refused while locked")
    t.ok(r.header("Retry-After") and int(r.header("Retry-After")) > 0, "429 carries Retry-After")
    site.sql("DELETE FROM rate_events WHERE key LIKE 'login-%'")
    t.eq(login(b, "amy", AMY).status, 303, "after the window the right password works")


def test_tampered_cookie():
    b = Browser(site)
    login(b)
    c = b.cookies["pmb_session"]
    i = len(c) // 2
    b.cookies["pmb_session"] = c[:i] + ("A" if c[i] != "A" else "B") + c[i + 1:]
    r = b.get("/admin")
    t.eq(r.status, 303, "a cookie with one byte changed is treated as signed out")
    b.cookies["pmb_session"] = "garbage"
    t.eq(b.get("/admin").status, 303, "a garbage cookie is treated as signed out")


def test_csrf():
    b = Browser(site)
    login(b)
    _, _, oid = new_order("csrf-admin@example.com")
    before = site.dump()
    r = b.post("/admin/orders/%d/note" % oid, {"body": "no token"})
    t.eq(r.status, 403, "an admin POST without the CSRF token answers 403")
    r = b.post("/admin/orders/%d/note" % oid, {"body": "bad token", "csrf_token": "x" * 32})
    t.eq(r.status, 403, "an admin POST with a wrong CSRF token answers 403")
    tok = admin_csrf(b)
    r = b.post("/admin/orders/%d/note" % oid, {"body": "cross", "csrf_token": tok},
               headers={"Origin": "http://evil.example"})
    t.eq(r.status, 403, "an admin POST from another origin answers 403")
    t.eq(site.dump(), before, "nothing changed")
    r = b.post("/admin/orders/%d/note" % oid, {"body": "with token", "csrf_token": tok})
    t.eq(r.status, 303, "the same POST with the token works")


def test_signed_out_post_keeps_text():
    b = Browser(site)
    r = b.post("/admin/orders/1/reply", {"body": "A long careful answer I must not lose"})
    t.eq(r.status, 403, "a POST without a session answers 403")
    t.ok("A long careful answer I must not lose" in r.text, "and shows the text it carried")


def test_queue_and_paging():
    b = Browser(site)
    login(b)
    tok = admin_csrf(b)
    ids = []
    for i in range(3):
        _, _, oid = new_order("queue%d@example.com" % i)
        ids.append(oid)
        r = b.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                                  "reference": "REF%d" % i, "csrf_token": tok})
        t.eq(r.status, 303, "mark paid answers 303")
    # make the second one overdue and the third most urgent
    now = int(time.time())
    site.sql("UPDATE orders SET due_at = ? WHERE id = ?", now - 3600, ids[1])
    site.sql("UPDATE orders SET due_at = ? WHERE id = ?", now + 60, ids[2])
    q = b.get("/admin")
    order = [int(x) for x in re.findall(r'href="/admin/orders/(\d+)"', q.text)]
    mine = [x for x in order if x in ids]
    t.eq(mine, [ids[1], ids[2], ids[0]], "paid orders are in the queue ordered by due time")
    t.ok(re.search(r'<tr class="overdue">\s*<td><a href="/admin/orders/%d"' % ids[1], q.text),
         "overdue orders are marked")
    t.ok("overdue by 1 h 0 min" in q.text, "the overdue row says by how much, as every "
         "duration is written (page_duration)", re.findall(r"overdue by [^<]*", q.text))
    unpaid = b.get("/admin?status=awaiting_payment")
    t.ok('href="/admin/orders/%d"' % ids[0] not in unpaid.text, "paid orders are not in awaiting_payment")
    t.eq(b.get("/admin?status=bogus").status, 400, "an unknown filter answers 400")
    t.eq(b.get("/admin?after=x.y").status, 400, "a malformed cursor answers 400")
    # keyset paging over 120 orders
    c = __import__("sqlite3").connect(site.db)
    base = now + 100000
    for i in range(120):
        c.execute("INSERT INTO orders (form_token, name, email, price, currency, status, created_at, "
                  "due_at, updated_at) VALUES (?, 'P', 'p@example.com', 100, 'GBP', 'paid', ?, ?, ?)",
                  ("page%d" % i, now, base + i, now))
    c.commit()
    c.close()
    seen, url, pages = [], "/admin?status=paid", 0
    while url and pages < 10:
        r = b.get(url.replace("&amp;", "&"))
        seen += [int(x) for x in re.findall(r'href="/admin/orders/(\d+)"', r.text)]
        m = re.search(r'href="([^"]+)" rel="next"', r.text)
        url = m.group(1) if m else None
        pages += 1
        if pages == 1:
            t.eq(len(re.findall(r'href="/admin/orders/(\d+)"', r.text)), 50, "50 orders per page")
    total = site.sql1("SELECT count(*) FROM orders WHERE status = 'paid'")
    t.eq(len(seen), total, "keyset paging shows every paid order once (%d)" % total)
    t.eq(len(set(seen)), len(seen), "no order appears on two pages")
    dues = [site.sql1("SELECT due_at FROM orders WHERE id = ?", x) for x in seen]
    t.eq(dues, sorted(dues), "pages follow due time")
    plan = " ".join(str(x) for x in site.sql(
        "EXPLAIN QUERY PLAN SELECT id FROM orders o WHERE o.status = 'paid' AND "
        "(o.due_at > 1 OR (o.due_at = 1 AND o.id > 1)) ORDER BY o.due_at, o.id LIMIT 51"))
    t.ok("INDEX orders_queue" in plan and "TEMP B-TREE" not in plan,
         "the queue query walks an index, no sort", plan)
    site.sql("DELETE FROM orders WHERE form_token LIKE 'page%'")


def test_reply():
    b = Browser(site)
    login(b)
    tok = admin_csrf(b)
    client, path, oid = new_order("reply@example.com")
    t.eq(b.post("/admin/orders/%d/reply" % oid, {"body": "Too early", "csrf_token": tok, "confirm": "yes"}).status, 409,
         "an unpaid order cannot be answered")
    b.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "reference": "",
                                          "csrf_token": tok})
    t.eq(site.sql1("SELECT sum(amount) FROM ledger WHERE order_id = ?", oid), 15000,
         "mark paid writes a ledger row")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'paid'", oid), 1,
         "mark paid emails the client")
    text = "## Plan\n\n**Price** by the tier.\n\n<script>alert('x')</script>\n\n[bad](javascript:alert(1))"
    r = b.post("/admin/orders/%d/draft" % oid, {"body": text, "preview": "1", "csrf_token": tok})
    t.eq(r.status, 200, "save and preview answers 200")
    t.ok("<strong>Price</strong>" in r.text and "<script>alert('x')" not in r.text,
         "the preview is rendered Markdown without unsafe HTML")
    t.eq(site.sql1("SELECT reply_draft FROM orders WHERE id = ?", oid), text, "the draft is saved")
    counts = lambda: (site.sql1("SELECT count(*) FROM messages WHERE order_id=? AND kind='reply'", oid),
                      site.sql1("SELECT count(*) FROM status_history WHERE order_id=? AND status='answered'", oid),
                      site.sql1("SELECT count(*) FROM audit WHERE order_id=? AND action='send reply'", oid),
                      site.sql1("SELECT count(*) FROM outbox WHERE order_id=? AND kind='answer'", oid))
    t.eq(counts(), (0, 0, 0, 0), "nothing sent yet")
    results = []
    ths = [threading.Thread(target=lambda: results.append(
        b.post("/admin/orders/%d/reply" % oid, {"body": text, "csrf_token": tok, "confirm": "yes"}).status)) for _ in range(6)]
    [th.start() for th in ths]
    [th.join() for th in ths]
    t.eq(sorted(results), [303] + [409] * 5, "six parallel sends: one 303, the rest 409")
    t.eq(counts(), (1, 1, 1, 1), "one reply, one history row, one audit row, one answer email")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "answered", "the order is answered")
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id=? AND kind='answer'", oid) or ""
    # A token carries the second it was made, so the email's links are
    # this order's when their tokens say so, whatever their text.
    base = re.escape(site.base)
    status = re.findall(base + r"(/o/[A-Za-z0-9_-]+)(?![A-Za-z0-9_?/-])", mail)
    refund = re.findall(base + r"(/r/[A-Za-z0-9_-]+)", mail)
    rating = re.findall(base + r"(/o/[A-Za-z0-9_-]+)\?rating=yes", mail)
    mine = link_token(path)
    t.ok(mine and status and refund and rating and all(link_token(p) == mine for p in status + rating) and
         all(link_token(p)[2:4] == (2, oid) for p in refund),
         "the answer email has the status, refund and rating links", mail)
    page = client.get(path)
    t.ok("<h2>Plan</h2>" in page.text and "<strong>Price</strong>" in page.text,
         "the client's status page shows the rendered answer")
    t.ok("<script>alert('x')" not in page.text and 'href="javascript' not in page.text,
         "unsafe HTML in a reply is not rendered as HTML")
    op = b.get("/admin/orders/%d" % oid)
    t.ok(re.search(r'id="viewed">not yet<', op.text), "fetching the status page is not a view (no script ran)")
    # What www/static/viewed.js sends when a browser shows the page.
    beacon = re.search(r'<form id="view-beacon" method="post" action="([^"]+)" hidden>'
                       r'<input type="hidden" name="csrf_token" value="([^"]+)">', page.text)
    t.eq(client.post(beacon.group(1), {"csrf_token": beacon.group(2)}).status if beacon else None, 204,
         "the page's view beacon is accepted")
    op = b.get("/admin/orders/%d" % oid)
    t.ok(re.search(r'id="viewed">\s*\d', op.text), "the consultant sees when the client viewed the answer")
    t.ok("mark paid" in op.text and "send reply" in op.text, "the order page shows the audit trail")


def test_note_claim_cancel():
    b = Browser(site)
    login(b)
    tok = admin_csrf(b)
    client, path, oid = new_order("note@example.com")
    b.post("/admin/orders/%d/note" % oid, {"body": "Secret internal remark", "csrf_token": tok})
    t.ok("Secret internal remark" in b.get("/admin/orders/%d" % oid).text, "the note shows to staff")
    t.ok("Secret internal remark" not in client.get(path).text, "the note is never shown to the client")
    b.post("/admin/orders/%d/claim" % oid, {"csrf_token": tok})
    t.eq(site.sql1("SELECT u.username FROM orders o JOIN users u ON u.id = o.claimed_by WHERE o.id = ?", oid),
         "sam", "claim records who works on it")
    b.post("/admin/orders/%d/release" % oid, {"csrf_token": tok})
    t.eq(site.sql1("SELECT claimed_by FROM orders WHERE id = ?", oid), None, "release clears it")
    r = b.post("/admin/orders/%d/cancel" % oid, {"reason": "", "csrf_token": tok})
    t.eq(r.status, 400, "cancel needs a reason")
    r = b.post("/admin/orders/%d/cancel" % oid, {"reason": "Duplicate order", "csrf_token": tok})
    t.eq(r.status, 303, "an unpaid order can be cancelled")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "cancelled", "it is cancelled")
    _, _, paid = new_order("paidcancel@example.com")
    b.post("/admin/orders/%d/paid" % paid, {"method": "bank_transfer", "amount": "150", "csrf_token": tok})
    r = b.post("/admin/orders/%d/cancel" % paid, {"reason": "changed my mind", "csrf_token": tok})
    t.eq(r.status, 409, "a paid order is not cancelled silently")
    acts = [a for (a,) in site.sql("SELECT action FROM audit WHERE order_id = ?", oid)]
    t.ok({"add note", "claim", "release", "cancel"} <= set(acts), "every action is audited", acts)


def test_disable_ends_sessions():
    b = Browser(site)
    t.eq(login(b, "amy", AMY).status, 303, "amy signs in")
    t.eq(b.get("/admin").status, 200, "amy sees the queue")
    site.ctl("user", "disable", "amy")
    t.eq(b.get("/admin").status, 303, "disabling a user ends their sessions")
    t.eq(login(Browser(site), "amy", AMY).status, 401, "a disabled user cannot sign in")
    site.ctl("user", "enable", "amy")


def test_session_timeouts():
    b = Browser(site)
    login(b)
    site.sql("UPDATE sessions SET last_seen_at = last_seen_at - 121 * 60")
    t.eq(b.get("/admin").status, 303, "a session idle past session_idle_minutes is dead")
    b = Browser(site)
    login(b)
    site.sql("UPDATE sessions SET created_at = created_at - 13 * 3600")
    t.eq(b.get("/admin").status, 303, "a session older than session_max_hours is dead")
    b1 = Browser(site)
    _, hidden = b1.form("/admin/login")
    creds = {"username": "sam", "password": STAFF["sam"], "csrf_token": hidden["csrf_token"]}
    b1.post("/admin/login", creds)
    first = b1.cookies.get("pmb_session")
    t.eq(b1.post("/admin/login", creds).status, 303, "signing in again while signed in works")
    t.ok(first and b1.cookies.get("pmb_session") not in (None, first), "sign-in always makes a new session id")


def test_outbox():
    b = Browser(site)
    login(b)
    _, _, oid = new_order("outbox@example.com")
    mid = site.sql1("SELECT id FROM outbox WHERE order_id = ?", oid)
    site.sql("UPDATE outbox SET status = 'failed', attempts = 8, last_error = 'smtp: <connection refused>' "
             "WHERE id = ?", mid)
    page = b.get("/admin/outbox?status=failed")
    t.eq(page.status, 200, "GET /admin/outbox answers 200")
    t.ok('id="mail-%d"' % mid in page.text and "smtp: &lt;connection refused&gt;" in page.text,
         "the outbox lists failed messages with their errors, escaped")
    t.eq(b.get("/admin/outbox?status=nope").status, 400, "an unknown outbox filter answers 400")
    tok = admin_csrf(b, "/admin/outbox")
    t.eq(b.post("/admin/outbox/%d/retry" % mid, {}).status, 403, "retry without the CSRF token answers 403")
    r = b.post("/admin/outbox/%d/retry" % mid, {"csrf_token": tok})
    t.eq(r.status, 303, "retry now answers 303")
    st, nxt = site.sql("SELECT status, next_at FROM outbox WHERE id = ?", mid)[0]
    t.ok(st == "queued" and nxt <= int(time.time()) + 1, "retry now makes the message due at once")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'retry mail'"), 1, "retry is audited")
    site.sql("UPDATE outbox SET status = 'sent' WHERE id = ?", mid)
    t.eq(b.post("/admin/outbox/%d/retry" % mid, {"csrf_token": tok}).status, 409, "a sent message is not retried")


for fn in (test_outbox, test_login, test_brute_force, test_tampered_cookie, test_csrf, test_signed_out_post_keeps_text,
           test_queue_and_paging, test_reply, test_note_claim_cancel, test_disable_ends_sessions,
           test_session_timeouts):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
