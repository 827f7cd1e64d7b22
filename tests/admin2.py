#!/usr/bin/env python3
"""The consultant's side, part two, through real nginx: reply snippets,
full-text search, the dashboard with its SVG chart, the accountant's CSV
export, and the audit log."""
import csv
import io
import os
import re
import sqlite3
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, SRC, ask, login, admin_csrf,  # noqa: E402
                     unescape, STAFF, stmt_sql)

t = Tap()
site = Site(users=STAFF)
site.start()

H, D, W = 3600, 86400, 7 * 86400
MONDAY0 = 4 * D          # 1970-01-05 00:00 UTC was a Monday


def plan(query, *params):
    """The query plan of query. pmb_hits, an FTS5 function that pmb.fcgi
    registers (src/search_rank.c), is a stub here: it leaves the plan as
    it is."""
    con = sqlite3.connect(site.db)
    try:
        con.create_function("pmb_hits", 2, lambda fts, col: 0)
        return " | ".join(r[3] for r in con.execute("EXPLAIN QUERY PLAN " + query, params))
    finally:
        con.close()


def new_order(email, question, name="Ada Baker"):
    c = Browser(site)
    r = ask(c, email=email, name=name, question=question)
    assert r.status == 303, r
    return site.sql1("SELECT id FROM orders WHERE email = ? ORDER BY id DESC", email)


def signed_in():
    b = Browser(site)
    login(b)
    return b, admin_csrf(b)


# --- snippets -----------------------------------------------------------------

def test_snippets():
    b, tok = signed_in()
    r = b.get("/admin/snippets")
    t.eq(r.status, 200, "GET /admin/snippets answers 200")
    t.ok('action="/admin/snippets"' in r.text and 'name="title"' in r.text, "the list page has the create form")

    title, body = "Thanks & <b>welcome</b>", "Thank you for your question.\n\n**Here is my plan:**"
    r = b.post("/admin/snippets", {"title": title, "body": body})
    t.eq(r.status, 403, "creating without the CSRF token answers 403")
    t.ok("Thank you for your question." in unescape(r.text), "and the form comes back with the text typed")
    r = b.post("/admin/snippets", {"title": title, "body": body, "csrf_token": tok},
               headers={"Origin": "http://evil.example"})
    t.eq(r.status, 403, "creating from another origin answers 403")
    t.eq(site.sql1("SELECT count(*) FROM snippets"), 0, "nothing was created")

    r = b.post("/admin/snippets", {"title": "", "body": body, "csrf_token": tok})
    t.eq(r.status, 400, "a snippet without a title answers 400")
    t.ok(re.search(r'id="title-error">[^<]*title', r.text), "the error sits next to the title field")
    t.ok("Thank you for your question." in unescape(r.text), "the text typed is kept")
    r = b.post("/admin/snippets", {"title": "x" * 101, "body": body, "csrf_token": tok})
    t.eq(r.status, 400, "a title over 100 characters answers 400")
    r = b.post("/admin/snippets", {"title": "Long", "body": "y" * 10001, "csrf_token": tok})
    t.eq(r.status, 400, "a text over 10,000 characters answers 400")
    t.eq(site.sql1("SELECT count(*) FROM snippets"), 0, "still nothing created")

    r = b.post("/admin/snippets", {"title": title, "body": body, "csrf_token": tok})
    t.eq(r.status, 303, "a valid snippet is created (303)")
    t.ok(r.header("Location", ).endswith("/admin/snippets?done=created"), "back to the list")
    sid, st, sb = site.sql("SELECT id, title, body FROM snippets")[0]
    t.eq((st, sb), (title, body), "the snippet is stored as typed")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'create snippet'"), 1, "creating is audited")
    r = b.get("/admin/snippets?done=created")
    t.ok("Snippet saved." in r.text, "the list says it was saved")
    t.ok("Thanks &amp; &lt;b&gt;welcome&lt;/b&gt;" in r.text and "<b>welcome</b>" not in r.text,
         "titles are HTML-escaped in the list")
    t.ok('href="/admin/snippets/%d"' % sid in r.text, "the list links to the edit form")

    r = b.get("/admin/snippets/%d" % sid)
    t.eq(r.status, 200, "GET /admin/snippets/ID answers 200")
    t.ok(unescape(re.search(r'<textarea[^>]*name="body"[^>]*>([^<]*)</textarea>', r.text).group(1)) == body,
         "the edit form holds the text")
    r = b.post("/admin/snippets/%d" % sid, {"title": "", "body": "changed", "csrf_token": tok})
    t.eq(r.status, 400, "an edit without a title answers 400")
    t.ok("changed" in r.text, "and keeps what was typed")
    new_body = "Thanks again.\n\n- one\n- two"
    r = b.post("/admin/snippets/%d" % sid, {"title": "Thanks", "body": new_body, "csrf_token": tok})
    t.eq(r.status, 303, "an edit is saved (303)")
    t.eq(site.sql("SELECT title, body FROM snippets WHERE id = ?", sid)[0], ("Thanks", new_body),
         "the edit is stored")
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'edit snippet'"), 1, "editing is audited")

    # insertion into a reply draft from the order page
    oid = new_order("snippet-client@example.com", "How do I write a menu that sells more desserts?")
    b.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
    page = b.get("/admin/orders/%d" % oid).text
    t.ok('<option value="%d">Thanks</option>' % sid in page, "the order page offers the snippet")
    r = b.post("/admin/orders/%d/draft" % oid, {"body": "Hello Ada,", "snippet": str(sid), "csrf_token": tok})
    t.eq(r.status, 200, "inserting a snippet answers 200 with the order page")
    t.eq(site.sql1("SELECT reply_draft FROM orders WHERE id = ?", oid), "Hello Ada,\n\n" + new_body,
         "the snippet is appended to the saved draft")
    t.ok("Thanks again." in unescape(r.text), "the editor shows the draft with the snippet")

    # delete
    before = site.sql1("SELECT count(*) FROM snippets")
    r = b.post("/admin/snippets/%d/delete" % sid, {})
    t.eq(r.status, 403, "deleting without the CSRF token answers 403")
    t.eq(site.sql1("SELECT count(*) FROM snippets"), before, "and deletes nothing")
    r = b.post("/admin/snippets/%d/delete" % sid, {"csrf_token": tok})
    t.eq(r.status, 303, "delete answers 303")
    t.eq(site.sql1("SELECT count(*) FROM snippets WHERE id = ?", sid), 0, "the snippet is gone")
    t.eq(site.sql1("SELECT detail FROM audit WHERE action = 'delete snippet'"), "#%d Thanks" % sid,
         "deleting is audited with what was deleted")
    t.eq(b.get("/admin/snippets/%d" % sid).status, 404, "a deleted snippet answers 404")
    t.eq(b.post("/admin/snippets/%d/delete" % sid, {"csrf_token": tok}).status, 404, "deleting twice answers 404")
    r = b.post("/admin/snippets/%d" % sid, {"title": "Lost", "body": "Text I must not lose", "csrf_token": tok})
    t.ok(r.status == 404 and "Text I must not lose" in r.text,
         "editing a deleted snippet answers 404 and keeps the text", r)
    t.eq(b.get("/admin/snippets/abc").status, 404, "a malformed snippet id answers 404")
    t.eq(Browser(site).get("/admin/snippets").status, 303, "signed out, the snippets page sends to sign-in")


