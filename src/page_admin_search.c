/* page_admin_search.c: GET /admin/search?q= — full-text search over the
 * orders (SQLite FTS5, sql/003_search.sql): the client's name and
 * address, the question, the replies and follow-ups, internal notes.
 * Ranked by bm25 (pmb_rank), with the hits marked in the excerpts.
 *
 * A page ranks a window of matches, not all of them. ORDER BY rank makes
 * FTS5 score every match with bm25 (about 9,000 instructions each), so a
 * common word (8% of 100,000 orders) cost 90 times what it costs on 100
 * orders. The page ranks the newest SEARCH_WINDOW matches only: FTS5
 * reads its index in rowid order without scoring, so the window's oldest
 * id is found by stepping SEARCH_WINDOW matches, and the ranked query is
 * limited to the window's ids. Ids rise with time, so the window is the
 * recent orders, the ones a consultant looks for most; a name or a rare
 * word has fewer matches than the window and is ranked across every
 * order, as before. Older matches are a link away: the next window, by a
 * keyset cursor (?before=ID, the window's oldest id), each window costing
 * what the first does. The page says which window it ranks and never
 * counts all matches.
 *
 * The index is brought up to date here, before it is read: a change to
 * an order only notes it as pending (sql/008_search_pending.sql,
 * search_index.c), so the page sees every change committed before it.
 *
 * Ranking and excerpts (bench/README.md, fix 11 and 12): SEARCH ranks
 * with pmb_rank (src/search_rank.c), bm25 whose count of each word's
 * documents stops after a bounded sample, instead of bm25() walking every
 * match of each word once per query; and it makes an excerpt only of a
 * part of the thread that holds a hit (pmb_hits), since snippet()
 * tokenizes a whole column, hit or not (an answered order's replies are
 * long). The page looks the same for the same hits. Where pmb_rank could
 * not be registered (no usable fts5_api), SEARCH_BM25 does the same with
 * FTS5's own functions.
 *
 * Still growing with the number of matches (bench/README.md): FTS5 finds
 * the window by walking a word's ids newest first, which reads each
 * index segment's whole list of ids for it, and the ranked query seeks
 * the window's oldest id in every segment by stepping through the ids
 * below it. Both are light per match (about 60 and 115 instructions) but
 * a common word has thousands; storing the index newest first (rowid =
 * -id) would make both a walk from the start. */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "order.h"
#include "page.h"
#include "search_index.h"
#include "search_rank.h"

#define SEARCH_PAGE	20	/* results per page */
#define SEARCH_WINDOW	100	/* matches ranked together, newest first */
#define SEARCH_PAGES	(SEARCH_WINDOW / SEARCH_PAGE)	/* pages of a window */
#define SEARCH_TERMS	16	/* words of a query kept */
#define MARK_OPEN	'\001'	/* hit markers of highlight() and snippet() */
#define MARK_CLOSE	'\002'
#define PREFIX_MIN	3	/* characters of a last word matched as a prefix */

/* Returns NULL if v is a page number we serve. */
static const char *
check_page(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, SEARCH_PAGES, &n) ? NULL :
	    "There is no such page of results.";
}

/* Returns NULL if v is an order id: the cursor of a window of older
 * matches. */
static const char *
check_before(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, INT64_MAX, &n) ? NULL :
	    "The cursor of older matches is not valid.";
}

/* The query fields of GET /admin/search (an interface). */
const struct field search_fields[] = {
#define QF_Q		0
	{ "q", "the search", 0, 200, 0, NULL },
#define QF_PAGE		1
	{ "page", "the page", 0, 2, 0, check_page },
#define QF_BEFORE	2
	{ "before", "the cursor of older matches", 0, 20, 0, check_before },
	FIELDS_END
};

/* Returns 1 if the n bytes at s hold a character that can be part of a
 * token (a letter or digit; any non-ASCII character may be one). */
static int
has_token_char(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || (c >= '0' && c <= '9') ||
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			return 1;
	}
	return 0;
}

