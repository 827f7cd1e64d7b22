#!/usr/bin/env python3
"""The ask form and the status page, and the rating, through real nginx
(issue 16, "the client's confidence"): the refused form's error summary,
the status page's "we have emailed" line and follow-up confirmation, the
clock of an unpaid order, and the rating's redirect, refund link and
feedback."""
import os
import re
import sys
from html import unescape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, login, admin_csrf,  # noqa: E402
                     answered_order, GOOD_QUESTION, STAFF)

t = Tap()
site = Site(users=STAFF)
site.start()
staff = Browser(site)
login(staff)

CONSENT = ("I understand that the answer costs 150.00 GBP, that I pay after sending this form, and "
           "that I can have my money back in full within 30 days of the answer if I am not happy with it.")


def summary(html):
    """The refused form's error summary: (its opening tag, [(href, text)])."""
    m = re.search(r'(<div class="errors"[^>]*>)(.*?)</div>', html, re.S)
    if not m:
        return None, []
    return m.group(1), [(h, unescape(x)) for h, x in re.findall(r'<li><a href="([^"]+)">([^<]*)</a></li>', m.group(2))]


def test_error_summary():
    b = Browser(site)
    page = b.get("/ask").text
    t.ok('action="/ask#errors"' in page,
         "the form posts to /ask#errors: a refused form's page has #errors in its URL")
    shown = re.search(r'<label class="check" for="agree">.*?<span>([^<]*)</span>', page, re.S)
    t.ok(shown is not None, "the consent line is on the form")
    consent = unescape(shown.group(1)) if shown else ""
    r = ask(b, name="", topic="", agree=None)
    t.eq(r.status, 400, "a form missing its name, topic and consent answers 400")
    tag, items = summary(r.text)
    t.ok(tag is not None and 'id="errors"' in tag and 'tabindex="-1"' in tag and "autofocus" in tag,
         "the summary is #errors and takes focus (tabindex=-1, autofocus)", tag)
    hrefs = [h for h, _ in items]
    t.eq(hrefs, ["#name", "#topic", "#agree"], "the summary lists each problem as a link to its field, in order")
    for h in hrefs:
        t.ok(('id="%s"' % h[1:]) in r.text, "the link %s names a field's id on the page" % h)
    texts = dict(items)
    t.eq(texts.get("#topic"), "Please choose a topic.", "the select's message says choose, not fill in")
    t.eq(texts.get("#agree"), "Please tick \u201c%s\u201d" % consent,
         "the consent message quotes the consent line as the page shows it")
    t.ok(consent == CONSENT, "the consent line reads as before", consent)
    errs = [unescape(x) for x in re.findall(r'<p class="error" id="topic-error">([^<]*)</p>', r.text)]
    t.eq(errs, ["Please choose a topic."], "the same message sits next to the select")
    r = ask(b, topic="Astrology")
    _, items = summary(r.text)
    t.eq(items, [("#topic", "Please choose a topic from the list.")],
         "a topic not in the list: one summary link, to the select")
    r = ask(b, email="not-an-email")
    _, items = summary(r.text)
    t.ok(len(items) == 1 and items[0][0] == "#email", "a bad email: one summary link, to #email", items)
    r = ask(b, email="summary-ok@example.com")
    loc = r.header("Location") or ""
    t.ok(r.status == 303 and loc.endswith("?new=1#emailed"),
         "the accepted form's 303 carries new=1 and its own fragment (not the action's #errors)", loc)


def test_emailed_once():
    b = Browser(site)
    r = ask(b, email="Keep.Link@example.com")
    loc = r.header("Location")
    path = track_path(loc)
    first = b.get(loc[len(site.base):].split("#")[0])
    line = "We have emailed this page's link to Keep.Link@example.com — keep it"
    t.ok(first.status == 200 and line in unescape(first.text) and 'id="emailed"' in first.text,
         "the first view after the 303 says where the link was emailed", first.text[:1500])
    plain = b.get(path)
    t.ok("We have emailed" not in plain.text and "Keep.Link@example.com" not in plain.text,
         "the link from the email (no new=1) does not say it, nor show the address")
    oid = site.sql1("SELECT id FROM orders WHERE email = 'Keep.Link@example.com'")
    site.sql("UPDATE orders SET created_at = created_at - 11 * 60 WHERE id = ?", oid)
    late = b.get(path + "?new=1")
    t.ok(late.status == 200 and "We have emailed" not in late.text and "Keep.Link@example.com" not in late.text,
         "a new=1 link opened later (copied, bookmarked) shows no address")


def test_unpaid_clock():
    b = Browser(site)
    path = track_path(ask(b, email="clock@example.com").header("Location"))
    page = b.get(path).text
    t.ok("I start the 48 hours as soon as your payment arrives." in page,
         "an unpaid order says when the clock starts")
    t.ok("promised by" not in page, "an unpaid order shows no due date")
    oid = site.sql1("SELECT id FROM orders WHERE email = 'clock@example.com'")
    tok = admin_csrf(staff)
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
    t.eq(r.status, 303, "the consultant records the payment")
    page = b.get(path).text
    t.ok("promised by" in page and "I start the 48 hours" not in page,
         "once paid, the page shows the due date and no longer the clock line")


