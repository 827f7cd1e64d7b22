#!/usr/bin/env python3
"""The consultant's order page and reply form, and the outbox, through
real nginx (issue 16): "Save and preview" lands on the preview, "Send
reply" asks for confirmation (a page of its own without JavaScript,
confirm=yes sends), the history, audit and money tables fold, the answer
email after the last included follow-up invites no other, scrolling
tables are focusable and labelled, and the outbox shows each email's text
with keyset paging."""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, SRC, ask, login, admin_csrf,  # noqa: E402
                     track_path, unescape, STAFF, stmt_sql)

t = Tap()
site = Site(users=STAFF)
site.start()


def signed_in():
    b = Browser(site)
    login(b)
    return b, admin_csrf(b)


def paid_order(staff, tok, email, name="Ada Baker"):
    """A new paid order; returns (client Browser, status path, order id)."""
    c = Browser(site)
    path = track_path(ask(c, email=email, name=name).header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ? ORDER BY id DESC", email)
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
    assert r.status == 303, r
    return c, path, oid


def tables_labelled(html):
    """The scrolling table wrappers of html that are not focusable and
    labelled (axe-core scrollable-region-focusable)."""
    bad = []
    for m in re.finditer(r'<div class="table-wrap"[^>]*>', html):
        tag = m.group(0)
        if 'tabindex="0"' not in tag or not re.search(r'aria-label(ledby)?="[^"]+"', tag):
            bad.append(tag)
    return bad


# --- the reply form -----------------------------------------------------------

def test_preview_and_confirm():
    staff, tok = signed_in()
    _, _, oid = paid_order(staff, tok, "preview@example.com")
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok('formaction="/admin/orders/%d/draft#preview"' % oid in page,
         '"Save and preview" posts to the draft URL with #preview, so the browser lands on the preview')
    send = re.search(r'<p class="send-row">(.*?)</p>', page, re.S)
    drafts = re.search(r'<p class="draft-row">(.*?)</p>', page, re.S)
    t.ok(send is not None and "Send reply" in send.group(1) and "Save draft" not in send.group(1)
         and drafts is not None and "Save draft" in drafts.group(1),
         '"Send reply" stands in a row of its own, apart from "Save draft" and "Save and preview"')
    t.ok(re.search(r'<button[^>]*data-confirm="[^"]+"[^>]*>Send reply</button>', page) is not None
         and '<script src="/static/confirm.js" defer></script>' in page,
         '"Send reply" carries data-confirm and the page loads www/static/confirm.js (no inline script)')
    js = site.get("/static/confirm.js")
    t.ok(js.status == 200 and "window.confirm" in js.text and "'confirm'" in js.text,
         "confirm.js is served: it asks with a dialog and adds confirm=yes")

    r = staff.post("/admin/orders/%d/draft" % oid, {"body": "Try **three** ideas.", "preview": "1",
                                                    "csrf_token": tok})
    t.ok(r.status == 200 and 'id="preview"' in r.text and "<strong>three</strong>" in r.text,
         "Save and preview: the page shows the rendered preview at #preview")

    body = "Raise the price to **£180** <now> & see.\nSecond line."
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": body, "csrf_token": tok})
    t.eq(r.status, 200, "Send reply without confirm=yes answers 200: a confirmation page")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "paid", "and sends nothing yet")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'answer'", oid), 0,
         "no answer email is queued before the confirmation")
    shown = re.search(r'id="preview">(.*?)</div>', r.text, re.S)
    t.ok(shown is not None and "<strong>£180</strong>" in shown.group(1) and "&amp; see." in shown.group(1)
         and "<now>" not in shown.group(1),
         "the confirmation page shows the reply rendered as the client will see it (Markdown, no raw HTML)")
    form = re.search(r'<form method="post" action="/admin/orders/%d/reply"[^>]*>(.*?)</form>' % oid, r.text, re.S)
    t.ok(form is not None and re.search(r'name="confirm" value="yes"', form.group(1))
         and 'name="csrf_token"' in form.group(1), "its form posts the reply again with confirm=yes and a CSRF token")
    hidden = re.search(r'name="body" value="([^"]*)"', form.group(1)) if form else None
    t.eq(unescape(hidden.group(1)) if hidden else None, body, "the form carries the reply's text unchanged")
    t.ok(form is not None and 'formaction="/admin/orders/%d/draft"' % oid in form.group(1),
         "and a way back that saves it as a draft")

    r = staff.post("/admin/orders/%d/reply" % oid, {"body": body, "csrf_token": tok, "confirm": "no"})
    t.eq(r.status, 400, "confirm takes only yes")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "paid", "confirm=no sends nothing")

    r = staff.post("/admin/orders/%d/reply" % oid, {"body": body, "csrf_token": tok, "confirm": "yes"})
    t.eq(r.status, 303, "Send reply with confirm=yes sends")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "answered", "the order is answered")

    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Again", "csrf_token": tok})
    t.eq(r.status, 409, "an answered order asks for no confirmation: 409 as before")
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "", "csrf_token": tok})
    t.eq(r.status, 400, "an empty reply is refused before any confirmation")