# --- search -----------------------------------------------------------------

SEARCH_PAGE = 20         # src/page_admin_search.c: results per page
SEARCH_WINDOW = 100      # and the matches ranked together


def search(b, q, page=None, before=None):
    from urllib.parse import urlencode
    args = {"q": q}
    if page:
        args["page"] = page
    if before is not None:
        args["before"] = before
    return b.get("/admin/search?" + urlencode(args))


def link(html, what):
    """The href of the paging link whose rel or class is what, unescaped,
    or None."""
    m = re.search(r'href="([^"]+)" (?:rel|class)="%s"' % what, html)
    return unescape(m.group(1)) if m else None


def result_ids(html):
    return [int(x) for x in re.findall(r'<li class="result">\s*<p><a href="/admin/orders/(\d+)"', html)]


def import_orders(n, name, key, question):
    """Writes n orders with their questions straight to the database, as an
    import would (not through POST /ask): order i is name's, at
    KEYi@example.com, asking question(i). Returns their ids."""
    con = sqlite3.connect(site.db)
    now = int(time.time())
    ids = []
    for i in range(n):
        con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, "
                    "updated_at) VALUES (?, ?, ?, 100, 'GBP', ?, ?, ?)",
                    ("%s%d" % (key, i), name, "%s%d@example.com" % (key, i), now, now, now))
        ids.append(con.execute("SELECT last_insert_rowid()").fetchone()[0])
        con.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'question', ?, ?)",
                    (ids[-1], question(i), now))
    con.commit()
    con.close()
    return ids


def test_search():
    b, tok = signed_in()
    a = new_order("zq@quill.example", "How should I price my artisan croissants for the cafés in town?",
                  name="Zephyrine Quill")
    bo = new_order("bob@stone.example", "I make pottery. How do I market my pottery studio? "
                   "<script>alert(1)</script> & \"quotes\"", name="Bob Stone")
    c = new_order("carol@example.com", "My friend zephyrine told me about you. " + "I sell honey at markets. " * 12,
                  name="Carol Hart")
    b.post("/admin/orders/%d/paid" % bo, {"method": "bank_transfer", "amount": "150.00", "csrf_token": tok})
    r = b.post("/admin/orders/%d/reply" % bo, {"body": "Fire a small batch in the kiln and post it.",
                                               "csrf_token": tok, "confirm": "yes"})
    t.eq(r.status, 303, "a reply is sent (fixture)")
    b.post("/admin/orders/%d/note" % bo, {"body": "Client mentioned a wholesale deal, handle gently",
                                          "csrf_token": tok})

    t.eq(search(b, "").status, 200, "the empty search page answers 200")
    r = search(b, "croissants")
    t.eq(r.status, 200, "a search answers 200")
    t.eq(result_ids(r.text), [a], "a word of the question finds its order")
    t.ok("<mark>croissants</mark>" in r.text, "the hit is highlighted in the excerpt")
    t.eq(result_ids(search(b, "kiln").text), [bo], "a word of a reply finds its order")
    r = search(b, "wholesale")
    t.ok(result_ids(r.text) == [bo] and "Internal notes" in r.text, "internal notes are searched (staff only)")
    r = search(b, "Quill")
    t.ok(result_ids(r.text) == [a] and "<mark>Quill</mark>" in r.text, "the client's name finds the order")
    t.eq(result_ids(search(b, "bob@stone.example").text), [bo], "the client's email finds the order")
    r = search(b, "zq@quill.example")
    t.ok(result_ids(r.text) == [a] and "<mark>zq@quill.example</mark>" in r.text,
         "a whole address is found and highlighted")
    t.eq(result_ids(search(b, "zephyrine").text), [a, c], "results are ranked: the client's name before a passing mention")
    t.eq(result_ids(search(b, "honey zephyrine").text), [c], "every word must match")
    t.eq(result_ids(search(b, "croiss*").text), [a], "a word ending in * matches by prefix")
    t.eq(result_ids(search(b, "CAFES").text), [a], "case and accents are folded")

    r = search(b, "pottery")
    t.eq(result_ids(r.text), [bo], "pottery finds Bob")
    t.ok("&lt;script&gt;alert(1)&lt;/script&gt;" in r.text and "<script>alert(1)" not in r.text,
         "HTML in an excerpt is escaped")
    t.ok("<mark>pottery</mark>" in r.text and "&amp;" in r.text, "while the hits are marked")
    site.sql("UPDATE messages SET body = ? WHERE order_id = ? AND kind = 'question'",
             "pottery \x01<img src=x onerror=alert(2)>\x02 and \x02 stray markers \x01", bo)
    r = search(b, "pottery")
    t.ok("<img" not in r.text and r.text.count("<mark>") == r.text.count("</mark>"),
         "marker characters in stored text cannot inject HTML or unbalance <mark>")

    hostile = ['"', '"unbalanced', 'NEAR(', 'NEAR(croissants', 'NEAR(a b, 2)', '*', '-', '-croissants',
               'croissants -', 'a OR', 'AND', 'OR NOT', '^croissants', 'name:croissants', '(((', ')',
               'croissants"', '"*"', "'; DROP TABLE orders; --", '{name email}: x', 'croissants +', '\\',
               '***', 'x' * 200, '" OR "" = "']
    codes = {q: search(b, q).status for q in hostile}
    bad = {q: s for q, s in codes.items() if s != 200}
    t.eq(bad, {}, "hostile FTS syntax (quotes, NEAR(, *, -, column filters...) never fails: 200")
    t.eq(result_ids(search(b, "-croissants").text), [a], "operators are plain text: -croissants finds croissants")
    t.eq(result_ids(search(b, "croissants OR pottery").text), [], "OR is a plain word, not an operator")
    t.eq(result_ids(search(b, '"croissants"').text), [a], "the user's own quotes are plain text")
    t.ok("Type a word" in search(b, "*** ---").text, "a query with no word asks for one")
    t.eq(search(b, "x" * 201).status, 400, "an over-long query answers 400")
    t.eq(search(b, "x", page="99").status, 400, "a page past the last answers 400")
    t.eq(site.sql1("SELECT count(*) FROM orders WHERE id IN (?, ?, ?)", a, bo, c), 3, "the orders are intact")

    # the plan: FTS index and primary key only, FTS sorts by rank
    p = plan(stmt_sql("SEARCH"), '"croissants"', 0, 2 ** 62, 51, 0)
    t.ok("VIRTUAL TABLE INDEX" in p and "SEARCH o USING INTEGER PRIMARY KEY" in p and
         "SCAN o" not in p and "TEMP B-TREE" not in p,
         "EXPLAIN QUERY PLAN: the FTS index, then orders by primary key, no scan, no sort", p)

    test_search_rank(b, tok)

    # triggers keep the index in step with orders and messages
    site.sql("UPDATE orders SET name = 'Xavier Quokkason' WHERE id = ?", c)
    t.eq(result_ids(search(b, "Quokkason").text), [c], "a renamed client is found by the new name")
    t.eq(result_ids(search(b, "Hart").text), [], "and no longer by the old one")
    site.sql("DELETE FROM messages WHERE order_id = ? AND kind = 'note'", bo)
    t.eq(result_ids(search(b, "wholesale").text), [], "a deleted message leaves the index")
    fts_sound("")
    fts_check_can_fail()

    # paging: 60 matches, SEARCH_PAGE per page
    import_orders(60, "Pat Page", "srch", lambda i: "Where do I sell my wombat plushies? " + "wombat " * (i % 5))
    r1 = search(b, "wombat")
    ids1 = result_ids(r1.text)
    t.eq(len(ids1), SEARCH_PAGE, "%d results per page" % SEARCH_PAGE)
    m = re.search(r'href="([^"]+)" rel="next"', r1.text)
    t.ok(m is not None, "a next page is offered")
    seen, url, r2 = list(ids1), unescape(m.group(1)) if m else None, None
    while url and len(seen) <= 60:
        r2 = b.get(url)
        seen += result_ids(r2.text)
        url = link(r2.text, "next")
    t.ok(len(seen) == 60 and len(set(seen)) == 60, "the next pages hold the other %d, each once" % (60 - SEARCH_PAGE),
         (len(seen),))
    t.ok(r2 is not None and link(r2.text, "next") is None, "and the last has no next page")
    t.ok("<mark>wombat</mark>" in r1.text, "paged results are highlighted too")
    t.ok(link(r1.text, "older") is None and "Best matches first" in r1.text,
         "fewer matches than the window: all ranked together, no older matches")
    test_search_window(b)


