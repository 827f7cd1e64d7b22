/* mail_imap.h: one pass over the IMAP mailbox of imap_url (issue 18):
 * each message not yet taken is fetched without touching \Seen, handed
 * to mail_intake, and only after its COMMIT marked with the keyword
 * PmbStored (or moved to imap_done_folder). By UID, oldest first, at
 * most IMAP_PASS_MAX a pass, over one connection. Only pmbctl links it
 * (libcurl, and mail_intake's GMime), and tests/fuzz/fuzz_imap.c, which
 * gives mail_imap_read the server's bytes. */
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

/* For tests/fuzz/fuzz_imap.c: the commands of a pass whose answers
 * mail_imap_read reads, each with its tag in the first pass. */
enum imap_step {
	IMAP_STEP_SELECT = 0,	/* p1 SELECT "INBOX" */
	IMAP_STEP_SEARCH,	/* p2 UID SEARCH (ALL with imap_done_folder) */
	IMAP_STEP_FETCH,	/* p3 UID FETCH uid BODY.PEEK[] */
	IMAP_STEP_MARK		/* p4 UID STORE uid, or UID MOVE uid */
};

/* What mail_imap_read found in an answer. */
struct imap_read {
	uint32_t	*uids;	/* SEARCH: the UIDs, in order if it succeeded
				 * (free them) */
	size_t		 nuids;
	struct buf	 msg;	/* FETCH: uid's message (buf_init it first), */
	uint64_t	 size;	/* its size as the server announced it, */
	int		 got;	/* and 1 if the answer held it */
};

/* Reads the server's answer to one command of a pass (step; uid for
 * FETCH and the mark), the server's bytes being data (len bytes, given
 * piece bytes at a time as by a connection; all at once when 0), with
 * the very code of mail_imap_pass. Returns 1 as mail_imap_pass would go
 * on; or 0 with a one-line reason in err. out gets what was read either
 * way. */
int	 mail_imap_read(enum imap_step step, uint32_t uid, const char *data,
	    size_t len, size_t piece, struct imap_read *out, struct buf *err);

#endif
