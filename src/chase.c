/* chase.c: what the mail daemon does besides delivering (issue 16):
 * unpaid orders reminded after unpaid_reminder_hours and cancelled after
 * unpaid_cancel_days, and the consultant's daily digest at digest_hour.
 *
 * Each order's reminder or cancellation is decided in its own BEGIN
 * IMMEDIATE transaction by a guarded UPDATE (an order paid meanwhile is
 * left alone; a reminder goes once, reminded_at records it), with its
 * mail queued, its audit row and (cancellation) its history row and the
 * expiry of an open Checkout Session in the same transaction. The
 * digest's day is recorded as it is queued, so a day has one digest
 * whatever number of daemons or passes run. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "chase.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "payment.h"
#include "tmpl.h"
#include "util.h"

#define CHASE_BATCH	50	/* orders read per range; the next pass goes on */
#define HOUR		3600
#define DAY_SECONDS	86400

/* The day (its first second) whose digest this process saw go, by itself
 * or another: the daemon's later rounds that day take no write lock to
 * learn it again. The day's row in digest_days is what decides. */
static int64_t digest_day_done = -1;

/* Sets up r as the request of the daemon's own changes: no client, and
 * no address in their audit rows. */
static void
machine_request(struct request *r)
{
	req_init(r, NULL);
	r->client_ip = "";
}

/* Reads up to CHASE_BATCH ids of orders due under st (created at or
 * before cutoff), after the keyset (*after_at, *after_id), which moves to
 * the last one read. Returns how many, or -1 on a database error. */
static int
due_batch(enum stmt st, int64_t cutoff, int64_t *after_at, int64_t *after_id,
    int64_t ids[CHASE_BATCH])
{
	sqlite3_stmt	*s;
	int		 n = 0, rc;

	if ((s = db_stmt(st)) == NULL || !db_bind(s, "iiii", cutoff,
	    *after_at, *after_id, (int64_t)CHASE_BATCH))
		return -1;
	while ((rc = db_step(st)) == DB_ROW && n < CHASE_BATCH) {
		ids[n++] = *after_id = sqlite3_column_int64(s, 0);
		*after_at = sqlite3_column_int64(s, 1);
	}
	db_done(st);
	return rc == DB_ROW || rc == DB_DONE ? n : -1;
}

/* Cancels unpaid order id if it is still unpaid, was never paid in part
 * and has no card payment under way: its session expired, history, audit and the client's email.
 * Returns 1 (cancelled or left alone), or 0 on a database error. */
static int
cancel_one(struct request *r, int64_t id)
{
	struct order	o;
	struct tvars	tv = { .n = 0 };
	const char	*why;
	int		rc;

	if (!db_begin())
		return 0;
	if ((rc = db_update(ST_ORDER_AUTO_CANCEL, "ii", now_unix(), id)) <= 0) {
		db_rollback();
		return rc == 0;
	}
	why = req_printf(r, "not paid within %lld days",
	    (long long)conf.unpaid_cancel_days);
	tv_set(&tv, "cancel_days", req_printf(r, "%lld",
	    (long long)conf.unpaid_cancel_days));
	if (order_load(r, id, &o) != 1 ||
	    !payment_sessions_end(id, "the order was cancelled") ||
	    !order_history(id, "cancelled", 0, why) ||
	    !audit_log(r, 0, "auto cancel", id, why) ||
	    !order_mail(r, &o, "unpaid_cancelled", &tv) || !db_commit()) {
		tv_free(&tv);
		db_rollback();
		return 0;
	}
	tv_free(&tv);
	log_msg("chase: order %s cancelled, %s", o.number, why);
	return 1;
}

/* Reminds the client of unpaid order id, once, with how to pay (unless
 * a card payment is under way: then a later pass looks again). Returns
 * 1 (reminded or left alone), or 0 on a database error. */
static int
remind_one(struct request *r, int64_t id)
{
	struct order	o;
	struct tvars	tv = { .n = 0 };
	char		*url;
	int		rc;

	if (!db_begin())
		return 0;
	if ((rc = db_update(ST_ORDER_REMIND, "ii", now_unix(), id)) <= 0) {
		db_rollback();
		return rc == 0;
	}
	if (order_load(r, id, &o) != 1 ||
	    (url = order_track_url(r, id)) == NULL)
		goto fail;
	tv_set(&tv, "amount", page_money(r, o.price, o.currency));
	tv_set(&tv, "ordered", page_time(r, o.created_at));
	if (payment_card_ok(o.price, o.currency))
		tv_set(&tv, "card_url", url);
	if (conf.unpaid_cancel_days > 0)
		tv_set(&tv, "cancel_on", page_time(r, o.created_at +
		    conf.unpaid_cancel_days * DAY_SECONDS));
	if (!audit_log(r, 0, "payment reminder", id, "") ||
	    !order_mail(r, &o, "unpaid_reminder", &tv) || !db_commit())
		goto fail;
	tv_free(&tv);
	log_msg("chase: order %s reminded of its payment", o.number);
	return 1;
fail:
	tv_free(&tv);
	db_rollback();
	return 0;
}

/* Runs one(r, id) on every order due under st (created at or before
 * cutoff), a batch at a time, each with a request of its own (its memory
 * freed after each order). Returns 1, or 0 on a database error. */
