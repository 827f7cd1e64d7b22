/* page_admin_inbox.c: the consultant's inbox (issue 18): the received
 * mail the intake (mail_intake.h) could not put on an order by itself —
 * a sender who is not the order's client, no order named, a refunded
 * order — waits here. GET /admin/inbox lists it (?show=done: what was
 * decided), GET /admin/inbox/ID shows one message, GET
 * /admin/inbox/ID/raw downloads it as received, and POST
 * /admin/inbox/ID/attach and /discard decide, each once: a guarded
 * UPDATE, so that two consultants deciding at once get one 303 and one
 * 409. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "router.h"

#define INBOX_PAGE	50

/* Returns NULL if v is a message id (the before field). */
static const char *
check_inbound_id(const char *v)
{
	int64_t n;

	return parse_int64(v, 1, INT64_MAX, &n) ? NULL :
	    "Not a valid message number.";
}

/* Returns NULL if v is "done" (the show field: the decided messages). */
static const char *
check_show(const char *v)
{
	return strcmp(v, "done") == 0 ? NULL :
	    "The show field takes only \"done\".";
}

/* Returns NULL if v names an order: "PMB-000123" or "123". */
static const char *
check_order_number(const char *v)
{
	return order_number_parse(v, NULL) > 0 ? NULL : "Enter an order number "
	    "such as PMB-000123 or 123.";
}

/* Returns NULL if v is "client" or "note" (the as field). */
static const char *
check_as(const char *v)
{
	return strcmp(v, "client") == 0 || strcmp(v, "note") == 0 ? NULL :
	    "Attach it as the client's message or as an internal note.";
}

/* The fields of the inbox's pages and forms (an interface). */
const struct field inbox_fields[] = {
#define IF_SHOW		0
	{ "show", "what to show", 0, 4, 0, check_show },
#define IF_BEFORE	1
	{ "before", "the page", 0, 20, 0, check_inbound_id },
	FIELDS_END
};
const struct field inbox_attach_fields[] = {
#define AF_ORDER	0
	{ "order", "the order", 1, 30, F_REQUIRED, check_order_number },
#define AF_AS		1
	{ "as", "attach as", 0, 6, 0, check_as },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};
const struct field inbox_discard_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* What the intake counted and dropped (inbound_drops.reason), in the
 * footer's words: one, many. */
static const struct {
	const char	*reason;
	const char	*one;
	const char	*many;
} drop_words[] = {
	{ "auto_submitted", "auto-reply", "auto-replies" },
	{ "precedence", "bulk or list message", "bulk or list messages" },
	{ "loop", "of our own messages come back",
	    "of our own messages come back" },
	{ "rate", "over the hourly limit from one sender",
	    "over the hourly limit from one sender" },
	{ "bounce_unknown", "bounce of no message of ours",
	    "bounces of no message of ours" },
	{ "empty", "empty", "empty" },
};

/* Returns the footer's sentence of the dropped counts ("12 auto-replies,
 * 3 bulk or list messages, ..."), owned by r, or NULL on a database
 * error. */
static const char *
drops_text(struct request *r)
{
	sqlite3_stmt	*s = db_stmt(ST_INBOX_DROPS);
	int64_t		 n[ARRAY_LEN(drop_words)] = { 0 };
	struct buf	 b;
	int		 rc;

	if (s == NULL)
		return NULL;
	while ((rc = db_step(ST_INBOX_DROPS)) == DB_ROW)
		for (size_t i = 0; i < ARRAY_LEN(drop_words); i++)
			if (strcmp(db_text(s, 0), drop_words[i].reason) == 0)
				n[i] = sqlite3_column_int64(s, 1);
	db_done(ST_INBOX_DROPS);
	if (rc != DB_DONE)
		return NULL;
	buf_init(&b);
	for (size_t i = 0; i < ARRAY_LEN(drop_words); i++)
		buf_printf(&b, "%s%lld %s", i > 0 ? ", " : "",
		    (long long)n[i], n[i] == 1 ? drop_words[i].one :
		    drop_words[i].many);
	return req_keep(r, buf_take(&b));
}

/* An order's number as shown, owned by r. */
static const char *
number_text(struct request *r, int64_t id)
{
	return req_printf(r, "PMB-%06lld", (long long)id);
}

/* Returns what became of a decided message (INBOX_COLS row s), in
 * words, owned by r. */
