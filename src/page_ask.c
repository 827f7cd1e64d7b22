/* page_ask.c: GET /ask and POST /ask — the question form, and the order
 * it makes: order, first message, history row, confirmation email and
 * audit row in one transaction, then 303 to the status page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "attach.h"
#include "audit.h"
#include "auth.h"
#include "batch.h"
#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "mail.h"
#include "order.h"
#include "page.h"
#include "rate.h"
#include "router.h"
#include "token.h"

#define FORM_TOKEN_LIFE	(24 * 3600)	/* a form may be sent for a day */
#define HOUR		3600

/* Returns the length of v's scheme ("https" of https://x) when v starts
 * with one: http and https only are accepted. */
static size_t
website_scheme(const char *v)
{
	if (strncasecmp(v, "http://", 7) == 0)
		return 4;
	if (strncasecmp(v, "https://", 8) == 0)
		return 5;
	return 0;
}

/* Returns NULL if v is a website: an http or https URL, or a bare name
 * such as example.com/page (stored as https://, see website_url); else
 * why not. */
static const char *
check_website(const char *v)
{
	const char	*host = v;
	size_t		 n, port;

	if (website_scheme(v) > 0)
		host = v + website_scheme(v) + 3;
	if (strpbrk(v, " <>\"'\\") != NULL)
		return "A website address cannot hold spaces, quotes or "
		    "angle brackets.";
	/* The host: letters, digits, dots, hyphens (and the bytes of a
	 * name in another script), then perhaps ":" and a port number,
	 * up to the path. Anything else ("javascript:", "data:") is
	 * another scheme. */
	n = strcspn(host, ":/?#");
	port = host[n] == ':' ? strspn(host + n + 1, "0123456789") : 0;
	for (size_t i = 0; i < n; i++)
		if (!((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' &&
		    host[i] <= 'Z') || (host[i] >= '0' && host[i] <= '9') ||
		    host[i] == '.' || host[i] == '-' ||
		    (unsigned char)host[i] >= 0x80))
			n = 0;
	if (n == 0 || (host[n] == ':' && (port == 0 ||
	    strchr("/?#", host[n + 1 + port]) == NULL)))
		return "A website address starts with http:// or "
		    "https://, or just with its name, such as example.com.";
	if (memchr(host, '.', n) == NULL)
		return "Please enter a website such as example.com.";
	return NULL;
}

/* Returns website v (checked by check_website) as stored: a bare name
 * gets https:// in front. */
static const char *
website_url(struct request *r, const char *v)
{
	if (*v == '\0' || website_scheme(v) > 0)
		return v;
	return req_cat(r, "https://", v, (char *)NULL);
}

/* Returns 1 if v is one of the comma-separated topics of the settings. */
static int
topic_known(const char *v)
{
	const char	*p = conf.topics;
	size_t		 n = strlen(v);

	while (*p != '\0') {
		size_t k;

		p += strspn(p, " ,");
		k = strcspn(p, ",");
		while (k > 0 && p[k - 1] == ' ')
			k--;
		if (k > 0 && k == n && strncmp(p, v, n) == 0)
			return 1;
		p += k;
		p += strcspn(p, ",");
	}
	return 0;
}

/* Returns NULL if v is a configured topic, else why not. */
static const char *
check_topic(const char *v)
{
	return topic_known(v) ? NULL : "Please choose a topic from the list.";
}

