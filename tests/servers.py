#!/usr/bin/env python3
"""pmb.fcgi under the web servers and spawners it supports, each run from
the sample configuration in conf/ (only loopback ports, a test
certificate and the build's paths swapped in), so the samples are known to
work:

  - spawn-fcgi (conf/spawn-fcgi.sh) on a Unix socket, with nginx
    (conf/nginx-site.conf on port 80, conf/nginx-site-https.conf) in front
    over HTTPS;
  - lighttpd's mod_fastcgi in front of pmb.fcgi on its socket, started as
    pmb-listen.service starts it (conf/lighttpd.conf);
  - Apache's mod_proxy_fcgi over HTTPS in front of pmb.fcgi on its
    socket (conf/apache.conf);
  - the ExecStart lines of conf/systemd/pmb.socket + pmb.service (socket
    activation, through systemd-socket-activate) and pmb-listen.service;
  - and conf/pmb.conf documents every setting with its real default.

Each server runs in the foreground from a configuration written into the
Site's temporary folder, listens on 127.0.0.1 only, and is stopped (with
every pmb.fcgi it started) at the end. A server that is not installed is
skipped with a reason (scripts/deps test installs them all)."""
import grp
import http.client
import os
import pwd
import re
import shlex
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, PMB, PMBCTL, SRC, free_port, Response,  # noqa: E402
                     token_requests, logs_holding, fcgi_get, upload_request)