# --- folding and the layout -----------------------------------------------------

def test_tables_fold():
    staff, tok = signed_in()
    _, _, oid = paid_order(staff, tok, "fold@example.com")
    page = staff.get("/admin/orders/%d" % oid).text
    for ident, what in (("history", "Status history"), ("audit", "Audit trail"),
                        ("money-ledger", "Payments and refunds")):
        m = re.search(r'<details id="%s">\s*<summary>(.*?)</summary>(.*?)</details>' % ident, page, re.S)
        t.ok(m is not None and what in m.group(1) and "<table" in m.group(2),
             "the %s table is folded in a closed <details>" % what)
    pos = [page.find(x) for x in ('class="card thread"', 'id="reply"', 'id="money-ledger"',
                                  'id="history"', 'id="audit"')]
    t.ok(all(p > 0 for p in pos) and pos == sorted(pos),
         "the thread and the reply form come before the folded tables", pos)
    css = site.get("/static/pmb.css").text
    t.ok(re.search(r"max-width: 50rem\)[^\n]*\.order-grid \.thread \{ order: -1; \}", css) is not None,
         "on a phone the thread comes before the client's details")
    t.eq(tables_labelled(page), [], "every scrolling table of the order page is focusable and labelled")


def test_tables_labelled():
    staff, tok = signed_in()
    for path in ("/admin", "/admin/audit", "/admin/snippets", "/admin/dashboard", "/admin/outbox"):
        r = staff.get(path)
        t.ok(r.status == 200 and tables_labelled(r.text) == [],
             "%s: scrolling tables have tabindex=0 and a label" % path, tables_labelled(r.text))


# --- the answer email ------------------------------------------------------------

