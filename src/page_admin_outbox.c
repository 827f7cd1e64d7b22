/* page_admin_outbox.c: GET /admin/outbox — the emails: queued, sent,
 * failed and bounced, with their errors and bounces, a page at a time —
 * GET /admin/outbox/ID — one email's headers and text — and POST
 * /admin/outbox/ID/retry. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "page.h"

#define OUTBOX_PAGE	100

/* Returns NULL if v is an outbox status filter (one of mail_statuses). */
static const char *
check_outbox_status(const char *v)
{
	for (size_t i = 0; i < MAIL_STATUSES; i++)
		if (strcmp(mail_statuses[i], v) == 0)
			return NULL;
	return "Unknown status filter.";
}

/* Returns NULL if v is a message id (the before field). */
static const char *
check_message_id(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, INT64_MAX, &n) ? NULL :
	    "Not a valid message number.";
}

/* The query fields of GET /admin/outbox (an interface): status filters;
 * before=ID lists the messages older than ID (the next page). */
const struct field outbox_fields[] = {
#define OF_STATUS	0
	{ "status", "the status filter", 0, 10, 0, check_outbox_status },
#define OF_BEFORE	1
	{ "before", "the page", 0, 20, 0, check_message_id },
	FIELDS_END
};

struct outbox_ctx {
	struct request	*r;
	struct tvars	*tv;
	int		 n;		/* rows listed so far */
	int64_t		 last;		/* the id of the last row listed */
};

/* Adds one outbox row to the page's rows (called by mail_list). */
static void
outbox_row(const struct mail_info *m, void *arg)
{
	struct outbox_ctx	*c = arg;
	struct request		*r = c->r;
	struct tvars		*row;

	/* One row beyond the page only tells that there is a next one. */
	if (++c->n > OUTBOX_PAGE)
		return;
	c->last = m->id;
	row = tv_row(c->tv, "rows");
	tv_set(row, "id", req_printf(r, "%lld", (long long)m->id));
	tv_set(row, "kind", req_strdup(r, m->kind));
	tv_set(row, "order_id", m->order_id ? req_printf(r, "%lld",
	    (long long)m->order_id) : "");
	tv_set(row, "to", req_strdup(r, m->to_addr));
	tv_set(row, "subject", req_strdup(r, m->subject));
	tv_set(row, "status", req_strdup(r, m->status));
	tv_set(row, "attempts", req_printf(r, "%lld", (long long)m->attempts));
	tv_set(row, "created", page_time(r, m->created_at));
	tv_set(row, "sent", page_time(r, m->sent_at));
	tv_set(row, "next", !strcmp(m->status, "queued") ?
	    page_time(r, m->next_at) : "");
	tv_set(row, "error", req_strdup(r, m->last_error));
	tv_set(row, "bounced", page_time(r, m->bounced_at));
	tv_set(row, "bounce", req_strdup(r, m->bounce));
	tv_set(row, "can_retry", !strcmp(m->status, "queued") ||
	    !strcmp(m->status, "failed") ? "1" : "");
}

/* Renders the outbox page with status and a notice: the messages of
 * filter older than before (0: the newest). */
static void
outbox_page(struct request *r, int status, const char *filter,
    int64_t before, const char *notice)
{
	struct tvars		 tv = { .n = 0 };
	struct outbox_ctx	 c = { r, &tv, 0, 0 };
	int64_t			 counts[MAIL_STATUSES];

	if (mail_counts(counts) == 0 ||
	    mail_list(filter, OUTBOX_PAGE + 1, before, outbox_row, &c) < 0) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	for (size_t i = 0; i < MAIL_STATUSES; i++)
		tv_set(&tv, mail_statuses[i], req_printf(r, "%lld",
		    (long long)counts[i]));
	tv_set(&tv, "any_failed", counts[3] > 0 ? "1" : "");
	tv_set(&tv, "any_bounced", counts[4] > 0 ? "1" : "");
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "filter", filter);
	tv_set(&tv, "paged", before > 0 ? "1" : "");
	tv_set(&tv, "older", c.n > OUTBOX_PAGE ? req_printf(r, "%lld",
	    (long long)c.last) : "");
	for (size_t i = 0; i <= MAIL_STATUSES; i++) {
		struct tvars	*f = tv_row(&tv, "filters");
		const char	*st = i == 0 ? "" : mail_statuses[i - 1];

		tv_set(f, "status", st);
		tv_set(f, "label", *st ? st : "all");
		tv_set(f, "current", !strcmp(st, filter) ? "1" : "");
	}
	page_render(r, status, "Outbox", "admin_outbox.html", &tv);
}

