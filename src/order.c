/* order.c: loading orders and the rows every change of one writes. */
#include <string.h>
#include <strings.h>

#include "attach.h"
#include "audit.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "token.h"

#define HOUR	3600

/* Returns column c as a request-owned string. */
static char *
col_str(struct request *r, sqlite3_stmt *s, int c)
{
	return req_strdup(r, db_text(s, c));
}

/* The number of ORDER_STATUS_COLUMNS (db_stmts.h). */
#define ORDER_STATUS_NCOLUMNS	18

/* Loads order id with statement st (ORDER_BY_ID or ORDER_STATUS_BY_ID)
 * into o; the client's details are read only if st selects them. Returns
 * as order_load. */
static int
order_fetch(struct request *r, enum stmt st, int64_t id, struct order *o)
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	memset(o, 0, sizeof(*o));
	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	rc = db_step(st);
	if (rc != DB_ROW) {
		db_done(st);
		return rc == DB_DONE ? 0 : -1;
	}
	o->id = sqlite3_column_int64(s, 0);
	o->number = col_str(r, s, 1);
	o->name = col_str(r, s, 2);
	o->price = sqlite3_column_int64(s, 3);
	o->currency = col_str(r, s, 4);
	o->status = col_str(r, s, 5);
	o->created_at = sqlite3_column_int64(s, 6);
	o->due_at = sqlite3_column_int64(s, 7);
	o->paid_at = sqlite3_column_int64(s, 8);
	o->answered_at = sqlite3_column_int64(s, 9);
	o->answer_viewed_at = sqlite3_column_int64(s, 10);
	o->refund_requested_at = sqlite3_column_int64(s, 11);
	o->refunded_at = sqlite3_column_int64(s, 12);
	o->cancelled_at = sqlite3_column_int64(s, 13);
	o->followups_used = sqlite3_column_int64(s, 14);
	o->last_answered_at = sqlite3_column_int64(s, 15);
	o->rating = col_str(r, s, 16);
	o->erased_at = sqlite3_column_int64(s, 17);
	if (sqlite3_column_count(s) > ORDER_STATUS_NCOLUMNS) {
		o->email = col_str(r, s, 18);
		o->company = col_str(r, s, 19);
		o->website = col_str(r, s, 20);
		o->topic = col_str(r, s, 21);
	} else		/* not read: empty, never NULL */
		o->email = o->company = o->website = o->topic = "";
	db_done(st);
	return 1;
}

int
order_load(struct request *r, int64_t id, struct order *o)
{
	return order_fetch(r, ST_ORDER_BY_ID, id, o);
}

int
order_load_status(struct request *r, int64_t id, struct order *o)
{
	return order_fetch(r, ST_ORDER_STATUS_BY_ID, id, o);
}

int
order_history(int64_t order_id, const char *status, int64_t user_id,
    const char *note)
{
	return (user_id > 0 ?
	    db_run(ST_HISTORY_INSERT, "itiit", order_id, status, now_unix(),
	    user_id, note) :
	    db_run(ST_HISTORY_INSERT, "itint", order_id, status, now_unix(),
	    note)) == DB_DONE;
}

char *
order_track_url(struct request *r, int64_t id)
{
	char tok[TOKEN_TEXT_LEN + 1];

	if (!token_make(tok, TOK_TRACK, id, 0, NULL))
		return NULL;
	return req_printf(r, "%s/o/%s", conf.base_url, tok);
}

int
order_balance(int64_t id, int64_t *paid, int64_t *refunded)
{
	sqlite3_stmt	*s = db_stmt(ST_LEDGER_BALANCE);
	int		 ok;

	*paid = *refunded = 0;
	if (s == NULL || !db_bind(s, "i", id))
		return 0;
	ok = db_step(ST_LEDGER_BALANCE) == DB_ROW;
	if (ok) {
		*paid = sqlite3_column_int64(s, 0);
		*refunded = sqlite3_column_int64(s, 1);
	}
	db_done(ST_LEDGER_BALANCE);
	return ok;
}

int
answered_late(int64_t paid_at, int64_t answered_at)
{
	return answered_at != 0 && paid_at != 0 &&
	    answered_at - paid_at > conf.answer_hours * 3600;
}

int
order_late(const struct order *o)
{
	return answered_late(o->paid_at, o->answered_at);
}

int64_t
order_guarantee_end(int64_t paid_at, int64_t answered_at)
{
	if (conf.refund_if_late && answered_late(paid_at, answered_at))
		return 0;
	return answered_at + conf.guarantee_days * 86400;
}

/* Returns the end of the guarantee window of o, as order_guarantee_end;
 * while it is not answered yet, guarantee_days from now. */
static int64_t
refund_deadline(const struct order *o)
{
	if (o->answered_at == 0)
		return now_unix() + conf.guarantee_days * 86400;
	return order_guarantee_end(o->paid_at, o->answered_at);
}

