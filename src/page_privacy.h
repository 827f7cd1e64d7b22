/* page_privacy.h: privacy's pages (issue 20): the privacy notice, a
 * closed order's "Delete my data", the 410 Gone page of an erased order's
 * client links, the erased order as staff see it, and the staff's erase
 * with its confirmation step. The erase itself is privacy.h's. */
#ifndef PMB_PAGE_PRIVACY_H
#define PMB_PAGE_PRIVACY_H

#include <stdint.h>

#include "http.h"

struct order;
struct tvars;

/* GET /privacy: the privacy notice, from the settings. */
void	 page_privacy(struct request *);
/* POST /o/TOKEN/erasure: a closed order's "Delete my data". */
void	 page_erasure_submit(struct request *);
/* GET /admin/orders/ID/erase: what goes and what stays, and the button
 * (or why the order cannot be erased now). */
void	 page_admin_erase(struct request *);
/* POST /admin/orders/ID/erase with confirm=yes: the erase. */
void	 page_admin_erase_submit(struct request *);

/* The fields of POST /o/TOKEN/erasure and POST /admin/orders/ID/erase
 * (an interface). */
extern const struct field erasure_fields[];
extern const struct field erase_fields[];

/* Returns 1 if o is closed, so that its client may ask for their data
 * to be erased: refunded, cancelled, or answered (or a follow-up) with
 * the money-back guarantee over (never while a refund request is open,
 * nor while a late answer keeps the refund link open). */
int	 privacy_order_closed(const struct order *, int64_t now);
/* Answers 410 Gone with the short page of an erased order (no personal
 * data) and returns 1 if o's personal data was erased; else returns 0,
 * answering nothing. */
int	 page_gone(struct request *, const struct order *);
/* Sets the status page's "Delete my data" variables of o (token: the
 * path's): erasure_action on a closed order, erasure_asked (the date)
 * once asked. Returns 1, or 0 on a database error. */
int	 page_erasure_vars(struct request *, struct tvars *,
	    const struct order *, const char *token);
/* Sets the staff order page's privacy variables of o: erased, erased_on
 * and erased_by for an erased order, else erase_url and, when the client
 * asked, erasure_asked (the date). Returns 1, or 0 on a database
 * error. */
int	 page_admin_privacy_vars(struct request *, struct tvars *,
	    const struct order *);
/* Reads whether order id's personal data is erased, inside the
 * caller's write transaction (the decision of a write that adds text to
 * it). Returns 1, 0 if not (or no such order), -1 on a database error. */
int	 page_order_erased(int64_t id);
/* Answers 409 for a staff write on order o and returns 1 if o's
 * personal data was erased; else returns 0, answering nothing. */
int	 page_admin_erased_refused(struct request *, const struct order *);

#endif
