/* page_refund.c: the money-back guarantee, the client's side.
 * GET /r/TOKEN shows what will be refunded and changes nothing (mail
 * scanners open links); POST /r/TOKEN records the request, once. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "card_refund.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "page_privacy.h"
#include "pay_method.h"
#include "router.h"
#include "token.h"

/* The fields of POST /r/TOKEN (an interface). */
const struct field refund_fields[] = {
#define RQ_REASON	0
	{ "reason", "what could have been better", 0, 2000, F_MULTILINE,
	    NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The answer to a second POST of the refund form. */
#define REFUND_ALREADY	"Your refund request had already been received, " \
	"so nothing more was sent. It is shown below."

/* A refund request as the client's pages show it. */
struct refund {
	int	 exists;
	char	*reason, *status, *decline_reason;
	int64_t	 requested_at, resolved_at;
};

/* Loads the refund request of an order; returns 1 (exists or not) or
 * 0 on a database error. */
static int
refund_load(struct request *r, int64_t order_id, struct refund *rf)
{
	sqlite3_stmt	*s = db_stmt(ST_REFUND_BY_ORDER);
	int		 rc;

	memset(rf, 0, sizeof(*rf));
	if (s == NULL || !db_bind(s, "i", order_id))
		return 0;
	if ((rc = db_step(ST_REFUND_BY_ORDER)) == DB_ROW) {
		rf->exists = 1;
		rf->reason = req_strdup(r, db_text(s, 1));
		rf->status = req_strdup(r, db_text(s, 2));
		rf->requested_at = sqlite3_column_int64(s, 3);
		rf->resolved_at = sqlite3_column_int64(s, 4);
		rf->decline_reason = req_strdup(r, db_text(s, 5));
	}
	db_done(ST_REFUND_BY_ORDER);
	return rc != DB_ERROR;
}

/* Renders the refund page of o; with a request, it only shows it. */
static void
refund_page(struct request *r, const struct order *o, const struct refund
    *rf, int64_t net, int status, const char *notice)
{
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s;
	const char	*question = "";
	char		*track = order_track_url(r, o->id);
	int64_t		 paid, refunded;

	if ((s = db_stmt(ST_MESSAGES_PUBLIC)) != NULL && db_bind(s, "i",
	    o->id) && db_step(ST_MESSAGES_PUBLIC) == DB_ROW)
		question = req_strdup(r, db_text(s, 1));
	db_done(ST_MESSAGES_PUBLIC);
	page_vars(r, &tv);
	if (!order_balance(o->id, &paid, &refunded) ||
	    !pay_method_refund_vars(r, &tv, o, refunded)) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "question", question);
	tv_set(&tv, "amount", page_money(r, net, o->currency));
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "track_url", track != NULL ? track +
	    strlen(conf.base_url) : "/");
	tv_set(&tv, "can_follow", !rf->exists && !strcmp(o->status,
	    "answered") && o->followups_used < conf.followups_included ?
	    "1" : "");
	tv_set(&tv, "action", req_printf(r, "/r/%s", r->arg));
	tv_set(&tv, "notice", notice);
	if (rf->exists) {
		tv_set(&tv, "requested", page_date(r, rf->requested_at));
		tv_set(&tv, "request_reason", rf->reason);
		/* pending: on its way back to the card, as far as the
		 * client is concerned the same as open. */
		tv_set(&tv, "req_open", !strcmp(rf->status, "open") ||
		    !strcmp(rf->status, "pending") ? "1" : "");
		tv_set(&tv, "req_refunded", !strcmp(rf->status, "refunded") ?
		    "1" : "");
		tv_set(&tv, "req_declined", !strcmp(rf->status, "declined") ?
		    "1" : "");
		tv_set(&tv, "decline_reason", rf->decline_reason);
	} else
		tv_set(&tv, "can_request", "1");
	if (r->fields != NULL && r->route->fields == refund_fields)
		tv_set(&tv, "reason", r->fields[RQ_REASON].value);
	page_render(r, status, "Your money-back guarantee", "refund.html", &tv);
}

