/* page_admin_refunds.c: the money-back guarantee, the consultant's side.
 * GET /admin/refunds lists open requests, oldest first, and those whose
 * money is on its way back to the card; each is seen through with POST
 * /admin/refunds/ID/refunded (method "card" on a card-paid order: a
 * refund that Stripe pays back, card_refund.c; any other method: a
 * ledger row at once; never more than was paid net of earlier refunds)
 * or, for abuse only, POST /admin/refunds/ID/decline with a written
 * reason. POST /admin/refunds/ID/retry asks Stripe again for a refund
 * it refused. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "card_refund.h"
#include "conf.h"
#include "currency.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "page_privacy.h"
#include "pay_method.h"
#include "router.h"

/* Returns NULL if v is empty or an amount such as 150.00 greater than
 * zero, with as many decimals as any currency has: the handler, which
 * knows the order's currency, parses it again (page_parse_money). */
static const char *
check_refund_amount(const char *v)
{
	int64_t n;

	if (*v == '\0')
		return NULL;	/* empty: the full net amount */
	if (!parse_money(v, CURRENCY_EXPONENT_MAX, &n) || n <= 0)
		return "Enter an amount such as 150.00.";
	return NULL;
}

/* The fields of the refund actions (an interface). */
const struct field refunded_fields[] = {
#define XF_AMOUNT	0
	{ "amount", "the amount", 0, 20, 0, check_refund_amount },
#define XF_METHOD	1
	{ "method", "the refund method", 1, 20, F_REQUIRED,
	    pay_method_check },
#define XF_REFERENCE	2
	{ "reference", "the reference", 0, 100, 0, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field surplus_fields[] = {
#define SF_AMOUNT	0
	{ "amount", "the amount", 0, 20, 0, check_refund_amount },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field retry_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field decline_fields[] = {
#define DF_REASON	0
	{ "reason", "the reason", 1, 2000, F_REQUIRED | F_MULTILINE, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

int
page_card_refunds(struct request *r, struct tvars *row, int64_t oid,
    int pending, const struct order *o)
{
	sqlite3_stmt	*s = db_stmt(ST_CARD_REFUNDS_OF_ORDER);
	char		 pi[PI_MAX];
	int64_t		 surplus = 0;
	int		 rc, first = 1;

	if ((rc = card_refund_pi(oid, pi)) < 0 || (rc == 1 && o != NULL &&
	    (surplus = card_refund_surplus(o)) < 0) || s == NULL ||
	    !db_bind(s, "i", oid))
		return 0;
	tv_set(row, "card_paid", rc == 1 ? "1" : "");
	tv_set(row, "card_surplus", surplus > 0 ? page_money(r, surplus,
	    o->currency) : "");
	while ((rc = db_step(ST_CARD_REFUNDS_OF_ORDER)) == DB_ROW) {
		struct tvars	*c = tv_row(row, "cards");
		const char	*st = db_text(s, 2);

		tv_set(c, "card_amount", page_money(r,
		    sqlite3_column_int64(s, 1), db_text(s, 7)));
		tv_set(c, "card_pending", !strcmp(st, "pending") ? "1" : "");
		tv_set(c, "card_failed", !strcmp(st, "failed") ? "1" : "");
		tv_set(c, "card_succeeded", !strcmp(st, "succeeded") ? "1" :
		    "");
		tv_set(c, "card_error", req_strdup(r, db_text(s, 3)));
		tv_set(c, "card_ref", req_strdup(r, db_text(s, 4)));
		tv_set(c, "card_at", page_time(r, sqlite3_column_int64(s, 5)));
		if (first && pending && !strcmp(st, "failed"))
			tv_set(row, "can_retry", "1");
		if (first)
			tv_set(row, "has_cards", "1");
		first = 0;
	}
	db_done(ST_CARD_REFUNDS_OF_ORDER);
	return rc != DB_ERROR;
}

/* Sets how the order of a row was paid: paid_label (the method's),
 * paid_reference. */
static void
paid_method(struct request *r, struct tvars *row, const char *method,
    const char *reference)
{
	tv_set(row, "paid_label", *method ? pay_method_label(method) :
	    "not recorded");
	tv_set(row, "paid_reference", req_strdup(r, reference));
}

/* Adds the requests of status ("open" or "pending": their money on its
 * way to the card) to tv's list, each with its card refunds. Returns
 * their number, or -1 on a database error. */
static int
request_rows(struct request *r, struct tvars *tv, const char *status,
    const char *list)
{
	const enum stmt	 st = ST_REFUNDS_BY_STATUS;
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc, n = 0, ok = 1, pending = !strcmp(status, "pending");

	if (s == NULL || !db_bind(s, "t", status))
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		struct tvars	*row = tv_row(tv, list);
		const char	*cp;
		int		 stripe;

		n++;
		tv_set(row, "id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "order_id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 1)));
		tv_set(row, "number", req_strdup(r, db_text(s, 2)));
		tv_set(row, "name", req_strdup(r, db_text(s, 3)));
		tv_set(row, "reason", req_strdup(r, db_text(s, 4)));
		tv_set(row, "requested", page_time(r, sqlite3_column_int64(s, 5)));
		tv_set(row, "answered", page_time(r, sqlite3_column_int64(s, 6)));
		tv_set(row, "viewed", page_time(r, sqlite3_column_int64(s, 7)));
		tv_set(row, "order_currency", req_strdup(r, db_text(s, 8)));
		tv_set(row, "net", page_money(r, sqlite3_column_int64(s, 9),
		    db_text(s, 8)));
		tv_set(row, "can_decline", conf.refund_auto_approve ? "" : "1");
		paid_method(r, row, db_text(s, 10), db_text(s, 11));
		ok &= page_card_refunds(r, row, sqlite3_column_int64(s, 1),
		    pending, NULL);
		/* Back to the card (Stripe) first when Stripe took the money;
		 * else the way the order was paid, by hand. */
		stripe = (cp = tv_get(row, "card_paid")) != NULL && *cp;
		pay_method_options(row, "methods", stripe ? NULL :
		    *db_text(s, 10) ? db_text(s, 10) : "bank_transfer",
		    stripe ? "card" : NULL);
	}
	db_done(st);
	return rc == DB_ERROR || !ok ? -1 : n;
}

/* Renders the list of open requests, then those on their way to the
 * card, with status and messages. */
static void
refunds_list(struct request *r, int status, const char *notice,
    const char *error)
{
	struct tvars	 tv = { .n = 0 };
	int		 n, np;

	n = request_rows(r, &tv, "open", "rows");
	np = n < 0 ? -1 : request_rows(r, &tv, "pending", "pending");
	if (!page_list_vars(r, &tv, np < 0 ? -1 : n))
		return;
	tv_set(&tv, "has_pending", np > 0 ? "1" : "");
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	page_render(r, status, "Refund requests", "admin_refunds.html", &tv);
}

/* GET /admin/refunds */
void
page_admin_refunds(struct request *r)
{
	static const char *const notices[] = {
		"refunded", "Refund recorded and the client told.",
		"partial", "Partial refund recorded; the request stays open "
		    "for the rest.",
		"card", "Refund sent to Stripe — waiting for confirmation.",
		"declined", "Request declined.",
		NULL
	};

	refunds_list(r, 200, page_done_notice(r, notices), NULL);
}

/* Reads the status of refund request rid into *status (request-owned;
 * "" when there is none) and, if oid is not NULL, its order's id into
 * *oid (0 when there is none). Inside a write transaction it is the
 * status that the transaction's changes start from. Returns 1, or 0 on
 * a database error. */
static int
refund_status(struct request *r, int64_t rid, const char **status,
    int64_t *oid)
{
	sqlite3_stmt	*s = db_stmt(ST_REFUND_BY_ID);
	int		 rc;

	*status = "";
	if (oid != NULL)
		*oid = 0;
	if (s == NULL || !db_bind(s, "i", rid))
		return 0;
	if ((rc = db_step(ST_REFUND_BY_ID)) == DB_ROW) {
		*status = req_strdup(r, db_text(s, 1));
		if (oid != NULL)
			*oid = sqlite3_column_int64(s, 0);
	}
	db_done(ST_REFUND_BY_ID);
	return rc != DB_ERROR;
}

/* Answers 409 for a request that was seen through meanwhile (the
 * caller rolled back): says how, with the open requests below. */
static void
refund_gone(struct request *r, int64_t rid, const struct order *o)
{
	const char *status;

	if (!refund_status(r, rid, &status, NULL)) {
		page_unavailable(r);
		return;
	}
	refunds_list(r, 409, NULL, req_printf(r, "The refund request of %s "
	    "was already %s: nothing was changed.", o->number,
	    !strcmp(status, "refunded") ? "refunded" : !strcmp(status,
	    "declined") ? "declined" : !strcmp(status, "pending") ?
	    "sent back to the card (waiting for Stripe)" : "dealt with"));
}

/* Loads refund request ID of the path and its order (for the pages; the
 * decision that it may change is the transaction's). Returns 1, or
 * answers and returns 0. */
static int
refund_start(struct request *r, int64_t *rid, struct order *o)
{
	const char	*status;
	int64_t		 oid = 0;
	int		 rc = 0;

	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return 0;
	}
	if (r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, rid)) {
		if (!refund_status(r, *rid, &status, &oid))
			rc = -1;
		else if (oid > 0)
			rc = order_load(r, oid, o);
	}
	if (!page_found(r, rc, "No such refund request", "There is no refund "
	    "request with this number."))
		return 0;
	for (size_t i = 0; r->fields && r->route->fields[i].name; i++)
		if (r->fields[i].error != NULL) {
			refunds_list(r, 400, NULL, req_printf(r, "%s: %s",
			    o->number, r->fields[i].error));
			return 0;
		}
	return 1;
}