def fts_integrity(db):
    """FTS5's own integrity-check of the index in db: None, or the error."""
    con = sqlite3.connect(db)
    try:
        con.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
        return None
    except sqlite3.DatabaseError as e:
        return str(e)
    finally:
        con.close()


# Orders (not pending) whose document in the index is not their text now.
STALE_DOCS = ("SELECT count(*) FROM search_docs d WHERE d.id NOT IN (SELECT order_id FROM search_pending) "
              "AND NOT EXISTS (SELECT 1 FROM search_fts f WHERE f.rowid = d.id AND f.name IS d.name AND "
              "f.email IS d.email AND f.question IS d.question AND f.replies IS d.replies AND "
              "f.notes IS d.notes)")


def fts_sound(when):
    """The index is sound (FTS5's integrity-check) and in step: one
    document per order, each the order's text now."""
    t.eq(fts_integrity(site.db), None, "the FTS index passes its integrity check" + when)
    t.eq((site.sql1(STALE_DOCS), site.sql1("SELECT count(*) FROM search_fts")),
         (0, site.sql1("SELECT count(*) FROM orders")),
         "one document per order in the index, each the order's text now" + when)


def fts_check_can_fail():
    """The checks of fts_sound see damage: on a copy of the database, an
    index entry's stored text changed behind FTS5's back, and a document
    removed from the index."""
    copy = os.path.join(site.dir, "fts-copy.db")
    src = sqlite3.connect(site.db)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    try:
        rowid = dst.execute("SELECT min(id) FROM search_fts_content").fetchone()[0]
        dst.execute("UPDATE search_fts_content SET c0 = 'Zebedee Nobody' WHERE id = ?", (rowid,))
        dst.commit()
        t.ok(fts_integrity(copy) is not None, "the integrity check reports an index out of step with its text")
        dst.execute("DELETE FROM search_fts WHERE rowid = ?", (rowid,))
        dst.commit()
        t.ok(dst.execute(STALE_DOCS).fetchone()[0] == 1, "the in-step check reports a missing document")
    finally:
        dst.close()
        os.unlink(copy)


