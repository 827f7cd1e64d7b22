/* audit.h: the audit trail: one row for each thing a person or the
 * system did (a sign-in, a refund, a snippet edited, mail retried). */
#ifndef PMB_AUDIT_H
#define PMB_AUDIT_H

#include <stdint.h>

struct request;

/* Writes an audit row, inside the caller's transaction. r gives the
 * client's address (NULL: none, as for pmbctl); user_id 0 is the client,
 * the system or the operator's shell; order_id 0 is no order. Returns 1
 * or 0. */
int	 audit_log(struct request *, int64_t user_id, const char *action,
	    int64_t order_id, const char *detail);

#endif
