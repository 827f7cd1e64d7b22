"""dovecot: a real IMAP server for the tests (Debian's dovecot-imapd).

Dovecot runs rootless on a free loopback port with its own configuration
in a temporary folder: its runtime, state, log and the user's maildir all
live there, one user with one password (a passwd-file), plain IMAP (ssl =
no; or a self-signed certificate with tls=True) with cleartext logins
allowed, no chroots. Dovecot refuses to serve
mail as root and CI runs as root: then the folder is handed to `nobody`
and Dovecot runs as that user. Messages are put there with imaplib's
APPEND (libcurl's APPEND would mark them seen), and flags are read back
with imaplib.
"""
import ctypes
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from pmbtest import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONF = """\
# A rootless Dovecot for one test run (tests/dovecot.py).
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = {ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{dir}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Done {{
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
{tls}service anvil {{
  chroot =
}}
service imap-urlauth-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
service submission-login {{
  chroot =
}}
service managesieve-login {{
  chroot =
}}
"""


def installed():
    return os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/imap")


class Dovecot:
    """One Dovecot: user and password, a port; start() and stop()."""

    def __init__(self, user="sam", password="imap pass 5ecret!", tls=False):
        self.user = user
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="pmb-dovecot-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        if os.getuid() == 0:
            pw = pwd.getpwnam("nobody")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.run_user = "nobody"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self.run_user = pwd.getpwuid(self.uid).pw_name
        import grp
        self.run_group = grp.getgrgid(self.gid).gr_name
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        # tls: a self-signed certificate for 127.0.0.1 (that no system CA
        # trusts), STARTTLS offered on port, TLS from the first byte on
        # tls_port.
        self.tls_port = free_port() if tls else 0
        tls_conf = ""
        if tls:
            crt, key = os.path.join(self.dir, "tls.crt"), os.path.join(self.dir, "tls.key")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", key, "-out", crt], capture_output=True, check=True)
            tls_conf = "ssl_cert = <%s\nssl_key = <%s\n" % (crt, key)
        with open(self.conf, "w") as f:
            f.write(CONF.format(dir=self.dir, user=self.run_user, group=self.run_group,
                                uid=self.uid, gid=self.gid, port=self.port, tls_port=self.tls_port,
                                ssl="yes" if tls else "no", tls=tls_conf))
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("%s:{PLAIN}%s::::::\n" % (user, password))
        for d in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        open(self.log, "a").close()
        if os.getuid() == 0:
            for d, subdirs, files in os.walk(self.dir):
                os.chown(d, self.uid, self.gid)
                for f in files:
                    os.chown(os.path.join(d, f), self.uid, self.gid)

    def _as_user(self):
        if os.getuid() == 0:
            os.setgroups([])
            os.setgid(self.gid)
            os.setuid(self.uid)
        # Stopped with the test even when the test is killed (after the
        # ids changed: changing them clears it). PR_SET_PDEATHSIG is 1.
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            pass

    def start(self, timeout=15):
        """Starts it in the foreground (a child of this process) and waits
        for its port; raises if it does not come up."""
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     preexec_fn=self._as_user,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.dir)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace")
                raise RuntimeError("dovecot exited (%d): %s %s" %
                                   (self.proc.returncode, out, self.log_text()))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not listen on port %d: %s" % (self.port, self.log_text()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def url(self, mailbox="INBOX", port=None, tls=False):
        if tls:
            return "imaps://127.0.0.1:%d/%s" % (self.tls_port, mailbox)
        return "imap://127.0.0.1:%d/%s" % (port or self.port, mailbox)

    # --- the test's own client (imaplib) ------------------------------
    def client(self, mailbox="INBOX"):
        m = imaplib.IMAP4("127.0.0.1", self.port)
        m.login(self.user, self.password)
        typ, _ = m.select(mailbox)
        assert typ == "OK", "cannot select %s" % mailbox
        return m

    def append(self, raw, flags="", mailbox="INBOX"):
        """Puts one message (bytes or str) into mailbox with imaplib's
        APPEND, with flags (e.g. "\\\\Seen"); returns its UID."""
        if isinstance(raw, str):
            raw = raw.encode()
        raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        m = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            m.login(self.user, self.password)
            typ, data = m.append(mailbox, "(%s)" % flags if flags else None,
                                 imaplib.Time2Internaldate(time.time()), raw)
            assert typ == "OK", data
            # APPENDUID: [APPENDUID validity uid]
            txt = data[0].decode()
            uid = int(txt.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
            return uid
        finally:
            m.logout()

    def flags(self, mailbox="INBOX"):
        """{uid: set of flags and keywords} of every message in mailbox."""
        m = self.client(mailbox)
        try:
            typ, data = m.uid("FETCH", "1:*", "(UID FLAGS)")
            out = {}
            for item in data:
                if item is None:
                    continue
                if isinstance(item, tuple):
                    item = item[0]
                s = item.decode()
                uid = int(s.split("UID ", 1)[1].split()[0].rstrip(")"))
                fl = s.split("FLAGS (", 1)[1].split(")", 1)[0]
                out[uid] = set(fl.split())
            return out
        finally:
            m.logout()

    def create(self, mailbox):
        m = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            m.login(self.user, self.password)
            typ, data = m.create(mailbox)
            assert typ == "OK", data
        finally:
            m.logout()

    def count(self, mailbox="INBOX"):
        m = imaplib.IMAP4("127.0.0.1", self.port)
        try:
            m.login(self.user, self.password)
            typ, data = m.status(mailbox, "(MESSAGES)")
            return int(data[0].decode().split("MESSAGES ", 1)[1].split(")")[0])
        finally:
            m.logout()
