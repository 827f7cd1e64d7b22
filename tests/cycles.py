#!/usr/bin/env python3
"""No two files of src/ call each other in a loop (scripts/check-cycles),
and the check finds the loops it is shown."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC  # noqa: E402

CHECK = os.path.join(SRC, "scripts", "check-cycles")


def check(d):
    p = subprocess.run([sys.executable, CHECK, d], capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def tree(files):
    """Returns a temporary folder holding files ({name: text})."""
    d = tempfile.mkdtemp(prefix="pmb-cycles-")
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def main():
    t = Tap()
    rc, out = check(os.path.join(SRC, "src"))
    t.ok(rc == 0 and out.startswith("no cycles"), "no cycle among the "
         "files of src/", out)

    # (files, exit status, what the output holds, what it must not, name)
    cases = [
        ({"a.c": '#include "a.h"\n#include "b.h"\n', "a.h": "",
          "b.c": '#include "b.h"\n', "b.h": '#include "a.h"\n'},
         1, "cycle: a -> b -> a", None,
         "a header that includes its caller's header is a cycle"),
        ({"x.c": '#include "y.h"\n#include <stdio.h>\n',
          "y.c": '#include "z.h"\n', "z.c": ' # include "x.h"\n',
          "x.h": "", "y.h": "", "z.h": "", "w.c": '#include "x.h"\n'},
         1, "cycle: x -> y -> z -> x", "w",
         "a loop through three files is found, and a file outside it is "
         "not named"),
        ({"p.c": '#include "q.h"\n#include "tap.h"\n', "q.c": "",
          "q.h": "", "tap.h": '#include "p.h"\n'},
         0, "no cycles among 2 files", None,
         "one-way calls and headers without a .c file are no cycle"),
    ]
    for files, want_rc, want, unwanted, name in cases:
        rc, out = check(tree(files))
        t.ok(rc == want_rc and want in out and
             (unwanted is None or unwanted not in out), name, out)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
