/* pay_method.h: the ways money moves, a fixed list (an interface: the
 * method field of POST /admin/orders/ID/paid and of
 * /admin/refunds/ID/refunded, the ledger's method column, the CSV):
 * card, bank_transfer, paypal, cash, other. The reference stays free
 * text. "card" is a card payment, through Stripe (its reference a pi_,
 * cs_ or re_ id) or recorded by hand (any other reference). */
#ifndef PMB_PAY_METHOD_H
#define PMB_PAY_METHOD_H

#include <stdint.h>

struct order;
struct request;
struct tvars;

/* Returns NULL if v is one of the list's values, else the message for
 * the form (a field validator). */
const char	*pay_method_check(const char *v);

/* The label of method v ("Bank transfer"); "Not given" for "", v itself
 * for a value not in the list. */
const char	*pay_method_label(const char *v);

/* Adds the list to tv as the list key, each row with value, label and
 * selected ("1" for the value equal to selected); skip, if not NULL, is
 * left out. */
void		 pay_method_options(struct tvars *tv, const char *key,
		    const char *selected, const char *skip);

/* The method of order order_id's last payment (request-owned; "" when
 * none is recorded), or NULL on a database error. */
const char	*pay_method_of_order(struct request *, int64_t order_id);

/* How and when a refund of an order paid by method reaches the client,
 * to follow "back": "to the card you paid with, in 5–10 days", "by bank
 * transfer within 5 days" (refund_days)... Request-owned or static. */
const char	*pay_method_refund_way(struct request *, const char *method);

/* How a refund made by method was sent, to follow "I have refunded X":
 * "to the card you paid with: it shows on your statement in 5–10
 * days", "by bank transfer: ...", "" for other. Static. */
const char	*pay_method_refund_sent(const char *method);

/* Sets in tv what the client's pages say of a refund of order o:
 * refund_way (pay_method_refund_way of its last payment's method),
 * refund_total (refunded, the ledger's refunds so far, in o's currency)
 * and refunded_on (the date the order became refunded, "" before).
 * Returns 1, or 0 on a database error. */
int		 pay_method_refund_vars(struct request *, struct tvars *,
		    const struct order *o, int64_t refunded);

#endif