/* Checks the path's refund token and loads its order and request.
 * Returns 1 when the link is good for the current state, 2 when it was
 * issued before a request that now exists (show it only), or answers
 * the request and returns 0. */
static int
refund_open(struct request *r, struct order *o, struct refund *rf,
    int64_t *net)
{
	struct token		t;
	struct order		before;
	enum token_result	tr;
	char			state[REFUND_STATE_MAX];
	int64_t			paid, refunded;
	int			rc;

	if (r->arg == NULL || !token_parse(r->arg, &t) ||
	    (rc = order_load(r, t.id, o)) == 0) {
		page_error(r, 404, "This link does not work", "The link may "
		    "have been cut short or mistyped. Copy the whole link from "
		    "your email.");
		return 0;
	}
	if (rc < 0 || !refund_load(r, o->id, rf) ||
	    !order_balance(o->id, &paid, &refunded)) {
		page_unavailable(r);
		return 0;
	}
	*net = paid - refunded;
	/* The MAC covers the order's refund state: a link made before the
	 * request that now exists only shows it. */
	tr = token_verify(&t, TOK_REFUND, order_refund_state(state, o));
	before = *o;
	before.refund_requested_at = 0;
	if (tr == TOKEN_BAD && rf->exists && token_verify(&t, TOK_REFUND,
	    order_refund_state(state, &before)) != TOKEN_BAD)
		return page_gone(r, o) ? 0 : 2;
	if (tr == TOKEN_BAD) {
		page_error(r, 404, "This link does not work", "The link may "
		    "have been cut short or mistyped. Copy the whole link from "
		    "your email.");
		return 0;
	}
	/* A good link of an erased order: 410 Gone, whatever its state. */
	if (page_gone(r, o))
		return 0;
	if (rf->exists)
		return 2;
	if (tr == TOKEN_EXPIRED) {
		page_error(r, 410, "The guarantee window has ended",
		    req_printf(r, "The money-back guarantee of order %s ended "
		    "on %s. If you think something went wrong, write to %s at "
		    "%s and we will sort it out.", o->number,
		    page_date(r, t.expires), conf.consultant_name,
		    conf.admin_email));
		return 0;
	}
	if (paid == 0) {
		page_error(r, 409, "Nothing to refund", req_printf(r, "No "
		    "payment has been received for order %s, so there is "
		    "nothing to refund.", o->number));
		return 0;
	}
	if (*net <= 0 || !strcmp(o->status, "refunded")) {
		page_error(r, 409, "Already refunded", req_printf(r, "Order %s "
		    "has been refunded in full.", o->number));
		return 0;
	}
	return 1;
}

/* GET /r/TOKEN: shows, changes nothing. */
void
page_refund(struct request *r)
{
	struct order	o;
	struct refund	rf;
	int64_t		net;

	if (refund_open(r, &o, &rf, &net) == 0)
		return;
	refund_page(r, &o, &rf, net, 200, NULL);
}

/* With refund_auto_approve, request rid of o, paid by card, goes back
 * to the card: a card refund of all that is left and its job, in the
 * caller's transaction; the order becomes refunded when Stripe confirms
 * (card_refund.c). An order not paid by card, or whose charge is
 * disputed, waits for the consultant as before. Returns 1 when queued,
 * 0 when not, -1 on a database error. */
static int
refund_to_card(struct request *r, const struct order *o, int64_t rid)
{
	struct card_refund_ask		a = { .order_id = o->id,
	    .request_id = rid, .currency = o->currency };
	enum card_refund_decision	d;
	int64_t				amount, id;

	if (!conf.refund_auto_approve)
		return 0;
	if ((d = card_refund_decide(&a, &amount, &id)) == CARD_REFUND_ERROR)
		return -1;
	if (d != CARD_REFUND_QUEUED)
		return 0;
	return audit_log(r, 0, "card refund", o->id, req_printf(r, "%s %s to "
	    "the card (card refund #%lld, approved automatically)",
	    page_money(r, amount, o->currency), o->currency, (long long)id)) ? 1 : -1;
}

