#!/usr/bin/env python3
"""No function of src/ is over 80 lines without a one-line reason above
it (scripts/check-functions), and the check finds the ones it is shown."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC  # noqa: E402

CHECK = os.path.join(SRC, "scripts", "check-functions")


def check(files):
    """Runs the check on a folder holding files ({name: text}) or, for
    None, on src/; returns (exit status, output)."""
    d = os.path.join(SRC, "src")
    if files is not None:
        d = tempfile.mkdtemp(prefix="pmb-functions-")
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    p = subprocess.run([sys.executable, CHECK, d], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def function(name, n, comment="/* Does it. */\n"):
    """A C function called name whose body is n lines."""
    return "%sstatic int\n%s(int x)\n{\n%s}\n" % (comment, name,
                                                    "\tx++;\n" * n)


def main():
    t = Tap()
    rc, out = check(None)
    t.ok(rc == 0 and out.startswith("no function over 80 lines"),
         "no function of src/ is over 80 lines without a reason", out)

    rc, out = check({"a.c": function("short", 80) + function("long", 81)})
    t.ok(rc == 1 and "a.c:" in out and "long: 81 lines" in out and
         "short" not in out, "a function of 81 lines is found, one of 80 "
         "is not", out)
    rc, out = check({"b.c": function("why", 120, "/* Does it.\n * Over 80 lines: one "
                                     "switch over every kind. */\n")})
    t.ok(rc == 0, "a long function with its one-line reason above passes",
         out)
    rc, out = check({"c.c": "static int\nf(int a,\n    int b)\n{\n" +
                     "\ta++;\n" * 90 + "}\n"})
    t.ok(rc == 1 and "f: 90 lines" in out, "a function whose parameters "
         "run over two lines is named", out)
    t.done()


if __name__ == "__main__":
    main()
