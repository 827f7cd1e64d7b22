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


for fn in (test_one_email_validator,):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
