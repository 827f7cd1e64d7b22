/* page_admin_order.c: GET /admin/orders/ID — the whole order — and its
 * actions, each a form posting to /admin/orders/ID/ACTION, each one
 * transaction with its history, audit row and outbox mail. */
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "currency.h"
#include "db.h"
#include "files.h"
#include "mail.h"
#include "markdown.h"
#include "order.h"
#include "page.h"
#include "page_privacy.h"
#include "pay_method.h"
#include "payment.h"
#include "router.h"

#define HOUR		3600
#define REPLY_MAX	50000

/* Returns NULL if v is an amount such as 150.00 greater than zero, with
 * as many decimals as any currency has: the handler, which knows the
 * order's currency, parses it again (page_parse_money). */
static const char *
check_amount(const char *v)
{
	int64_t n;

	if (!parse_money(v, CURRENCY_EXPONENT_MAX, &n) || n <= 0)
		return "Enter an amount such as 150.00.";
	return NULL;
}

/* Returns NULL if v is a snippet id. */
static const char *
check_id(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, INT64_MAX, &n) ? NULL : "Not a valid id.";
}

/* Returns NULL if v is "yes" (the reply's confirm field). */
static const char *
check_yes(const char *v)
{
	return strcmp(v, "yes") == 0 ? NULL :
	    "The confirm field takes only \"yes\".";
}

