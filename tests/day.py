#!/usr/bin/env python3
"""The consultant's working day (issue 16, "The consultant never misses an
order"), through real nginx: the alert of a new order, search by order
number and by prefix, the queue's counts, a client's earlier orders on
the order page, and the dashboard's unpaid orders, conversion and revenue
by month, with the query plans of what they read."""
import calendar
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf,  # noqa: E402
                     unescape, STAFF, stmt_sql)

t = Tap()
site = Site(users=STAFF, settings={"alert_new_orders": "yes"})
site.start()

LONG_QUESTION = "\n".join("Line %d of my question about <pricing> & margins." % i for i in range(1, 21))


REMOTE = [0]


def new_order(s, email, question, name="Ada Baker", **over):
    """A new order from a client address of its own (no rate limit)."""
    REMOTE[0] += 1
    c = Browser(s, remote="198.51.100.%d" % (REMOTE[0] % 250 + 1))
    r = ask(c, email=email, name=name, question=question, **over)
    assert r.status == 303, r
    return s.sql1("SELECT id FROM orders WHERE email = ? ORDER BY id DESC", email)


def signed_in(s=None):
    b = Browser(s or site)
    login(b)
    return b, admin_csrf(b)


# --- 1. the alert of a new order ---------------------------------------------

def test_alert():
    oid = new_order(site, "alert@bakery.example", LONG_QUESTION, name="Ada Alert",
                    company="Ada's Bakery", topic="Pricing")
    number = site.sql1("SELECT number FROM orders WHERE id = ?", oid)
    rows = site.sql("SELECT to_addr, subject, body_text, body_html FROM outbox "
                    "WHERE order_id = ? AND kind = 'order_alert'", oid)
    t.eq(len(rows), 1, "one alert for one new order")
    if not rows:
        return
    to, subject, text, html = rows[0]
    t.eq(to, "consultant@example.com", "the alert goes to admin_email")
    t.ok(number in subject and "Ada Alert" in subject and "Pricing" in subject,
         "its subject names the order's number, the client and the topic", subject)
    t.ok("alert@bakery.example" in text and "Ada's Bakery" in text, "its text names the client's address and business", text)
    t.ok("Line 1 of my question about <pricing> & margins." in text and "Line 6 of" in text,
         "it carries the question's first lines", text)
    t.ok("Line 7 of" not in text and "…" in text, "and only the first lines, marked as cut", text)
    url = "%s/admin/orders/%d" % (site.base, oid)
    t.ok(url in text and ('href="%s"' % url) in html, "it links to the order's admin page (text and HTML)", text)
    t.ok("pmbn" not in text + html + subject and "pmbi" not in text + html and "pmbt" not in text + html,
         "no stand-in is left in it")
    t.ok("&lt;pricing&gt;" in html and "<pricing>" not in html, "the question is escaped in the HTML part")
    t.eq(site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid), 1,
         "the client's confirmation is queued as well")
    # Orders sent at once (group commit): each gets its own alert, with its own link.
    import threading
    ids = []

    def one(i):
        ids.append(new_order(site, "many%d@bakery.example" % i, "Question number %d about my bakery's weekdays." % i,
                             name="Many %d" % i))
    th = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    good = 0
    for i in range(8):
        oid = site.sql1("SELECT id FROM orders WHERE email = ?", "many%d@bakery.example" % i)
        rows = site.sql("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'order_alert'", oid)
        if len(rows) == 1 and ("/admin/orders/%d\n" % oid) in rows[0][0] and ("Question number %d " % i) in rows[0][0]:
            good += 1
    t.eq(good, 8, "orders stored together each have one alert, with their own question and link")


def test_alert_default():
    s = Site(users=STAFF)
    del s.conf["alert_new_orders"]          # the harness turns it off
    s.write_conf()
    s.start()
    try:
        oid = new_order(s, "default@bakery.example", "A question on a site whose settings do not name the alert.")
        t.eq(s.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'order_alert'", oid), 1,
             "alert_new_orders is yes by default")
    finally:
        s.cleanup()


