/* mail_transport.h: handing a built message over with the configured
 * transport: a folder (dir), a local command (sendmail), or an SMTP
 * server through libcurl (smtp). Only pmbctl links it: pmb.fcgi delivers
 * no mail and carries no libcurl. */
#ifndef PMB_MAIL_TRANSPORT_H
#define PMB_MAIL_TRANSPORT_H

#include "mime.h"
#include "util.h"

/* Gets the process ready to send (libcurl; a sendmail command that
 * stops reading must not kill it). Returns 1, or 0 if libcurl cannot
 * start. mail_transport_stop undoes it. */
int	 mail_transport_start(void);
void	 mail_transport_stop(void);
/* Checks the settings that delivery needs; returns NULL or a reason. */
const char *mail_transport_problem(void);
/* Builds m (mail_build) and hands it to the configured transport.
 * Returns 1 if it was handed over, else 0 with a one-line reason in err
 * (never a password or the message); *permanent is set when trying
 * again cannot help (a bad recipient). */
int	 mail_transport_send(const struct mail_msg *m, struct buf *err,
	    int *permanent);
/* From now on, until called with NULL, appends each line the SMTP server
 * answers (as "< 250 ..." lines) to b: "pmbctl mail test" shows them. */
void	 mail_transport_answers(struct buf *b);

#endif