def test_answer_mail_followups():
    staff, tok = signed_in()
    c, path, oid = paid_order(staff, tok, "follow@example.com")
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "First answer.", "csrf_token": tok, "confirm": "yes"})
    assert r.status == 303, r
    first = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id", oid)
    t.ok("ask a follow-up question" in first and "1 still included" in first,
         "the first answer email invites a follow-up (followups_included = 1, none used)", first)
    _, hidden = c.form(path)
    r = c.post(path + "/messages", {"message": "What about Mondays?", "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 303, "the client asks the included follow-up")
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Mondays too.", "csrf_token": tok, "confirm": "yes"})
    t.eq(r.status, 303, "the consultant answers it")
    last = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id DESC", oid)
    t.ok("ask a follow-up" not in last and "have all been used" in last,
         "the answer after the last included follow-up invites no other", last)
    t.ok("money back" in last, "the guarantee is still offered", last)


def test_answer_mail_no_followups():
    """followups_included = 0: no answer invites a follow-up, and none
    speaks of follow-ups used up."""
    other = Site(users=STAFF, settings={"followups_included": "0"})
    other.start()
    try:
        staff = Browser(other)
        login(staff)
        tok = admin_csrf(staff)
        c = Browser(other)
        ask(c, email="none@example.com")
        oid = other.sql1("SELECT id FROM orders WHERE email = ?", "none@example.com")
        staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
        r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Only answer.", "csrf_token": tok, "confirm": "yes"})
        t.eq(r.status, 303, "followups_included = 0: the answer is sent")
        mail = other.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
        t.ok("follow-up" not in mail and "You can also read it on your order's page:" in mail,
             "followups_included = 0: the answer email neither invites a follow-up nor speaks of used ones", mail)
    finally:
        other.cleanup()


# --- the outbox ------------------------------------------------------------------

def test_outbox_header_and_failed():
    staff, _ = signed_in()
    r = staff.get("/admin/outbox")
    head = re.search(r"<thead>(.*?)</thead>", r.text, re.S)
    t.ok(head is not None and re.search(r"<th>\s*</th>", head.group(1)) is None,
         "every header cell of the outbox table has text", head.group(1) if head else r.text)
    counts = re.search(r'<p class="muted">(.*?)</p>', r.text, re.S)
    t.ok(counts is not None and "0 failed" in counts.group(1) and "overdue" not in counts.group(1),
         '"0 failed" is not shown in red', counts.group(1) if counts else None)
    site.sql("INSERT INTO outbox (kind, to_addr, subject, body_text, status, attempts, next_at, created_at, "
             "last_error) VALUES ('lost', 'x@example.com', 'Failed one', 'Text', 'failed', 8, 0, 1, 'boom')")
    r = staff.get("/admin/outbox")
    counts = re.search(r'<p class="muted">(.*?)</p>', r.text, re.S)
    t.ok(counts is not None and re.search(r'<strong class="overdue">1 failed</strong>', counts.group(1)),
         "one failed message is shown in red", counts.group(1) if counts else None)
    css = site.get("/static/pmb.css").text
    t.ok(re.search(r"max-width: 40rem\)[^}]*\{[^}]*table\.outbox", css) is not None
         and 'data-label="Last error"' in r.text,
         "on a phone each outbox row stacks as a card, cells labelled by data-label")


def test_outbox_message():
    staff, tok = signed_in()
    site.sql("INSERT INTO outbox (kind, to_addr, to_name, subject, body_text, body_html, next_at, created_at) "
             "VALUES ('answer', 'eve@example.com', 'Eve <Evil>', 'Hi <b>there</b> & co', "
             "'Line one <script>alert(1)</script>\nLine two & more', "
             "'<p onclick=\"x()\">Hello <img src=\"https://tracker.example/p.gif\"></p>', 0, 1)")
    mid = site.sql1("SELECT max(id) FROM outbox")
    r = staff.get("/admin/outbox")
    t.ok('href="/admin/outbox/%d"' % mid in r.text, "the outbox links each email to its page")
    r = staff.get("/admin/outbox/%d" % mid)
    t.eq(r.status, 200, "GET /admin/outbox/ID answers 200")
    t.ok("Hi &lt;b&gt;there&lt;/b&gt; &amp; co" in r.text and "Eve &lt;Evil&gt; &lt;eve@example.com&gt;" in r.text
         and "Sam Carter &lt;sam@example.com&gt;" in r.text,
         "the headers (From, To, Subject) are shown, escaped")
    text = re.search(r'<pre class="mail-text" id="text"[^>]*>(.*?)</pre>', r.text, re.S)
    t.eq(text.group(1) if text else None,
         "Line one &lt;script&gt;alert(1)&lt;/script&gt;\nLine two &amp; more",
         "the plain-text part is shown as it is, escaped")
    t.ok("<script>alert" not in r.text and "<img" not in r.text and "onclick=" not in r.text.replace(
        "onclick=&quot;", ""), "nothing of the mail is rendered as HTML")
    t.ok("&lt;p onclick=&quot;x()&quot;&gt;Hello &lt;img src=&quot;https://tracker.example/p.gif&quot;&gt;" in r.text,
         "the HTML part is shown as escaped source")
    t.eq(staff.get("/admin/outbox/999999").status, 404, "an unknown message answers 404")
    t.eq(staff.get("/admin/outbox/abc").status, 404, "a message number that is not a number answers 404")
    t.eq(Browser(site).get("/admin/outbox/%d" % mid).status in (303, 403), True,
         "a signed-out visitor cannot read an email")


def test_outbox_paging():
    staff, _ = signed_in()
    site.sql("DELETE FROM outbox")
    for i in range(1, 251):
        site.sql("INSERT INTO outbox (id, kind, to_addr, subject, body_text, status, next_at, created_at) "
                 "VALUES (?, 'lost', 'p@example.com', ?, 'x', ?, 0, 1)", i, "Mail %d" % i,
                 "failed" if i % 2 else "sent")
    ids = lambda html: [int(x) for x in re.findall(r'<tr id="mail-(\d+)">', html)]
    r = staff.get("/admin/outbox")
    first = ids(r.text)
    t.eq((len(first), first[0], first[-1]), (100, 250, 151), "the first page: the newest 100")
    older = re.search(r'href="/admin/outbox\?before=(\d+)" id="older"', r.text)
    t.eq(older.group(1) if older else None, "151", "an Older link carries the last id shown (keyset)")
    r = staff.get("/admin/outbox?before=151")
    t.eq(ids(r.text)[:1] + ids(r.text)[-1:], [150, 51], "the next page starts below it")
    r = staff.get("/admin/outbox?before=51")
    t.eq((ids(r.text)[0], ids(r.text)[-1], 'id="older"' in r.text), (50, 1, False),
         "the last page has no Older link")
    t.ok('href="/admin/outbox">Newest</a>' in r.text, "a later page links back to the newest")
    r = staff.get("/admin/outbox?status=failed&before=200")
    got = ids(r.text)
    t.eq((len(got), got[0], got[-1]), (100, 199, 1), "with a status filter: that status only, below the id")
    r = staff.get("/admin/outbox?status=sent")
    older = re.search(r'href="/admin/outbox\?status=sent&amp;before=(\d+)" id="older"', r.text)
    t.eq(older.group(1) if older else None, "52", "the Older link keeps the filter")
    t.eq(staff.get("/admin/outbox?before=x").status, 400, "before takes only a message number")
    for name, params in (("OUTBOX_LIST", (10**18, 101)), ("OUTBOX_LIST_STATUS", (10**18, 101, "sent"))):
        plan = " | ".join(row[3] for row in sqlite3.connect(site.db).execute(
            "EXPLAIN QUERY PLAN " + stmt_sql(name), params))
        t.ok(plan.startswith("SEARCH outbox USING") and "rowid<?" in plan and "B-TREE" not in plan,
             "%s reads one range of an index, no sort: %s" % (name, plan))


for fn in (test_preview_and_confirm, test_tables_fold, test_tables_labelled, test_answer_mail_followups,
           test_answer_mail_no_followups,
           test_outbox_header_and_failed, test_outbox_message, test_outbox_paging):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
