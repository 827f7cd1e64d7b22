/* search_rank.c: the search page's FTS5 auxiliary functions, registered
 * on each connection through the fts5_api (obtained the documented way,
 * SELECT fts5(?1) with a bound pointer). Debian's sqlite3.h carries the
 * declarations of fts5.h (Fts5ExtensionApi, fts5_api), the layout of the
 * library it ships with; the versions are checked at run time.
 *
 * pmb_rank(search_fts, w0, w1, ...): bm25, with the same k1, b, column
 * weights and document-length normalisation as FTS5's bm25(), and the
 * same sign (more relevant is lower: ORDER BY rank). Only the document
 * frequency of each phrase, its IDF, comes from a bounded count: bm25()
 * walks every match of each phrase once per query (bench/README.md, fix
 * 12); here the walk stops after DF_SAMPLE matches. A phrase with fewer
 * matches has its exact count, as bm25 would; a commoner one is
 * estimated from the density of its first DF_SAMPLE matches over their
 * ids (ids rise with time and orders are seldom deleted, so a span of
 * ids is a span of documents). A query of one word is ranked exactly as
 * bm25 ranks it (its IDF is a constant factor); with several words, only
 * the weight of a common word against a rare one rests on the estimate,
 * and a log of an estimate within a few percent barely moves it.
 *
 * pmb_hits(search_fts, col): the number of hits of the query in column
 * col of the current row (0 when none; SEARCH makes an excerpt only of
 * a column with a hit: snippet() tokenizes a whole column, hit or not). */
#include <math.h>
#include <string.h>

#include "db.h"
#include "search_rank.h"
#include "util.h"

#define FTS5_API_MIN	2	/* fts5_api.xCreateFunction */
#define FTS5_EXT_MIN	2	/* Fts5ExtensionApi up to xPhraseNextColumn */
#define DF_SAMPLE	200	/* matches of a phrase counted for its IDF */
#define BM25_K1		1.2	/* FTS5's bm25() constants */
#define BM25_B		0.75
#define MAX_COLUMNS	16	/* column weights kept (search_fts has 5) */

static int ready;	/* the functions are registered on the connection */

/* What pmb_rank works out once per query (kept as FTS5 aux data). */
struct rank_query {
	int	 nphrase;
	double	 avgdl;		/* tokens per document, all columns */
	double	 idf[];		/* per phrase */
};

/* The first DF_SAMPLE matches of a phrase: how many, and the ids of the
 * first and the last. */
struct df_count {
	sqlite3_int64	n, first, last;
};

/* xQueryPhrase's callback: counts a match, stops at DF_SAMPLE. */
static int
df_count_match(const Fts5ExtensionApi *api, Fts5Context *fts, void *arg)
{
	struct df_count		*c = arg;
	sqlite3_int64		 id = api->xRowid(fts);

	if (c->n++ == 0)
		c->first = id;
	c->last = id;
	return c->n >= DF_SAMPLE ? SQLITE_DONE : SQLITE_OK;
}

/* Returns the estimated number of documents, of nrow, that hold phrase
 * i (exact under DF_SAMPLE), or -1 with *rc set on error. */
static double
doc_freq(const Fts5ExtensionApi *api, Fts5Context *fts, int i,
    sqlite3_int64 nrow, int *rc)
{
	struct df_count	c = { 0, 0, 0 };
	double		df;

	if ((*rc = api->xQueryPhrase(fts, i, &c, df_count_match)) !=
	    SQLITE_OK)
		return -1;
	if (c.n < DF_SAMPLE || c.last <= c.first)
		return (double)c.n;
	df = (double)(c.n - 1) * (double)nrow / (double)(c.last - c.first);
	if (df < (double)c.n)
		df = (double)c.n;
	return df > (double)nrow ? (double)nrow : df;
}

/* Returns the query's IDFs and average length, or NULL with *rc set. */
static struct rank_query *
rank_query_new(const Fts5ExtensionApi *api, Fts5Context *fts, int *rc)
{
	struct rank_query	*q;
	sqlite3_int64		 nrow = 0, ntok = 0;
	int			 n = api->xPhraseCount(fts);

	if ((*rc = api->xRowCount(fts, &nrow)) != SQLITE_OK ||
	    (*rc = api->xColumnTotalSize(fts, -1, &ntok)) != SQLITE_OK)
		return NULL;
	if ((q = sqlite3_malloc64(sizeof(*q) + sizeof(double) *
	    (size_t)(n > 0 ? n : 1))) == NULL) {
		*rc = SQLITE_NOMEM;
		return NULL;
	}
	q->nphrase = n;
	q->avgdl = nrow > 0 ? (double)ntok / (double)nrow : 1.0;
	if (q->avgdl <= 0.0)
		q->avgdl = 1.0;
	for (int i = 0; i < n; i++) {
		double df = doc_freq(api, fts, i, nrow, rc);

		if (df < 0) {
			sqlite3_free(q);
			return NULL;
		}
		q->idf[i] = log(((double)nrow - df + 0.5) / (df + 0.5));
		if (q->idf[i] <= 0.0)
			q->idf[i] = 1e-6;	/* as bm25() */
	}
	return q;
}

