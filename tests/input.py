#!/usr/bin/env python3
"""What enters the program (issue 14, bugs 2, 3, 5, 8 and 9): one email
validator everywhere, addresses compared without regard to case, sign-in
throttled per address, invisible and text-direction characters refused
or shown, the CSRF token from the body only, websites with http(s) only,
and a sign-out that keeps the session when it cannot commit. Runs
pmb.fcgi as CGI, so that each request can come from its own address."""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, track_path, login, admin_csrf,  # noqa: E402
                     STAFF, SRC)

t = Tap()
site = Site(users=STAFF)
RLO = "\u202e"        # RIGHT-TO-LEFT OVERRIDE


def count(table, where="1", *args):
    return site.sql1("SELECT count(*) FROM %s WHERE %s" % (table, where), *args)


def lost(b, email, query=""):
    _, hidden = b.form("/lost")
    return b.post("/lost" + query, {"email": email, "csrf_token": hidden["csrf_token"]})


def test_one_email_validator():
    """Bug 2: a..b@example.com was taken by the form, then no mail to it
    could ever be sent (mime_addr_ok refused it)."""
    b = Browser(site, remote="192.0.2.31")
    before = count("orders")
    for bad in ("a..b@example.com", "a.@example.com", "a@example..com", "a@-x.example"):
        r = ask(b, email=bad)
        t.ok(r.status == 400 and 'aria-describedby="email-error"' in r.text,
             "POST /ask refuses %s next to its field" % bad, r.status)
    t.eq(count("orders"), before, "no order was stored for them")
    r = lost(b, "a..b@example.com")
    t.ok(r.status == 400 and count("outbox", "to_addr = 'a..b@example.com'") == 0,
         "POST /lost refuses a..b@example.com", r.status)
    r = ask(b, email="a.b@example.com")
    t.eq(r.status, 303, "a.b@example.com is taken")


def test_case_insensitive():
    """Bug 3: /lost and the per-address limit compare addresses without
    regard to case; the address stays as typed."""
    b = Browser(site, remote="192.0.2.32")
    t.eq(ask(b, email="Ann.Case@Example.COM").status, 303, "an order from Ann.Case@Example.COM")
    t.eq(site.sql1("SELECT email FROM orders WHERE id = (SELECT max(id) FROM orders)"),
         "Ann.Case@Example.COM", "the address is stored as typed")
    before = count("outbox", "kind = 'lost'")
    r = lost(Browser(site, remote="192.0.2.33"), "ann.case@example.com")
    t.eq(r.status, 200, "/lost with the address in lower case answers 200")
    t.eq(count("outbox", "kind = 'lost'"), before + 1,
         "/lost finds the order of Ann.Case@Example.COM from ann.case@example.com")
    body = site.sql1("SELECT body_text FROM outbox WHERE kind = 'lost' ORDER BY id DESC LIMIT 1")
    t.ok(body and "/o/" in body, "and mails its link")

    s = Site(settings={"rate_limit_email_per_hour": "2", "rate_limit_ip_per_hour": "0"})
    try:
        codes = [ask(Browser(s, remote="192.0.2.%d" % (40 + i)), email=e).status
                 for i, e in enumerate(("bea@x.example", "Bea@X.example", "BEA@x.EXAMPLE"))]
        t.eq(codes, [303, 303, 429], "the per-address limit counts Bea@X.example and bea@x.example as one")
    finally:
        s.cleanup()

    # The index serves the statement (the text of src/db_stmts.h).
    stmts = open(os.path.join(SRC, "src", "db_stmts.h")).read()
    m = re.search(r'X\(ORDERS_BY_EMAIL,((?:\s*"[^"]*")+)\)', stmts)
    sql = "".join(re.findall(r'"([^"]*)"', m.group(1)))
    plan = " | ".join(r[-1] for r in site.sql("EXPLAIN QUERY PLAN " + sql, "ann@x.example"))
    t.ok("USING INDEX orders_email_lower" in plan and "TEMP B-TREE" not in plan,
         "ORDERS_BY_EMAIL reads the index on lower(email), without a sort", plan)