t = Tap()
CONF = os.path.join(SRC, "conf")
STATIC = os.path.join(SRC, "www", "static") + "/"
HOST = "pmb.example.com"            # the samples' host name, kept as is
SITE_NAME = "Servers Test Brain"
CSP = ("default-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
ROOT = os.geteuid() == 0
TIMINGS = []


# --- helpers ------------------------------------------------------------------
def sample(name, subs, drop=()):
    """The text of conf/NAME with each (old, new) of subs replaced and each
    line containing a string of drop removed. Every old and drop must occur:
    a sample that changed under the test fails loudly instead of being
    tested half."""
    with open(os.path.join(CONF, name)) as f:
        text = f.read()
    for old, new in subs:
        if old not in text:
            raise RuntimeError("conf/%s no longer contains %r" % (name, old))
        text = text.replace(old, new)
    for d in drop:
        if d not in text:
            raise RuntimeError("conf/%s no longer contains %r" % (name, d))
        text = "".join(line for line in text.splitlines(True) if d not in line)
    return text


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def new_site(**settings):
    return Site(settings=dict({"site_name": SITE_NAME, "base_url": "https://" + HOST}, **settings))


def test_cert(site):
    """A self-signed certificate for pmb.example.com and 127.0.0.1; returns
    (cert, key, client TLS context that trusts only it)."""
    cert = os.path.join(site.dir, "cert.pem")
    key = os.path.join(site.dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=" + HOST, "-addext",
                    "subjectAltName=DNS:%s,IP:127.0.0.1" % HOST,
                    "-addext", "basicConstraints=critical,CA:FALSE",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.create_default_context(cafile=cert)
    return cert, key, ctx


def fetch(port, path, method="GET", body=None, tls=None, headers=None):
    """One HTTP(S) request to 127.0.0.1:port with Host: pmb.example.com."""
    h = {"Host": HOST}
    h.update(headers or {})
    if tls is not None:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=15)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        c.close()


def post_big(fetch_fn, path="/lost"):
    """POSTs a form of 70,000 bytes (over the 64k limit) to path (one that
    takes no files)."""
    return fetch_fn(path, method="POST", body=b"a=" + b"x" * 70000,
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Origin": "https://" + HOST})


MB = 1024 * 1024


def check_upload_limits(what, port, tls=None, own_413=True, by_continue=True):
    """The sample's per-URL body limits: a 20 MB multipart POST (four 5 MB
    files) to /o/TOKEN/messages passes the server (pmb.fcgi answers,
    whatever its handler says), the same to /lost or /o/TOKEN/rating is
    refused (413; pmb's own page when own_413), and so is one of 50 MiB +
    128 KiB to /o/TOKEN/messages. by_continue: the server says which by
    answering "100 Continue" (it will read the body) or not (nginx,
    lighttpd); else (Apache's mod_proxy_fcgi asks for every body) pmb.fcgi
    must run with body_limit = 64 MiB, so that only the server's refusal
    (PMB_GATE_ERROR) can make these 413s, and a 20 MB body that passes gets
    another answer from pmb.fcgi."""
    h = {"Origin": "https://" + HOST}
    four = [("part%d.txt" % i, 5 * MB) for i in range(4)]
    went, r = upload_request(port, "/o/%s/messages" % LINK_TOKEN, four, tls=tls, host=HOST, headers=h)
    t.ok(SITE_NAME in r.text and (went if by_continue else r.status != 413),
         what + ": a 20 MB multipart POST to /o/TOKEN/messages passes, pmb.fcgi answers", (went, r))
    if not by_continue:
        # A form pmb.fcgi reads whole (it takes no files there yet): the
        # server must pass every byte on.
        r = fetch(port, "/o/%s/messages" % LINK_TOKEN, method="POST", tls=tls,
                  body=b"body=" + b"x" * (20 * MB),
                  headers=dict(h, **{"Content-Type": "application/x-www-form-urlencoded"}))
        t.ok(SITE_NAME in r.text and r.status != 413 and "shorter than it said" not in r.text,
             what + ": a 20 MB form POST to /o/TOKEN/messages reaches pmb.fcgi whole", r)
    for path, files in (("/lost", four), ("/o/%s/rating" % LINK_TOKEN, four),
                        ("/o/%s/messages" % LINK_TOKEN, [("a.txt", 50 * MB), ("b.txt", 128 * 1024)])):
        went, r = upload_request(port, path, files, tls=tls, host=HOST, headers=h)
        t.ok((not went or not by_continue) and r.status == 413 and
             (not own_413 or "Too much to send" in r.text and SITE_NAME in r.text),
             what + ": a %d MB POST to %s is refused (413%s)" %
             (sum(n for _, n in files) // MB, path.replace(LINK_TOKEN, "TOKEN"),
              ", pmb's page" if own_413 else ""), (went, r))


# Shaped like a link's token (base64url, longer than pmb.fcgi's log masks).
LINK_TOKEN = "TGlua1Rva2VuTmV2ZXJJbkFMb2ctMDEyMzQ1Njc4OQ"


def check_tokens_not_logged(what, folder, port, tls=None, logs_wanted=()):
    """Requests with a link's token that fail (a 413 first: nginx's error
    log writes the request line with it), then no log file under folder
    holds the token."""
    def send(method, path, body=None, headers=None):
        h = dict(headers or {}, Origin="https://" + HOST)
        return fetch(port, path, method=method, body=body, tls=tls, headers=h)
    got = token_requests(send, LINK_TOKEN)
    # lighttpd answers the bad query (%zz) with pmb.fcgi's 404, the others 400.
    t.ok(got[0] == got[3] == 413 and got[1] == 404 and got[2] in (400, 404),
         what + ": tokened requests: 413, 404, 400 (or 404), 413", got)
    logs, holding = logs_holding(folder, LINK_TOKEN)
    t.ok(set(logs_wanted) <= set(logs), what + ": the server wrote its logs", logs)
    t.eq(holding, [], what + ": no log holds the link's token")


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(no %s)" % path


def wait_up(probe, proc, log, timeout=15):
    """Calls probe() until it returns without an OSError; fails early if
    proc (a Popen, or None) has exited. Returns probe's result."""
    end = time.time() + timeout
    while True:
        try:
            return probe()
        except (OSError, http.client.HTTPException) as e:
            err = e
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("exited %s: %s" % (proc.returncode, tail(log)))
        if time.time() > end:
            raise RuntimeError("not up after %ds (%s): %s" % (timeout, err, tail(log)))
        time.sleep(0.05)


def pmb_procs(conf_path):
    """Pids of pmb.fcgi processes serving the settings file conf_path (by
    --config or PMB_CONFIG): those this test started, nobody else's."""
    real = os.path.realpath(PMB)
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.path.realpath("/proc/%s/exe" % d) != real:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/environ" % d, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if conf_path.encode() in cmd or ("PMB_CONFIG=" + conf_path).encode() in env.split(b"\0"):
            found.append(int(d))
    return found


def settle(fn, want, timeout=5):
    """Calls fn() until it returns want (processes still forking or
    exec'ing) or timeout seconds pass; returns its last answer."""
    end = time.time() + timeout
    got = fn()
    while got != want and time.time() < end:
        time.sleep(0.05)
        got = fn()
    return got


def wait_gone(conf_path, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        left = pmb_procs(conf_path)
        if not left:
            return []
        time.sleep(0.05)
    return pmb_procs(conf_path)


def stop(proc, timeout=15):
    """SIGTERM to proc, then SIGKILL if it lingers; returns its status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def reap(conf_path):
    """Kills, by pid, pmb.fcgi processes of this test left behind."""
    for pid in pmb_procs(conf_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def give_to(path, user):
    """chown -R path to user (when the server drops root to run pmb.fcgi)."""
    pw = pwd.getpwnam(user)
    for dirpath, dirs, files in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)


def check_site(what, get):
    """The checks every server must pass: GET / (200, the site name, CSP),
    an unknown path (404, the site's page), a static file."""
    r = get("/")
    t.eq(r.status, 200, what + ": GET / answers 200")
    t.ok(SITE_NAME in r.text, what + ": GET / shows the site name from the settings", r)
    t.eq(r.header("Content-Security-Policy"), CSP, what + ": GET / carries pmb's CSP")
    t.ok((r.header("Strict-Transport-Security") or "").startswith("max-age="),
         what + ": HSTS is sent (https base URL)")
    r = get("/no/such/page")
    t.eq(r.status, 404, what + ": an unknown path answers 404")
    t.ok("Page not found" in r.text and SITE_NAME in r.text,
         what + ": the 404 is pmb's own page, in the site's layout", r)
    r = get("/static/pmb.css")
    with open(os.path.join(STATIC, "pmb.css"), "rb") as f:
        css = f.read()
    t.ok(r.status == 200 and r.body == css,
         what + ": /static/pmb.css is served from the static folder", r)
    t.eq(r.header("X-Content-Type-Options"), "nosniff",
         what + ": static files carry nosniff")


def timed(fn):
    def run():
        t0 = time.time()
        try:
            fn()
        finally:
            TIMINGS.append((fn.__name__, time.time() - t0))
    run.__name__ = fn.__name__
    return run


# --- conf/pmb.conf --------------------------------------------------------------
def conf_c_defaults():
    """{name: default or None} from the table in src/conf.c (None where the
    default is not a string literal)."""
    with open(os.path.join(SRC, "src", "conf.c")) as f:
        src = f.read()
    table = src[src.index("settings[] = {"):]
    table = table[:table.index("};")]
    out = {}
    for m in re.finditer(r"\bS\((\w+),\s*C_\w+,\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+|\w+)", table):
        lits = re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(2))
        out[m.group(1)] = "".join(lits) if lits else None
    return out


@timed
def test_sample_settings():
    with open(os.path.join(CONF, "pmb.conf")) as f:
        text = f.read()
    documented = {}
    for line in text.splitlines():
        m = re.match(r"^# (\w+) =(?: (.*))?$", line)
        if m:
            documented[m.group(1)] = m.group(2) or ""
    table = conf_c_defaults()
    t.ok(len(table) >= 30, "src/conf.c's table was read (%d settings)" % len(table))
    missing = sorted(set(table) - set(documented))
    t.ok(not missing, "conf/pmb.conf documents every setting of src/conf.c", missing)
    extra = sorted(set(documented) - set(table))
    t.ok(not extra, "conf/pmb.conf documents no setting that does not exist", extra)
    wrong = ["%s: sample %r, src/conf.c %r" % (k, documented[k], v)
             for k, v in sorted(table.items())
             if v is not None and k in documented and documented[k] != v]
    t.ok(not wrong, "conf/pmb.conf shows each setting at its real default", "\n".join(wrong))
    # With every "# name = value" line uncommented, the sample is a valid
    # settings file (paths made local by lines added at the end).
    site = new_site()
    try:
        body = re.sub(r"(?m)^# (\w+ =)", r"\1", text)
        local = {k: site.conf[k] for k in ("database", "key_file", "template_dir",
                                           "mail_dir", "base_url")}
        local["site_name"] = SITE_NAME
        body += "".join("%s = %s\n" % kv for kv in local.items())
        site.conf_path = write(os.path.join(site.dir, "uncommented.conf"), body)
        r = site.cgi("GET", "/")
        t.ok(r.status == 200 and SITE_NAME in r.text,
             "conf/pmb.conf with every default uncommented is accepted", r)
    finally:
        site.cleanup()


# --- spawn-fcgi + nginx -----------------------------------------------------------
@timed
def test_spawn_fcgi_nginx():
    if shutil.which("spawn-fcgi") is None or shutil.which("nginx") is None:
        t.missing("spawn-fcgi + nginx", "spawn-fcgi or nginx")
        return
    site = new_site()
    pidfile = os.path.join(site.dir, "spawn-fcgi.pid")
    env = dict(os.environ, PMB_FCGI=PMB, PMB_CONFIG=site.conf_path,
               PMB_SOCKET=site.sock, PMB_WORKERS="2", PMB_USER="",
               PMB_PIDFILE=pidfile, PMB_LOG=os.path.join(site.dir, "log", "pmb.log"))
    script = os.path.join(CONF, "spawn-fcgi.sh")
    try:
        p = subprocess.run(["sh", script], env=env, capture_output=True, text=True,
                           timeout=30)
        t.ok(p.returncode == 0, "spawn-fcgi: conf/spawn-fcgi.sh starts the workers",
             p.stderr)
        r = wait_up(lambda: fcgi_get(site.sock, "/"), None, os.devnull)
        t.ok(r.status == 200 and SITE_NAME in r.text,
             "spawn-fcgi: pmb.fcgi answers FastCGI on the socket it was handed", r)
        with open(pidfile) as f:
            pids = sorted(int(x) for x in f.read().split())
        t.eq(len(pids), 2, "spawn-fcgi: -F 2 started 2 processes")
        t.eq(settle(lambda: sorted(pmb_procs(site.conf_path)), pids), pids,
             "spawn-fcgi: the pid file lists the pmb.fcgi processes it started")
        t.eq(stat.S_IMODE(os.stat(site.sock).st_mode), 0o660,
             "spawn-fcgi: the socket is mode 0660")
        # spawn-fcgi points a process's stderr at /dev/null; the script
        # appends it to PMB_LOG instead (a folder it makes).
        started = "pmb.fcgi: settings from %s" % site.conf_path
        t.eq(settle(lambda: tail(env["PMB_LOG"], 100000).count(started), 2), 2,
             "spawn-fcgi: each pmb.fcgi's log lines go to PMB_LOG (its start-up line)")
        t.eq(stat.S_IMODE(os.stat(env["PMB_LOG"]).st_mode), 0o640,
             "spawn-fcgi: PMB_LOG is made mode 0640")

        # nginx in front, from conf/nginx-site.conf.
        cert, key, tls = test_cert(site)
        https_port, http_port = free_port(), free_port()
        webroot = os.path.join(site.dir, "letsencrypt")
        write(os.path.join(site.dir, "nginx-site.conf"), sample("nginx-site.conf", [
            ("listen 80;", "listen 127.0.0.1:%d;" % http_port),
            ("/var/www/letsencrypt", webroot),
        ], drop=["listen [::]:"]))
        siteconf = sample("nginx-site-https.conf", [
            ("listen 443 ssl http2;", "listen 127.0.0.1:%d ssl http2;" % https_port),
            ("unix:/run/pmb/pmb.sock", "unix:" + site.sock),
            ("/etc/letsencrypt/live/pmb.example.com/fullchain.pem", cert),
            ("/etc/letsencrypt/live/pmb.example.com/privkey.pem", key),
            ("/usr/local/share/pmb/static/", STATIC),
            ("#   access_log /var/log/nginx/pmb-access.log pmb_masked;\n    access_log off;",
             "access_log %s/nginx-access.log pmb_masked;" % site.dir),
        ], drop=["listen [::]:"])
        write(os.path.join(site.dir, "nginx-site-https.conf"), siteconf)
        var = site.dir
        os.makedirs(os.path.join(var, "nginx"), exist_ok=True)
        nconf = write(os.path.join(var, "nginx.conf"), """
%s
worker_processes 1;
pid %s/nginx.pid;
error_log %s/nginx-error.log warn;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path %s/nginx/body;
    fastcgi_temp_path %s/nginx/fastcgi;
    proxy_temp_path %s/nginx/proxy;
    uwsgi_temp_path %s/nginx/uwsgi;
    scgi_temp_path %s/nginx/scgi;
    include %s/nginx-site.conf;
    include %s/nginx-site-https.conf;
}
""" % ((("user root root;" if ROOT else ""),) + (var,) * 9))
        log = os.path.join(var, "nginx-error.log")
        nginx = subprocess.Popen(["nginx", "-e", log, "-c", nconf, "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        site.procs.append(nginx)
        wait_up(lambda: fetch(https_port, "/", tls=tls), nginx, log)

        check_site("nginx-site-https.conf", lambda path: fetch(https_port, path, tls=tls))
        r = fetch(https_port, "/")
        t.eq(r.header("Server"), "nginx", "nginx-site-https.conf: server_tokens off hides the version")
        r = post_big(lambda *a, **k: fetch(https_port, *a, tls=tls, **k))
        t.ok(r.status == 413 and "Too much to send" in r.text and SITE_NAME in r.text,
             "nginx-site-https.conf: a body over 64k gets pmb's own 413 page (@pmb_413)", r)
        check_upload_limits("nginx-site-https.conf", https_port, tls)
        r = fetch(http_port, "/no/such?x=1")
        t.ok(r.status == 301 and r.header("Location") == "https://%s/no/such?x=1" % HOST,
             "nginx-site.conf: plain HTTP redirects to https://pmb.example.com", r)
        check_tokens_not_logged("nginx-site-https.conf", site.dir, https_port, tls,
                                ["nginx-error.log", "nginx-access.log", "log/pmb.log"])
        with open(os.path.join(site.dir, "nginx-access.log")) as f:
            access = f.read()
        t.ok('"POST /o/[token]/rating" 413' in access and '"GET /o/[token]/no/such/page" 404' in access,
             "nginx-site-https.conf: the pmb_masked access log keeps the requests, the token masked", access[-1500:])

        t.eq(stop(nginx), 0, "nginx stops cleanly")
        p = subprocess.run(["sh", script, "stop"], env=env, capture_output=True,
                           text=True, timeout=60)
        t.ok(p.returncode == 0 and not wait_gone(site.conf_path, 5),
             "spawn-fcgi: conf/spawn-fcgi.sh stop ends every pmb.fcgi", p.stderr)
        t.ok(not os.path.exists(site.sock), "spawn-fcgi: stop removes the socket")
    finally:
        site.cleanup()
        reap(site.conf_path)


# --- lighttpd ----------------------------------------------------------------------
@timed
def test_lighttpd():
    if shutil.which("lighttpd") is None:
        t.missing("lighttpd", "lighttpd")
        return
    site = new_site()
    try:
        port = free_port()
        # pmb.fcgi on its socket, as pmb-listen.service starts it (2 workers).
        cmd = [w if w != "8" else "2" for w in unit_command("pmb-listen.service", site)]
        plog = os.path.join(site.dir, "pmb-listen.log")
        pmb = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(plog, "ab"))
        site.procs.append(pmb)
        wait_up(lambda: fcgi_get(site.sock, "/"), pmb, plog)
        snippet = sample("lighttpd.conf", [
            ('"/run/pmb/pmb.sock"', '"%s"' % site.sock),
            ('"/usr/local/share/pmb/static/"', '"%s"' % STATIC),
        ])
        t.ok(not re.search(r"^\s*\"bin-path\"", snippet, re.M),
             "lighttpd.conf: lighttpd does not start pmb.fcgi (it would run as www-data)")
        write(os.path.join(site.dir, "lighttpd-pmb.conf"), snippet)
        docroot = os.path.join(site.dir, "htdocs")
        os.makedirs(docroot)
        log = os.path.join(site.dir, "lighttpd-error.log")
        # A small lighttpd.conf shaped like Debian's, which includes the
        # sample as it would include /etc/lighttpd/conf-enabled/50-pmb.conf.
        lconf = write(os.path.join(site.dir, "lighttpd.conf"), """
server.modules = ( "mod_indexfile", "mod_access", "mod_alias", "mod_redirect" )
server.document-root = "%(docroot)s"
server.upload-dirs = ( "%(dir)s" )
server.errorlog = "%(log)s"
server.pid-file = "%(dir)s/lighttpd.pid"
server.bind = "127.0.0.1"
server.port = %(port)d
mimetype.assign = ( ".css" => "text/css; charset=utf-8", ".svg" => "image/svg+xml" )
include "%(dir)s/lighttpd-pmb.conf"
server.modules += ( "mod_staticfile" )
""" % {"docroot": docroot, "dir": site.dir, "log": log, "port": port})
        p = subprocess.run(["lighttpd", "-tt", "-f", lconf], capture_output=True,
                           text=True, timeout=30)
        t.ok(p.returncode == 0 and "WARNING" not in p.stderr + p.stdout,
             "lighttpd: the configuration with conf/lighttpd.conf passes lighttpd -tt",
             p.stderr + p.stdout)
        lighttpd = subprocess.Popen(["lighttpd", "-D", "-f", lconf],
                                    stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        site.procs.append(lighttpd)
        wait_up(lambda: fetch(port, "/"), lighttpd, log)

        check_site("lighttpd.conf", lambda path: fetch(port, path))
        t.ok(SITE_NAME in fetch(port, "/").text and
             "GET / 200" in tail(plog, 100000),
             "lighttpd: requests reach pmb.fcgi on its socket (its log has them)")
        r = fetch(port, "/")
        t.eq(r.header("Server"), "lighttpd", "lighttpd.conf: server.tag hides the version")
        r = fetch(port, "/static/pmb.css")
        t.eq(r.header("Content-Security-Policy"), CSP,
             "lighttpd.conf: static files carry the CSP")
        r = post_big(lambda *a, **k: fetch(port, *a, **k))
        t.eq(r.status, 413, "lighttpd.conf: a body over 64k is refused with 413")
        check_upload_limits("lighttpd.conf", port, own_413=False)
        check_tokens_not_logged("lighttpd.conf", site.dir, port, None, ["lighttpd-error.log"])

        stop(lighttpd)
        t.eq(stop(pmb), 0, "lighttpd: pmb.fcgi on its socket stops with status 0")
        t.ok(not wait_gone(site.conf_path), "lighttpd: no pmb.fcgi left")
    finally:
        site.cleanup()
        reap(site.conf_path)


# --- Apache + mod_proxy_fcgi-----------------------------------------------------------
APACHE_MODULES = "/usr/lib/apache2/modules"


@timed
def test_apache():
    apache = shutil.which("apache2") or (
        "/usr/sbin/apache2" if os.access("/usr/sbin/apache2", os.X_OK) else None)
    if apache is None or not os.path.exists(os.path.join(APACHE_MODULES, "mod_proxy_fcgi.so")):
        t.missing("apache2 + mod_proxy_fcgi", "apache2")
        return
    # pmb.fcgi's own limit at its largest, above the sample's: every 413
    # here is Apache's (PMB_GATE_ERROR; check_upload_limits).
    site = new_site(body_limit=64 * 1024 * 1024)
    try:
        cert, key, tls = test_cert(site)
        https_port, http_port = free_port(), free_port()
        # pmb.fcgi on its socket as pmb-listen.service starts it, in a
        # folder made as its ExecStartPre makes /run/pmb (group www-data,
        # setgid), so that Apache's user www-data may connect.
        run = os.path.join(site.dir, "run-pmb")
        sock = os.path.join(run, "pmb.sock")
        if ROOT:
            os.chmod(site.dir, 0o711)
            pre = unit_value("pmb-listen.service", "ExecStartPre")[1:]
            subprocess.run(shlex.split(pre.replace("/run/pmb", run).replace("-o pmb", "-o root")),
                           check=True, timeout=30)
        else:
            os.makedirs(run)
        cmd = [{"8": "2", site.sock: "unix:" + sock}.get(w, w).replace("unix:" + site.sock, "unix:" + sock)
               for w in unit_command("pmb-listen.service", site)]
        plog = os.path.join(site.dir, "pmb-listen.log")
        pmb = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(plog, "ab"))
        site.procs.append(pmb)
        wait_up(lambda: fcgi_get(sock, "/"), pmb, plog)
        webroot = os.path.join(site.dir, "letsencrypt")
        os.makedirs(os.path.join(webroot, ".well-known", "acme-challenge"))
        write(os.path.join(webroot, ".well-known", "acme-challenge", "tok-123"), "tok-123.thumb\n")
        os.chmod(webroot, 0o755)
        vhost = sample("apache.conf", [
            ("<VirtualHost *:443>", "<VirtualHost 127.0.0.1:%d>" % https_port),
            ("<VirtualHost *:80>", "<VirtualHost 127.0.0.1:%d>" % http_port),
            ("/etc/letsencrypt/live/pmb.example.com/fullchain.pem", cert),
            ("/etc/letsencrypt/live/pmb.example.com/privkey.pem", key),
            ("/usr/local/share/pmb/static", STATIC.rstrip("/")),
            ("unix:/run/pmb/pmb.sock|", "unix:%s|" % sock),
            ("/var/www/letsencrypt", webroot),
        ])
        t.ok(not re.search(r"^\s*(FcgidInitialEnv|SetHandler fcgid-script)", vhost, re.M),
             "apache.conf: Apache does not start pmb.fcgi (it would run as www-data)")
        adir = os.path.join(site.dir, "apache")
        os.makedirs(adir)
        write(os.path.join(site.dir, "apache-pmb.conf"), vhost)
        log = os.path.join(adir, "error.log")
        mods = ["mpm_event", "authz_core", "alias", "mime", "headers", "env",
                "socache_shmcb", "ssl", "proxy", "proxy_fcgi"]
        aconf = write(os.path.join(adir, "apache2.conf"), """
ServerRoot "%(adir)s"
PidFile "%(adir)s/apache2.pid"
DefaultRuntimeDir "%(adir)s"
Mutex file:%(adir)s default
ErrorLog "%(log)s"
LogLevel warn
ServerName localhost
%(user)s
%(modules)s
StartServers 1
TypesConfig /etc/mime.types
ServerTokens Prod
ServerSignature Off
TraceEnable Off
SSLSessionCache shmcb:%(adir)s/ssl_scache(512000)
Listen 127.0.0.1:%(https)d
Listen 127.0.0.1:%(http)d
<Directory />
    AllowOverride None
    Require all denied
</Directory>
Include "%(dir)s/apache-pmb.conf"
""" % {"adir": adir, "log": log, "dir": site.dir, "https": https_port, "http": http_port,
            "user": "User www-data\nGroup www-data" if ROOT else "",
            "modules": "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                                 for m in mods)})
        p = subprocess.run([apache, "-t", "-f", aconf], capture_output=True, text=True,
                           timeout=30)
        t.ok(p.returncode == 0, "apache: the configuration with conf/apache.conf "
             "passes apache2 -t", p.stderr + p.stdout)
        proc = subprocess.Popen([apache, "-f", aconf, "-DFOREGROUND"],
                                stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        site.procs.append(proc)
        wait_up(lambda: fetch(https_port, "/", tls=tls), proc, log)

        check_site("apache.conf", lambda path: fetch(https_port, path, tls=tls))
        t.ok("GET / 200" in tail(plog, 100000),
             "apache: requests reach pmb.fcgi on its socket (its log has them)")
        r = fetch(https_port, "/")
        t.eq(r.header("Server"), "Apache", "apache: ServerTokens Prod hides the version")
        r = fetch(https_port, "/static/favicon.svg", tls=tls)
        t.ok(r.status == 200 and r.header("Content-Security-Policy") == CSP,
             "apache.conf: static files carry the CSP", r)
        r = post_big(lambda *a, **k: fetch(https_port, *a, tls=tls, **k))
        t.ok(r.status == 413 and "Too much to send" in r.text and SITE_NAME in r.text,
             "apache.conf: a body over 64k gets pmb's own 413 page (PMB_GATE_ERROR)", r)
        check_upload_limits("apache.conf", https_port, tls, by_continue=False)
        r = fetch(http_port, "/no/such")
        t.ok(r.status == 301 and r.header("Location") == "https://%s/no/such" % HOST,
             "apache.conf: plain HTTP redirects to https://pmb.example.com", r)
        r = fetch(http_port, "/.well-known/acme-challenge/tok-123")
        t.ok(r.status == 200 and r.body == b"tok-123.thumb\n",
             "apache.conf: port 80 serves certbot's challenge from the webroot", r)
        check_tokens_not_logged("apache.conf", site.dir, https_port, tls,
                                ["apache/error.log", "pmb-listen.log"])

        stop(proc)
        t.eq(stop(pmb), 0, "apache: pmb.fcgi on its socket stops with status 0")
        errors = [line for line in tail(log, 100000).splitlines()
                  if re.search(r":(error|crit|alert|emerg)\]", line)]
        t.ok(not errors, "apache: no errors in Apache's error log", "\n".join(errors))
    finally:
        site.cleanup()
        reap(site.conf_path)


# --- the systemd units' commands ------------------------------------------------------
def unit_value(name, key):
    with open(os.path.join(CONF, "systemd", name)) as f:
        for line in f:
            if line.startswith(key + "="):
                return line[len(key) + 1:].strip()
    raise RuntimeError("conf/systemd/%s has no %s=" % (name, key))


def unit_command(name, site):
    cmd = unit_value(name, "ExecStart")
    for old, new in (("/usr/local/bin/pmb.fcgi", PMB), ("/usr/local/bin/pmbctl", PMBCTL),
                     ("/etc/pmb/pmb.conf", site.conf_path),
                     ("/run/pmb/pmb.sock", site.sock)):
        cmd = cmd.replace(old, new)
    return shlex.split(cmd)


def check_listen_socket_group(site, log):
    """pmb-listen.service's ExecStartPre (as root: the folder pmb:www-data
    2750) and then its ExecStart: the socket is group www-data, mode 0660,
    as pmb.socket's is, with pmb.fcgi in no group www-data."""
    pre = unit_value("pmb-listen.service", "ExecStartPre")
    t.ok(pre.startswith("+") and "-g www-data -m 2750 /run/pmb" in pre,
         "pmb-listen.service: ExecStartPre makes /run/pmb group www-data, setgid", pre)
    try:
        grp.getgrnam("www-data")
    except KeyError:
        t.skip("pmb-listen.service's socket group", "no group www-data here")
        return
    if not ROOT:
        t.skip("pmb-listen.service's socket group", "not root (chown to www-data)")
        return
    owner = "pmb" if "pmb" in {p.pw_name for p in pwd.getpwall()} else "root"
    run = os.path.join(site.dir, "run-pmb")
    sock = os.path.join(run, "pmb.sock")
    subprocess.run(shlex.split(pre[1:].replace("/run/pmb", run).replace("-o pmb", "-o " + owner)),
                   check=True, timeout=30)
    cmd = [w.replace(site.sock, sock) for w in unit_command("pmb-listen.service", site)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    site.procs.append(proc)
    wait_up(lambda: fcgi_get(sock, "/"), proc, log)
    st = os.stat(sock)
    t.ok(grp.getgrgid(st.st_gid).gr_name == "www-data" and stat.S_IMODE(st.st_mode) == 0o660,
         "pmb-listen.service: the socket is group www-data, mode 0660 (the folder's setgid)",
         "group %s mode %o" % (grp.getgrgid(st.st_gid).gr_name, stat.S_IMODE(st.st_mode)))
    t.eq(stop(proc), 0, "pmb-listen.service (setgid folder): SIGTERM stops it")
    wait_gone(site.conf_path)


@timed
def test_systemd_units():
    site = new_site()
    try:
        log = os.path.join(site.dir, "unit.log")
        # pmb.socket + pmb.service: the socket handed on descriptor 3.
        t.eq(unit_value("pmb.socket", "ListenStream"), "/run/pmb/pmb.sock",
             "pmb.socket listens where nginx-site.conf looks")
        t.eq(unit_value("pmb.socket", "SocketMode"), "0660", "pmb.socket is mode 0660")
        if shutil.which("systemd-socket-activate") is None:
            t.missing("socket activation", "systemd-socket-activate (systemd)")
        else:
            cmd = ["systemd-socket-activate", "-l", site.sock] + unit_command("pmb.service", site)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
            site.procs.append(proc)
            r = wait_up(lambda: fcgi_get(site.sock, "/"), proc, log)
            t.ok(r.status == 200 and SITE_NAME in r.text,
                 "pmb.service's ExecStart serves on the socket systemd hands it", r)
            workers = int(re.search(r"--workers (\d+)", " ".join(unit_command("pmb.service", site))).group(1))
            n = settle(lambda: len(pmb_procs(site.conf_path)), workers + 1)
            t.eq(n, workers + 1, "pmb.service: --workers %d pre-forks %d workers under the supervisor" % (
                workers, workers))
            t.eq(fcgi_get(site.sock, "/no/such").status, 404, "pmb.service: unknown path is 404")
            t.eq(stop(proc), 0, "pmb.service: SIGTERM stops it with status 0")
            t.ok(not wait_gone(site.conf_path), "pmb.service: its workers are gone after stop")
            os.unlink(site.sock)

        # pmb-listen.service: pmb.fcgi --listen.
        proc = subprocess.Popen(unit_command("pmb-listen.service", site),
                                stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
        site.procs.append(proc)
        r = wait_up(lambda: fcgi_get(site.sock, "/"), proc, log)
        t.ok(r.status == 200 and SITE_NAME in r.text,
             "pmb-listen.service's ExecStart serves on its own socket", r)
        t.eq(stat.S_IMODE(os.stat(site.sock).st_mode), 0o660,
             "pmb-listen.service: the socket is mode 0660")
        t.eq(stop(proc), 0, "pmb-listen.service: SIGTERM stops it with status 0")
        t.ok(not wait_gone(site.conf_path) and not os.path.exists(site.sock),
             "pmb-listen.service: workers gone and socket removed after stop")
        check_listen_socket_group(site, log)
        # pmb-search-optimize.service: the nightly index upkeep.
        p = subprocess.run(unit_command("pmb-search-optimize.service", site), capture_output=True,
                           text=True, timeout=60, env=site.env())
        t.ok(p.returncode == 0 and p.stdout.startswith("search index merged in "),
             "pmb-search-optimize.service's ExecStart merges the search index", p.stdout + p.stderr)
        t.eq(unit_value("pmb-search-optimize.timer", "OnCalendar"), "*-*-* 03:30:00",
             "pmb-search-optimize.timer runs it nightly")
        # pmb-privacy-sweep.service: the nightly retention sweep.
        p = subprocess.run(unit_command("pmb-privacy-sweep.service", site), capture_output=True,
                           text=True, timeout=60, env=site.env())
        t.ok(p.returncode == 0 and "orders erased" in p.stdout,
             "pmb-privacy-sweep.service's ExecStart runs the retention sweep", p.stdout + p.stderr)
        t.eq(unit_value("pmb-privacy-sweep.timer", "OnCalendar"), "*-*-* 04:00:00",
             "pmb-privacy-sweep.timer runs it nightly")
        if shutil.which("systemd-analyze") is None:
            t.missing("systemd-analyze verify", "systemd-analyze (systemd)")
        else:
            units = [os.path.join(CONF, "systemd", u) for u in
                     ("pmb.socket", "pmb.service", "pmb-listen.service", "pmb-mail.service", "pmb-pay.service",
                      "pmb-search-optimize.service", "pmb-search-optimize.timer",
                      "pmb-privacy-sweep.service", "pmb-privacy-sweep.timer",
                      "pmb-backup.service", "pmb-backup.timer")]
            p = subprocess.run(["systemd-analyze", "verify"] + units, capture_output=True,
                               text=True, timeout=60)
            # Only complaint allowed: the programs are not installed here.
            bad = [line for line in (p.stderr + p.stdout).splitlines()
                   if line.strip() and "is not executable" not in line]
            t.ok(not bad, "systemd-analyze verify finds nothing wrong in conf/systemd/",
                 "\n".join(bad))
    finally:
        site.cleanup()
        reap(site.conf_path)


if not os.access(PMB, os.X_OK):
    print("Bail out! %s is not built (run scripts/build)" % PMB)
    sys.exit(1)
for fn in (test_sample_settings, test_spawn_fcgi_nginx, test_lighttpd, test_apache,
           test_systemd_units):
    t.run(fn)
for name, secs in TIMINGS:
    print("# %s: %.2f s" % (name, secs))
sys.exit(t.done())
