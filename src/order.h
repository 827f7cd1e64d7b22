/* order.h: an order as the pages see it, and the writes every change of
 * an order makes (status history); audit rows are audit.c's. */
#ifndef PMB_ORDER_H
#define PMB_ORDER_H

#include <stdint.h>

#include "http.h"

struct order {
	int64_t	 id;
	char	*number;		/* PMB-000123 */
	char	*name;
	char	*email, *company, *website, *topic; /* see order_load_status */
	int64_t	 price;			/* minor units */
	char	*currency;
	char	*status;
	int64_t	 created_at, due_at, paid_at, answered_at, answer_viewed_at;
	int64_t	 refund_requested_at, refunded_at, cancelled_at;
	int64_t	 followups_used, last_answered_at;
	char	*rating;
	int64_t	 erased_at;		/* personal data erased (0: not) */
};

/* Loads order id into o, strings owned by the request. Returns 1, 0 if
 * there is no such order, -1 on a database error. */
int	 order_load(struct request *, int64_t id, struct order *);
/* As order_load, without the client's details (email, company, website
 * and topic are "", not read): for the client's status page, which shows
 * none of them; four text columns fewer for SQLite to copy out. */
int	 order_load_status(struct request *, int64_t id, struct order *);
/* Records that the order entered status (history row). Returns 1 or 0. */
int	 order_history(int64_t order_id, const char *status, int64_t user_id,
	    const char *note);
/* Returns the status page link of order id, owned by the request (or
 * NULL if no key). */
char	*order_track_url(struct request *, int64_t id);
/* Returns the refund page link of an answered order (expiring at the
 * end of the guarantee window), owned by the request, or NULL. */
char	*order_refund_url(struct request *, const struct order *);
/* The longest text of order_refund_state, with its NUL. */
#define REFUND_STATE_MAX	(8 + INT_TEXT_MAX)
/* Writes the refund state of o that its refund link's MAC covers into
 * out, and returns out: "refund:" and the time of its refund request
 * ("none" while there is none). A request kills every link made before it (the
 * refund page then only shows the request). */
const char *order_refund_state(char out[REFUND_STATE_MAX],
	    const struct order *);

/* Reads the ledger totals of an order (minor units). Returns 1 or 0. */
int	 order_balance(int64_t id, int64_t *paid, int64_t *refunded);
/* Returns 1 if the order's first answer came later than the promise. */
int	 order_late(const struct order *);
/* The same from the two times (0: not yet): 1 if answered late. */
int	 answered_late(int64_t paid_at, int64_t answered_at);
/* Returns the end of the money-back guarantee of an order paid at
 * paid_at and answered at answered_at: answered_at + guarantee_days, or
 * 0 (no end) when refund_if_late and the answer was late, as the refund
 * link has it. The one rule for refund links, the erasure's "money held"
 * (privacy.c) and when a client may ask for the erasure. */
int64_t	 order_guarantee_end(int64_t paid_at, int64_t answered_at);
/* Returns 1 if the client may still ask for a refund by link: paid,
 * answered, no request yet, and within the guarantee window (or late,
 * when refund_if_late is set). */
int	 order_refundable(const struct order *, int64_t net_paid);

/* Adds a message of kind from the client (user NULL) to order_id's
 * thread, inbound_id (0: none) the email it came in. Inside the caller's
 * transaction. Returns 1 or 0. */
int	 order_message_add(int64_t order_id, const char *kind,
	    const char *text, int64_t inbound_id);
/* Writes the client's follow-up text on answered order o, inside the
 * caller's transaction, as POST /o/TOKEN/messages and a reply by email
 * (inbound_id: that email; 0 from the page) both make it: status
 * "followup", one of the allowance used, a new due time, history, audit
 * and the consultant's alert. Returns 1, 0 if the order is not answered
 * or its allowance is used up (nothing written), -1 on failure. */
int	 order_followup(struct request *, const struct order *o,
	    const char *text, int64_t inbound_id);

struct tvars;
/* Queues mail kind to the client of o, with the page variables, the
 * client's name, the order number and status link added to tv. Call
 * inside the transaction. Returns 1 or 0. */
int	 order_mail(struct request *, const struct order *, const char *kind,
	    struct tvars *);

/* The digits of an order number, at most. */
#define ORDER_NUMBER_DIGITS	18
/* Reads q as an order's number: "PMB-000123" (any case) or "#123"
 * (*exact set: that order or none), or bare digits, "123" or "000123"
 * (*exact 0: that order if it exists, else words to search); blanks
 * around it are allowed; exact may be NULL. Returns the id, or 0 when q
 * is not a number (*exact 0) or is PMB- or # and zeros (*exact 1). */
int64_t	 order_number_parse(const char *q, int *exact);

/* Returns a label for a status, e.g. "Waiting for payment". */
const char *order_status_label(const char *status);
/* As order_status_label, but never st itself (which may be a column's
 * text that the statement's next step frees): a label, or a copy of st
 * owned by the request. */
const char *order_status_text(struct request *, const char *st);

#endif
