/* search_index.h: bringing the search index up to date with the orders
 * that changes have noted as pending (sql/008_search_pending.sql). */
#ifndef PMB_SEARCH_INDEX_H
#define PMB_SEARCH_INDEX_H

#include <stdint.h>

/* Orders indexed per transaction, and the chunks the search page
 * indexes before it searches (a bulk import is left to `pmbctl search
 * index`, or to the next searches: the page says so). */
#define SEARCH_INDEX_CHUNK	1000
#define SEARCH_PAGE_CHUNKS	5

/* Rewrites the search documents of pending orders, at most
 * SEARCH_INDEX_CHUNK orders per write transaction, the lowest ids first,
 * until a chunk finds fewer than that (the end of what was pending) or
 * after max_chunks chunks (0: no limit); sets *more to 1 when it stopped
 * with orders still pending (more may be NULL). Needs no write lock when
 * nothing is pending. Returns the number of orders indexed (0 when none
 * was pending), or -1 on a database failure (logged; chunks committed
 * before it stay). */
int64_t	 search_index_pending(int max_chunks, int *more);

/* Pages written per merge step (one write transaction each), and the
 * most steps one search_optimize takes (10 million pages: 40 GB). */
#define SEARCH_MERGE_PAGES	1000
#define SEARCH_MERGE_MAX	10000

/* Indexes what is pending, then merges the index's segments into one,
 * SEARCH_MERGE_PAGES pages per write transaction, so that the site's
 * writes wait for one step at most. A search walks every segment of the
 * index, so fewer is faster: new documents add segments, and FTS5 merges
 * them only level by level. Returns the number of steps taken (0: one
 * segment already), or -1 on a failure (logged; steps committed before
 * it stay). */
int64_t	 search_optimize(void);

/* Returns the number of segments of the search index, or -1 on error. */
int64_t	 search_segments(void);
/* Merges the whole index into one segment in one write transaction
 * (FTS5's 'optimize'): what search_optimize leaves when FTS5 finds
 * nothing more to merge step by step. A merge into one segment drops
 * the entries of deleted documents (privacy.c's scrub relies on it).
 * Returns 1, or 0 on failure (rolled back). */
int	 search_merge_all(void);

#endif