/* The fields of POST /ask: an interface (names fixed by the spec). */
const struct field ask_fields[] = {
#define AF_NAME		0
	{ "name", "your name", 1, 100, F_REQUIRED, NULL },
#define AF_EMAIL	1
	{ "email", "your email address", 3, 254, F_REQUIRED,
	    email_addr_check },
#define AF_COMPANY	2
	{ "company", "your company", 0, 100, 0, NULL },
#define AF_WEBSITE	3
	{ "website", "your website", 0, 200, 0, check_website },
#define AF_TOPIC	4
	{ "topic", "a topic", 1, 100, F_REQUIRED, check_topic },
#define AF_QUESTION	5
	{ "question", "your question", 20, 10000, F_REQUIRED | F_MULTILINE,
	    NULL },
#define AF_AGREE	6
	{ "agree", "I agree to the terms and the guarantee", 0, 8,
	    F_REQUIRED | F_CHECKBOX, NULL },
#define AF_HONEYPOT	7
	{ "fax", "fax", 0, 1000, F_MULTILINE, NULL },
#define AF_FORM		8
	{ "form_token", "the form token", 0, 200, 0, NULL },
#define AF_CSRF		9
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Returns a new one-time form token, owned by the request. */
static char *
form_token_new(struct request *r)
{
	char		tok[TOKEN_TEXT_LEN + 1];
	uint64_t	nonce;

	randombytes_buf(&nonce, sizeof(nonce));
	nonce &= INT64_MAX;
	if (!token_make(tok, TOK_FORM, (int64_t)nonce, now_unix() +
	    FORM_TOKEN_LIFE, NULL))
		return req_strdup(r, "");
	return req_strdup(r, tok);
}

/* Adds the topics of the settings to tv as the list topics, marking
 * selected, the chosen one. */
static void
topic_rows(struct request *r, struct tvars *tv, const char *selected)
{
	const char *p = conf.topics;

	while (*p != '\0') {
		struct tvars	*row;
		char		*t;
		size_t		 k;

		p += strspn(p, " ,");
		k = strcspn(p, ",");
		while (k > 0 && p[k - 1] == ' ')
			k--;
		if (k == 0)
			break;
		t = req_alloc(r, k + 1);
		memcpy(t, p, k);
		t[k] = '\0';
		row = tv_row(tv, "topics");
		tv_set(row, "label", t);
		tv_set(row, "selected", strcmp(t, selected) == 0 ? "1" : "");
		p += k;
		p += strcspn(p, ",");
	}
}

/* Returns the consent line of the form, as the page shows it (owned by
 * r), with the price and days page_vars put in tv: the agree box's
 * label, and what its error message quotes. */
static const char *
consent_line(struct request *r, const struct tvars *tv)
{
	return req_printf(r, "I understand that the answer costs %s %s, "
	    "that I pay after sending this form, and that I can have my "
	    "money back in full within %s days of the answer if I am not "
	    "happy with it.", tv_get(tv, "price"), tv_get(tv, "currency"),
	    tv_get(tv, "guarantee_days"));
}

/* Adds a problem to tv's list errors: its field's id and text. */
static void
error_row(struct tvars *tv, const char *field_id, const char *text)
{
	struct tvars *row = tv_row(tv, "errors");

	tv_set(row, "field_id", field_id);
	tv_set(row, "text", text);
}

/* Words the refused fields' messages as what each field is (a topic is
 * chosen, the consent box quoted), and adds each problem to tv's list
 * errors with its field's id, for the summary's links to the fields, in
 * the form's order; files_error, the files' problem, after the question
 * (the files field follows it). */
static void
ask_errors(struct request *r, struct tvars *tv, const char *files_error)
{
	struct fieldval	*f = r->fields;
	/* With files off the page has no field to link to. */
	const char	*files_id = conf.attachment_max_mb > 0 ? "files" :
			    "errors";

	if (files_error == NULL && (f == NULL || r->nerrors == 0))
		return;
	tv_set(tv, "has_errors", "1");
	if (f == NULL || r->nerrors == 0) {
		error_row(tv, files_id, files_error);
		return;
	}
	if (f[AF_TOPIC].error != NULL && *f[AF_TOPIC].value == '\0')
		f[AF_TOPIC].error = "Please choose a topic.";
	if (f[AF_AGREE].error != NULL && *f[AF_AGREE].value == '\0')
		f[AF_AGREE].error = req_cat(r, "Please tick \xe2\x80\x9c",
		    consent_line(r, tv), "\xe2\x80\x9d", (char *)NULL);
	for (size_t i = 0; ask_fields[i].name != NULL; i++) {
		if (f[i].error != NULL && i != AF_HONEYPOT && i != AF_FORM &&
		    i != AF_CSRF)
			error_row(tv, ask_fields[i].name, f[i].error);
		if (i == AF_QUESTION && files_error != NULL)
			error_row(tv, files_id, files_error);
	}
}

/* Renders the form with status, the fields' values and errors (the
 * files' problem: files_error), and an optional message at the top. */
static void
ask_form_files(struct request *r, int status, const char *message,
    const char *files_error)
{
	struct tvars	tv = { .n = 0 };
	const char	*topic = r->fields ? r->fields[AF_TOPIC].value : "";
	const char	*ftok = r->fields ? r->fields[AF_FORM].value : "";
	struct token	t;
	int		nerrors = (int)r->nerrors + (files_error != NULL);

	page_vars(r, &tv);
	ask_errors(r, &tv, files_error);
	page_form_vars(r, &tv, ask_fields);
	attach_form_vars(r, &tv, files_error);
	topic_rows(r, &tv, topic);
	tv_set(&tv, "consent_line", consent_line(r, &tv));
	/* Keep a still-valid form token, so a retry stays idempotent. */
	if (ftok == NULL || *ftok == '\0' ||
	    token_check(ftok, TOK_FORM, NULL, &t) != TOKEN_OK)
		ftok = form_token_new(r);
	tv_set(&tv, "form_token", ftok);
	tv_set(&tv, "agree_checked", r->fields &&
	    *r->fields[AF_AGREE].value ? "checked" : "");
	if (nerrors > 0 && message == NULL)
		message = nerrors == 1 ? "Please check the field marked "
		    "below." : "Please check the fields marked below.";
	tv_set(&tv, "form_message", message);
	page_render(r, status, "Ask your question", "ask.html", &tv);
}

/* Renders the form as ask_form_files, without a files problem. */
static void
ask_form(struct request *r, int status, const char *message)
{
	ask_form_files(r, status, message, NULL);
}

/* GET /ask */
void
page_ask(struct request *r)
{
	ask_form(r, 200, NULL);
}

/* Looks up the order made by form token nonce. Returns its id, 0 if none,
 * -1 on error. */
static int64_t
order_by_form(const char *nonce)
{
	return db_find_id(ST_ORDER_BY_FORM_TOKEN, nonce);
}

/* Answers 303 to order id's status page, with new=1, so that this view
 * alone says where its link was emailed (the link the client keeps has
 * no new=1), and the fragment #emailed: a Location without one would
 * keep the form action's #errors. */
static void
to_order(struct request *r, int64_t id)
{
	char *url = order_track_url(r, id);

	if (url == NULL) {
		page_fail(r);
		return;
	}
	http_redirect(r, req_cat(r, url + strlen(conf.base_url),
	    "?new=1#emailed", (char *)NULL));
}

/* Answers 429 with the form kept. */
static void
ask_limited(struct request *r, int64_t retry)
{
	http_header(r, "Retry-After", req_printf(r, "%lld", (long long)retry));
	ask_form(r, 429, req_printf(r, "You have sent several questions in "
	    "the last hour, which is as many as this site takes at once. "
	    "Please try again in %s; what you typed is kept below.",
	    page_duration(r, retry, DURATION_MINUTES)));
}

/* The confirmation email of a new order is rendered by the worker that
 * took the request, before the order's transaction, so that the batch
 * leader (src/batch.c), which stores every queued order behind SQLite's
 * one writer, only fills in what the order's id gives: its number and
 * its status link's token. Rendering (the text and the HTML templates,
 * in the mail layout) was half of the leader's work per order. The two
 * are rendered as stand-ins: random words, made after the client's text
 * was read, which no field can hold by chance or design, and which HTML
 * escaping (in text and in an href) passes through unchanged, so the
 * leader fills them in both parts by substitution alone (parts_fill). */
#define STANDIN_HEX	12		/* random bytes of a stand-in */
#define STANDIN_LEN	(4 + 2 * STANDIN_HEX)

#define EXCERPT_LINES	6		/* the alert's first lines of a question */
#define EXCERPT_BYTES	600		/* and at most this much of them */

/* A confirmation email and the consultant's alert, with their stand-ins.
 * The alert's subject is NULL when alert_new_orders is off. */
struct ask_mail {
	struct mail_parts	 m;
	struct mail_parts	 alert;
	char			 num[STANDIN_LEN + 1];	/* the number's */
	char			 tok[STANDIN_LEN + 1];	/* the token's */
	char			 oid[STANDIN_LEN + 1];	/* the order id's */
};

/* Writes a stand-in, prefix and random hex, into out. */
static void
standin(char out[STANDIN_LEN + 1], const char *prefix)
{
	unsigned char rnd[STANDIN_HEX];

	randombytes_buf(rnd, sizeof(rnd));
	memcpy(out, prefix, 4);
	sodium_bin2hex(out + 4, STANDIN_LEN + 1 - 4, rnd, sizeof(rnd));
}

/* Returns the first lines of question q (EXCERPT_LINES, EXCERPT_BYTES
 * at most, cut between two characters), with "…" when it goes on;
 * owned by r. */
static const char *
question_excerpt(struct request *r, const char *q)
{
	size_t	n = 0, lines = 0;

	while (q[n] != '\0' && n < EXCERPT_BYTES)
		if (q[n++] == '\n' && ++lines == EXCERPT_LINES)
			break;
	if (q[n] == '\0')
		return q;
	while (n > 0 && ((unsigned char)q[n] & 0xc0) == 0x80)
		n--;			/* not inside a character */
	while (n > 0 && (q[n - 1] == '\n' || q[n - 1] == '\r'))
		n--;
	return req_printf(r, "%.*s …", (int)n, q);
}

/* Renders the consultant's alert of r's order into am->alert, with the
 * stand-ins of am and tv's shared variables. Returns 1, or 0 (logged). */
static int
ask_alert_render(struct request *r, struct ask_mail *am, struct tvars *tv)
{
	const struct fieldval *f = r->fields;

	tv_set(tv, "email", f[AF_EMAIL].value);
	tv_set(tv, "company", f[AF_COMPANY].value);
	tv_set(tv, "excerpt", question_excerpt(r, f[AF_QUESTION].value));
	tv_set(tv, "files", attach_summary(r));
	tv_set(tv, "admin_url", req_printf(r, "%s/admin/orders/%s",
	    conf.base_url, am->oid));
	return mail_render("order_alert", tv, &am->alert);
}

/* Renders r's confirmation email into *am with stand-ins for the number
 * and the token, with the variables that order_mail gives, and (with
 * alert_new_orders) the consultant's alert, with a stand-in for the
 * order's id too. Returns 1, or 0 (logged) on a missing template. */
static int
ask_mail_render(struct request *r, struct ask_mail *am)
{
	const struct fieldval	*f = r->fields;
	struct tvars		 tv = { .n = 0 };

	standin(am->num, "pmbn");
	standin(am->tok, "pmbt");
	standin(am->oid, "pmbi");
	memset(&am->alert, 0, sizeof(am->alert));
	page_vars(r, &tv);
	tv_set(&tv, "question", f[AF_QUESTION].value);
	tv_set(&tv, "topic", f[AF_TOPIC].value);
	tv_set(&tv, "name", f[AF_NAME].value);
	tv_set(&tv, "number", am->num);
	tv_set(&tv, "status_url", req_printf(r, "%s/o/%s", conf.base_url,
	    am->tok));
	/* The order's price and currency: what ask_store writes into it. */
	tv_set(&tv, "amount", page_money(r, conf.price, conf.currency));
	tv_set(&tv, "order_currency", conf.currency);
	if (!mail_render("confirmation", &tv, &am->m))
		return 0;
	if (conf.alert_new_orders && !ask_alert_render(r, am, &tv)) {
		mail_parts_free(&am->m);
		return 0;
	}
	return 1;
}

/* Returns s with the stand-ins of am replaced by number, token and the
 * order's id (idtext); a NULL one is not in s (the confirmation has no
 * id, the alert no token), so the batch leader makes no pass for it. */
static char *
standins_fill(const char *s, const struct ask_mail *am, const char *number,
    const char *token, const char *idtext)
{
	const char	*from[] = { am->num, am->tok, am->oid };
	const char	*to[] = { number, token, idtext }, *cur = s;
	struct buf	 a, b;

	buf_init(&a);
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++) {
		if (to[i] == NULL)
			continue;
		buf_init(&b);
		buf_replace(&b, cur, from[i], to[i]);
		buf_free(&a);
		a = b;
		cur = a.data != NULL ? a.data : "";
	}
	return cur == s ? xstrdup(s) : buf_take(&a);
}