/* Answers a card refund that card_refund_decide (or _retry) did not
 * queue (the caller rolled back): why, in words. */
static void
card_refused(struct request *r, enum card_refund_decision d, int64_t rid,
    const struct order *o, int64_t amount)
{
	if (d == CARD_REFUND_GONE)
		refund_gone(r, rid, o);
	else if (d == CARD_REFUND_DISPUTED)
		refunds_list(r, 409, NULL, req_printf(r, "%s: the card payment "
		    "is disputed: Stripe refuses refunds of a charge under "
		    "dispute, so nothing was sent.", o->number));
	else if (d == CARD_REFUND_NOT_CARD)
		refunds_list(r, 400, NULL, req_printf(r, "%s was not paid by "
		    "card, so it cannot be refunded to a card: choose how you "
		    "paid it back.", o->number));
	else if (d == CARD_REFUND_TOO_MUCH)
		refunds_list(r, 400, NULL, req_printf(r, "%s: a refund of %s "
		    "%s is more than what is left to refund, net of earlier "
		    "refunds and of those on their way.", o->number,
		    page_money(r, amount, o->currency), o->currency));
	else
		page_unavailable(r);
}

/* POST /admin/refunds/ID/refunded with method card: the refund and its
 * job in one transaction; Stripe is called by the job runner ("pmbctl
 * pay run") after COMMIT, never from the worker, and the money counts
 * as returned only when Stripe confirms. */
