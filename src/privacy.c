/* privacy.c: a client's personal data erased while the books stay
 * (issue 20). privacy_columns lists every column of every table with
 * whether it can hold personal data; the erase is driven from it: each
 * table with a personal column names the statement that wipes it
 * (wipes[] below), and a personal column of a table with none stops
 * the erase, so a column added later cannot be forgotten silently
 * (tests/privacy.py compares the list with the schema).
 *
 * The bytes really go: every connection writes with secure_delete on
 * (db.c), the order's search document is rewritten empty in the erasing
 * transaction, and privacy_scrub then merges the FTS5 index into one
 * segment (FTS5 of SQLite 3.40 has no secure-delete option: deleted
 * terms stay in old segments until a merge drops them) and checkpoints
 * the WAL with TRUNCATE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "order.h"
#include "page.h"
#include "payment.h"
#include "privacy.h"
#include "search_index.h"
#include "tmpl.h"
#include "util.h"

#define DAY	86400

/* Tries of the WAL's TRUNCATE checkpoint, 100 ms apart: 5 s. */
#define CHECKPOINT_TRIES	50

const struct privacy_column privacy_columns[] = {
	{ "audit", "id", 0, "row number" },
	{ "audit", "at", 0, "when" },
	{ "audit", "user_id", 0, "staff member" },
	{ "audit", "action", 0, "what was done, a fixed phrase" },
	{ "audit", "order_id", 0, "order id" },
	{ "audit", "ip", 1, "the client's IP address" },
	{ "audit", "detail", 1, "free text: reasons, addresses" },
	{ "card_refunds", "id", 0, "row number" },
	{ "card_refunds", "order_id", 0, "order id" },
	{ "card_refunds", "request_id", 0, "refund request id" },
	{ "card_refunds", "payment_intent", 0, "payment reference (books)" },
	{ "card_refunds", "amount", 0, "amount (books)" },
	{ "card_refunds", "currency", 0, "currency (books)" },
	{ "card_refunds", "status", 0, "state" },
	{ "card_refunds", "stripe_id", 0, "refund reference (books)" },
	{ "card_refunds", "last_error", 1, "Stripe's message, free text" },
	{ "card_refunds", "ledger_id", 0, "ledger row" },
	{ "card_refunds", "user_id", 0, "staff member" },
	{ "card_refunds", "created_at", 0, "date" },
	{ "card_refunds", "settled_at", 0, "date" },
	{ "checkout_sessions", "id", 0, "row number" },
	{ "checkout_sessions", "order_id", 0, "order id" },
	{ "checkout_sessions", "stripe_id", 0, "payment reference (books)" },
	{ "checkout_sessions", "url", 0, "Stripe's payment page" },
	{ "checkout_sessions", "amount", 0, "amount (books)" },
	{ "checkout_sessions", "currency", 0, "currency (books)" },
	{ "checkout_sessions", "status", 0, "state" },
	{ "checkout_sessions", "payment_intent", 0,
	    "payment reference (books)" },
	{ "checkout_sessions", "last_error", 1,
	    "Stripe's message, free text" },
	{ "checkout_sessions", "created_at", 0, "date" },
	{ "checkout_sessions", "expires_at", 0, "date" },
	{ "checkout_sessions", "completed_at", 0, "date" },
	{ "digest_days", "day", 0, "a day the digest went" },
	{ "digest_days", "sent_at", 0, "date" },
	{ "erasure_requests", "id", 0, "row number" },
	{ "erasure_requests", "order_id", 0, "order id" },
	{ "erasure_requests", "requested_at", 0, "date" },
	{ "erasure_requests", "done_at", 0, "date" },
	{ "erasure_requests", "done_by", 0, "staff member" },
	{ "feedback", "id", 0, "row number" },
	{ "feedback", "order_id", 0, "order id" },
	{ "feedback", "body", 1, "the client's words" },
	{ "feedback", "created_at", 0, "date" },
	{ "files", "id", 0, "row number (the row goes)" },
	{ "files", "order_id", 0, "order id (the row goes)" },
	{ "files", "message_id", 0, "message id (the row goes)" },
	{ "files", "name", 1, "the file's name (the row goes)" },
	{ "files", "kind", 0, "type of file (the row goes)" },
	{ "files", "size", 0, "bytes (the row goes)" },
	{ "files", "sha256", 1, "hash of the file's bytes (the row goes)" },
	{ "files", "user_id", 0, "staff member (the row goes)" },
	{ "files", "created_at", 0, "date (the row goes)" },
	{ "files", "data", 1, "the file's bytes (the row goes)" },
	{ "files_usage", "id", 0, "the one row" },
	{ "files_usage", "files", 0, "a count" },
	{ "files_usage", "bytes", 0, "a count" },
	{ "inbound", "id", 0, "row number" },
	{ "inbound", "message_key", 1,
	    "the email's Message-ID (made 'erased:ID')" },
	{ "inbound", "via", 0, "pipe or imap" },
	{ "inbound", "received_at", 0, "date" },
	{ "inbound", "from_addr", 1, "the sender's address" },
	{ "inbound", "from_name", 1, "the sender's name" },
	{ "inbound", "subject", 1, "free text" },
	{ "inbound", "body", 1, "the sender's words" },
	{ "inbound", "attachments", 1, "attachments' names" },
	{ "inbound", "status", 0, "state" },
	{ "inbound", "reason", 1, "why in the inbox: may quote the sender" },
	{ "inbound", "order_id", 0, "order id" },
	{ "inbound", "suggested_id", 0, "order id" },
	{ "inbound", "outbox_id", 0, "outbox id" },
	{ "inbound", "decided_at", 0, "date" },
	{ "inbound", "decided_by", 0, "staff member" },
	{ "inbound", "raw_size", 0, "a size" },
	{ "inbound", "raw", 1, "the email as received" },
	{ "inbound_drops", "reason", 0, "a fixed word" },
	{ "inbound_drops", "n", 0, "a count" },
	{ "inbound_drops", "last_at", 0, "date" },
	{ "install", "id", 0, "the one row" },
	{ "install", "key", 0, "this database's random name" },
	{ "ledger", "id", 0, "row number (books)" },
	{ "ledger", "order_id", 0, "order id (books)" },
	{ "ledger", "kind", 0, "payment or refund (books)" },
	{ "ledger", "amount", 0, "amount (books)" },
	{ "ledger", "currency", 0, "currency (books)" },
	{ "ledger", "method", 0, "payment method (books)" },
	{ "ledger", "reference", 0, "payment reference (books)" },
	{ "ledger", "at", 0, "date (books)" },
	{ "ledger", "user_id", 0, "staff member" },
	{ "messages", "id", 0, "row number" },
	{ "messages", "order_id", 0, "order id" },
	{ "messages", "kind", 0, "question, reply, ..." },
	{ "messages", "body", 1, "the question, replies, notes" },
	{ "messages", "user_id", 0, "staff member" },
	{ "messages", "created_at", 0, "date" },
	{ "messages", "html", 1, "the reply as HTML" },
	{ "messages", "inbound_id", 0, "received email id" },
	{ "order_flags", "id", 0, "row number" },
	{ "order_flags", "order_id", 0, "order id" },
	{ "order_flags", "kind", 0, "a fixed word" },
	{ "order_flags", "ref", 0, "payment reference (books)" },
	{ "order_flags", "detail", 1, "free text" },
	{ "order_flags", "created_at", 0, "date" },
	{ "order_flags", "resolved_at", 0, "date" },
	{ "order_flags", "resolution", 1, "free text" },
	{ "orders", "id", 0, "order id" },
	{ "orders", "number", 0, "the order number (books)" },
	{ "orders", "form_token", 0, "a random nonce" },
	{ "orders", "name", 1, "the client's name" },
	{ "orders", "email", 1, "the client's address" },
	{ "orders", "company", 1, "the client's company" },
	{ "orders", "website", 1, "the client's website" },
	{ "orders", "topic", 0, "a category of the settings" },
	{ "orders", "price", 0, "price (books)" },
	{ "orders", "currency", 0, "currency (books)" },
	{ "orders", "status", 0, "state" },
	{ "orders", "created_at", 0, "date" },
	{ "orders", "due_at", 0, "date" },
	{ "orders", "paid_at", 0, "date" },
	{ "orders", "answered_at", 0, "date" },
	{ "orders", "last_answered_at", 0, "date" },
	{ "orders", "answer_viewed_at", 0, "date" },
	{ "orders", "refund_requested_at", 0, "date" },
	{ "orders", "refunded_at", 0, "date" },
	{ "orders", "cancelled_at", 0, "date" },
	{ "orders", "followups_used", 0, "a count" },
	{ "orders", "claimed_by", 0, "staff member" },
	{ "orders", "reply_draft", 1, "unsent reply, may quote the client" },
	{ "orders", "rating", 0, "yes or no" },
	{ "orders", "rated_at", 0, "date" },
	{ "orders", "client_ip", 1, "the client's IP address" },
	{ "orders", "updated_at", 0, "date" },
	{ "orders", "reminded_at", 0, "date" },
	{ "orders", "erased_at", 0, "date of the erasure" },
	{ "outbox", "id", 0, "row number" },
	{ "outbox", "kind", 0, "a fixed word" },
	{ "outbox", "order_id", 0, "order id" },
	{ "outbox", "to_addr", 1, "the recipient's address" },
	{ "outbox", "to_name", 1, "the recipient's name" },
	{ "outbox", "subject", 1, "may name the client" },
	{ "outbox", "body_text", 1, "the email's text" },
	{ "outbox", "body_html", 1, "the email's HTML" },
	{ "outbox", "status", 0, "state" },
	{ "outbox", "attempts", 0, "a count" },
	{ "outbox", "next_at", 0, "date" },
	{ "outbox", "claimed_until", 0, "date" },
	{ "outbox", "last_error", 1, "the mail server's answer: the address" },
	{ "outbox", "created_at", 0, "date" },
	{ "outbox", "sent_at", 0, "date" },
	{ "outbox", "bounced_at", 0, "date" },
	{ "outbox", "bounce", 1, "the bounce's text: the address" },
	{ "outbox", "wipe_when_done", 0, "a flag" },
	{ "pay_jobs", "id", 0, "row number" },
	{ "pay_jobs", "kind", 0, "a fixed word" },
	{ "pay_jobs", "order_id", 0, "order id" },
	{ "pay_jobs", "card_refund_id", 0, "card refund id" },
	{ "pay_jobs", "session_id", 0, "checkout session id" },
	{ "pay_jobs", "status", 0, "state" },
	{ "pay_jobs", "attempts", 0, "a count" },
	{ "pay_jobs", "next_at", 0, "date" },
	{ "pay_jobs", "claimed_until", 0, "date" },
	{ "pay_jobs", "last_error", 1, "Stripe's message, free text" },
	{ "pay_jobs", "created_at", 0, "date" },
	{ "pay_jobs", "done_at", 0, "date" },
	{ "rate_events", "key", 1, "keyed by address or IP (rows go)" },
	{ "rate_events", "at", 0, "date" },
	{ "rating_counts", "rating", 0, "yes or no" },
	{ "rating_counts", "n", 0, "a count" },
	{ "refund_requests", "id", 0, "row number" },
	{ "refund_requests", "order_id", 0, "order id" },
	{ "refund_requests", "reason", 1, "the client's words" },
	{ "refund_requests", "status", 0, "state" },
	{ "refund_requests", "requested_at", 0, "date" },
	{ "refund_requests", "resolved_at", 0, "date" },
	{ "refund_requests", "resolved_by", 0, "staff member" },
	{ "refund_requests", "decline_reason", 1, "free text" },
	{ "search_fts", "name", 1, "the order's search document" },
	{ "search_fts", "email", 1, "the order's search document" },
	{ "search_fts", "question", 1, "the order's search document" },
	{ "search_fts", "replies", 1, "the order's search document" },
	{ "search_fts", "notes", 1, "the order's search document" },
	{ "search_fts_config", "k", 0, "FTS5's settings" },
	{ "search_fts_config", "v", 0, "FTS5's settings" },
	{ "search_fts_content", "id", 0, "order id" },
	{ "search_fts_content", "c0", 1, "the document's name" },
	{ "search_fts_content", "c1", 1, "the document's email" },
	{ "search_fts_content", "c2", 1, "the document's question" },
	{ "search_fts_content", "c3", 1, "the document's replies" },
	{ "search_fts_content", "c4", 1, "the document's notes" },
	{ "search_fts_data", "id", 0, "segment page number" },
	{ "search_fts_data", "block", 1,
	    "index terms (gone by privacy_scrub's merge)" },
	{ "search_fts_docsize", "id", 0, "order id" },
	{ "search_fts_docsize", "sz", 0, "token counts" },
	{ "search_fts_idx", "segid", 0, "segment number" },
	{ "search_fts_idx", "term", 1,
	    "a term's prefix (gone by privacy_scrub's merge)" },
	{ "search_fts_idx", "pgno", 0, "page number" },
	{ "search_pending", "order_id", 0, "order id" },
	{ "sessions", "id", 0, "row number" },
	{ "sessions", "id_hash", 0, "staff's session (hashed)" },
	{ "sessions", "user_id", 0, "staff member" },
	{ "sessions", "csrf", 0, "a random token" },
	{ "sessions", "created_at", 0, "date" },
	{ "sessions", "last_seen_at", 0, "date" },
	{ "sessions", "ip", 0, "staff's own IP (expired rows pruned)" },
	{ "snippets", "id", 0, "row number" },
	{ "snippets", "title", 0, "staff's own text" },
	{ "snippets", "body", 0, "staff's own text" },
	{ "snippets", "created_at", 0, "date" },
	{ "snippets", "updated_at", 0, "date" },
	{ "status_history", "id", 0, "row number" },
	{ "status_history", "order_id", 0, "order id" },
	{ "status_history", "status", 0, "state" },
	{ "status_history", "at", 0, "date" },
	{ "status_history", "user_id", 0, "staff member" },
	{ "status_history", "note", 1, "free text" },
	{ "stripe_events", "id", 0, "Stripe's event id" },
	{ "stripe_events", "type", 0, "a fixed word" },
	{ "stripe_events", "order_id", 0, "order id" },
	{ "stripe_events", "created", 0, "date" },
	{ "stripe_events", "received_at", 0, "date" },
	{ "stripe_events", "outcome", 0, "what pmb did, fixed words" },
	{ "testimonials", "id", 0, "row number (the row goes)" },
	{ "testimonials", "order_id", 0, "order id (the row goes)" },
	{ "testimonials", "sentence", 1, "the client's words (the row goes)" },
	{ "testimonials", "name_shown", 1, "the client's name (the row goes)" },
	{ "testimonials", "status", 0, "state (the row goes)" },
	{ "testimonials", "created_at", 0, "date (the row goes)" },
	{ "testimonials", "updated_at", 0, "date (the row goes)" },
	{ "testimonials", "decided_at", 0, "date (the row goes)" },
	{ "testimonials", "decided_by", 0, "staff member (the row goes)" },
	{ "users", "id", 0, "staff member" },
	{ "users", "username", 0, "staff's own" },
	{ "users", "pwhash", 0, "staff's own" },
	{ "users", "disabled", 0, "a flag" },
	{ "users", "created_at", 0, "date" },
	{ "users", "last_login_at", 0, "date" },
};
const size_t privacy_columns_len = ARRAY_LEN(privacy_columns);

