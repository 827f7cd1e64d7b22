#!/usr/bin/env python3
"""libFuzzer harnesses of tests/fuzz/, built with clang, ASan and UBSan in
a temporary folder, each run over its checked-in corpus (every file there,
crash inputs found earlier included, must pass: a regression test) and
then fuzzed for FUZZ_SECONDS seconds (default 5). Skipped when clang or
its libFuzzer runtime is missing (failed if so under CI=true).

Settings (environment): FUZZ_SECONDS; FUZZ_TARGETS (space-separated,
e.g. "tmpl mail"; default all); FUZZ_JOBS (targets fuzzed at once,
default 1); FUZZ_BUILD_DIR (reuse or keep a build there); FUZZ_OUT_DIR
(keep the new corpus and crash inputs there). Prints one "# fuzz TARGET:"
line per target with its executions and crashes."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC, missing_tool  # noqa: E402

HERE = os.path.join(SRC, "tests", "fuzz")
ALL = ["urlencoded", "cookie", "token", "tmpl", "markdown", "mail", "conf",
       "stripe_sig", "image", "parse", "intake", "multipart", "filekind", "imap"]
t = Tap()


def clang_ok(tmp):
    """Whether clang can link a libFuzzer program here: (True, ""), or
    (False, what is not installed)."""
    if shutil.which(os.environ.get("CC", "clang")) is None:
        return False, os.environ.get("CC", "clang")
    src = os.path.join(tmp, "probe.c")
    with open(src, "w") as f:
        f.write("#include <stddef.h>\n#include <stdint.h>\n"
                "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                "{ (void)d; (void)n; return 0; }\n")
    p = subprocess.run([os.environ.get("CC", "clang"), "-fsanitize=fuzzer,address,undefined",
                        src, "-o", os.path.join(tmp, "probe")], capture_output=True, text=True)
    if p.returncode != 0:
        return False, "libclang-rt-14-dev (clang cannot link a libFuzzer program)"
    return True, ""


def run_target(name, build, work, seconds):
    """Runs one harness: the corpus as a regression test, then fuzzing.
    Returns (regression ok, detail, executions, crash files, log tail)."""
    exe = os.path.join(build, "fuzz_" + name)
    seeds = os.path.join(HERE, "corpus", name)
    new = os.path.join(work, "corpus-" + name)
    art = os.path.join(work, "crash-" + name) + os.sep
    os.makedirs(new, exist_ok=True)
    os.makedirs(art, exist_ok=True)
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0" + (
        ":" + env["ASAN_OPTIONS"] if env.get("ASAN_OPTIONS") else "")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    # Every file in the corpus, once: a crash fixed earlier stays fixed.
    reg = subprocess.run([exe, "-runs=0", "-artifact_prefix=" + art, seeds],
                         capture_output=True, text=True, env=env, timeout=600)
    reg_ok = reg.returncode == 0
    # Fuzzing; new inputs go to a scratch folder, never the checked-in one.
    log = os.path.join(work, name + ".log")
    with open(log, "w") as f:
        p = subprocess.run([exe, "-max_total_time=%d" % seconds, "-timeout=10",
                            "-rss_limit_mb=2048", "-max_len=8192", "-print_final_stats=1",
                            "-artifact_prefix=" + art, new, seeds],
                           stdout=f, stderr=subprocess.STDOUT, env=env,
                           timeout=seconds * 2 + 300)
    text = open(log, errors="replace").read()
    m = re.findall(r"stat::number_of_executed_units:\s*(\d+)", text)
    execs = int(m[-1]) if m else 0
    if not m:
        m = re.findall(r"#(\d+)\s", text)
        execs = int(m[-1]) if m else 0
    crashes = sorted(glob.glob(art + "crash-*") + glob.glob(art + "leak-*") +
                     glob.glob(art + "timeout-*") + glob.glob(art + "oom-*"))
    tail = "\n".join(l for l in text.splitlines()
                     if "ERROR" in l or "fuzz check" in l or "SUMMARY" in l or "#0 " in l)[:3000]
    return reg_ok, reg.stderr[-2000:], execs, crashes, p.returncode, tail


def main():
    seconds = int(os.environ.get("FUZZ_SECONDS", "5"))
    targets = os.environ.get("FUZZ_TARGETS", "").split() or ALL
    jobs = int(os.environ.get("FUZZ_JOBS", "1"))
    tmp = tempfile.mkdtemp(prefix="pmb-fuzz-")
    try:
        ok, why = clang_ok(tmp)
        if not ok:
            missing_tool(why)
        build = os.environ.get("FUZZ_BUILD_DIR") or os.path.join(tmp, "build")
        t0 = time.time()
        b = subprocess.run(["sh", os.path.join(HERE, "build"), build],
                           capture_output=True, text=True)
        if not t.ok(b.returncode == 0, "the fuzz harnesses build with clang, ASan and UBSan",
                    b.stdout + b.stderr[-3000:]):
            return
        print("# fuzz: built in %.0f s" % (time.time() - t0))
        work = os.environ.get("FUZZ_OUT_DIR") or os.path.join(tmp, "work")
        os.makedirs(work, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            results = list(ex.map(lambda n: (n, run_target(n, build, work, seconds)), targets))
        for name, (reg_ok, reg_err, execs, crashes, rc, tail) in results:
            t.ok(reg_ok, "fuzz_%s: every input of its corpus passes" % name, reg_err)
            print("# fuzz %s: %d executions in %d s, %d crashes" % (name, execs, seconds, len(crashes)))
            t.ok(rc == 0 and not crashes and execs > 0,
                 "fuzz_%s: %d s of fuzzing, no crash" % (name, seconds),
                 "exit %d; %s\n%s" % (rc, " ".join(crashes), tail))
    finally:
        # FUZZ_OUT_DIR and FUZZ_BUILD_DIR, when given, lie outside tmp.
        if not os.environ.get("PMB_KEEP_TEST_DIRS"):
            shutil.rmtree(tmp, ignore_errors=True)


main()
sys.exit(t.done())