def test_alert_off():
    s = Site(users=STAFF, settings={"alert_new_orders": "no"})
    s.start()
    try:
        oid = new_order(s, "quiet@bakery.example", "A question that should not page the consultant at all.")
        t.eq(s.sql1("SELECT count(*) FROM outbox WHERE kind = 'order_alert'"), 0,
             "alert_new_orders = no: no alert")
        t.eq(s.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND kind = 'confirmation'", oid), 1,
             "the client's confirmation is still queued")
    finally:
        s.cleanup()


# --- 2. search by number and by prefix ---------------------------------------

def test_search():
    b, _ = signed_in()
    oid = new_order(site, "search@bakery.example", "How should I set my pricing for wholesale sourdough loaves?",
                    name="Sid Search")
    other = new_order(site, "digits@bakery.example", "My shop's phone line 987654 rings all day about croissants.",
                      name="Dee Digits")
    loc = "/admin/orders/%d" % oid
    for q in ("PMB-%06d" % oid, "pmb-%06d" % oid, "#%d" % oid, "%d" % oid, "%06d" % oid, " #%d " % oid):
        r = b.get("/admin/search?q=" + q.replace("#", "%23").replace(" ", "+"))
        t.ok(r.status == 303 and (r.header("Location") or "").endswith(loc),
             "search %r goes straight to the order (303 to %s)" % (q, loc), (r.status, r.header("Location")))
    for q in ("PMB-999999", "#999999", "PMB-000000"):
        r = b.get("/admin/search?q=" + q.replace("#", "%23"))
        t.ok(r.status == 404 and "no such order" in r.text.lower(), "search %r: 404, no such order" % q,
             (r.status, r.text[-400:]))
    r = b.get("/admin/search?q=987654")
    t.ok(r.status == 200 and ("/admin/orders/%d\"" % other) in r.text,
         "bare digits that are no order's number are searched as text", r.status)
    r = b.get("/admin/search?q=%23croissants")
    t.ok(r.status == 200 and ("/admin/orders/%d\"" % other) in r.text, "# and a word is searched as text", r.status)
    r = b.get("/admin/search?q=pric")
    t.ok(r.status == 200 and ("/admin/orders/%d\"" % oid) in r.text, "the last word matches as a prefix: pric finds pricing")
    t.ok("<mark>pricing</mark>" in r.text, "and the word it found is marked", r.text[-2000:])
    r = b.get("/admin/search?q=wholesale+sourd")
    t.ok(r.status == 200 and ("/admin/orders/%d\"" % oid) in r.text, "a whole word and a last prefix: both match")
    r = b.get("/admin/search?q=pric+sourdough")
    t.ok(r.status == 200 and ("/admin/orders/%d\"" % oid) not in r.text,
         "only the last word is a prefix: pric before another word matches no pricing")
    r = b.get("/admin/search?q=croissants")
    t.ok(("/admin/orders/%d\"" % other) in r.text, "a whole word still matches itself")


def test_search_common_word():
    """A last word that has more matches than a window (100) as it is typed is
    the word meant: it is not also a prefix, whose merged list of ids FTS5
    would build whole on every search (bench/README.md, fix 21)."""
    s = Site(users=STAFF)
    s.start()
    try:
        b, _ = signed_in(s)
        for i in range(101):
            s.sql("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, updated_at) "
                  "VALUES (?, ?, ?, 15000, 'GBP', 1, 2, 1)", "w%d" % i, "Wanda Widget %d" % i, "w%d@example.com" % i)
        ltd = s.sql1("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, updated_at) "
                     "VALUES ('wl', 'Widgets Limited', 'ltd@example.com', 15000, 'GBP', 1, 2, 1) RETURNING id")
        s.sql("INSERT INTO search_pending (order_id) SELECT id FROM orders")
        link = '/admin/orders/%d"' % ltd

        def window(q):      # the five pages of the first window, joined
            pages = [b.get("/admin/search?q=%s&page=%d" % (q, n)) for n in range(1, 6)]
            return all(p.status == 200 for p in pages), "".join(p.text for p in pages)
        okay, text = window("widget")
        t.ok(okay and "Wanda <mark>Widget</mark>" in text and link not in text,
             "a whole word with more matches than a window is searched as that word: widget does not find Widgets",
             text[-1500:])
        okay, text = window("widgets")
        t.ok(okay and link in text, "a word with few matches is still a prefix too: widgets finds Widgets")
        okay, text = window("widg")
        t.ok(okay and link in text and "Wanda <mark>Widget</mark>" in text,
             "a word being typed is a prefix: widg finds both", text[-1500:])
        okay, text = window("wanda+widget")
        t.ok(okay and link not in text and "<mark>Wanda</mark> <mark>Widget</mark>" in text,
             "so is the last of several words: wanda widget", text[-1500:])
    finally:
        s.cleanup()


