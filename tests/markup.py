#!/usr/bin/env python3
"""Templates own all markup (issue 14): in the HTML and SVG templates
(www/templates, the mail layout included) the only
raw {{{...}}} slots are the ones listed below, each carrying cmark output
(Markdown rendered with unsafe HTML off); no C file but the template
engine and the Markdown renderer has an HTML or SVG tag in a string
literal; every POST form takes its CSRF field from csrf.html."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import Tap, SRC  # noqa: E402

t = Tap()
TEMPLATES = os.path.join(SRC, "www", "templates")

# The raw slots that may stay, (template, variable), each cmark output:
RAW_ALLOWED = {
    ("track_msg.html", "html"),         # a reply on the client's status page
    ("admin_msg.html", "html"),         # a reply or note on the order page
    ("admin_order.html", "preview_html"),  # the preview of the draft reply
    ("admin_reply_confirm.html", "preview_html"),  # the reply as sent, before "Send" is confirmed
    ("home.html", "sample_answer_html"),  # sample_answer, rendered once at start
    ("mail/answer.html", "answer_html"),  # the answer in its email
    ("mail/layout.html", "body_html"),  # mail/KIND.html, escaped by it when queued
}
# The C files that may write markup: the template engine, which renders
# it, and the Markdown renderer (cmark).
C_ALLOWED = {"tmpl.c", "markdown.c"}
# Text in C literals that looks like a tag and is not markup.
NOT_MARKUP = ["Name <address>"]
# Whole literals a file looks for in what it reads and never writes: the
# polyglot markers src/filekind.c searches uploads for (issue 19). Only
# these exact literals, only in that file.
SEARCHED = {"filekind.c": {"<?php", "<script", "<html", "<iframe", "<!doctype html"}}

# HTML and SVG element names: a '<' followed by one of these (or by '!'
# or '?', as in <!doctype and <?xml) opens markup.
ELEMENTS = set("""a abbr address article aside audio b bdi bdo blockquote body br
button canvas caption cite code col colgroup data datalist dd del details dfn
dialog div dl dt em fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6
head header hr html i iframe img input ins kbd label legend li link main mark
meta meter nav noscript object ol optgroup option output p picture pre
progress q s samp script section select small source span strong style sub
summary sup table tbody td template textarea tfoot th thead time title tr u
ul var video wbr svg g rect line circle ellipse path polyline polygon text
tspan desc defs use symbol""".split())
TAG = re.compile(r"<(?:[!?]|/?([A-Za-z][A-Za-z0-9]*)(?=[\s>/]|$))")


def c_literals(src):
    """The string literals of C source src, comments left out, adjacent
    literals joined (as the compiler joins them)."""
    out, i, n = [], 0, len(src)
    joined, last_end = None, -1
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
        elif c == '"':
            j, buf = i + 1, []
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    buf.append(src[j:j + 2])
                    j += 2
                else:
                    buf.append(src[j])
                    j += 1
            text = "".join(buf).replace('\\"', '"')
            if joined is not None and src[last_end:i].strip() == "":
                joined += text
            else:
                if joined is not None:
                    out.append(joined)
                joined = text
            last_end = i = j + 1
        else:
            i += 1
    if joined is not None:
        out.append(joined)
    return out


def tags_in(lit):
    """The tag starts of markup in literal lit."""
    for nm in NOT_MARKUP:
        lit = lit.replace(nm, "")
    return [m.group(0) for m in TAG.finditer(lit)
            if m.group(1) is None or m.group(1).lower() in ELEMENTS]


def c_markup(src):
    """The literals of src that hold markup."""
    return [lit for lit in c_literals(src) if tags_in(lit)]


def test_checker():
    """The checker itself finds markup, and only markup."""
    t.eq(c_markup('buf_puts(b, "<p>");'), ["<p>"], "the checker finds \"<p>\" in C")
    t.eq(c_markup('x = "<a href=\\"" "/admin\\">";'), ['<a href="/admin">'],
         "... a tag with attributes, across joined literals")
    t.eq(c_markup('x = "</" "td>";'), ["</td>"], "... a tag split over literals")
    t.eq(c_markup('x = "<!doctype html>"; y = "<svg width=1>";'),
         ["<!doctype html>", "<svg width=1>"], "... a doctype and an SVG tag")
    t.eq(c_markup('/* "<p>" */ // "<b>"\nx = \'<\'; y = "a < b"; z = "Sam <sam@example.com>";'
                  ' w = "expected \\"Name <address>\\" or an address";'), [],
         "... and not comments, characters, comparisons or mail addresses")


def markup_templates():
    """Every template that is markup: the pages' HTML, the mails' HTML
    (mail/KIND.html and their layout) and the dashboard's SVG chart (the mails' .txt parts are not
    markup), as (name under www/templates, path)."""
    paths = glob.glob(os.path.join(TEMPLATES, "**", "*.html"), recursive=True)
    paths += glob.glob(os.path.join(TEMPLATES, "**", "*.svg"), recursive=True)
    return [(os.path.relpath(p, TEMPLATES), p) for p in sorted(paths)]


def test_templates():
    raw = set()
    names = [name for name, _ in markup_templates()]
    t.ok("mail/layout.html" in names and "admin_dashboard.svg" in names,
         "the markup checked includes the mail layout and the SVG chart", names)
    for name, path in markup_templates():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"\{\{\{\s*([A-Za-z0-9_.]+)\s*\}\}\}", text):
            raw.add((name, m.group(1)))
    t.ok(raw - RAW_ALLOWED == set(), "the only raw slots in the HTML and SVG templates carry cmark output",
         "not allowed: %r" % sorted(raw - RAW_ALLOWED))
    t.ok(RAW_ALLOWED - raw == set(), "every allowed raw slot is still in use (else drop it from the list)",
         "gone: %r" % sorted(RAW_ALLOWED - raw))


def test_c_files():
    bad = []
    files = sorted(glob.glob(os.path.join(SRC, "src", "*.c")))
    for path in files:
        if os.path.basename(path) in C_ALLOWED:
            continue
        with open(path, encoding="utf-8") as f:
            for lit in c_markup(f.read()):
                if lit not in SEARCHED.get(os.path.basename(path), ()):
                    bad.append("%s: %r" % (os.path.basename(path), lit))
    t.ok(len(files) > 20 and not bad, "no C file but tmpl.c and markdown.c writes a tag (%d files)" % len(files),
         "\n".join(bad))


def test_csrf():
    hidden, forms = [], []
    for name, path in markup_templates():
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if name != "csrf.html" and re.search(r'name="csrf_token"', text):
            hidden.append(name)
        for m in re.finditer(r'<form\b[^>]*method="post"[^>]*>(.*?)</form>', text, re.S | re.I):
            if "{{> csrf.html}}" not in m.group(1):
                forms.append("%s: %s" % (name, m.group(0)[:80]))
    t.ok(not hidden, "the CSRF field is written only in csrf.html", "also in: %r" % hidden)
    t.ok(not forms, "every POST form includes csrf.html", "\n".join(forms))


for fn in (test_checker, test_templates, test_c_files, test_csrf):
    t.run(fn)
sys.exit(t.done())
