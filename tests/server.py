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


# --- pmbctl as root ------------------------------------------------------------------
NOBODY = pwd.getpwnam("nobody")


def nobody_store(site):
    """Moves site's database and key file into a new folder "store" owned
    by nobody, as /var/lib/pmb is pmb's; returns its path."""
    os.chmod(site.dir, 0o755)
    store = os.path.join(site.dir, "store")
    os.mkdir(store, 0o750)
    os.chown(store, NOBODY.pw_uid, NOBODY.pw_gid)
    site.db = site.conf["database"] = os.path.join(store, "pmb.db")
    site.conf["key_file"] = os.path.join(store, "pmb.key")
    site.write_conf()
    return store


def not_nobodys(folder):
    """The files and folders under folder (itself included) that nobody
    does not own."""
    bad = []
    for d, dirs, files in os.walk(folder):
        for name in [d] + [os.path.join(d, f) for f in files + dirs]:
            st = os.lstat(name)
            if (st.st_uid, st.st_gid) != (NOBODY.pw_uid, NOBODY.pw_gid):
                bad.append("%s %d:%d" % (os.path.relpath(name, folder), st.st_uid, st.st_gid))
    return sorted(set(bad))


def test_root_acts_as_owner():
    if not ROOT:
        t.skip("pmbctl as root on a store owned by nobody", "not root: the tests run as uid %d" % os.geteuid())
        return
    s = Site()
    try:
        store = nobody_store(s)
        p = ctl(s, "init")
        t.ok(p.returncode == 0 and os.path.exists(s.db), "pmbctl init as root on nobody's folder succeeds",
             p.stdout + p.stderr)
        t.eq(not_nobodys(store), [], "init as root leaves nothing in the store that is not nobody's")
        t.eq(stat.S_IMODE(os.stat(s.conf["key_file"]).st_mode), 0o600, "init makes the key file mode 0600")
        p = ctl(s, "user", "add", "sam", input="correct horse battery staple\n")
        t.ok(p.returncode == 0, "user add as root succeeds", p.stderr)
        p = ctl(s, "migrate")
        t.ok(p.returncode == 0, "migrate as root succeeds", p.stderr)
        t.eq(not_nobodys(store), [], "user add and migrate as root leave nothing that is not nobody's")
        os.chmod(s.conf["key_file"], 0o640)
        p = ctl(s, "key", "rotate")
        st = os.stat(s.conf["key_file"])
        t.ok(p.returncode == 0 and "key 2 now signs" in p.stdout, "key rotate as root succeeds", p.stderr)
        t.eq((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY.pw_uid, NOBODY.pw_gid, 0o640),
             "key rotate as root keeps the key file's owner, group and mode (0640 stays 0640)")
        t.eq(not_nobodys(store), [], "key rotate as root leaves nothing that is not nobody's")
        p = ctl(s, "user", "list")
        t.ok(p.returncode == 0 and "sam" in p.stdout, "the store works after all that", p.stdout + p.stderr)
        # A folder that is root's own, with the service's key file inside.
        os.chown(store, 0, 0)
        os.chmod(store, 0o755)
        key_before = open(s.conf["key_file"]).read()
        p = ctl(s, "--config", s.conf_path, "key", "rotate")
        t.ok(p.returncode == 1 and "runuser -u nobody -- %s --config %s key rotate" % (PMBCTL, s.conf_path)
             in p.stderr, "a root-owned folder with nobody's key file: refused, with the command to run",
             p.stderr)
        t.eq(open(s.conf["key_file"]).read(), key_before, "the refused rotate left the key file alone")
        p = subprocess.run(["runuser", "-u", "nobody", "--", PMBCTL, "--config", s.conf_path, "key", "list"],
                           capture_output=True, text=True)
        t.ok(p.returncode == 0 and "2 (signs)" in p.stdout, "the advised runuser command line works",
             p.stdout + p.stderr)
    finally:
        s.cleanup()


TESTS = [test_hsts, test_default_settings_file, test_root_acts_as_owner]

if __name__ == "__main__":
    for fn in TESTS:
        t.run(fn)
    sys.exit(t.done())
