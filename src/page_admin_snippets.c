/* page_admin_snippets.c: GET|POST /admin/snippets, GET|POST
 * /admin/snippets/ID and POST /admin/snippets/ID/delete — the saved
 * reply snippets that the order page inserts into a draft. Every change
 * is one transaction with its audit row. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "page.h"
#include "router.h"

#define SNIPPETS_MAX	1000	/* shown on the list page */
/* The 404 page's text for a snippet id with no snippet. */
#define SNIPPET_GONE	"There is no snippet with this number. It may " \
			"have been deleted."

/* The fields of the create and edit forms (an interface). */
const struct field snippet_fields[] = {
#define SF_TITLE	0
	{ "title", "the title", 1, 100, F_REQUIRED, NULL },
#define SF_BODY		1
	{ "body", "the text", 1, 10000, F_REQUIRED | F_MULTILINE, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The texts of ?done=, after a change (page_done_notice). */
static const char *const notices[] = {
	"created", "Snippet saved.",
	"updated", "Snippet updated.",
	"deleted", "Snippet deleted.",
	NULL
};

/* Parses the snippet id of the path into *id. Returns 1, or answers 404
 * and returns 0. */
static int
snippet_id(struct request *r, int64_t *id)
{
	if (r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, id))
		return 1;
	page_error(r, 404, "No such snippet", SNIPPET_GONE);
	return 0;
}

/* Adds the snippets to tv as the list rows; returns how many, or -1 on a
 * database error. */
static int
snippet_rows(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_SNIPPETS_PAGE);
	int		 rc, n = 0;

	if (s == NULL || !db_bind(s, "i", (int64_t)SNIPPETS_MAX))
		return -1;
	while ((rc = db_step(ST_SNIPPETS_PAGE)) == DB_ROW) {
		struct tvars *row = tv_row(tv, "rows");

		n++;
		tv_set(row, "id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "title", req_strdup(r, db_text(s, 1)));
		tv_set(row, "excerpt", req_strdup(r, db_text(s, 2)));
		tv_set(row, "updated", page_time(r,
		    sqlite3_column_int64(s, 3)));
	}
	db_done(ST_SNIPPETS_PAGE);
	return rc == DB_ERROR ? -1 : n;
}

/* Renders the list with the create form, holding what was typed when the
 * request posted one; notice and error go on top. */
static void
list_view(struct request *r, int status, const char *notice,
    const char *error)
{
	struct tvars tv = { .n = 0 };

	if (!page_list_vars(r, &tv, snippet_rows(r, &tv)))
		return;
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	if (r->route->fields == snippet_fields)
		page_form_vars(r, &tv, snippet_fields);
	page_render(r, status, "Snippets", "admin_snippets.html", &tv);
}

/* Renders the edit form of snippet id with title and body (what was
 * typed, or what is stored); notice and error go on top. */
static void
edit_view(struct request *r, int status, int64_t id, const char *title,
    const char *body, const char *notice, const char *error)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	tv_set(&tv, "id", req_printf(r, "%lld", (long long)id));
	tv_set(&tv, "title", title);
	tv_set(&tv, "body", body);
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	if (r->fields != NULL && r->route->fields == snippet_fields) {
		tv_set(&tv, "err_title", r->fields[SF_TITLE].error);
		tv_set(&tv, "err_body", r->fields[SF_BODY].error);
	}
	page_render(r, status, "Edit snippet", "admin_snippet.html", &tv);
}

/* Loads snippet id's title and body (owned by the request). Returns 1,
 * 0 when there is none, -1 on a database error. */