/* Writes the request with everything that goes with it; *net is what
 * it promises back, read inside the transaction. Returns 1, 0 if a
 * request exists already or the order may no longer have one (rolled
 * back), -1 on failure (rolled back). */
static int
refund_store(struct request *r, const struct order *o, const char *reason,
    int64_t *net)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 now = now_unix(), paid, refunded, rid;
	int		 rc, card;

	if (!db_begin())
		return -1;
	rc = db_run(ST_REFUND_INSERT, "iti", o->id, reason, now);
	if (rc == DB_CONSTRAINT) {
		db_rollback();
		return 0;
	}
	rid = db_last_id();
	if (rc != DB_DONE || (rc = db_update(ST_ORDER_REFUND_REQUESTED, "ii",
	    now, o->id)) < 0 || !order_balance(o->id, &paid, &refunded))
		goto fail;
	if (rc == 0) {
		db_rollback();
		return 0;
	}
	*net = paid - refunded;
	if ((card = refund_to_card(r, o, rid)) < 0)
		goto fail;
	page_vars(r, &tv);
	if (!pay_method_refund_vars(r, &tv, o, refunded))
		goto fail;
	tv_set(&tv, "to_card", card ? "1" : "");
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "amount", page_money(r, *net, o->currency));
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "reason", *reason ? reason : "(no reason given)");
	tv_set(&tv, "status_url", order_track_url(r, o->id));
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/refunds",
	    conf.base_url));
	tv_set(&tv, "approved", conf.refund_auto_approve ? "1" : "");
	if (!order_history(o->id, "refund_requested", 0, "") ||
	    !audit_log(r, 0, conf.refund_auto_approve ? "refund requested "
	    "(approved automatically)" : "refund requested", o->id, "") ||
	    !mail_queue("refund_receipt", o->id, o->email, o->name, &tv) ||
	    !mail_queue("refund_alert", o->id, conf.admin_email,
	    conf.consultant_name, &tv))
		goto fail;
	return db_commit() ? 1 : -1;
fail:
	db_rollback();
	return -1;
}

/* POST /r/TOKEN */
void
page_refund_submit(struct request *r)
{
	struct order	o;
	struct refund	rf;
	int64_t		net;
	int		rc;

	if ((rc = refund_open(r, &o, &rf, &net)) == 0)
		return;
	/* A POST without this browser's CSRF token is refused in every
	 * state, also once a request exists. */
	if (!r->csrf_ok) {
		refund_page(r, &o, &rf, net, 403, "The page had expired, so "
		    "nothing was sent. Please press the button again.");
		return;
	}
	if (rc == 2) {
		refund_page(r, &o, &rf, net, 409, REFUND_ALREADY);
		return;
	}
	if (r->nerrors > 0) {
		refund_page(r, &o, &rf, net, 400, r->fields[RQ_REASON].error);
		return;
	}
	if ((rc = refund_store(r, &o, r->fields[RQ_REASON].value, &net)) < 0) {
		refund_page(r, &o, &rf, net, 503, page_not_saved(r));
		return;
	}
	if (!refund_load(r, o.id, &rf) || order_load(r, o.id, &o) != 1) {
		page_unavailable(r);
		return;
	}
	/* Lost to another request in the same moment, or the order moved
	 * on (answered 409, with how things stand). */
	if (rc == 0)
		refund_page(r, &o, &rf, net, 409, rf.exists ? REFUND_ALREADY :
		    req_printf(r, "Order %s can no longer be refunded "
		    "through this page (%s).", o.number,
		    order_status_label(o.status)));
	else
		refund_page(r, &o, &rf, net, 200, "Your refund request is in. "
		    "You will get a confirmation by email, and your money back "
		    "shortly.");
}