static const char *
outcome_text(struct request *r, sqlite3_stmt *s)
{
	const char	*status = db_text(s, 6), *who = db_text(s, 10);
	int64_t		 oid = sqlite3_column_int64(s, 8);
	const char	*at = page_time(r, sqlite3_column_int64(s, 9));

	if (!strcmp(status, "attached"))
		return req_printf(r, "attached to %s by %s, %s",
		    number_text(r, oid), *who ? who : "someone", at);
	if (!strcmp(status, "discarded"))
		return req_printf(r, "discarded by %s, %s", *who ? who :
		    "someone", at);
	if (!strcmp(status, "routed"))
		return req_printf(r, "put on %s by itself, the client's "
		    "reply: %s", number_text(r, oid), db_text(s, 5));
	if (!strcmp(status, "bounce"))
		return oid > 0 ? req_printf(r, "a bounce of our email to "
		    "%s", number_text(r, oid)) : "a bounce of our email";
	return "waiting in the inbox";
}

/* Sets the variables of one inbound message (an INBOX_COLS row) in tv:
 * its headers, why it is here, the order it names, what became of it;
 * with whole (an INBOX_BY_ID row), its text and attachments too. */
static void
inbound_vars(struct request *r, sqlite3_stmt *s, struct tvars *tv,
    int whole)
{
	const char	*name = db_text(s, 2), *addr = db_text(s, 1);
	int64_t		 sug = sqlite3_column_int64(s, 7);
	int64_t		 oid = sqlite3_column_int64(s, 8);

	tv_set(tv, "in_id", req_printf(r, "%lld",
	    (long long)sqlite3_column_int64(s, 0)));
	tv_set(tv, "from_name", req_strdup(r, name));
	tv_set(tv, "from_addr", req_strdup(r, addr));
	tv_set(tv, "subject", req_strdup(r, db_text(s, 3)));
	tv_set(tv, "received", page_time(r, sqlite3_column_int64(s, 4)));
	tv_set(tv, "reason", req_strdup(r, db_text(s, 5)));
	/* A routed message's reason is what it became (in outcome). */
	tv_set(tv, "why", strcmp(db_text(s, 6), "routed") != 0 ?
	    req_strdup(r, db_text(s, 5)) : "");
	tv_set(tv, "waiting", !strcmp(db_text(s, 6), "inbox") ? "1" : "");
	tv_set(tv, "outcome", outcome_text(r, s));
	if (sug > 0) {
		tv_set(tv, "suggested_id", req_printf(r, "%lld",
		    (long long)sug));
		tv_set(tv, "suggested", number_text(r, sug));
	}
	if (oid > 0) {
		tv_set(tv, "order_id", req_printf(r, "%lld", (long long)oid));
		tv_set(tv, "order_number", number_text(r, oid));
	}
	if (sqlite3_column_int64(s, 13) > 0)
		tv_set(tv, "outbox_id", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 13)));
	if (!whole)
		return;
	tv_set(tv, "via", !strcmp(db_text(s, 11), "imap") ? "IMAP mailbox" :
	    "mail server's pipe");
	tv_set(tv, "size", req_printf(r, "%lld",
	    (long long)sqlite3_column_int64(s, 12)));
	tv_set(tv, "text", req_strdup(r, db_text(s, 15)));
	for (const char *p = db_text(s, 14); *p != '\0';) {
		size_t n = strcspn(p, "\n");

		if (n > 0)
			tv_set(tv_row(tv, "attachments"), "attachment",
			    req_printf(r, "%.*s", (int)n, p));
		p += n + (p[n] == '\n');
	}
}

/* Renders the inbox list: waiting messages or (done) the decided ones,
 * older than before (0: the newest), with notice on top. */
static void
inbox_list(struct request *r, int done, int64_t before, const char *notice)
{
	enum stmt	 st = done ? ST_INBOX_DONE : ST_INBOX_WAITING;
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s = db_stmt(st);
	const char	*drops;
	int64_t		 last = 0;
	int		 n = 0, more = 0, rc = DB_ERROR;

	if (s != NULL && db_bind(s, "ii", before > 0 ? before : INT64_MAX,
	    (int64_t)INBOX_PAGE + 1)) {
		while ((rc = db_step(st)) == DB_ROW) {
			if (n == INBOX_PAGE) {
				more = 1;
				break;
			}
			n++;
			last = sqlite3_column_int64(s, 0);
			inbound_vars(r, s, tv_row(&tv, "rows"), 0);
		}
		db_done(st);
	}
	if ((drops = drops_text(r)) == NULL)
		rc = DB_ERROR;
	if (!page_list_vars(r, &tv, rc == DB_ERROR ? -1 : n))
		return;
	tv_set(&tv, "done_view", done ? "1" : "");
	tv_set(&tv, "notice", notice);
	tv_set(&tv, "drops", drops);
	tv_set(&tv, "paged", before > 0 ? "1" : "");
	if (more)
		tv_set(&tv, "older", req_printf(r, "%lld", (long long)last));
	page_render(r, 200, done ? "Inbox: decided" : "Inbox",
	    "admin_inbox.html", &tv);
}

