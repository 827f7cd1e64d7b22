/* router.c: every URL of the site in one table, and the front-line gate
 * that runs before any handler: route (404), method (405), body size
 * (413), parsing (400), store (503), fields (400). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "auth.h"
#include "db.h"
#include "page.h"
#include "page_privacy.h"
#include "router.h"
#include "upload.h"

/* The dispatch table: find any page by its URL here. The URLs and the
 * field names of the tables are interfaces: keep them. */
static const struct route routes[] = {
	{ "/", M_GET, page_home, NULL, R_DBSOFT },
	{ "/terms", M_GET, page_terms, NULL, 0 },
	{ "/privacy", M_GET, page_privacy, NULL, 0 },
	{ "/healthz", M_GET, page_healthz, NULL, R_DB | R_NOSTORE },
	{ "/ask", M_GET, page_ask, NULL, 0 },
	{ "/ask", M_POST, page_ask_submit, ask_fields,
	    R_DB | R_FORM | R_CSRF | R_FILES },
	{ "/o/*", M_GET, page_track, track_view_fields,
	    R_DB | R_SECRET | R_NOSTORE },
	{ "/o/*/files/*", M_GET, page_track_file, NULL,
	    R_DB | R_SECRET | R_NOSTORE },
	{ "/o/*/pay", M_POST, page_pay, pay_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	{ "/o/*/rating", M_POST, page_rating_submit, rating_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	{ "/o/*/testimonial", M_POST, page_testimonial_submit,
	    testimonial_fields, R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	{ "/r/*", M_GET, page_refund, NULL, R_DB | R_SECRET | R_NOSTORE },
	{ "/r/*", M_POST, page_refund_submit, refund_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	{ "/o/*/messages", M_POST, page_track_message, track_message_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF | R_FILES },
	{ "/o/*/viewed", M_POST, page_track_viewed, track_viewed_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	/* A closed order's "Delete my data" (page_privacy.c). */
	{ "/o/*/erasure", M_POST, page_erasure_submit, erasure_fields,
	    R_DB | R_SECRET | R_NOSTORE | R_FORM | R_CSRF },
	{ "/lost", M_GET, page_lost, NULL, 0 },
	{ "/lost", M_POST, page_lost_submit, lost_fields,
	    R_DB | R_FORM | R_CSRF },
	/* Stripe's webhook: JSON kept raw for its signature, no CSRF. */
	{ "/hooks/stripe", M_POST, page_stripe_hook, NULL,
	    R_DB | R_NOSTORE | R_RAWBODY },

	/* The consultant's pages. */
	{ "/admin/login", M_GET, page_admin_login, NULL, R_DB | R_NOSTORE },
	{ "/admin/login", M_POST, page_admin_login_submit, login_fields,
	    R_DB | R_NOSTORE | R_FORM | R_CSRF },
	{ "/admin/logout", M_POST, page_admin_logout, NULL,
	    R_DB | R_ADMIN | R_CSRF },
	{ "/admin", M_GET, page_admin_queue, queue_fields, R_DB | R_ADMIN },
	{ "/admin/orders/*", M_GET, page_admin_order, NULL, R_DB | R_ADMIN },
	{ "/admin/orders/*/paid", M_POST, page_admin_paid, paid_fields,
	    R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/orders/*/claim", M_POST, page_admin_claim, NULL,
	    R_DB | R_ADMIN | R_CSRF },
	{ "/admin/orders/*/release", M_POST, page_admin_release, NULL,
	    R_DB | R_ADMIN | R_CSRF },
	{ "/admin/orders/*/draft", M_POST, page_admin_draft, reply_fields,
	    R_DB | R_ADMIN | R_CSRF | R_FORM | R_FILES },
	{ "/admin/orders/*/reply", M_POST, page_admin_reply, reply_fields,
	    R_DB | R_ADMIN | R_CSRF | R_FORM | R_FILES },
	{ "/admin/orders/*/note", M_POST, page_admin_note, note_fields,
	    R_DB | R_ADMIN | R_CSRF | R_FORM | R_FILES },
	{ "/admin/orders/*/files/*/remove", M_POST,
	    page_admin_draft_file_remove, NULL, R_DB | R_ADMIN | R_CSRF },
	{ "/admin/orders/*/cancel", M_POST, page_admin_cancel, cancel_fields,
	    R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/orders/*/refund", M_POST, page_admin_surplus_refund,
	    surplus_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	/* Privacy (issue 20): the client's data as one JSON download. */
	{ "/admin/orders/*/export", M_POST, page_admin_privacy_export,
	    privacy_export_fields, R_DB | R_ADMIN | R_CSRF },
	/* The erase's confirmation step and the erase (page_privacy.c). */
	{ "/admin/orders/*/erase", M_GET, page_admin_erase, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/orders/*/erase", M_POST, page_admin_erase_submit,
	    erase_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/snippets", M_GET, page_admin_snippets, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/snippets", M_POST, page_admin_snippet_create,
	    snippet_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/snippets/*", M_GET, page_admin_snippet, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/snippets/*", M_POST, page_admin_snippet_update,
	    snippet_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/snippets/*/delete", M_POST, page_admin_snippet_delete,
	    NULL, R_DB | R_ADMIN | R_CSRF },
	{ "/admin/search", M_GET, page_admin_search, search_fields,
	    R_DB | R_ADMIN },
	{ "/admin/dashboard", M_GET, page_admin_dashboard, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/dashboard.svg", M_GET, page_admin_dashboard_svg, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/export.csv", M_GET, page_admin_export_csv, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/export-ledger.csv", M_GET, page_admin_export_ledger_csv,
	    NULL, R_DB | R_ADMIN },
	{ "/admin/audit", M_GET, page_admin_audit, audit_fields,
	    R_DB | R_ADMIN },
	{ "/admin/refunds", M_GET, page_admin_refunds, NULL, R_DB | R_ADMIN },
	{ "/admin/testimonials", M_GET, page_admin_testimonials, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/testimonials/*", M_POST, page_admin_testimonial_decide,
	    testimonial_decide_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/files/*", M_GET, page_admin_file, NULL, R_DB | R_ADMIN },
	{ "/admin/outbox", M_GET, page_admin_outbox, outbox_fields,
	    R_DB | R_ADMIN },
	{ "/admin/outbox/*", M_GET, page_admin_outbox_message, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/outbox/*/retry", M_POST, page_admin_outbox_retry, NULL,
	    R_DB | R_ADMIN | R_CSRF },
	/* Mail that came in and waits for the consultant (issue 18). */
	{ "/admin/inbox", M_GET, page_admin_inbox, inbox_fields,
	    R_DB | R_ADMIN },
	{ "/admin/inbox/*", M_GET, page_admin_inbox_message, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/inbox/*/raw", M_GET, page_admin_inbox_raw, NULL,
	    R_DB | R_ADMIN },
	{ "/admin/inbox/*/attach", M_POST, page_admin_inbox_attach,
	    inbox_attach_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/inbox/*/discard", M_POST, page_admin_inbox_discard,
	    inbox_discard_fields, R_DB | R_ADMIN | R_CSRF },
	{ "/admin/refunds/*/refunded", M_POST, page_admin_refunded,
	    refunded_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/refunds/*/decline", M_POST, page_admin_decline,
	    decline_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
	{ "/admin/refunds/*/retry", M_POST, page_admin_refund_retry,
	    retry_fields, R_DB | R_ADMIN | R_CSRF | R_FORM },
};

/* Matches path against pattern; on a match returns 1 and puts the
 * segments of its wildcards (two at most) in arg[0] and arg[1] (to
 * free; NULL when the pattern has fewer). */
static int
route_match(const char *pattern, const char *path, char *arg[2])
{
	int n = 0;

	arg[0] = arg[1] = NULL;
	while (*pattern != '\0' && *path != '\0') {
		if (*pattern == '*') {
			const char *end = strchr(path, '/');

			if (end == NULL)
				end = path + strlen(path);
			if (end == path || n == 2)
				break;
			arg[n++] = xstrndup(path, (size_t)(end - path));
			path = end;
			pattern++;
			continue;
		}
		if (*pattern != *path)
			break;
		pattern++;
		path++;
	}
	if (*pattern == '\0' && *path == '\0')
		return 1;
	free(arg[0]);
	free(arg[1]);
	arg[0] = arg[1] = NULL;
	return 0;
}

/* Derives the request's path from REQUEST_URI (or PATH_INFO). Returns
 * 0, or 400 when it is malformed. */
static int
req_path(struct request *r)
{
	const char	*uri = req_env(r, "REQUEST_URI");
	size_t		 n;

	if (uri == NULL || *uri == '\0') {
		uri = req_env(r, "PATH_INFO");
		if (uri == NULL || *uri == '\0')
			uri = "/";
	}
	n = strcspn(uri, "?#");
	if (n > HTTP_MAX_URI)
		return 414;
	if ((r->path = url_decode(uri, n, 0)) == NULL || has_ctl(r->path) ||
	    r->path[0] != '/')
		return 400;
	return 0;
}

/* Answers an error found by the gate. */
static void
gate_error(struct request *r, int status, const char *why)
{
	switch (status) {
	case 404:
		page_error(r, 404, "Page not found", "There is no page at "
		    "this address. If you followed a link from an email, "
		    "check that the whole link was copied.");
		break;
	case 405:
		page_error(r, 405, "Method not allowed", why);
		break;
	case 413:
		page_error(r, 413, "Too much to send", why);
		break;
	case 414:
		page_error(r, 414, "Address too long", "The address of this "
		    "request is too long.");
		break;
	case 415:
		page_error(r, 415, "Unsupported form", why);
		break;
	case 503:
		page_error(r, 503, "Please try again", why);
		break;
	default:
		page_error(r, 400, "Bad request", why);
		break;
	}
}

/* Finds the route of r's path and method in the table, sets r->route,
 * r->arg and r->head; returns the route, or NULL after answering 404
 * (no such address) or 405 with Allow (not that method). */
static const struct route *
gate_route(struct request *r)
{
	const struct route	*rt = NULL;
	unsigned		 allow = 0, want = 0;

	if (strcmp(r->method, "HEAD") == 0) {
		r->head = 1;
		want = M_GET;
	} else if (strcmp(r->method, "GET") == 0)
		want = M_GET;
	else if (strcmp(r->method, "POST") == 0)
		want = M_POST;
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		char *arg[2];

		if (!route_match(routes[i].pattern, r->path, arg))
			continue;
		allow |= routes[i].method;
		if (rt == NULL && routes[i].method == want) {
			rt = &routes[i];
			r->arg = arg[0];
			r->arg2 = arg[1];
		} else {
			free(arg[0]);
			free(arg[1]);
		}
	}
	if (allow == 0) {
		gate_error(r, 404, NULL);
		return NULL;
	}
	if (rt == NULL) {
		http_header(r, "Allow", (allow & M_GET) && (allow & M_POST) ?
		    "GET, HEAD, POST" : (allow & M_GET) ? "GET, HEAD" : "POST");
		gate_error(r, 405, "This address does not answer that kind "
		    "of request.");
		return NULL;
	}
	r->route = rt;
	if (rt->flags & R_NOSTORE)
		r->nostore = 1;
	return rt;
}

/* Opens the store if route rt needs it (R_DBSOFT: goes on without it
 * when it cannot be opened) and loads the staff session if it is a
 * staff page; returns 1, or 0 after answering (503 when the store
 * cannot be used, the sign-in page or 403 without a session). */
static int
gate_store_session(struct request *r, const struct route *rt)
{
	int rc;

	if ((rt->flags & (R_DB | R_DBSOFT)) && db_handle() == NULL) {
		char err[256];

		if (!db_open(conf.database, 0, err, sizeof(err)) ||
		    !db_check_version(err, sizeof(err))) {
			log_msg("db: %s", err);
			db_close();
			if (rt->flags & R_DBSOFT)
				return 1;
			page_unavailable(r);
			return 0;
		}
	}
	if (!(rt->flags & R_ADMIN))
		return 1;
	if ((rc = session_load(r)) < 0) {
		page_unavailable(r);
		return 0;
	}
	if (rc == 0) {
		admin_signed_out(r);
		return 0;
	}
	r->nostore = 1;
	return 1;
}

/* Answers 400 with the invalid fields listed (for non-form routes). */
static void
gate_fields(struct request *r, const struct route *rt)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, "Some of what was sent is not valid:");
	for (size_t i = 0; rt->fields[i].name != NULL; i++)
		if (r->fields[i].error != NULL)
			buf_printf(&b, " %s", r->fields[i].error);
	page_error(r, 400, "Bad request", req_keep(r, buf_take(&b)));
}

int
router_dispatch(struct request *r)
{
	const struct route	*rt;
	const char		*why = NULL;
	int			 rc;

	r->remote_addr = req_env(r, "REMOTE_ADDR");
	if (r->remote_addr == NULL)
		r->remote_addr = "";
	r->method = req_env(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "GET";
	if ((rc = req_path(r)) != 0) {
		gate_error(r, rc, "The address holds malformed "
		    "percent-encoding or text that is not valid UTF-8.");
		return r->status;
	}
	/* The web server refused the body already (conf/nginx*.conf). */
	if ((why = req_env(r, "PMB_GATE_ERROR")) != NULL &&
	    strcmp(why, "413") == 0) {
		gate_error(r, 413, "The request is larger than this site "
		    "accepts.");
		return r->status;
	}
	if ((rt = gate_route(r)) == NULL)
		return r->status;
	r->raw_body = (rt->flags & R_RAWBODY) != 0;
	r->files_ok = (rt->flags & R_FILES) != 0;
	r->files_max = upload_body_limit();
	if ((rc = req_parse(r, &why)) != 0 || (r->multipart &&
	    (rc = upload_read(r, r->body_len, &why)) != 0)) {
		gate_error(r, rc, why);
		return r->status;
	}
	if (!gate_store_session(r, rt))
		return r->status;
	if ((rt->flags & R_CSRF) && !(r->csrf_ok = csrf_check(r)) &&
	    !(rt->flags & R_FORM)) {
		page_csrf_failed(r);
		return r->status;
	}
	req_validate(r, rt->fields);
	if (r->nerrors > 0 && !(rt->flags & R_FORM)) {
		gate_fields(r, rt);
		return r->status;
	}
	rt->handler(r);
	if (db_handle() != NULL && !sqlite3_get_autocommit(db_handle())) {
		log_msg("db: a handler left a transaction open");
		db_rollback();
	}
	if (!r->opened) {
		log_msg("handler for %s answered nothing", rt->pattern);
		page_fail(r);
	}
	return r->status;
}

void
router_log(const struct request *r)
{
	struct buf	 b;
	const char	*p;
	char		 num[INT_TEXT_MAX];
	size_t		 from;
	int64_t		 tenths;

	if (!conf.log_requests)
		return;
	/* "%s %s %d %.1fms": method, path, status, milliseconds, made
	 * without printf. */
	buf_init(&b);
	buf_puts(&b, r->method ? r->method : "-");
	buf_putc(&b, ' ');
	from = b.len;
	if (r->path == NULL)
		buf_puts(&b, "-");
	else if (r->route != NULL && (r->route->flags & R_SECRET) &&
	    r->arg != NULL && (p = strstr(r->path, r->arg)) != NULL) {
		buf_append(&b, r->path, (size_t)(p - r->path));
		buf_puts(&b, "[token]");
		buf_puts(&b, p + strlen(r->arg));
	} else {
		/* Unknown paths: mask any long segment, it may be a token. */
		for (p = r->path; *p != '\0';) {
			size_t n = strcspn(p + 1, "/") + 1;

			if (n > 24)
				buf_puts(&b, "/[masked]");
			else
				buf_append(&b, p, n);
			p += n;
		}
	}
	for (size_t i = from; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f ||
		    b.data[i] == ' ')
			b.data[i] = '?';
	buf_putc(&b, ' ');
	buf_puts(&b, int_text(num, r->status));
	buf_putc(&b, ' ');
	tenths = (int64_t)((now_ms() - r->t0) * 10 + 0.5);
	buf_puts(&b, int_text(num, tenths / 10));
	buf_putc(&b, '.');
	buf_puts(&b, int_text(num, tenths % 10));
	buf_puts(&b, "ms");
	log_text(b.data);
	buf_free(&b);
}