/* Fills the stand-ins of parts in into *out (freed by the caller). */
static void
parts_fill(struct mail_parts *out, const struct mail_parts *in,
    const struct ask_mail *am, const char *number, const char *token,
    const char *idtext)
{
	out->subject = standins_fill(in->subject, am, number, token, idtext);
	out->text = standins_fill(in->text, am, number, token, idtext);
	out->html = standins_fill(in->html, am, number, token, idtext);
}

/* Queues order id's confirmation (number its number) and, when am has
 * one, the consultant's alert, am with its stand-ins filled in, inside
 * the open transaction. Returns 1 or 0. */
static int
ask_confirm(struct request *r, int64_t id, const char *number,
    const struct ask_mail *am)
{
	const struct fieldval	*f = r->fields;
	struct mail_parts	 m;
	char			 tok[TOKEN_TEXT_LEN + 1], idtext[24];
	int			 ok;

	if (!token_make(tok, TOK_TRACK, id, 0, NULL))
		return 0;
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	parts_fill(&m, &am->m, am, number, tok, NULL);
	ok = mail_store("confirmation", id, f[AF_EMAIL].value,
	    f[AF_NAME].value, &m);
	mail_parts_free(&m);
	if (!ok || am->alert.subject == NULL)
		return ok;
	parts_fill(&m, &am->alert, am, number, NULL, idtext);
	ok = mail_store("order_alert", id, conf.admin_email,
	    conf.consultant_name, &m);
	mail_parts_free(&m);
	return ok;
}