static void
card_refunded(struct request *r, int64_t rid, const struct order *o,
    int64_t asked)
{
	struct card_refund_ask		 a = { .order_id = o->id,
	    .request_id = rid, .currency = o->currency,
	    .user_id = r->session->user_id };
	enum card_refund_decision	 d;
	int64_t				 amount = 0, id;

	a.amount = asked;
	if (!db_begin()) {
		page_unavailable(r);
		return;
	}
	if ((d = card_refund_decide(&a, &amount, &id)) != CARD_REFUND_QUEUED ||
	    !audit_log(r, a.user_id, "card refund", o->id, req_printf(r,
	    "%s %s to the card (card refund #%lld)", page_money(r, amount,
	    o->currency),
	    o->currency, (long long)id)) || !db_commit()) {
		db_rollback();
		card_refused(r, d == CARD_REFUND_QUEUED ? CARD_REFUND_ERROR : d,
		    rid, o, a.amount > 0 ? a.amount : amount);
		return;
	}
	http_redirect(r, "/admin/refunds?done=card");
}

/* Decides, in the transaction, the amount of request rid's refund by
 * hand: the request open, or pending with its card refund refused and
 * nothing on its way to the card; the amount (all that is left when
 * empty) at most what was paid net of refunds. *paid and *refunded get
 * the ledger's totals. Returns 1; 0 after rolling back and answering;
 * -1 on a database error (the caller rolls back). */
