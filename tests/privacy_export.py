#!/usr/bin/env python3
"""The export of a client's data (issue 20), through real nginx, pmb.fcgi
and pmbctl: a client with two orders (the second under their address in
another case), made through the real pages — a question with a file, a
payment, a reply, a follow-up and its answer, a "no" rating with
feedback, a refund request and its refund, the emails the outbox holds,
a staff note and a draft that must not be exported — and a second
client whose words must not appear. `pmbctl privacy export --email`
(any case) and `--order` give one JSON document with all of it, files
byte for byte; `--out` writes a 0600 file; an unknown address exits 1.
POST /admin/orders/ID/export gives the same document as a download,
audited without the data; without the CSRF token 403, GET 405, signed
out the sign-in; an erased order 409."""
import base64
import hashlib
import json
import os
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, ask, login, admin_csrf, track_path,  # noqa: E402
                     multipart_form, stmt_sql, STAFF, SRC, GOOD_QUESTION)

t = Tap()
site = Site(users=STAFF, settings={"rate_limit_email_per_hour": "1000", "rate_limit_ip_per_hour": "1000",
                                   "site_name": "Ask Sam", "privacy_controller": "Sam Carter Ltd, 1 High St"})
site.start()
staff = Browser(site)
login(staff)

ADDR = "Rich.Person@Example.com"
ADDR2 = "rich.PERSON@example.COM"      # the same client, another case
OTHER = "someone.else@example.net"
P = {  # unique phrases, each where the export must (or must not) show it
    "question": "zebra-marmalade question about ferries",
    "question2": "quokka-lantern second order question",
    "followup": "pelican-tangerine follow-up wording",
    "reply": "walrus-cinnamon advice in the reply",
    "reply2": "ocelot-saffron answer to the follow-up",
    "feedback": "narwhal-paprika was missing",
    "refund": "flamingo-nutmeg refund reason",
    "note": "STAFFNOTE-axolotl-secret",
    "draft": "DRAFT-capybara-unsent",
    "other": "OTHERPERSON-lemur-vanilla",
    "inbound": "heron-clove mailed words",
    "inbound_other": "STRANGER-ibis-anise mail",
}
FILE_BYTES = open(os.path.join(SRC, "tests", "files", "sample.pdf"), "rb").read()


def csrf_of(browser, path):
    return browser.form(path)[1]["csrf_token"]


def reply(oid, body):
    r = staff.post("/admin/orders/%d/reply" % oid, {"body": body, "confirm": "yes", "csrf_token": admin_csrf(staff)})
    assert r.status == 303, r


def ask_with_file(c, email, question):
    _, hidden = c.form("/ask")
    fields = dict(GOOD_QUESTION, email=email, question=question, name="Rich Person")
    fields.update(hidden)
    body, ctype = multipart_form(fields, [("ferry plan.pdf", FILE_BYTES)])
    r = c._send("POST", "/ask", body=body, headers={"Content-Type": ctype})
    assert r.status == 303, (r, r.text[:2000])
    return track_path(r.header("Location"))