/* What wipes each table that has a personal column, in the order they
 * run (the orders row itself is the guarded decision, first). A table
 * whose personal columns go by privacy_scrub's merge (FTS5's segments)
 * has ST__MAX. */
static const struct wipe {
	const char	*table;
	enum stmt	 st;
} wipes[] = {
	{ "messages", ST_PRIVACY_WIPE_MESSAGES },
	{ "status_history", ST_PRIVACY_WIPE_HISTORY },
	{ "audit", ST_PRIVACY_WIPE_AUDIT },
	{ "refund_requests", ST_PRIVACY_WIPE_REFUNDS },
	{ "feedback", ST_PRIVACY_WIPE_FEEDBACK },
	{ "testimonials", ST_PRIVACY_WIPE_TESTIMONIALS },
	{ "inbound", ST_PRIVACY_WIPE_INBOUND },
	{ "outbox", ST_PRIVACY_WIPE_OUTBOX },
	{ "files", ST_FILES_REMOVE_ORDER },
	{ "rate_events", ST_PRIVACY_WIPE_RATE },
	{ "order_flags", ST_PRIVACY_WIPE_FLAGS },
	{ "checkout_sessions", ST_PRIVACY_WIPE_CHECKOUT },
	{ "card_refunds", ST_PRIVACY_WIPE_CARD_REFUNDS },
	{ "pay_jobs", ST_PRIVACY_WIPE_PAY_JOBS },
	/* Last: the order's document, rebuilt from what is left (empty). */
	{ "search_fts", ST_PRIVACY_UNINDEX },
	{ "search_fts_content", ST_PRIVACY_REINDEX },
	{ "search_fts_data", ST__MAX },
	{ "search_fts_idx", ST__MAX },
};

