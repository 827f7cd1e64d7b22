#!/usr/bin/env python3
"""Times where people live (issue 16), through real nginx: with
time_zone = Europe/London the same pages show GMT before the change of
29 Mar 2026 01:00 UTC and BST after it; America/New_York EST, then EDT
after 8 Mar 2026 07:00 UTC; UTC is shown as it always was. The payment
email gives its due time in the zone. Storage and the CSV export stay UTC.
A time_zone the zoneinfo files do not hold ("Mars/Olympus", a path, a
folder of zones) stops pmb.fcgi and pmbctl with the settings file's line."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pmbtest import (Tap, Site, Browser, PMB, ask, track_path, login,  # noqa: E402
                     admin_csrf, STAFF)

t = Tap()

HOUR = 3600
LONDON_DST = 1774746000     # 2026-03-29 01:00 UTC: GMT -> BST
NEW_YORK_DST = 1772953200   # 2026-03-08 07:00 UTC: EST -> EDT
ANSWER_HOURS = 48


def text_of(html):
    """The words of a page, tags removed and spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def zone_site(zone, now):
    """A site in zone (None: the default) served through nginx with the
    test clock at now; returns (site, signed-in staff Browser)."""
    settings = {"answer_hours": str(ANSWER_HOURS)}
    if zone is not None:
        settings["time_zone"] = zone
    site = Site(users=STAFF, settings=settings)
    os.environ["PMB_TEST_NOW"] = str(now)
    try:
        site.start()
    finally:
        del os.environ["PMB_TEST_NOW"]
    staff = Browser(site)
    login(staff)
    return site, staff


def paid_order(site, staff, email):
    """A client's order, marked paid by staff at the test clock; returns
    (client, status path, order id)."""
    c = Browser(site)
    r = ask(c, email=email)
    assert r.status == 303, r
    path = track_path(r.header("Location"))
    oid = site.sql1("SELECT id FROM orders WHERE email = ?", email)
    tok = admin_csrf(staff, "/admin/orders/%d" % oid)
    r = staff.post("/admin/orders/%d/paid" % oid, {"amount": "150.00", "method": "bank_transfer", "csrf_token": tok})
    assert r.status == 303, r
    return c, path, oid


def check_zone(zone, dst, before, after, label):
    """Two paid orders whose stored times sit 30 minutes either side of
    the zone's change at dst: their status pages and the consultant's
    order pages show before (e.g. "29 Mar 2026, 00:30 GMT") and after;
    the payment email, sent at the test clock, promises the answer
    ANSWER_HOURS later in the zone."""
    now = dst + 1800 - ANSWER_HOURS * HOUR
    site, staff = zone_site(zone, now)
    try:
        shown = {}
        for side, at in (("before", dst - 1800), ("after", dst + 1800)):
            c, path, oid = paid_order(site, staff, "%s-%s@example.com" % (label.split()[0].lower(), side))
            site.sql("UPDATE orders SET created_at = ?, due_at = ? WHERE id = ?", at, at, oid)
            shown[side] = (text_of(c.get(path).text), text_of(staff.get("/admin/orders/%d" % oid).text), oid)
        for side, want in (("before", before), ("after", after)):
            page, admin, oid = shown[side]
            t.ok("placed %s" % want in page and "promised by %s." % want in page,
                 "%s: the status page of an order %s the change shows %s" % (label, side, want), page[:600])
            t.ok("Received %s" % want in admin and "Due %s" % want in admin,
                 "%s: the order page %s the change shows %s" % (label, side, want), admin[:900])
        oid = shown["before"][2]
        mail = site.sql1("SELECT body_text FROM outbox WHERE order_id = ? AND kind = 'paid'", oid)
        t.ok("you will have my answer by %s." % after in mail,
             "%s: the payment email promises the answer by %s" % (label, after), mail)
        t.eq(site.sql1("SELECT created_at FROM orders WHERE id = ?", oid), dst - 1800,
             "%s: times are stored in UTC" % label)
        csv = staff.get("/admin/export.csv").text
        iso = "2026-03-%02dT%s:30:00Z" % ((29, "00") if dst == LONDON_DST else (8, "06"))
        t.ok(iso in csv, "%s: the CSV export's times stay UTC (%s)" % (label, iso), csv[:400])
        dash = text_of(staff.get("/admin/dashboard").text)
        t.ok("(Monday to Sunday, UTC)" in dash, "%s: the dashboard says its weeks are UTC weeks" % label)
    finally:
        site.cleanup()


def test_london():
    check_zone("Europe/London", LONDON_DST, "29 Mar 2026, 00:30 GMT", "29 Mar 2026, 02:30 BST",
               "Europe/London")


def test_new_york():
    check_zone("America/New_York", NEW_YORK_DST, "8 Mar 2026, 01:30 EST", "8 Mar 2026, 03:30 EDT",
               "America/New_York")


def test_utc():
    check_zone(None, LONDON_DST, "29 Mar 2026, 00:30 UTC", "29 Mar 2026, 01:30 UTC", "UTC (the default)")


def test_bad_names():
    site = Site()
    try:
        for bad, why in (("Mars/Olympus", "no time zone \"Mars/Olympus\""),
                         ("../etc/passwd", "without \".\" or \"..\" parts"),
                         ("Europe", "not a zone"),
                         ("/etc/passwd", "not a path")):
            site.conf["time_zone"] = bad
            site.write_conf()
            line = 1 + list(site.conf).index("time_zone")
            want = "%s:%d: time_zone: " % (site.conf_path, line)
            p = subprocess.run([PMB, "--listen", "unix:" + site.sock, "--workers", "1"],
                               capture_output=True, text=True, env=site.env(), timeout=30)
            t.ok(p.returncode != 0 and want in p.stderr and why in p.stderr,
                 "time_zone = %s: pmb.fcgi refuses to start, naming line %d" % (bad, line), p.stderr)
            p = site.ctl("check", check=False)
            t.ok(p.returncode != 0 and want in p.stderr and why in p.stderr,
                 "time_zone = %s: pmbctl check refuses it, naming line %d" % (bad, line), p.stderr)
        site.conf["time_zone"] = "Europe/London"
        site.write_conf()
        p = site.ctl("check", check=False)
        t.ok(p.returncode == 0 and "settings: ok" in p.stdout, "time_zone = Europe/London: pmbctl check is happy",
             p.stdout + p.stderr)
    finally:
        site.cleanup()


for fn in (test_london, test_new_york, test_utc, test_bad_names):
    t.run(fn)
sys.exit(t.done())
