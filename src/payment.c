/* payment.c: an order paid, by hand or by card, and the one idempotent
 * fulfil of a Stripe Checkout Session. Whichever of the webhook, the
 * client's return and a reconcile comes first does the work; the others
 * find the session complete (a guarded UPDATE) or the payment in the
 * ledger (the unique index ledger_card_once) and change nothing. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "audit.h"
#include "conf.h"
#include "currency.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "payment.h"
#include "stripe.h"

#define HOUR		3600
#define DASHBOARD	"https://dashboard.stripe.com"

int
payment_sessions_end(int64_t order_id, const char *why)
{
	return db_run(ST_PAY_JOB_EXPIRE_SESSIONS, "ii", order_id,
	    now_unix()) == DB_DONE && db_run(ST_CHECKOUT_CANCEL_CREATING,
	    "it", order_id, why) == DB_DONE;
}

int
payment_mark_paid(struct request *r, const struct order *o,
    const struct payment *p, unsigned flags)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 now = now_unix(), due = now + conf.answer_hours * HOUR;
	const char	*amount = page_money(r, p->amount, p->currency);
	int		 rc;

	if ((rc = db_update(ST_ORDER_MARK_PAID, "iii", now, due, o->id)) <= 0)
		return rc;
	/* Paid (by hand, or by one of its sessions): no other payment page
	 * of the order may take the money a second time. */
	if (!payment_sessions_end(o->id, "the order was paid"))
		return -1;
	if ((flags & PAY_LEDGER) && (p->user_id > 0 ?
	    db_run(ST_LEDGER_INSERT, "ititttii", o->id, "payment", p->amount,
	    p->currency, p->method, p->reference, now, p->user_id) :
	    db_run(ST_LEDGER_INSERT, "ititttin", o->id, "payment", p->amount,
	    p->currency, p->method, p->reference, now)) != DB_DONE)
		return -1;
	tv_set(&tv, "amount", amount);
	tv_set(&tv, "due", page_time(r, due));
	if (!order_history(o->id, "paid", p->user_id, "") ||
	    !audit_log(r, p->user_id, p->user_id > 0 ? "mark paid" :
	    "card payment", o->id, req_printf(r, "%s %s %s%s%s", amount,
	    p->currency, p->method, *p->reference ? " " : "", p->reference)) ||
	    !order_mail(r, o, "paid", &tv))
		return -1;
	return 1;
}

/* A session as Stripe describes it, and pmb's row of it. */
struct session_view {
	const char	*stripe_id;	/* cs_... */
	const char	*payment_intent; /* pi_..., or "" */
	const char	*payment_status; /* paid, unpaid, no_payment_required */
	const char	*currency;	/* as Stripe writes it: lower case */
	int64_t		 amount;	/* amount_total; -1 if absent */
	int64_t		 row_id;	/* checkout_sessions.id */
	int64_t		 order_id;
};

/* Reads what fulfilling needs from session and finds pmb's row of it:
 * the session id pmb stored, for the order that metadata.order_id
 * names; out starts as "not ours", with the order when it is. Returns 1
 * (ours), 0 (not ours: another product of the Stripe account, or a
 * session pmb never opened), -1 on a database error. */
static int
session_ours(json_t *session, struct session_view *v,
    struct pay_outcome *out)
{
	const char	*oid = stripe_str(session, "metadata.order_id");
	sqlite3_stmt	*s;
	int64_t		 want;
	int		 rc;

	memset(v, 0, sizeof(*v));
	memset(out, 0, sizeof(*out));
	out->text = "not ours";
	v->stripe_id = stripe_str(session, "id");
	v->payment_intent = stripe_str(session, "payment_intent");
	if (v->payment_intent == NULL)	/* expanded: an object */
		v->payment_intent = stripe_str(session, "payment_intent.id");
	if (v->payment_intent == NULL)
		v->payment_intent = "";
	v->payment_status = stripe_str(session, "payment_status");
	if (v->payment_status == NULL)
		v->payment_status = "";
	v->currency = stripe_str(session, "currency");
	if (v->currency == NULL)
		v->currency = "";
	/* Stripe's unit_amount differs from minor units for a few
	 * currencies (currency_stripe_amount): back to the order's unit. */
	if (!stripe_int(session, "amount_total", &v->amount) ||
	    !currency_stripe_minor(v->currency, v->amount, &v->amount))
		v->amount = -1;
	if (v->stripe_id == NULL || oid == NULL ||
	    !parse_int64(oid, 1, INT64_MAX, &want))
		return 0;
	if ((s = db_stmt(ST_CHECKOUT_BY_STRIPE_ID)) == NULL ||
	    !db_bind(s, "t", v->stripe_id))
		return -1;
	if ((rc = db_step(ST_CHECKOUT_BY_STRIPE_ID)) == DB_ROW) {
		v->row_id = sqlite3_column_int64(s, 0);
		v->order_id = sqlite3_column_int64(s, 1);
	}
	db_done(ST_CHECKOUT_BY_STRIPE_ID);
	if (rc == DB_ERROR)
		return -1;
	if (rc != DB_ROW || v->order_id != want)
		return 0;
	out->order_id = v->order_id;
	return 1;
}

/* Flags order o (kind, about ref, detail in words) and alerts the
 * consultant. Returns 1, or 0 on a database error. */
static int
flag(struct request *r, const struct order *o, const char *kind,
    const char *ref, const char *detail)
{
	return db_run(ST_ORDER_FLAG_INSERT, "ittti", o->id, kind, ref,
	    detail, now_unix()) == DB_DONE &&
	    audit_log(r, 0, "card payment flagged", o->id, req_printf(r,
	    "%s: %s", kind, detail));
}