/* Turns what the user typed into an FTS5 query that cannot be a syntax
 * error: each word (split at white space) becomes a quoted string with
 * its quotes doubled, so NEAR(, AND, -, ^ and column filters are plain
 * text; the words are ANDed; a word ending in * searches by prefix.
 * Words with no letter or digit hold no token and are dropped. Returns
 * the query, owned by the request, or NULL when no word is left; and in
 * *prefixed, when the last word may be one still being typed ("pric"
 * for "pricing": PREFIX_MIN characters or more, not starred, a shorter
 * prefix would gather the lists of too many words), the same query with
 * that word as a prefix, else NULL (see search_choose). */
static const char *
fts_query(struct request *r, const char *in, const char **prefixed)
{
	struct buf	b;
	int		terms = 0, last_prefix = 0;
	size_t		last_chars = 0;

	buf_init(&b);
	while (*in != '\0' && terms < SEARCH_TERMS) {
		size_t	n, stem;
		int	prefix;

		in += strspn(in, " \t\r\n");
		n = strcspn(in, " \t\r\n");
		if (n == 0)
			break;
		for (stem = n; stem > 0 && in[stem - 1] == '*'; stem--)
			;
		prefix = stem < n;
		if (has_token_char(in, stem)) {
			if (terms++ > 0)
				buf_putc(&b, ' ');
			buf_putc(&b, '"');
			for (size_t i = 0; i < stem; i++) {
				if (in[i] == '"')
					buf_putc(&b, '"');
				buf_putc(&b, in[i]);
			}
			buf_puts(&b, prefix ? "\"*" : "\"");
			last_prefix = prefix;
			last_chars = 0;
			for (size_t i = 0; i < stem; i++)
				last_chars += ((unsigned char)in[i] & 0xc0) !=
				    0x80;
		}
		in += n;
	}
	*prefixed = NULL;
	if (terms == 0) {
		buf_free(&b);
		return NULL;
	}
	if (!last_prefix && last_chars >= PREFIX_MIN)
		*prefixed = req_printf(r, "%s*", b.data);
	return req_keep(r, buf_take(&b));
}

/* Adds one part of a text to tv's list: its text, and whether it is a
 * hit. */
static void
mark_part(struct request *r, struct tvars *tv, const char *list,
    struct buf *run, int marked)
{
	struct tvars *part;

	if (run->len == 0)
		return;
	part = tv_row(tv, list);
	tv_set(part, "text", req_strdup(r, run->data));
	tv_set(part, "marked", marked ? "1" : "");
	buf_reset(run);
}

/* Adds text from the index to tv as the list called list, of parts
 * {text, marked}: the hits are the marked parts (the template wraps
 * them in <mark>). The markers are control characters that the forms
 * never accept; stray ones are dropped, so the hits never nest. */
static void
mark_parts(struct request *r, struct tvars *tv, const char *list,
    const char *s)
{
	struct buf	run;
	int		open = 0;

	buf_init(&run);
	while (*s != '\0') {
		size_t n = strcspn(s, "\001\002");

		if (n > 0) {
			buf_append(&run, s, n);
			s += n;
			continue;
		}
		if ((*s == MARK_OPEN && !open) || (*s == MARK_CLOSE && open)) {
			mark_part(r, tv, list, &run, open);
			open = !open;
		}
		s++;
	}
	mark_part(r, tv, list, &run, open);
	buf_free(&run);
}

/* Adds the excerpts of a result to row as the list excerpts, each with
 * its label and parts (one per part of the thread that holds a hit; the
 * question when only the name or address did). */
static void
excerpts(struct request *r, struct tvars *row, sqlite3_stmt *s)
{
	static const char *const labels[] = { "Question", "Replies and "
	    "follow-ups", "Internal notes" };
	int any = 0;

	for (int i = 0; i < 3; i++) {
		struct tvars *ex;

		/* The first marker always opens a hit. */
		if (strchr(db_text(s, 6 + i), MARK_OPEN) == NULL)
			continue;
		ex = tv_row(row, "excerpts");
		tv_set(ex, "label", labels[i]);
		mark_parts(r, ex, "parts", db_text(s, 6 + i));
		any = 1;
	}
	if (!any && *db_text(s, 6) != '\0') {
		struct tvars *ex = tv_row(row, "excerpts");

		tv_set(ex, "label", labels[0]);
		mark_parts(r, ex, "parts", db_text(s, 6));
	}
}

