/* page_privacy.c: privacy's pages (issue 20). GET /privacy, the privacy
 * notice built from the settings; a closed order's "Delete my data"
 * (POST /o/TOKEN/erasure), which the consultant sees on the order and in
 * the queue; the 410 Gone page that every client link of an erased order
 * answers; the erased order as staff see it; and the staff's erase with
 * its confirmation step (GET and POST /admin/orders/ID/erase), which
 * calls privacy.c's. */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "page_privacy.h"
#include "privacy.h"
#include "util.h"

/* The fields of POST /o/TOKEN/erasure (an interface): the token only. */
const struct field erasure_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The fields of POST /admin/orders/ID/erase (an interface): confirm
 * must be "yes" (checked by the handler: anything else shows the
 * confirmation again, 400). */
const struct field erase_fields[] = {
#define EF_CONFIRM	0
	{ "confirm", "the confirmation", 0, 3, 0, NULL },
#define EF_ALL		1
	/* "yes": every order of the client's address, all or none. */
	{ "all", "all the client's orders", 0, 3, 0, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Returns whom a client writes to about their data: privacy_contact,
 * or admin_email when it is empty. */
static const char *
privacy_contact(void)
{
	return *conf.privacy_contact ? conf.privacy_contact : conf.admin_email;
}

/* Returns the link of the privacy contact c ("" when it is neither an
 * email address nor a web page), owned by the request. */
static const char *
contact_href(struct request *r, const char *c)
{
	if (!strncmp(c, "https://", 8) || !strncmp(c, "http://", 7))
		return c;
	if (strchr(c, '@') != NULL && strchr(c, ':') == NULL &&
	    strchr(c, ' ') == NULL)
		return req_cat(r, "mailto:", c, (char *)NULL);
	return "";
}

/* GET /privacy */
void
page_privacy(struct request *r)
{
	struct tvars	 tv = { .n = 0 };
	const char	*contact = privacy_contact();

	page_vars(r, &tv);
	tv_set(&tv, "controller", *conf.privacy_controller ?
	    conf.privacy_controller : conf.consultant_name);
	tv_set(&tv, "contact", contact);
	tv_set(&tv, "contact_href", contact_href(r, contact));
	if (conf.retention_days > 0)
		tv_set(&tv, "retention", req_printf(r, "%lld day%s",
		    (long long)conf.retention_days,
		    conf.retention_days == 1 ? "" : "s"));
	tv_set(&tv, "cards", *conf.stripe_secret_key ? "1" : "");
	tv_set(&tv, "files", conf.attachment_max_mb > 0 ? "1" : "");
	page_render(r, 200, "Privacy notice", "privacy.html", &tv);
}

int
privacy_order_closed(const struct order *o, int64_t now)
{
	int64_t end;

	if (!strcmp(o->status, "refunded") || !strcmp(o->status, "cancelled"))
		return 1;
	if ((strcmp(o->status, "answered") && strcmp(o->status, "followup")) ||
	    o->answered_at == 0)
		return 0;
	end = order_guarantee_end(o->paid_at, o->answered_at);
	return end != 0 && now >= end;
}

int
page_gone(struct request *r, const struct order *o)
{
	struct tvars tv = { .n = 0 };

	if (o->erased_at == 0)
		return 0;
	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "erased_on", page_date(r, o->erased_at));
	page_render(r, 410, "Personal data deleted", "gone.html", &tv);
	return 1;
}

/* Reads when the client of order id asked for their data to be erased
 * (the open request) into *at. Returns 1, 0 if they have not (or it was
 * done), -1 on a database error. */
static int
erasure_asked(int64_t id, int64_t *at)
{
	sqlite3_stmt	*s = db_stmt(ST_ERASURE_OPEN_BY_ORDER);
	int		 rc;

	*at = 0;
	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_ERASURE_OPEN_BY_ORDER)) == DB_ROW)
		*at = sqlite3_column_int64(s, 0);
	db_done(ST_ERASURE_OPEN_BY_ORDER);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int
page_erasure_vars(struct request *r, struct tvars *tv,
    const struct order *o, const char *token)
{
	int64_t	at;
	int	rc;

	if (!privacy_order_closed(o, now_unix()))
		return 1;
	if ((rc = erasure_asked(o->id, &at)) < 0)
		return 0;
	if (rc == 1)
		tv_set(tv, "erasure_asked", page_date(r, at));
	else
		tv_set(tv, "erasure_action", req_cat(r, "/o/", token,
		    "/erasure", (char *)NULL));
	return 1;
}

/* Records the erasure request of o (loaded by the caller, reloaded
 * here) with its audit row and the consultant's alert, in one
 * transaction; the decision is taken on the order as the transaction
 * finds it. Returns 1, 2 if the client had asked already (nothing
 * written), 0 if the order is not closed or is erased (nothing written;
 * o as found), -1 on failure (rolled back). */
