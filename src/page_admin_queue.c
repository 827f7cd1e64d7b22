/* page_admin_queue.c: GET /admin — the reply queue, most urgent first,
 * with status filters and keyset paging (page 1,000 reads no more rows
 * than page 1). */
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "order.h"
#include "page.h"

#define QUEUE_PAGE	50

static const char *const filters[] = { "waiting", "awaiting_payment",
    "paid", "followup", "answered", "refund_requested", "refunded",
    "cancelled", "erasure", "all" };
/* The filters that are counted (QUEUE_COUNTS), by their place above. */
#define F_WAITING	0
#define F_AWAITING	1
#define F_PAID		2
#define F_FOLLOWUP	3
#define F_REFUND	5
#define F_ERASURE	8	/* the client asked for their data to be
				 * erased (page_privacy.c) */
#define NOT_COUNTED	(-1)
#define COUNT_CAP	100	/* counts stop here: "99+" */

/* Returns NULL if v is a known filter. */
static const char *
check_filter(const char *v)
{
	for (size_t i = 0; i < ARRAY_LEN(filters); i++)
		if (strcmp(filters[i], v) == 0)
			return NULL;
	return "Unknown status filter.";
}

/* Parses a cursor "DUE.ID" into its parts; returns 1 or 0. */
static int
parse_cursor(const char *v, int64_t *due, int64_t *id)
{
	char		 a[24];
	const char	*dot = strchr(v, '.');
	size_t		 n;

	if (dot == NULL || (n = (size_t)(dot - v)) == 0 || n >= sizeof(a))
		return 0;
	memcpy(a, v, n);
	a[n] = '\0';
	return parse_int64(a, -1, INT64_MAX, due) &&
	    parse_int64(dot + 1, 0, INT64_MAX, id);
}

/* Returns NULL if v is a valid cursor. */
static const char *
check_cursor(const char *v)
{
	int64_t d, i;

	return parse_cursor(v, &d, &i) ? NULL : "The page cursor is not "
	    "valid.";
}

/* The query fields of GET /admin (an interface). */
const struct field queue_fields[] = {
#define QF_STATUS	0
	{ "status", "the status filter", 0, 20, 0, check_filter },
#define QF_AFTER	1
	{ "after", "the page cursor", 0, 42, 0, check_cursor },
	FIELDS_END
};

/* Returns the first line of s, owned by the request. */
static const char *
first_line(struct request *r, const char *s)
{
	size_t n = strcspn(s, "\r\n");

	if (n > 120) {
		n = 120;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
		return req_printf(r, "%.*s…", (int)n, s);
	}
	return req_printf(r, "%.*s", (int)n, s);
}

/* Reads the open erasure requests, up to COUNT_CAP, into *n. Returns 1,
 * or 0 on a database error. */
static int
erasure_count(int64_t *n)
{
	sqlite3_stmt	*s = db_stmt(ST_ERASURE_COUNT);
	int		 rc;

	*n = 0;
	if (s == NULL || !db_bind(s, "i", (int64_t)COUNT_CAP))
		return 0;
	if ((rc = db_step(ST_ERASURE_COUNT)) == DB_ROW)
		*n = sqlite3_column_int64(s, 0);
	db_done(ST_ERASURE_COUNT);
	return rc == DB_ROW;
}

/* Fills count[] (one per filter, NOT_COUNTED for those not counted)
 * with the number of orders of each status that asks for work; waiting
 * is paid and follow-up; and the open erasure requests. Returns 1, or 0
 * on a database error. */
static int
queue_counts(int64_t count[ARRAY_LEN(filters)])
{
	sqlite3_stmt	*s = db_stmt(ST_QUEUE_COUNTS);
	int		 rc;

	for (size_t i = 0; i < ARRAY_LEN(filters); i++)
		count[i] = NOT_COUNTED;
	count[F_WAITING] = count[F_AWAITING] = count[F_PAID] =
	    count[F_FOLLOWUP] = count[F_REFUND] = 0;
	if (s == NULL || !db_bind(s, "i", (int64_t)COUNT_CAP))
		return 0;
	if ((rc = db_step(ST_QUEUE_COUNTS)) == DB_ROW) {
		count[F_PAID] = sqlite3_column_int64(s, 0);
		count[F_FOLLOWUP] = sqlite3_column_int64(s, 1);
		count[F_AWAITING] = sqlite3_column_int64(s, 2);
		count[F_REFUND] = sqlite3_column_int64(s, 3);
	}
	db_done(ST_QUEUE_COUNTS);
	count[F_WAITING] = count[F_PAID] + count[F_FOLLOWUP];
	return rc == DB_ROW && erasure_count(&count[F_ERASURE]);
}