/* The values every wipe statement reads by number (db_stmts.h). */
struct wipe_values {
	int64_t		 id;		/* ?1 */
	const char	*email;		/* ?2, lowered */
	const char	*name;		/* ?3, lowered */
	const char	*ip;		/* ?4 */
	int64_t		 now;		/* ?5 */
};

const char *
privacy_block_text(enum privacy_block b)
{
	switch (b) {
	case PB_NONE:
		return "";
	case PB_ERASED:
		return "Its personal data was erased already.";
	case PB_REFUND_OPEN:
		return "A refund request is open: settle it first.";
	case PB_MONEY_HELD:
		return "Money was received and not refunded while the "
		    "client may still ask for it back (not answered yet, or "
		    "the guarantee still runs).";
	case PB_PAY_JOB:
		return "A payment job (a card refund, or expiring a payment "
		    "session) is still pending: run \"pmbctl pay send\" or "
		    "wait for it.";
	}
	return "";
}

int
privacy_erasable(int64_t id, int64_t now)
{
	sqlite3_stmt	*s = db_stmt(ST_PRIVACY_STATE);
	int64_t		 net, paid_at, answered_at, end;
	int		 rc, why = PB_NONE;

	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_PRIVACY_STATE)) != DB_ROW) {
		db_done(ST_PRIVACY_STATE);
		return -1;
	}
	net = sqlite3_column_int64(s, 3);
	paid_at = sqlite3_column_int64(s, 4);
	answered_at = sqlite3_column_int64(s, 5);
	if (sqlite3_column_int(s, 0))
		why = PB_ERASED;
	else if (sqlite3_column_int(s, 1))
		why = PB_REFUND_OPEN;
	else if (sqlite3_column_int(s, 2))
		why = PB_PAY_JOB;
	else if (net > 0) {
		end = answered_at ?
		    order_guarantee_end(paid_at, answered_at) : 0;
		if (answered_at == 0 || end == 0 || now < end)
			why = PB_MONEY_HELD;
	}
	db_done(ST_PRIVACY_STATE);
	return why;
}

