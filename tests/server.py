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
MIGRATIONS = len([n for n in os.listdir(os.path.join(SRC, "sql")) if re.match(r"\d{3}_.*\.sql$", n)])


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


def older_database(path):
    """Puts a database at the schema before the newest migration at path,
    as the previous version of pmb left it."""
    from pmbtest import schema_at
    schema_at(path, MIGRATIONS - 1)


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
        p = ctl(s, "backup")
        t.ok(p.returncode == 0 and os.path.isdir(os.path.join(store, "backups")),
             "backup as root into the default backup_dir succeeds", p.stdout + p.stderr)
        offsite = os.path.join(s.dir, "offsite", "daily")
        p = ctl(s, "backup", offsite + "/")
        t.ok(p.returncode == 0 and len(os.listdir(offsite)) == 2,
             "backup as root into a missing folder under root's makes it and writes the pair",
             p.stdout + p.stderr)
        t.eq(not_nobodys(os.path.join(s.dir, "offsite")), [],
             "the backup folders it made and the pair in them are nobody's")
        t.eq(stat.S_IMODE(os.stat(offsite).st_mode), 0o750, "the backup folder it made is mode 0750")
        os.chmod(s.conf["key_file"], 0o640)
        p = ctl(s, "key", "rotate")
        st = os.stat(s.conf["key_file"])
        t.ok(p.returncode == 0 and "key 2 now signs" in p.stdout, "key rotate as root succeeds", p.stderr)
        t.eq((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY.pw_uid, NOBODY.pw_gid, 0o640),
             "key rotate as root keeps the key file's owner, group and mode (0640 stays 0640)")
        t.eq(not_nobodys(store), [], "key rotate as root leaves nothing that is not nobody's")
        p = ctl(s, "user", "list")
        t.ok(p.returncode == 0 and "sam" in p.stdout, "the store works after all that", p.stdout + p.stderr)
        # Migrating an older database (made here, then given to nobody):
        # the backup it takes first.
        older_database(s.db)
        os.chown(s.db, NOBODY.pw_uid, NOBODY.pw_gid)
        p = ctl(s, "migrate")
        t.ok(p.returncode == 0 and "backed up" in p.stdout and "1 migrations applied" in p.stdout,
             "migrate as root backs up, then migrates", p.stdout + p.stderr)
        t.eq(not_nobodys(store), [], "migrate's backup as root leaves nothing that is not nobody's")
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
        # A new store in a root-owned folder, no key file yet: the settings
        # file given to the group of a user named as it (root:daemon 0640,
        # as the package's root:pmb) names the service; in root's group, a
        # root-only install.
        fresh = os.path.join(s.dir, "fresh")
        os.makedirs(fresh, mode=0o755)
        conf2 = os.path.join(s.dir, "fresh.conf")
        with open(conf2, "w") as f:
            f.write("database = %s/pmb.db\nkey_file = %s/pmb.key\n" % (fresh, fresh))
        daemon = pwd.getpwnam("daemon")     # base-passwd: user and group daemon
        os.chown(conf2, 0, daemon.pw_gid)
        os.chmod(conf2, 0o640)
        p = subprocess.run([PMBCTL, "--config", conf2, "init"], capture_output=True, text=True)
        t.ok(p.returncode == 1 and ("runuser -u daemon -- %s --config %s init" % (PMBCTL, conf2)) in p.stderr
             and os.listdir(fresh) == [],
             "init as root, the settings file in daemon's group: refused with the runuser line, nothing made",
             p.stderr)
        os.chown(conf2, 0, 0)
        p = subprocess.run([PMBCTL, "--config", conf2, "init"], capture_output=True, text=True)
        t.ok(p.returncode == 0 and os.stat(os.path.join(fresh, "pmb.db")).st_uid == 0,
             "the settings file in root's group: a root-only install, init runs as root", p.stderr)
    finally:
        s.cleanup()