# --- 3. the queue's counts -----------------------------------------------------

def plan(s, query, *params):
    return " | ".join(str(r[3]) for r in s.sql("EXPLAIN QUERY PLAN " + query, *params))


def filter_count(html, status):
    m = re.search(r'<a href="/admin\?status=%s"[^>]*>[^<]*<span class="count">(\d+)</span></a>' % status, html)
    return int(m.group(1)) if m else None


def test_queue_counts():
    s = Site(users=STAFF)
    s.start()
    try:
        b, _ = signed_in(s)
        r = b.get("/admin")
        t.ok("All caught up" in r.text, "an empty site is all caught up")
        t.eq([filter_count(r.text, x) for x in ("waiting", "awaiting_payment", "refund_requested")], [0, 0, 0],
             "the filters that mean work carry their counts, 0 at first")
        ids = [new_order(s, "count%d@bakery.example" % i, "Counting question number %d, about my bakery." % i)
               for i in range(4)]
        r = b.get("/admin")
        t.ok("All caught up" not in r.text, "not all caught up while orders wait for payment")
        t.ok(re.search(r'<a href="/admin\?status=awaiting_payment">4 orders await payment</a>', r.text),
             "the default view says what waits, with a link", r.text[-1500:])
        t.eq(filter_count(r.text, "awaiting_payment"), 4, "Awaiting payment 4")
        s.sql("UPDATE orders SET status = 'paid', paid_at = 1, due_at = 2 WHERE id IN (?, ?)", ids[0], ids[1])
        s.sql("UPDATE orders SET status = 'followup' WHERE id = ?", ids[2])
        r = b.get("/admin")
        t.eq([filter_count(r.text, x) for x in ("waiting", "awaiting_payment", "paid", "followup")], [3, 1, 2, 1],
             "Waiting 3 (paid and follow-up) · Awaiting payment 1 · Paid 2 · Follow-up 1")
        t.ok("All caught up" not in r.text and "still-waiting" not in r.text, "a queue with orders lists them")
        t.eq(filter_count(r.text, "answered"), None, "statuses that only grow are not counted (that reads every order)")
        s.sql("UPDATE orders SET status = 'answered' WHERE id IN (?, ?, ?)", ids[0], ids[1], ids[2])
        s.sql("UPDATE orders SET status = 'refund_requested' WHERE id = ?", ids[3])
        r = b.get("/admin")
        t.eq(filter_count(r.text, "refund_requested"), 1, "Refund requested 1")
        t.ok("All caught up" not in r.text and
             re.search(r'<a href="/admin/refunds">1 refund request waits</a>', r.text),
             "not all caught up while a refund waits: it says so, linked to the refunds", r.text[-1500:])
        r = b.get("/admin?status=awaiting_payment")
        t.ok("All caught up" not in r.text and "Nothing here." in r.text, "an empty filter says nothing here")
        s.sql("UPDATE orders SET status = 'refunded' WHERE id = ?", ids[3])
        r = b.get("/admin")
        t.ok("All caught up" in r.text, "all caught up once nothing waits")
        p = plan(s, stmt_sql("QUEUE_COUNTS"), 100)
        t.ok(p.count("COVERING INDEX orders_queue") == 4 and not re.search(r"SCAN orders\b(?! USING)", p),
             "the counts read ranges of orders_queue, not the table", p)
        # The counts stop at 100, so that the page costs the same at 100
        # orders and at 100,000: 120 orders awaiting payment show "99+".
        for i in range(120):
            s.sql("INSERT INTO orders (form_token, name, email, price, currency, created_at, due_at, updated_at) "
                  "VALUES (?, 'Many', 'many@example.com', 15000, 'GBP', 1, 2, 1)", "many%d" % i)
        r = b.get("/admin")
        t.ok(re.search(r'<a href="/admin\?status=awaiting_payment"[^>]*>[^<]*<span class="count">99\+</span></a>',
                       r.text) and "99+ orders await payment" in r.text,
             "120 orders awaiting payment: the count says 99+", r.text[-1500:])
    finally:
        s.cleanup()