/* Finds the window of matches of the FTS5 query match among the orders
 * with ids up to newest: the newest SEARCH_WINDOW of them. Sets *oldest
 * to the window's oldest id (0 when the window holds every match up to
 * newest) and *older to 1 if older matches exist. Returns 0 on a
 * database error. */
static int
search_window(const char *match, int64_t newest, int64_t *oldest,
    int *older)
{
	sqlite3_stmt	*s;
	int		 rc, n = 0;

	*oldest = 0;
	*older = 0;
	if ((s = db_stmt(ST_SEARCH_WINDOW)) == NULL || !db_bind(s, "tii",
	    match, newest, (int64_t)SEARCH_WINDOW - 1))
		return 0;
	while ((rc = db_step(ST_SEARCH_WINDOW)) == DB_ROW) {
		if (n++ == 0)
			*oldest = sqlite3_column_int64(s, 0);
		else
			*older = 1;
	}
	db_done(ST_SEARCH_WINDOW);
	return rc != DB_ERROR;
}

/* Chooses what a search runs and finds its window (search_window, with
 * ids up to newest): the query as typed, or the one whose last word is a
 * prefix (fts_query) when there is one and the last word as typed has no
 * more matches than a window. A prefix costs FTS5 the merged list of ids
 * of every word that starts with it, built whole by each cursor (the
 * window's, the ranked query's, pmb_rank's count): all the matches of a
 * common word, on every search (bench/README.md, fix 21). A whole word
 * with more matches than a window is the word meant, and costs only the
 * window's steps. The choice is made on the newest window, so every
 * window of a search runs the same query. Returns the query, or NULL on
 * error. */
static const char *
search_choose(const char *exact, const char *prefixed, int64_t newest,
    int64_t *oldest, int *older)
{
	const char	*match = exact;

	if (prefixed != NULL) {
		if (!search_window(exact, INT64_MAX, oldest, older))
			return NULL;
		if (!*older)
			match = prefixed;
		else if (newest == INT64_MAX)
			return exact;
	}
	return search_window(match, newest, oldest, older) ? match : NULL;
}

/* Returns the URL of that page of the results of q in the window ending
 * below before (0: the newest), owned by the request. */
static const char *
search_url(struct request *r, const char *q, int64_t before, int64_t page)
{
	struct buf u;

	buf_init(&u);
	buf_puts(&u, "/admin/search?q=");
	url_escape(&u, q);
	if (before > 0)
		buf_printf(&u, "&before=%lld", (long long)before);
	if (page > 1)
		buf_printf(&u, "&page=%lld", (long long)page);
	return req_keep(r, buf_take(&u));
}

/* Adds the results of statement st, s as bound, to tv as the list rows,
 * at most SEARCH_PAGE of them; sets *more if there are more. Returns how
 * many, or -1 on a database error. */
static int
result_rows(struct request *r, struct tvars *tv, enum stmt st,
    sqlite3_stmt *s, int *more)
{
	int rc, n = 0;

	*more = 0;
	while ((rc = db_step(st)) == DB_ROW) {
		struct tvars *row;

		if (n == SEARCH_PAGE) {
			*more = 1;
			break;
		}
		n++;
		row = tv_row(tv, "rows");
		tv_set(row, "id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "number", req_strdup(r, db_text(s, 1)));
		tv_set(row, "status", order_status_text(r, db_text(s, 2)));
		tv_set(row, "created", page_date(r,
		    sqlite3_column_int64(s, 3)));
		mark_parts(r, row, "name_parts", db_text(s, 4));
		mark_parts(r, row, "email_parts", db_text(s, 5));
		excerpts(r, row, s);
	}
	db_done(st);
	return rc == DB_ERROR ? -1 : n;
}

/* Answers a search that names an order by its number: 303 to the order,
 * or (for "PMB-…" and "#…") 404 saying there is no such order. Returns 1
 * if it answered, 0 if q is to be searched as words. */
static int
search_number(struct request *r, const char *q)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 id, found;
	int		 exact;

	if ((id = order_number_parse(q, &exact)) == 0) {
		if (!exact)
			return 0;
	} else if ((found = db_find_id(ST_ORDER_EXISTS, req_printf(r,
	    "%lld", (long long)id))) < 0) {
		page_unavailable(r);
		return 1;
	} else if (found > 0) {
		http_redirect(r, req_printf(r, "/admin/orders/%lld",
		    (long long)id));
		return 1;
	} else if (!exact)
		return 0;
	page_vars(r, &tv);
	tv_set(&tv, "q", q);
	tv_set(&tv, "form_message", req_printf(r, "There is no such order: "
	    "no order has the number PMB-%06lld.", (long long)id));
	page_render(r, 404, "No such order", "admin_search.html", &tv);
	return 1;
}