# --- backups that restore -----------------------------------------------------------
def pairs(folder):
    """The backup pairs' names (without .db/.key) in folder, sorted, and
    whether each has both files."""
    names = sorted(os.listdir(folder))
    stems = sorted({n[:-3] for n in names if n.endswith(".db")} | {n[:-4] for n in names if n.endswith(".key")})
    return stems, all(st + ".db" in names and st + ".key" in names for st in stems)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_backup_restore():
    from pmbtest import Browser, ask, track_path
    s = Site(users={"sam": "correct horse battery staple"})
    fresh = None
    try:
        link = track_path(ask(Browser(s), email="backup@example.com").header("Location"))
        t.eq(s.cgi("GET", link).status, 200, "a link signed before the backup works")
        os.chmod(s.conf["key_file"], 0o640)
        dest = os.path.join(s.dir, "no", "such", "folder")
        p = ctl(s, "backup", dest)
        t.ok(p.returncode == 1 and "name a backup FILE.db, or a folder" in p.stderr and not os.path.exists(dest),
             "backup of a name that is neither FILE.db nor a folder is refused, not guessed at", p.stderr)
        p = ctl(s, "backup", dest + "/")
        stems, whole = pairs(dest)
        t.ok(p.returncode == 0 and len(stems) == 1 and whole and re.fullmatch(r"pmb-\d{8}-\d{6}", stems[0]),
             "backup DIR into a missing folder makes it and writes one pair pmb-DATE-TIME.db/.key",
             p.stdout + p.stderr + repr(os.listdir(dest) if os.path.isdir(dest) else None))
        t.eq(mode(dest), 0o750, "the folder it made is mode 0750")
        db, key = (os.path.join(dest, stems[0] + x) for x in (".db", ".key"))
        t.eq((mode(db), mode(key)), (mode(s.db), 0o640), "the pair is moded like the originals")
        t.eq(open(key).read(), open(s.conf["key_file"]).read(), "the .key is the key file")
        # Restore into a fresh folder, with settings that point there.
        fresh = Site()
        for name in ("pmb.db", "pmb.key"):
            os.remove(os.path.join(fresh.dir, name))
        p = ctl(fresh, "restore", db)
        t.ok(p.returncode == 0 and "restored" in p.stdout, "restore FROM.db into a fresh folder",
             p.stdout + p.stderr)
        t.ok(fresh.dump() == s.dump() and len(fresh.dump()["orders"]) == 1,
             "the restored database holds the same rows")
        t.eq(open(fresh.conf["key_file"]).read(), open(s.conf["key_file"]).read(), "the key file is restored")
        t.eq(fresh.cgi("GET", link).status, 200, "the link signed before verifies on the restored store")
        p = ctl(fresh, "check")
        t.ok("schema: version %d, ok" % MIGRATIONS in p.stdout and "integrity: ok" in p.stdout,
             "check finds the restored database whole", p.stdout + p.stderr)
        # Restore refuses while anything runs on the store.
        fresh.start(workers=1)
        t.eq(fresh.get(link).status, 200, "the restored site serves the old link through nginx")
        key_before = open(fresh.conf["key_file"]).read()
        p = ctl(fresh, "restore", db)
        t.ok(p.returncode == 1 and "stop them first" in p.stderr and "restore stops nothing" in p.stderr,
             "restore refuses while pmb.fcgi runs, saying it stops nothing", p.stderr)
        fresh.stop()
        mail = subprocess.Popen([PMBCTL, "mail", "run"], env=fresh.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            p = ctl(fresh, "restore", db)
            t.ok(p.returncode == 1 and "stop them first" in p.stderr, "restore refuses while the mail daemon runs",
                 p.stderr)
        finally:
            mail.terminate()
            mail.communicate(timeout=20)
        holder = sqlite3.connect(fresh.db)
        holder.execute("SELECT count(*) FROM orders").fetchall()
        try:
            p = ctl(fresh, "restore", db)
            t.ok(p.returncode == 1 and "process %d has" % os.getpid() in p.stderr,
                 "restore refuses while another process has the database open, naming it", p.stderr)
        finally:
            holder.close()
        t.eq(open(fresh.conf["key_file"]).read(), key_before, "a refused restore changed nothing")
        p = ctl(fresh, "restore", os.path.join(dest, "nothing.db"))
        t.ok(p.returncode == 1 and "nothing.db" in p.stderr, "restore of a missing backup fails naming it", p.stderr)
        # backup_keep: a backup into a folder keeps that many pairs.
        s.conf["backup_keep"] = "3"
        s.write_conf()
        kept = os.path.join(s.dir, "kept")
        os.mkdir(kept)
        for i in range(5):
            e = dict(s.env(), PMB_TEST_NOW=str(1800000000 + 86400 * i))
            ctl(s, "backup", kept, env=e)
        stems, whole = pairs(kept)
        t.eq(stems, ["pmb-20270117-080000", "pmb-20270118-080000", "pmb-20270119-080000"],
             "backup_keep = 3: five daily backups leave the newest three")
        t.ok(whole, "each kept backup has its .db and its .key")
        ctl(s, "backup", kept, env=dict(s.env(), PMB_TEST_NOW=str(1800000000 + 86400 * 4)))
        t.eq(pairs(kept)[0], ["pmb-20270118-080000", "pmb-20270119-080000", "pmb-20270119-080000-2"],
             "a second backup in the same second gets -2, and counts as the newest")
        # migrate takes a backup first, into backup_dir (default: beside the database).
        older_database(s.db)
        p = ctl(s, "migrate")
        auto = os.path.join(s.dir, "backups")
        t.ok(p.returncode == 0 and os.path.isdir(auto) and len(pairs(auto)[0]) == 1,
             "migrate with a migration to apply backs up into backups/ beside the database first",
             p.stdout + p.stderr)
        c = sqlite3.connect(os.path.join(auto, pairs(auto)[0][0] + ".db"))
        t.eq(c.execute("PRAGMA user_version").fetchone()[0], MIGRATIONS - 1,
             "the migration's backup holds the database as it was before")
        c.close()
        p = ctl(s, "migrate")
        t.ok(p.returncode == 0 and len(pairs(auto)[0]) == 1, "migrate with nothing to apply makes no backup",
             p.stdout + p.stderr)
        s.conf["backup_dir"] = os.path.join(s.dir, "elsewhere")
        s.write_conf()
        p = ctl(s, "backup")
        t.ok(p.returncode == 0 and len(pairs(s.conf["backup_dir"])[0]) == 1,
             "backup without FILE or DIR writes into backup_dir", p.stdout + p.stderr)
        # The daily unit.
        cmd = unit_value("pmb-backup.service", "ExecStart").replace("/usr/local/bin/pmbctl", PMBCTL) \
            .replace("/etc/pmb/pmb.conf", s.conf_path).split()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        t.ok(p.returncode == 0 and len(pairs(s.conf["backup_dir"])[0]) == 2,
             "pmb-backup.service's ExecStart makes a backup into backup_dir", p.stdout + p.stderr)
        t.eq(unit_value("pmb-backup.timer", "OnCalendar"), "*-*-* 02:30:00", "pmb-backup.timer runs it daily")
    finally:
        s.cleanup()
        if fresh is not None:
            fresh.cleanup()


def unit_value(name, key):
    with open(os.path.join(SRC, "conf", "systemd", name)) as f:
        for line in f:
            if line.startswith(key + "="):
                return line[len(key) + 1:].strip()
    raise RuntimeError("conf/systemd/%s has no %s=" % (name, key))


# --- pmbctl check --strict --------------------------------------------------------------
PRODUCTION = {
    "base_url": "https://consult.brightwave.co.uk",
    "mail_transport": "smtp",
    "smtp_url": "smtp://127.0.0.1:25",
    "payment_instructions": "Pay by bank transfer to Brightwave Ltd, sort code 12-34-56, "
                            "account 12345678, with your order number as the reference.",
    "admin_email": "sam@brightwave.co.uk",
    "mail_from": "Sam Carter <sam@brightwave.co.uk>",
}


def sample_value(name):
    """The value conf/pmb.conf shows for setting name."""
    with open(os.path.join(SRC, "conf", "pmb.conf")) as f:
        for line in f:
            m = re.match(r"^# %s = (.*)$" % name, line)
            if m:
                return m.group(1)
    raise RuntimeError("conf/pmb.conf shows no " + name)


def test_check_strict():
    s = Site(settings=PRODUCTION, users={"sam": "correct horse battery staple"})
    try:
        p = ctl(s, "check", "--strict")
        t.ok(p.returncode == 0 and "warning" not in p.stdout + p.stderr,
             "a good production file passes check --strict", p.stdout + p.stderr)

        def strict_fails(over, message, what, drop=()):
            s.conf = dict(s.conf, **over)
            for k in drop:
                s.conf.pop(k, None)
            s.write_conf()
            try:
                p = ctl(s, "check", "--strict")
                lines = [ln for ln in p.stdout.splitlines() if ln.startswith("warning: ")]
                t.ok(p.returncode == 1 and len(lines) == 1 and message in lines[0]
                     and "--strict" in p.stderr, "check --strict fails on " + what,
                     p.stdout + p.stderr)
                return p
            finally:
                s.conf = dict(s.conf, **PRODUCTION)
                s.write_conf()

        strict_fails({"base_url": "http://consult.brightwave.co.uk"}, "is not https://", "base_url on http")
        s.conf["base_url"] = "http://consult.brightwave.co.uk"
        s.write_conf()
        p = ctl(s, "check")
        t.ok(p.returncode == 0 and "warning: base_url http://consult.brightwave.co.uk is not https://" in p.stdout,
             "without --strict the same file passes check, with the warning printed", p.stdout + p.stderr)
        s.conf["base_url"] = PRODUCTION["base_url"]
        s.write_conf()
        for url in ("https://127.0.0.1:8443", "https://localhost", "https://[::1]:8443",
                    "https://pmb.localhost"):
            strict_fails({"base_url": url}, "is this machine", "base_url " + url)
        strict_fails({"mail_transport": "dir"}, "mail_transport = dir", "mail_transport = dir")
        strict_fails({"payment_instructions": sample_value("payment_instructions")},
                     "placeholder bank details", "the sample's payment_instructions")
        strict_fails({}, "payment_instructions still holds", "payment_instructions left at its default",
                     drop=["payment_instructions"])
        for addr in ("sam@example.com", "sam@EXAMPLE.org", "sam@example.net", "sam@shop.example",
                     "sam@shop.test", "sam@shop.invalid", "sam@mail.localhost", "sam@mail.example.com"):
            strict_fails({"admin_email": addr}, "admin_email %s is not set to a real address" % addr,
                         "admin_email " + addr)
        strict_fails({}, "admin_email sam@example.com", "admin_email left at its default", drop=["admin_email"])
        strict_fails({"mail_from": "Sam <sam@example.net>"}, "mail_from Sam <sam@example.net>",
                     "mail_from on an example domain")
        strict_fails({}, "mail_from", "mail_from left at its default", drop=["mail_from"])
        s.sql("UPDATE users SET disabled = 1")
        strict_fails({}, "no staff user", "no staff user who can sign in")
        s.sql("UPDATE users SET disabled = 0")
        os.chmod(s.conf["key_file"], 0o640)
        p = ctl(s, "check", "--strict")
        t.ok(p.returncode == 1 and "key file %s is mode 0640: others can read it" % s.conf["key_file"] in p.stdout,
             "check --strict fails on a group-readable key file", p.stdout + p.stderr)
        os.chmod(s.conf["key_file"], 0o600)
        os.chmod(s.db, 0o644)
        strict_fails({}, "database %s is mode 0644" % s.db, "a world-readable database")
        os.chmod(s.db, 0o600)
        if ROOT:
            os.chown(s.db, NOBODY.pw_uid, NOBODY.pw_gid)
            strict_fails({}, "database %s belongs to uid %d, not to the owner" % (s.db, NOBODY.pw_uid),
                         "a database not owned by its folder's owner")
            os.chown(s.db, 0, 0)
            os.chown(s.conf["key_file"], NOBODY.pw_uid, NOBODY.pw_gid)
            p = subprocess.run([PMBCTL, "check", "--strict"], env=s.env(), capture_output=True, text=True)
            t.ok(p.returncode == 1 and "runuser -u nobody" in p.stderr,
                 "a key file owned by another user than the folder's: check as root refuses with runuser",
                 p.stdout + p.stderr)
            os.chown(s.conf["key_file"], 0, 0)
        else:
            t.skip("owners in check --strict", "not root: cannot give a file to another user")
        p = ctl(s, "check", "--strict")
        t.ok(p.returncode == 0, "and the good file passes again", p.stdout + p.stderr)
    finally:
        s.cleanup()


# --- mail that arrives -------------------------------------------------------------------
def smtp_servers(n):
    """n real SMTP servers (aiosmtpd) on loopback ports, each keeping what
    it accepts and answering DATA with a line that names it; or None when
    aiosmtpd is missing (a skip, or under CI=true a failure)."""
    try:
        import aiosmtpd  # noqa: F401
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        t.missing("mail test and SIGHUP", "python3-aiosmtpd")
        return None
    import email
    import email.utils
    import logging
    from pmbtest import free_port
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    class Keep:
        def __init__(self, name):
            self.name = name
            self.got = []

        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.original_content)
            self.got.append({"to": list(envelope.rcpt_tos), "from": email.utils.parseaddr(msg["From"]),
                             "subject": msg["Subject"]})
            return "250 2.0.0 queued by %s" % self.name

    out = []
    for i in range(n):
        keep = Keep("server-%d" % i)
        c = Controller(keep, hostname="127.0.0.1", port=free_port())
        c.start()
        c.keep = keep
        out.append(c)
    return out