static int
snippet_load(struct request *r, int64_t id, const char **title,
    const char **body)
{
	sqlite3_stmt	*s = db_stmt(ST_SNIPPET_BY_ID);
	int		 rc;

	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	rc = db_step(ST_SNIPPET_BY_ID);
	if (rc == DB_ROW) {
		*title = req_strdup(r, db_text(s, 0));
		*body = req_strdup(r, db_text(s, 1));
	}
	db_done(ST_SNIPPET_BY_ID);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Returns the first field error of the form, or NULL. A missing or
 * stale security token counts as one: the form comes back with what was
 * typed and a fresh token. */
static const char *
form_problem(struct request *r, int *status)
{
	if (!r->csrf_ok) {
		*status = 403;
		return "This form could not be accepted because its security "
		    "token was missing or had expired. Nothing was saved; "
		    "your text is below: send it again.";
	}
	*status = 400;
	return r->nerrors > 0 ? "Please correct the fields marked below." :
	    NULL;
}

/* GET /admin/snippets */
void
page_admin_snippets(struct request *r)
{
	list_view(r, 200, page_done_notice(r, notices), NULL);
}

/* POST /admin/snippets: creates a snippet. */
void
page_admin_snippet_create(struct request *r)
{
	const char	*title = r->fields[SF_TITLE].value;
	const char	*why;
	int		 status;
	int64_t		 now = now_unix();

	if ((why = form_problem(r, &status)) != NULL) {
		list_view(r, status, NULL, why);
		return;
	}
	if (!db_begin())
		goto fail;
	if (db_run(ST_SNIPPET_INSERT, "tti", title, r->fields[SF_BODY].value,
	    now) != DB_DONE || !audit_log(r, r->session->user_id,
	    "create snippet", 0, req_printf(r, "#%lld %s",
	    (long long)db_last_id(), title))) {
		db_rollback();
		goto fail;
	}
	if (!db_commit())
		goto fail;
	http_redirect(r, "/admin/snippets?done=created");
	return;
fail:
	list_view(r, 503, NULL, "The snippet could not be saved. Your text "
	    "is below; please try again.");
}

/* GET /admin/snippets/ID: the edit form. */
void
page_admin_snippet(struct request *r)
{
	const char	*title, *body;
	int64_t		 id;

	if (!snippet_id(r, &id) || !page_found(r, snippet_load(r, id, &title,
	    &body), "No such snippet", SNIPPET_GONE))
		return;
	edit_view(r, 200, id, title, body, page_done_notice(r, notices), NULL);
}

/* POST /admin/snippets/ID: saves the edit form. */
void
page_admin_snippet_update(struct request *r)
{
	const char	*title = r->fields[SF_TITLE].value;
	const char	*body = r->fields[SF_BODY].value;
	const char	*why;
	int		 status, rc;
	int64_t		 id;

	if (!snippet_id(r, &id))
		return;
	if ((why = form_problem(r, &status)) != NULL) {
		edit_view(r, status, id, title, body, NULL, why);
		return;
	}
	if (!db_begin())
		goto fail;
	if ((rc = db_update(ST_SNIPPET_UPDATE, "ttii", title, body, now_unix(),
	    id)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		/* Deleted meanwhile: offer the text as a new snippet. */
		list_view(r, 404, NULL, "This snippet was deleted meanwhile. "
		    "Your text is in the form below: save it as a new "
		    "snippet.");
		return;
	}
	if (!audit_log(r, r->session->user_id, "edit snippet", 0,
	    req_printf(r, "#%lld %s", (long long)id, title)))
		goto rollback;
	if (!db_commit())
		goto fail;
	http_redirect(r, req_printf(r, "/admin/snippets/%lld?done=updated",
	    (long long)id));
	return;
rollback:
	db_rollback();
fail:
	edit_view(r, 503, id, title, body, NULL, "The snippet could not be "
	    "saved. Your text is below; please try again.");
}

/* POST /admin/snippets/ID/delete */
void
page_admin_snippet_delete(struct request *r)
{
	const char	*title, *body;
	int64_t		 id;
	int		 rc;

	if (!snippet_id(r, &id))
		return;
	if (!db_begin())
		goto fail;
	if ((rc = snippet_load(r, id, &title, &body)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		page_error(r, 404, "No such snippet", "There is no snippet "
		    "with this number. It may have been deleted already.");
		return;
	}
	if (db_run(ST_SNIPPET_DELETE, "i", id) != DB_DONE ||
	    !audit_log(r, r->session->user_id, "delete snippet", 0,
	    req_printf(r, "#%lld %s", (long long)id, title)))
		goto rollback;
	if (!db_commit())
		goto fail;
	http_redirect(r, "/admin/snippets?done=deleted");
	return;
rollback:
	db_rollback();
fail:
	page_unavailable(r);
}
