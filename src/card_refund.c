/* card_refund.c: refunds paid back to the card (see card_refund.h).
 *
 * The money enters the ledger only when Stripe says it moved. A refund
 * decided by the consultant or by refund_auto_approve is a card_refunds
 * row (pending) and a pay job written in the deciding transaction; its
 * id makes the Idempotency-Key, and metadata[card_refund_id] lets every
 * later answer, event or list item find it again. Settling is guarded
 * (pending -> succeeded) and the ledger row is unique by its re_ id, so
 * the API answer, refund.updated, charge.refunded and reconcile may all
 * arrive, in any order and twice: the first does the work. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "card_refund.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "pay_method.h"
#include "stripe.h"
#include "tmpl.h"
#include "util.h"

/* Copies src into dst of size n, cut short if need be. */
static void
copy_text(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int
card_row_load(int64_t id, struct card_row *c)
{
	sqlite3_stmt	*s = db_stmt(ST_CARD_REFUND_BY_ID);
	int		 rc;

	memset(c, 0, sizeof(*c));
	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_CARD_REFUND_BY_ID)) == DB_ROW) {
		c->id = id;
		c->order_id = sqlite3_column_int64(s, 0);
		c->request_id = sqlite3_column_int64(s, 1);
		copy_text(c->pi, sizeof(c->pi), db_text(s, 2));
		c->amount = sqlite3_column_int64(s, 3);
		copy_text(c->currency, sizeof(c->currency), db_text(s, 4));
		copy_text(c->status, sizeof(c->status), db_text(s, 5));
		copy_text(c->stripe_id, sizeof(c->stripe_id), db_text(s, 6));
		c->user_id = sqlite3_column_int64(s, 7);
		c->created_at = sqlite3_column_int64(s, 8);
	}
	db_done(ST_CARD_REFUND_BY_ID);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Runs the one-text-column query st with an int key; the text goes to
 * out (n bytes, "" when no row). Returns 1, 0 if no row, -1 on error. */
static int
text_of(enum stmt st, int64_t key, char *out, size_t n)
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	*out = '\0';
	if (s == NULL || !db_bind(s, "i", key))
		return -1;
	if ((rc = db_step(st)) == DB_ROW)
		copy_text(out, n, db_text(s, 0));
	db_done(st);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int
card_refund_pi(int64_t order_id, char pi[PI_MAX])
{
	return text_of(ST_CARD_PAYMENT_OF_ORDER, order_id, pi, PI_MAX);
}

int
card_refund_disputed(int64_t order_id)
{
	char du[PI_MAX];

	return text_of(ST_CARD_DISPUTE_OPEN, order_id, du, sizeof(du));
}

/* Reads the sum of order_id's card refunds still pending into *sum.
 * Returns 1 or 0. */
static int
pending_sum(int64_t order_id, int64_t *sum)
{
	sqlite3_stmt	*s = db_stmt(ST_CARD_REFUNDS_PENDING_SUM);
	int		 rc;

	*sum = 0;
	if (s == NULL || !db_bind(s, "i", order_id))
		return 0;
	if ((rc = db_step(ST_CARD_REFUNDS_PENDING_SUM)) == DB_ROW)
		*sum = sqlite3_column_int64(s, 0);
	db_done(ST_CARD_REFUNDS_PENDING_SUM);
	return rc == DB_ROW;
}

int
card_refund_left(int64_t order_id, int64_t *left, int64_t *pending)
{
	int64_t paid, refunded;

	if (!order_balance(order_id, &paid, &refunded) ||
	    !pending_sum(order_id, pending))
		return 0;
	*left = paid - refunded - *pending;
	return 1;
}

