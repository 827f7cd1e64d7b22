/* privacy.h: a client's personal data erased while the books stay
 * (issue 20): one erase over a declared list of every column that can
 * hold personal data, the bytes scrubbed from the database file, its WAL
 * and the search index, and the retention sweep. The export is
 * privacy_export.h's. */
#ifndef PMB_PRIVACY_H
#define PMB_PRIVACY_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Why an order's personal data cannot be erased now. */
enum privacy_block {
	PB_NONE = 0,		/* it can be */
	PB_ERASED,		/* already erased */
	PB_REFUND_OPEN,		/* a refund request is open */
	PB_MONEY_HELD,		/* money received and not refunded while
				 * the guarantee still runs (or not answered
				 * yet) */
	PB_PAY_JOB		/* a payment job (card refund, ...) pending */
};

/* Returns a sentence saying why (for pages and pmbctl), "" for PB_NONE. */
const char *privacy_block_text(enum privacy_block);

/* Returns why order id cannot be erased now (PB_NONE: it can), read
 * inside the caller's transaction; -1 on a database error or if there is
 * no such order. */
int	 privacy_erasable(int64_t id, int64_t now);

/* Erases the personal data of order id inside the caller's write
 * transaction (db_begin done), by user_id (0: pmbctl or the sweep):
 * every column of privacy_columns that is personal, the order's files,
 * received mail, outbox bodies and recipients, rate-limit rows, search
 * index entries; an awaiting-payment order with nothing received is
 * cancelled. Marks its open erasure request done; with notify, queues the
 * "your data is erased" email to the client (wiped once delivered).
 * Audited without the erased data. Returns 1, 0 if refused (*why set,
 * nothing written), -1 on a database error (the caller rolls back). */
int	 privacy_erase_order(struct request *, int64_t id, int64_t user_id,
	    int notify, enum privacy_block *why);

/* After an erase is committed: merges the search index until no erased
 * term is left in it, and checkpoints the WAL with TRUNCATE, retrying
 * while readers hold it (whatever the merge and the check found).
 * Returns 1, 0 if the WAL could not be truncated in time (the data is
 * erased; its bytes go at the next checkpoint), -1 if the merge failed
 * or index entries of erased orders are left (logged). */
int	 privacy_scrub(void);

/* The whole erase of one order, as the order page and pmbctl do it:
 * BEGIN, privacy_erase_order (notify: the client is told), COMMIT,
 * privacy_scrub. Returns 1, 0 if refused (*why), -1 on failure (rolled
 * back). */
int	 privacy_erase(struct request *, int64_t id, int64_t user_id,
	    int notify, enum privacy_block *why);

/* One order of a person's erase: its id, its number, and why it cannot
 * be erased now (a privacy_block; PB_NONE: it can). */
struct privacy_target {
	int64_t	 id;
	char	 number[32];
	int	 why;
};
/* The most orders one person's erase takes. */
#define PRIVACY_PERSON_MAX	1000

/* Reads the orders not yet erased whose client's address is address
 * (any case) into t (room for PRIVACY_PERSON_MAX), oldest first, each
 * with why it cannot be erased now. Returns how many (0: none), or -1
 * on error or more than PRIVACY_PERSON_MAX. */
int	 privacy_person_orders(const char *address, struct privacy_target *t);

/* Erases every order of the client address (any case), all or none, in
 * one write transaction (the orders read and each decision taken inside
 * it), by user_id, the client told as privacy_erase does; then
 * privacy_scrub once. t (room for PRIVACY_PERSON_MAX) and *n say which
 * orders there were and why each blocked one is. Returns 1 (all
 * erased), 0 if any is blocked or there is none (nothing erased), -1 on
 * failure (rolled back). */
int	 privacy_erase_person(struct request *, const char *address,
	    int64_t user_id, int notify, struct privacy_target *t, int *n);

/* Erases the retention sweep's orders: closed (answered with the
 * guarantee over, refunded, cancelled) more than retention_days ago and
 * not erased, at most PRIVACY_SWEEP_STEP per transaction, none with
 * money owed; then privacy_scrub once. Returns how many were erased (0
 * when retention_days is 0), -1 on failure (steps already committed
 * stay). */
int64_t	 privacy_sweep(struct request *, int64_t now);
#define PRIVACY_SWEEP_STEP	500

/* One column of the store and whether it can hold personal data: the
 * list every table's every column must be in (tests/privacy.py compares
 * it with the schema, so a column added and not listed fails). */
struct privacy_column {
	const char	*table, *column;
	int		 personal;	/* 1: erased (how: privacy.c) */
	const char	*why;		/* what it holds, or why it stays */
};
extern const struct privacy_column privacy_columns[];
extern const size_t privacy_columns_len;

#endif