int
order_refundable(const struct order *o, int64_t net_paid)
{
	int64_t end = refund_deadline(o);

	return net_paid > 0 && o->answered_at != 0 &&
	    o->refund_requested_at == 0 && (end == 0 || now_unix() < end) &&
	    (!strcmp(o->status, "answered") || !strcmp(o->status, "followup"));
}

const char *
order_refund_state(char out[REFUND_STATE_MAX], const struct order *o)
{
	char n[INT_TEXT_MAX];

	/* "refund:none" is what every link said before the state was
	 * covered: the links already sent keep working. */
	memcpy(out, "refund:", 8);
	strcat(out, o->refund_requested_at == 0 ? "none" :
	    int_text(n, o->refund_requested_at));
	return out;
}

char *
order_refund_url(struct request *r, const struct order *o)
{
	char	tok[TOKEN_TEXT_LEN + 1], state[REFUND_STATE_MAX];

	if (!token_make(tok, TOK_REFUND, o->id, refund_deadline(o),
	    order_refund_state(state, o)))
		return NULL;
	return req_cat(r, conf.base_url, "/r/", tok, (char *)NULL);
}

const char *
order_status_label(const char *st)
{
	static const struct { const char *key, *label; } labels[] = {
		{ "awaiting_payment", "Received, waiting for payment" },
		{ "paid", "Paid, being answered" },
		{ "answered", "Answered" },
		{ "followup", "Follow-up being answered" },
		{ "refund_requested", "Refund requested" },
		{ "refunded", "Refunded" },
		{ "cancelled", "Cancelled" },
	};

	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(labels[i].key, st) == 0)
			return labels[i].label;
	return st;
}

const char *
order_status_text(struct request *r, const char *st)
{
	const char *label = order_status_label(st);

	return label == st ? req_strdup(r, st) : label;
}

int
order_mail(struct request *r, const struct order *o, const char *kind,
    struct tvars *tv)
{
	char *url = order_track_url(r, o->id);

	if (url == NULL)
		return 0;
	page_vars(r, tv);
	tv_set(tv, "name", o->name);
	tv_set(tv, "number", o->number);
	tv_set(tv, "status_url", url);
	tv_set(tv, "order_currency", o->currency);
	return mail_queue(kind, o->id, o->email, o->name, tv);
}

int64_t
order_number_parse(const char *q, int *exact)
{
	size_t	n;
	int64_t	id;
	int	prefixed = 1;
	char	digits[ORDER_NUMBER_DIGITS + 1];

	q += strspn(q, " \t");
	if (strncasecmp(q, "PMB-", 4) == 0)
		q += 4;
	else if (*q == '#')
		q++;
	else
		prefixed = 0;
	if (exact != NULL)
		*exact = prefixed;
	n = strspn(q, "0123456789");
	if (n == 0 || n > ORDER_NUMBER_DIGITS ||
	    q[n + strspn(q + n, " \t")] != '\0') {
		if (exact != NULL)
			*exact = 0;	/* "#pricing": words */
		return 0;
	}
	memcpy(digits, q, n);
	digits[n] = '\0';
	/* "PMB-000000" is a number no order has; "000" is a word. */
	return parse_int64(digits, 1, INT64_MAX, &id) ? id : 0;
}

int
order_message_add(int64_t order_id, const char *kind, const char *text,
    int64_t inbound_id)
{
	if (inbound_id > 0)
		return db_run(ST_MESSAGE_INSERT_INBOUND, "ittnnii", order_id,
		    kind, text, now_unix(), inbound_id) == DB_DONE;
	return db_run(ST_MESSAGE_INSERT, "ittnni", order_id, kind, text,
	    now_unix()) == DB_DONE;
}

int
order_followup(struct request *r, const struct order *o, const char *text,
    int64_t inbound_id)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 now = now_unix();
	int		 rc, ok;

	if ((rc = db_update(ST_ORDER_FOLLOWUP, "iiii", now +
	    conf.answer_hours * HOUR, now, o->id,
	    conf.followups_included)) <= 0)
		return rc;
	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "message", text);
	/* A follow-up from the status page names its files (checked). */
	tv_set(&tv, "files", inbound_id == 0 ? attach_summary(r) : "");
	tv_set(&tv, "admin_url", req_printf(r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)o->id));
	/* Whoever asks a follow-up has seen the answer. */
	ok = db_run(ST_ORDER_SET_VIEWED, "ii", now, o->id) == DB_DONE &&
	    order_message_add(o->id, "followup", text, inbound_id) &&
	    order_history(o->id, "followup", 0, "") &&
	    audit_log(r, 0, "follow-up received", o->id,
	    inbound_id > 0 ? "by email" : "") &&
	    mail_queue("followup_alert", o->id, conf.admin_email,
	    conf.consultant_name, &tv);
	tv_free(&tv);
	return ok ? 1 : -1;
}