/* GET /admin/outbox */
void
page_admin_outbox(struct request *r)
{
	static const char *const notices[] = {
		"retry", "The message will be sent again within a few "
		    "seconds.",
		NULL
	};
	int64_t		 before = 0;

	/* The gate refused invalid fields (400) before this. */
	if (*r->fields[OF_BEFORE].value != '\0' &&
	    !parse_int64(r->fields[OF_BEFORE].value, 1, INT64_MAX, &before))
		before = 0;
	outbox_page(r, 200, r->fields[OF_STATUS].value, before,
	    page_done_notice(r, notices));
}

/* Sets the variables of one email's page (called by mail_read). */
static void
message_vars(const struct mail_info *m, const char *text, const char *html,
    void *arg)
{
	struct outbox_ctx	*c = arg;
	struct request		*r = c->r;
	struct tvars		*tv = c->tv;

	tv_set(tv, "id", req_printf(r, "%lld", (long long)m->id));
	tv_set(tv, "kind", req_strdup(r, m->kind));
	tv_set(tv, "order_id", m->order_id ? req_printf(r, "%lld",
	    (long long)m->order_id) : "");
	tv_set(tv, "from", conf.mail_from);
	tv_set(tv, "to", *m->to_name ? req_printf(r, "%s <%s>", m->to_name,
	    m->to_addr) : req_strdup(r, m->to_addr));
	tv_set(tv, "subject", req_strdup(r, m->subject));
	tv_set(tv, "status", req_strdup(r, m->status));
	tv_set(tv, "attempts", req_printf(r, "%lld", (long long)m->attempts));
	tv_set(tv, "created", page_time(r, m->created_at));
	tv_set(tv, "sent", page_time(r, m->sent_at));
	tv_set(tv, "error", req_strdup(r, m->last_error));
	tv_set(tv, "bounced", page_time(r, m->bounced_at));
	tv_set(tv, "bounce", req_strdup(r, m->bounce));
	tv_set(tv, "can_retry", !strcmp(m->status, "queued") ||
	    !strcmp(m->status, "failed") ? "1" : "");
	tv_set(tv, "text", req_strdup(r, text));
	if (*html != '\0') {
		struct buf	b;

		buf_init(&b);
		/* Shown as sent; without the layout, as stored. */
		if (!mail_frame(&b, m->subject, html,
		    mail_marked(m->order_id, m->to_addr)))
			buf_puts(&b, html);
		tv_set(tv, "html", req_keep(r, buf_take(&b)));
	}
	c->n = 1;
}

/* GET /admin/outbox/ID: one email as it was queued: its headers, its
 * plain-text part and its HTML part, both shown as escaped text (the
 * HTML is never rendered: the CSP and the mail's own content forbid). */
void
page_admin_outbox_message(struct request *r)
{
	struct tvars		 tv = { .n = 0 };
	struct outbox_ctx	 c = { r, &tv, 0, 0 };
	int64_t			 id;
	int			 rc;

	if (r->arg == NULL || !parse_int64(r->arg, 1, INT64_MAX, &id) ||
	    (rc = mail_read(id, message_vars, &c)) == 0) {
		tv_free(&tv);
		page_error(r, 404, "No such message", "There is no message "
		    "with this number.");
		return;
	}
	if (rc < 0) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	page_render(r, 200, req_printf(r, "Email %lld", (long long)id),
	    "admin_outbox_mail.html", &tv);
}

/* POST /admin/outbox/ID/retry */
void
page_admin_outbox_retry(struct request *r)
{
	int64_t	id;
	int	rc;

	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return;
	}
	if (r->arg == NULL || !parse_int64(r->arg, 1, INT64_MAX, &id)) {
		page_error(r, 404, "No such message", "There is no message "
		    "with this number.");
		return;
	}
	if (!db_begin())
		goto fail;
	if ((rc = mail_retry_now(id)) < 0 ||
	    (rc == 1 && !audit_log(r, r->session->user_id, "retry mail", 0,
	    req_printf(r, "message %lld", (long long)id)))) {
		db_rollback();
		goto fail;
	}
	if (rc == 0) {
		db_rollback();
		outbox_page(r, 409, "", 0, "That message is not waiting to be "
		    "sent, so there is nothing to retry.");
		return;
	}
	if (!db_commit())
		goto fail;
	http_redirect(r, "/admin/outbox?done=retry");
	return;
fail:
	page_unavailable(r);
}