/* Returns a filter's count as shown: "15", or "99+" from COUNT_CAP on
 * (the counts stop there: see QUEUE_COUNTS), owned by the request. */
static const char *
count_text(struct request *r, int64_t n)
{
	return n >= COUNT_CAP ? req_printf(r, "%d+", COUNT_CAP - 1) :
	    req_printf(r, "%lld", (long long)n);
}

/* Adds the filter links to tv, each with its count when it has one, the
 * current one marked; and, for an empty first page of the default view,
 * what still waits elsewhere (orders to be paid, refund requests), or
 * "All caught up" when nothing does. */
static void
queue_filters(struct request *r, struct tvars *tv, const char *filter,
    const int64_t count[ARRAY_LEN(filters)], int empty_waiting)
{
	int64_t	 a = count[F_AWAITING], f = count[F_REFUND],
		 e = count[F_ERASURE];

	for (size_t i = 0; i < ARRAY_LEN(filters); i++) {
		struct tvars *row = tv_row(tv, "filters");

		tv_set(row, "status", filters[i]);
		tv_set(row, "label", !strcmp(filters[i], "waiting") ?
		    "Waiting" : !strcmp(filters[i], "all") ? "All" :
		    i == F_ERASURE ? "Erasure requests" :
		    order_status_label(filters[i]));
		if (count[i] != NOT_COUNTED)
			tv_set(row, "count", count_text(r, count[i]));
		if (!strcmp(filters[i], filter))
			tv_set(row, "current", "1");
	}
	if (!empty_waiting)
		return;
	tv_set(tv, "waiting_view", "1");
	if (a == 0 && f == 0 && e == 0) {
		tv_set(tv, "caught_up", "1");
		return;
	}
	tv_set(tv, "still", "1");
	if (a > 0)
		tv_set(tv, "awaiting", req_printf(r, "%s %s payment",
		    count_text(r, a), a == 1 ? "order awaits" :
		    "orders await"));
	if (f > 0)
		tv_set(tv, "refunds", req_printf(r, "%s refund %s",
		    count_text(r, f), f == 1 ? "request waits" :
		    "requests wait"));
	if (e > 0)
		tv_set(tv, "erasures", req_printf(r, "%s erasure %s",
		    count_text(r, e), e == 1 ? "request waits" :
		    "requests wait"));
}

/* The rows of a queue page, by order id, for their flags. */
struct page_rows {
	int64_t		 id[QUEUE_PAGE];
	struct tvars	*row[QUEUE_PAGE];
	int		 n;
	int64_t		 lo, hi;	/* the smallest and largest id */
};

/* The flag of a row whose client's email bounced: the subject of the
 * newest such email (QUEUE_BOUNCED's second column). */
static const char *
bounced_flag(struct request *r, sqlite3_stmt *s)
{
	return req_strdup(r, db_text(s, 1));
}

/* The flag of a row whose client asked for their data to be erased:
 * the date they asked (ERASURE_QUEUE_FLAGS's second column). */
static const char *
erasure_flag(struct request *r, sqlite3_stmt *s)
{
	return page_date(r, sqlite3_column_int64(s, 1));
}

/* Flags the rows of p that statement st returns (its first column the
 * order id; bound to the page's smallest and largest id: one index range
 * per page, not a probe per row) with key, set to what flag makes of
 * the statement's row. Returns 1, or 0 on a database error. */
static int
queue_flags(struct request *r, const struct page_rows *p, enum stmt st,
    const char *key, const char *(*flag)(struct request *, sqlite3_stmt *))
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	if (p->n == 0)
		return 1;
	if (s == NULL || !db_bind(s, "ii", p->lo, p->hi))
		return 0;
	while ((rc = db_step(st)) == DB_ROW)
		for (int i = 0; i < p->n; i++)
			if (p->id[i] == sqlite3_column_int64(s, 0))
				tv_set(p->row[i], key, flag(r, s));
	db_done(st);
	return rc == DB_DONE;
}