enum card_refund_decision
card_refund_decide(const struct card_refund_ask *a, int64_t *amount,
    int64_t *id)
{
	char	 pi[PI_MAX];
	int64_t	 pending, left, now = now_unix();
	int	 rc;

	*amount = 0;
	*id = 0;
	if ((rc = card_refund_pi(a->order_id, pi)) <= 0)
		return rc < 0 ? CARD_REFUND_ERROR : CARD_REFUND_NOT_CARD;
	if ((rc = card_refund_disputed(a->order_id)) != 0)
		return rc < 0 ? CARD_REFUND_ERROR : CARD_REFUND_DISPUTED;
	/* Inside the transaction: what is on its way counts as gone. */
	if (!card_refund_left(a->order_id, &left, &pending))
		return CARD_REFUND_ERROR;
	*amount = a->amount > 0 ? a->amount : left;
	if (*amount <= 0 || *amount > left)
		return CARD_REFUND_TOO_MUCH;
	if (a->request_id > 0 && !a->retry && (rc = db_update(ST_REFUND_TO_PENDING, "i",
	    a->request_id)) != 1)
		return rc < 0 ? CARD_REFUND_ERROR : CARD_REFUND_GONE;
	if (db_run(ST_CARD_REFUND_INSERT, "iititii", a->order_id,
	    a->request_id, pi, *amount, a->currency, a->user_id, now) !=
	    DB_DONE)
		return CARD_REFUND_ERROR;
	*id = db_last_id();
	if (db_run(ST_PAY_JOB_INSERT_REFUND, "iii", a->order_id, *id, now) !=
	    DB_DONE)
		return CARD_REFUND_ERROR;
	return CARD_REFUND_QUEUED;
}

int64_t
card_refund_surplus(const struct order *o)
{
	int64_t	left, pending;

	if (!card_refund_left(o->id, &left, &pending))
		return -1;
	if (strcmp(o->status, "cancelled") != 0 &&
	    strcmp(o->status, "awaiting_payment") != 0)
		left -= o->price;
	return left > 0 ? left : 0;
}

enum card_refund_decision
card_refund_retry(int64_t request_id, int64_t user_id, int64_t *amount,
    int64_t *id)
{
	struct card_refund_ask	a = { .request_id = request_id,
	    .user_id = user_id, .retry = 1 };
	struct card_row		c;
	sqlite3_stmt		*s = db_stmt(ST_CARD_REFUND_LAST_FAILED);
	int64_t			old = 0;
	int			rc;

	if (s == NULL || !db_bind(s, "i", request_id))
		return CARD_REFUND_ERROR;
	if ((rc = db_step(ST_CARD_REFUND_LAST_FAILED)) == DB_ROW)
		old = sqlite3_column_int64(s, 0);
	db_done(ST_CARD_REFUND_LAST_FAILED);
	if (rc == DB_ERROR || (old > 0 && card_row_load(old, &c) != 1))
		return CARD_REFUND_ERROR;
	if (old == 0)
		return CARD_REFUND_GONE;
	a.order_id = c.order_id;
	a.amount = c.amount;
	a.currency = c.currency;
	return card_refund_decide(&a, amount, id);
}

/* After a card refund of amount entered the ledger: the order follows.
 * Refunds now equal payments: the request (open or pending) refunded,
 * the order refunded, history. Less: a pending request open again for
 * the rest once nothing else is on its way. Then the audit row (action,
 * detail) and the client's "refunded" mail (surplus: what was paid
 * beyond the price, asked for by no request, so nothing "will follow").
 * Returns 1 or 0. */
static int
order_follow(struct request *r, int64_t oid, int64_t uid, int64_t amount,
    int surplus, const char *action, const char *detail)
{
	struct order	 o;
	struct tvars	 tv = { .n = 0 };
	int64_t		 paid, refunded, now = now_unix();
	int		 full, rc, ok;

	if (order_load(r, oid, &o) != 1 ||
	    !order_balance(oid, &paid, &refunded))
		return 0;
	full = paid > 0 && refunded >= paid;
	if (full) {
		if (db_update(ST_REFUND_CARD_RESOLVE, "iii", now, uid, oid) < 0 ||
		    (rc = db_update(ST_ORDER_REFUNDED_CARD, "ii", now, oid)) < 0 ||
		    (rc == 1 && !order_history(oid, "refunded", uid, "")))
			return 0;
	} else if (db_update(ST_REFUND_PENDING_TO_OPEN, "i", oid) < 0)
		return 0;
	if (!audit_log(r, uid, action, oid, detail))
		return 0;
	tv_set(&tv, "amount", page_money(r, amount, o.currency));
	tv_set(&tv, "remaining", page_money(r, paid - refunded, o.currency));
	tv_set(&tv, "partial", full ? "" : "1");
	tv_set(&tv, "refund_sent", pay_method_refund_sent("card"));
	tv_set(&tv, "surplus", surplus && !full ? "1" : "");
	ok = order_mail(r, &o, "refunded", &tv);
	tv_free(&tv);
	return ok;
}

