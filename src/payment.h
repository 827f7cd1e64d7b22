/* payment.h: an order paid — by hand ("Mark paid") or by card (Stripe
 * Checkout) — through one function, and the one idempotent "fulfil" that
 * the webhook, the client's return from Checkout and "pmbctl pay
 * reconcile" all call. Every function here runs inside the caller's
 * transaction and writes nothing outside it (mail goes to the outbox). */
#ifndef PMB_PAYMENT_H
#define PMB_PAYMENT_H

#include <stdint.h>

#include <jansson.h>

#include "http.h"

struct order;

/* A payment as the ledger records it. */
struct payment {
	int64_t		 amount;	/* minor units */
	const char	*currency;	/* ISO 4217, upper case */
	const char	*method;	/* "card", "bank transfer"... */
	const char	*reference;	/* pi_... for a card */
	int64_t		 user_id;	/* who recorded it; 0: Stripe */
};

#define PAY_LEDGER	0x01	/* write p's ledger row */
#define PAY_ALERT	0x02	/* mail the consultant (a card payment) */

/* Ends the order's Checkout Sessions that could still take money: an
 * expire job ("pmbctl pay send") for each open one, and those still
 * being created failed with why. Returns 1, or 0 on a database error. */
int	 payment_sessions_end(int64_t order_id, const char *why);

/* Moves order o from awaiting_payment to paid, its answer due
 * answer_hours from now: history, audit, the client's "payment
 * received" mail, and with flags the ledger row and the consultant's
 * alert. Returns 1; 0 when o is not waiting for payment (nothing
 * written); -1 on a database error (the caller rolls back). r gives
 * memory and the client's address (pmbctl: a request made with
 * req_init and no I/O). */
int	 payment_mark_paid(struct request *r, const struct order *o,
	    const struct payment *p, unsigned flags);

/* What a Stripe event or a retrieved session came to: the order it is
 * about (0: not ours) and, in words, what pmb did (stripe_events'
 * outcome). */
struct pay_outcome {
	int64_t		 order_id;
	const char	*text;
	int		 paid_now;	/* this call moved the order to paid */
};

/* Fulfils a Checkout Session as Stripe describes it (the JSON object of
 * checkout.session.* or GET /v1/checkout/sessions/ID): acts only when
 * pmb stored that session id for the order its metadata.order_id
 * names. Paid (payment_status "paid", or succeeded set by
 * checkout.session.async_payment_succeeded): the session complete, once;
 * the ledger row (method card, reference the PaymentIntent), once; the
 * order paid (payment_mark_paid), or flagged when the amount or currency
 * differ (amount_mismatch), when it was cancelled (paid_after_cancel) or
 * was paid already (overpaid), with the consultant's alert. Not paid:
 * the PaymentIntent noted, nothing else (the bank has still to
 * confirm). Returns 0 with *out filled, or -1 on a database error. */
int	 payment_fulfil(struct request *r, json_t *session, int succeeded,
	    struct pay_outcome *out);
/* checkout.session.async_payment_failed (failed set) and
 * checkout.session.expired: the session is no longer offered (failed or
 * expired), the order stays waiting for payment and the client may pay
 * again. Returns as payment_fulfil. */
int	 payment_session_ended(struct request *r, json_t *session,
	    int failed, struct pay_outcome *out);

/* Whether the status page offers "Pay by card" for an order of amount
 * in currency: a secret key is set and the amount is above zero. */
int	 payment_card_ok(int64_t amount, const char *currency);

/* The link to a payment in Stripe's dashboard (test mode for an
 * sk_test_ key), owned by the request; "" without a reference. */
const char *payment_dashboard_url(struct request *, const char *pi);

#endif