static int
erasure_store(struct request *r, struct order *o)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 now = now_unix();
	int		 rc;

	if (!db_begin())
		return -1;
	if (order_load(r, o->id, o) != 1)
		goto fail;
	if (o->erased_at != 0 || !privacy_order_closed(o, now)) {
		db_rollback();
		return 0;
	}
	if ((rc = db_run(ST_ERASURE_INSERT, "ii", o->id, now)) ==
	    DB_CONSTRAINT) {
		db_rollback();
		return 2;
	}
	if (rc != DB_DONE)
		goto fail;
	page_vars(r, &tv);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "requested", page_date(r, now));
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)o->id));
	if (!audit_log(r, 0, "erasure requested", o->id, "") ||
	    !mail_queue("erasure_alert", o->id, conf.admin_email,
	    conf.consultant_name, &tv))
		goto fail;
	tv_free(&tv);
	return db_commit() ? 1 : -1;
fail:
	tv_free(&tv);
	db_rollback();
	return -1;
}

/* POST /o/TOKEN/erasure: 303 back to the status page, which then says
 * when it was asked; a second request changes nothing and answers the
 * same. */
void
page_erasure_submit(struct request *r)
{
	struct order	o;
	int		rc;

	if (!page_track_order(r, &o, 0))
		return;
	if (!r->csrf_ok) {
		page_error(r, 403, "This page has expired", "Nothing was sent. "
		    "Reload your order's page and press \"Delete my data\" "
		    "again.");
		return;
	}
	if ((rc = erasure_store(r, &o)) < 0) {
		page_unavailable(r);
		return;
	}
	if (rc == 0 && page_gone(r, &o))
		return;
	if (rc == 0) {
		page_error(r, 409, "Your order is still open", req_printf(r,
		    "You can ask for your personal data to be deleted once "
		    "order %s is closed: when its money-back guarantee has "
		    "ended, or it was refunded or cancelled. Until then, "
		    "write to %s.", o.number, privacy_contact()));
		return;
	}
	http_redirect(r, req_printf(r, "/o/%s#erasure", r->arg));
}

/* Reads who erased order id and when, from its audit row, into by
 * (owned by the request). Returns 1, or 0 on a database error. */
static int
erased_by(struct request *r, int64_t id, const char **by)
{
	sqlite3_stmt	*s = db_stmt(ST_ERASED_BY);
	int		 rc;

	*by = "pmbctl or the retention sweep";
	if (s == NULL || !db_bind(s, "i", id))
		return 0;
	if ((rc = db_step(ST_ERASED_BY)) == DB_ROW && *db_text(s, 1) != '\0')
		*by = req_strdup(r, db_text(s, 1));
	db_done(ST_ERASED_BY);
	return rc != DB_ERROR;
}

int
page_admin_privacy_vars(struct request *r, struct tvars *tv,
    const struct order *o)
{
	const char	*by;
	int64_t		 at;
	int		 rc;

	if (o->erased_at != 0) {
		if (!erased_by(r, o->id, &by))
			return 0;
		tv_set(tv, "erased", "1");
		tv_set(tv, "erased_on", page_date(r, o->erased_at));
		tv_set(tv, "erased_by", by);
		return 1;
	}
	tv_set(tv, "erase_url", req_printf(r, "/admin/orders/%lld/erase",
	    (long long)o->id));
	if ((rc = erasure_asked(o->id, &at)) < 0)
		return 0;
	if (rc == 1)
		tv_set(tv, "erasure_asked", page_date(r, at));
	return 1;
}

int
page_order_erased(int64_t id)
{
	sqlite3_stmt	*s = db_stmt(ST_ORDER_ERASED);
	int		 rc, erased = 0;

	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_ORDER_ERASED)) == DB_ROW)
		erased = sqlite3_column_int(s, 0);
	db_done(ST_ORDER_ERASED);
	return rc == DB_ERROR ? -1 : erased;
}

int
page_admin_erased_refused(struct request *r, const struct order *o)
{
	if (o->erased_at == 0)
		return 0;
	page_error(r, 409, "Personal data erased", req_printf(r, "This "
	    "order's personal data was erased on %s: nothing can be added "
	    "to order %s or changed.", page_date(r, o->erased_at), o->number));
	return 1;
}

/* Puts the other orders of o's client into tv: rows "others" (each
 * its id, number and why it cannot be erased now), their count, and
 * "others_all" when every one can be erased with o. Returns 1, or 0 on
 * a database error. */
