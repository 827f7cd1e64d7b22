#!/usr/bin/env python3
"""CGI-mode tests: pmb.fcgi run once per request with the environment and
stdin, as a CGI server runs it. The front-line gate and the error pages."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, Site, PMB  # noqa: E402

t = Tap()
site = Site()

CSP = ("default-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


def security_headers(r, what):
    t.eq(r.header("Content-Security-Policy"), CSP, what + ": Content-Security-Policy")
    t.eq(r.header("X-Content-Type-Options"), "nosniff", what + ": nosniff")
    t.eq(r.header("Referrer-Policy"), "no-referrer", what + ": Referrer-Policy")


def test_home():
    r = site.cgi("GET", "/")
    t.eq(r.status, 200, "GET / answers 200")
    t.eq(r.header("Content-Type"), "text/html; charset=utf-8", "GET / is UTF-8 HTML")
    security_headers(r, "GET /")
    t.ok("150.00 GBP" in r.text, "home page shows the price from the settings")
    t.ok("Within 48 hours" in r.text, "home page shows the answer promise")
    t.ok("100% money-back guarantee" in r.text and "30 days" in r.text,
         "home page spells out the guarantee and its window")
    t.ok('href="/ask"' in r.text, "home page links to the question form")
    t.ok('<link rel="stylesheet" href="/static/pmb.css">' in r.text, "layout links the stylesheet")
    t.eq(r.header("Strict-Transport-Security"), None, "no HSTS on an http base URL")


def test_settings_reach_pages():
    s = Site(settings={"site_name": "Brainy <Co>", "price": "99.5", "currency": "EUR",
                       "answer_hours": "24"})
    try:
        r = s.cgi("GET", "/")
        t.ok("99.50 EUR" in r.text, "price and currency come from the settings")
        t.ok("Within 24 hours" in r.text, "answer promise comes from the settings")
        t.ok("Brainy &lt;Co&gt;" in r.text and "Brainy <Co>" not in r.text,
             "site name from the settings is HTML-escaped")
    finally:
        s.cleanup()


def test_hsts_on_https():
    s = Site(settings={"base_url": "https://pmb.example"})
    try:
        r = s.cgi("GET", "/")
        t.ok((r.header("Strict-Transport-Security") or "").startswith("max-age="),
             "HSTS is sent when the base URL is https")
    finally:
        s.cleanup()


def test_head():
    r = site.cgi("HEAD", "/")
    t.eq(r.status, 200, "HEAD / answers 200")
    t.eq(r.body, b"", "HEAD / sends no body")


def test_not_found():
    r = site.cgi("GET", "/no/such/page")
    t.eq(r.status, 404, "unknown path answers 404")
    t.ok("Page not found" in r.text and "<html" in r.text and "Pick My Brain" in r.text,
         "404 is an HTML page in the site's layout")
    security_headers(r, "404 page")
    t.eq(r.header("Cache-Control"), "no-store", "error pages are not cached")


def test_method_not_allowed():
    r = site.cgi("POST", "/", body="a=1")
    t.eq(r.status, 405, "POST / answers 405")
    t.eq(r.header("Allow"), "GET, HEAD", "405 carries Allow")
    r = site.cgi("DELETE", "/")
    t.eq(r.status, 405, "DELETE / answers 405")


def test_bad_query():
    r = site.cgi("GET", "/?x=%zz")
    t.eq(r.status, 400, "?x=%zz answers 400")
    t.ok("percent-encoding" in r.text, "the 400 page says what was wrong")
    r = site.cgi("GET", "/?x=%ff%fe")
    t.eq(r.status, 400, "invalid UTF-8 in the query answers 400")
    r = site.cgi("GET", "/%zz")
    t.eq(r.status, 400, "malformed percent-encoding in the path answers 400")
    r = site.cgi("GET", "/?" + "&".join(["a=1"] * 1001))
    t.eq(r.status, 400, "more than 1,000 query fields answer 400")
    r = site.cgi("GET", "/?" + "&".join(["a=1"] * 1000))
    t.eq(r.status, 200, "1,000 query fields are accepted")


def test_bad_cookie():
    r = site.cgi("GET", "/", headers={"Cookie": "a=%zz"})
    t.eq(r.status, 400, "a malformed cookie answers 400")
    r = site.cgi("GET", "/", headers={"Cookie": "a=1; b=2"})
    t.eq(r.status, 200, "well-formed cookies are accepted")


def test_body_limits():
    form = "name=Ada&question=" + "x" * 30
    r = site.cgi("POST", "/ask", body=form, content_length="")
    t.eq(r.status, 400, "POST without Content-Length answers 400")
    t.ok("did not say how long" in r.text, "and says why")
    r = site.cgi("POST", "/ask", body=form, content_length="12abc")
    t.eq(r.status, 400, "a non-numeric Content-Length answers 400")
    r = site.cgi("POST", "/ask", body=form, content_length=str(len(form) + 50))
    t.eq(r.status, 400, "a body shorter than its Content-Length answers 400")
    t.ok("shorter than it said" in r.text, "and says why")
    r = site.cgi("POST", "/ask", body=b"", content_length=str(2 * 1024 * 1024))
    t.eq(r.status, 413, "a 2 MB Content-Length answers 413 without reading the body")
    r = site.cgi("POST", "/ask", body="&".join(["a=1"] * 1001))
    t.eq(r.status, 400, "a form body with more than 1,000 fields answers 400")
    r = site.cgi("POST", "/ask", body="name=%zz")
    t.eq(r.status, 400, "malformed percent-encoding in a form body answers 400")


def test_healthz():
    r = site.cgi("GET", "/healthz")
    t.eq(r.status, 200, "GET /healthz answers 200 when the database is fine")
    s = Site()
    try:
        os.unlink(s.db)
        r = s.cgi("GET", "/healthz")
        t.eq(r.status, 503, "GET /healthz answers 503 when the database is gone")
        t.ok("right back" in r.text, "the 503 page explains itself")
        t.ok(r.header("Retry-After") is not None, "503 carries Retry-After")
    finally:
        s.cleanup()


def test_log_line():
    site.cgi("GET", "/no-such-page-" + "x" * 60)
    err = site.last_stderr
    t.ok(" GET /[masked] 404 " in err, "log line masks long path segments", err)
    site.cgi("GET", "/?secret=hunter2")
    t.ok("hunter2" not in site.last_stderr and " GET / 200 " in site.last_stderr,
         "log line has method, path and status but no query string", site.last_stderr)


def test_bad_settings():
    bad = os.path.join(site.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("site_name = ok\nprice = lots\n")
    p = subprocess.run([PMB, "--config", bad], capture_output=True, text=True,
                       env={"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET"})
    t.ok(p.returncode != 0 and "bad.conf:2:" in p.stderr and "price" in p.stderr,
         "a bad setting stops start-up with file:line and the reason", p.stderr)
    p = subprocess.run([PMB, "--config", os.path.join(site.dir, "missing.conf")],
                       capture_output=True, text=True)
    t.ok(p.returncode != 0 and "missing.conf" in p.stderr,
         "a missing settings file named with --config stops start-up")


for fn in (test_home, test_settings_reach_pages, test_hsts_on_https, test_head,
           test_not_found, test_method_not_allowed, test_bad_query, test_bad_cookie,
           test_body_limits, test_healthz, test_log_line, test_bad_settings):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
