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


# --- the default settings file ----------------------------------------------------
def env_default(site, default):
    """site's environment without $PMB_CONFIG, and with the configured
    default file replaced (for the tests) by default."""
    e = site.env()
    e.pop("PMB_CONFIG", None)
    e["PMB_DEFAULT_CONFIG"] = default
    return e


def test_default_settings_file():
    s = Site(settings={"site_name": "Defaulted Site"})
    try:
        p = ctl(s, "check", env=env_default(s, s.conf_path))
        t.ok(p.returncode == 0 and "settings: ok (%s)" % s.conf_path in p.stdout,
             "without --config or $PMB_CONFIG pmbctl reads the default file and names it",
             p.stdout + p.stderr)
        missing = os.path.join(s.dir, "no-such.conf")
        p = ctl(s, "check", env=env_default(s, missing))
        t.ok("settings: ok (no settings file: defaults)" in p.stdout,
             "with no default file pmbctl says it runs on defaults", p.stdout)
        other = os.path.join(s.dir, "other.conf")
        with open(other, "w") as f:
            f.write("site_name = Other Site\n")
        e = env_default(s, other)
        e["PMB_CONFIG"] = s.conf_path
        p = ctl(s, "check", env=e)
        t.ok("settings: ok (%s)" % s.conf_path in p.stdout, "$PMB_CONFIG wins over the default file", p.stdout)
        help_text = subprocess.run([PMBCTL, "--help"], capture_output=True, text=True).stdout
        t.ok(re.search(r"/pmb/pmb\.conf if it exists", help_text) is not None,
             "pmbctl --help names the configured default file", help_text[-300:])
        # pmb.fcgi on its own socket, started as a unit's ExecStart would.
        log_path = os.path.join(s.dir, "fcgi.log")
        with open(log_path, "wb") as log:
            srv = subprocess.Popen([PMB, "--listen", "unix:" + s.sock, "--workers", "1"],
                                   env=env_default(s, s.conf_path), stdout=log, stderr=log)
        try:
            end = time.time() + 10
            while time.time() < end and "serving with" not in open(log_path).read():
                time.sleep(0.05)
            text = open(log_path).read()
            t.ok("pmb.fcgi: settings from %s" % s.conf_path in text,
                 "pmb.fcgi's start-up log line names the default file it read", text)
        finally:
            srv.terminate()
            srv.wait(timeout=20)
        r = s.cgi("GET", "/", env={"PMB_CONFIG": None, "PMB_DEFAULT_CONFIG": s.conf_path})
        t.ok("Defaulted Site" in r.text, "pmb.fcgi serves with the default file's settings")
    finally:
        s.cleanup()


TESTS = [test_hsts, test_default_settings_file]

if __name__ == "__main__":
    for fn in TESTS:
        t.run(fn)
    sys.exit(t.done())