# --- 4. a client's other orders ------------------------------------------------

def test_client_orders():
    b, _ = signed_in()
    emails = ("Repeat@Bakery.example", "repeat@bakery.example", "REPEAT@BAKERY.example", "repeat@bakery.example")
    ids = [new_order(site, e, "Repeat question %d from one client, about my bakery." % i)
           for i, e in enumerate(emails)]
    stranger = new_order(site, "stranger@bakery.example", "A question from someone else entirely, about bread.")
    r = b.get("/admin/orders/%d" % ids[3])
    m = re.search(r'<dd id="client-orders">(.*?)</dd>', r.text, re.S)
    t.ok(m and "<summary>3 earlier orders</summary>" in m.group(1),
         "the order page says \"3 earlier orders\" (the same address in any case)", m and m.group(1))
    links = re.findall(r'href="/admin/orders/(\d+)"', m.group(1)) if m else []
    t.eq(links, [str(i) for i in reversed(ids[:3])], "each linked, newest first")
    numbers = [site.sql1("SELECT number FROM orders WHERE id = ?", i) for i in ids[:3]]
    t.ok(m and all(n in m.group(1) for n in numbers), "by their numbers")
    t.ok(m and str(stranger) not in links, "another client's order is not among them")
    r = b.get("/admin/orders/%d" % ids[1])
    t.ok("<summary>1 earlier order, 2 later</summary>" in r.text, "an order in the middle: 1 earlier order, 2 later")
    r = b.get("/admin/orders/%d" % stranger)
    t.ok('id="client-orders"' not in r.text, "a client with one order: nothing said")
    for name, params in (("CLIENT_ORDERS", ("a@b.example", 0, 1, 20)), ("CLIENT_ORDERS_COUNT", ("a@b.example", 0, 1))):
        p = plan(site, stmt_sql(name), *params)
        t.ok("INDEX orders_email_lower" in p and "SCAN" not in p, name + " reads orders_email_lower's range", p)


# --- 5. the dashboard: unpaid, conversion, revenue by month --------------------

MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_key(k):
    """The calendar month k months before this one (UTC): (year, month 1-12)."""
    g = time.gmtime()
    n = g.tm_year * 12 + g.tm_mon - 1 - k
    return n // 12, n % 12 + 1


def mid_month(k):
    y, m = month_key(k)
    return calendar.timegm((y, m, 15, 12, 0, 0))


