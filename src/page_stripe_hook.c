/* page_stripe_hook.c: POST /hooks/stripe — Stripe's webhook. Server to
 * server: no session, no CSRF; the Stripe-Signature header (stripe_sig.c)
 * over the raw JSON body is the only proof of who sent it. Each event
 * is stored once by its id in the same transaction as what it causes,
 * and Stripe hears 2xx only after COMMIT (5xx: it sends the event
 * again). */
#include <string.h>

#include <jansson.h>

#include "card_refund.h"
#include "conf.h"
#include "db.h"
#include "page.h"
#include "payment.h"
#include "stripe.h"
#include "stripe_sig.h"

#define EVENT_ID_MAX	255	/* bytes of an event id (evt_...) */
#define EVENT_TYPE_MAX	100

/* One kind of event: fn(r, obj, arg, out) acts on the event's
 * data.object inside the transaction that stores the event; returns 0
 * with *out filled, or -1 on a database error. */
struct hook {
	const char	*type;
	int		(*fn)(struct request *, json_t *obj, int arg,
			    struct pay_outcome *out);
	int		 arg;
};

/* refund.created, refund.updated, refund.failed: the Refund object
 * says how a refund stands (card_refund.c: ours settled or failed, one
 * made in Stripe's dashboard recorded). */
static int
on_refund(struct request *r, json_t *obj, int arg, struct pay_outcome *out)
{
	(void)arg;
	return card_refund_event(r, obj, &out->order_id, &out->text);
}

/* charge.refunded: each refund the Charge lists (API versions before
 * 2022-11-15 list them; later ones send the refunds as refund.*
 * events, which pmb also takes, and reconcile lists them). */
static int
on_charge_refunded(struct request *r, json_t *obj, int arg,
    struct pay_outcome *out)
{
	json_t		*item;
	const char	*text = "the refunds come as refund events";
	int64_t		 oid = 0;
	size_t		 i;

	(void)arg;
	json_array_foreach(stripe_get(obj, "refunds.data"), i, item) {
		if (card_refund_event(r, item, &oid, &text) < 0)
			return -1;
		if (oid > 0)
			out->order_id = oid;
	}
	if (out->order_id == 0 && stripe_str(obj, "payment_intent") != NULL &&
	    (out->order_id = db_find_id(ST_CARD_ORDER_OF_PI,
	    stripe_str(obj, "payment_intent"))) < 0)
		return -1;
	out->text = out->order_id > 0 ? text : "not ours";
	return 0;
}

/* charge.dispute.created (arg 0) and charge.dispute.closed (arg 1). */
static int
on_dispute(struct request *r, json_t *obj, int closed, struct pay_outcome *out)
{
	return card_dispute_event(r, obj, closed, &out->order_id, &out->text);
}

/* The events pmb acts on (README, "Taking card payments with Stripe",
 * lists them for the dashboard); any other type is stored and answered
 * "ignored". checkout.session.completed is paid when its payment_status
 * is "paid", otherwise the bank has still to confirm;
 * async_payment_succeeded is paid whatever order the two came in. */
static const struct hook hooks[] = {
	{ "checkout.session.completed", payment_fulfil, 0 },
	{ "checkout.session.async_payment_succeeded", payment_fulfil, 1 },
	{ "checkout.session.async_payment_failed", payment_session_ended, 1 },
	{ "checkout.session.expired", payment_session_ended, 0 },
	{ "charge.refunded", on_charge_refunded, 0 },
	{ "refund.created", on_refund, 0 },
	{ "refund.updated", on_refund, 0 },
	{ "refund.failed", on_refund, 0 },
	{ "charge.dispute.created", on_dispute, 0 },
	{ "charge.dispute.closed", on_dispute, 1 },
};

/* Answers Stripe with status and a word (plain text: Stripe shows it in
 * the dashboard's delivery log). */
static void
answer(struct request *r, int status, const char *text)
{
	http_open(r, status, "text/plain; charset=utf-8");
	http_puts(r, text);
	http_puts(r, "\n");
}

/* Stores event id (of type, made at created) and acts on obj with the
 * hook of its type. Returns the status to answer (200, 500) with the
 * outcome in *text. */
static int
event_store(struct request *r, const char *id, const char *type,
    int64_t created, json_t *obj, const char **text)
{
	struct pay_outcome	out = { .text = "ignored" };
	int			rc;

	/* A redelivery is known without waiting for the write lock; the
	 * INSERT below still decides for events that arrive together. */
	if (db_find_id(ST_STRIPE_EVENT_SEEN, id) == 1) {
		*text = "duplicate";
		return 200;
	}
	if (!db_begin()) {
		*text = "not stored";
		return 500;
	}
	if ((rc = db_run(ST_STRIPE_EVENT_INSERT, "ttii", id, type, created,
	    now_unix())) == DB_CONSTRAINT) {
		db_rollback();
		*text = "duplicate";
		return 200;
	}
	if (rc != DB_DONE)
		goto fail;
	for (size_t i = 0; i < ARRAY_LEN(hooks); i++)
		if (strcmp(hooks[i].type, type) == 0) {
			if (!json_is_object(obj)) {
				out.text = "no object";
				break;
			}
			if (hooks[i].fn(r, obj, hooks[i].arg, &out) < 0)
				goto fail;
			break;
		}
	if ((out.order_id > 0 ? db_run(ST_STRIPE_EVENT_DONE, "itt",
	    out.order_id, out.text, id) : db_run(ST_STRIPE_EVENT_DONE, "ntt",
	    out.text, id)) != DB_DONE || !db_commit())
		goto fail;
	*text = out.text;
	return 200;
fail:
	db_rollback();
	*text = "not stored";
	return 500;
}

/* POST /hooks/stripe */
void
page_stripe_hook(struct request *r)
{
	enum stripe_sig_result	 v;
	json_t			*ev;
	json_error_t		 jerr;
	const char		*id, *type, *text = "";
	int64_t			 created;
	int			 status;

	v = stripe_sig_verify(req_env(r, "HTTP_STRIPE_SIGNATURE"),
	    r->body != NULL ? r->body : "", r->body_len,
	    conf.stripe_webhook_secret, now_unix());
	if (v != STRIPE_SIG_OK) {
		/* The fact only: never the header or the body. */
		log_msg("stripe hook: invalid signature (%s)",
		    stripe_sig_text(v));
		answer(r, 400, "invalid signature");
		return;
	}
	ev = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	id = stripe_str(ev, "id");
	type = stripe_str(ev, "type");
	if (id == NULL || type == NULL || *id == '\0' ||
	    strlen(id) > EVENT_ID_MAX || strlen(type) > EVENT_TYPE_MAX ||
	    has_ctl(id) || has_ctl(type) || !stripe_int(ev, "created",
	    &created)) {
		json_decref(ev);
		answer(r, 400, "not a Stripe event");
		return;
	}
	status = event_store(r, id, type, created,
	    stripe_get(ev, "data.object"), &text);
	/* Copied: the text may be the event's. */
	text = req_strdup(r, text);
	json_decref(ev);
	answer(r, status, text);
}