/* The fields of the actions (an interface). */
const struct field paid_fields[] = {
#define PF_AMOUNT	0
	{ "amount", "the amount", 1, 20, F_REQUIRED, check_amount },
#define PF_METHOD	1
	{ "method", "the payment method", 1, 20, F_REQUIRED,
	    pay_method_check },
#define PF_REFERENCE	2
	{ "reference", "the reference", 0, 100, 0, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field reply_fields[] = {
#define RF_BODY		0
	{ "body", "the reply", 0, REPLY_MAX, F_MULTILINE, NULL },
#define RF_PREVIEW	1
	{ "preview", "preview", 0, 8, 0, NULL },
#define RF_SNIPPET	2
	{ "snippet", "the snippet", 0, 20, 0, check_id },
#define RF_CONFIRM	3
	{ "confirm", "the confirmation", 0, 3, 0, check_yes },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field note_fields[] = {
#define NF_BODY		0
	{ "body", "the note", 1, 10000, F_REQUIRED | F_MULTILINE, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field cancel_fields[] = {
#define CF_REASON	0
	{ "reason", "the reason", 1, 1000, F_REQUIRED | F_MULTILINE, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

int
page_admin_order_load(struct request *r, struct order *o)
{
	int64_t	id;
	int	rc = 0;

	if (r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, &id))
		rc = order_load(r, id, o);
	return page_found(r, rc, "No such order", "There is no order with "
	    "this number.");
}

/* Adds the rows of statement st (bound to the order id) to tv as the
 * list called list; fill sets a row's variables. Returns 1, or 0 on a
 * database error. */
static int
rows(struct request *r, enum stmt st, int64_t id, struct tvars *tv,
    const char *list,
    void (*fill)(struct request *, sqlite3_stmt *, struct tvars *))
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	if (s == NULL || !db_bind(s, "i", id))
		return 0;
	while ((rc = db_step(st)) == DB_ROW)
		fill(r, s, tv_row(tv, list));
	db_done(st);
	return rc != DB_ERROR;
}

/* Who wrote a message of kind kind (not a reply or a note), for the
 * consultant's thread. */
static const char *
client_kind_label(const char *kind)
{
	if (!strcmp(kind, "question"))
		return "Question from the client";
	if (!strcmp(kind, "info"))
		return "More information from the client";
	if (!strcmp(kind, "extra"))
		return "Message after the follow-ups were used up — not "
		    "counted, no new due time";
	return "Follow-up from the client";
}

static void
fill_msg(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	const char	*kind = db_text(s, 0);
	int64_t		 inbound = sqlite3_column_int64(s, 5);

	tv_set(tv, "class", req_strdup(r, kind));
	tv_set(tv, "at", page_time(r, sqlite3_column_int64(s, 2)));
	if (inbound > 0)
		tv_set(tv, "inbound_id", req_printf(r, "%lld",
		    (long long)inbound));
	/* What came by email is the sender's text, shown as text. */
	if ((!strcmp(kind, "reply") || !strcmp(kind, "note")) &&
	    inbound == 0) {
		tv_set(tv, "html", sqlite3_column_type(s, 4) != SQLITE_NULL ?
		    req_strdup(r, db_text(s, 4)) :
		    req_keep(r, md_render(db_text(s, 1))));
		tv_set(tv, "text", "");
	} else {
		tv_set(tv, "html", "");
		tv_set(tv, "text", req_strdup(r, db_text(s, 1)));
	}
	if (!strcmp(kind, "reply") || !strcmp(kind, "note"))
		tv_set(tv, "who", req_printf(r, "%s by %s", !strcmp(kind,
		    "note") ? "Internal note" : "Reply", db_text(s, 3)));
	else
		tv_set(tv, "who", client_kind_label(kind));
}

/* Adds order id's thread to tv as the list thread, each message with its
 * files (the list files; one statement for all the order's files), and
 * the reply draft's files as the list draft_files. Returns 1, or 0 on a
 * database error. */
static int
thread_rows(struct request *r, int64_t id, struct tvars *tv)
{
	sqlite3_stmt		*s;
	struct file_item	*files;
	int64_t			 n;
	int			 rc;

	if ((n = files_of_order(r, id, &files)) < 0 ||
	    (s = db_stmt(ST_MESSAGES_ALL)) == NULL || !db_bind(s, "i", id))
		return 0;
	while ((rc = db_step(ST_MESSAGES_ALL)) == DB_ROW) {
		struct tvars *row = tv_row(tv, "thread");

		fill_msg(r, s, row);
		if (files_tv(r, row, "files", files, n,
		    sqlite3_column_int64(s, 6), "/admin/files/") > 0)
			tv_set(row, "has_files", "1");
	}
	db_done(ST_MESSAGES_ALL);
	if (files_tv(r, tv, "draft_files", files, n, 0, "/admin/files/") > 0)
		tv_set(tv, "has_draft_files", "1");
	return rc != DB_ERROR;
}

/* Sets the files fields' variables: whether files are taken, the limits
 * as a hint, and why the files just sent were refused (files_error) by
 * the form they came with. */
static void
files_form_vars(struct request *r, struct tvars *tv, const char *files_error)
{
	if (conf.attachment_max_mb > 0) {
		tv_set(tv, "files_on", "1");
		tv_set(tv, "files_hint", req_printf(r, "Up to %lld files, "
		    "%lld MB each: %s.", (long long)conf.attachments_per_message,
		    (long long)conf.attachment_max_mb, conf.attachment_types));
	}
	if (files_error == NULL || r->fields == NULL)
		return;
	files_error = req_printf(r, "%s Nothing was saved: choose the files "
	    "again (a browser cannot keep them).", files_error);
	tv_set(tv, r->route->fields == note_fields ? "note_files_error" :
	    "reply_files_error", files_error);
}

/* A bounced email of the client's (the order page's flag). */
static void
fill_bounce(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	tv_set(tv, "bounce_id", req_printf(r, "%lld",
	    (long long)sqlite3_column_int64(s, 0)));
	tv_set(tv, "bounce_kind", req_strdup(r, db_text(s, 1)));
	tv_set(tv, "bounce_subject", req_strdup(r, db_text(s, 2)));
	tv_set(tv, "bounce_at", page_time(r, sqlite3_column_int64(s, 3)));
	tv_set(tv, "bounce_why", req_strdup(r, db_text(s, 4)));
}

static void
fill_hist(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	tv_set(tv, "c1", order_status_text(r, db_text(s, 0)));
	tv_set(tv, "c2", page_time(r, sqlite3_column_int64(s, 1)));
	tv_set(tv, "c3", req_strdup(r, *db_text(s, 2) ? db_text(s, 2) :
	    "client or system"));
	tv_set(tv, "c4", req_strdup(r, db_text(s, 3)));
}

static void
fill_ledger(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	tv_set(tv, "c1", !strcmp(db_text(s, 0), "payment") ? "Payment" :
	    "Refund");
	tv_set(tv, "c2", req_printf(r, "%s%s %s", !strcmp(db_text(s, 0),
	    "refund") ? "-" : "", page_money(r, sqlite3_column_int64(s, 1),
	    db_text(s, 2)), db_text(s, 2)));
	tv_set(tv, "c3", req_printf(r, "%s %s",
	    pay_method_label(db_text(s, 3)), db_text(s, 4)));
	tv_set(tv, "c4", req_printf(r, "%s, %s",
	    page_time(r, sqlite3_column_int64(s, 5)), db_text(s, 6)));
}

static void
fill_audit(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	tv_set(tv, "c1", page_time(r, sqlite3_column_int64(s, 0)));
	tv_set(tv, "c2", req_strdup(r, *db_text(s, 1) ? db_text(s, 1) :
	    "client or system"));
	tv_set(tv, "c3", req_strdup(r, db_text(s, 2)));
	tv_set(tv, "c4", req_printf(r, "%s %s", db_text(s, 3),
	    db_text(s, 4)));
}

/* A Checkout Session of the order: its state and the payment's link
 * into Stripe's dashboard. */
static void
fill_card(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	const char *pi = req_strdup(r, db_text(s, 3));

	tv_set(tv, "card_status", req_strdup(r, db_text(s, 0)));
	const char *cur = req_strdup(r, db_text(s, 2));

	tv_set(tv, "card_amount", req_printf(r, "%s %s",
	    page_money(r, sqlite3_column_int64(s, 1), cur), cur));
	tv_set(tv, "card_pi", pi);
	tv_set(tv, "card_url", payment_dashboard_url(r, pi));
	tv_set(tv, "card_at", page_time(r, sqlite3_column_int64(s, 4)));
	tv_set(tv, "card_error", req_strdup(r, db_text(s, 5)));
	tv_set(tv, "card_session", req_strdup(r, db_text(s, 6)));
}

/* A flag for the consultant (amount mismatch, paid after cancel...). */
static void
fill_flag(struct request *r, sqlite3_stmt *s, struct tvars *tv)
{
	tv_set(tv, "flag_kind", req_strdup(r, db_text(s, 0)));
	tv_set(tv, "flag_ref", req_strdup(r, db_text(s, 1)));
	tv_set(tv, "flag_url", payment_dashboard_url(r, db_text(s, 1)));
	tv_set(tv, "flag_detail", req_strdup(r, db_text(s, 2)));
	tv_set(tv, "flag_at", page_time(r, sqlite3_column_int64(s, 3)));
	tv_set(tv, "flag_resolved", sqlite3_column_int64(s, 4) ?
	    req_printf(r, "%s %s", page_time(r, sqlite3_column_int64(s, 4)),
	    db_text(s, 5)) : "");
}

/* Adds order id's feedback from the rating page to tv as the list
 * feedback, and has_feedback when there is some. Returns 1, or 0 on a
 * database error. */
static int
feedback_rows(struct request *r, int64_t id, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_FEEDBACK_BY_ORDER);
	int		 rc;

	if (s == NULL || !db_bind(s, "i", id))
		return 0;
	while ((rc = db_step(ST_FEEDBACK_BY_ORDER)) == DB_ROW) {
		struct tvars *row = tv_row(tv, "feedback");

		tv_set(row, "fb_text", req_strdup(r, db_text(s, 0)));
		tv_set(row, "fb_at", page_time(r, sqlite3_column_int64(s, 1)));
		tv_set(tv, "has_feedback", "1");
	}
	db_done(ST_FEEDBACK_BY_ORDER);
	return rc != DB_ERROR;
}

#define CLIENT_ORDERS_MAX	20	/* other orders listed on a page */

/* Returns "N earlier orders" (and later ones) for a client with n other
 * orders, earlier of them before this one; owned by r. */
static const char *
client_orders_text(struct request *r, int64_t n, int64_t earlier)
{
	int64_t	later = n - earlier;

	if (earlier > 0 && later > 0)
		return req_printf(r, "%lld earlier order%s, %lld later",
		    (long long)earlier, earlier == 1 ? "" : "s",
		    (long long)later);
	if (earlier > 0)
		return req_printf(r, "%lld earlier order%s",
		    (long long)earlier, earlier == 1 ? "" : "s");
	return req_printf(r, "%lld later order%s", (long long)later,
	    later == 1 ? "" : "s");
}

/* Adds the client's other orders (same address, any case) to tv: the
 * summary client_orders ("3 earlier orders"; unset when there are none)
 * and the newest CLIENT_ORDERS_MAX of them as the list others. Returns
 * 1, or 0 on a database error. */
static int
client_orders(struct request *r, const struct order *o, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_CLIENT_ORDERS_COUNT);
	int64_t		 n = 0, earlier = 0;
	int		 rc;

	if (s == NULL || !db_bind(s, "tii", o->email, o->created_at, o->id))
		return 0;
	if ((rc = db_step(ST_CLIENT_ORDERS_COUNT)) == DB_ROW) {
		n = sqlite3_column_int64(s, 0);
		earlier = sqlite3_column_int64(s, 1);
	}
	db_done(ST_CLIENT_ORDERS_COUNT);
	if (rc != DB_ROW)
		return 0;
	if (n == 0)
		return 1;
	tv_set(tv, "client_orders", client_orders_text(r, n, earlier));
	if (n > CLIENT_ORDERS_MAX)
		tv_set(tv, "client_orders_more", req_printf(r, "%d",
		    CLIENT_ORDERS_MAX));
	if ((s = db_stmt(ST_CLIENT_ORDERS)) == NULL || !db_bind(s, "tiii",
	    o->email, o->created_at, o->id, (int64_t)CLIENT_ORDERS_MAX))
		return 0;
	while ((rc = db_step(ST_CLIENT_ORDERS)) == DB_ROW) {
		struct tvars *row = tv_row(tv, "others");

		tv_set(row, "other_id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "other_number", req_strdup(r, db_text(s, 1)));
		tv_set(row, "other_created", page_date(r,
		    sqlite3_column_int64(s, 2)));
		tv_set(row, "other_status", order_status_text(r,
		    db_text(s, 3)));
	}
	db_done(ST_CLIENT_ORDERS);
	return rc != DB_ERROR;
}

/* Adds the snippets to tv as the list snippets; returns how many. */
static int
snippet_options(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_SNIPPETS_LIST);
	int		 n = 0;

	if (s == NULL)
		return 0;
	while (db_step(ST_SNIPPETS_LIST) == DB_ROW) {
		struct tvars *row = tv_row(tv, "snippets");

		tv_set(row, "snippet_id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 0)));
		tv_set(row, "snippet_title", req_strdup(r, db_text(s, 1)));
		n++;
	}
	db_done(ST_SNIPPETS_LIST);
	return n;
}

/* Sets the "Mark paid" form's values: what was typed when it was
 * refused, else the price and bank transfer; the select's options. */
static void
paid_form_vars(struct request *r, struct tvars *tv, const struct order *o)
{
	if (r->fields != NULL && r->route->fields == paid_fields) {
		page_form_vars(r, tv, paid_fields);
		pay_method_options(tv, "methods", r->fields[PF_METHOD].value,
		    NULL);
	} else {
		tv_set(tv, "amount", page_money(r, o->price, o->currency));
		pay_method_options(tv, "methods", "bank_transfer", NULL);
	}
}

/* Adds what the order page shows of o's client: the thread, their other
 * orders, their feedback; nothing for an erased order (what is left of
 * them is empty text, and an empty address would match every other
 * erased order). Returns 1, or 0 on a database error. */
static int
client_rows(struct request *r, const struct order *o, struct tvars *tv)
{
	return o->erased_at != 0 || (thread_rows(r, o->id, tv) &&
	    client_orders(r, o, tv) && feedback_rows(r, o->id, tv));
}

/* Renders the order page with status; notice and error go on top, and
 * the reply editor holds draft (NULL: the saved draft). */
static void
order_view(struct request *r, const struct order *o, int status,
    const char *notice, const char *error, const char *draft, int preview,
    const char *files_error)
{
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s;
	int64_t		 paid = 0, refunded = 0, claimed_by = 0;
	const char	*saved = "", *claimed = "", *ip = "";

	if ((s = db_stmt(ST_ORDER_ADMIN_EXTRA)) == NULL ||
	    !db_bind(s, "i", o->id) || db_step(ST_ORDER_ADMIN_EXTRA) !=
	    DB_ROW) {
		db_done(ST_ORDER_ADMIN_EXTRA);
		page_unavailable(r);
		return;
	}
	saved = req_strdup(r, db_text(s, 0));
	ip = req_strdup(r, db_text(s, 1));
	claimed = req_strdup(r, db_text(s, 2));
	claimed_by = sqlite3_column_int64(s, 3);
	db_done(ST_ORDER_ADMIN_EXTRA);
	if (!client_rows(r, o, &tv) || !page_admin_privacy_vars(r, &tv, o) ||
	    !rows(r, ST_HISTORY_ADMIN, o->id, &tv, "history", fill_hist) ||
	    !rows(r, ST_LEDGER_BY_ORDER, o->id, &tv, "ledger", fill_ledger) ||
	    !rows(r, ST_AUDIT_BY_ORDER, o->id, &tv, "audit", fill_audit) ||
	    !rows(r, ST_CHECKOUT_BY_ORDER, o->id, &tv, "card", fill_card) ||
	    !rows(r, ST_ORDER_FLAGS_BY_ORDER, o->id, &tv, "flags",
	    fill_flag) || !rows(r, ST_OUTBOX_BOUNCED_BY_ORDER, o->id, &tv,
	    "bounces", fill_bounce) || !page_card_refunds(r, &tv, o->id, 0, o) ||
	    !order_balance(o->id, &paid, &refunded)) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	if (draft == NULL)
		draft = saved;
	page_vars(r, &tv);
	tv_set(&tv, "id", req_printf(r, "%lld", (long long)o->id));
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "email", o->email);
	tv_set(&tv, "company", o->company);
	tv_set(&tv, "website", o->website);
	tv_set(&tv, "topic", o->topic);
	tv_set(&tv, "client_ip", ip);
	tv_set(&tv, "status_label", order_status_label(o->status));
	tv_set(&tv, "created", page_time(r, o->created_at));
	tv_set(&tv, "paid_at", page_time(r, o->paid_at));
	tv_set(&tv, "answered_at", page_time(r, o->answered_at));
	tv_set(&tv, "viewed_at", page_time(r, o->answer_viewed_at));
	tv_set(&tv, "due", page_time(r, o->due_at));
	tv_set(&tv, "overdue", (!strcmp(o->status, "paid") ||
	    !strcmp(o->status, "followup")) && o->due_at < now_unix() ?
	    "1" : "");
	tv_set(&tv, "price", page_money(r, o->price, o->currency));
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "paid_total", page_money(r, paid, o->currency));
	tv_set(&tv, "refunded_total", page_money(r, refunded, o->currency));
	tv_set(&tv, "net", page_money(r, paid - refunded, o->currency));
	tv_set(&tv, "rating", o->rating);
	tv_set(&tv, "claimed", claimed);
	tv_set(&tv, "mine", claimed_by == r->session->user_id ? "1" : "");
	tv_set(&tv, "can_pay", !strcmp(o->status, "awaiting_payment") &&
	    o->erased_at == 0 ? "1" : "");
	tv_set(&tv, "can_reply", (!strcmp(o->status, "paid") ||
	    !strcmp(o->status, "followup")) && o->erased_at == 0 ? "1" : "");
	tv_set(&tv, "can_cancel", !strcmp(o->status, "awaiting_payment") &&
	    paid == 0 && o->erased_at == 0 ? "1" : "");
	tv_set(&tv, "draft", draft);
	tv_set(&tv, "preview_html", preview && *draft ?
	    req_keep(r, md_render(draft)) : "");
	tv_set(&tv, "has_snippets", snippet_options(r, &tv) > 0 ? "1" : "");
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "form_message", error);
	paid_form_vars(r, &tv, o);
	files_form_vars(r, &tv, files_error);
	if (r->fields != NULL && r->route->fields == note_fields)
		tv_set(&tv, "note", r->fields[NF_BODY].value);
	if (r->fields != NULL && r->route->fields == cancel_fields)
		tv_set(&tv, "reason", r->fields[CF_REASON].value);
	page_render(r, status, req_printf(r, "Order %s", o->number),
	    "admin_order.html", &tv);
}

/* GET /admin/orders/ID */
void
page_admin_order(struct request *r)
{
	static const char *const notices[] = {
		"paid", "Payment recorded.",
		"reply", "Reply sent to the client.",
		"note", "Note added.",
		"draft", "Draft saved.",
		"file_removed", "File removed from the draft.",
		"claim", "You claimed this order.",
		"release", "Order released.",
		"cancel", "Order cancelled.",
		"erased", "Erased: the client's details and words are gone; the "
		    "books stay.",
		"card_refund", "Refund sent to Stripe — waiting for "
		    "confirmation.",
		NULL
	};
	struct order	 o;

	if (!page_admin_order_load(r, &o))
		return;
	order_view(r, &o, 200, page_done_notice(r, notices), NULL, NULL, 0, NULL);
}

/* Answers 303 back to the order page with a notice. */
static void
back(struct request *r, const struct order *o, const char *done)
{
	http_redirect(r, req_printf(r, "/admin/orders/%lld?done=%s",
	    (long long)o->id, done));
}

/* Answers a refused action: the page again, with what was typed. */
static void
refuse(struct request *r, const struct order *o, int status,
    const char *why)
{
	const char *draft = r->route->fields == reply_fields ?
	    r->fields[RF_BODY].value : NULL;

	order_view(r, o, status, NULL, why, draft, 0, NULL);
}

/* Checks the common preconditions of an action: a valid CSRF token, an
 * order not erased (409) and valid fields. Loads the order. Returns 1,
 * or answers and returns 0. */
static int
action_start(struct request *r, struct order *o)
{
	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return 0;
	}
	if (!page_admin_order_load(r, o))
		return 0;
	/* Nothing is added to an erased order, nor changed in it. */
	if (o->erased_at != 0) {
		refuse(r, o, 409, "This order's personal data was erased: "
		    "nothing can be added to it or changed.");
		return 0;
	}
	if (r->nerrors > 0) {
		for (size_t i = 0; r->route->fields[i].name != NULL; i++)
			if (r->fields[i].error != NULL) {
				refuse(r, o, 400, r->fields[i].error);
				return 0;
			}
	}
	return 1;
}

