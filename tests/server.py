#!/usr/bin/env python3
"""Safe on a real server (issue 17): the hsts setting, the default
settings file, pmbctl run as root on a store owned by another user,
backups that restore, `pmbctl check --strict` on production settings,
`pmbctl mail test` and the mail daemon's SIGHUP. The real programs, each
run on a fresh site in a temporary folder."""
import os
import pwd
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, Site, PMB, PMBCTL, SRC  # noqa: E402

t = Tap()
ROOT = os.geteuid() == 0


def ctl(site, *args, input=None, env=None):
    """Runs pmbctl for site; returns the CompletedProcess, never raises."""
    return site.ctl(*args, input=input, check=False, env=env)


# --- hsts ------------------------------------------------------------------------
def test_hsts():
    want = {None: "max-age=31536000", "on": "max-age=31536000",
            "include-subdomains": "max-age=31536000; includeSubDomains", "off": None}
    for value, header in want.items():
        settings = {"base_url": "https://pmb.example"}
        if value is not None:
            settings["hsts"] = value
        s = Site(settings=settings)
        try:
            r = s.cgi("GET", "/")
            t.eq(r.header("Strict-Transport-Security"), header,
                 "hsts = %s on an https base URL sends %r" % (value or "(default)", header))
            if value is not None:
                s.conf["base_url"] = "http://pmb.example"
                s.write_conf()
                r = s.cgi("GET", "/")
                t.eq(r.header("Strict-Transport-Security"), None,
                     "hsts = %s on an http base URL sends none" % value)
        finally:
            s.cleanup()
    s = Site()
    try:
        s.conf["hsts"] = "yes"
        s.write_conf()
        p = ctl(s, "check")
        t.ok(p.returncode != 0 and "hsts: expected off, on or include-subdomains" in p.stderr,
             "hsts = yes is refused naming the values", p.stderr)
    finally:
        s.cleanup()


TESTS = [test_hsts]

if __name__ == "__main__":
    for fn in TESTS:
        t.run(fn)
    sys.exit(t.done())