/* Inserts the order of r's fields, made by form nonce at now. Returns its
 * id, with its number (owned by r) in *number; or -1. */
static int64_t
ask_insert(struct request *r, const char *nonce, int64_t now,
    const char **number)
{
	const struct fieldval	*f = r->fields;
	sqlite3_stmt		*s = db_stmt(ST_ORDER_INSERT);
	int64_t			 id = -1;

	if (s == NULL || !db_bind(s, "ttttttitiiti", nonce,
	    f[AF_NAME].value, f[AF_EMAIL].value, f[AF_COMPANY].value,
	    f[AF_WEBSITE].value, f[AF_TOPIC].value, conf.price, conf.currency,
	    now, now + conf.answer_hours * HOUR, req_client_ip(r), now))
		return -1;
	if (db_step(ST_ORDER_INSERT) == DB_ROW) {
		id = sqlite3_column_int64(s, 0);
		*number = req_strdup(r, db_text(s, 1));
		if (db_step(ST_ORDER_INSERT) != DB_DONE)
			id = -1;
	}
	db_done(ST_ORDER_INSERT);
	return id;
}

/* Writes the order and everything that goes with it, inside the open
 * transaction; r holds the fields and the client's address, am its
 * confirmation email, kinds (NULL: none) the kinds of r's files, which
 * go with the question. Returns its id (or the id of the order this
 * form made already), 0 when rate-limited (with *retry set), having
 * written nothing, or -1 on a failure (the caller rolls back). */