/* POST /admin/orders/ID/paid */
void
page_admin_paid(struct request *r)
{
	struct order	 o;
	struct payment	 p;
	const char	*why;
	int		 rc;

	if (!action_start(r, &o))
		return;
	if ((why = page_parse_money(r, r->fields[PF_AMOUNT].value, o.currency,
	    &p.amount)) != NULL) {
		refuse(r, &o, 400, why);
		return;
	}
	p.currency = o.currency;
	p.method = r->fields[PF_METHOD].value;
	p.reference = r->fields[PF_REFERENCE].value;
	p.user_id = r->session->user_id;
	if (!db_begin())
		goto fail;
	if ((rc = payment_mark_paid(r, &o, &p, PAY_LEDGER)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		refuse(r, &o, 409, "This order is not waiting for payment.");
		return;
	}
	if (!db_commit())
		goto fail;
	back(r, &o, "paid");
	return;
rollback:
	db_rollback();
fail:
	refuse(r, &o, 503, page_not_saved(r));
}

/* Sets or clears the claim of the order. */
static void
claim(struct request *r, int take)
{
	struct order	o;
	int64_t		uid;
	int		rc;

	if (!action_start(r, &o))
		return;
	uid = r->session->user_id;
	if (!db_begin())
		goto fail;
	if ((rc = take ? db_update(ST_ORDER_CLAIM, "iii", uid, now_unix(),
	    o.id) : db_update(ST_ORDER_CLAIM, "nii", now_unix(), o.id)) < 0 ||
	    (rc == 1 && !audit_log(r, uid, take ? "claim" : "release", o.id,
	    ""))) {
		db_rollback();
		goto fail;
	}
	/* Already so (a second click): nothing to record. */
	if (rc == 0)
		db_rollback();
	else if (!db_commit())
		goto fail;
	back(r, &o, take ? "claim" : "release");
	return;
fail:
	refuse(r, &o, 503, page_not_saved(r));
}

/* POST /admin/orders/ID/claim */
void
page_admin_claim(struct request *r)
{
	claim(r, 1);
}

/* POST /admin/orders/ID/release */
void
page_admin_release(struct request *r)
{
	claim(r, 0);
}

/* Checks r's files (attach_check) into *kinds, before any transaction.
 * Returns 1, or answers the order page again with 400, why by the files
 * field and the typed text kept (nothing stored), and returns 0. */
static int
files_checked(struct request *r, const struct order *o, const char ***kinds)
{
	const char *why;

	*kinds = req_alloc(r, (r->nfiles + 1) * sizeof(**kinds));
	if ((why = attach_check(r, *kinds)) == NULL)
		return 1;
	order_view(r, o, 400, NULL, "Nothing was saved: see the files below.",
	    r->route->fields == reply_fields ? r->fields[RF_BODY].value : NULL,
	    0, why);
	return 0;
}

/* Saves body as order o's reply draft, with r's files (checked: kinds)
 * added to the draft, in one transaction with its audit row. Returns 1,
 * 0 when the order is not waiting for an answer (nothing saved), -1 on
 * failure (nothing saved). */
static int
draft_save(struct request *r, const struct order *o, const char *body,
    const char **kinds)
{
	int64_t	uid = r->session->user_id;
	int	rc;

	if (!db_begin())
		return -1;
	if ((rc = db_update(ST_ORDER_SET_DRAFT, "tii", body, now_unix(),
	    o->id)) < 0 || (rc == 1 && (!attach_store(r, kinds, o->id, 0,
	    uid) || !audit_log(r, uid, "save draft", o->id, r->nfiles > 0 ?
	    req_printf(r, "%zu file%s added", r->nfiles, r->nfiles == 1 ?
	    "" : "s") : "")))) {
		db_rollback();
		return -1;
	}
	if (rc == 0) {
		db_rollback();
		return 0;
	}
	return db_commit() ? 1 : -1;
}

/* POST /admin/orders/ID/draft: saves the draft and the files sent with
 * it (they stay on the draft until the reply is sent); with preview=1
 * shows it rendered; with snippet=ID appends that snippet first. */
void
page_admin_draft(struct request *r)
{
	struct order	 o;
	const char	*body, **kinds;
	sqlite3_stmt	*s;
	int64_t		 sid;
	int		 rc;

	if (!action_start(r, &o) || !files_checked(r, &o, &kinds))
		return;
	body = r->fields[RF_BODY].value;
	if (*r->fields[RF_SNIPPET].value != '\0' &&
	    parse_int64(r->fields[RF_SNIPPET].value, 1, INT64_MAX, &sid) &&
	    (s = db_stmt(ST_SNIPPET_BY_ID)) != NULL && db_bind(s, "i", sid)) {
		if (db_step(ST_SNIPPET_BY_ID) == DB_ROW)
			body = req_printf(r, "%s%s%s", body, *body ? "\n\n" :
			    "", db_text(s, 1));
		db_done(ST_SNIPPET_BY_ID);
	}
	if (utf8_len(body) > REPLY_MAX) {
		refuse(r, &o, 400, "The reply is too long.");
		return;
	}
	if ((rc = draft_save(r, &o, body, kinds)) < 0) {
		/* Nothing is lost: the text is shown again with the error. */
		order_view(r, &o, 503, NULL, "The draft could not be saved. "
		    "Your text is below; please try again.", body, 0, NULL);
		return;
	}
	if (rc == 0) {
		order_view(r, &o, 409, NULL, "This order is not waiting for an "
		    "answer (it may have just been answered), so the draft was "
		    "not saved. Your text is below.", body, 0, NULL);
		return;
	}
	if (*r->fields[RF_PREVIEW].value != '\0' ||
	    *r->fields[RF_SNIPPET].value != '\0') {
		order_view(r, &o, 200, *r->fields[RF_PREVIEW].value ?
		    "Draft saved. The preview below is what the client will "
		    "see." : "Snippet inserted and draft saved.", NULL, body,
		    *r->fields[RF_PREVIEW].value != '\0', NULL);
		return;
	}
	back(r, &o, "draft");
}

/* The second step of "Send reply" without JavaScript: shows the reply as
 * the client will see it, and the draft's files, with a form that posts
 * it again with confirm=yes. Answers 409 when the order is not waiting
 * for an answer, 503 when its files cannot be read. */
static void
reply_confirm_view(struct request *r, const struct order *o,
    const char *body)
{
	struct tvars		 tv = { .n = 0 };
	struct file_item	*files;
	int64_t			 n;

	if (strcmp(o->status, "paid") != 0 &&
	    strcmp(o->status, "followup") != 0) {
		refuse(r, o, 409, "This order is not waiting for an answer "
		    "(it may have just been answered). Your text is kept "
		    "below.");
		return;
	}
	if ((n = files_of_order(r, o->id, &files)) < 0) {
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "id", req_printf(r, "%lld", (long long)o->id));
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "email", o->email);
	tv_set(&tv, "body", body);
	tv_set(&tv, "preview_html", req_keep(r, md_render(body)));
	if (files_tv(r, &tv, "files", files, n, 0, "/admin/files/") > 0)
		tv_set(&tv, "has_files", "1");
	page_render(r, 200, req_printf(r, "Send the reply to %s?",
	    o->number), "admin_reply_confirm.html", &tv);
}

