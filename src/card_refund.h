/* card_refund.h: refunds paid back to the card through Stripe. A refund
 * is decided inside the caller's transaction (card_refunds pending and a
 * pay job: the call to Stripe happens after COMMIT, pay_jobs.c), and
 * settled — in the ledger, the order refunded when fully — only when
 * Stripe says the money moved: by the API's answer, a webhook, or
 * "pmbctl pay reconcile", all through card_refund_settle, which does
 * its work once however often and in whatever order it is called.
 * Every function here runs inside the caller's write transaction. */
#ifndef PMB_CARD_REFUND_H
#define PMB_CARD_REFUND_H

#include <stdint.h>

#include <jansson.h>

#include "http.h"

/* What card_refund_decide came to. */
enum card_refund_decision {
	CARD_REFUND_ERROR = -1,	/* database error: roll back */
	CARD_REFUND_QUEUED = 0,	/* card_refunds row and job written */
	CARD_REFUND_NOT_CARD,	/* the order was not paid by card */
	CARD_REFUND_GONE,	/* the request is no longer open */
	CARD_REFUND_TOO_MUCH,	/* more than paid - refunded - pending */
	CARD_REFUND_DISPUTED,	/* a dispute blocks refunds of the charge */
};

/* A refund to the card that someone (or refund_auto_approve) asked for. */
struct card_refund_ask {
	int64_t		 order_id;
	int64_t		 request_id;	/* refund_requests.id; 0: none */
	int64_t		 amount;	/* minor units; 0: all refundable */
	const char	*currency;	/* the order's */
	int64_t		 user_id;	/* who; 0: automatic */
	int		 retry;		/* the request is pending already
					 * (Retry after Stripe refused) */
};

/* Writes the PaymentIntent (pi_...) of order_id's card payment into
 * pi (PI_MAX bytes, "" when the order was not paid by card). Returns 1
 * if there is one, 0 if not, -1 on a database error. */
#define PI_MAX	256
int	 card_refund_pi(int64_t order_id, char pi[PI_MAX]);

/* A card_refunds row, strings copied into the arrays. */
struct card_row {
	int64_t	 id, order_id, request_id, amount, user_id, created_at;
	char	 pi[PI_MAX];
	char	 currency[4];
	char	 status[16];
	char	 stripe_id[PI_MAX];
};

/* Loads card refund id into c. Returns 1, 0 if none, -1 on error. */
int	 card_row_load(int64_t id, struct card_row *c);

/* Reads what order_id may still have refunded into *left: paid, less
 * refunds, less card refunds on their way (their sum in *pending).
 * Returns 1, or 0 on a database error. */
int	 card_refund_left(int64_t order_id, int64_t *left, int64_t *pending);

/* Decides a refund to the card: the order was paid by card, no open or
 * lost dispute, the amount (all that is left when 0) at most what was
 * paid net of refunds and of card refunds on their way; then the
 * request (if any) goes open -> pending by a guarded UPDATE (so it can
 * no longer be declined), a card_refunds row (pending) and a pay job
 * (kind refund) are written. *amount and *id receive what was decided.
 * Returns a decision; nothing was written unless CARD_REFUND_QUEUED
 * (the caller rolls back on any other answer all the same). */
enum card_refund_decision card_refund_decide(const struct card_refund_ask *,
	    int64_t *amount, int64_t *id);

/* Retry of request_id's refund that Stripe refused: when its last card
 * refund failed and none is on its way (decided in the transaction), a
 * new card refund of the same amount and a new job (a new id, so a new
 * Idempotency-Key: Stripe replays a refusal to the old one). Returns
 * as card_refund_decide (CARD_REFUND_GONE: nothing to retry). */
enum card_refund_decision card_refund_retry(int64_t request_id,
	    int64_t user_id, int64_t *amount, int64_t *id);

struct order;
/* What order o holds beyond its price (all of it when cancelled, or
 * still waiting for payment after a payment that did not fit): paid,
 * less refunds and card refunds on their way, less the price. Returns
 * it (0: none), or -1 on a database error. */
int64_t	 card_refund_surplus(const struct order *o);

/* Stripe paid card refund id back as refund re_id: card_refunds
 * succeeded (guarded), the ledger refund row (method card, reference
 * re_id, once), and the order follows (card_refund_follow). Returns 1
 * when settled now, 0 when it was settled already (nothing written),
 * -1 on a database error. r gives memory (pmbctl: a request made with
 * req_init). */
int	 card_refund_settle(struct request *r, int64_t id, const char *re_id);

/* Stripe refused or failed card refund id (re_id "" when it made no
 * refund): failed with why (Stripe's words); the request stays pending
 * and /admin/refunds offers Retry. Returns 1, 0 when it was not pending,
 * -1 on a database error. */
int	 card_refund_fail(struct request *r, int64_t id, const char *re_id,
	    const char *why);

/* Acts on Stripe's Refund object for our card refund id as its status
 * says: succeeded settled, failed or canceled failed with its
 * failure_reason, pending (or requires_action) its re_ id noted. *text
 * says what was done (static or request-owned). Returns 0, or -1 on a
 * database error. */
int	 card_refund_apply(struct request *r, int64_t id, json_t *refund,
	    const char **text);

/* Acts on a Stripe Refund object (an event's, an API answer's, a list
 * item's): ours (metadata.card_refund_id naming a row of that
 * PaymentIntent, or our stripe_id) settled, noted pending or failed as
 * its status says; not ours but of a PaymentIntent that paid an order
 * (a refund made in Stripe's dashboard): once succeeded, a ledger row
 * and the order follows. *order_id gets the order (0: not ours), *text
 * what was done, in words (static). Returns 0, or -1 on a database
 * error. */
int	 card_refund_event(struct request *r, json_t *refund, int64_t *order_id,
	    const char **text);

/* Disputes (charge.dispute.created / .closed): the order that the
 * dispute's payment_intent paid is flagged (disputed, ref du_...), the
 * consultant alerted; closed records won or lost. Returns as
 * card_refund_event. */
int	 card_dispute_event(struct request *r, json_t *dispute, int closed,
	    int64_t *order_id, const char **text);

/* Whether a dispute blocks refunds of order_id: 1 yes, 0 no, -1 on a
 * database error. */
int	 card_refund_disputed(int64_t order_id);

#endif
