/* mail_intake.c: one received message stored and routed, in one
 * transaction (mail_intake.h). The order of the checks is the issue's:
 * a message stored before is a no-op; our own mail come back, bounces,
 * auto-replies, bulk mail and senders over the hourly rate next; then
 * only a signed address (Reply-To token) or a signed Message-ID in
 * In-Reply-To/References names an order, and only the order's client
 * (From) reaches its thread; everything else waits in the inbox. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "attach.h"
#include "audit.h"
#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "files.h"
#include "http.h"
#include "mail.h"
#include "mail_intake.h"
#include "mail_parse.h"
#include "mail_token.h"
#include "order.h"
#include "page.h"
#include "tmpl.h"
#include "upload.h"
#include "util.h"

#define HOUR	3600
/* The longest text that goes into an order's thread (the follow-up
 * form's limit is 5,000; a reply by email may be longer): more waits in
 * the inbox, whole. */
#define INTAKE_TEXT_MAX	20000
/* The longest name a file kept from an email gets (as multipart.c's). */
#define FILE_NAME_MAX	255

/* The message in hand: parsed, and what the route decided. */
struct intake_msg {
	const char	*raw;
	size_t		 len;		/* bytes kept (cut to INTAKE_MAX_BYTES) */
	size_t		 received;	/* bytes received */
	const char	*via;
	struct inbound	 m;
	char		*key;		/* message_key */
	char		*body;		/* what the sender wrote */
	char		*atts;		/* the attachments, a line each */
	char		*atts_kept;	/* the same, each saying whether it
					 * was kept as a file of the message */
	const char	**att_kind;	/* per attachment: its kind if kept */
	size_t		*att_file;	/* ...and its spool in r.files */
	/* The decision. */
	const char	*status;	/* inbound.status */
	const char	*reason;	/* why it is in the inbox, or a bounce's
					 * diagnostic (x's request's, or static) */
	int64_t		 order_id, suggested_id, outbox_id;
	struct request	 r;		/* the machine's: audit, templates */
};

/* Returns the message's key: its Message-ID, or "sha256:HEX" of the
 * bytes when it has none. Caller frees. */
static char *
message_key(const struct intake_msg *x)
{
	unsigned char	h[crypto_hash_sha256_BYTES];
	char		hex[2 * sizeof(h) + 1], *k;

	if (x->m.message_id != NULL && *x->m.message_id != '\0')
		return xstrndup(x->m.message_id, strnlen(x->m.message_id,
		    900));
	crypto_hash_sha256(h, (const unsigned char *)x->raw, x->len);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	k = xmalloc(8 + sizeof(hex));
	memcpy(k, "sha256:", 7);
	memcpy(k + 7, hex, sizeof(hex));
	return k;
}

/* Returns the attachments of m as lines "name (type, 12 KB)" (the size
 * as file_size_text shows a file's everywhere), or ""; with why (NULL:
 * the list alone), each line then says whether it was kept (why[i] NULL)
 * or why not. Caller frees. */
static char *
attachments_text(struct request *r, const struct inbound *m,
    const char *const *why)
{
	struct buf	b;

	buf_init(&b);
	for (size_t i = 0; i < m->natt; i++) {
		buf_printf(&b, "%s%s (%s, %s)", i ? "\n" : "",
		    *m->att[i].name ? m->att[i].name : "unnamed",
		    m->att[i].type, file_size_text(r,
		    (int64_t)m->att[i].size));
		if (why != NULL)
			buf_printf(&b, why[i] == NULL ? ": kept" :
			    ": not kept: %s", why[i]);
	}
	return b.data != NULL ? buf_take(&b) : xstrdup("");
}

/* Counts a drop of reason. Returns 1, or 0 on a database error. */
static int
drop_count(const char *reason)
{
	return db_update(ST_INBOUND_DROP, "it", now_unix(), reason) == 1;
}

/* Returns 1 if v, a header's value, names one of the words in list
 * (NULL-terminated), any case, spaces around ignored. */