/* Makes the reply draft's files (with those sent with the reply) the
 * files of reply message mid, and lists them in tv as files for the
 * answer email, with the client's download links. Inside the sending
 * transaction. Returns 1 or 0. */
static int
reply_files(struct request *r, const struct order *o, int64_t mid,
    struct tvars *tv)
{
	struct file_item	*files;
	int64_t			 moved, n, left = 0;
	char			*url;

	if ((moved = db_update(ST_FILES_DRAFT_SEND, "ii", mid, o->id)) < 0 ||
	    (n = files_of_order(r, o->id, &files)) < 0 ||
	    (url = order_track_url(r, o->id)) == NULL)
		return 0;
	for (int64_t i = 0; i < n; i++)
		left += files[i].message_id == 0;
	/* What the email lists is what the reply has: every draft file. */
	if (moved > 0)
		tv_set(tv, "has_files", "1");
	if (files_tv(r, tv, "files", files, n, mid, req_printf(r,
	    "%s/files/", url)) != moved || left != 0) {
		log_msg("reply: order %lld: the draft's files did not all "
		    "move to the reply", (long long)o->id);
		return 0;
	}
	return 1;
}

/* Sets the answer email's variables for o's reply body (first: the
 * order's first answer; paid, refunded: its money). Returns 1, or 0
 * when the refund link cannot be made. */