def test_search_catch_up():
    """Changes reach the search index when it is read (sql/008_search_pending.sql,
    src/search_index.c): a change only notes its order as pending; the search page,
    or pmbctl search index, indexes every pending order first, in chunks."""
    b, tok = signed_in()
    oid = new_order("pend@gannet.example", "Where should I advertise my gannetry tours?", name="Gwen Pending")
    t.eq(site.sql1("SELECT count(*) FROM search_pending WHERE order_id = ?", oid), 1,
         "a new order is noted as pending in its own transaction")
    t.eq(site.sql1("SELECT count(*) FROM search_fts WHERE rowid = ?", oid), 0,
         "and is not indexed there (no FTS5 segment per question)")
    t.eq(result_ids(search(b, "gannetry").text), [oid], "the search page indexes it before it searches")
    t.eq(site.sql1("SELECT count(*) FROM search_pending"), 0, "and leaves nothing pending")
    b.post("/admin/orders/%d/note" % oid, {"body": "Ask about the puffinry too", "csrf_token": tok})
    t.eq(site.sql1("SELECT count(*) FROM search_pending WHERE order_id = ?", oid), 1, "a note notes its order again")
    t.eq(result_ids(search(b, "puffinry").text), [oid], "and is found at the next search")
    t.eq(result_ids(search(b, "gannetry").text), [oid], "with the rest of the order's document")

    # More than a chunk (SEARCH_INDEX_CHUNK = 1000) pending, written straight to
    # the database as an import would: three of them say "quokkary".
    n, special = 2500, {0, 1234, 2499}
    now = int(time.time())
    first = import_orders(n, "Bulk Client", "bulk", lambda i: "Bulk question %d%s" % (
        i, " about quokkary" if i in special else ""))[0]
    t.eq(site.sql1("SELECT count(*) FROM search_pending"), n, "2,500 imported orders are pending")
    t.eq(sorted(result_ids(search(b, "quokkary").text)), sorted(first + i for i in special),
         "one search indexes them all, across chunks: the first, a middle and the last are found")
    t.eq((site.sql1("SELECT count(*) FROM search_pending"),
          site.sql1("SELECT count(*) FROM search_fts WHERE rowid BETWEEN ? AND ?", first, first + n - 1)),
         (0, n), "none is left pending and each is indexed once")
    fts_sound(" after the catch-up")

    # A search indexes at most SEARCH_PAGE_CHUNKS (5) chunks of 1,000 before
    # it searches, and says when more are pending; the next search goes on.
    last = import_orders(5600, "Import Client", "imp", lambda i: "Imported question %d%s" % (
        i, " about koalaesque tours" if i == 5599 else ""))[-1]
    r = search(b, "koalaesque")
    t.ok(r.status == 200 and "still being made searchable" in r.text and result_ids(r.text) == [] and
         site.sql1("SELECT count(*) FROM search_pending") == 600,
         "5,600 pending: one search indexes 5,000, searches, and says that more are pending")
    r = search(b, "koalaesque")
    t.ok(result_ids(r.text) == [last] and "still being made searchable" not in r.text and
         site.sql1("SELECT count(*) FROM search_pending") == 0,
         "the next search indexes the rest and finds the last order")

    # pmbctl search optimize (an interface: conf/systemd/pmb-search-optimize.timer)
    segments = lambda: site.sql1("SELECT count(DISTINCT segid) FROM search_fts_idx")
    for i in range(6):      # each catch-up writes a segment of its own
        site.sql("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'note', ?, ?)",
                 first + i, "numbatish note %d" % i, now)
        search(b, "numbatish")
    before = segments()
    t.ok(before > 1, "the catch-ups left the index in several segments (%d)" % before)
    found = sorted(result_ids(search(b, "quokkary").text))
    p = site.ctl("search", "optimize")
    t.ok(re.match(r"^search index merged in [1-9]\d* steps?$", p.stdout.strip()) and segments() == 1,
         "pmbctl search optimize merges the index into one segment", p.stdout)
    t.eq(site.ctl("search", "optimize").stdout.strip(), "search index merged in 0 steps",
         "and then finds nothing to merge")
    t.eq(sorted(result_ids(search(b, "quokkary").text)), found, "the same orders are found after the merge")
    fts_sound(" after the merge")

    # pmbctl search index (an interface: for cron, or after an import)
    site.sql("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'note', 'wallabyish', ?)",
             first, now)
    p = site.ctl("search", "index")
    t.eq(p.stdout.strip(), "1 order indexed", "pmbctl search index indexes what is pending")
    t.eq(site.ctl("search", "index").stdout.strip(), "0 orders indexed", "and then finds nothing to do")
    t.eq(site.sql1("SELECT count(*) FROM search_fts WHERE search_fts MATCH 'wallabyish'"), 1,
         "the note is in the index")

    # A deleted message leaves the index when the index is next read.
    site.sql("DELETE FROM messages WHERE order_id = ? AND kind = 'note'", first)
    t.eq(result_ids(search(b, "wallabyish").text), [], "a deleted note is no longer found")

    # When the catch-up cannot write, the page still searches the index as it
    # stands and says that the newest changes may be missing.
    s2 = Site(users=STAFF, settings={"busy_timeout_ms": "200"})
    try:
        s2.start()
        b2 = Browser(s2)
        login(b2)
        c2 = Browser(s2)
        r = ask(c2, email="locked@example.com", name="Lola Locked", question="How do I sell more okapi plushies?")
        t.eq(r.status, 303, "a question is stored (fixture)")
        lock = sqlite3.connect(s2.db, timeout=10)
        lock.execute("BEGIN IMMEDIATE")
        try:
            r = b2.get("/admin/search?q=okapi")
        finally:
            lock.rollback()
            lock.close()
        t.ok(r.status == 200 and "could not be made searchable" in r.text and result_ids(r.text) == [],
             "with the write lock held elsewhere: 200, the index as it stands, and a notice", r.status)
        r = b2.get("/admin/search?q=okapi")
        t.ok(len(result_ids(r.text)) == 1 and "could not be made searchable" not in r.text,
             "once the lock is gone the next search catches up")
    finally:
        s2.cleanup()


def test_search_rank(b, tok):
    """pmb_rank (src/search_rank.c) ranks as bm25 did, and excerpts are
    made of the parts of the thread that hold a hit."""
    log = open(site.log_path, encoding="utf-8", errors="replace").read()
    t.ok("ranking by bm25" not in log, "pmb_rank and pmb_hits are registered (no fallback to bm25 logged)")
    once = new_order("once@gorse.example", "How do I price my jam for the farm shop?", name="Una Once")
    b.post("/admin/orders/%d/paid" % once, {"method": "bank_transfer", "amount": "150.00", "csrf_token": tok})
    r = b.post("/admin/orders/%d/reply" % once, {"body": "Start at cost plus a margin. " * 30 +
                                                 "Then try a gorse honey line.", "csrf_token": tok, "confirm": "yes"})
    t.eq(r.status, 303, "a reply is sent (fixture)")
    many = new_order("many@example.com", "Gorse, gorse, gorse: my gorse hedges and gorse jam. Can gorse sell?",
                     name="Manny Times")
    named = new_order("gb@example.com", "How do I sell more bread in winter?", name="Gwen Gorse")
    r = search(b, "gorse")
    ranked = result_ids(r.text)
    t.ok(len(ranked) == 3 and set(ranked[:2]) == {named, many} and ranked[2] == once,
         "ranked: the name and many times in the question above once in a reply", ranked)
    rows = dict(zip(result_ids(r.text), re.split(r'<li class="result">', r.text)[1:]))
    t.ok("Replies and follow-ups:" in rows.get(once, "") and "<mark>gorse</mark>" in rows.get(once, "") and
         "Question:" not in rows.get(once, ""),
         "a hit in a reply only: the reply's excerpt, marked, and no question excerpt")
    t.ok("Question:</span> <mark>Gorse</mark>" in rows.get(many, "") and "Replies" not in rows.get(many, ""),
         "a hit in the question: the question's excerpt, marked")
    t.ok("<mark>Gorse</mark>" in rows.get(named, "") and "Question:</span> How do I sell more bread" in
         rows.get(named, ""), "a hit in the name only: the name marked and the question's opening as excerpt")
    # The fallback (a connection without pmb_rank): FTS5's own bm25 and
    # snippet() ranks and shows the same.
    con = sqlite3.connect(site.db)
    try:
        got = [row[0] for row in con.execute(stmt_sql("SEARCH_BM25"), ('"gorse"', 0, 2 ** 62, 21, 0))]
        t.eq(got, ranked, "the fallback statement (bm25) ranks them as pmb_rank does")
    finally:
        con.close()