static int
chase_each(enum stmt st, int64_t cutoff,
    int (*one)(struct request *, int64_t))
{
	struct request	r;
	int64_t		ids[CHASE_BATCH], after_at = INT64_MIN, after_id = 0;
	int		n, ok;

	do {
		if ((n = due_batch(st, cutoff, &after_at, &after_id,
		    ids)) < 0)
			return 0;
		for (int i = 0; i < n; i++) {
			machine_request(&r);
			ok = one(&r, ids[i]);
			req_free(&r);
			if (!ok)
				return 0;
		}
	} while (n == CHASE_BATCH);
	return 1;
}

/* Reads the count that st gives (DIGEST_DUE_COUNT: of the answers due
 * from from to to). Returns it, or -1 on a database error. */
static int64_t
count_of(enum stmt st, int64_t from, int64_t to)
{
	sqlite3_stmt	*s;
	int64_t		 n = -1;

	if ((s = db_stmt(st)) == NULL)
		return -1;
	if (st == ST_DIGEST_DUE_COUNT && !db_bind(s, "ii", from, to))
		return -1;
	if (db_step(st) == DB_ROW)
		n = sqlite3_column_int64(s, 0);
	db_done(st);
	return n;
}

/* Sets the unpaid orders' count and value per currency ("2 (300.00
 * GBP)") as "unpaid" and "unpaid_value". Returns 1 or 0. */
static int
unpaid_vars(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s;
	struct buf	 value;
	int64_t		 count = 0;
	int		 rc;

	if ((s = db_stmt(ST_DASH_UNPAID)) == NULL)
		return 0;
	buf_init(&value);
	while ((rc = db_step(ST_DASH_UNPAID)) == DB_ROW) {
		count += sqlite3_column_int64(s, 1);
		buf_printf(&value, "%s%s %s", value.len ? ", " : "",
		    page_money(r, sqlite3_column_int64(s, 2),
		    db_text(s, 0)), db_text(s, 0));
	}
	db_done(ST_DASH_UNPAID);
	tv_set(tv, "unpaid", req_printf(r, "%lld", (long long)count));
	tv_set(tv, "unpaid_value", req_printf(r, "%s", value.data ?
	    value.data : ""));
	buf_free(&value);
	return rc == DB_DONE;
}

/* Queues today's digest to admin_email once it is digest_hour or later
 * in time_zone, unless it went today. Returns 1, or 0 on an error. */
static int
digest_send(struct request *r)
{
	struct tvars	tv = { .n = 0 };
	struct tm	tm;
	time_t		tt = (time_t)now_unix();
	int64_t		now = (int64_t)tt, start, next, due, late, refunds, inbox;
	int		rc;

	if (conf.digest_hour < 0)
		return 1;
	if (localtime_r(&tt, &tm) == NULL || !time_day(now, &start, &next))
		return 0;
	if (tm.tm_hour < conf.digest_hour || start == digest_day_done)
		return 1;
	if (!db_begin())
		return 0;
	if ((rc = db_update(ST_DIGEST_DAY_CLAIM, "ii", start, now)) <= 0) {
		db_rollback();
		if (rc == 0)
			digest_day_done = start;
		return rc == 0;
	}
	due = count_of(ST_DIGEST_DUE_COUNT, now, next);
	late = count_of(ST_DIGEST_DUE_COUNT, INT64_MIN, now);
	refunds = count_of(ST_DIGEST_REFUNDS_OPEN, 0, 0);
	inbox = count_of(ST_DIGEST_INBOX, 0, 0);
	page_vars(r, &tv);
	tv_set(&tv, "day", page_date(r, now));
	tv_set(&tv, "due_today", req_printf(r, "%lld", (long long)due));
	tv_set(&tv, "overdue", req_printf(r, "%lld", (long long)late));
	tv_set(&tv, "refunds_open", req_printf(r, "%lld",
	    (long long)refunds));
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin", conf.base_url));
	if (inbox > 0) {
		tv_set(&tv, "inbox", req_printf(r, "%lld", (long long)inbox));
		tv_set(&tv, "inbox_url", req_printf(r, "%s/admin/inbox",
		    conf.base_url));
	}
	if (due < 0 || late < 0 || refunds < 0 || inbox < 0 || !unpaid_vars(r, &tv) ||
	    !mail_queue("digest", 0, conf.admin_email, conf.consultant_name,
	    &tv) || !audit_log(r, 0, "digest", 0, "") || !db_commit()) {
		tv_free(&tv);
		db_rollback();
		return 0;
	}
	tv_free(&tv);
	digest_day_done = start;
	log_msg("chase: the daily digest is queued");
	return 1;
}

int
chase_pass(void)
{
	struct request	r;
	int64_t		now = now_unix();
	int		ok;

	/* Cancellations first: an order due both is cancelled, not
	 * reminded. */
	if (conf.unpaid_cancel_days > 0 && !chase_each(ST_CHASE_CANCEL_DUE,
	    now - conf.unpaid_cancel_days * DAY_SECONDS, cancel_one))
		return 0;
	if (conf.unpaid_reminder_hours > 0 && !chase_each(ST_CHASE_REMIND_DUE,
	    now - conf.unpaid_reminder_hours * HOUR, remind_one))
		return 0;
	machine_request(&r);
	ok = digest_send(&r);
	req_free(&r);
	return ok;
}
