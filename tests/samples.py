#!/usr/bin/env python3
"""The operator's samples in conf/ (issue 17), beyond what tests/servers.py
runs under each web server:

  - one permissions story in every sample: the socket pmb:www-data 0660,
    /etc/pmb/pmb.conf root:pmb 0640, and no step that puts the web
    server's user in a group that can read the settings;
  - TLS: conf/nginx-site.conf (port 80) passes "nginx -t" with no
    certificate anywhere, serves /.well-known/acme-challenge/ from the
    webroot certbot writes to, and redirects everything else to https;
  - conf/cron.d/pmb: each line is 5 time fields, a user and a command that
    names only pmbctl commands that exist; its lines run (the mail daemon
    under flock: one at a time, found by the README's pkill pattern,
    reloaded by SIGHUP; the backup; the search upkeep);
  - conf/logrotate.d/pmb: "logrotate -d" accepts it, and a real rotation
    (copytruncate) keeps pmb.fcgi writing to the emptied file."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Response, PMB, PMBCTL, BUILD, SRC, free_port,  # noqa: E402
                     fcgi_get)

t = Tap()
CONF = os.path.join(SRC, "conf")
HOST = "pmb.example.com"


def read(rel):
    with open(os.path.join(CONF, rel)) as f:
        return f.read()


def samples():
    """Every file under conf/, as paths relative to it."""
    out = []
    for d, _, files in os.walk(CONF):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), CONF))
    return sorted(out)


def subst(text, subs):
    for old, new in subs:
        if old not in text:
            raise RuntimeError("the sample no longer contains %r" % old)
        text = text.replace(old, new)
    return text


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def wait_for(fn, timeout=15):
    """Calls fn() until it returns something true; returns it (or the
    last false answer after timeout seconds)."""
    end = time.time() + timeout
    got = fn()
    while not got and time.time() < end:
        time.sleep(0.05)
        got = fn()
    return got


def text_of(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --- one permissions story ------------------------------------------------------
# Steps that would let the web server's user read pmb.conf (and with it
# smtp_password and the Stripe keys).
WIDENING = re.compile(r"adduser\s+www-data\s+pmb|usermod\s+(-\w+\s+)*-a?G\s*pmb\s+www-data|"
                      r"gpasswd\s+-a\s+www-data\s+pmb|chgrp\s+www-data|"
                      r"chown\s+\S*:www-data\s+\S*pmb\.conf|SupplementaryGroups=.*\bpmb\b")


def test_permissions_story():
    names = samples()
    t.ok(len(names) >= 15, "conf/ holds the samples (%d files)" % len(names), names)
    bad = ["%s: %s" % (n, m.group(0)) for n in names for m in WIDENING.finditer(read(n))]
    t.ok(not bad, "no sample adds www-data to the group pmb or gives it pmb.conf", "\n".join(bad))

    # Every sample that makes or uses the socket tells the whole story.
    socket_samples = [n for n in names if re.search(r"pmb\.sock\b", read(n))]
    t.ok({"systemd/pmb.socket", "systemd/pmb-listen.service", "spawn-fcgi.sh",
          "nginx-site-https.conf", "lighttpd.conf", "apache.conf"} <= set(socket_samples),
         "the socket's samples are found", socket_samples)
    for n in socket_samples:
        text = read(n)
        missing = [w for w in ("pmb:www-data", "0660", "root:pmb 0640") if w not in text]
        t.ok(not missing, "%s states the story: socket pmb:www-data 0660, pmb.conf root:pmb 0640"
             % n, "missing: %s" % missing)
        uses = re.findall(r"unix:(/\S*?)[|;\"\s]", text)
        t.ok(all(u == "/run/pmb/pmb.sock" for u in uses),
             "%s: every unix: socket is /run/pmb/pmb.sock" % n, uses)

    # Every command in a sample that makes or modes pmb.conf: root:pmb 0640.
    wrong = []
    for n in names:
        for line in read(n).splitlines():
            if not re.search(r"\b(install\s+-|chmod\s|chown\s|chgrp\s).*pmb\.conf\b", line) or \
                    "pmb.conf:" in line:
                continue
            cmd = re.search(r"\b(install|chmod|chown|chgrp)\b", line).group(1)
            need = {"install": ("-m 0640", "-o root", "-g pmb"), "chmod": ("0640",),
                    "chown": ("root:pmb",), "chgrp": ("chgrp pmb",)}[cmd]
            if not all(w in line for w in need):
                wrong.append("%s: %s" % (n, line.strip()))
    t.ok(not wrong, "every command that makes pmb.conf makes it root:pmb 0640", "\n".join(wrong))

    # The values that make it so.
    sock = read("systemd/pmb.socket")
    for kv in ("SocketUser=pmb", "SocketGroup=www-data", "SocketMode=0660",
               "ListenStream=/run/pmb/pmb.sock"):
        t.ok(re.search(r"(?m)^%s$" % re.escape(kv), sock), "pmb.socket: " + kv)
    listen = read("systemd/pmb-listen.service")
    t.ok(re.search(r"(?m)^ExecStartPre=\+/usr/bin/install -d -o pmb -g www-data -m 2750 /run/pmb$",
                   listen) and not re.search(r"(?m)^RuntimeDirectory=", listen),
         "pmb-listen.service: /run/pmb is made pmb:www-data 2750 (the socket takes its group)")
    spawn = read("spawn-fcgi.sh")
    for piece in ("user=${PMB_USER-pmb}", "sockgroup=${PMB_SOCKET_GROUP-www-data}",
                  '-M 0660', '-U "$user" -G "$sockgroup"'):
        t.ok(piece in spawn, "spawn-fcgi.sh: " + piece)
    for n in names:
        if n.startswith("systemd/") and n.endswith(".service"):
            text = read(n)
            t.ok(re.search(r"(?m)^User=pmb$", text) and re.search(r"(?m)^Group=pmb$", text),
                 "%s runs as pmb:pmb" % n)


# --- TLS: the port-80 sample before any certificate -----------------------------
def http_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request("GET", path, headers={"Host": HOST})
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def test_nginx_acme():
    if shutil.which("nginx") is None:
        t.missing("nginx -t on conf/nginx-site.conf", "nginx")
        return
    text = read("nginx-site.conf")
    t.ok("ssl_certificate" not in text and not re.search(r"listen\s+\S*443", text),
         "nginx-site.conf names no certificate and no port 443 (those are nginx-site-https.conf's)")
    https = read("nginx-site-https.conf")
    t.ok("ssl_certificate /etc/letsencrypt/live/" in https and "listen 80" not in https,
         "nginx-site-https.conf holds the https server, with certbot's certificate paths")
    site = Site(settings={"base_url": "https://" + HOST})
    nginx = None
    try:
        prefix = os.path.join(site.dir, "nginx")
        os.makedirs(os.path.join(prefix, "logs"))
        webroot = os.path.join(site.dir, "letsencrypt")
        challenge = os.path.join(webroot, ".well-known", "acme-challenge")
        os.makedirs(challenge)
        write(os.path.join(challenge, "x"), "x.token-thumbprint\n")
        port = free_port()
        write(os.path.join(prefix, "pmb-80.conf"), subst(text, [
            ("listen 80;", "listen 127.0.0.1:%d;" % port),
            ("listen [::]:80;", ""),
            ("/var/www/letsencrypt", webroot)]))
        nconf = write(os.path.join(prefix, "nginx.conf"), """