/* Adds row (order id) to p. */
static void
page_rows_add(struct page_rows *p, int64_t id, struct tvars *row)
{
	if (p->n == 0 || id < p->lo)
		p->lo = id;
	if (p->n == 0 || id > p->hi)
		p->hi = id;
	p->id[p->n] = id;
	p->row[p->n++] = row;
}

/* Returns the statement of a filter's rows. */
static enum stmt
queue_stmt(const char *filter)
{
	return !strcmp(filter, "waiting") ? ST_QUEUE_WAITING :
	    !strcmp(filter, "all") ? ST_QUEUE_ALL :
	    !strcmp(filter, "erasure") ? ST_QUEUE_ERASURE : ST_QUEUE_STATUS;
}

/* GET /admin */
void
page_admin_queue(struct request *r)
{
	const char	*filter = r->fields[QF_STATUS].value;
	const char	*after = r->fields[QF_AFTER].value;
	struct tvars	 tv = { .n = 0 };
	struct page_rows pr = { .n = 0 };
	sqlite3_stmt	*s;
	enum stmt	 st;
	int64_t		 due = -1, id = 0, now = now_unix(), last_due = 0,
			 last_id = 0, count[ARRAY_LEN(filters)];
	int		 n = 0, more = 0, rc;

	if (*filter == '\0')
		filter = "waiting";
	if (*after != '\0')
		parse_cursor(after, &due, &id);
	st = queue_stmt(filter);
	if ((s = db_stmt(st)) == NULL || (st == ST_QUEUE_STATUS ?
	    !db_bind(s, "iiit", due, id, (int64_t)QUEUE_PAGE + 1, filter) :
	    !db_bind(s, "iii", due, id, (int64_t)QUEUE_PAGE + 1))) {
		page_unavailable(r);
		return;
	}
	while ((rc = db_step(st)) == DB_ROW) {
		struct tvars	*row;
		const char	*status = db_text(s, 4);
		int64_t		 odue = sqlite3_column_int64(s, 7);
		int		 open = !strcmp(status, "paid") ||
				    !strcmp(status, "followup");

		if (n == QUEUE_PAGE) {
			more = 1;
			break;
		}
		n++;
		row = tv_row(&tv, "rows");
		last_due = odue;
		last_id = sqlite3_column_int64(s, 0);
		page_rows_add(&pr, last_id, row);
		tv_set(row, "id", req_printf(r, "%lld", (long long)last_id));
		tv_set(row, "number", req_strdup(r, db_text(s, 1)));
		tv_set(row, "name", req_strdup(r, db_text(s, 2)));
		tv_set(row, "topic", req_strdup(r, db_text(s, 3)));
		tv_set(row, "status", order_status_text(r, status));
		tv_set(row, "age", page_duration(r, now -
		    sqlite3_column_int64(s, 5), DURATION_SHORT));
		tv_set(row, "claimed", req_strdup(r, db_text(s, 8)));
		tv_set(row, "first_line", first_line(r, db_text(s, 9)));
		if (open && odue < now) {
			tv_set(row, "overdue", page_duration(r, now - odue,
			    DURATION_SHORT));
		} else if (open)
			tv_set(row, "left", page_duration(r, odue - now,
			    DURATION_SHORT));
		if (!strcmp(status, "followup"))
			tv_set(row, "is_followup", "1");
		if (conf.refund_if_late && answered_late(sqlite3_column_int64(s,
		    6), sqlite3_column_int64(s, 10)))
			tv_set(row, "late", "1");
	}
	db_done(st);
	/* The rows' flags: bounced emails, erasure requests. */
	if (rc != DB_ERROR && (!queue_flags(r, &pr, ST_QUEUE_BOUNCED,
	    "bounced", bounced_flag) || !queue_flags(r, &pr,
	    ST_ERASURE_QUEUE_FLAGS, "erasure", erasure_flag)))
		rc = DB_ERROR;
	if (!page_list_vars(r, &tv, rc == DB_ERROR ? -1 : n))
		return;
	tv_set(&tv, "filter", filter);
	tv_set(&tv, "paged", *after != '\0' ? "1" : "");
	if (more)
		tv_set(&tv, "next", req_printf(r, "/admin?status=%s&after="
		    "%lld.%lld", filter, (long long)last_due,
		    (long long)last_id));
	if (!queue_counts(count)) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	queue_filters(r, &tv, filter, count, n == 0 && *after == '\0' &&
	    !strcmp(filter, "waiting"));
	page_render(r, 200, "Reply queue", "admin_queue.html", &tv);
}
