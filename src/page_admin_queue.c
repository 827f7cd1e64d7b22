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
    "cancelled", "all" };

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

/* GET /admin */
void
page_admin_queue(struct request *r)
{
	const char	*filter = r->fields[QF_STATUS].value;
	const char	*after = r->fields[QF_AFTER].value;
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s;
	enum stmt	 st;
	int64_t		 due = -1, id = 0, now = now_unix(), last_due = 0,
			 last_id = 0;
	int		 n = 0, more = 0, rc;

	if (*filter == '\0')
		filter = "waiting";
	if (*after != '\0')
		parse_cursor(after, &due, &id);
	st = !strcmp(filter, "waiting") ? ST_QUEUE_WAITING :
	    !strcmp(filter, "all") ? ST_QUEUE_ALL : ST_QUEUE_STATUS;
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
	if (!page_list_vars(r, &tv, rc == DB_ERROR ? -1 : n))
		return;
	tv_set(&tv, "filter", filter);
	tv_set(&tv, "paged", *after != '\0' ? "1" : "");
	if (more)
		tv_set(&tv, "next", req_printf(r, "/admin?status=%s&after="
		    "%lld.%lld", filter, (long long)last_due,
		    (long long)last_id));
	for (size_t i = 0; i < ARRAY_LEN(filters); i++) {
		struct tvars *f = tv_row(&tv, "filters");

		tv_set(f, "status", filters[i]);
		tv_set(f, "label", !strcmp(filters[i], "waiting") ? "Waiting" :
		    !strcmp(filters[i], "all") ? "All" :
		    order_status_label(filters[i]));
		if (!strcmp(filters[i], filter))
			tv_set(f, "current", "1");
	}
	page_render(r, 200, "Reply queue", "admin_queue.html", &tv);
}