/* pmb_rank(search_fts, weight of column 0, of column 1, ...): returns
 * minus the bm25 score of the current row (see the top of the file);
 * a column without a weight weighs 1. An error ends the query. */
static void
pmb_rank(const Fts5ExtensionApi *api, Fts5Context *fts,
    sqlite3_context *ctx, int nval, sqlite3_value **val)
{
	struct rank_query	*q;
	double			 w[MAX_COLUMNS], score = 0.0, norm;
	int			 rc = SQLITE_OK, ntok = 0;

	if (api->iVersion < FTS5_EXT_MIN) {
		sqlite3_result_error(ctx, "pmb_rank: FTS5 too old", -1);
		return;
	}
	if ((q = api->xGetAuxdata(fts, 0)) == NULL) {
		if ((q = rank_query_new(api, fts, &rc)) == NULL ||
		    (rc = api->xSetAuxdata(fts, q, sqlite3_free)) !=
		    SQLITE_OK) {
			sqlite3_result_error_code(ctx, rc);
			return;
		}
	}
	for (int c = 0; c < MAX_COLUMNS; c++)
		w[c] = c < nval ? sqlite3_value_double(val[c]) : 1.0;
	if ((rc = api->xColumnSize(fts, -1, &ntok)) != SQLITE_OK) {
		sqlite3_result_error_code(ctx, rc);
		return;
	}
	norm = BM25_K1 * (1.0 - BM25_B + BM25_B * (double)ntok / q->avgdl);
	for (int i = 0; i < q->nphrase; i++) {
		Fts5PhraseIter	it;
		double		freq = 0.0;
		int		col, off;

		if ((rc = api->xPhraseFirst(fts, i, &it, &col, &off)) !=
		    SQLITE_OK) {
			sqlite3_result_error_code(ctx, rc);
			return;
		}
		for (; col >= 0; api->xPhraseNext(fts, &it, &col, &off))
			freq += col < MAX_COLUMNS ? w[col] : 1.0;
		score += q->idf[i] * freq * (BM25_K1 + 1.0) / (freq + norm);
	}
	sqlite3_result_double(ctx, -score);
}

/* pmb_hits(search_fts, col): returns the number of hits of the query's
 * phrases in column col of the current row; an error ends the query. */
static void
pmb_hits(const Fts5ExtensionApi *api, Fts5Context *fts,
    sqlite3_context *ctx, int nval, sqlite3_value **val)
{
	int	want, hits = 0, rc;

	if (api->iVersion < FTS5_EXT_MIN) {
		sqlite3_result_error(ctx, "pmb_hits: FTS5 too old", -1);
		return;
	}
	if (nval != 1) {
		sqlite3_result_error(ctx, "pmb_hits: one argument, a column",
		    -1);
		return;
	}
	want = sqlite3_value_int(val[0]);
	for (int i = 0, n = api->xPhraseCount(fts); i < n; i++) {
		Fts5PhraseIter	it;
		int		col, off;

		if ((rc = api->xPhraseFirst(fts, i, &it, &col, &off)) !=
		    SQLITE_OK) {
			sqlite3_result_error_code(ctx, rc);
			return;
		}
		for (; col >= 0 && col <= want;
		    api->xPhraseNext(fts, &it, &col, &off))
			hits += col == want;
	}
	sqlite3_result_int(ctx, hits);
}

/* Returns the connection's fts5_api, or NULL. */
static fts5_api *
fts5_api_of(void)
{
	sqlite3_stmt	*s;
	fts5_api	*api = NULL;

	if ((s = db_stmt(ST_FTS5_API)) == NULL ||
	    sqlite3_bind_pointer(s, 1, &api, "fts5_api_ptr", NULL) !=
	    SQLITE_OK)
		return NULL;
	if (db_step(ST_FTS5_API) == DB_ERROR)
		api = NULL;
	db_done(ST_FTS5_API);
	return api;
}

int
search_rank_register(sqlite3 *db)
{
	fts5_api *api;

	ready = 0;
	if ((api = fts5_api_of()) == NULL || api->iVersion < FTS5_API_MIN) {
		log_msg("search: no fts5_api (version %d): ranking by bm25",
		    api != NULL ? api->iVersion : -1);
		return 0;
	}
	if (api->xCreateFunction(api, "pmb_rank", NULL, pmb_rank, NULL) !=
	    SQLITE_OK ||
	    api->xCreateFunction(api, "pmb_hits", NULL, pmb_hits, NULL) !=
	    SQLITE_OK) {
		log_msg("search: registering pmb_rank: %s: ranking by bm25",
		    sqlite3_errmsg(db));
		return 0;
	}
	ready = 1;
	return 1;
}

int
search_rank_ready(void)
{
	return ready;
}

void
search_rank_reset(void)
{
	ready = 0;
}