static int64_t
ask_store(struct request *r, const char *nonce, const struct ask_mail *am,
    const char **kinds, int64_t *retry)
{
	const struct fieldval	*f = r->fields;
	const char		*number;
	char			*kemail, *kip;
	int64_t			 now = now_unix(), id;
	int			 rc;

	kemail = req_cat(r, "ask-email:", req_keep(r,
	    email_addr_key(f[AF_EMAIL].value)), (char *)NULL);
	kip = req_printf(r, "ask-ip:%s", req_client_ip(r));
	if ((id = order_by_form(nonce)) != 0)	/* lost a race: same form */
		return id;
	if ((rc = rate_allow(kemail, conf.rate_limit_email_per_hour, HOUR,
	    retry)) == 1)
		rc = rate_allow(kip, conf.rate_limit_ip_per_hour, HOUR, retry);
	if (rc != 1)
		return rc == 0 ? 0 : -1;
	if ((id = ask_insert(r, nonce, now, &number)) < 0 ||
	    db_run(ST_MESSAGE_INSERT, "ittnni", id, "question",
	    f[AF_QUESTION].value, now) != DB_DONE ||
	    (kinds != NULL && !attach_store(r, kinds, id, db_last_id(), 0)) ||
	    !order_history(id, "awaiting_payment", 0, "") ||
	    !audit_log(r, 0, "order received", id, "") ||
	    !rate_note(kemail, conf.rate_limit_email_per_hour, HOUR) ||
	    !rate_note(kip, conf.rate_limit_ip_per_hour, HOUR) ||
	    !ask_confirm(r, id, number, am))
		return -1;
	return id;
}

