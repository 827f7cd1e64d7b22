#!/usr/bin/env python3
"""bench/run --quick, run for real so the benchmark cannot rot: a tiny seed,
1 s per case through nginx with wrk. Checks that it exits 0 (which means
POST /ask lost no order, POST /hooks/stripe answered every event 200 and
stored each distinct one once, every upload's 303 is a file stored whole,
and no case had errors), that results.csv has every case with positive
numbers (and MB/s for the file cases; the upload case may be skipped only
where bench/run says the build's route takes no files yet), and that results.svg is well-formed
XML with a bar per case. Not a performance test: the figures are not
judged.
Skipped when wrk is not installed, failed if so under CI=true."""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, BUILD, SRC  # noqa: E402

t = Tap()
SITES = ("300 orders", "100 orders")    # bench/run --quick's two databases
CASES = ["hello world", "GET /", "GET /o/TOKEN"] + [
    "%s (%s)" % (page, site) for site in SITES for page in (
        "GET /admin", "GET /admin?status=all", "GET /admin deep page",
        "GET /admin/search?q=quartermaine", "GET /admin/search?q=newsletter")
] + ["GET /ask", "POST /ask", "GET /o/TOKEN/files/ID", "nginx: the same file from disk",
      "POST /o/TOKEN/messages with a file", "POST /hooks/stripe"]
FILE_CASES = CASES[-4:-1]       # with MB/s
UPLOAD = "POST /o/TOKEN/messages with a file"
NUMBERS = ["requests_per_s", "p50_ms", "p99_ms", "ratio_to_hello",
           "peak_rss_per_worker_mb", "requests"]


def main():
    if shutil.which("wrk") is None or shutil.which("nginx") is None and \
            not os.path.exists("/usr/sbin/nginx"):
        t.missing("bench/run --quick", "wrk or nginx")
        return t.done()
    out = tempfile.mkdtemp(prefix="pmb-bench-test-")
    try:
        env = dict(os.environ, PMB_BUILDDIR=BUILD)
        p = subprocess.run([os.path.join(SRC, "bench", "run"), "--quick",
                            "--out", out], capture_output=True, text=True,
                           env=env, timeout=300)
        t.eq(p.returncode, 0, "bench/run --quick exits 0 (no errors, no "
             "order lost)") or t.ok(False, "its output", p.stdout +
                                    p.stderr[-3000:])
        t.ok("0 missing" in p.stdout, "POST /ask: every 303 is an order "
             "in the database", p.stdout[-2000:])
        t.ok("pmbctl backup of" in p.stdout, "pmbctl backup is timed")
        m = re.search(r"POST /hooks/stripe: (\d+) answered 200 \((\d+) of them "
                      r"duplicates\), 0 other; (\d+) distinct events signed, "
                      r"(\d+) sent, (\d+) stored, each once", p.stdout)
        t.ok(m and int(m.group(2)) > 0 and int(m.group(4)) == int(m.group(3)) and
             int(m.group(5)) == int(m.group(3)),
             "POST /hooks/stripe: every event sent, later rounds duplicates, "
             "each distinct event stored once", p.stdout[-2000:])
        path = os.path.join(out, "results.csv")
        if not t.ok(os.path.exists(path), "results.csv written"):
            return t.done()
        with open(path, newline="") as f:
            rows = {r["case"]: r for r in csv.DictReader(f)}
        cases = CASES
        if UPLOAD + ": skipped, this build's route takes no files" in p.stdout:
            cases = [c for c in CASES if c != UPLOAD]
        t.ok(cases == CASES or UPLOAD not in rows,
             "the upload case has a row, or says why not", p.stdout[-2000:])
        for case in FILE_CASES:
            r = rows.get(case)
            t.ok(case not in cases or r is not None and float(r.get("mb_per_s") or 0) > 0,
                 "results.csv: %s has its MB/s" % case, r)
        m = re.search(r"POST /o/TOKEN/messages with a file: \d+ MB/s stored \((\d+) answered 303, "
                      r"(\d+) files stored whole", p.stdout)
        t.ok(UPLOAD not in cases or m and 0 < int(m.group(1)) <= int(m.group(2)),
             "POST /o/TOKEN/messages with a file: every 303 is a file stored whole",
             p.stdout[-2000:])
        for case in cases:
            r = rows.get(case)
            bad = [k for k in NUMBERS if r is not None and
                   not float(r.get(k) or 0) > 0]
            t.ok(r is not None and not bad, "results.csv: %s, with "
                 "positive numbers" % case, "row %r; not positive: %s" % (
                     r, bad))
        t.eq(len(rows), len(cases), "results.csv: no other rows")
        svg = os.path.join(out, "results.svg")
        try:
            root = ET.parse(svg).getroot()
            bars = root.findall("{http://www.w3.org/2000/svg}rect")
            t.eq(root.tag, "{http://www.w3.org/2000/svg}svg",
                 "results.svg is well-formed SVG")
            t.eq(len(bars) - 1, len(cases), "results.svg: a bar per case")
        except (OSError, ET.ParseError) as e:
            t.ok(False, "results.svg parses as XML", e)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