%(user)s
worker_processes 1;
pid %(p)s/nginx.pid;
error_log %(p)s/logs/error.log warn;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    client_body_temp_path %(p)s/body;
    fastcgi_temp_path %(p)s/fastcgi;
    proxy_temp_path %(p)s/proxy;
    uwsgi_temp_path %(p)s/uwsgi;
    scgi_temp_path %(p)s/scgi;
    include %(p)s/pmb-80.conf;
}
""" % {"p": prefix, "user": "user root root;" if os.geteuid() == 0 else ""})
        log = os.path.join(prefix, "logs", "error.log")
        args = ["nginx", "-p", prefix + "/", "-e", log, "-c", nconf]
        p = subprocess.run(args + ["-t"], capture_output=True, text=True, timeout=30)
        t.ok(p.returncode == 0 and "test is successful" in p.stderr,
             "nginx -t passes on conf/nginx-site.conf with no certificate", p.stderr)
        nginx = subprocess.Popen(args + ["-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)

        def up():
            try:
                return http_get(port, "/.well-known/acme-challenge/x")
            except OSError:
                return None
        r = wait_for(up)
        t.ok(r is not None and r.status == 200 and r.body == b"x.token-thumbprint\n",
             "port 80 serves /.well-known/acme-challenge/x from the webroot", r)
        r = http_get(port, "/.well-known/acme-challenge/missing")
        t.eq(r.status, 404, "a challenge that is not there is a 404, not a redirect")
        r = http_get(port, "/")
        t.ok(r.status == 301 and r.header("Location") == "https://%s/" % HOST,
             "port 80 redirects / to https", r)
        r = http_get(port, "/o/abc?x=1")
        t.ok(r.status == 301 and r.header("Location") == "https://%s/o/abc?x=1" % HOST,
             "port 80 redirects any other path to https, query kept", r)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=15)
        site.cleanup()


# --- cron --------------------------------------------------------------------------
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
FIELD_MAX = (59, 23, 31, 12, 7)


def cron_lines(text, commented=False):
    """(5 fields, user, command) of each job line; with commented, also of
    the lines commented out that have a job's shape ("# *  *  ...")."""
    out = []
    for line in text.splitlines():
        s = line.strip()
        if commented and re.match(r"^#\s*[\d*]", s):
            s = s.lstrip("#").strip()
        elif not s or s.startswith("#") or re.match(r"^[A-Z_]+=", s):
            continue
        out.append(s)
    return out