def test_login_throttle():
    """Bug 5: failures from one address lock out that address (and that
    address with that username), never the right password from another."""
    s = Site(users={"amy": "amy's right password"})
    try:
        a = Browser(s, remote="192.0.2.50")
        codes = [login(a, "amy", "wrong %d" % i).status for i in range(6)]
        t.eq(codes, [401] * 5 + [429], "the sixth wrong password from one address answers 429")
        r = login(a, "amy", "amy's right password")
        t.ok(r.status == 429 and int(r.header("Retry-After") or 0) > 0,
             "from that address even the right password waits, with Retry-After")
        t.ok("Please wait 15 minutes" in r.text, "the wait is said in minutes",
             re.findall(r"Please wait[^.]*", r.text))
        s.sql("UPDATE rate_events SET at = at - 870 WHERE key LIKE 'login-%'")
        r = login(a, "amy", "amy's right password")
        t.ok(r.status == 429 and "Please wait 1 minute and" in r.text,
             "one minute left says \"1 minute\"", re.findall(r"Please wait[^.]*", r.text))
        b = Browser(s, remote="192.0.2.51")
        r = login(b, "amy", "amy's right password")
        t.eq(r.status, 303, "the right password from an address with no failures gets in")
        c = Browser(s, remote="192.0.2.52")
        codes = [login(c, "user%d" % i, "wrong").status for i in range(21)]
        t.eq(codes, [401] * 20 + [429], "twenty failures from one address on any usernames: 429")
        t.eq(login(c, "amy", "amy's right password").status, 429,
             "then that address waits for every username")
    finally:
        s.cleanup()