def wait_for(cond, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_mail_test_and_sighup():
    from pmbtest import Browser, ask
    servers = smtp_servers(2)
    if servers is None:
        return
    a, b = servers
    s = Site(settings={"mail_transport": "smtp", "smtp_url": "smtp://127.0.0.1:%d" % a.port,
                       "smtp_timeout": "5", "mail_from": "Sam Carter <sam@brightwave.co.uk>"})
    daemon = None
    try:
        p = ctl(s, "mail", "test", "client@shop.example.org")
        t.ok(p.returncode == 0 and "< 250 2.0.0 queued by server-0" in p.stdout,
             "mail test ADDRESS prints the SMTP server's answer", p.stdout + p.stderr)
        got = a.keep.got
        t.ok(len(got) == 1 and got[0]["to"] == ["client@shop.example.org"]
             and got[0]["from"] == ("Sam Carter", "sam@brightwave.co.uk") and "Test email" in got[0]["subject"],
             "the test email reached the SMTP server, from mail_from, to ADDRESS", got)
        t.eq(s.sql1("SELECT count(*) FROM outbox"), 0, "mail test stores nothing in the outbox")
        from pmbtest import free_port
        s.conf["smtp_url"] = "smtp://127.0.0.1:%d" % free_port()
        s.write_conf()
        p = ctl(s, "mail", "test", "client@shop.example.org")
        t.ok(p.returncode == 1 and "mail test: smtp:" in p.stderr,
             "mail test with no SMTP server there fails with curl's reason", p.stdout + p.stderr)
        s.conf["smtp_url"] = "smtp://127.0.0.1:%d" % a.port
        s.write_conf()

        # The daemon re-reads its settings on SIGHUP.
        log_path = os.path.join(s.dir, "mail.log")
        log = open(log_path, "w")
        daemon = subprocess.Popen([PMBCTL, "mail", "run"], env=s.env(), stdout=log, stderr=log)

        def delivered(to, server):
            return wait_for(lambda: any(m["to"] == [to] for m in server.keep.got))

        def ask_and_deliver(to, server):
            """An order by to, whose confirmation the daemon sends at once
            (SIGUSR1); whether server got it."""
            ask(Browser(s), email=to)
            daemon.send_signal(signal.SIGUSR1)
            return delivered(to, server)

        def logged(text):
            return wait_for(lambda: text in open(log_path).read())

        t.ok(logged("settings from %s" % s.conf_path),
             "the mail daemon's first line names its settings file", open(log_path).read())
        t.ok(ask_and_deliver("first@shop.example.org", a),
             "before SIGHUP the daemon delivers to the first SMTP server", a.keep.got)
        s.conf["smtp_url"] = "smtp://127.0.0.1:%d" % b.port
        s.conf["mail_from"] = "Brightwave <hello@brightwave.co.uk>"
        s.write_conf()
        daemon.send_signal(signal.SIGHUP)
        t.ok(logged("settings re-read from %s" % s.conf_path),
             "SIGHUP: the daemon logs that it re-read the settings", open(log_path).read())
        t.ok(ask_and_deliver("second@shop.example.org", b),
             "after SIGHUP the next mail goes to the new smtp_url's server", b.keep.got)
        second = [m for m in b.keep.got if m["to"] == ["second@shop.example.org"]]
        t.ok(second and second[0]["from"] == ("Brightwave", "hello@brightwave.co.uk"),
             "after SIGHUP the next mail is from the new mail_from", second)
        t.ok(not any(m["to"] == ["second@shop.example.org"] for m in a.keep.got),
             "and nothing more went to the old server")
        ask(Browser(s), email="third@shop.example.org")
        with open(s.conf_path, "a") as f:
            f.write("no_such_setting = 1\n")
        daemon.send_signal(signal.SIGHUP)
        t.ok(logged("the settings stay as they were"),
             "SIGHUP with a bad file: the daemon logs it and keeps its settings", open(log_path).read())
        t.ok(delivered("third@shop.example.org", b),
             "after a bad file the daemon still delivers with the settings it had", b.keep.got)
        t.ok(daemon.poll() is None, "the daemon is still running")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=20)
        s.cleanup()
        for c in servers:
            c.stop()


TESTS = [test_hsts, test_default_settings_file, test_root_acts_as_owner, test_backup_restore,
         test_check_strict, test_mail_test_and_sighup]

if __name__ == "__main__":
    for fn in TESTS:
        t.run(fn)
    sys.exit(t.done())