static int
header_is(const char *v, const char *const list[])
{
	size_t n;

	if (v == NULL)
		return 0;
	v += strspn(v, " \t");
	n = strcspn(v, " \t;(");
	for (; *list != NULL; list++)
		if (strlen(*list) == n && !strncasecmp(v, *list, n))
			return 1;
	return 0;
}

/* Returns the reason a message is dropped ("auto_submitted", ...), or
 * NULL to keep it; -1 in *err on a database error. Bounces are looked
 * at before this (they often carry Auto-Submitted). */
static const char *
drop_reason(const struct intake_msg *x, int *err)
{
	static const char *const no[] = { "no", NULL };
	static const char *const bulk[] = { "bulk", "junk", "list", NULL };
	sqlite3_stmt	*s;
	int64_t		 n = 0;

	if (mail_msgid_verify(x->m.message_id) > 0)
		return "loop";
	if (x->m.auto_submitted != NULL && !header_is(x->m.auto_submitted, no))
		return "auto_submitted";
	if (header_is(x->m.precedence, bulk))
		return "precedence";
	if (conf.inbound_hourly_limit == 0 || x->m.from_addr == NULL)
		return NULL;
	if ((s = db_stmt(ST_INBOUND_SENDER_COUNT)) == NULL ||
	    !db_bind(s, "ti", x->m.from_addr, now_unix() - HOUR)) {
		*err = 1;
		return NULL;
	}
	if (db_step(ST_INBOUND_SENDER_COUNT) == DB_ROW)
		n = sqlite3_column_int64(s, 0);
	else
		*err = 1;
	db_done(ST_INBOUND_SENDER_COUNT);
	return n >= conf.inbound_hourly_limit ? "rate" : NULL;
}

/* Reads outbox row id's order (0: none) into *order_id. Returns 1, 0
 * when there is no such row, -1 on error. */