def pmbctl_words(command):
    """The pmbctl command words of a cron command: what follows pmbctl
    (and --config FILE) up to a redirection or the end."""
    words = shlex.split(command)
    i = words.index("pmbctl")
    rest = words[i + 1:]
    if rest[:1] == ["--config"]:
        rest = rest[2:]
    cmd = []
    for w in rest:
        if w.startswith((">", "2>", "<", "|", "&")):
            break
        cmd.append(w)
    return cmd


def test_cron_lines():
    text = read("cron.d/pmb")
    env = re.findall(r"(?m)^([A-Z_]+)=(.*)$", text)
    t.ok(("SHELL", "/bin/sh") in env and any(k == "PATH" and "/usr/local/bin" in v and "/usr/bin" in v
                                             for k, v in env),
         "cron.d/pmb sets SHELL and a PATH with /usr/local/bin and /usr/bin", env)
    lines = cron_lines(text, commented=True)
    t.ok(len(lines) >= 4, "cron.d/pmb has its job lines (%d, commented included)" % len(lines))
    wanted = set()
    for line in lines:
        parts = line.split(None, 6)
        fields = parts[:5]
        ok = len(parts) == 7 and all(
            CRON_FIELD.match(f) and all(int(n) <= mx for n in re.findall(r"\d+", f.split("/")[0]))
            for f, mx in zip(fields, FIELD_MAX))
        t.ok(ok and parts[5] == "pmb", "cron line: 5 time fields, the user pmb, a command: " + line)
        if len(parts) < 7:
            continue
        command = parts[6]
        t.ok("%" not in command, "cron line holds no %% (cron cuts the command there): " + command)
        words = pmbctl_words(command)
        wanted.add(" ".join(words))
        p = subprocess.run([PMBCTL] + words + ["--help"], capture_output=True, text=True,
                           timeout=30)
        t.ok(p.returncode == 0 and "usage: pmbctl [--config FILE] %s" % " ".join(words) in p.stdout,
             "pmbctl %s exists (pmbctl %s --help exits 0)" % (" ".join(words), " ".join(words)),
             p.stdout + p.stderr)
    t.ok({"mail run", "backup", "search optimize", "privacy sweep"} <= wanted,
         "cron.d/pmb runs the mail daemon, the backup, the search upkeep and the retention sweep", wanted)
    t.ok(not subprocess.run([PMBCTL, "no", "such", "--help"], capture_output=True,
                            timeout=30).returncode == 0,
         "pmbctl NO SUCH --help fails (so the check above means something)")


def cron_command(site, what, lock_dir, log_dir):
    """The command of cron.d/pmb's line that runs pmbctl WHAT, with the
    lock, log and settings paths made the test's."""
    for line in cron_lines(read("cron.d/pmb")):
        command = line.split(None, 6)[6]
        if pmbctl_words(command) == what.split():
            return subst(command, [("/etc/pmb/pmb.conf", site.conf_path)]
                         ).replace("/run/lock/", lock_dir + "/").replace("/var/log/pmb/", log_dir + "/")
    raise RuntimeError("cron.d/pmb has no line for pmbctl " + what)