/* GET /admin/search */
void
page_admin_search(struct request *r)
{
	const char	*q = r->fields[QF_Q].value;
	const char	*match, *prefixed;
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s;
	enum stmt	 st = search_rank_ready() ? ST_SEARCH : ST_SEARCH_BM25;
	int64_t		 page = 1, before = 0, oldest;
	int		 n, more, older, unindexed;

	if (*r->fields[QF_PAGE].value != '\0')
		parse_int64(r->fields[QF_PAGE].value, 1, SEARCH_PAGES, &page);
	if (*r->fields[QF_BEFORE].value != '\0')
		parse_int64(r->fields[QF_BEFORE].value, 1, INT64_MAX, &before);
	if (search_number(r, q))
		return;
	page_vars(r, &tv);
	tv_set(&tv, "q", q);
	if (*q == '\0' || (match = fts_query(r, q, &prefixed)) == NULL) {
		if (*q != '\0')
			tv_set(&tv, "form_message", "Type a word to search "
			    "for: a name, an address, or a word of a "
			    "question or reply.");
		page_render(r, 200, "Search", "admin_search.html", &tv);
		return;
	}
	/* Changes are indexed when the index is read (search_index.c), a
	 * bounded amount per search; if that fails, the index as it stands
	 * is still worth searching. */
	if (search_index_pending(SEARCH_PAGE_CHUNKS, &unindexed) < 0)
		tv_set(&tv, "form_message", "The newest changes to orders could "
		    "not be made searchable just now: these results may miss "
		    "them. Try again in a moment.");
	else if (unindexed)
		tv_set(&tv, "form_message", "Many orders changed at once (an "
		    "import?) and are still being made searchable: these "
		    "results may miss some. Each search indexes more of them; "
		    "\"pmbctl search index\" indexes them all.");
	if ((match = search_choose(match, prefixed, before > 0 ? before - 1 :
	    INT64_MAX, &oldest, &older)) == NULL || (s = db_stmt(st)) == NULL ||
	    !db_bind(s, "tiiii", match, oldest, before > 0 ? before - 1 :
	    INT64_MAX, (int64_t)SEARCH_PAGE + 1, (page - 1) * SEARCH_PAGE) ||
	    (n = result_rows(r, &tv, st, s, &more)) < 0) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	tv_set(&tv, "searched", "1");
	tv_set(&tv, "empty", n == 0 ? "1" : "");
	tv_set(&tv, "window", req_printf(r, "%d", SEARCH_WINDOW));
	tv_set(&tv, "windowed", older ? "1" : "");
	tv_set(&tv, "paged", before > 0 ? "1" : "");
	if (before > 0)
		tv_set(&tv, "newest", search_url(r, q, 0, 1));
	if (page > 1)
		tv_set(&tv, "prev", search_url(r, q, before, page - 1));
	if (more && page < SEARCH_PAGES)
		tv_set(&tv, "next", search_url(r, q, before, page + 1));
	if (older)
		tv_set(&tv, "older", search_url(r, q, oldest, 1));
	tv_set(&tv, "first", req_printf(r, "%lld",
	    (long long)((page - 1) * SEARCH_PAGE + 1)));
	page_render(r, 200, "Search", "admin_search.html", &tv);
}
