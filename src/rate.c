/* rate.c: sliding-window rate limits: one row per counted event, indexed
 * by (key, at), pruned as they age, so a count reads at most "limit"
 * rows. */
#include "db.h"
#include "rate.h"
#include "util.h"

int
rate_allow(const char *key, int64_t limit, int64_t window,
    int64_t *retry_after)
{
	sqlite3_stmt	*s = db_stmt(ST_RATE_COUNT);
	int64_t		 now = now_unix(), n, oldest;

	*retry_after = 0;
	if (limit <= 0)
		return 1;
	if (s == NULL || !db_bind(s, "ti", key, now - window) ||
	    db_step(ST_RATE_COUNT) != DB_ROW) {
		db_done(ST_RATE_COUNT);
		return -1;
	}
	n = sqlite3_column_int64(s, 0);
	oldest = sqlite3_column_int64(s, 1);
	db_done(ST_RATE_COUNT);
	if (n < limit)
		return 1;
	*retry_after = oldest + window - now;
	if (*retry_after < 1)
		*retry_after = 1;
	return 0;
}

int
rate_note(const char *key, int64_t limit, int64_t window)
{
	int64_t now = now_unix();

	if (limit <= 0)
		return 1;
	return db_run(ST_RATE_INSERT, "ti", key, now) == DB_DONE &&
	    db_run(ST_RATE_PRUNE, "ti", key, now - window) == DB_DONE;
}