/* GET /admin/inbox */
void
page_admin_inbox(struct request *r)
{
	static const char *const notices[] = {
		"attached", "The message was attached to the order.",
		"discarded", "The message was discarded.",
		NULL
	};
	int64_t before = 0;

	/* The gate refused invalid fields (400) before this. */
	if (*r->fields[IF_BEFORE].value != '\0' &&
	    !parse_int64(r->fields[IF_BEFORE].value, 1, INT64_MAX, &before))
		before = 0;
	inbox_list(r, *r->fields[IF_SHOW].value != '\0', before,
	    page_done_notice(r, notices));
}

/* Parses the message id of the path; returns it, or 0. */
static int64_t
inbound_arg(const struct request *r)
{
	int64_t id;

	return r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, &id) ?
	    id : 0;
}

/* Renders message id's page with status; error goes on top (a refused
 * decision), and the attach form holds what was typed when typed is
 * set. Answers 404 when there is no such message. */
static void
inbound_view(struct request *r, int64_t id, int status, const char *error,
    int typed)
{
	struct tvars	 tv = { .n = 0 };
	sqlite3_stmt	*s = db_stmt(ST_INBOX_BY_ID);
	int		 rc = DB_ERROR;

	if (s != NULL && db_bind(s, "i", id)) {
		if ((rc = db_step(ST_INBOX_BY_ID)) == DB_ROW)
			inbound_vars(r, s, &tv, 1);
		db_done(ST_INBOX_BY_ID);
	}
	if (!page_found(r, rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1,
	    "No such message", "There is no received message with this "
	    "number.")) {
		tv_free(&tv);
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "form_message", error);
	if (typed) {
		tv_set(&tv, "order", r->fields[AF_ORDER].value);
		tv_set(&tv, "err_order", r->fields[AF_ORDER].error);
		tv_set(&tv, "as_client", !strcmp(r->fields[AF_AS].value,
		    "client") ? "1" : "");
		tv_set(&tv, "err_as", r->fields[AF_AS].error);
	} else if (tv_get(&tv, "suggested") != NULL)
		tv_set(&tv, "order", tv_get(&tv, "suggested"));
	page_render(r, status, req_printf(r, "Received message %lld",
	    (long long)id), "admin_inbox_msg.html", &tv);
}

/* GET /admin/inbox/ID */
void
page_admin_inbox_message(struct request *r)
{
	inbound_view(r, inbound_arg(r), 200, NULL, 0);
}

/* GET /admin/inbox/ID/raw: the message as received, as a download
 * (message/rfc822, never rendered: the security headers' nosniff). */
void
page_admin_inbox_raw(struct request *r)
{
	sqlite3_stmt	*s = db_stmt(ST_INBOX_RAW);
	int64_t		 id = inbound_arg(r);
	int		 rc = DB_ERROR;

	if (s != NULL && db_bind(s, "i", id) &&
	    (rc = db_step(ST_INBOX_RAW)) == DB_ROW) {
		http_header(r, "Content-Disposition", req_printf(r,
		    "attachment; filename=\"pmb-inbound-%lld.eml\"",
		    (long long)id));
		http_open(r, 200, "message/rfc822");
		http_write(r, sqlite3_column_blob(s, 0),
		    (size_t)sqlite3_column_bytes(s, 0));
	}
	if (s != NULL)
		db_done(ST_INBOX_RAW);
	if (rc != DB_ROW)
		page_found(r, rc == DB_DONE ? 0 : -1, "No such message",
		    "There is no received message with this number.");
}

/* The kind of message the client's email becomes on order o: more
 * information while the order is not answered yet or a follow-up is
 * being answered; after that, a message outside the allowance. */
static const char *
client_kind(const struct order *o)
{
	return !strcmp(o->status, "awaiting_payment") ||
	    !strcmp(o->status, "paid") || !strcmp(o->status, "followup") ?
	    "info" : "extra";
}

/* Reads message id's sender's address and (if body is not NULL) its
 * text, owned by r. Returns 1, or 0 on a database error or none. */
static int
inbound_text(struct request *r, int64_t id, const char **from,
    const char **body)
{
	sqlite3_stmt	*s = db_stmt(ST_INBOX_BY_ID);
	int		 ok = 0;

	if (s != NULL && db_bind(s, "i", id) &&
	    db_step(ST_INBOX_BY_ID) == DB_ROW) {
		*from = req_strdup(r, db_text(s, 1));
		if (body != NULL)
			*body = req_strdup(r, db_text(s, 15));
		ok = 1;
	}
	if (s != NULL)
		db_done(ST_INBOX_BY_ID);
	return ok;
}

