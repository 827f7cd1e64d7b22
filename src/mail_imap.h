/* mail_imap.h: one pass over the IMAP mailbox of imap_url (issue 18):
 * each message not yet taken is fetched without touching \Seen, handed
 * to mail_intake, and only after its COMMIT marked with the keyword
 * PmbStored (or moved to imap_done_folder). By UID, oldest first, at
 * most IMAP_PASS_MAX a pass, over one connection. Only pmbctl links it
 * (libcurl, and mail_intake's GMime). */
#ifndef PMB_MAIL_IMAP_H
#define PMB_MAIL_IMAP_H

#include <stdint.h>

#include "util.h"

/* Messages taken in one pass at most; the rest wait for the next. */
#define IMAP_PASS_MAX	100

struct intake_result;

/* What one pass did. */
struct imap_counts {
	int	stored;		/* INTAKE_STORED, then marked */
	int	duplicate;	/* INTAKE_DUPLICATE (taken before), marked */
	int	dropped;	/* INTAKE_DROPPED, marked */
	int	left;		/* still in the mailbox, not taken */
	/* Set by the caller (or NULL): told of each message stored,
	 * before it is marked. */
	void	(*each)(uint32_t uid, const struct intake_result *res);
};

/* One pass over imap_url's mailbox (which must be set); stop (or NULL)
 * is asked between messages. Returns 1; or 0 with a one-line reason in
 * err (never the password) after an IMAP error, a message the database
 * could not store now (it stays, unmarked, for the next pass), or a
 * mark that failed. *n counts what was done either way (its each is
 * kept). */
int	 mail_imap_pass(struct imap_counts *n, int (*stop)(void),
	    struct buf *err);

#endif