int
card_refund_settle(struct request *r, int64_t id, const char *re_id)
{
	struct card_row	c;
	int64_t		now = now_unix();
	int		rc;

	if ((rc = card_row_load(id, &c)) <= 0)
		return rc;
	if (re_id == NULL || *re_id == '\0')
		re_id = c.stripe_id;
	if ((rc = db_update(ST_CARD_REFUND_SUCCEEDED, "iti", now, re_id,
	    id)) != 1)
		return rc;
	/* A CONSTRAINT: this re_ is in the ledger already (recorded as a
	 * refund made in Stripe before we knew it was ours). */
	rc = db_run(ST_CARD_LEDGER_REFUND, "iittii", c.order_id, c.amount,
	    c.currency, re_id, now, c.user_id);
	if (rc == DB_DONE) {
		if (db_run(ST_CARD_REFUND_SET_LEDGER, "ii", db_last_id(), id) !=
		    DB_DONE)
			return -1;
	} else if (rc != DB_CONSTRAINT)
		return -1;
	if (rc == DB_CONSTRAINT)
		return 1;
	return order_follow(r, c.order_id, c.user_id, c.amount,
	    c.request_id == 0, "card refund succeeded", req_printf(r, "%s %s to the card, %s",
	    page_money(r, c.amount, c.currency), c.currency, re_id)) ? 1 : -1;
}

/* A refund of amount (currency) to the card of order oid, Stripe's
 * re_id, in the ledger as succeeded, failed after all (refund.failed:
 * the money went back to the Stripe balance, not to the client): out of
 * the ledger; the request it settled (rid, or 0: the order's; -1: none)
 * open again and the order waiting for the refund (history); audit and
 * the consultant's alert. Returns 1, 0 if re_id is in no ledger row
 * (nothing changed), -1 on a database error. */
static int
refund_undo(struct request *r, int64_t oid, int64_t rid, int64_t amount,
    const char *currency, const char *re_id, const char *why)
{
	struct order	 o;
	struct tvars	 tv = { .n = 0 };
	int64_t		 now = now_unix();
	int		 rc, reopened = 0, ok;

	if ((rc = db_update(ST_CARD_LEDGER_REFUND_UNDO, "t", re_id)) != 1)
		return rc;
	if (rid >= 0 && (reopened = db_update(ST_REFUND_CARD_REOPEN, "ii",
	    oid, rid)) < 0)
		return -1;
	if (reopened == 1 && ((rc = db_update(ST_ORDER_REFUND_REOPEN, "ii",
	    now, oid)) < 0 || (rc == 1 && !order_history(oid,
	    "refund_requested", 0, "the card refund failed after it "
	    "succeeded"))))
		return -1;
	if (order_load(r, oid, &o) != 1 || !audit_log(r, 0, "card refund "
	    "failed after it succeeded", oid, req_printf(r, "%s %s, %s: %s",
	    page_money(r, amount, currency), currency, re_id, why)))
		return -1;
	page_vars(r, &tv);
	tv_set(&tv, "number", o.number);
	tv_set(&tv, "name", o.name);
	tv_set(&tv, "amount", page_money(r, amount, currency));
	tv_set(&tv, "order_currency", currency);
	tv_set(&tv, "reference", re_id);
	tv_set(&tv, "why", why);
	tv_set(&tv, "request", reopened == 1 ? "1" : "");
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)oid));
	ok = mail_queue("card_refund_alert", oid, conf.admin_email,
	    conf.consultant_name, &tv);
	tv_free(&tv);
	return ok ? 1 : -1;
}

/* Card refund c, settled as succeeded by re_id, failed after all: the
 * row failed, then refund_undo (its own request only). Returns 1, 0 if
 * it was not settled as succeeded by re_id, -1 on a database error. */
static int
reversed(struct request *r, const struct card_row *c, const char *re_id,
    const char *why)
{
	int rc;

	if (re_id == NULL || *re_id == '\0' || strcmp(c->status,
	    "succeeded") != 0 || strcmp(c->stripe_id, re_id) != 0)
		return 0;
	if ((rc = db_update(ST_CARD_REFUND_REVERSED, "itit", now_unix(), why,
	    c->id, re_id)) != 1)
		return rc;
	return refund_undo(r, c->order_id, c->request_id > 0 ?
	    c->request_id : -1, c->amount, c->currency, re_id, why) < 0 ?
	    -1 : 1;
}