def test_dashboard():
    ds = Site(users=STAFF)
    ds.start()
    try:
        con = sqlite3.connect(ds.db)

        def order(key, status, price, currency, paid_at=None, refund=None):
            created = paid_at or int(time.time()) - 3600
            con.execute("INSERT INTO orders (form_token, name, email, price, currency, status, created_at, "
                        "due_at, paid_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (key, key, key + "@example.com", price, currency, status, created, created + 86400,
                         paid_at, created))
            oid = con.execute("SELECT last_insert_rowid()").fetchone()[0]
            if paid_at:
                con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, at) "
                            "VALUES (?, 'payment', ?, ?, 'bank_transfer', ?)", (oid, price, currency, paid_at))
            if refund:
                con.execute("INSERT INTO ledger (order_id, kind, amount, currency, method, at) "
                            "VALUES (?, 'refund', ?, ?, 'bank_transfer', ?)", (oid, refund[0], currency, refund[1]))
        order("o1", "answered", 15000, "GBP", mid_month(0))
        order("o2", "answered", 15000, "GBP", mid_month(1), refund=(5000, mid_month(1) + 3600))
        order("o3", "answered", 20000, "USD", mid_month(11))
        order("o4", "answered", 15000, "GBP", mid_month(12))          # outside the 12 months
        order("o5", "awaiting_payment", 15000, "GBP")
        order("o6", "awaiting_payment", 15000, "GBP")
        order("o7", "awaiting_payment", 20000, "USD")
        order("o8", "cancelled", 15000, "GBP")
        con.commit()
        con.close()
        b, _ = signed_in(ds)
        r = b.get("/admin/dashboard")
        t.eq(r.status, 200, "the dashboard answers 200")
        conv = re.search(r'<dd id="conversion">(.*?)</dd>', r.text, re.S)
        t.eq(re.sub(r"<[^>]+>", "", conv.group(1)).strip() if conv else None, "50.0% (4 of 8 orders paid)",
             "asked-to-paid conversion: 4 of 8 orders paid")
        unpaid = re.search(r'<table id="unpaid">(.*?)</table>', r.text, re.S)
        rows = re.findall(r"<tr><td>([A-Z]{3})</td><td>(\d+)</td><td>([\d.]+)</td></tr>", unpaid.group(1)) if unpaid else []
        t.eq(rows, [("GBP", "2", "300.00"), ("USD", "1", "200.00")], "unpaid orders: count and value per currency")
        t.ok(unpaid and 'href="/admin?status=awaiting_payment"' in unpaid.group(1), "linked to the orders awaiting payment")
        months = re.search(r'<table id="months">(.*?)</table>', r.text, re.S)
        rows = re.findall(r"<tr><td>(\w+ \d+)</td><td>([A-Z]{3})</td><td>([\d.]+)</td><td>([\d.]+)</td>"
                          r"<td>(-?[\d.]+)</td></tr>", months.group(1)) if months else []
        want = []
        for cur, money in (("GBP", {0: ("150.00", "0.00"), 1: ("150.00", "50.00")}), ("USD", {11: ("200.00", "0.00")})):
            for k in range(12):
                y, m = month_key(k)
                i, o = money.get(k, ("0.00", "0.00"))
                net = "%.2f" % (float(i) - float(o))
                want.append(("%s %d" % (MON[m - 1], y), cur, i, o, net))
        t.eq(rows, want, "revenue by month: the last 12 months per currency, newest first, net of refunds")
        y, m = month_key(12)
        t.ok(months and "%s %d" % (MON[m - 1], y) not in months.group(1), "the 13th month back is not shown")
        for name, params, index in (("DASH_UNPAID", (), "orders_unpaid"),
                                    ("DASH_MONTHS", (0, 1), "ledger_month"),
                                    ("DASH_COUNTS", (0, 1), "")):
            p = plan(ds, stmt_sql(name), *params)
            t.ok(("COVERING INDEX " + index) in p and not re.search(r"SCAN (orders|ledger)(?! USING COVERING)", p),
                 "%s reads %s only, never the table" % (name, index or "indexes"), p)
        p = plan(ds, stmt_sql("DASH_MONTHS"), 0, 1)
        t.ok("SEARCH ledger USING COVERING INDEX ledger_month (at>? AND at<?)" in p, "the months are one range of ledger_month", p)
    finally:
        ds.cleanup()


TESTS = [test_alert, test_alert_default, test_alert_off, test_search, test_search_common_word, test_queue_counts, test_client_orders, test_dashboard]
for fn in TESTS:
    t.run(fn)
site.cleanup()
sys.exit(t.done())