def make_people():
    """The rich client's two orders and the other person's one; returns
    (first order id, second order id, the other's order id)."""
    c = Browser(site)
    path = ask_with_file(c, ADDR, P["question"])
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", ADDR)
    tok = admin_csrf(staff)
    staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer",
                                               "reference": "BANKREF-77", "csrf_token": tok})
    staff.post("/admin/orders/%d/note" % oid, {"body": P["note"], "csrf_token": tok})
    reply(oid, "Here is my **advice**: " + P["reply"])
    r = c.post(path + "/messages", {"message": P["followup"], "csrf_token": csrf_of(c, path)})
    assert r.status == 303, r
    reply(oid, P["reply2"])
    r = c.post(path + "/rating", {"rating": "no", "feedback": P["feedback"], "csrf_token": csrf_of(c, path + "?rating=no")})
    assert r.status == 303, r
    mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'answer' ORDER BY id", oid)
    rpath = re.search(r"https?://[^/\s]+(/r/[A-Za-z0-9_-]+)", mail).group(1)
    r = c.post(rpath, {"reason": P["refund"], "csrf_token": csrf_of(c, rpath)})
    assert r.status == 200, r
    rid = site.sql1("SELECT id FROM refund_requests WHERE order_id = ?", oid)
    r = staff.post("/admin/refunds/%d/refunded" % rid, {"amount": "", "method": "bank_transfer",
                                                        "reference": "REFUNDREF-9", "csrf_token": tok})
    assert r.status == 303, r
    # Mail kept with the order: the client's own, and another sender's.
    for addr, body in ((ADDR2, P["inbound"]), (OTHER, P["inbound_other"])):
        site.sql("INSERT INTO inbound (message_key, via, received_at, from_addr, subject, body, status, order_id, "
                 "raw_size, raw) VALUES (?, 'pipe', 1700000000, ?, 'Re: my order', ?, 'attached', ?, 3, 'raw')",
                 "k-" + addr, addr, body, oid)
    # The second order, under the address in another case: paid, a draft.
    c2 = Browser(site, remote="192.0.2.11")
    ask(c2, email=ADDR2, question=P["question2"], name="Rich Person")
    oid2 = site.sql1("SELECT id FROM orders WHERE email = ?", ADDR2)
    staff.post("/admin/orders/%d/paid" % oid2, {"amount": "150.00", "method": "paypal", "csrf_token": tok})
    r = staff.post("/admin/orders/%d/draft" % oid2, {"body": P["draft"], "csrf_token": tok})
    assert site.sql1("SELECT reply_draft FROM orders WHERE id = ?", oid2) == P["draft"], r
    # Someone else.
    c3 = Browser(site, remote="192.0.2.12")
    ask(c3, email=OTHER, question=P["other"], name="Otto Other")
    oid3 = site.sql1("SELECT id FROM orders WHERE email = ?", OTHER)
    staff.post("/admin/orders/%d/paid" % oid3, {"amount": "150.00", "method": "cash", "csrf_token": tok})
    reply(oid3, "Answer for " + P["other"])
    return oid, oid2, oid3


def strip_time(doc):
    d = dict(doc)
    d.pop("generated_at", None)
    return d


