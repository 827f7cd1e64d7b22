/* search_rank.h: the search page's FTS5 auxiliary functions (pmb_rank,
 * pmb_hits), registered on each connection through the fts5_api. */
#ifndef PMB_SEARCH_RANK_H
#define PMB_SEARCH_RANK_H

#include <sqlite3.h>

/* Registers pmb_rank and pmb_hits on db, the connection that db_stmt
 * prepares on (db_open calls it). Returns 1, or 0 (logged) when FTS5
 * offers no usable fts5_api: search then ranks with FTS5's own bm25. */
int	 search_rank_register(sqlite3 *db);
/* Returns 1 if the functions are registered on the open connection. */
int	 search_rank_ready(void);
/* Forgets the registration (db_close). */
void	 search_rank_reset(void);

#endif