/* Binds the values of v that statement s reads (its parameters are ?1
 * to ?N, N at most 5). Returns 1, or 0 on error. */
static int
wipe_bind(sqlite3_stmt *s, const struct wipe_values *v)
{
	int n = sqlite3_bind_parameter_count(s), rc = SQLITE_OK;

	if (n > 5)
		return 0;
	if (n >= 1)
		rc = sqlite3_bind_int64(s, 1, v->id);
	if (n >= 2 && rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 2, v->email, -1, SQLITE_STATIC);
	if (n >= 3 && rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 3, v->name, -1, SQLITE_STATIC);
	if (n >= 4 && rc == SQLITE_OK)
		rc = sqlite3_bind_text(s, 4, v->ip, -1, SQLITE_STATIC);
	if (n >= 5 && rc == SQLITE_OK)
		rc = sqlite3_bind_int64(s, 5, v->now);
	return rc == SQLITE_OK;
}

/* Runs wipe statement st with v. Returns the rows it changed, or -1. */
static int
wipe_run(enum stmt st, const struct wipe_values *v)
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	if (s == NULL || !wipe_bind(s, v))
		return -1;
	rc = db_step(st);
	db_done(st);
	return rc == DB_DONE ? sqlite3_changes(db_handle()) : -1;
}

