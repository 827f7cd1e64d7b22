/* search_index.h: bringing the search index up to date with the orders
 * that changes have noted as pending (sql/008_search_pending.sql). */
#ifndef PMB_SEARCH_INDEX_H
#define PMB_SEARCH_INDEX_H

#include <stdint.h>

/* Orders indexed per transaction. */
#define SEARCH_INDEX_CHUNK	1000

/* Rewrites the search documents of every pending order, at most
 * SEARCH_INDEX_CHUNK orders per write transaction, the lowest ids first,
 * until a chunk finds fewer than that (the end of what was pending). Needs no write lock when nothing is pending.
 * Returns the number of orders indexed (0 when none was pending), or -1
 * on a database failure (logged; chunks committed before it stay). */
int64_t	 search_index_pending(void);

#endif