/* Attaches message id to order o as kind (a note by user uid, or the
 * client's), inside the caller's transaction, audited. Returns 1, 0
 * when someone decided on it first, -1 on a database error. */
static int
attach(struct request *r, int64_t id, const struct order *o,
    const char *kind, int64_t uid)
{
	const char	*body, *from;
	int64_t		 now = now_unix();
	int		 rc;

	if ((rc = db_update(ST_INBOX_ATTACH, "iiii", o->id, now, uid, id)) <= 0)
		return rc;
	if (!inbound_text(r, id, &from, &body))
		return -1;
	rc = !strcmp(kind, "note") ?
	    db_run(ST_MESSAGE_INSERT_INBOUND, "ittniii", o->id, kind, body,
	    uid, now, id) :
	    db_run(ST_MESSAGE_INSERT_INBOUND, "ittnnii", o->id, kind, body,
	    now, id);
	if (rc != DB_DONE || !audit_log(r, uid, "attach email", o->id,
	    req_printf(r, "received message %lld from %s, as %s",
	    (long long)id, from, kind)))
		return -1;
	return 1;
}

/* Ends the transaction of a decision on message id whose writes
 * returned rc (1 done, 0 someone decided first, -1 failed): commits and
 * answers 303 to the inbox with ?done=done, or rolls back and answers
 * 409 with the message's page (404 if there is none). Returns 1 when it
 * answered, 0 when the write or the commit failed (rolled back: the
 * caller answers). */
static int
decision_end(struct request *r, int64_t id, int rc, const char *done)
{
	if (rc > 0 && db_commit()) {
		http_redirect(r, req_printf(r, "/admin/inbox?done=%s", done));
		return 1;
	}
	db_rollback();
	if (rc != 0)
		return 0;
	inbound_view(r, id, 409, "Someone decided on this message first, "
	    "so nothing was changed: see below what became of it.", 0);
	return 1;
}

/* Answers status with message id's page, the order field saying that
 * o's personal data was erased: nothing is attached to such an order
 * (sql/024_erased_guard.sql holds it for every writer). */
static void
attach_refused_erased(struct request *r, int64_t id, const struct order *o,
    int status)
{
	r->fields[AF_ORDER].error = req_printf(r, "The personal data of %s "
	    "was erased: nothing can be attached to it.", o->number);
	inbound_view(r, id, status, "The message was not attached: see "
	    "below.", 1);
}

/* POST /admin/inbox/ID/attach */
void
page_admin_inbox_attach(struct request *r)
{
	struct order	 o;
	int64_t		 id = inbound_arg(r), oid;
	const char	*as = r->fields[AF_AS].value, *kind;
	int		 rc;

	if (!r->csrf_ok) {
		page_csrf_failed(r);
		return;
	}
	if (r->nerrors > 0) {
		inbound_view(r, id, 400, "The message was not attached: see "
		    "below.", 1);
		return;
	}
	oid = order_number_parse(r->fields[AF_ORDER].value, NULL);
	if ((rc = order_load(r, oid, &o)) < 0) {
		page_unavailable(r);
		return;
	}
	if (rc == 0) {
		r->fields[AF_ORDER].error = req_printf(r, "There is no order "
		    "%s.", number_text(r, oid));
		inbound_view(r, id, 400, "The message was not attached: see "
		    "below.", 1);
		return;
	}
	if (o.erased_at != 0) {
		attach_refused_erased(r, id, &o, 400);
		return;
	}
	if (!db_begin())
		goto fail;
	/* The order's status is read again in the transaction. */
	if (order_load(r, oid, &o) <= 0)
		rc = -1;
	else if (o.erased_at != 0) {	/* erased since */
		db_rollback();
		attach_refused_erased(r, id, &o, 409);
		return;
	} else {
		kind = strcmp(as, "client") == 0 ? client_kind(&o) : "note";
		rc = attach(r, id, &o, kind, r->session->user_id);
	}
	if (decision_end(r, id, rc, "attached"))
		return;
fail:
	inbound_view(r, id, 503, page_not_saved(r), 1);
}

/* POST /admin/inbox/ID/discard */
void
page_admin_inbox_discard(struct request *r)
{
	int64_t		 id = inbound_arg(r), uid = r->session->user_id;
	const char	*from;
	int		 rc;

	if (!db_begin())
		goto fail;
	rc = db_update(ST_INBOX_DISCARD, "iii", now_unix(), uid, id);
	if (rc > 0 && (!inbound_text(r, id, &from, NULL) ||
	    !audit_log(r, uid, "discard email", 0, req_printf(r,
	    "received message %lld from %s", (long long)id, from))))
		rc = -1;
	if (decision_end(r, id, rc, "discarded"))
		return;
fail:
	page_unavailable(r);
}