static int
answer_vars(struct request *r, const struct order *o, const char *body,
    int first, int64_t net, struct tvars *tv)
{
	char *refund;

	if ((refund = order_refund_url(r, o)) == NULL)
		return 0;
	tv_set(tv, "amount", page_money(r, net, o->currency));
	/* The answer as an email shows it (no image loaded), and as plain
	 * text. */
	tv_set(tv, "answer_html", req_keep(r, md_render_mail(body)));
	tv_set(tv, "answer_text", req_keep(r, md_plain(body)));
	tv_set(tv, "refund_url", refund);
	tv_set(tv, "first", first ? "1" : "");
	/* What the client can still do after this answer: a follow-up
	 * only while the included ones are not all used. */
	tv_set(tv, "followups_left", o->followups_used <
	    conf.followups_included ? req_printf(r, "%lld", (long long)
	    (conf.followups_included - o->followups_used)) : "");
	tv_set(tv, "followups_spent", conf.followups_included > 0 ? "1" : "");
	tv_set(tv, "rate_yes_url", req_printf(r, "%s?rating=yes",
	    order_track_url(r, o->id)));
	return 1;
}

/* The reply was not sent: why (409), or the page again (503). */
static void
reply_refused(struct request *r, const struct order *o, int rc,
    const char *body)
{
	if (rc == 0)
		refuse(r, o, 409, "This order is not waiting for an answer "
		    "(it may have just been answered). Your text is kept "
		    "below.");
	else
		order_view(r, o, 503, NULL, "The reply could not be sent: "
		    "nothing was saved. Your text is below; please try again.",
		    body, 0, NULL);
}