int
card_refund_fail(struct request *r, int64_t id, const char *re_id,
    const char *why)
{
	struct card_row	c;
	int		rc;

	if ((rc = card_row_load(id, &c)) <= 0)
		return rc;
	if ((rc = db_update(ST_CARD_REFUND_FAILED, "itti", now_unix(), why,
	    re_id != NULL ? re_id : "", id)) == 0)
		return reversed(r, &c, re_id, why);
	if (rc != 1)
		return rc;
	return audit_log(r, 0, "card refund failed", c.order_id,
	    req_printf(r, "%s %s: %s", page_money(r, c.amount, c.currency),
	    c.currency,
	    why)) ? 1 : -1;
}

/* Finds which card refund of ours Stripe's refund object is: by
 * metadata.card_refund_id when that row refunds the same PaymentIntent,
 * else by our stored re_ id. Returns the id, 0 if none, -1 on error. */
static int64_t
ours(json_t *refund, struct card_row *c)
{
	const char	*meta = stripe_str(refund, "metadata.card_refund_id");
	const char	*pi = stripe_str(refund, "payment_intent");
	const char	*re = stripe_str(refund, "id");
	int64_t		 id;
	int		 rc;

	if (meta != NULL && parse_int64(meta, 1, INT64_MAX, &id)) {
		if ((rc = card_row_load(id, c)) < 0)
			return -1;
		if (rc == 1 && pi != NULL && strcmp(pi, c->pi) == 0)
			return id;
	}
	if (re == NULL || (id = db_find_id(ST_CARD_REFUND_BY_STRIPE_ID,
	    re)) == 0)
		return 0;
	if (id < 0 || card_row_load(id, c) != 1)
		return -1;
	return id;
}

/* A refund made in Stripe's dashboard (no row of ours): once it
 * succeeded, a ledger row (method card, its re_ id, once) and the order
 * follows. Returns 0 or -1. */
static int
foreign_refund(struct request *r, json_t *refund, int64_t *oid,
    const char **text)
{
	const char	*pi = stripe_str(refund, "payment_intent");
	const char	*re = stripe_str(refund, "id");
	const char	*status = stripe_str(refund, "status");
	const char	*currency = stripe_str(refund, "currency");
	struct order	 o;
	int64_t		 amount, now = now_unix();
	int		 rc;

	*text = "not ours";
	if (pi == NULL || re == NULL || strncmp(re, "re_", 3) != 0 ||
	    (*oid = db_find_id(ST_CARD_ORDER_OF_PI, pi)) == 0)
		return 0;
	if (*oid < 0 || (rc = order_load(r, *oid, &o)) < 0)
		return -1;
	if (rc == 1 && status != NULL && (strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0) &&
	    stripe_int(refund, "amount", &amount) && amount > 0) {
		const char *why = req_printf(r, "Stripe could not pay it "
		    "back (%s)", stripe_str(refund, "failure_reason") != NULL ?
		    stripe_str(refund, "failure_reason") : status);

		/* Recorded when it succeeded, failed since: undone once, and
		 * kept as a failed card refund of the order, so that a late
		 * "succeeded" of it finds it failed (CARD_REFUND_SUCCEEDED)
		 * rather than no row and records it again. */
		if ((rc = refund_undo(r, *oid, 0, amount, o.currency, re,
		    why)) < 0 || (rc == 1 && (db_run(ST_CARD_REFUND_INSERT,
		    "iititii", *oid, (int64_t)0, pi, amount, o.currency,
		    (int64_t)0, now) != DB_DONE || db_update(
		    ST_CARD_REFUND_FAILED, "itti", now, why, re,
		    db_last_id()) != 1)))
			return -1;
		*text = rc == 1 ? "refund made in Stripe failed, undone" :
		    "refund made in Stripe failed";
		return 0;
	}
	if (rc == 0 || status == NULL || strcmp(status, "succeeded") != 0 ||
	    !stripe_int(refund, "amount", &amount) || amount <= 0) {
		*text = "refund made in Stripe, not succeeded yet";
		return 0;
	}
	if (currency != NULL && strcasecmp(currency, o.currency) != 0)
		log_msg("stripe: refund %s is in %s, order %s in %s", re,
		    currency, o.number, o.currency);
	if ((rc = db_run(ST_CARD_LEDGER_REFUND, "iittii", *oid, amount,
	    o.currency, re, now, (int64_t)0)) == DB_CONSTRAINT) {
		*text = "refund made in Stripe, already recorded";
		return 0;
	}
	if (rc != DB_DONE || !order_follow(r, *oid, 0, amount, 0,
	    "refund made in Stripe", req_printf(r, "%s %s, %s",
	    page_money(r, amount, o.currency), o.currency, re)))
		return -1;
	*text = "refund made in Stripe, recorded";
	return 0;
}

