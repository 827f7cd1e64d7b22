"""pmbtest: the harness of Pick My Brain's CGI and HTTP tests.

Runs the real programs: pmb.fcgi as CGI (environment + stdin), or behind
real nginx on a loopback port with `pmb.fcgi --listen`; a fresh SQLite
file and key in a temporary folder per run. Prints TAP.
"""
import base64
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

BUILD = os.environ.get("PMB_BUILDDIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.environ.get("PMB_SRCDIR") or BUILD
PMB = os.path.join(BUILD, "pmb.fcgi")
PMBCTL = os.path.join(BUILD, "pmbctl")
# The image helper pmb.fcgi starts per uploaded image, as built here
# (installed, it is in pkglibexecdir): every Site's processes inherit it.
os.environ.setdefault("PMB_IMGCLEAN", os.path.join(BUILD, "pmb-imgclean"))


def asan_build():
    """Whether pmb.fcgi was built with AddressSanitizer (scripts/check-
    sanitizers): its shadow memory makes every process far bigger, so
    the memory limits of the issues are measured on a normal build."""
    p = subprocess.run(["ldd", os.path.join(BUILD, "pmb.fcgi")], capture_output=True, text=True)
    return "libasan" in p.stdout


class Tap:
    """Collects test points and prints them as TAP."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        print(("ok" if cond else "not ok") + " %d - %s" % (self.n, name))
        if not cond:
            self.failed += 1
            if detail is not None:
                for line in str(detail).splitlines()[:40]:
                    print("#   " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got %r, want %r" % (got, want))

    def missing(self, what, tools, deps="scripts/deps test"):
        """A point that cannot run because tools are not installed: a skip,
        or under CI=true a failure (see missing_tool). Returns False."""
        why = missing_tool_reason(tools, deps)
        if in_ci():
            return self.ok(False, "%s: %s" % (what, why))
        self.skip(what, why)
        return False

    def skip(self, what, why):
        """A point skipped for a limit of this machine that no package
        lifts (no tmpfs mount, no immutable files): a skip even in CI."""
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, what, why))
        sys.stdout.flush()

    def run(self, fn):
        """Runs one test function; an exception is a failed point."""
        try:
            fn()
        except Exception:
            self.ok(False, fn.__name__ + " raised", traceback.format_exc())

    def done(self):
        print("1..%d" % self.n)
        sys.stdout.flush()
        return 1 if self.failed else 0


def in_ci():
    """Whether this is a CI run (CI=true), where scripts/deps installed
    every tool the tests use."""
    return os.environ.get("CI", "").lower() == "true"


def missing_tool_reason(tools, deps):
    return ("%s is not installed (%s installs it%s)" %
            (tools, deps, "; under CI=true this is a broken install step" if in_ci() else ""))


def missing_tool(tools, deps="scripts/deps test"):
    """Ends a whole test file that cannot run because tools are not
    installed: a skip, or under CI=true a failure, since there the install
    step should have installed them. Every test that skips for a missing
    tool goes through here (or Tap.missing)."""
    why = missing_tool_reason(tools, deps)
    if in_ci():
        print("not ok 1 - %s" % why)
        print("1..1")
        sys.stdout.flush()
        sys.exit(1)
    print("1..0 # SKIP %s" % why)
    sys.stdout.flush()
    sys.exit(0)


def run_parts(tap, parts):
    """Runs the named parts (all, or those in $HARD_PARTS) with their
    times; returns the exit status."""
    names = os.environ.get("HARD_PARTS", "").split() or list(parts)
    for name in names:
        t0 = time.time()
        tap.run(parts[name])
        print("# time %s: %.1f s" % (name, time.time() - t0))
        sys.stdout.flush()
    return tap.done()


# --- the npm packages of the tests (tests/browser/package.json) -----------------
NODE_PACKAGES = os.path.join(SRC, "tests", "browser")


def node_packages_installed(folder, wanted):
    """Whether folder/node_modules holds every package of wanted (name:
    version as package.json pins it), at that version when pinned
    exactly."""
    for name, version in wanted.items():
        try:
            with open(os.path.join(folder, "node_modules", name, "package.json")) as f:
                got = json.load(f).get("version")
        except (OSError, ValueError):
            return False
        if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", version) and got != version:
            return False
    return True


def node_deps():
    """The folder whose node_modules holds the tests' npm packages
    (playwright-core for the browser journey, stripe for webhook
    signatures) at the versions tests/browser/package.json pins:
    tests/browser in the source tree, installed with `npm ci` when one is
    missing or at another version (a copy in the build folder when the
    source tree is read-only, as in make distcheck). Test files running
    at once (make -j check) take turns, so one npm ci runs at a time.
    Returns (folder, error)."""
    with open(os.path.join(NODE_PACKAGES, "package.json")) as f:
        wanted = json.load(f).get("dependencies", {})
    copy = os.path.join(BUILD, "tests", "browser-deps")
    lock_path = os.path.join(tempfile.gettempdir(), "pmb-node-deps-%s.lock"
                             % hashlib.sha256(NODE_PACKAGES.encode()).hexdigest()[:16])
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for d in (NODE_PACKAGES, copy):
            if node_packages_installed(d, wanted):
                return d, None
        d = NODE_PACKAGES
        if not os.access(NODE_PACKAGES, os.W_OK):
            d = copy
            os.makedirs(d, exist_ok=True)
            for f in ("package.json", "package-lock.json"):
                shutil.copy(os.path.join(NODE_PACKAGES, f), d)
        p = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund"],
                           cwd=d, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            return None, "npm ci in %s failed:\n%s" % (d, (p.stdout + p.stderr)[-2000:])
        if not node_packages_installed(d, wanted):
            return None, "npm ci in %s left packages of package.json missing" % d
        return d, None


def node_tap(tap, args, timeout, label=""):
    """Runs node with args, a script that prints TAP points without
    numbers ("ok - NAME", "not ok - NAME") and "#" comments; numbers its
    points into tap (each name after label), prints the rest as comments,
    and kills it after timeout seconds. Returns (exit status, points)."""
    p = subprocess.Popen(["node"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    points = 0
    try:
        for line in p.stdout:
            line = line.rstrip("\n")
            if line.startswith("ok - ") or line.startswith("not ok - "):
                tap.ok(line.startswith("ok"), label + line.split(" - ", 1)[1])
                points += 1
            else:
                print(line if line.startswith("#") else "# " + line)
                sys.stdout.flush()
        return p.wait(), points
    finally:
        timer.cancel()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers      # list of (name, value)
        self.body = body            # bytes

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.text[:300])


def _read_head(f):
    """A response's status and headers read from the file f."""
    line = f.readline()
    if not line:
        raise ConnectionError("the connection closed with no answer")
    status = int(line.split()[1])
    headers = []
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            return status, headers
        k, _, v = line.decode("latin-1").partition(":")
        headers.append((k.strip(), v.strip()))


def _read_body(f, headers):
    """A response's body: by Content-Length, chunked, or to the end."""
    h = {k.lower(): v for k, v in headers}
    if "chunked" in h.get("transfer-encoding", "").lower():
        out = b""
        while True:
            n = int(f.readline().split(b";")[0], 16)
            if n == 0:
                return out
            out += f.read(n)
            f.readline()
    if "content-length" in h:
        return f.read(int(h["content-length"]))
    return f.read()


def upload_request(port, path, files, tls=None, host="127.0.0.1", headers=None, wait=10):
    """POSTs a multipart/form-data body with files [(name, size in bytes)]
    (each a run of text lines) to path, with "Expect: 100-continue": the
    headers first, the body only if the server answers "100 Continue" (it
    is willing to take a body that long: RFC 9110 10.1.1). Returns
    (continued, Response): whether the body was asked for and sent, and
    the final answer."""
    boundary = "pmbtestboundary7MA4YWxkTrZu0gW"
    parts = []
    for name, size in files:
        head = ('--%s\r\nContent-Disposition: form-data; name="files"; filename="%s"\r\n'
                'Content-Type: text/plain\r\n\r\n' % (boundary, name)).encode()
        parts.append((head, size))
    tail = ("--%s--\r\n" % boundary).encode()
    length = sum(len(h) + n + 2 for h, n in parts) + len(tail)
    h = {"Host": host, "Content-Type": "multipart/form-data; boundary=" + boundary,
         "Content-Length": str(length), "Expect": "100-continue", "Connection": "close"}
    h.update(headers or {})
    raw = socket.create_connection(("127.0.0.1", port), timeout=wait)
    sock = tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw
    try:
        sock.sendall(("POST %s HTTP/1.1\r\n" % path).encode() +
                     "".join("%s: %s\r\n" % kv for kv in h.items()).encode() + b"\r\n")
        f = sock.makefile("rb")
        status, hdrs = _read_head(f)
        if status != 100:
            return False, Response(status, hdrs, _read_body(f, hdrs))
        sock.settimeout(120)
        line = (b"x" * 99 + b"\n") * 10000          # 1,000,000 bytes
        try:
            for head, size in parts:
                sock.sendall(head)
                for at in range(0, size, len(line)):
                    sock.sendall(line[:min(len(line), size - at)])
                sock.sendall(b"\r\n")
            sock.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass            # answered before the end; the answer says why
        status, hdrs = _read_head(f)
        return True, Response(status, hdrs, _read_body(f, hdrs))
    finally:
        sock.close()


def parse_cgi_output(out):
    head, sep, body = out.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("no header/body separator in CGI output: %r" % out[:200])
    headers = []
    status = 200
    for line in head.split(b"\r\n"):
        k, _, v = line.decode("latin-1").partition(":")
        v = v.strip()
        if k.lower() == "status":
            status = int(v.split()[0])
        headers.append((k, v))
    return Response(status, headers, body)


class Site:
    """A fresh site: settings, key and database in a temporary folder."""

    def __init__(self, settings=None, users=None):
        self.dir = tempfile.mkdtemp(prefix="pmb-test-")
        self.db = os.path.join(self.dir, "pmb.db")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.sock = os.path.join(self.dir, "pmb.sock")
        self.procs = []
        conf = {
            "database": self.db,
            "key_file": os.path.join(self.dir, "pmb.key"),
            "template_dir": os.path.join(SRC, "www", "templates"),
            "base_url": self.base,
            "mail_transport": "dir",
            "mail_dir": os.path.join(self.dir, "mail"),
            "admin_email": "consultant@example.com",
            "mail_from": "Sam Carter <sam@example.com>",
            # The suites count each order's mail: the consultant's alert of
            # a new order (default yes) is tested by tests/day.py, which
            # turns it on.
            "alert_new_orders": "no",
            # Likewise the mail daemon's reminders, cancellations and
            # digest (tests/chase.py turns them on): other suites move
            # the test clock by days and count the mail.
            "unpaid_reminder_hours": "0",
            "unpaid_cancel_days": "0",
            "digest_hour": "",
            # The home page's proof (quotes, happy share) is read at each
            # request, so that a test sees what it just approved
            # (tests/offer.py tests the cache).
            "proof_cache_seconds": "0",
        }
        conf.update(settings or {})
        self.conf = conf
        self.conf_path = os.path.join(self.dir, "pmb.conf")
        self.write_conf()
        os.makedirs(conf["mail_dir"], exist_ok=True)
        self.ctl("init")
        for name, pw in (users or {}).items():
            self.ctl("user", "add", name, input=pw + "\n")

    def write_conf(self):
        with open(self.conf_path, "w") as f:
            for k, v in self.conf.items():
                f.write("%s = %s\n" % (k, v))

    def env(self):
        e = dict(os.environ)
        e["PMB_CONFIG"] = self.conf_path
        return e

    def ctl(self, *args, input=None, check=True, env=None):
        p = subprocess.run([PMBCTL] + list(args), input=input, capture_output=True,
                           text=True, env=env or self.env(), timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError("pmbctl %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        return p

    # --- the database -------------------------------------------------
    def sql(self, query, *params):
        c = sqlite3.connect(self.db, timeout=10)
        try:
            rows = c.execute(query, params).fetchall()
            c.commit()
            return rows
        finally:
            c.close()

    def sql1(self, query, *params):
        rows = self.sql(query, *params)
        return rows[0][0] if rows else None

    def dump(self):
        """Every row of every table, for before/after comparisons."""
        c = sqlite3.connect(self.db, timeout=10)
        try:
            out = {}
            for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                  "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%fts%'"):
                out[t] = c.execute("SELECT * FROM %s ORDER BY rowid" % t).fetchall()
            return out
        finally:
            c.close()

    # --- CGI ------------------------------------------------------------
    def cgi(self, method, path, body=b"", headers=None, env=None, content_length=None,
            content_type="application/x-www-form-urlencoded", remote="192.0.2.10"):
        """Runs pmb.fcgi once as plain CGI and returns its Response."""
        if isinstance(body, dict) or isinstance(body, list):
            body = urllib.parse.urlencode(body)
        if isinstance(body, str):
            body = body.encode()
        e = self.env()
        for k in list(e):
            if k.startswith("HTTP_"):
                del e[k]
        path_only, _, query = path.partition("?")
        e.update({
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": method,
            "REQUEST_URI": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": query,
            "REMOTE_ADDR": remote,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": "HTTP/1.1",
        })
        if method == "POST" or body:
            e["CONTENT_TYPE"] = content_type
            e["CONTENT_LENGTH"] = str(len(body)) if content_length is None else content_length
        for k, v in (headers or {}).items():
            e["HTTP_" + k.upper().replace("-", "_")] = v
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        p = subprocess.run([PMB], input=body, capture_output=True, env=e, timeout=60)
        self.last_stderr = p.stderr.decode("utf-8", "replace")
        if p.returncode != 0:
            raise RuntimeError("pmb.fcgi exited %d: %s" % (p.returncode, self.last_stderr))
        return parse_cgi_output(p.stdout)

    # --- nginx + pmb.fcgi --listen ----------------------------------------
    def start(self, workers=2, nginx_conf=None):
        """Serves the site through nginx on a loopback port. nginx_conf,
        if given, rewrites the nginx configuration text before use."""
        self.log_path = os.path.join(self.dir, "pmb.log")
        self.log = open(self.log_path, "ab")
        self.server = subprocess.Popen(
            [PMB, "--listen", "unix:" + self.sock, "--workers", str(workers)],
            env=self.env(), stdout=self.log, stderr=self.log)
        self.procs.append(self.server)
        conf = subprocess.run(
            ["sh", os.path.join(SRC, "scripts", "nginx-conf"), self.dir, str(self.port),
             self.sock, str(self.conf.get("body_limit", 65536)),
             str(self.conf.get("attachments_per_message", 5)),
             str(self.conf.get("attachment_max_mb", 10))],
            capture_output=True, text=True, check=True).stdout
        if nginx_conf is not None:
            conf = nginx_conf(conf)
        nconf = os.path.join(self.dir, "nginx.conf")
        with open(nconf, "w") as f:
            f.write(conf)
        self.nginx = subprocess.Popen(["nginx", "-c", nconf, "-g", "daemon off;"],
                                      stdout=self.log, stderr=self.log)
        self.procs.append(self.nginx)
        self.wait_up()

    def wait_up(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if os.path.exists(self.sock):
                    r = self.get("/")
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("site did not come up: " + open(self.log_path).read()[-2000:])

    def request(self, method, path, body=None, headers=None, timeout=30):
        if isinstance(body, (dict, list)):
            body = urllib.parse.urlencode(body)
        h = {"Host": "127.0.0.1:%d" % self.port}
        if body is not None and method == "POST":
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post(self, path, fields, headers=None):
        return self.request("POST", path, body=fields, headers=headers)

    def workers(self):
        """The pids of the supervisor's worker processes."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.server.pid)],
                             capture_output=True, text=True).stdout
        return sorted(int(x) for x in out.split())

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    def cleanup(self):
        self.stop()
        if os.environ.get("PMB_KEEP_TEST_DIRS") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


def multipart_form(fields, files, field="files"):
    """(body, Content-Type) of a multipart/form-data form as a browser
    sends it: fields a dict, files a list of (file name, bytes) for the
    file input called field."""
    b = "----pmbtest" + os.urandom(12).hex()
    out = []
    for k, v in fields.items():
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (b, k, v)).encode())
    for name, data in files:
        out.append(('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n\r\n' % (b, field, name)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % b).encode())
    return b"".join(out), "multipart/form-data; boundary=" + b


def form_value(html, name):
    """The value of the (first) input called name in html, or None."""
    m = re.search(r'<input[^>]*name="%s"[^>]*>' % re.escape(name), html)
    if not m:
        return None
    v = re.search(r'value="([^"]*)"', m.group(0))
    return unescape(v.group(1)) if v else ""


def unescape(s):
    import html as _h
    return _h.unescape(s)


def jpeg_segments(data):
    """The JPEG's segments before the scan: [(marker, payload)]."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i, segs = 2, []
    while i + 4 <= len(data) and data[i] == 0xff:
        m = data[i + 1]
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        segs.append((m, data[i + 4:i + 2 + n]))
        if m == 0xda:
            break
        i += 2 + n
    return segs


def jpeg_size(data):
    """(width, height) from the JPEG's start of frame."""
    for m, p in jpeg_segments(data):
        if 0xc0 <= m <= 0xcf and m not in (0xc4, 0xc8, 0xcc):
            h, w = struct.unpack(">HH", p[1:5])
            return w, h
    return None


# --- a minimal FastCGI client, for talking to the socket directly -----------
FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_END = 1, 4, 5, 6, 3


def fcgi_record(rtype, content, req_id=1):
    return struct.pack("!BBHHBx", 1, rtype, req_id, len(content), 0) + content


def fcgi_params(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        for n in (len(k), len(v)):
            out += bytes([n]) if n < 128 else struct.pack("!I", n | 0x80000000)
        out += k + v
    return out


def fcgi_read_response(sock, timeout=30):
    """Reads records until END_REQUEST; returns the stdout bytes."""
    sock.settimeout(timeout)
    buf = b""
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out, False
        buf += chunk
        while len(buf) >= 8:
            _, rtype, _, clen, plen = struct.unpack("!BBHHB", buf[:7])
            if len(buf) < 8 + clen + plen:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_END:
                return out, True


def fcgi_get(addr, path, host="pmb.example.com"):
    """GET path over FastCGI at addr (a Unix socket path), as a web server
    would pass https://HOST/PATH on; the Response."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(15)
        s.connect(addr)
        params = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET",
                  "REQUEST_URI": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
                  "REMOTE_ADDR": "127.0.0.1", "SERVER_NAME": host,
                  "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
                  "HTTPS": "on"}
        s.sendall(fcgi_record(FCGI_BEGIN, struct.pack("!HB5x", 1, 0)) +
                  fcgi_record(FCGI_PARAMS, fcgi_params(params)) +
                  fcgi_record(FCGI_PARAMS, b"") + fcgi_record(FCGI_STDIN, b""))
        out, ended = fcgi_read_response(s, timeout=15)
        if not ended:
            raise RuntimeError("FastCGI connection closed before END_REQUEST")
        return parse_cgi_output(out)
    finally:
        s.close()


class Browser:
    """A client with a cookie jar, through nginx when the site runs there,
    else as CGI."""

    def __init__(self, site, remote="192.0.2.10", via=None):
        self.site = site
        self.cookies = {}
        self.remote = remote
        self.via = via or ("nginx" if site.procs else "cgi")

    def _send(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if self.via == "nginx":
            r = self.site.request(method, path, body=body, headers=h)
        else:
            r = self.site.cgi(method, path, body=body or b"", headers=h, remote=self.remote)
        for sc in r.header_all("Set-Cookie"):
            nv = sc.split(";", 1)[0]
            k, _, v = nv.partition("=")
            if "Max-Age=0" in sc or v == "":
                self.cookies.pop(k.strip(), None)
            else:
                self.cookies[k.strip()] = v.strip()
        return r

    def get(self, path, headers=None):
        return self._send("GET", path, headers=headers)

    def post(self, path, fields, headers=None):
        return self._send("POST", path, body=fields, headers=headers)

    def form(self, path):
        """GETs a page and returns (response, {hidden input: value})."""
        r = self.get(path)
        hidden = {}
        for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', r.text):
            hidden[m.group(1)] = unescape(m.group(2))
        return r, hidden


def track_path(location):
    """The /o/TOKEN path of a Location header (the 303 after the ask form
    adds ?new=1#emailed, after a follow-up ?followup=sent#notice)."""
    m = re.search(r"(/o/[A-Za-z0-9_-]+)(?:[?#].*)?$", location or "")
    return m.group(1) if m else None


def link_token(path):
    """What the token of a /o/TOKEN or /r/TOKEN path says, but for the
    second it was made and its MAC: (version, key id, purpose, subject id,
    expiry), or None. Two links to the same page made in different
    seconds differ in their text, so tests compare these, not the text."""
    m = re.search(r"/[or]/([A-Za-z0-9_-]{68})(?:[/?]|$)", path or "")
    if not m:
        return None
    raw = base64.urlsafe_b64decode(m.group(1))
    return (raw[0], raw[1], raw[2], int.from_bytes(raw[3:11], "big"), int.from_bytes(raw[15:19], "big"))


GOOD_QUESTION = {
    "name": "Ada Baker",
    "email": "ada@bakery.example",
    "company": "Ada's Bakery",
    "website": "adasbakery.example",
    "topic": "Getting customers",
    "question": "How do I get more people to try my sourdough on weekdays?",
    "agree": "yes",
}


def ask(browser, **over):
    """Fills and sends the question form; returns the POST's response."""
    _, hidden = browser.form("/ask")
    fields = dict(GOOD_QUESTION)
    fields.update(hidden)
    fields.update(over)
    fields = {k: v for k, v in fields.items() if v is not None}
    return browser.post("/ask", fields)


STAFF = {"sam": "correct horse battery staple"}


def login(browser, user="sam", password=None):
    """Signs browser in; returns the POST's response."""
    _, hidden = browser.form("/admin/login")
    return browser.post("/admin/login", {"username": user,
                                         "password": password or STAFF.get(user, ""),
                                         "csrf_token": hidden.get("csrf_token", "")})


def admin_csrf(browser, path="/admin"):
    """The CSRF token in the forms of an admin page."""
    _, hidden = browser.form(path)
    return hidden.get("csrf_token")


def answered_order(site, staff, email, late=False):
    """An order placed by a new client, paid and answered by staff (a
    signed-in Browser); late moves payment and due time 50 hours back
    first, so that the answer is late. Returns (client, track path, order
    id, refund path from the answer email)."""
    c = Browser(site)
    path = track_path(ask(c, email=email).header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
    tok = admin_csrf(staff)
    staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
    if late:
        site.sql("UPDATE orders SET paid_at = paid_at - 50 * 3600, due_at = due_at - 50 * 3600 WHERE id = ?", oid)
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": "Try a **loyalty card**.", "csrf_token": tok, "confirm": "yes"})
    assert r.status == 303, r
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer'", oid)
    m = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail)  # base_url may be https
    assert m, "no refund link in the answer email: %r" % mail
    return c, path, oid, m.group(1)


def stop_daemon(p, timeout=10):
    """Sends SIGTERM to a `pmbctl ... run` Popen (text pipes) and waits
    for it (SIGKILL after timeout s); returns what it wrote to stderr."""
    p.send_signal(signal.SIGTERM)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
    return err


def parallel(n, fn):
    """Runs fn(i) in n threads released at once; returns the results."""
    out = [None] * n
    gate = threading.Barrier(n)

    def run(i):
        gate.wait()
        try:
            out[i] = fn(i)
        except Exception as e:
            out[i] = "%s: %s" % (type(e).__name__, e)
    ths = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    [th.start() for th in ths]
    [th.join() for th in ths]
    return out


# --- link tokens never reach a log ---------------------------------------------
def token_requests(send, token):
    """Requests that carry a link token, each to a page that fails: a body
    over the limit (413) on /o/TOKEN/rating (a URL that takes no files, so
    the web server refuses it), a 404 under /o/TOKEN, a 400
    (bad percent-encoding in the query), the refund page /r/TOKEN, and the
    token in a query too. send(method, path, body=None, headers=None)
    returns a Response; returns the statuses in that order."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return [
        send("POST", "/o/%s/rating" % token, b"stars=" + b"x" * 100000, form).status,
        send("GET", "/o/%s/no/such/page" % token).status,
        send("GET", "/o/%s?x=%%zz&t=%s" % (token, token)).status,
        send("POST", "/r/%s?t=%s" % (token, token), b"reason=" + b"y" * 100000, form).status,
        send("GET", "/r/%s" % token).status,
    ]


def logs_holding(folder, secret):
    """The files under folder whose name says log (error logs, access logs,
    pmb.fcgi's own): (every such file's name, those that contain
    secret)."""
    logs, found = [], []
    for d, _, files in os.walk(folder):
        for f in files:
            path = os.path.join(d, f)
            if "log" in f and os.path.isfile(path):
                logs.append(os.path.relpath(path, folder))
                with open(path, "rb") as fh:
                    if secret.encode() in fh.read():
                        found.append(logs[-1])
    return sorted(logs), sorted(found)


def stmt_sql(name):
    """The SQL text of statement NAME, read from src/db_stmts.h, so that
    query plans are checked on the statement the program runs."""
    src = open(os.path.join(SRC, "src", "db_stmts.h"), encoding="utf-8").read()
    m = re.search(r"^X\(%s,(.*?)\)\s*$" % name, src, re.S | re.M)
    assert m, "no statement " + name
    block = m.group(1)
    block = block[:block.find("\nX(")] if "\nX(" in block else block
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block)).replace('\\"', '"')


def schema_at(path, version):
    """A database at schema version, made from sql/*.sql of the source
    tree, as an earlier pmb would have left it (tests/currency.py,
    tests/methods.py), in place of any database at path (a Site's new
    one, made by pmbctl init).
    """
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    names = sorted(n for n in os.listdir(os.path.join(SRC, "sql")) if re.match(r"\d{3}_.*\.sql$", n))
    con = sqlite3.connect(path)
    for name in names[:version]:
        with open(os.path.join(SRC, "sql", name), encoding="utf-8") as f:
            con.executescript(f.read())
    con.execute("PRAGMA user_version = %d" % version)
    con.commit()
    con.close()