def add_matches(con, word, counts):
    """One order per count in counts, in that order (ids rising), whose
    question holds word that many times. Returns their ids."""
    now, ids = int(time.time()), []
    for i, k in enumerate(counts):
        con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, "
                    "updated_at) VALUES (?, 'Win Dow', ?, 100, 'GBP', ?, ?, ?)",
                    ("%s%d" % (word, i), "%s%d@example.com" % (word, i), now, now, now))
        ids.append(con.execute("SELECT last_insert_rowid()").fetchone()[0])
        con.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'question', ?, ?)",
                    (ids[-1], "Tell me about the %s plush market, please. " % word + (word + " ") * k, now))
    return ids


def test_search_window(b):
    """More matches than the window: the newest SEARCH_WINDOW are ranked by
    bm25, the older ones are a link away, each window the same cost."""
    # 40 old orders that say "numbat" eight times: the best matches of
    # all, and outside the newest window; then SEARCH_WINDOW newer ones,
    # of which four say it four times and the rest once.
    strong = {7, 30, 55, 88}
    counts = [8] * 40 + [4 if i in strong else 1 for i in range(SEARCH_WINDOW)]
    con = sqlite3.connect(site.db)
    ids = add_matches(con, "numbat", counts)
    con.commit()
    con.close()
    old, window = ids[:40], ids[40:]
    best = sorted(window[i] for i in strong)

    r = search(b, "numbat")
    got = result_ids(r.text)
    t.eq(r.status, 200, "a word with more matches than the window answers 200")
    t.eq(len(got), SEARCH_PAGE, "%d results on the first page" % SEARCH_PAGE)
    t.eq(sorted(got[:4]), best, "the newest window is ranked by bm25: its four strongest matches first")
    t.ok(not set(got) & set(old), "matches older than the window are not on its pages (not ranked)")
    t.ok("newest %d matching orders" % SEARCH_WINDOW in r.text and "More than %d" % SEARCH_WINDOW in r.text,
         "the page says it ranks the newest %d and that more match" % SEARCH_WINDOW)
    seen, url, pages = [], "/admin/search?q=numbat", 0
    while url and pages < 10:
        rr = b.get(url)
        seen += result_ids(rr.text)
        t.ok(link(rr.text, "older") == "/admin/search?q=numbat&before=%d" % window[0],
             "page %d links to the older matches, below the window's oldest id" % (pages + 1))
        url = link(rr.text, "next")
        pages += 1
    t.eq(pages, SEARCH_WINDOW // SEARCH_PAGE, "the window's pages are reached by Next page")
    t.eq(sorted(seen), window, "its pages show the whole window once, and only it")

    r = b.get(link(r.text, "older"))
    t.eq(r.status, 200, "the older matches answer 200")
    t.ok(link(r.text, "older") is None and "the oldest matching orders" in r.text,
         "the older window says it reaches the oldest, with no older link")
    got, rr = result_ids(r.text), r
    while link(rr.text, "next"):
        rr = b.get(link(rr.text, "next"))
        got += result_ids(rr.text)
    t.eq(sorted(got), old, "its pages hold the older matches, down to the oldest")
    t.ok('href="/admin/search?q=numbat">Newest matches' in r.text, "a link leads back to the newest matches")
    t.ok("<mark>numbat</mark>" in r.text, "older matches are highlighted too")

    # A window of older matches pages like the newest: keyset cursor plus
    # page within the window; the cursor bounds ids from above.
    r = search(b, "numbat", before=window[90])
    got = result_ids(r.text)
    t.eq(sorted(got[:10]), old[30:], "an older window from a cursor ranks its own matches: "
         "the ten old strong ones it reaches first")
    t.eq(sorted(got[10:14]), best, "then the four strong newer ones")
    t.ok(all(i < window[90] for i in got) and link(r.text, "older") == "/admin/search?q=numbat&before=%d" % old[30],
         "it holds only ids below the cursor, and links to the still older ones")
    nxt = link(r.text, "next")
    t.ok(nxt is not None and "before=%d" % window[90] in nxt and "page=2" in nxt,
         "its Next page link keeps the cursor")
    r = search(b, "numbat", before=old[0])
    t.ok(r.status == 200 and "No older order matches" in r.text, "below the oldest match: no older order matches")

    for bad in ("x", "0", "-5", "1.5", "99999999999999999999", "12 ", "0x10"):
        r = search(b, "numbat", before=bad)
        t.ok(r.status == 400 and "cursor of older matches is not valid" in r.text,
             "before=%r answers 400 with a clear message" % bad, r.status)
    t.eq(search(b, "numbat", page=str(SEARCH_WINDOW // SEARCH_PAGE + 1)).status, 400,
         "a page past the window's last answers 400")

    # The plans: the window is read in rowid order from the index (no
    # sort, nothing scored); the ranked query hands FTS5 the id range
    # (idxStr holds both bounds), so it scores the window only.
    p = plan(stmt_sql("SEARCH_WINDOW"), '"numbat"', 2 ** 62, SEARCH_WINDOW - 1)
    t.ok("VIRTUAL TABLE INDEX" in p and "TEMP B-TREE" not in p, "EXPLAIN: the window needs no sort", p)
    p = plan(stmt_sql("SEARCH"), '"numbat"', window[0], 2 ** 62, 51, 0)
    m = re.search(r"VIRTUAL TABLE INDEX \d+:(\S+)", p)
    t.ok(m and "r" in m.group(1) and ">" in m.group(1) and "<" in m.group(1) and "TEMP B-TREE" not in p,
         "EXPLAIN: FTS5 gets the rank and both rowid bounds of the window", p)


# --- audit -----------------------------------------------------------------

def test_audit():
    b, tok = signed_in()
    uid = site.sql1("SELECT id FROM users WHERE username = 'sam'")
    oid = new_order("audit@example.com", "How do I keep my bakery's books tidy every month?")
    con = sqlite3.connect(site.db)
    now = int(time.time())
    for i in range(120):
        con.execute("INSERT INTO audit (at, user_id, action, order_id, ip, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (now + i, uid if i % 2 else None, "test action %d" % i, oid if i % 3 == 0 else None,
                     "198.51.100.%d" % (i % 250), "<i>detail %d</i>" % i))
    con.commit()
    con.close()
    total = site.sql1("SELECT count(*) FROM audit")
    r = b.get("/admin/audit")
    t.eq(r.status, 200, "GET /admin/audit answers 200")
    first = [int(x) for x in re.findall(r'<tr id="audit-(\d+)">', r.text)]
    t.eq(len(first), 50, "50 rows per page")
    t.eq(first[0], site.sql1("SELECT max(id) FROM audit"), "newest first")
    t.ok("test action 119" in r.text and "198.51.100.119" in r.text and
         re.search(r'<td>sam</td>\s*<td>test action 119</td>', r.text),
         "a row says who, what and from where")
    t.ok('href="/admin/orders/%d"' % oid in r.text, "and links to its order")
    t.ok("&lt;i&gt;detail 119&lt;/i&gt;" in r.text, "details are escaped")
    seen, url, pages = [], "/admin/audit", 0
    while url and pages < 20:
        rr = b.get(unescape(url))
        seen += [int(x) for x in re.findall(r'<tr id="audit-(\d+)">', rr.text)]
        m = re.search(r'href="([^"]+)" rel="next"', rr.text)
        url = m.group(1) if m else None
        pages += 1
    t.eq(len(seen), total, "keyset paging shows every audit row once (%d)" % total)
    t.eq(seen, sorted(seen, reverse=True), "pages run newest to oldest without overlap")
    t.eq(len(set(seen)), len(seen), "no row on two pages")
    t.eq(b.get("/admin/audit?before=x").status, 400, "a malformed cursor answers 400")
    p = plan(stmt_sql("AUDIT_PAGE"), 1000, 51)
    t.ok("SEARCH a USING INTEGER PRIMARY KEY (rowid<?)" in p and "TEMP B-TREE" not in p,
         "the audit page walks the primary key, no sort", p)


# --- dashboard and export ----------------------------------------------------

def dashboard_fixture(ds):
    """Orders, ledger and messages with known times and amounts. Returns
    (now, ids). Every event sits inside a known week: cur - k*W + x, with
    0 < x < W, is in chart column 11 - k."""
    now = int(time.time())
    cur = MONDAY0 + (now - MONDAY0) // W * W
    assert time.gmtime(cur).tm_wday == 0 and time.gmtime(cur).tm_hour == 0
    con = sqlite3.connect(ds.db)
    ids = {}

    def order(key, status, created, paid_after=None, answer_after=None, due=None,
              currency="GBP", price=15000, name=None, method=""):
        paid = created + paid_after if paid_after is not None else None
        answered = paid + answer_after if answer_after is not None else None
        con.execute(
            "INSERT INTO orders (form_token, name, email, price, currency, status, created_at, due_at, "
            "paid_at, answered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, name or "Client " + key, key + "@example.com", price, currency, status, created,
             due if due is not None else (paid or created) + 48 * H, paid, answered, created))
        oid = con.execute("SELECT last_insert_rowid()").fetchone()[0]
        con.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'question', ?, ?)",
                    (oid, "Question of " + key, created))
        if paid is not None:
            con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, at) "
                        "VALUES (?, 'payment', ?, ?, ?, ?)", (oid, price, currency, method, paid))
        if answered is not None:
            con.execute("INSERT INTO messages (order_id, kind, body, created_at) VALUES (?, 'reply', ?, ?)",
                        (oid, "Answer to " + key, answered))
        ids[key] = oid
        return oid

    def refund(key, amount, currency, at):
        con.execute("INSERT INTO ledger (order_id, kind, amount, currency, at) VALUES (?, 'refund', ?, ?, ?)",
                    (ids[key], amount, currency, at))

    order("o1", "answered", cur - 10 * W + 1 * D, H, 2 * H)
    order("o2", "answered", cur - 8 * W + 2 * D, H, 10 * H, method="card")
    order("o3", "answered", cur - 8 * W + 3 * D, H, 30 * H)
    order("o4", "answered", cur - 5 * W + 1 * D, H, 50 * H)      # later than the 48 h promise
    order("o5", "refunded", cur - 3 * W + 1 * D, H, 100 * H)
    refund("o5", 15000, "GBP", cur - 1 * W + 1 * D)
    order("o6", "paid", cur - 1 * W + 2 * D, H, due=now + D)      # waiting
    order("o7", "paid", cur - 2 * W + 2 * D, H, due=now - H)      # waiting, overdue
    order("o8", "followup", cur - 6 * W + 1 * D, H, 5 * H, due=now + 2 * D)
    order("o9", "awaiting_payment", cur + (now - cur) // 2)      # this week, unpaid
    order("o10", "answered", cur - 4 * W + 1 * D, H, 1 * H, currency="USD", price=20000)
    refund("o10", 5000, "USD", cur - 2 * W + 3 * D)              # partial refund
    order("o11", "cancelled", cur - 12 * W - D)                  # before the chart's window
    con.commit()
    con.close()
    return now, cur, ids


def test_dashboard_and_export():
    ds = Site(users=STAFF)
    ds.start()
    try:
        now, cur, ids = dashboard_fixture(ds)
        b = Browser(ds)
        login(b)
        t.eq(Browser(ds).get("/admin/dashboard").status, 303, "signed out, the dashboard sends to sign-in")
        r = b.get("/admin/dashboard")
        t.eq(r.status, 200, "GET /admin/dashboard answers 200")
        dd = lambda i: re.sub(r"<[^>]+>", "", re.search(r'<dd id="%s"[^>]*>(.*?)</dd>' % i, r.text, re.S).group(1)).strip()
        # By hand: 11 orders; answered o1-o5, o8, o10 = 7; waiting o6, o7, o8 = 3; overdue o7 = 1.
        t.eq((dd("orders"), dd("answered"), dd("waiting"), dd("overdue")), ("11", "7", "3", "1"),
             "orders, answered, waiting and overdue counts")
        # Payment to answer, in hours: 2, 10, 30, 50, 100, 5, 1 -> sorted 1 2 5 10 30 50 100.
        # Median: the 4th, 10 h. 90th percentile: rank 0.9 * 6 = 5.4 -> 50 + 0.4 * (100 - 50) = 70 h.
        med = re.search(r'<dd id="median"><data value="(\d+)">([^<]*)</data>', r.text)
        p90 = re.search(r'<dd id="p90"><data value="(\d+)">([^<]*)</data>', r.text)
        t.eq((med.group(1), med.group(2)), (str(10 * H), "10 h 0 min"), "the median time to answer is 10 h")
        t.eq((p90.group(1), p90.group(2)), (str(70 * H), "2 d 22 h"), "the 90th percentile is 70 h")
        # Within the 48 h promise: 1, 2, 5, 10, 30 -> 5 of 7 = 71.4 %.
        t.eq(dd("in-time"), "71.4% (5 of 7)", "answers delivered within the promise: 71.4%")
        # Orders with a payment in the ledger: all but o9 and o11 = 9; with a refund: o5, o10 = 2.
        t.eq(dd("refund-rate"), "22.2% (2 of 9 paid orders)", "refund rate from the ledger: 22.2%")
        # Revenue: GBP 8 x 150.00 = 1200.00 - 150.00 = 1050.00, of which o2's
        # 150.00 by card and the rest by a method not given; USD 200.00 - 50.00.
        rev = re.findall(r'<tr( class="total")?><td>([A-Z]{3})</td><td>([^<]+)</td><td>([\d.]+)</td>'
                         r'<td>([\d.]+)</td><td>(-?[\d.]+)</td></tr>',
                         re.search(r'<table id="revenue">(.*?)</table>', r.text, re.S).group(1))
        t.eq(rev, [("", "GBP", "Not given", "1050.00", "150.00", "900.00"),
                   ("", "GBP", "Card", "150.00", "0.00", "150.00"),
                   (' class="total"', "GBP", "All methods", "1200.00", "150.00", "1050.00"),
                   ("", "USD", "Not given", "200.00", "50.00", "150.00")],
             "revenue net of refunds, per currency and per method, with a currency's total "
             "when it has several methods, from the ledger")
        p = ds_plan(ds, stmt_sql("DASH_REVENUE"))
        t.ok("COVERING INDEX ledger_revenue" in p, "the revenue reads index ledger_revenue alone", p)
        t.ok('<img src="/admin/dashboard.svg"' in r.text and "<script" not in r.text,
             "the chart is an image drawn by the server, no script")
        t.ok(' style="' not in r.text, "no inline style attributes (the CSP forbids them)")

        # Weekly numbers, oldest first (column 11 is this week), by hand from the fixture.
        want = {
            "orders":  [0, 1, 0, 2, 0, 1, 1, 1, 1, 1, 1, 1],   # o1; o2 o3; o8; o4; o10; o5; o7; o6; o9
            "answers": [0, 1, 0, 2, 0, 1, 1, 1, 1, 0, 0, 0],   # o1; o2 o3; o8; o4; o10; o5
            "refunds": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0],   # o10 (cur-2W); o5 (cur-1W)
        }
        rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>",
                          re.search(r'<table id="weeks">(.*?)</table>', r.text, re.S).group(1))
        got = {"orders": [int(x[1]) for x in reversed(rows)], "answers": [int(x[2]) for x in reversed(rows)],
               "refunds": [int(x[3]) for x in reversed(rows)]}
        t.eq(got, want, "the weekly table: orders, answers and refunds per week")
        d = time.gmtime(cur)
        t.eq(rows[0][0] if rows else None, "%d %s %d" % (d.tm_mday, time.strftime("%b", d), d.tm_year),
             "the newest week starts this Monday")

        s = b.get("/admin/dashboard.svg")
        t.eq(s.status, 200, "GET /admin/dashboard.svg answers 200")
        t.ok((s.header("Content-Type") or "").startswith("image/svg+xml"), "as image/svg+xml")
        try:
            root, err = ET.fromstring(s.body), None
        except ET.ParseError as e:
            root, err = None, str(e)
        t.eq(err, None, "the SVG is well-formed XML")
        ns = "{http://www.w3.org/2000/svg}"
        t.eq(root.tag if root is not None else None, ns + "svg", "its root is an SVG element")
        bars = {"order": [], "answer": [], "refund": []}
        heights = {}
        for rect in (root.iter(ns + "rect") if root is not None else []):
            title = rect.find(ns + "title")
            if title is None:
                continue
            m = re.match(r"Week of (.+): (\d+) (order|answer|refund)s?$", title.text)
            bars[m.group(3)].append(int(m.group(2)))
            heights[(m.group(3), len(bars[m.group(3)]) - 1)] = float(rect.get("height"))
        t.eq((bars["order"], bars["answer"], bars["refund"]),
             (want["orders"], want["answers"], want["refunds"]), "the SVG's 36 bars carry the weekly numbers")
        t.ok(heights.get(("order", 3), 0) == 2 * heights.get(("order", 1), -1) > 0 and heights.get(("order", 0)) == 0,
             "bar heights are proportional to the numbers")
        t.ok(b" style=" not in s.body and b"<script" not in s.body, "SVG: presentation attributes only, no script")

        # the plans: time windows and percentiles read indexes
        start, end = cur - 11 * W, cur + W
        checks = [
            ("DASH_WEEK_ORDERS", (start, end, W), "orders_created"),
            ("DASH_WEEK_ANSWERS", (start, end, W), "orders_answered"),
            ("DASH_WEEK_REFUNDS", (start, end, W), "ledger_kind_at"),
            ("DASH_ANSWER_TIME", (3,), "orders_answer_time"),
        ]
        for name, params, index in checks:
            p = ds_plan(ds, stmt_sql(name), *params)
            t.ok("INDEX " + index in p and not re.search(r"SCAN (orders|ledger)(?! USING)", p),
                 "%s reads index %s" % (name, index), p)
        p = ds_plan(ds, stmt_sql("DASH_COUNTS"), now, 48 * H)
        t.ok(not re.search(r"SCAN (orders|ledger)(?! USING)", p), "the counts read indexes only", p)

        # the export
        con = sqlite3.connect(ds.db)
        con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, updated_at) "
                    "VALUES ('evil', ?, ?, 15000, 'GBP', ?, ?, ?)",
                    ('=HYPERLINK("http://evil.example","click")', "@sum(1+1)@example.com", now, now, now))
        con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, updated_at) "
                    "VALUES ('quote', ?, ?, 15000, 'GBP', ?, ?, ?)",
                    ('Smith, "Jo"\r\nJr', "-2+3@example.com", now, now, now))
        for i, name in enumerate(CSV_FORMULAS + CSV_PLAIN):
            con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, "
                        "updated_at) VALUES (?, ?, ?, 15000, 'EUR', ?, ?, ?)",
                        ("csv%d" % i, name, "csv%d@example.com" % i, now, now, now))
        # More refunded than paid: a negative net, which stays a number.
        oid = con.execute("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, "
                          "updated_at) VALUES ('neg', 'Neg Ative', 'neg@example.com', 1000, 'EUR', ?, ?, ?)",
                          (now, now, now)).lastrowid
        con.execute("INSERT INTO ledger (order_id, kind, amount, currency, at) VALUES (?, 'payment', 1000, 'EUR', ?)",
                    (oid, now))
        con.execute("INSERT INTO ledger (order_id, kind, amount, currency, at) VALUES (?, 'refund', 1500, 'EUR', ?)",
                    (oid, now))
        con.commit()
        con.close()
        e = b.get("/admin/export.csv")
        t.eq(e.status, 200, "GET /admin/export.csv answers 200")
        t.ok((e.header("Content-Type") or "").startswith("text/csv"), "as text/csv")
        t.ok(re.match(r'attachment; filename="pmb-orders-\d{4}-\d\d-\d\d\.csv"$', e.header("Content-Disposition") or ""),
             "as an attachment with a file name", e.header("Content-Disposition"))
        t.ok(e.body.endswith(b"\r\n") and re.search(rb"(?<!\r)\n", e.body) is None,
             "lines end in CRLF (RFC 4180)")
        rows = list(csv.reader(io.StringIO(e.body.decode("utf-8"), newline="")))
        t.eq(rows[0] if rows else None, ["number", "created", "status", "name", "email", "price", "currency",
                                         "paid", "refunded", "net", "paid_by_card", "paid_otherwise",
                                         "refunded_to_card", "refunded_otherwise", "topic", "paid_at",
                                         "refunded_at", "payment_methods", "payment_references",
                                         "refund_methods", "refund_references"],
             "the header row (the columns after refunded_otherwise: tests/export.py)")
        n_rows = 14 + len(CSV_FORMULAS) + len(CSV_PLAIN)
        t.eq(len(rows) - 1, n_rows, "one row per order (%d)" % n_rows)
        t.eq({len(x) for x in rows}, {21}, "every row has 21 columns")
        by = {x[0]: x for x in rows[1:]}
        num = lambda key: "PMB-%06d" % ids[key]
        t.eq(by[num("o5")][5:14], ["150.00", "GBP", "150.00", "150.00", "0.00", "0.00", "150.00", "0.00", "150.00"],
             "a refunded order: paid, refunded, net, none of it by card")
        t.eq(by[num("o2")][5:14], ["150.00", "GBP", "150.00", "0.00", "150.00", "150.00", "0.00", "0.00", "0.00"],
             "an order paid by card: its payment in paid_by_card")
        t.eq(by[num("o10")][5:14], ["200.00", "USD", "200.00", "50.00", "150.00", "0.00", "200.00", "0.00", "50.00"],
             "a partly refunded USD order")
        t.eq(by[num("o9")][7:14], ["0.00"] * 7, "an unpaid order has no money")
        t.ok(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", by[num("o1")][1]), "created is ISO 8601 UTC")
        evil = [x for x in rows if x[0] and x[3].startswith("'=")]
        t.ok(len(evil) == 1 and evil[0][3] == "'=HYPERLINK(\"http://evil.example\",\"click\")" and
             evil[0][4] == "'@sum(1+1)@example.com", "cells starting with = or @ are defused with a quote")
        q = [x for x in rows if x[3].startswith("Smith")]
        t.ok(len(q) == 1 and q[0][3] == 'Smith, "Jo"\r\nJr' and q[0][4] == "'-2+3@example.com",
             "commas, quotes and line breaks survive quoting; - is defused")
        check_csv_injection(e.body, rows)
        total_net = sum(int(x[9].replace(".", "")) for x in rows[1:] if x[6] == "GBP")
        t.eq(total_net, 105000, "the export's GBP net adds up to the dashboard's 1050.00")
    finally:
        ds.cleanup()


# Names that a spreadsheet could run as formulas: at the start (after
# spaces too, in full-width forms too), or after a separator (, ; tab or a
# line break) where a spreadsheet splitting on it starts a new cell.
CSV_FORMULAS = ["Acme;=1+2;@SUM(1)", " =1+1", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20x", "-2+3", "@x",
                "+1", "\t=1+1", "\r=1+1", "Acme,=1+1", "Acme, @x", "Acme\t-1", "Acme\r\n+1", "Acme\r\n@1",
                "Acme; \uff1dA1"]
# Names with the same characters where no cell starts: left as they are.
CSV_PLAIN = ["Mary-Jane Smith+Co", "Acme; Ltd", "a=b@c", "Jo \u201c=\u201d", "Acme\uff1b Ltd"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def could_run(cell):
    """Whether a spreadsheet could run text cell as a formula (told here
    independently of src/page_admin_export.c)."""
    pieces = re.split(r"[,;\t\n\r]", cell)
    starts = [cell.lstrip(" ")] + [p.lstrip(" ") for p in pieces[1:]]
    return any(x.startswith(FORMULA_START) for x in starts)


def check_csv_injection(body, rows):
    """Every cell quoted, every cell that could run defused with a leading
    quote, the others untouched, and amounts left as numbers."""
    t.ok(re.fullmatch(rb'(?:"(?:[^"]|"")*"(?:,|\r\n))+', body) is not None,
         "every cell of the export is quoted, the header's too")
    by_name = {x[3][1:] if x[3].startswith("'") else x[3]: x for x in rows[1:]}
    for name in CSV_FORMULAS:
        row = by_name.get(name)
        t.eq(row[3] if row else None, "'" + name, "a name that could run is defused: %r" % name)
    for name in CSV_PLAIN:
        row = by_name.get(name)
        t.eq(row[3] if row else None, name, "a name that cannot run is left as it is: %r" % name)
    bad = [(i, c) for x in rows[1:] for i, c in enumerate(x[:5]) if could_run(c) and not c.startswith("'")]
    t.eq(bad, [], "no text cell in the export could run as a formula")
    neg = by_name.get("Neg Ative")
    t.ok(neg is not None and neg[7:10] == ["10.00", "15.00", "-5.00"] and b',"-5.00",' in body,
         "a negative amount the program wrote stays a number: \"-5.00\", no quote mark", neg)


def ds_plan(ds, query, *params):
    return " | ".join(r[3] for r in ds.sql("EXPLAIN QUERY PLAN " + query, *params))


def test_done_notices():
    """Each page that a POST's 303 comes back to shows the notice its
    ?done= names (page_done_notice), and none for a value it does not know."""
    b, _ = signed_in()
    ask(Browser(site, remote="198.51.100.77"), email="notices@example.com")
    oid = site.sql1("SELECT id FROM orders WHERE email = 'notices@example.com'")
    for path, done, text in (("/admin/orders/%d" % oid, "paid", "Payment recorded."),
                             ("/admin/orders/%d" % oid, "card_refund", "Refund sent to Stripe — waiting for confirmation."),
                             ("/admin/refunds", "declined", "Request declined."),
                             ("/admin/outbox", "retry", "The message will be sent again within a few seconds."),
                             ("/admin/snippets", "deleted", "Snippet deleted."),
                             ("/admin/testimonials", "save", "Name saved.")):
        shown = b.get("%s?done=%s" % (path, done))
        plain = b.get(path)
        other = b.get("%s?done=%s" % (path, "nonsense"))
        t.ok(shown.status == 200 and text in unescape(shown.text) and text not in unescape(plain.text) and
             text not in unescape(other.text) and plain.text.count('class="notice"') == other.text.count('class="notice"'),
             "%s?done=%s says %r; without it, or with a value it does not know, no notice" % (path, done, text),
             (shown.status, unescape(shown.text)[-600:]))

for fn in (test_snippets, test_search, test_search_catch_up, test_audit, test_dashboard_and_export,
           test_done_notices):
    t.run(fn)
site.cleanup()
sys.exit(t.done())