def check_document(doc, text, oid, oid2):
    t.eq((doc.get("format"), doc.get("version"), doc.get("site"), doc.get("controller")),
         ("pmb-export", 1, "Ask Sam", "Sam Carter Ltd, 1 High St"), "the head: format, version, site, controller")
    t.ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc.get("generated_at") or ""), "generated_at is ISO 8601 UTC")
    orders = doc["orders"]
    t.eq([o["number"] for o in orders], ["PMB-%06d" % oid, "PMB-%06d" % oid2],
         "both orders of the client, the other case too, oldest first")
    o1, o2 = orders
    t.eq((o1["client"]["name"], o1["client"]["email"], o1["client"]["company"], o1["client"]["website"],
          o1["client"]["ip"]),
         ("Rich Person", ADDR, GOOD_QUESTION["company"], "https://" + GOOD_QUESTION["website"],
          site.sql1("SELECT client_ip FROM orders WHERE id = ?", oid)), "the client's details, IP included")
    t.ok(o1["client"]["ip"], "the IP is there")
    t.eq(o2["client"]["email"], ADDR2, "the second order's address as typed")
    t.eq((o1["status"], o1["status_label"] != "", o1["price_minor"], o1["price"], o1["currency"]),
         ("refunded", True, 15000, "150.00", "GBP"), "status, its label, price in minor units and decimals")
    t.ok(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", o1[k]) for k in
             ("created_at", "paid_at", "answered_at", "refunded_at")) and o1["cancelled_at"] is None,
         "times as ISO 8601 UTC, null when it never happened")
    t.eq(o1["question"], P["question"], "the question's text")
    t.eq(o2["question"], P["question2"], "the second order's question")
    kinds = [(m["kind"], m["from"]) for m in o1["messages"]]
    t.eq(kinds, [("question", "client"), ("reply", "consultant"), ("followup", "client"), ("reply", "consultant")],
         "the thread the client sees, in order, without the note")
    t.eq([m["text"] for m in o1["messages"][1:]],
         ["Here is my **advice**: " + P["reply"], P["followup"], P["reply2"]],
         "the reply as Markdown, the follow-up and its answer, word for word")
    files = o1["messages"][0]["files"]
    raw = base64.b64decode(files[0]["data_base64"]) if files else b""
    stored = site.sql1("SELECT data FROM files WHERE order_id = ?", oid)
    t.ok(len(files) == 1 and files[0]["name"] == "ferry plan.pdf" and files[0]["kind"] == "pdf" and
         files[0]["size"] == len(stored), "the question's file: name, kind, size", files and {
             k: v for k, v in files[0].items() if k != "data_base64"})
    t.ok(raw == stored and raw == FILE_BYTES, "its bytes, base64-decoded, are the file's")
    t.eq(files and files[0]["sha256"], hashlib.sha256(raw).hexdigest(), "and its sha256 matches them")
    t.eq((o1["rating"], [f["text"] for f in o1["feedback"]]), ("no", [P["feedback"]]), "the rating and the feedback")
    t.eq([(r["reason"], r["status"]) for r in o1["refund_requests"]], [(P["refund"], "refunded")],
         "the refund request: reason and status")
    t.eq([(p["kind"], p["amount_minor"], p["amount"], p["currency"], p["method"], p["reference"])
          for p in o1["payments"]],
         [("payment", 15000, "150.00", "GBP", "bank_transfer", "BANKREF-77"),
          ("refund", 15000, "150.00", "GBP", "bank_transfer", "REFUNDREF-9")],
         "the ledger's payment and refund, in minor units and decimals")
    want = site.sql("SELECT kind, subject FROM outbox WHERE order_id = ? AND to_addr = ? ORDER BY id", oid, ADDR)
    t.ok(len(want) >= 4, "the outbox holds the client's emails", want)
    t.eq([(e["kind"], e["subject"]) for e in o1["emails_sent"]], [tuple(w) for w in want],
         "every email to the client, by kind and subject")
    t.ok(all(e["body_text"] for e in o1["emails_sent"]), "with their text")
    alerts = site.sql1("SELECT count(*) FROM outbox WHERE order_id = ? AND to_addr <> ?", oid, ADDR)
    t.ok(alerts > 0 and "consultant@example.com" not in text, "the consultant's alerts about it are not exported",
         alerts)
    t.eq([(e["from"], e["body"]) for e in o1["emails_received"]], [(ADDR2, P["inbound"])],
         "the client's own received email, not another sender's")
    t.eq([h["status"] for h in o1["status_history"]][:2], ["awaiting_payment", "paid"], "the status history")
    for k in ("note", "draft", "other", "inbound_other"):
        t.ok(P[k] not in text, "no %s phrase anywhere" % k)
    t.ok(OTHER not in text and "Otto Other" not in text, "nothing of the other person")
    t.ok("reply_draft" not in text and '"raw"' not in text, "no draft or raw mail field")


def test_cli(oid, oid2, oid3):
    p = site.ctl("privacy", "export", "--email", ADDR2.upper(), check=False)
    t.ok(p.returncode == 0, "pmbctl privacy export --email in another case: exit 0", p.stderr)
    t.ok("2 orders" in p.stderr, "it says how many orders on stderr", p.stderr)
    doc = json.loads(p.stdout)
    check_document(doc, p.stdout, oid, oid2)
    t.eq(doc["email"], ADDR2.upper(), "the address asked for")
    q = site.ctl("privacy", "export", "--order", "PMB-%06d" % oid2, check=False)
    t.ok(q.returncode == 0 and [o["number"] for o in json.loads(q.stdout)["orders"]] ==
         [o["number"] for o in doc["orders"]], "--order PMB-… gives every order of that client", q.stderr)
    q2 = site.ctl("privacy", "export", "--order", str(oid), check=False)
    t.eq(strip_time(json.loads(q2.stdout))["orders"], doc["orders"], "--order 123 gives the same orders, the same data")
    out = os.path.join(site.dir, "export.json")
    r = site.ctl("privacy", "export", "--email", ADDR, "--out", out, check=False)
    mode = stat.S_IMODE(os.stat(out).st_mode) if os.path.exists(out) else None
    t.ok(r.returncode == 0 and r.stdout == "" and mode == 0o600 and not os.path.exists(out + ".tmp"),
         "--out FILE writes a 0600 file, nothing on stdout", (r.returncode, mode, r.stderr))
    t.eq(strip_time(json.load(open(out)))["orders"], doc["orders"], "the file holds the document")
    r = site.ctl("privacy", "export", "--email", "nobody@example.org", check=False)
    t.ok(r.returncode == 1 and r.stdout == "", "an unknown address: exit 1, nothing written", r.returncode)
    t.eq(site.ctl("privacy", "export", "--order", "PMB-999999", check=False).returncode, 1, "an unknown order: exit 1")
    for args in ((), ("--email",), ("--email", ADDR, "--order", "1"), ("--order", "x"), ("--bogus", "1")):
        t.eq(site.ctl("privacy", "export", *args, check=False).returncode, 2, "usage error %r: exit 2" % (args,))
    # The plans of the statements the program runs (db_stmts.h): the
    # export's and the erase's (privacy_person_orders) reads of a person.
    for name in ("PEX_ORDERS", "PRIVACY_ORDERS_BY_EMAIL"):
        plan = " ".join(str(x) for x in site.sql("EXPLAIN QUERY PLAN " + stmt_sql(name), ADDR.lower()))
        t.ok("orders_email_lower" in plan and "SCAN orders" not in plan,
             "%s finds the address through its index" % name, plan)
    return doc


