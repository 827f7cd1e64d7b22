/* page_lost.c: GET|POST /lost — "lost your link?". Every order of the
 * address gets its status link emailed again. The answer is the same
 * whether the address is known or not, and it is rate-limited. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "rate.h"

#define HOUR			3600
#define LOST_PER_EMAIL_HOUR	3
#define LOST_PER_IP_HOUR	10

/* The fields of POST /lost (an interface). */
const struct field lost_fields[] = {
#define LF_EMAIL	0
	{ "email", "your email address", 3, 254, F_REQUIRED,
	    email_addr_check },
#define LF_CSRF		1
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Renders the form with status and an optional message. */
static void
lost_form(struct request *r, int status, const char *notice,
    const char *error)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	page_form_vars(r, &tv, lost_fields);
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	page_render(r, status, "Lost your link?", "lost.html", &tv);
}

/* GET /lost */
void
page_lost(struct request *r)
{
	lost_form(r, 200, NULL, NULL);
}

/* Queues one email listing every order of email. Returns 1 (also when
 * there is none), 0 when rate-limited, -1 on failure. */
static int
lost_store(struct request *r, const char *email, int64_t *retry)
{
	sqlite3_stmt	*s;
	struct tvars	 tv = { .n = 0 };
	char		*kemail, *kip, *name = NULL;
	int		 rc, n = 0;

	kemail = req_cat(r, "lost-email:", req_keep(r,
	    email_addr_key(email)), (char *)NULL);
	kip = req_printf(r, "lost-ip:%s", req_client_ip(r));
	if (!db_begin())
		return -1;
	if ((rc = rate_allow(kip, LOST_PER_IP_HOUR, HOUR, retry)) == 1)
		rc = rate_allow(kemail, LOST_PER_EMAIL_HOUR, HOUR, retry);
	if (rc != 1) {
		db_rollback();
		return rc == 0 ? 0 : -1;
	}
	if (!rate_note(kip, LOST_PER_IP_HOUR, HOUR) ||
	    !rate_note(kemail, LOST_PER_EMAIL_HOUR, HOUR))
		goto fail;
	if ((s = db_stmt(ST_ORDERS_BY_EMAIL)) == NULL ||
	    !db_bind(s, "t", email))
		goto fail;
	page_vars(r, &tv);
	while ((rc = db_step(ST_ORDERS_BY_EMAIL)) == DB_ROW) {
		struct tvars	*row;
		struct buf	 d;
		char		*url = order_track_url(r,
				    sqlite3_column_int64(s, 0));

		if (url == NULL)
			break;
		buf_init(&d);
		fmt_date(&d, sqlite3_column_int64(s, 2));
		row = tv_row(&tv, "orders");
		tv_set(row, "number", req_strdup(r, db_text(s, 1)));
		tv_set(row, "date", req_keep(r, buf_take(&d)));
		tv_set(row, "status", order_status_label(db_text(s, 3)));
		tv_set(row, "url", url);
		n++;
	}
	db_done(ST_ORDERS_BY_EMAIL);
	if (rc == DB_ERROR)
		goto fail;
	if (n > 0) {
		tv_set(&tv, "count", req_printf(r, "%d", n));
		if (!mail_queue("lost", 0, email, name, &tv))
			goto fail;
	}
	if (!audit_log(r, 0, "links resent", 0, n > 0 ? "known address" :
	    "unknown address"))
		goto fail;
	tv_free(&tv);
	return db_commit() ? 1 : -1;
fail:
	tv_free(&tv);
	db_rollback();
	return -1;
}

/* POST /lost */
void
page_lost_submit(struct request *r)
{
	int64_t	retry = 0;
	int	rc;

	if (!r->csrf_ok) {
		lost_form(r, 403, NULL, "The page had expired, so nothing was "
		    "sent. Please send it again.");
		return;
	}
	if (r->nerrors > 0) {
		lost_form(r, 400, NULL, "Please check the field marked below.");
		return;
	}
	if ((rc = lost_store(r, r->fields[LF_EMAIL].value, &retry)) < 0) {
		lost_form(r, 503, NULL, page_not_saved(r));
		return;
	}
	if (rc == 0) {
		http_header(r, "Retry-After", req_printf(r, "%lld",
		    (long long)retry));
		lost_form(r, 429, NULL, "Links for this address were sent "
		    "several times in the last hour. Please check your inbox "
		    "and spam folder, or try again later.");
		return;
	}
	lost_form(r, 200, "If we have orders for that address, we have just "
	    "emailed their links to it. Check your inbox (and spam folder) "
	    "in a few minutes.", NULL);
}