/* The stored fields of a question, in a job's order (see ask_job). */
static const int job_fields[] = { AF_NAME, AF_EMAIL, AF_COMPANY,
    AF_WEBSITE, AF_TOPIC, AF_QUESTION };
#define NJOB_FIELDS	(sizeof(job_fields) / sizeof(job_fields[0]))
/* A job's strings: the nonce, the client's address, the fields, then the
 * confirmation's stand-ins and parts, then the order id's stand-in and
 * the alert's parts (empty when there is no alert). */
#define JOB_NONCE	0
#define JOB_IP		1
#define JOB_FIELD0	2
#define JOB_MAIL0	(JOB_FIELD0 + NJOB_FIELDS)
#define JOB_ALERT0	(JOB_MAIL0 + 5)
#define JOB_PARTS	(JOB_ALERT0 + 4)

/* Packs what ask_store needs (the form's nonce, the client's address,
 * the stored fields and the confirmation) as NUL-terminated strings into
 * *len bytes of r's memory. Returns them. (A job longer than
 * BATCH_JOB_MAX, possible only with a raised body_limit, is stored by
 * batch_run alone, not through the shared area.) */
static char *
ask_pack(struct request *r, const char *nonce, const struct ask_mail *am,
    size_t *len)
{
	const char	*part[JOB_PARTS];
	struct buf	 b;

	part[JOB_NONCE] = nonce;
	part[JOB_IP] = req_client_ip(r);
	for (size_t i = 0; i < NJOB_FIELDS; i++)
		part[JOB_FIELD0 + i] = r->fields[job_fields[i]].value;
	part[JOB_MAIL0] = am->num;
	part[JOB_MAIL0 + 1] = am->tok;
	part[JOB_MAIL0 + 2] = am->m.subject;
	part[JOB_MAIL0 + 3] = am->m.text;
	part[JOB_MAIL0 + 4] = am->m.html;
	part[JOB_ALERT0] = am->oid;
	part[JOB_ALERT0 + 1] = am->alert.subject ? am->alert.subject : "";
	part[JOB_ALERT0 + 2] = am->alert.text ? am->alert.text : "";
	part[JOB_ALERT0 + 3] = am->alert.html ? am->alert.html : "";
	buf_init(&b);
	for (size_t i = 0; i < JOB_PARTS; i++)
		buf_append(&b, part[i], strlen(part[i]) + 1);
	*len = b.len;
	return req_keep(r, buf_take(&b));
}

/* A batch job (src/batch.c), possibly run by another worker: unpacks
 * ask_pack's strings and stores the order. Returns as ask_store; -1 for
 * a job that is not well formed. */
static int64_t
ask_job(const void *job, size_t len, int64_t *retry)
{
	const char	*p = job, *end = p + len, *part[JOB_PARTS];
	struct fieldval	 f[AF_CSRF + 1];
	struct request	 r;
	struct ask_mail	 am;
	int64_t		 id;

	for (size_t i = 0; i < JOB_PARTS; i++) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (nul == NULL)
			return -1;
		part[i] = p;
		p = nul + 1;
	}
	if (strlen(part[JOB_MAIL0]) != STANDIN_LEN ||
	    strlen(part[JOB_MAIL0 + 1]) != STANDIN_LEN ||
	    strlen(part[JOB_ALERT0]) != STANDIN_LEN)
		return -1;
	memcpy(am.num, part[JOB_MAIL0], STANDIN_LEN + 1);
	memcpy(am.tok, part[JOB_MAIL0 + 1], STANDIN_LEN + 1);
	memcpy(am.oid, part[JOB_ALERT0], STANDIN_LEN + 1);
	/* The job's memory outlives the job: the parts are only read. */
	am.m.subject = (char *)part[JOB_MAIL0 + 2];
	am.m.text = (char *)part[JOB_MAIL0 + 3];
	am.m.html = (char *)part[JOB_MAIL0 + 4];
	am.alert.subject = *part[JOB_ALERT0 + 1] != '\0' ?
	    (char *)part[JOB_ALERT0 + 1] : NULL;
	am.alert.text = (char *)part[JOB_ALERT0 + 2];
	am.alert.html = (char *)part[JOB_ALERT0 + 3];
	/* Fields not in a job read as empty, never as NULL. */
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		f[i] = (struct fieldval){ "", NULL };
	for (size_t i = 0; i < NJOB_FIELDS; i++)
		f[job_fields[i]].value = part[JOB_FIELD0 + i];
	req_init(&r, NULL);
	r.remote_addr = r.client_ip = part[JOB_IP];
	r.fields = f;
	id = ask_store(&r, part[JOB_NONCE], &am, NULL, retry);
	r.fields = NULL;		/* on the stack, not r's */
	req_free(&r);
	return id;
}

