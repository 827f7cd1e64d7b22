/* page_admin_audit.c: GET /admin/audit — the audit rows, newest first:
 * who, when, what, which order, from which IP. Keyset paging by id
 * (?before=ID), so an old page reads no more rows than the first. */
#include <string.h>

#include "db.h"
#include "page.h"

#define AUDIT_PAGE	50

/* Returns NULL if v is a row id. */
static const char *
check_before(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, INT64_MAX, &n) ? NULL :
	    "The page cursor is not valid.";
}

/* The query fields of GET /admin/audit (an interface). */
const struct field audit_fields[] = {
#define AF_BEFORE	0
	{ "before", "the page cursor", 0, 20, 0, check_before },
	FIELDS_END
};

/* GET /admin/audit */
void
page_admin_audit(struct request *r)
{
	const char	*before = r->fields[AF_BEFORE].value;
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s;
	int64_t		 below = INT64_MAX, last = 0;
	int		 n = 0, more = 0, rc;

	if (*before != '\0')
		parse_int64(before, 1, INT64_MAX, &below);
	if ((s = db_stmt(ST_AUDIT_PAGE)) == NULL || !db_bind(s, "ii", below,
	    (int64_t)AUDIT_PAGE + 1)) {
		page_unavailable(r);
		return;
	}
	while ((rc = db_step(ST_AUDIT_PAGE)) == DB_ROW) {
		struct tvars	*row;
		int64_t		 oid = sqlite3_column_int64(s, 4);

		if (n == AUDIT_PAGE) {
			more = 1;
			break;
		}
		n++;
		last = sqlite3_column_int64(s, 0);
		row = tv_row(&tv, "rows");
		tv_set(row, "id", req_printf(r, "%lld", (long long)last));
		tv_set(row, "at", page_time(r, sqlite3_column_int64(s, 1)));
		tv_set(row, "who", req_strdup(r, *db_text(s, 2) ?
		    db_text(s, 2) : "client or system"));
		tv_set(row, "action", req_strdup(r, db_text(s, 3)));
		if (oid > 0) {
			tv_set(row, "order_id", req_printf(r, "%lld",
			    (long long)oid));
			tv_set(row, "number", req_strdup(r, db_text(s, 5)));
		}
		tv_set(row, "ip", req_strdup(r, db_text(s, 6)));
		tv_set(row, "detail", req_strdup(r, db_text(s, 7)));
	}
	db_done(ST_AUDIT_PAGE);
	if (!page_list_vars(r, &tv, rc == DB_ERROR ? -1 : n))
		return;
	tv_set(&tv, "paged", *before != '\0' ? "1" : "");
	if (more)
		tv_set(&tv, "next", req_printf(r, "/admin/audit?before=%lld",
		    (long long)last));
	page_render(r, 200, "Audit log", "admin_audit.html", &tv);
}
