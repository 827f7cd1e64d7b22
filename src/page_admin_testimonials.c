/* page_admin_testimonials.c: GET /admin/testimonials and POST
 * /admin/testimonials/ID — the clients' quotes: pending ones to read,
 * approved ones on the landing page. The consultant approves, rejects
 * (or takes down) and edits the name shown; each change is one
 * transaction with its audit row. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "page.h"
#include "router.h"

#define TESTIMONIALS_MAX	200	/* shown per list */

/* Returns NULL if v is one of the form's actions. */
static const char *
check_action(const char *v)
{
	return !strcmp(v, "approve") || !strcmp(v, "reject") ||
	    !strcmp(v, "save") ? NULL : "Choose approve, reject or save.";
}

/* The fields of POST /admin/testimonials/ID (an interface). seen: the
 * sentence as the page showed it, so that only what was read is
 * approved. */
const struct field testimonial_decide_fields[] = {
#define DF_NAME		0
	{ "name_shown", "the name shown", 1, 60, F_REQUIRED, NULL },
#define DF_ACTION	1
	{ "action", "the action", 1, 7, F_REQUIRED, check_action },
#define DF_SEEN		2
	{ "seen", "the sentence read", 0, 300, 0, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The texts of ?done=, after a change (page_done_notice). */
static const char *const notices[] = {
	"approve", "Approved: it is on the home page.",
	"reject", "Rejected: it is not shown.",
	"save", "Name saved.",
	NULL
};

/* Adds the testimonials of status to tv as list key; returns how many,
 * or -1 on a database error. */
static int
testimonial_rows(struct request *r, struct tvars *tv, const char *key,
    const char *status)
{
	sqlite3_stmt	*s = db_stmt(ST_TESTIMONIALS_BY_STATUS);
	int		 rc, n = 0;

	if (s == NULL || !db_bind(s, "ti", status, (int64_t)TESTIMONIALS_MAX))
		return -1;
	while ((rc = db_step(ST_TESTIMONIALS_BY_STATUS)) == DB_ROW) {
		struct tvars *row = tv_row(tv, key);

		n++;
		tv_set(row, "id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "order_id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 1)));
		tv_set(row, "client", req_strdup(r, db_text(s, 2)));
		tv_set(row, "business", req_strdup(r, db_text(s, 3)));
		tv_set(row, "sentence", req_strdup(r, db_text(s, 4)));
		tv_set(row, "name_shown", req_strdup(r, db_text(s, 5)));
		tv_set(row, "given", page_time(r, sqlite3_column_int64(s, 6)));
		tv_set(row, "decided", page_time(r,
		    sqlite3_column_int64(s, 7)));
	}
	db_done(ST_TESTIMONIALS_BY_STATUS);
	return rc == DB_ERROR ? -1 : n;
}

/* Renders the two lists, with notice or error on top. */
static void
list_view(struct request *r, int status, const char *notice,
    const char *error)
{
	struct tvars	tv = { .n = 0 };
	int		pending, approved = -1;

	if (!db_read_begin() ||
	    (pending = testimonial_rows(r, &tv, "pending", "pending")) < 0 ||
	    (approved = testimonial_rows(r, &tv, "approved", "approved")) < 0)
		pending = -1;
	db_read_end();
	if (!page_list_vars(r, &tv, pending))
		return;
	tv_set(&tv, "no_pending", pending == 0 ? "1" : "");
	tv_set(&tv, "no_approved", approved == 0 ? "1" : "");
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	page_render(r, status, "Testimonials", "admin_testimonials.html", &tv);
}

/* GET /admin/testimonials */
void
page_admin_testimonials(struct request *r)
{
	list_view(r, 200, page_done_notice(r, notices), NULL);
}

/* Carries out action on testimonial id in one transaction with its
 * audit row. Returns 1, 0 when the testimonial is gone or changed since
 * the page showed it (rolled back), -1 on a database error. */
static int
decide(struct request *r, int64_t id, const char *action)
{
	sqlite3_stmt	*s = db_stmt(ST_TESTIMONIAL_BY_ID);
	const char	*name = r->fields[DF_NAME].value;
	int64_t		 order_id = 0, now = now_unix();
	int		 rc = DB_ERROR;

	if (s == NULL || !db_begin())
		return -1;
	if (db_bind(s, "i", id) && (rc = db_step(ST_TESTIMONIAL_BY_ID)) ==
	    DB_ROW)
		order_id = sqlite3_column_int64(s, 0);
	else
		rc = rc == DB_DONE ? 0 : -1;

	db_done(ST_TESTIMONIAL_BY_ID);
	if (order_id == 0) {
		db_rollback();
		return rc;
	}
	if (!strcmp(action, "save"))
		rc = db_update(ST_TESTIMONIAL_RENAME, "tii", name, now, id);
	else
		rc = db_update(ST_TESTIMONIAL_DECIDE, "ttiiit",
		    !strcmp(action, "approve") ? "approved" : "rejected", name,
		    now, r->session->user_id, id, r->fields[DF_SEEN].value);
	if (rc < 0 || (rc == 0 && strcmp(action, "save") != 0)) {
		db_rollback();
		return rc;
	}
	if (rc > 0 && !audit_log(r, r->session->user_id, !strcmp(action,
	    "approve") ? "approve testimonial" : !strcmp(action, "reject") ?
	    "reject testimonial" : "rename testimonial", order_id, name)) {
		db_rollback();
		return -1;
	}
	return db_commit() ? 1 : -1;
}

/* POST /admin/testimonials/ID: approve, reject or save the name shown;
 * 303 to the list, which says what was done. */
void
page_admin_testimonial_decide(struct request *r)
{
	const char	*action = r->fields[DF_ACTION].value;
	int64_t		 id;
	int		 rc;

	if (r->arg == NULL || !parse_int64(r->arg, 1, INT64_MAX, &id)) {
		page_error(r, 404, "No such testimonial", "There is no "
		    "testimonial with this number.");
		return;
	}
	if (!r->csrf_ok || r->nerrors > 0) {
		list_view(r, !r->csrf_ok ? 403 : 400, NULL, !r->csrf_ok ?
		    "This form had expired, so nothing was changed. Please "
		    "try again." : "The name shown is 1 to 60 characters; "
		    "nothing was changed.");
		return;
	}
	if ((rc = decide(r, id, action)) < 0) {
		page_unavailable(r);
		return;
	}
	if (rc == 0) {
		list_view(r, 409, NULL, "That testimonial was changed by the "
		    "client, decided already, or taken back since this page "
		    "was shown. Nothing was changed: read it again below.");
		return;
	}
	http_redirect(r, req_printf(r, "/admin/testimonials?done=%s",
	    action));
}