/* POST /admin/orders/ID/reply: sends the answer, with the draft's files
 * and those sent with it, when confirm=yes; else asks for confirmation
 * first (reply_confirm_view), the files sent with the form stored on
 * the draft before (a browser cannot send them again). */
void
page_admin_reply(struct request *r)
{
	struct order	 o;
	struct tvars	 tv = { .n = 0 };
	const char	*body, *html, **kinds;
	int64_t		 now = now_unix(), uid, paid, refunded;
	int		 first, rc;

	if (!action_start(r, &o) || !files_checked(r, &o, &kinds))
		return;
	uid = r->session->user_id;
	body = r->fields[RF_BODY].value;
	if (*body == '\0') {
		refuse(r, &o, 400, "Write the reply before sending it.");
		return;
	}
	if (strcmp(r->fields[RF_CONFIRM].value, "yes") != 0) {
		if (r->nfiles > 0 && (rc = draft_save(r, &o, body, kinds)) < 1)
			reply_refused(r, &o, rc, body);
		else
			reply_confirm_view(r, &o, body);
		return;
	}
	if (!db_begin())
		goto fail;
	/* The order as this transaction finds it, before its answer: the
	 * mail tells whether it is the first, and what was paid. */
	if (order_load(r, o.id, &o) != 1 ||
	    !order_balance(o.id, &paid, &refunded) ||
	    (rc = db_update(ST_ORDER_ANSWER, "ii", now, o.id)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		reply_refused(r, &o, 0, body);
		return;
	}
	first = o.answered_at == 0;
	o.answered_at = first ? now : o.answered_at;
	html = req_keep(r, md_render(body));
	if (!answer_vars(r, &o, body, first, paid - refunded, &tv) ||
	    !attach_store(r, kinds, o.id, 0, uid) ||
	    db_run(ST_MESSAGE_INSERT, "itttii", o.id, "reply", body, html,
	    uid, now) != DB_DONE || !reply_files(r, &o, db_last_id(), &tv) ||
	    !order_history(o.id, "answered", uid, "") ||
	    !audit_log(r, uid, "send reply", o.id, "") ||
	    !order_mail(r, &o, "answer", &tv))
		goto rollback;
	tv_free(&tv);
	if (!db_commit())
		goto fail;
	back(r, &o, "reply");
	return;
rollback:
	tv_free(&tv);
	db_rollback();
fail:
	reply_refused(r, &o, -1, body);
}

/* POST /admin/orders/ID/note: the note and its files (staff only). */
void
page_admin_note(struct request *r)
{
	struct order	 o;
	const char	**kinds;
	int64_t		 uid;
	int		 rc;

	if (!action_start(r, &o) || !files_checked(r, &o, &kinds))
		return;
	uid = r->session->user_id;
	if (!db_begin())
		goto fail;
	/* Erased since action_start read it: nothing is added. */
	if ((rc = page_order_erased(o.id)) != 0) {
		db_rollback();
		if (rc < 0)
			goto fail;
		refuse(r, &o, 409, "This order's personal data was erased: "
		    "nothing can be added to it or changed.");
		return;
	}
	if (db_run(ST_MESSAGE_INSERT, "itttii", o.id, "note",
	    r->fields[NF_BODY].value, req_keep(r,
	    md_render(r->fields[NF_BODY].value)), uid, now_unix()) !=
	    DB_DONE || !attach_store(r, kinds, o.id, db_last_id(), uid) ||
	    !audit_log(r, uid, "add note", o.id, "")) {
		db_rollback();
		goto fail;
	}
	if (!db_commit())
		goto fail;
	back(r, &o, "note");
	return;
fail:
	refuse(r, &o, 503, page_not_saved(r));
}

/* POST /admin/orders/ID/files/FILE/remove: takes a file off the reply
 * draft (only a draft's: a sent reply's or a note's files stay). */
void
page_admin_draft_file_remove(struct request *r)
{
	struct order	o;
	int64_t		fid, uid;
	int		rc;

	if (!action_start(r, &o))
		return;
	uid = r->session->user_id;
	if (r->arg2 == NULL || !parse_int64(r->arg2, 1, INT64_MAX, &fid)) {
		refuse(r, &o, 404, "There is no such file on the draft.");
		return;
	}
	if (!db_begin())
		goto fail;
	if ((rc = db_update(ST_FILE_DRAFT_REMOVE, "ii", fid, o.id)) < 0 ||
	    (rc == 1 && !audit_log(r, uid, "remove draft file", o.id,
	    req_printf(r, "file %lld", (long long)fid)))) {
		db_rollback();
		goto fail;
	}
	if (rc == 0) {
		db_rollback();
		refuse(r, &o, 404, "That file is not on the draft (it may have "
		    "been removed, or sent with the reply).");
		return;
	}
	if (!db_commit())
		goto fail;
	back(r, &o, "file_removed");
	return;
fail:
	refuse(r, &o, 503, page_not_saved(r));
}

/* POST /admin/orders/ID/cancel: only an unpaid order; a paid one is
 * refunded through the refund flow. */
void
page_admin_cancel(struct request *r)
{
	struct order	o;
	struct tvars	tv = { .n = 0 };
	int64_t		uid;
	const char	*reason;
	int		rc;

	if (!action_start(r, &o))
		return;
	uid = r->session->user_id;
	reason = r->fields[CF_REASON].value;
	if (!db_begin())
		goto fail;
	if ((rc = db_update(ST_ORDER_CANCEL, "ii", now_unix(), o.id)) < 0)
		goto rollback;
	if (rc == 0) {
		db_rollback();
		refuse(r, &o, 409, "Only an order that was never paid can be "
		    "cancelled. A paid order is refunded through the refund "
		    "flow.");
		return;
	}
	tv_set(&tv, "reason", reason);
	/* An open Checkout Session must not take money for a cancelled
	 * order: a pay job ("pmbctl pay send") expires it at Stripe after
	 * COMMIT, as the outbox sends mail; the session row turns expired
	 * when that job is done or checkout.session.expired arrives. Until
	 * then nothing offers it: /o/TOKEN/pay takes only orders waiting
	 * for payment, and a payment that still slips through is flagged
	 * paid_after_cancel. */
	if (!payment_sessions_end(o.id, "the order was cancelled") ||
	    !order_history(o.id, "cancelled", uid, reason) ||
	    !files_remove_order(o.id) ||
	    !audit_log(r, uid, "cancel", o.id, reason) ||
	    !order_mail(r, &o, "cancelled", &tv))
		goto rollback;
	if (!db_commit())
		goto fail;
	back(r, &o, "cancel");
	return;
rollback:
	db_rollback();
fail:
	refuse(r, &o, 503, page_not_saved(r));
}