def cron_env():
    env = dict(os.environ)
    env["PATH"] = BUILD + ":" + env.get("PATH", "/usr/bin:/bin")
    env.pop("PMB_CONFIG", None)
    return env


def test_cron_runs():
    if shutil.which("flock") is None or shutil.which("pgrep") is None:
        t.missing("cron.d/pmb's mail line", "flock and pgrep (util-linux, procps)")
        return
    site = Site()
    daemon = None
    try:
        lock_dir = os.path.join(site.dir, "lock")
        log_dir = os.path.join(site.dir, "log")
        os.makedirs(lock_dir)
        os.makedirs(log_dir)
        mail = cron_command(site, "mail run", lock_dir, log_dir)
        mail_log = os.path.join(log_dir, "mail.log")
        daemon = subprocess.Popen(["/bin/sh", "-c", mail], env=cron_env(), start_new_session=True)
        t.ok(wait_for(lambda: "delivering with the" in text_of(mail_log)),
             "cron.d/pmb's mail line starts pmbctl mail run, its log in mail.log", text_of(mail_log))
        t0 = time.time()
        second = subprocess.run(["/bin/sh", "-c", mail], env=cron_env(), timeout=30)
        t.ok(second.returncode != 0 and time.time() - t0 < 5 and
             text_of(mail_log).count("delivering with the") == 1,
             "the same line a minute later exits at once while the daemon runs (flock -n)")
        # The README's pattern, with this test's settings file, as cron.d/pmb gives it.
        m = re.search(r"pkill -HUP -u pmb -f '(\^pmbctl --config /etc/pmb/pmb\.conf mail run)'",
                      read("cron.d/pmb"))
        t.ok(m is not None, "cron.d/pmb gives the pkill line that reloads the mail daemon")
        pattern = m.group(1).replace("/etc/pmb/pmb.conf", site.conf_path) if m else "^$"
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        pids = [int(x) for x in found]
        comm = [text_of("/proc/%d/comm" % pid).strip() for pid in pids]
        t.ok(len(pids) == 1 and comm == ["pmbctl"],
             "the pattern finds the daemon alone, not the flock that waits for it", (pids, comm))
        if len(pids) == 1 and comm == ["pmbctl"]:
            os.kill(pids[0], signal.SIGHUP)
            t.ok(wait_for(lambda: "settings re-read from" in text_of(mail_log)),
                 "SIGHUP to it: the daemon re-reads its settings", text_of(mail_log)[-800:])
            os.kill(pids[0], signal.SIGTERM)
        daemon.wait(timeout=30)
        t.eq(daemon.returncode, 0, "SIGTERM stops it, and flock with it, status 0")
        daemon = None

        for what, proof in (("backup", lambda: [f for f in os.listdir(os.path.join(site.dir, "backups"))
                                                if re.match(r"pmb-\d{8}-\d{6}\.(db|key)$", f)]),
                            ("search optimize", lambda: "search index merged in" in
                             text_of(os.path.join(log_dir, "upkeep.log"))),
                            ("privacy sweep", lambda: "orders erased" in
                             text_of(os.path.join(log_dir, "upkeep.log")))):
            p = subprocess.run(["/bin/sh", "-c", cron_command(site, what, lock_dir, log_dir)],
                               env=cron_env(), capture_output=True, text=True, timeout=120)
            t.ok(p.returncode == 0 and not p.stdout and not p.stderr and proof(),
                 "cron.d/pmb's %s line runs, quietly (its output in upkeep.log)" % what,
                 p.stdout + p.stderr + text_of(os.path.join(log_dir, "upkeep.log")))
    finally:
        if daemon is not None and daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        site.cleanup()