static int
erase_others(struct request *r, struct tvars *tv, const struct order *o)
{
	struct privacy_target	*t;
	struct tvars		*row;
	int			 n, k = 0, all = 1;

	if (*o->email == '\0')
		return 1;
	t = xcalloc(PRIVACY_PERSON_MAX, sizeof(*t));
	if ((n = privacy_person_orders(o->email, t)) < 0) {
		free(t);
		return 0;
	}
	for (int i = 0; i < n; i++) {
		if (t[i].id == o->id)
			continue;
		row = tv_row(tv, "others");
		tv_set(row, "other_id", req_printf(r, "%lld",
		    (long long)t[i].id));
		tv_set(row, "other_number", req_strdup(r, t[i].number));
		if (t[i].why != PB_NONE) {
			tv_set(row, "other_blocked",
			    privacy_block_text(t[i].why));
			all = 0;
		}
		k++;
	}
	free(t);
	if (k > 0) {
		tv_set(tv, "others_count", req_printf(r, "%d", k));
		tv_set(tv, "others_plural", k == 1 ? "" : "s");
		if (all)
			tv_set(tv, "others_all", "1");
	}
	return 1;
}

/* Renders the erase's confirmation page of o with status: what goes and
 * what stays, the client's other orders, and the form, or why (a
 * privacy_block) the order cannot be erased now and no form; error goes
 * on top. */
static void
erase_view(struct request *r, const struct order *o, int status, int why,
    const char *error)
{
	struct tvars tv = { .n = 0 };

	if (!erase_others(r, &tv, o)) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "id", req_printf(r, "%lld", (long long)o->id));
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "email", o->email);
	tv_set(&tv, "status_label", order_status_label(o->status));
	tv_set(&tv, "form_message", error);
	if (why != PB_NONE)
		tv_set(&tv, "blocked", privacy_block_text(why));
	page_render(r, status, req_printf(r, "Erase the personal data of %s?",
	    o->number), "admin_erase.html", &tv);
}

/* GET /admin/orders/ID/erase: changes nothing. */
void
page_admin_erase(struct request *r)
{
	struct order	o;
	int		why;

	if (!db_read_begin()) {
		page_unavailable(r);
		return;
	}
	if (page_admin_order_load(r, &o)) {
		if ((why = privacy_erasable(o.id, now_unix())) < 0)
			page_unavailable(r);
		else
			erase_view(r, &o, 200, why, NULL);
	}
	db_read_end();
}

/* The POST of the erase with all=yes: every order of o's client, all or
 * none (privacy_erase_person); answers 303 to the order page, 409 naming
 * each order that cannot be erased now and why, or 503. */
static void
erase_person_submit(struct request *r, const struct order *o)
{
	struct privacy_target	*t = xcalloc(PRIVACY_PERSON_MAX, sizeof(*t));
	const char		*why = "Nothing was erased.";
	int			 n, rc;

	rc = privacy_erase_person(r, o->email, r->session->user_id, 1, t, &n);
	for (int i = 0; rc == 0 && i < n; i++)
		if (t[i].why != PB_NONE)
			why = req_printf(r, "%s %s: %s", why, t[i].number,
			    privacy_block_text(t[i].why));
	free(t);
	if (rc < 0)
		erase_view(r, o, 503, PB_NONE, page_not_saved(r));
	else if (rc == 0)
		erase_view(r, o, 409, PB_NONE, why);
	else
		http_redirect(r, req_printf(r, "/admin/orders/%lld?done=erased",
		    (long long)o->id));
}

/* POST /admin/orders/ID/erase: with confirm=yes erases (privacy_erase,
 * the client told by email if they asked; with all=yes every order of
 * the client's address, all or none) and answers 303 to the order
 * page; else the confirmation again (400); refused: 409 with why;
 * failed: 503, nothing erased. */
void
page_admin_erase_submit(struct request *r)
{
	struct order		o;
	enum privacy_block	why = PB_NONE;
	int			rc;

	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return;
	}
	if (!page_admin_order_load(r, &o))
		return;
	if (r->nerrors > 0 || strcmp(r->fields[EF_CONFIRM].value, "yes")) {
		erase_view(r, &o, 400, PB_NONE, "Nothing was erased: confirm "
		    "with the button below.");
		return;
	}
	if (!strcmp(r->fields[EF_ALL].value, "yes")) {
		erase_person_submit(r, &o);
		return;
	}
	if ((rc = privacy_erase(r, o.id, r->session->user_id, 1, &why)) < 0) {
		erase_view(r, &o, 503, PB_NONE, page_not_saved(r));
		return;
	}
	if (rc == 0) {
		erase_view(r, &o, 409, why, req_cat(r, "Nothing was erased. ",
		    privacy_block_text(why), (char *)NULL));
		return;
	}
	http_redirect(r, req_printf(r, "/admin/orders/%lld?done=erased",
	    (long long)o.id));
}