/* Returns the wipe of table t, or NULL if it has none. */
static const struct wipe *
wipe_of(const char *t)
{
	for (size_t i = 0; i < ARRAY_LEN(wipes); i++)
		if (!strcmp(wipes[i].table, t))
			return &wipes[i];
	return NULL;
}

/* Returns 1 if every table with a personal column of privacy_columns
 * has a wipe (orders: the decision itself), else 0 (logged, naming the
 * column): a column listed personal must never be skipped silently. */
static int
wipes_cover(void)
{
	for (size_t i = 0; i < privacy_columns_len; i++) {
		const struct privacy_column *c = &privacy_columns[i];

		if (c->personal && strcmp(c->table, "orders") != 0 &&
		    wipe_of(c->table) == NULL) {
			log_msg("privacy: %s.%s is personal and nothing "
			    "erases it", c->table, c->column);
			return 0;
		}
	}
	return 1;
}

/* Lowers ASCII letters of s in place (as SQLite's lower()); returns s. */
static char *
ascii_lower(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

/* Returns the client IP of order id, owned by the request, or NULL on
 * error. */
static const char *
client_ip(struct request *r, int64_t id)
{
	sqlite3_stmt	*s = db_stmt(ST_PRIVACY_CLIENT_IP);
	const char	*ip = NULL;

	if (s != NULL && db_bind(s, "i", id) &&
	    db_step(ST_PRIVACY_CLIENT_IP) == DB_ROW)
		ip = req_strdup(r, db_text(s, 0));
	db_done(ST_PRIVACY_CLIENT_IP);
	return ip;
}

/* The "erased" email to the client of o, queued in the erasing
 * transaction and wiped once delivered. Returns 1 or 0. */
static int
erased_mail(struct request *r, struct order *o, int64_t now)
{
	struct tvars	tv = { .n = 0 };
	int		ok;

	tv_set(&tv, "erased_on", page_date(r, now));
	ok = order_mail(r, o, "erased", &tv) &&
	    db_update(ST_PRIVACY_MAIL_WIPE_LATER, "i", db_last_id()) == 1;
	tv_free(&tv);
	return ok;
}

/* Cancels awaiting-payment order id (nothing received: privacy_erasable
 * let it through) as part of its erasure, as a cancellation by staff:
 * status, open payment sessions expired by a pay job, history. Returns
 * 1 (cancelled, or not awaiting payment), 0 on error. */
static int
erase_cancel(int64_t id, int64_t user_id, int64_t now)
{
	int rc;

	if ((rc = db_update(ST_ORDER_CANCEL, "ii", now, id)) <= 0)
		return rc == 0;
	return payment_sessions_end(id, "the order was cancelled") &&
	    order_history(id, "cancelled", user_id, "");
}

int
privacy_erase_order(struct request *r, int64_t id, int64_t user_id,
    int notify, enum privacy_block *why)
{
	struct wipe_values	 v;
	struct order		 o;
	int64_t			 now = now_unix();
	int			 b, asked, rc;

	*why = PB_NONE;
	if (!wipes_cover())
		return -1;
	if ((b = privacy_erasable(id, now)) < 0)
		return -1;
	if (b != PB_NONE) {
		*why = (enum privacy_block)b;
		return 0;
	}
	/* Read before the wipe: the client's address for the email. */
	if (order_load(r, id, &o) != 1)
		return -1;
	if (!erase_cancel(id, user_id, now))
		return -1;
	v.id = id;
	v.email = ascii_lower(req_strdup(r, o.email));
	v.name = ascii_lower(req_strdup(r, o.name));
	v.now = now;
	if ((v.ip = client_ip(r, id)) == NULL)
		return -1;
	if ((rc = wipe_run(ST_PRIVACY_ORDER_ERASE, &v)) != 1) {
		if (rc == 0)
			*why = PB_ERASED;
		return rc == 0 ? 0 : -1;
	}
	for (size_t i = 0; i < ARRAY_LEN(wipes); i++)
		if (wipes[i].st != ST__MAX && wipe_run(wipes[i].st, &v) < 0)
			return -1;
	if (db_run(ST_PRIVACY_PENDING_DONE, "i", id) != DB_DONE ||
	    db_run(ST_SESSION_PRUNE, "ii", now - conf.session_idle_minutes *
	    60, now - conf.session_max_hours * 3600) != DB_DONE)
		return -1;
	if ((asked = db_update(ST_PRIVACY_REQUEST_DONE, "iii", id, now,
	    user_id)) < 0)
		return -1;
	if (!audit_log(r, user_id, "privacy_erase", id, req_printf(r,
	    "erased by %s on %s", user_id ? "staff" :
	    "pmbctl or the sweep",
	    page_time(r, now))))
		return -1;
	if (notify && asked > 0 && *o.email != '\0' &&
	    !erased_mail(r, &o, now))
		return -1;
	return 1;
}

/* Counts the index entries left to erased orders (fts5vocab): 0 after
 * a good erase. Returns the count, or -1 on error. */
static int64_t
vocab_erased(void)
{
	sqlite3_stmt	*s;
	int64_t		 n = -1;

	if (db_run(ST_PRIVACY_VOCAB_CREATE, "") != DB_DONE ||
	    (s = db_stmt(ST_PRIVACY_VOCAB_ERASED)) == NULL)
		return -1;
	if (db_step(ST_PRIVACY_VOCAB_ERASED) == DB_ROW)
		n = sqlite3_column_int64(s, 0);
	db_done(ST_PRIVACY_VOCAB_ERASED);
	return n;
}

int
privacy_scrub(void)
{
	int64_t n = 0;
	int	merged, truncated;

	/* One segment holds no deleted entries; the steps may stop short
	 * of it when FTS5 finds nothing it merges step by step. */
	merged = search_optimize() >= 0 && (n = search_segments()) >= 0 &&
	    (n <= 1 || search_merge_all());
	if (merged && (n = vocab_erased()) > 0)
		log_msg("privacy: %lld index entries of erased orders are "
		    "left", (long long)n);
	/* The WAL is truncated whatever the merge and the check found: a
	 * failed merge, or entries left to an erased order (a store edited
	 * by hand), must not keep this erase's bytes in the WAL. */
	truncated = db_wal_truncate(CHECKPOINT_TRIES);
	return !merged || n != 0 ? -1 : truncated;
}

int
privacy_erase(struct request *r, int64_t id, int64_t user_id, int notify,
    enum privacy_block *why)
{
	int rc;

	if (!db_begin())
		return -1;
	if ((rc = privacy_erase_order(r, id, user_id, notify, why)) != 1) {
		db_rollback();
		return rc;
	}
	if (!db_commit()) {
		db_rollback();
		return -1;
	}
	if (privacy_scrub() != 1)	/* the data is erased */
		log_msg("privacy: erased; the scrub is left to the next one");
	return 1;
}

int
privacy_person_orders(const char *address, struct privacy_target *t)
{
	sqlite3_stmt	*s = db_stmt(ST_PRIVACY_ORDERS_BY_EMAIL);
	char		*key;
	int64_t		 now = now_unix();
	int		 n = 0, rc;

	if (s == NULL || (key = email_addr_key(address)) == NULL)
		return -1;
	if (!db_bind(s, "t", key)) {
		free(key);
		return -1;
	}
	while ((rc = db_step(ST_PRIVACY_ORDERS_BY_EMAIL)) == DB_ROW &&
	    n < PRIVACY_PERSON_MAX) {
		t[n].id = sqlite3_column_int64(s, 0);
		snprintf(t[n].number, sizeof(t[n].number), "%s",
		    db_text(s, 1));
		n++;
	}
	db_done(ST_PRIVACY_ORDERS_BY_EMAIL);
	free(key);
	if (rc != DB_DONE)	/* an error, or more than the most */
		return -1;
	for (int i = 0; i < n; i++)
		if ((t[i].why = privacy_erasable(t[i].id, now)) < 0)
			return -1;
	return n;
}

int
privacy_erase_person(struct request *r, const char *address,
    int64_t user_id, int notify, struct privacy_target *t, int *n)
{
	enum privacy_block	why;
	int			rc;

	*n = 0;
	if (!db_begin())
		return -1;
	if ((*n = privacy_person_orders(address, t)) < 0) {
		*n = 0;
		goto fail;
	}
	for (int i = 0; i < *n; i++)
		if (t[i].why != PB_NONE) {
			db_rollback();
			return 0;
		}
	for (int i = 0; i < *n; i++) {
		if ((rc = privacy_erase_order(r, t[i].id, user_id, notify,
		    &why)) < 0)
			goto fail;
		if (rc == 0) {	/* not after the check above, in this
				 * transaction; said all the same */
			t[i].why = why;
			db_rollback();
			return 0;
		}
	}
	if (*n == 0) {
		db_rollback();
		return 0;
	}
	if (!db_commit())
		goto fail;
	if (privacy_scrub() != 1)
		log_msg("privacy: erased; the scrub is left to the next one");
	return 1;
fail:
	db_rollback();
	return -1;
}

/* Reads up to PRIVACY_SWEEP_STEP ids of orders due for the sweep after
 * id after into ids. Returns how many, or -1. */
static int
sweep_due(int64_t now, int64_t after, int64_t *ids)
{
	sqlite3_stmt	*s = db_stmt(ST_PRIVACY_SWEEP_DUE);
	int		 n = 0, rc;

	if (s == NULL || !db_bind(s, "iiii", now - conf.retention_days * DAY,
	    conf.guarantee_days * DAY, after, (int64_t)PRIVACY_SWEEP_STEP))
		return -1;
	while ((rc = db_step(ST_PRIVACY_SWEEP_DUE)) == DB_ROW &&
	    n < PRIVACY_SWEEP_STEP)
		ids[n++] = sqlite3_column_int64(s, 0);
	db_done(ST_PRIVACY_SWEEP_DUE);
	return rc == DB_ROW || rc == DB_DONE ? n : -1;
}

/* Erases the orders of one step of the sweep in one transaction; the
 * ones blocked (money owed) are left. Returns how many it erased, or
 * -1 (rolled back). */
static int64_t
sweep_step(struct request *r, const int64_t *ids, int n)
{
	enum privacy_block	why;
	int64_t			done = 0;
	int			rc;

	if (!db_begin())
		return -1;
	for (int i = 0; i < n; i++) {
		if ((rc = privacy_erase_order(r, ids[i], 0, 0, &why)) < 0) {
			db_rollback();
			return -1;
		}
		done += rc;
	}
	if (!db_commit()) {
		db_rollback();
		return -1;
	}
	return done;
}

/* Audits one sweep: how many orders it erased. Returns 1 or 0. */
static int
sweep_audit(struct request *r, int64_t total)
{
	if (!db_begin())
		return 0;
	if (!audit_log(r, 0, "privacy_sweep", 0, req_printf(r,
	    "%lld orders erased", (long long)total)) || !db_commit()) {
		db_rollback();
		return 0;
	}
	return 1;
}

int64_t
privacy_sweep(struct request *r, int64_t now)
{
	int64_t	ids[PRIVACY_SWEEP_STEP], after = 0, total = 0, done;
	int	n;

	if (conf.retention_days <= 0)
		return 0;
	for (;;) {
		if (!db_read_begin())
			return -1;
		n = sweep_due(now, after, ids);
		db_read_end();
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if ((done = sweep_step(r, ids, n)) < 0)
			return -1;
		log_msg("privacy: sweep step: %lld of %d orders erased",
		    (long long)done, n);
		total += done;
		after = ids[n - 1];
		if (n < PRIVACY_SWEEP_STEP)
			break;
	}
	if (!sweep_audit(r, total))
		return -1;
	if (total > 0 && privacy_scrub() < 0)
		log_msg("privacy: the sweep's scrub failed; the data is "
		    "erased, its bytes go at the next scrub");
	return total;
}