/* Mails the consultant about a card payment of o: paid, or the flag's
 * detail to look at. Returns 1, or 0 on a failed write. */
static int
alert(struct request *r, const struct order *o, const struct payment *p,
    const char *problem)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "amount", page_money(r, p->amount, p->currency));
	tv_set(&tv, "order_currency", p->currency);
	tv_set(&tv, "reference", p->reference);
	tv_set(&tv, "problem", problem);
	tv_set(&tv, "stripe_url", payment_dashboard_url(r, p->reference));
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)o->id));
	return mail_queue("card_alert", o->id, conf.admin_email,
	    conf.consultant_name, &tv);
}

/* Writes the card payment p of order o to the ledger. Returns 1, 0 when
 * it is there already (ledger_card_once), -1 on a database error. */
static int
ledger_card(const struct order *o, const struct payment *p)
{
	int rc = db_run(ST_LEDGER_INSERT, "ititttin", o->id, "payment",
	    p->amount, p->currency, p->method, p->reference, now_unix());

	return rc == DB_DONE ? 1 : rc == DB_CONSTRAINT ? 0 : -1;
}

/* What a paid session does to order o, once it is in the ledger: paid,
 * or a flag. Sets out->text; returns 0, or -1 on a database error. */
static int
settle(struct request *r, const struct order *o, const struct payment *p,
    struct pay_outcome *out)
{
	const char	*kind = NULL, *detail = NULL;
	int		 rc;

	if (strcmp(o->status, "cancelled") == 0) {
		kind = "paid_after_cancel";
		detail = "paid by card after the order was cancelled";
	} else if (strcmp(o->status, "awaiting_payment") != 0) {
		kind = "overpaid";
		detail = "paid by card when the order was paid already";
	} else if (p->amount != o->price ||
	    strcasecmp(p->currency, o->currency) != 0) {
		kind = "amount_mismatch";
		detail = req_printf(r, "paid %s %s by card; the order's price "
		    "is %s %s", page_money(r, p->amount, p->currency), p->currency,
		    page_money(r, o->price, o->currency), o->currency);
	}
	if (kind != NULL) {
		out->text = req_printf(r, "recorded, flagged %s", kind);
		return flag(r, o, kind, p->reference, detail) &&
		    alert(r, o, p, detail) ? 0 : -1;
	}
	if ((rc = payment_mark_paid(r, o, p, PAY_ALERT)) < 0)
		return -1;
	if (rc == 0)	/* cannot be: the status was read in this tx */
		return -1;
	out->paid_now = 1;
	out->text = "paid";
	return alert(r, o, p, "") ? 0 : -1;
}

int
payment_fulfil(struct request *r, json_t *session, int succeeded,
    struct pay_outcome *out)
{
	struct session_view	 v;
	struct order		 o;
	struct payment		 p;
	char			 cur[4] = "";
	int			 rc;

	if ((rc = session_ours(session, &v, out)) <= 0)
		return rc;
	if (!succeeded && strcmp(v.payment_status, "paid") != 0) {
		out->text = "waiting for the payment to be confirmed";
		return *v.payment_intent == '\0' || db_update(ST_CHECKOUT_SET_PI,
		    "ti", v.payment_intent, v.row_id) >= 0 ? 0 : -1;
	}
	if ((rc = db_update(ST_CHECKOUT_COMPLETE, "zii", v.payment_intent,
	    now_unix(), v.row_id)) < 0)
		return -1;
	if (rc == 0) {
		out->text = "fulfilled already";
		return 0;
	}
	for (size_t i = 0; i < 3 && v.currency[i] != '\0'; i++)
		cur[i] = (char)toupper((unsigned char)v.currency[i]);
	p.amount = v.amount;
	p.currency = cur;
	p.method = "card";
	/* No PaymentIntent (cannot be for mode=payment): the session. */
	p.reference = *v.payment_intent ? v.payment_intent : v.stripe_id;
	p.user_id = 0;
	if (order_load(r, v.order_id, &o) != 1)
		return -1;
	if (p.amount <= 0 || strlen(cur) != 3) {
		out->text = "flagged amount_mismatch (no amount)";
		return flag(r, &o, "amount_mismatch", p.reference, "Stripe "
		    "reported no amount for this card payment") ? 0 : -1;
	}
	if ((rc = ledger_card(&o, &p)) < 0)
		return -1;
	if (rc == 0) {
		out->text = "recorded already";
		return 0;
	}
	return settle(r, &o, &p, out);
}

int
payment_session_ended(struct request *r, json_t *session, int failed,
    struct pay_outcome *out)
{
	struct session_view	v;
	int			rc;

	if ((rc = session_ours(session, &v, out)) <= 0)
		return rc;
	rc = failed ? db_update(ST_CHECKOUT_FAILED, "ti", "the payment "
	    "failed", v.row_id) : db_update(ST_CHECKOUT_EXPIRED, "i",
	    v.row_id);
	if (rc < 0)
		return -1;
	out->text = rc == 0 ? "nothing to change" : failed ?
	    "payment failed; the client may pay again" : "session expired";
	if (rc > 0 && !audit_log(r, 0, failed ? "card payment failed" :
	    "checkout expired", v.order_id, v.stripe_id))
		return -1;
	return 0;
}

int
payment_card_ok(int64_t amount, const char *currency)
{
	return *conf.stripe_secret_key != '\0' &&
	    currency_card_ok(currency, amount);
}

const char *
payment_dashboard_url(struct request *r, const char *pi)
{
	if (pi == NULL || strncmp(pi, "pi_", 3) != 0)
		return "";
	return req_cat(r, DASHBOARD, strncmp(conf.stripe_secret_key,
	    "sk_test_", 8) == 0 ? "/test" : "", "/payments/", pi,
	    (char *)NULL);
}
