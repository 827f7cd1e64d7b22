#!/usr/bin/env python3
"""A missing tool makes a test SKIP, and under CI=true FAIL (scripts/deps
test installed every tool there, so a skip would hide a broken install
step): test files that need a tool are run with a PATH that lacks it,
once without CI and once with CI=true."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC  # noqa: E402

t = Tap()
# The test files, each with the tool that PATH will lack: a whole file
# skipped (browser.py, fuzz.py) and one point skipped (bench.py,
# stripe_standin_check.py).
FILES = [("browser.py", "node"), ("fuzz.py", "clang"), ("bench.py", "wrk"), ("stripe_standin_check.py", "node")]


def run(name, ci):
    """Runs tests/NAME with an empty PATH (no node, npm, clang or wrk), CI=true
    or no CI; returns (exit status, stdout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CC", "PATH")}
    env["PATH"] = empty
    if ci:
        env["CI"] = "true"
    p = subprocess.run([sys.executable, os.path.join(SRC, "tests", name)], env=env,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


empty = tempfile.mkdtemp(prefix="pmb-nopath-")
try:
    for name, tool in FILES:
        rc, out = run(name, False)
        t.ok(rc == 0 and "# SKIP" in out and "not ok" not in out and tool in out,
             "%s without %s: skipped, exit 0" % (name, tool), out)
        rc, out = run(name, True)
        t.ok(rc != 0 and "not ok" in out and "# SKIP" not in out and "broken install step" in out,
             "%s without %s under CI=true: a failure that names the install step" % (name, tool), out)
finally:
    os.rmdir(empty)
sys.exit(t.done())
