/* search_index.c: the search index's catch-up. Changes to orders and
 * messages only note the order as pending (sql/008_search_pending.sql),
 * so the transaction of a new question writes one small row instead of
 * a new FTS5 segment; the index is brought up to date here, in chunks,
 * by whoever is about to read it (GET /admin/search) or by the operator
 * (`pmbctl search index`). `pmbctl search optimize` (nightly, from
 * conf/systemd/pmb-search-optimize.timer) also merges the index's
 * segments into one, a step at a time. */
#include "db.h"
#include "search_index.h"
#include "util.h"

/* Returns 1 if an order is pending, 0 if none is, -1 on failure. */
static int
search_pending_any(void)
{
	int rc;

	if (db_stmt(ST_SEARCH_PENDING_ANY) == NULL)
		return -1;
	rc = db_step(ST_SEARCH_PENDING_ANY);
	db_done(ST_SEARCH_PENDING_ANY);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Indexes the lowest SEARCH_INDEX_CHUNK pending orders in one write
 * transaction. Returns how many were pending there (0: none left), or
 * -1 on failure (rolled back). */
static int64_t
search_index_chunk(void)
{
	sqlite3_stmt	*s;
	int64_t		 upto, n;

	if (!db_begin())
		return -1;
	if ((s = db_stmt(ST_SEARCH_PENDING_UPTO)) == NULL ||
	    !db_bind(s, "i", (int64_t)SEARCH_INDEX_CHUNK) ||
	    db_step(ST_SEARCH_PENDING_UPTO) != DB_ROW) {
		db_done(ST_SEARCH_PENDING_UPTO);
		goto fail;
	}
	if (sqlite3_column_type(s, 0) == SQLITE_NULL) {	/* none pending */
		db_done(ST_SEARCH_PENDING_UPTO);
		db_rollback();
		return 0;
	}
	upto = sqlite3_column_int64(s, 0);
	db_done(ST_SEARCH_PENDING_UPTO);
	if (db_run(ST_SEARCH_UNINDEX, "i", upto) != DB_DONE ||
	    db_run(ST_SEARCH_REINDEX, "i", upto) != DB_DONE ||
	    db_run(ST_SEARCH_PENDING_DONE, "i", upto) != DB_DONE)
		goto fail;
	n = sqlite3_changes(db_handle());
	return db_commit() ? n : -1;
fail:
	db_rollback();
	return -1;
}

int64_t
search_segments(void)
{
	sqlite3_stmt	*s = db_stmt(ST_SEARCH_SEGMENTS);
	int64_t		 n = -1;

	if (s != NULL && db_step(ST_SEARCH_SEGMENTS) == DB_ROW)
		n = sqlite3_column_int64(s, 0);
	db_done(ST_SEARCH_SEGMENTS);
	return n;
}

/* Runs one merge step in its own write transaction. Returns 1 if it
 * merged something, 0 if FTS5 found nothing to merge (it then rewrites
 * only its structure record: one row), -1 on failure (rolled back). */
static int
search_merge_step(void)
{
	sqlite3_int64 before;

	if (!db_begin())
		return -1;
	before = sqlite3_total_changes64(db_handle());
	if (db_run(ST_SEARCH_MERGE, "i", -(int64_t)SEARCH_MERGE_PAGES) !=
	    DB_DONE) {
		db_rollback();
		return -1;
	}
	if (sqlite3_total_changes64(db_handle()) - before <= 1) {
		db_rollback();
		return 0;
	}
	return db_commit() ? 1 : -1;
}

int64_t
search_optimize(void)
{
	int64_t	steps = 0, n;
	int	rc;

	if (search_index_pending(0, NULL) < 0)
		return -1;
	/* Each step writes SEARCH_MERGE_PAGES pages of merged segments:
	 * the whole index takes about as many steps as it has thousands of
	 * pages. The cap only stops a merge that would never end. */
	while ((n = search_segments()) > 1 && steps < SEARCH_MERGE_MAX) {
		if ((rc = search_merge_step()) < 0) {
			log_msg("search: could not merge the index");
			return -1;
		}
		if (rc == 0)		/* nothing FTS5 can merge */
			break;
		steps++;
	}
	if (n < 0) {
		log_msg("search: could not count the index's segments");
		return -1;
	}
	return steps;
}

int
search_merge_all(void)
{
	if (!db_begin())
		return 0;
	if (db_run(ST_SEARCH_OPTIMIZE_ALL, "") != DB_DONE || !db_commit()) {
		db_rollback();
		log_msg("search: could not merge the index into one segment");
		return 0;
	}
	return 1;
}

int64_t
search_index_pending(int max_chunks, int *more)
{
	int64_t	total = 0, n;
	int	any, chunks = 0;

	if (more != NULL)
		*more = 0;
	if ((any = search_pending_any()) <= 0)
		return any;
	/* A chunk short of full reached the end: orders noted since (new
	 * questions keep coming) are left to the next reader. */
	do {
		if ((n = search_index_chunk()) > 0)
			total += n;
	} while (n == SEARCH_INDEX_CHUNK &&
	    (max_chunks == 0 || ++chunks < max_chunks));
	if (n < 0) {
		log_msg("search: could not index the pending orders");
		return -1;
	}
	if (n == SEARCH_INDEX_CHUNK && more != NULL &&
	    (*more = search_pending_any()) < 0)
		return -1;
	return total;
}