/* Stores r's order with its files (kinds from attach_check) alone, in a
 * transaction of its own, not through the group commit: the files make
 * it long, and a job cannot carry them. The body was read whole (its
 * files spooled) before the transaction begins. Returns as ask_store,
 * once committed; -1 if it was not. */
static int64_t
ask_alone(struct request *r, const char *nonce, const struct ask_mail *am,
    const char **kinds, int64_t *retry)
{
	int64_t id;

	if (!db_begin())
		return -1;
	if ((id = ask_store(r, nonce, am, kinds, retry)) <= 0) {
		db_rollback();
		return id;
	}
	return db_commit() ? id : -1;
}

/* POST /ask */
void
page_ask_submit(struct request *r)
{
	const struct fieldval	*f = r->fields;
	const char		**kinds = req_alloc(r, (r->nfiles + 1) *
				    sizeof(*kinds)), *ferr;
	struct token		 t;
	struct ask_mail		 am;
	char			*nonce, *job;
	size_t			 len;
	int64_t			 id, retry = 0;

	if (!r->csrf_ok) {
		ask_form(r, 403, "Your form had expired, so it was not sent. "
		    "Everything you typed is kept below: check it and send "
		    "it again.");
		return;
	}
	switch (token_check(f[AF_FORM].value, TOK_FORM, NULL, &t)) {
	case TOKEN_OK:
		break;
	case TOKEN_EXPIRED:
		r->fields[AF_FORM].value = "";
		ask_form(r, 400, "This form is more than a day old, so it was "
		    "not sent. Everything you typed is kept below: check it "
		    "and send it again.");
		return;
	default:
		r->fields[AF_FORM].value = "";
		ask_form(r, 400, "The form was incomplete. Everything you "
		    "typed is kept below: please send it again.");
		return;
	}
	nonce = req_printf(r, "%lld", (long long)t.id);

	/* A resubmitted form lands on the order it already made. */
	if ((id = order_by_form(nonce)) < 0) {
		page_unavailable(r);
		return;
	}
	if (id > 0) {
		to_order(r, id);
		return;
	}
	/* A filled honeypot: a bot. Thank it and keep nothing. */
	if (*f[AF_HONEYPOT].value != '\0') {
		log_msg("ask: honeypot filled; discarded");
		page_render(r, 200, "Thank you", "ask_thanks.html",
		    &(struct tvars){ .n = 0 });
		return;
	}
	/* The files are checked (images cleaned) once the fields pass. */
	ferr = r->nerrors > 0 ? r->upload_error : attach_check(r, kinds);
	if (r->nerrors > 0 || ferr != NULL) {
		ask_form_files(r, 400, NULL, ferr);
		return;
	}
	r->fields[AF_WEBSITE].value = website_url(r, f[AF_WEBSITE].value);
	if (!ask_mail_render(r, &am)) {
		ask_form(r, 503, page_not_saved(r));
		return;
	}
	if (r->nfiles > 0) {
		id = ask_alone(r, nonce, &am, kinds, &retry);
		mail_parts_free(&am.m);
		mail_parts_free(&am.alert);
	} else {
		job = ask_pack(r, nonce, &am, &len);
		mail_parts_free(&am.m);
		mail_parts_free(&am.alert);
		id = batch_run(ask_job, job, len, &retry);
	}
	if (id < 0) {
		/* The form token stays valid: sending again is safe. */
		ask_form(r, 503, page_not_saved(r));
		return;
	}
	if (id == 0) {
		ask_limited(r, retry);
		return;
	}
	to_order(r, id);
}