static int
hand_amount(struct request *r, int64_t rid, const struct order *o,
    int64_t *amount, int64_t *paid, int64_t *refunded)
{
	const char	*status;
	int64_t		 left, pending;

	if (!refund_status(r, rid, &status, NULL) ||
	    !card_refund_left(o->id, &left, &pending) ||
	    !order_balance(o->id, paid, refunded))
		return -1;
	if (strcmp(status, "open") != 0 && (strcmp(status, "pending") != 0 ||
	    pending > 0)) {
		db_rollback();
		refund_gone(r, rid, o);
		return 0;
	}
	if (*amount == 0)	/* none asked: all that is left */
		*amount = left;
	if (*amount <= 0 || *amount > left) {
		db_rollback();
		refunds_list(r, 400, NULL, req_printf(r, "%s: a refund of %s "
		    "%s is more than the %s %s paid net of earlier refunds%s.",
		    o->number, page_money(r, *amount, o->currency),
		    o->currency, page_money(r, left, o->currency),
		    o->currency, pending > 0 ? " and of "
		    "those on their way to the card" : ""));
		return 0;
	}
	return 1;
}

/* Whether a refund by method of order o goes back to the card through
 * Stripe: method card and a card payment of Stripe's. Returns 1 or 0,
 * -1 on a database error. */
static int
stripe_paid(const struct order *o, const char *method)
{
	char pi[PI_MAX];

	return strcmp(method, "card") != 0 ? 0 : card_refund_pi(o->id, pi);
}

/* POST /admin/refunds/ID/refunded */
void
page_admin_refunded(struct request *r)
{
	struct order	 o;
	struct tvars	 tv = { .n = 0 };
	int64_t		 rid, paid, refunded, amount = 0, now = now_unix(), uid;
	const char	*why;
	int		 full, rc;

	if (!refund_start(r, &rid, &o))
		return;
	/* The amount asked (0: all that is left), parsed once in the order's
	 * currency: more decimals than it has is refused here. */
	if (*r->fields[XF_AMOUNT].value != '\0' && (why = page_parse_money(r,
	    r->fields[XF_AMOUNT].value, o.currency, &amount)) != NULL) {
		refunds_list(r, 400, NULL, req_printf(r, "%s: %s", o.number,
		    why));
		return;
	}
	uid = r->session->user_id;
	if (!db_begin())
		goto fail;
	/* "card" on an order Stripe took the money of: back to the card
	 * through Stripe, in card_refunded's own transaction (which decides
	 * again); on a card payment recorded by hand (its reference no pi_
	 * id), a refund by hand like any other. */
	if ((rc = stripe_paid(&o, r->fields[XF_METHOD].value)) != 0) {
		db_rollback();
		if (rc < 0)
			goto fail;
		card_refunded(r, rid, &o, amount);
		return;
	}
	/* A charge under dispute goes back by the chargeback: a refund by
	 * any way as well would pay twice. */
	if ((rc = card_refund_disputed(o.id)) != 0) {
		db_rollback();
		if (rc < 0)
			goto fail;
		card_refused(r, CARD_REFUND_DISPUTED, rid, &o, 0);
		return;
	}
	/* Decided inside the transaction, which holds the write lock: the
	 * request is still open (or waits for a card refund that Stripe
	 * refused, none on its way), and two refunds at once can never add
	 * up to more than was paid. */
	if ((rc = hand_amount(r, rid, &o, &amount, &paid, &refunded)) < 0)
		goto rollback;
	if (rc == 0)
		return;
	full = amount == paid - refunded;
	/* A full refund closes the request and the order, each guarded. */
	if (full && (db_update(ST_REFUND_RESOLVE_BY_HAND, "iii", now, uid,
	    rid) != 1 || db_update(ST_ORDER_REFUNDED, "ii", now,
	    o.id) != 1 || !order_history(o.id, "refunded", uid, "")))
		goto rollback;
	tv_set(&tv, "amount", page_money(r, amount, o.currency));
	tv_set(&tv, "remaining", page_money(r, paid - refunded - amount,
	    o.currency));
	tv_set(&tv, "partial", full ? "" : "1");
	tv_set(&tv, "refund_sent",
	    pay_method_refund_sent(r->fields[XF_METHOD].value));
	if (db_run(ST_LEDGER_INSERT, "ititttii", o.id, "refund", amount,
	    o.currency, r->fields[XF_METHOD].value,
	    r->fields[XF_REFERENCE].value, now, uid) != DB_DONE ||
	    !audit_log(r, uid, full ? "refund" : "partial refund", o.id,
	    req_printf(r, "%s %s %s", page_money(r, amount, o.currency),
	    o.currency,
	    r->fields[XF_METHOD].value)) ||
	    !order_mail(r, &o, "refunded", &tv))
		goto rollback;
	if (!db_commit())
		goto fail;
	http_redirect(r, full ? "/admin/refunds?done=refunded" :
	    "/admin/refunds?done=partial");
	return;
rollback:
	db_rollback();
fail:
	page_unavailable(r);
}