int
card_refund_apply(struct request *r, int64_t id, json_t *refund,
    const char **text)
{
	const char	*status = stripe_str(refund, "status");
	const char	*re = stripe_str(refund, "id");
	const char	*why;
	int		 rc;

	if (status == NULL || re == NULL || strncmp(re, "re_", 3) != 0) {
		*text = "not a refund";
		return 0;
	}
	if (strcmp(status, "succeeded") == 0) {
		rc = card_refund_settle(r, id, re);
		*text = rc == 1 ? "refund succeeded" : "refund settled already";
	} else if (strcmp(status, "failed") == 0 ||
	    strcmp(status, "canceled") == 0) {
		why = stripe_str(refund, "failure_reason");
		rc = card_refund_fail(r, id, re, req_printf(r, "Stripe could "
		    "not pay it back (%s)", why != NULL ? why : status));
		*text = rc == 1 ? "refund failed" : "refund settled already";
	} else {
		rc = db_update(ST_CARD_REFUND_SET_STRIPE_ID, "ti", re, id);
		*text = "refund pending";
	}
	return rc < 0 ? -1 : 0;
}

int
card_refund_event(struct request *r, json_t *refund, int64_t *order_id,
    const char **text)
{
	struct card_row	 c;
	int64_t		 id;

	*order_id = 0;
	*text = "not ours";
	if (!json_is_object(refund))
		return 0;
	if ((id = ours(refund, &c)) < 0)
		return -1;
	if (id == 0)
		return foreign_refund(r, refund, order_id, text);
	*order_id = c.order_id;
	return card_refund_apply(r, id, refund, text);
}

/* Mails the consultant that order o's charge is disputed. Returns 1/0. */
static int
dispute_alert(struct request *r, const struct order *o, json_t *du)
{
	struct tvars	 tv = { .n = 0 };
	const char	*reason = stripe_str(du, "reason");
	int64_t		 amount = 0;
	int		 ok;

	stripe_int(du, "amount", &amount);
	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "amount", page_money(r, amount, o->currency));
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "reason", reason != NULL ? reason : "");
	tv_set(&tv, "dispute", stripe_str(du, "id"));
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)o->id));
	ok = mail_queue("dispute_alert", o->id, conf.admin_email,
	    conf.consultant_name, &tv);
	tv_free(&tv);
	return ok;
}

int
card_dispute_event(struct request *r, json_t *du, int closed,
    int64_t *order_id, const char **text)
{
	const char	*pi = stripe_str(du, "payment_intent");
	const char	*id = stripe_str(du, "id");
	const char	*status = stripe_str(du, "status");
	struct order	 o;
	int		 rc;

	*order_id = 0;
	*text = "not ours";
	if (pi == NULL || id == NULL || strncmp(id, "du_", 3) != 0 ||
	    (*order_id = db_find_id(ST_CARD_ORDER_OF_PI, pi)) == 0)
		return 0;
	if (*order_id < 0 || (rc = order_load(r, *order_id, &o)) < 0)
		return -1;
	if (rc == 0)
		return 0;
	/* Created and closed may come in either order: the flag is made
	 * by whichever comes first (INSERT OR IGNORE), closed once. */
	if ((rc = db_update(ST_DISPUTE_FLAG_INSERT, "itti", o.id, id,
	    req_printf(r, "chargeback opened (%s)", stripe_str(du, "reason") ?
	    stripe_str(du, "reason") : "no reason given"), now_unix())) < 0)
		return -1;
	if (rc == 1 && (!dispute_alert(r, &o, du) || !audit_log(r, 0,
	    "dispute opened", o.id, id)))
		return -1;
	*text = rc == 1 ? "dispute flagged" : "dispute known";
	if (!closed)
		return 0;
	if (status == NULL || (strcmp(status, "won") != 0 &&
	    strcmp(status, "lost") != 0))
		status = "closed";
	if ((rc = db_update(ST_DISPUTE_FLAG_CLOSE, "itit", now_unix(), status,
	    o.id, id)) < 0)
		return -1;
	if (rc == 1 && !audit_log(r, 0, "dispute closed", o.id,
	    req_printf(r, "%s: %s", id, status)))
		return -1;
	*text = rc == 1 ? "dispute closed" : "dispute closed already";
	return 0;
}
