/* rate.h: rate limits kept in SQLite, so they hold across workers. */
#ifndef PMB_RATE_H
#define PMB_RATE_H

#include <stdint.h>

/* Counts the events of key in the last window seconds. Returns 1 if one
 * more is allowed (limit 0: no limit), 0 if not, with the seconds until
 * one is in *retry_after; -1 on a database error. Call inside the
 * transaction that will record the event. */
int	 rate_allow(const char *key, int64_t limit, int64_t window,
	    int64_t *retry_after);
/* Records one event of key and forgets those older than window; with
 * limit 0 (no limit) records nothing, as nothing would read it. Returns
 * 1, or 0 on a database error. */
int	 rate_note(const char *key, int64_t limit, int64_t window);

#endif