# --- logrotate ----------------------------------------------------------------------
def test_logrotate():
    if shutil.which("logrotate") is None and not os.path.exists("/usr/sbin/logrotate"):
        t.missing("logrotate on conf/logrotate.d/pmb", "logrotate")
        return
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    text = read("logrotate.d/pmb")
    t.ok("copytruncate" in text and "/var/log/pmb/*.log" in text,
         "logrotate.d/pmb rotates /var/log/pmb/*.log with copytruncate (pmb reopens no log)")
    site = Site()
    script = os.path.join(CONF, "spawn-fcgi.sh")
    env = dict(os.environ, PMB_FCGI=PMB, PMB_CONFIG=site.conf_path, PMB_SOCKET=site.sock,
               PMB_WORKERS="1", PMB_USER="", PMB_PIDFILE=os.path.join(site.dir, "spawn.pid"),
               PMB_LOG=os.path.join(site.dir, "log", "pmb.log"))
    try:
        log_dir = os.path.join(site.dir, "log")
        # Run as the test's user: "su pmb pmb" names a user this machine
        # may not have.
        conf = write(os.path.join(site.dir, "logrotate.conf"),
                     subst(text, [("/var/log/pmb/", log_dir + "/"), ("    su pmb pmb\n", "")]))
        state = os.path.join(site.dir, "logrotate.state")
        p = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=30)
        t.ok(p.returncode == 0, "spawn-fcgi.sh starts pmb.fcgi, its log in PMB_LOG", p.stderr)
        log = env["PMB_LOG"]
        wait_for(lambda: os.path.exists(site.sock))
        r = wait_for(lambda: fcgi_get(site.sock, "/no/such/before"))
        t.ok(r.status == 404 and wait_for(lambda: "/no/such/before 404" in text_of(log)),
             "pmb.fcgi logs a request to pmb.log", text_of(log))
        p = subprocess.run([logrotate, "-d", "-s", state, conf], capture_output=True, text=True,
                           timeout=30)
        t.ok(p.returncode == 0 and "error" not in (p.stdout + p.stderr).lower(),
             "logrotate -d accepts conf/logrotate.d/pmb", p.stdout + p.stderr)
        p = subprocess.run([logrotate, "-f", "-s", state, conf], capture_output=True, text=True,
                           timeout=30)
        t.ok(p.returncode == 0, "logrotate -f rotates it", p.stdout + p.stderr)
        t.ok("/no/such/before 404" in text_of(log + ".1") and os.path.getsize(log) == 0,
             "the old lines are in pmb.log.1, pmb.log is emptied in place",
             (text_of(log + ".1"), text_of(log)))
        fcgi_get(site.sock, "/no/such/after")
        after = wait_for(lambda: text_of(log))
        t.ok("/no/such/after 404" in after and "\0" not in after and after.count("\n") == 1,
             "pmb.fcgi's next line lands at the start of the emptied pmb.log (O_APPEND, no hole)",
             repr(after))
    finally:
        subprocess.run(["sh", script, "stop"], env=env, capture_output=True, timeout=60)
        site.cleanup()


# --- README: the operator's steps name what exists ------------------------------------
def test_readme_steps():
    with open(os.path.join(SRC, "README.md")) as f:
        readme = f.read()
    named = sorted(set(m.rstrip(".,;:)") for m in re.findall(r"\bconf/[\w./-]+", readme)))
    gone = [n for n in named if not os.path.exists(os.path.join(SRC, n))]
    t.ok(len(named) >= 10 and not gone, "every conf/ file the README names exists (%d)" % len(named), gone)
    for step in ("certbot certonly --webroot -w /var/www/letsencrypt -d",
                 '--deploy-hook "systemctl reload nginx"',
                 "install -m 0640 -o root -g pmb conf/pmb.conf /etc/pmb/pmb.conf",
                 "autoreconf -fi", "apt install ./pmb_"):
        t.ok(step in readme, "README gives the step: " + step)
    pkill = re.search(r"pkill -HUP -u pmb -f '[^']+'", read("cron.d/pmb")).group(0)
    t.ok(pkill.replace(" ", "") in readme.replace("\n", "").replace(" ", ""),
         "README's reload line for the cron-run mail daemon is cron.d/pmb's", pkill)
    check = readme[readme.index("### Go-live checklist"):]
    check = check[:check.index("\n### ")]
    last = re.findall(r"(?m)^\d+\. .*", check)[-1]
    t.ok("pmbctl check --strict" in last, "the go-live checklist ends with pmbctl check --strict", last)


if not os.access(PMBCTL, os.X_OK):
    print("Bail out! %s is not built (run scripts/build)" % PMBCTL)
    sys.exit(1)
for fn in (test_permissions_story, test_nginx_acme, test_cron_lines, test_cron_runs,
           test_logrotate, test_readme_steps):
    t.run(fn)
sys.exit(t.done())
