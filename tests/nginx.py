#!/usr/bin/env python3
"""The foundation through real nginx on a loopback port: headers, error
pages, body limits, static files, and the worker supervisor (a killed
worker is replaced; SIGTERM lets a request in flight finish)."""
import os
import signal
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, parse_cgi_output, fcgi_record, fcgi_params,  # noqa: E402
                     fcgi_read_response, FCGI_BEGIN, FCGI_PARAMS, FCGI_STDIN, ask, track_path,
                     token_requests, logs_holding, upload_request)

t = Tap()
site = Site()
site.start(workers=2)

CSP = ("default-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


def headers_ok(r, what):
    t.eq(r.header("Content-Security-Policy"), CSP, what + ": CSP")
    t.eq(r.header("X-Content-Type-Options"), "nosniff", what + ": nosniff")
    t.eq(r.header("Referrer-Policy"), "no-referrer", what + ": Referrer-Policy")
    t.eq(r.header("Server"), "nginx", what + ": no version banner")


def test_pages():
    r = site.get("/")
    t.eq(r.status, 200, "GET / through nginx answers 200")
    t.eq(r.header("Content-Type"), "text/html; charset=utf-8", "GET /: charset utf-8")
    headers_ok(r, "GET /")
    r = site.request("HEAD", "/")
    t.ok(r.status == 200 and r.body == b"", "HEAD / through nginx: 200, no body")
    r = site.get("/nothing/here")
    t.eq(r.status, 404, "an unknown path answers 404")
    t.ok("Page not found" in r.text and "<html" in r.text, "the 404 is an HTML page")
    headers_ok(r, "404")
    r = site.get("/?x=%zz")
    t.eq(r.status, 400, "?x=%zz answers 400")
    t.ok("percent-encoding" in r.text, "the 400 page says what was wrong")
    headers_ok(r, "400")
    r = site.request("PUT", "/")
    t.eq(r.status, 405, "PUT / answers 405")
    headers_ok(r, "405")


def test_body_limit():
    body = "question=" + "x" * (2 * 1024 * 1024)
    r = site.request("POST", "/ask", body=body)
    t.eq(r.status, 413, "a 2 MB POST answers 413")
    t.ok("Too much to send" in r.text and "<html" in r.text, "the 413 page is the site's own")
    headers_ok(r, "413")
    r = site.request("POST", "/ask", body="a=1",
                     headers={"Content-Type": "application/x-www-form-urlencoded",
                              "Content-Length": "3"})
    t.ok(r.status in (400, 403), "a small POST passes the body limit (%d)" % r.status)
    r = site.request("POST", "/ask", body="a=1", headers={"Content-Type": "text/plain"})
    t.eq(r.status, 415, "a POST that is not a form answers 415")


def test_tokens_not_logged():
    """A link's token never reaches a log: nginx's error log writes the
    request line with each error (a 413 first of all), pmb.fcgi its own."""
    path = track_path(ask(Browser(site)).header("Location"))
    token = path.rsplit("/", 1)[1] if path else None
    t.ok(token and len(token) > 20, "a client's link carries a token", path)
    if not token:
        return
    got = token_requests(site.request, token)
    t.eq(got[:4], [413, 404, 400, 413], "tokened requests: 413, 404, 400, 413 on the refund page")
    logs, holding = logs_holding(site.dir, token)
    t.ok("nginx-error.log" in logs and "pmb.log" in logs, "nginx and pmb.fcgi wrote their logs", logs)
    t.eq(holding, [], "no log holds the link's token")


MB = 1024 * 1024
FOUR_FILES = [("part%d.txt" % i, 5 * MB) for i in range(4)]     # 20 MB


def test_upload_limits():
    """The URLs that take files allow a body of attachments_per_message x
    attachment_max_mb MiB + body_limit + 64 KiB (52,559,872 bytes with the
    defaults), every other URL body_limit: nginx asks for a 20 MB body only
    on the first (100 Continue), spools it and passes it to pmb.fcgi; past
    the limits it refuses it before reading, with pmb's own 413 page."""
    path = track_path(ask(Browser(site)).header("Location"))
    t.ok(path is not None, "a question gives a client's link", path)
    if path is None:
        return
    for url in (path + "/messages", "/ask"):
        went, r = upload_request(site.port, url, FOUR_FILES)
        t.ok(went and r.header("Content-Security-Policy") == CSP and "<html" in r.text,
             "POST %s: nginx takes a 20 MB multipart body and pmb.fcgi answers" %
             url.replace(path, "/o/TOKEN"), (went, r))
    big = [("a.txt", 50 * MB), ("b.txt", 128 * 1024)]     # 1 byte too many, and more
    for url in (path + "/messages", "/lost", path + "/rating", "/admin/orders/1/paid"):
        went, r = upload_request(site.port, url, big if url.endswith("/messages") else FOUR_FILES)
        t.ok(not went and r.status == 413 and "Too much to send" in r.text,
             "POST %s: nginx refuses the body before reading it, with pmb's 413 page" %
             url.replace(path, "/o/TOKEN"), (went, r))
    went, r = upload_request(site.port, "/admin/orders/1/note", [("a.txt", 20 * MB)])
    t.ok(went and r.header("Content-Security-Policy") == CSP,
         "POST /admin/orders/ID/note: nginx takes a 20 MB body", (went, r))


def test_static():
    r = site.get("/static/pmb.css")
    t.eq(r.status, 200, "the stylesheet is served by nginx")
    t.ok(r.header("Content-Type", ).startswith("text/css"), "as text/css")
    headers_ok(r, "static file")
    r = site.get("/static/nope.css")
    t.eq(r.status, 404, "a missing static file answers 404")


def test_socket_mode():
    mode = stat.S_IMODE(os.stat(site.sock).st_mode)
    t.eq(oct(mode), oct(0o660), "the Unix socket is mode 0660")


def test_worker_replaced():
    before = site.workers()
    t.eq(len(before), 2, "two workers run")
    os.kill(before[0], signal.SIGKILL)
    ok = False
    for _ in range(40):
        time.sleep(0.05)
        now = site.workers()
        if len(now) == 2 and before[0] not in now:
            ok = True
            break
    t.ok(ok, "a worker killed with SIGKILL is replaced within a second", site.workers())
    codes = [site.get("/").status for _ in range(20)]
    t.eq(codes, [200] * 20, "the site keeps answering after a worker was killed")


def test_sigterm_finishes_request():
    """A POST whose body is still arriving when SIGTERM comes in: the worker
    finishes it, answers, and the server exits 0."""
    s = Site()
    try:
        s.start(workers=1)
        c = socket.socket(socket.AF_UNIX)
        c.connect(s.sock)
        body = b"name=Slow&question=" + b"z" * 1000
        params = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/ask", "QUERY_STRING": "",
                  "CONTENT_TYPE": "application/x-www-form-urlencoded",
                  "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1"}
        c.sendall(fcgi_record(FCGI_BEGIN, bytes([0, 1, 0, 0, 0, 0, 0, 0])) +
                  fcgi_record(FCGI_PARAMS, fcgi_params(params)) + fcgi_record(FCGI_PARAMS, b"") +
                  fcgi_record(FCGI_STDIN, body[:100]))
        time.sleep(0.3)               # the worker is now reading the body
        s.server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        t.eq(s.server.poll(), None, "after SIGTERM the server waits for the request in flight")
        c.sendall(fcgi_record(FCGI_STDIN, body[100:]) + fcgi_record(FCGI_STDIN, b""))
        out, ended = fcgi_read_response(c)
        r = parse_cgi_output(out)
        t.ok(ended and r.status == 403 and b"</html>" in r.body,
             "the request in flight gets its whole answer", (ended, r))
        rc = s.server.wait(timeout=10)
        t.eq(rc, 0, "the server exits 0 after SIGTERM")
        t.ok(not os.path.exists(s.sock), "the socket file is removed on exit")
    finally:
        s.cleanup()


def test_tcp_listener_loopback():
    import subprocess
    from pmbtest import PMB, free_port
    port = free_port()
    p = subprocess.Popen([PMB, "--listen", ":%d" % port, "--workers", "1"], env=site.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        line = [x for x in out.splitlines() if ":%d " % port in x + " "]
        t.ok(line and "127.0.0.1:%d" % port in line[0], "a TCP listener without a host binds loopback", line)
    finally:
        p.terminate()
        p.wait(timeout=10)


for fn in (test_pages, test_body_limit, test_tokens_not_logged, test_upload_limits, test_static, test_socket_mode, test_worker_replaced,
           test_sigterm_finishes_request, test_tcp_listener_loopback):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
