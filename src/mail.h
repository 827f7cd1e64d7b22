/* mail.h: writing emails to the outbox (in the caller's transaction);
 * delivery is in mail_send.c. */
#ifndef PMB_MAIL_H
#define PMB_MAIL_H

#include <stdint.h>

#include "tmpl.h"

/* Renders www/templates/mail/KIND.txt (first line "Subject: ...") into a
 * plain-text and an HTML part and queues it for to_addr. Call inside the
 * transaction of the change that causes the mail. Returns 1, or 0 on a
 * missing template or a failed write (the caller rolls back). */
int	 mail_queue(const char *kind, int64_t order_id, const char *to_addr,
	    const char *to_name, const struct tvars *);

#endif
