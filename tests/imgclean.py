#!/usr/bin/env python3
"""pmb-imgclean (src/imgclean.c, issue 19), run for real on the samples
of tests/files/: a JPEG with GPS EXIF and orientation 6 comes back
without any APP1 (Exif) segment and turned upright (2x1 -> 1x2), from a
file or stdin; a PNG's text chunks go; PNG, GIF and WebP keep their
format; a 60-megapixel PNG (a decompression bomb of 7 kB) and
--max-pixels are refused before decoding; SVG, PDF and PHP are refused;
a refusal is one line on stderr and leaves no output. Then the programs'
links: pmb.fcgi has libmagic and never libvips (ldd), and a worker's
resident memory with libmagic's database loaded stays under 16 MB.
The images are read back here in plain Python (no Pillow needed)."""
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC, BUILD, PMB, Site, jpeg_segments, jpeg_size  # noqa: E402

HELPER = os.path.join(BUILD, "pmb-imgclean")
FILES = os.path.join(SRC, "tests", "files")
t = Tap()
tmp = tempfile.mkdtemp(prefix="pmb-imgclean-")


def sample(name):
    with open(os.path.join(FILES, name), "rb") as f:
        return f.read()


def clean(name=None, data=None, args=()):
    """Runs the helper on sample name (or on data through stdin); returns
    (exit status, stderr, output bytes or None)."""
    out = os.path.join(tmp, "out-%d" % t.n)
    if data is None:
        p = subprocess.run([HELPER] + list(args) + [os.path.join(FILES, name), out],
                           capture_output=True, timeout=60)
    else:
        p = subprocess.run([HELPER] + list(args) + ["-", out], input=data,
                           capture_output=True, timeout=60)
    body = None
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
    return p.returncode, p.stderr.decode(errors="replace"), body


def has_exif(data):
    return any(m == 0xe1 and p.startswith(b"Exif\0\0") for m, p in jpeg_segments(data))


def png_chunks(data):
    """The PNG's chunk types, in order."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    i, types = 8, []
    while i + 8 <= len(data):
        n = struct.unpack(">I", data[i:i + 4])[0]
        types.append(data[i + 4:i + 8].decode("latin-1"))
        i += 12 + n
    return types


def png_with_text(png):
    """png with a tEXt chunk (a "Comment" with a place) after IHDR."""
    body = b"tEXt" + b"Comment\0taken at 48.8580 N, 2.2945 E"
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return png[:33] + chunk + png[33:]


def test_jpeg():
    src = sample("gps.jpeg")
    t.ok(has_exif(src) and b"PmbTestCamera" in src and jpeg_size(src) == (2, 1),
         "the sample JPEG has EXIF (GPS, orientation 6) and is 2x1")
    for how, (rc, err, out) in (("a file", clean("gps.jpeg")),
                                ("stdin", clean(data=src))):
        if not t.ok(rc == 0 and out is not None, "a JPEG from %s is cleaned" % how, err):
            continue
        t.ok(not has_exif(out) and b"PmbTestCamera" not in out and
             not any(m == 0xe1 for m, _ in jpeg_segments(out)),
             "from %s: no APP1 segment left (no EXIF, no GPS)" % how,
             [hex(m) for m, _ in jpeg_segments(out)])
        t.eq(jpeg_size(out), (1, 2), "from %s: turned upright by its orientation" % how)


def test_formats():
    rc, err, out = clean(data=png_with_text(sample("sample.png")))
    t.ok(rc == 0 and out is not None and "tEXt" not in png_chunks(out)
         and png_chunks(out)[0] == "IHDR",
         "a PNG keeps its format and loses its text chunk", (err, out and png_chunks(out)))
    for name, magic in (("sample.gif", b"GIF8"), ("sample.webp", b"RIFF"),
                        ("polyglot.gif", b"GIF8")):
        rc, err, out = clean(name)
        t.ok(rc == 0 and out is not None and out[:4] == magic,
             "%s is cleaned in its own format" % name, err)
    rc, err, out = clean("polyglot.gif")
    t.ok(out is not None and b"<?php" not in out, "the GIF+PHP polyglot loses its PHP")


def test_refusals():
    cases = [("bomb.png", (), "too many pixels"),
             ("sample.png", ("--max-pixels=63",), "too many pixels"),
             ("image.svg", (), "not a PNG, JPEG, GIF or WebP"),
             ("sample.pdf", (), "not a PNG, JPEG, GIF or WebP"),
             ("php.png", (), "not a PNG, JPEG, GIF or WebP")]
    for name, args, why in cases:
        rc, err, out = clean(name, args=args)
        t.ok(rc == 1 and why in err and err.count("\n") == 1 and out is None,
             "%s %s is refused with one line, nothing written" % (name, " ".join(args)),
             (rc, err, out is not None))
    rc, err, out = clean("sample.png", args=("--max-pixels=64",))
    t.ok(rc == 0, "--max-pixels=64 takes an 8x8 image", err)
    rc, err, out = clean(data=sample("gps.jpeg")[:300])
    t.ok(rc == 1 and out is None, "a cut JPEG is refused", err)
    p = subprocess.run([HELPER, "only-one-arg"], capture_output=True, timeout=30)
    t.ok(p.returncode == 2 and b"usage" in p.stderr, "a wrong call: status 2 and the usage")


def ldd(path):
    return subprocess.run(["ldd", path], capture_output=True, text=True).stdout


def test_links():
    fcgi, helper = ldd(PMB), ldd(HELPER)
    t.ok("libvips" in helper, "pmb-imgclean links libvips", helper)
    t.ok("libvips" not in fcgi and "libglib" not in fcgi,
         "pmb.fcgi does not link libvips (nor GLib)", fcgi)
    t.ok("libmagic" in fcgi, "pmb.fcgi links libmagic", fcgi)


def status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(field + r":\s+(\d+)", f.read()).group(1))


def test_worker_memory():
    """A worker's resident memory once libmagic's database is loaded (by
    the supervisor, before it forks: bench/README.md has the numbers)."""
    site = Site()
    try:
        site.start(workers=2)
        r = site.get("/")
        t.eq(r.status, 200, "the home page with libmagic loaded")
        with open("/proc/%d/maps" % site.server.pid) as f:
            t.ok("magic.mgc" in f.read(), "the supervisor maps magic.mgc")
        rss = max(status(p, "VmRSS") for p in site.workers())
        print("# worker VmRSS with libmagic loaded: %d kB" % rss)
        if "libasan" in ldd(PMB):
            t.skip("a worker stays under 16 MB", "built with ASan (%d kB)" % rss)
        else:
            t.ok(rss < 16 * 1024, "a worker stays under 16 MB (%d kB)" % rss)
    finally:
        site.stop()


def main():
    if not os.path.exists(HELPER):
        t.ok(False, "pmb-imgclean is built", HELPER)
        return t.done()
    for fn in (test_jpeg, test_formats, test_refusals, test_links, test_worker_memory):
        t.run(fn)
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