def test_web(oid, cli_doc):
    page = staff.get("/admin/orders/%d" % oid).text
    t.ok('action="/admin/orders/%d/export"' % oid in page and "Export this client" in page,
         "the order page has the export form")
    path = "/admin/orders/%d/export" % oid
    audits = site.sql1("SELECT count(*) FROM audit WHERE action = 'privacy_export'")
    r = staff.post(path, {"csrf_token": admin_csrf(staff, "/admin/orders/%d" % oid)})
    t.eq(r.status, 200, "POST with the token: 200")
    t.eq(r.header("Content-Type"), "application/json; charset=utf-8", "as application/json")
    t.eq(r.header("Content-Disposition"), 'attachment; filename="pmb-export-PMB-%06d.json"' % oid, "an attachment")
    t.eq(r.header("Cache-Control"), "private, no-store", "never cached")
    doc = json.loads(r.body)
    t.ok(strip_time(doc) == strip_time(dict(cli_doc, email=doc["email"])) and doc["email"] == ADDR,
         "the same document as pmbctl's (but its time), for the order's address")
    rows = site.sql("SELECT user_id, order_id, detail FROM audit WHERE action = 'privacy_export'")
    t.ok(len(rows) == audits + 1 and rows[-1][0] is not None and rows[-1][1] == oid, "audited: who and the order",
         rows)
    detail = rows[-1][2] if rows else ""
    t.ok(ADDR.lower() not in detail.lower() and not any(v in detail for v in P.values()),
         "the audit detail holds neither the address nor the data", detail)
    r = staff.post(path, {})
    t.ok(r.status == 403 and b"pmb-export" not in r.body, "without the token: 403, no data", r.status)
    t.eq(staff.get(path).status, 405, "GET: 405")
    r = Browser(site).post(path, {"csrf_token": "x" * 43})
    t.ok(r.status == 403 and 'href="/admin/login"' in r.text and b"pmb-export" not in r.body and
         P["question"].encode() not in r.body and r.header("Content-Disposition") is None,
         "signed out: 403 with the way to sign in, no data", r.status)
    t.eq(site.sql1("SELECT count(*) FROM audit WHERE action = 'privacy_export'"), audits + 1,
         "refused exports are not audited")
    t.eq(staff.post("/admin/orders/999999/export", {"csrf_token": admin_csrf(staff)}).status, 404, "no such order: 404")


def test_erased(oid3):
    """An erased order holds nothing personal: neither export gives it."""
    site.sql("UPDATE orders SET erased_at = 1700000000 WHERE id = ?", oid3)
    r = staff.post("/admin/orders/%d/export" % oid3, {"csrf_token": admin_csrf(staff)})
    t.ok(r.status == 409 and "erased" in r.text and P["other"] not in r.text, "an erased order: 409, it says so",
         r.status)
    t.eq(site.ctl("privacy", "export", "--email", OTHER, check=False).returncode, 1,
         "pmbctl: an address whose only order is erased has nothing to export")


try:
    ids = make_people()
    doc = test_cli(*ids)
    test_web(ids[0], doc)
    test_erased(ids[2])
finally:
    site.cleanup()
t.done()
