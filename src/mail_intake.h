/* mail_intake.h: one received message stored and routed (issue 18), the
 * one code path of `pmbctl mail receive` (a mail server's pipe) and
 * `pmbctl mail fetch` (IMAP). In one transaction: kept whole in inbound
 * (once per Message-ID), then a bounce marks the outbox row it names, a
 * client's reply becomes a message of its order (more information, a
 * follow-up, or a message outside the allowance), and anything else
 * waits in the consultant's inbox; auto-replies, bulk mail, our own mail
 * come back and senders over the hourly rate are dropped and counted.
 * Nothing is acknowledged before its COMMIT. Needs GMime (mime_start)
 * and the settings and key loaded, the database open. */
#ifndef PMB_MAIL_INTAKE_H
#define PMB_MAIL_INTAKE_H

#include <stddef.h>
#include <stdint.h>

/* What became of a message. */
enum intake {
	INTAKE_STORED,		/* committed: into an order, the inbox, or a
				 * bounce recorded */
	INTAKE_DUPLICATE,	/* stored before (same Message-ID): nothing
				 * done */
	INTAKE_DROPPED,		/* dropped on purpose and counted */
	INTAKE_TEMPFAIL		/* not stored (database busy or failing):
				 * the sender must keep it and try again */
};

struct intake_result {
	enum intake	 what;
	int64_t		 inbound_id;	/* its row (STORED, DUPLICATE) */
	int64_t		 order_id;	/* the order it went to, or 0 */
	const char	*where;		/* in words, static: "follow-up",
					 * "more information", "inbox",
					 * "bounce", "duplicate", "dropped:
					 * auto_submitted", "not stored" */
};

/* Largest message taken whole; a bigger one is kept cut to this many
 * bytes, in the inbox, with the reason saying so. */
#define INTAKE_MAX_BYTES	(25 * 1024 * 1024)

/* Stores and routes len bytes of one RFC 5322 message that came via
 * "pipe" or "imap". Returns the outcome (also in *res, if not NULL). */
enum intake	 mail_intake(const char *raw, size_t len, const char *via,
		    struct intake_result *res);
/* The same for a message of which only the first len bytes of received
 * were kept (more than INTAKE_MAX_BYTES came): it waits in the inbox, cut,
 * with the reason saying so. */
enum intake	 mail_intake_sized(const char *raw, size_t len,
		    size_t received, const char *via,
		    struct intake_result *res);

#endif
