/* outbox.h: emptying the outbox that mail.c fills: claiming due
 * messages one at a time, sending each (mail_transport.c), and marking it
 * sent, or failed and due again after a backoff. */
#ifndef PMB_OUTBOX_H
#define PMB_OUTBOX_H

#include <stdint.h>

/* Delivers every message that is due, one claim at a time, until none
 * is left or stop() returns non-zero (asked between messages; stop may
 * be NULL). Adds what happened to *sent and *failed (may be NULL). The
 * database must be open and mail_transport_start done. Returns 1, or 0
 * on a database error. */
int	 mail_deliver_due(int (*stop)(void), int *sent, int *failed);

/* Seconds "pmbctl mail run" sleeps between rounds unless signalled. */
#define MAIL_POLL_SECONDS	5

/* The pause before try n + 1 after n failed tries (n >= 1): 1 min,
 * 5 min, 30 min, 2 h, 6 h, 12 h, then a day. */
int64_t	 mail_backoff(int64_t failed_tries);

#endif