static int
outbox_order(int64_t id, int64_t *order_id)
{
	sqlite3_stmt	*s;
	int		 rc;

	if ((s = db_stmt(ST_OUTBOX_ORDER_OF)) == NULL ||
	    !db_bind(s, "i", id))
		return -1;
	rc = db_step(ST_OUTBOX_ORDER_OF);
	if (rc == DB_ROW)
		*order_id = sqlite3_column_int64(s, 0);
	db_done(ST_OUTBOX_ORDER_OF);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Returns the outbox id a message to a VERP address of ours names (To or
 * Delivered-To), or 0. */
static int64_t
verp_of(const struct inbound *m)
{
	int64_t	 id = 0;
	char	*to, *p, *save = NULL;

	if (m->delivered_to != NULL &&
	    (id = mail_verp_verify(m->delivered_to)) > 0)
		return id;
	to = xstrdup(m->to != NULL ? m->to : "");
	for (p = strtok_r(to, ", ", &save); p != NULL && id == 0;
	    p = strtok_r(NULL, ", ", &save))
		id = mail_verp_verify(p);
	free(to);
	return id;
}

/* Records a bounce: the outbox row it names becomes "bounced" with the
 * diagnostic, and the bounce is kept. Sets x's decision. Returns 1 if it
 * is a bounce of ours, 0 if not (a bounce of nothing we sent), -1 on
 * error. */
static int
bounce_take(struct intake_msg *x, int64_t outbox_id)
{
	int rc;

	if ((rc = outbox_order(outbox_id, &x->order_id)) <= 0)
		return rc;
	if (x->m.dsn_status != NULL || x->m.dsn_diagnostic != NULL)
		x->reason = req_printf(&x->r, "%s%s%s",
		    x->m.dsn_status ? x->m.dsn_status : "",
		    x->m.dsn_status && x->m.dsn_diagnostic ? " " : "",
		    x->m.dsn_diagnostic ? x->m.dsn_diagnostic : "");
	else
		x->reason = x->m.subject ? x->m.subject :
		    "returned without a reason";
	x->status = "bounce";
	x->outbox_id = outbox_id;
	/* A second bounce of the same message changes nothing more. */
	if (db_update(ST_OUTBOX_BOUNCE, "iti", now_unix(), x->reason,
	    outbox_id) < 0)
		return -1;
	return 1;
}

/* Returns the order a message names by a reply token in To or
 * Delivered-To; else 0, with *outbox_id the email of ours that one of
 * our Message-IDs in In-Reply-To or References (newest first) names, or
 * 0. Signatures only: no database. */
static int64_t
signed_ids(const struct inbound *m, int64_t *outbox_id)
{
	int64_t	 id = 0;
	char	*to, *p, *save = NULL;

	*outbox_id = 0;
	to = xstrdup(m->to != NULL ? m->to : "");
	for (p = strtok_r(to, ", ", &save); p != NULL && id == 0;
	    p = strtok_r(NULL, ", ", &save))
		id = mail_reply_verify(p);
	free(to);
	if (id == 0 && m->delivered_to != NULL)
		id = mail_reply_verify(m->delivered_to);
	if (id > 0)
		return id;
	if ((*outbox_id = mail_msgid_verify(m->in_reply_to)) == 0)
		for (size_t i = m->nreferences; i > 0 && *outbox_id == 0; i--)
			*outbox_id = mail_msgid_verify(m->references[i - 1]);
	return 0;
}

/* Returns the order m names (signed_ids), 0 for none, -1 on a database
 * error. */
static int64_t
named_order(const struct inbound *m)
{
	int64_t	id, outbox_id, oid = 0;

	if ((id = signed_ids(m, &outbox_id)) > 0)
		return id;
	if (outbox_id == 0)
		return 0;
	return outbox_order(outbox_id, &oid) < 0 ? -1 : oid;
}

/* Returns the order "PMB-000123" in subject names, if it exists (a
 * suggestion only), or 0. */
static int64_t
subject_order(const char *subject)
{
	const char	*p;
	int64_t		 id;
	char		 num[24];

	if (subject == NULL || (p = strcasestr(subject, "PMB-")) == NULL)
		return 0;
	id = strtoll(p + 4, NULL, 10);
	if (id < 1)
		return 0;
	snprintf(num, sizeof(num), "%lld", (long long)id);
	return db_find_id(ST_ORDER_EXISTS, num) > 0 ? id : 0;
}

/* Sets x to wait in the inbox, for reason (owned by x's request, or
 * static). */
static void
to_inbox(struct intake_msg *x, const char *reason)
{
	x->reason = reason;
	x->status = "inbox";
}

/* Decides where a message that is kept goes: an order's thread, or the
 * inbox. Loads the order into *o (when one is named). Returns 1, or -1
 * on a database error. */
static int
route(struct intake_msg *x, struct order *o)
{
	char	*from, *client;
	int64_t	 id;
	int	 same;

	if ((id = named_order(&x->m)) < 0)
		return -1;
	if (id == 0) {
		x->suggested_id = subject_order(x->m.subject);
		to_inbox(x, "not a reply to one of this site's emails");
		return 1;
	}
	x->suggested_id = id;
	switch (order_load(&x->r, id, o)) {
	case -1:
		return -1;
	case 0:
		x->suggested_id = 0;
		to_inbox(x, "a reply about an order that no longer exists");
		return 1;
	}
	from = email_addr_key(x->m.from_addr ? x->m.from_addr : "");
	client = email_addr_key(o->email);
	same = strcmp(from, client) == 0;
	free(from);
	free(client);
	if (!same)
		to_inbox(x, req_printf(&x->r, "the sender is not the order's "
		    "client (%s)", o->email));
	else if (x->len < x->received)
		to_inbox(x, req_printf(&x->r, "too large: %zu bytes, the "
		    "first %zu kept", x->received, x->len));
	else if (*x->body == '\0' && *x->atts == '\0')
		to_inbox(x, "nothing written above the quoted text");
	else if (strlen(x->body) > INTAKE_TEXT_MAX)
		to_inbox(x, req_printf(&x->r, "longer than %d characters",
		    INTAKE_TEXT_MAX));
	else if (!strcmp(o->status, "refund_requested") ||
	    !strcmp(o->status, "refunded") || !strcmp(o->status, "cancelled"))
		to_inbox(x, req_printf(&x->r, "the order is %s",
		    order_status_label(o->status)));
	else {
		x->status = "routed";
		x->order_id = id;
	}
	return 1;
}

/* Queues the consultant's alert kind (info_alert, extra_alert) about
 * text on o. Returns 1 or 0. */
static int
alert(struct intake_msg *x, const struct order *o, const char *kind,
    const char *text)
{
	struct tvars	tv = { .n = 0 };
	int		ok;

	page_vars(&x->r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "message", text);
	tv_set(&tv, "admin_url", req_printf(&x->r, "%s/admin/orders/%lld",
	    conf.base_url, (long long)o->id));
	ok = mail_queue(kind, o->id, conf.admin_email, conf.consultant_name,
	    &tv);
	tv_free(&tv);
	return ok;
}

/* Returns 1 if an email of kind was queued for order_id before, 0 if
 * not, -1 on error. */
static int
told_before(int64_t order_id, const char *kind)
{
	sqlite3_stmt	*s;
	int		 rc;

	if ((s = db_stmt(ST_OUTBOX_KIND_EXISTS)) == NULL ||
	    !db_bind(s, "it", order_id, kind))
		return -1;
	rc = db_step(ST_OUTBOX_KIND_EXISTS);
	db_done(ST_OUTBOX_KIND_EXISTS);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Returns name made fit to keep as a file's: its last path component,
 * control characters as "_", at most FILE_NAME_MAX bytes (whole UTF-8
 * characters); "attachment" when nothing is left. Owned by r. */
static const char *
file_name_clean(struct request *r, const char *name)
{
	const char	*base = name;
	char		*out;
	size_t		 n;

	for (const char *p = name; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	if ((n = strlen(base)) > FILE_NAME_MAX) {
		n = FILE_NAME_MAX;
		while (n > 0 && ((unsigned char)base[n] & 0xc0) == 0x80)
			n--;
	}
	if (n == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return "attachment";
	out = req_alloc(r, n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned char)base[i] < 0x20 || base[i] == 0x7f ?
		    '_' : base[i];
	out[n] = '\0';
	return out;
}

/* Decides, before the transaction (images are cleaned by a helper
 * process), which of x's attachments become files of its message: each
 * within attachment_max_mb, at most attachments_per_message, through
 * the same checks as a form's files (attach_check_one: kind from the
 * content, attachment_types, images cleaned); sets x->atts_kept. */
static void
files_prepare(struct intake_msg *x)
{
	size_t		 n = x->m.natt, kept = 0;
	const char	**why = req_alloc(&x->r, (n + 1) * sizeof(*why));
	int64_t		 outbox_id;
	/* Only a message that names one of our emails by signature can
	 * reach an order: no other makes a helper process clean images. */
	int		 ours = !x->m.dsn && (signed_ids(&x->m, &outbox_id) > 0 ||
			    outbox_id > 0);

	x->att_kind = req_alloc(&x->r, (n + 1) * sizeof(*x->att_kind));
	x->att_file = req_alloc(&x->r, (n + 1) * sizeof(*x->att_file));
	for (size_t i = 0; i < n; i++) {
		const struct inbound_attachment *a = &x->m.att[i];

		x->att_kind[i] = NULL;
		why[i] = NULL;
		if (!ours)
			why[i] = "not a reply to one of this site's emails";
		else if (conf.attachment_max_mb == 0)
			why[i] = "this site takes no files";
		else if (a->size == 0)
			why[i] = "empty, or an attached email";
		else if (a->data == NULL)
			why[i] = req_printf(&x->r, "over the limit of %lld MB",
			    (long long)conf.attachment_max_mb);
		else if (kept >= (size_t)conf.attachments_per_message)
			why[i] = req_printf(&x->r, "more than %lld files with "
			    "one message", (long long)
			    conf.attachments_per_message);
		else if (!upload_add_bytes(&x->r, file_name_clean(&x->r,
		    a->name), a->data, a->size))
			why[i] = "it could not be read";
		else if ((why[i] = attach_check_one(&x->r,
		    &x->r.files[x->r.nfiles - 1], &x->att_kind[i])) == NULL) {
			x->att_file[i] = x->r.nfiles - 1;
			kept++;
		} else
			x->att_kind[i] = NULL;
	}
	x->atts_kept = attachments_text(&x->r, &x->m, why);
}

/* Stores the files kept of x (files_prepare) as files of o's newest
 * message, the one just written. Inside the transaction. Returns 1 or
 * 0. */
static int
thread_files(struct intake_msg *x, const struct order *o)
{
	char	idtext[INT_TEXT_MAX];
	int64_t	mid = 0;

	for (size_t i = 0; i < x->m.natt; i++) {
		if (x->att_kind[i] == NULL)
			continue;
		/* The message just written: the order's newest (as
		 * page_track.c's follow-up does). */
		if (mid == 0 && (mid = db_find_id(ST_MESSAGE_NEWEST,
		    int_text(idtext, o->id))) <= 0)
			return 0;
		if (file_store(&x->r.files[x->att_file[i]], x->att_kind[i],
		    o->id, mid, 0) == 0)
			return 0;
	}
	return 1;
}

/* Writes a routed message into o's thread: more information before the
 * answer (or while a follow-up is answered), a follow-up after it, or a
 * message outside the allowance (the client told once). Returns 1 or 0.
 * Sets x->reason to what it became. */
static int
thread_add(struct intake_msg *x, const struct order *o, int64_t inbound_id)
{
	const char	*text = x->body;
	struct tvars	 tv = { .n = 0 };
	int		 rc, ok;

	/* Files are listed, each saying whether it was kept as a file of
	 * the message; all stay in the email (its raw message). */
	if (*x->atts != '\0')
		text = req_printf(&x->r, "%s%sAttached to the email:\n%s",
		    x->body, *x->body ? "\n\n" : "", x->atts_kept);

	if (strcmp(o->status, "answered") != 0) {
		x->reason = "more information";
		return order_message_add(o->id, "info", text, inbound_id) &&
		    thread_files(x, o) && audit_log(&x->r, 0,
		    "more information received", o->id, "by email") &&
		    alert(x, o, "info_alert", text);
	}
	if ((rc = order_followup(&x->r, o, text, inbound_id)) != 0) {
		x->reason = "follow-up";
		return rc == 1 && thread_files(x, o);
	}
	x->reason = "outside the allowance";
	if (!order_message_add(o->id, "extra", text, inbound_id) ||
	    !thread_files(x, o) ||
	    !audit_log(&x->r, 0, "message after the follow-ups", o->id,
	    "by email") || !alert(x, o, "extra_alert", text))
		return 0;
	/* The client is told once per order. */
	if ((rc = told_before(o->id, "followups_used")) != 0)
		return rc > 0;
	ok = order_mail(&x->r, o, "followups_used", &tv);
	tv_free(&tv);
	return ok;
}

/* Inserts x's inbound row. Returns its id, or 0 on error. */
static int64_t
inbound_insert(const struct intake_msg *x)
{
	if (db_run(ST_INBOUND_INSERT, "ttitttttttiiiib", x->key, x->via,
	    now_unix(), x->m.from_addr ? x->m.from_addr : "",
	    x->m.from_name ? x->m.from_name : "",
	    x->m.subject ? x->m.subject : "", x->body, x->atts, x->status,
	    x->reason ? x->reason : "", x->order_id, x->suggested_id,
	    x->outbox_id, (int64_t)x->received, x->raw, (int)x->len) !=
	    DB_DONE)
		return 0;
	return db_last_id();
}

/* The part of mail_intake inside its transaction: everything but the
 * parse. Returns the outcome (TEMPFAIL on any database error: the
 * caller rolls back). */
static enum intake
intake_tx(struct intake_msg *x, struct intake_result *res)
{
	struct order	 o;
	const char	*drop;
	int64_t		 id, outbox_id;
	int		 err = 0, rc;

	if ((id = db_find_id(ST_INBOUND_BY_KEY, x->key)) != 0) {
		res->inbound_id = id;
		res->where = "duplicate";
		return id > 0 ? INTAKE_DUPLICATE : INTAKE_TEMPFAIL;
	}
	/* Bounces first: they often carry Auto-Submitted. */
	outbox_id = verp_of(&x->m);
	if (outbox_id == 0 && x->m.dsn)
		outbox_id = mail_msgid_verify(x->m.dsn_message_id);
	if (x->m.dsn || (outbox_id > 0 && (x->m.envelope_from == NULL ||
	    *x->m.envelope_from == '\0'))) {
		if ((rc = outbox_id > 0 ? bounce_take(x, outbox_id) : 0) < 0)
			return INTAKE_TEMPFAIL;
		drop = rc == 0 ? "bounce_unknown" : NULL;
	} else if ((drop = drop_reason(x, &err)) == NULL && !err &&
	    route(x, &o) < 0)
		return INTAKE_TEMPFAIL;
	if (err)
		return INTAKE_TEMPFAIL;
	if (drop != NULL) {
		res->where = drop;
		return drop_count(drop) ? INTAKE_DROPPED : INTAKE_TEMPFAIL;
	}
	if ((id = inbound_insert(x)) == 0)
		return INTAKE_TEMPFAIL;
	res->inbound_id = id;
	res->order_id = x->order_id;
	res->where = x->status;
	if (!strcmp(x->status, "routed")) {
		if (!thread_add(x, &o, id) ||
		    db_update(ST_INBOUND_SET_REASON, "ti", x->reason, id) != 1)
			return INTAKE_TEMPFAIL;
		res->where = x->reason;
	} else if (!strcmp(x->status, "bounce")) {
		if (!audit_log(&x->r, 0, "email bounced", x->order_id,
		    x->reason))
			return INTAKE_TEMPFAIL;
	} else if (!audit_log(&x->r, 0, "email to the inbox",
	    x->suggested_id, x->reason))
		return INTAKE_TEMPFAIL;
	return INTAKE_STORED;
}

/* Frees what x holds. */
static void
intake_free(struct intake_msg *x)
{
	inbound_free(&x->m);
	free(x->key);
	free(x->body);
	free(x->atts);
	free(x->atts_kept);
	req_free(&x->r);
}

enum intake
mail_intake(const char *raw, size_t len, const char *via,
    struct intake_result *res)
{
	return mail_intake_sized(raw, len, len, via, res);
}

enum intake
mail_intake_sized(const char *raw, size_t len, size_t received,
    const char *via, struct intake_result *res)
{
	struct intake_msg	x = { .raw = raw, .via = via };
	struct intake_result	dummy;
	enum intake		what;

	if (res == NULL)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	req_init(&x.r, NULL);
	x.r.client_ip = "";
	x.len = len > INTAKE_MAX_BYTES ? INTAKE_MAX_BYTES : len;
	x.received = received > x.len ? received : x.len;
	if (len == 0) {
		res->where = "empty";
		if (!db_begin())
			what = INTAKE_TEMPFAIL;
		else if (drop_count("empty") && db_commit())
			what = INTAKE_DROPPED;
		else {
			db_rollback();
			what = INTAKE_TEMPFAIL;
		}
		goto out;
	}
	if (mail_parse(raw, x.len, &x.m) < 0)
		to_inbox(&x, "not readable as an email");
	x.key = message_key(&x);
	x.body = mail_reply_text(x.m.text != NULL ? x.m.text : "");
	x.atts = attachments_text(&x.r, &x.m, NULL);
	files_prepare(&x);
	if (!db_begin()) {
		what = INTAKE_TEMPFAIL;
		goto out;
	}
	what = intake_tx(&x, res);
	if (what == INTAKE_TEMPFAIL || !db_commit()) {
		db_rollback();
		what = INTAKE_TEMPFAIL;
	}
out:
	res->what = what;
	if (what == INTAKE_TEMPFAIL) {
		res->where = "not stored";
		res->inbound_id = res->order_id = 0;
	}
	intake_free(&x);
	return what;
}