def test_followup_confirmation():
    c, path, oid, _ = answered_order(site, staff, "confirm@example.com")
    _, hidden = c.form(path)
    r = c.post(path + "/messages", {"message": "And on Mondays?", "csrf_token": hidden["csrf_token"]})
    loc = r.header("Location") or ""
    t.ok(r.status == 303 and loc.endswith(path + "?followup=sent#notice"),
         "the 303 after a follow-up carries the confirmation", loc)
    page = c.get(loc[len(site.base):].split("#")[0]).text
    notice = re.search(r'<div class="notice" id="notice" role="status"><p>([^<]*)</p>', page)
    t.ok(notice and "Your follow-up question was sent" in notice.group(1),
         "the page shows a clear confirmation", notice and notice.group(1))
    t.ok(notice and page.index(notice.group(0)) < page.index('class="card thread"'),
         "at the top, before the thread")
    t.ok("Your follow-up question was sent" not in c.get(path).text,
         "the page opened from its link has no such confirmation")
    other = answered_order(site, staff, "confirm2@example.com")
    t.ok("Your follow-up question was sent" not in other[0].get(other[1] + "?followup=sent").text,
         "followup=sent on an order without a follow-up confirms nothing")


def test_rating_yes():
    c, path, oid, _ = answered_order(site, staff, "rate-yes@example.com")
    _, hidden = c.form(path + "?rating=yes")
    r = c.post(path + "/rating", {"rating": "yes", "csrf_token": hidden["csrf_token"]})
    t.ok(r.status == 303 and (r.header("Location") or "").endswith(path + "?rating=yes"),
         "the rating's POST answers 303 to the thank-you page", r.header("Location"))
    t.eq(site.sql1("SELECT rating FROM orders WHERE id = ?", oid), "yes", "the rating is stored")
    page = c.get(path + "?rating=yes")
    t.ok(page.status == 200 and "Thanks — your rating was saved" in unescape(page.text) and
         "was recorded" not in page.text and 'name="rating"' not in page.text,
         "the page the redirect opens says the rating was saved, with no button to post again")
    audits = site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'rated'", oid)
    c.get(path + "?rating=yes")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'rated'", oid), audits,
         "a reload of the thank-you page posts nothing")


def test_rating_no():
    c, path, oid, rpath = answered_order(site, staff, "rate-no@example.com")
    page = c.get(path + "?rating=no")
    link = re.search(r'<a href="(/r/[A-Za-z0-9_-]+)" id="refund-link">', page.text)
    t.ok(page.status == 200 and link is not None, "the 'no' page gives the refund link itself")
    t.ok(link and c.get(link.group(1)).status == 200, "and the link opens the refund page")
    t.ok('name="feedback"' in page.text and 'value="no"' in page.text,
         "the 'no' page has a form to say what was missing")
    before = site.sql1("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid)
    _, hidden = c.form(path + "?rating=no")
    words = "Nothing about <b>winter</b> opening hours."
    r = c.post(path + "/rating", {"rating": "no", "feedback": words, "csrf_token": hidden["csrf_token"]})
    t.ok(r.status == 303 and (r.header("Location") or "").endswith(path + "?rating=no"),
         "the feedback's POST answers 303 to the thank-you page", r.header("Location"))
    t.eq((site.sql1("SELECT rating FROM orders WHERE id = ?", oid),
          site.sql1("SELECT body FROM feedback WHERE order_id = ?", oid)), ("no", words),
         "the rating and the feedback are stored")
    t.eq(site.sql1("SELECT count(*) FROM refund_requests WHERE order_id = ?", oid), before,
         "the feedback asks for no money back")
    t.eq(site.sql1("SELECT status FROM orders WHERE id = ?", oid), "answered", "the order stays answered")
    thanks = c.get(path + "?rating=no")
    t.ok("Thanks — your rating was saved" in unescape(thanks.text), "the thank-you page says the rating was saved")
    t.ok("winter" not in c.get(path).text and "winter" not in thanks.text,
         "the feedback is never on the client's pages")
    admin = staff.get("/admin/orders/%d" % oid).text
    t.ok('id="feedback"' in admin and "Nothing about &lt;b&gt;winter&lt;/b&gt; opening hours." in admin,
         "the consultant sees the feedback on the order page, escaped")
    t.ok(site.sql1("SELECT count(*) FROM audit WHERE order_id = ? AND action = 'feedback given'", oid) == 1,
         "the feedback is audited")
    plan = " ".join(str(row) for row in site.sql(
        "EXPLAIN QUERY PLAN SELECT body, created_at FROM feedback WHERE order_id = ? ORDER BY id", oid))
    t.ok("feedback_order" in plan, "the order page reads feedback through its index", plan)
    c.form(path + "?rating=no")
    r = c.post(path + "/rating", {"rating": "no", "csrf_token": hidden["csrf_token"]})
    t.ok(r.status == 303 and site.sql1("SELECT count(*) FROM feedback WHERE order_id = ?", oid) == 1,
         "a rating sent without feedback stores no empty feedback")
    c.post(rpath, {"reason": "", "csrf_token": c.form(rpath)[1]["csrf_token"]})
    page = c.get(path + "?rating=no").text
    t.ok('id="refund-link"' not in page and "You have asked for your money back" in page,
         "once a refund is asked for, the 'no' page says so instead of the link")


for fn in (test_error_summary, test_emailed_once, test_unpaid_clock, test_followup_confirmation,
           test_rating_yes, test_rating_no):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