/* POST /admin/refunds/ID/retry: Stripe refused the refund (its message
 * on the list); ask again, as a new card refund. */
void
page_admin_refund_retry(struct request *r)
{
	struct order			o;
	enum card_refund_decision	d;
	int64_t				rid, amount = 0, id;

	if (!refund_start(r, &rid, &o))
		return;
	if (!db_begin()) {
		page_unavailable(r);
		return;
	}
	if ((d = card_refund_retry(rid, r->session->user_id, &amount, &id)) !=
	    CARD_REFUND_QUEUED || !audit_log(r, r->session->user_id,
	    "card refund retry", o.id, req_printf(r, "%s %s to the card "
	    "(card refund #%lld)", page_money(r, amount, o.currency),
	    o.currency, (long long)id)) || !db_commit()) {
		db_rollback();
		if (d == CARD_REFUND_GONE)
			refunds_list(r, 409, NULL, req_printf(r, "%s: there is "
			    "no refused card refund to try again (it may be on "
			    "its way already).", o.number));
		else
			card_refused(r, d == CARD_REFUND_QUEUED ?
			    CARD_REFUND_ERROR : d, rid, &o, amount);
		return;
	}
	http_redirect(r, "/admin/refunds?done=card");
}

/* POST /admin/refunds/ID/decline: for abuse only, with a reason. */
void
page_admin_decline(struct request *r)
{
	struct order	 o;
	struct tvars	 tv = { .n = 0 };
	int64_t		 rid, now = now_unix(), uid;
	const char	*reason;
	int		 rc;

	if (!refund_start(r, &rid, &o))
		return;
	if (conf.refund_auto_approve) {
		refunds_list(r, 409, NULL, "Refunds are approved automatically "
		    "(setting refund_auto_approve), so a request cannot be "
		    "declined.");
		return;
	}
	uid = r->session->user_id;
	reason = r->fields[DF_REASON].value;
	tv_set(&tv, "reason", reason);
	if (!db_begin())
		goto fail;
	/* The guarded UPDATE decides: only an open request is declined. */
	if ((rc = db_update(ST_REFUND_RESOLVE, "tiiti", "declined", now, uid,
	    reason, rid)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		refund_gone(r, rid, &o);
		return;
	}
	if (db_update(ST_ORDER_REFUND_DECLINED, "ii", now, o.id) != 1 ||
	    order_load(r, o.id, &o) != 1 ||
	    !order_history(o.id, o.status, uid,
	    req_printf(r, "refund declined: %s", reason)) ||
	    !audit_log(r, uid, "decline refund", o.id, reason) ||
	    !order_mail(r, &o, "refund_declined", &tv))
		goto rollback;
	if (!db_commit())
		goto fail;
	http_redirect(r, "/admin/refunds?done=declined");
	return;
rollback:
	db_rollback();
fail:
	page_unavailable(r);
}

/* Answers a surplus refund that was not queued (rolled back): why. */
static void
surplus_refused(struct request *r, enum card_refund_decision d,
    const struct order *o, int64_t surplus)
{
	if (d == CARD_REFUND_DISPUTED)
		page_error(r, 409, "The payment is disputed", req_printf(r,
		    "The card payment of %s is disputed: Stripe refuses refunds "
		    "of a charge under dispute, so nothing was sent.",
		    o->number));
	else if (d == CARD_REFUND_NOT_CARD)
		page_error(r, 409, "Not paid by card", req_printf(r, "%s was "
		    "not paid by card: pay the surplus back by hand and record "
		    "it.", o->number));
	else if (d == CARD_REFUND_TOO_MUCH)
		page_error(r, 409, "Nothing that much to refund", req_printf(r,
		    "%s holds %s %s beyond its price (net of refunds and of "
		    "those on their way): refund at most that.", o->number,
		    page_money(r, surplus, o->currency), o->currency));
	else
		page_unavailable(r);
}

/* POST /admin/orders/ID/refund: what an order holds beyond its price
 * (flagged overpaid, paid after cancel, or a payment that did not fit)
 * back to the card, with no refund request: a card refund and its job,
 * as for a request (card_refund.c). amount: empty for all of it. */
void
page_admin_surplus_refund(struct request *r)
{
	struct order			 o;
	struct card_refund_ask		 a = { .request_id = 0 };
	enum card_refund_decision	 d = CARD_REFUND_ERROR;
	int64_t				 oid, surplus = 0, amount = 0, id;
	const char			*why;
	int				 rc = 0;

	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return;
	}
	if (r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, &oid))
		rc = order_load(r, oid, &o);
	if (!page_found(r, rc, "No such order", "There is no order with "
	    "this number.") || page_admin_erased_refused(r, &o))
		return;
	if (r->fields[SF_AMOUNT].error != NULL) {
		page_error(r, 400, "Check the amount", r->fields[SF_AMOUNT].error);
		return;
	}
	a.order_id = o.id;
	a.currency = o.currency;
	a.user_id = r->session->user_id;
	if (*r->fields[SF_AMOUNT].value != '\0' && (why = page_parse_money(r,
	    r->fields[SF_AMOUNT].value, o.currency, &a.amount)) != NULL) {
		page_error(r, 400, "Check the amount", why);
		return;
	}
	if (!db_begin()) {
		page_unavailable(r);
		return;
	}
	/* Decided in the transaction: never more than the surplus, which
	 * depends on the order's status (its price counts once paid), so
	 * the order is read again here. */
	if (order_load(r, oid, &o) == 1 &&
	    (surplus = card_refund_surplus(&o)) >= 0) {
		if (a.amount == 0)
			a.amount = surplus;
		d = surplus == 0 || a.amount > surplus ? CARD_REFUND_TOO_MUCH :
		    card_refund_decide(&a, &amount, &id);
	}
	if (d != CARD_REFUND_QUEUED || !audit_log(r, a.user_id, "card refund",
	    o.id, req_printf(r, "%s %s surplus to the card (card refund "
	    "#%lld)", page_money(r, amount, o.currency), o.currency,
	    (long long)id)) ||
	    !db_commit()) {
		db_rollback();
		surplus_refused(r, d == CARD_REFUND_QUEUED ? CARD_REFUND_ERROR :
		    d, &o, surplus);
		return;
	}
	http_redirect(r, req_printf(r, "/admin/orders/%lld?done=card_refund",
	    (long long)o.id));
}