def test_invisible_characters():
    """Bug 8: refused in one-line fields, shown in long text, neutralised
    in subjects."""
    b = Browser(site, remote="192.0.2.60")
    before = count("orders")
    for name in ("Invoice " + RLO + "gpj.exe", "Ada\u200bBaker", "\ufeffAda", "Ada \u2066x\u2069"):
        r = ask(b, name=name, email="bidi@example.com")
        t.ok(r.status == 400 and "invisible or text-direction character" in r.text and
             "How do I get more people" in r.text,
             "a name with U+%04X is refused with a clear message, the form kept" %
             ord([c for c in name if ord(c) > 0x7f][0]), r.status)
    t.eq(count("orders"), before, "nothing was stored")
    r = ask(b, company="Acme " + RLO + "corp", email="bidi@example.com")
    t.eq(r.status, 400, "the company (one line) is refused too")

    q = "Please check the attached Invoice " + RLO + "gpj.exe and tell me what you think."
    r = ask(b, name="Ada Bidi", email="bidi@example.com", question=q)
    t.eq(r.status, 303, "a question (long text) with U+202E is taken")
    path = track_path(r.header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = 'bidi@example.com'")
    t.eq(site.sql1("SELECT body FROM messages WHERE order_id = ?", oid), q, "and stored as typed")
    staff = Browser(site)
    login(staff)
    page = staff.get("/admin/orders/%d" % oid)
    t.ok(page.status == 200 and RLO not in page.text and "Invoice [U+202E]gpj.exe" in page.text,
         "the consultant's page shows it as [U+202E]", page.status)
    page = b.get(path)
    t.ok(RLO not in page.text and "[U+202E]" in page.text, "so does the client's status page")

    # A name stored before names were checked reaches a subject.
    site.sql("UPDATE orders SET name = ? WHERE id = ?", "Invoice " + RLO + "gpj.exe", oid)
    now = site.sql1("SELECT strftime('%s','now')")
    site.sql("UPDATE orders SET status='answered', paid_at=?, answered_at=?, last_answered_at=? "
             "WHERE id=?", now, now, now, oid)
    _, hidden = b.form(path)
    r = b.post(path + "/messages", {"message": "One more thing about the invoice, please.",
                                    "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 303, "a follow-up is taken")
    subj = site.sql1("SELECT subject FROM outbox WHERE order_id = ? AND kind = 'followup_alert'", oid)
    t.ok(subj is not None and RLO not in subj and "Invoice [U+202E]gpj.exe" in subj,
         "the follow-up alert's subject shows the character", subj)


def test_csrf_body_only():
    """Bug 9: a CSRF token in a POST's query string does not count."""
    b = Browser(site, remote="192.0.2.70")
    ask(b, email="csrfq@example.com")
    _, hidden = b.form("/lost")
    before = count("outbox", "kind = 'lost'")
    r = b.post("/lost?csrf_token=" + hidden["csrf_token"], {"email": "csrfq@example.com"})
    t.eq(r.status, 403, "a token only in the query string answers 403")
    r = b.post("/lost?csrf_token=forged", {"email": "csrfq@example.com",
                                           "csrf_token": hidden["csrf_token"]})
    t.eq(r.status, 200, "the body's token counts, whatever the query says")
    t.eq(count("outbox", "kind = 'lost'"), before + 1, "only that POST sent mail")


def test_website_and_agree():
    """Bug 9: website takes http and https only, a bare name becomes
    https://; agree goes through the control-character check."""
    b = Browser(site, remote="192.0.2.80")
    for bad in ("javascript:alert(document.cookie)", "JavaScript://x.example/%0aalert(1)",
                "data:text/html;base64,PHNjcmlwdD4.x", "ftp://files.example", "mailto:a@x.example",
                "x.example:evil"):
        r = ask(b, website=bad, email="web@example.com")
        t.ok(r.status == 400 and 'aria-describedby="website-error"' in r.text,
             "website %s refused" % bad, r.status)
    for typed, stored in (("Bakery.example/menu", "https://Bakery.example/menu"),
                          ("http://bakery.example", "http://bakery.example"),
                          ("HTTPS://bakery.example:8443/x?y=1", "HTTPS://bakery.example:8443/x?y=1")):
        email = "web%d@example.com" % len(typed)
        r = ask(Browser(site, remote="192.0.2.81"), website=typed, email=email)
        t.eq((r.status, site.sql1("SELECT website FROM orders WHERE email = ?", email)),
             (303, stored), "website %s is stored as %s" % (typed, stored))
    r = ask(b, agree="yes\x01", email="agree@example.com")
    t.ok(r.status == 400 and count("orders", "email = 'agree@example.com'") == 0,
         "agree with a control character is refused", r.status)


def test_logout_after_commit():
    """Bug 9: the cookie is cleared only once the session's DELETE has
    committed; a failure answers 5xx and the session stays."""
    s = Site(users=STAFF, settings={"busy_timeout_ms": "100"})
    try:
        b = Browser(s)
        t.eq(login(b).status, 303, "signed in")
        tok = admin_csrf(b)
        lock = sqlite3.connect(s.db, timeout=1, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            r = b.post("/admin/logout", {"csrf_token": tok})
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        cleared = [c for c in r.header_all("Set-Cookie") if c.startswith("pmb_session=")]
        t.ok(r.status >= 500 and not cleared, "a sign-out that cannot commit: 5xx, the cookie kept",
             (r.status, cleared))
        t.eq(b.get("/admin").status, 200, "and the session still works")
        r = b.post("/admin/logout", {"csrf_token": tok})
        t.ok(r.status == 303 and "pmb_session" not in b.cookies and
             s.sql1("SELECT count(*) FROM sessions") == 0,
             "a sign-out that commits clears the cookie and the session")
    finally:
        s.cleanup()


for fn in (test_one_email_validator, test_case_insensitive, test_login_throttle,
           test_invisible_characters, test_csrf_body_only, test_website_and_agree,
           test_logout_after_commit):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
