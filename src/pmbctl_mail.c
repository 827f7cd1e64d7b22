/* pmbctl_mail.c: pmbctl's mail commands: send, run, list, retry, test,
 * and fetch (IMAP intake, mail_imap.c). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "chase.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "mail_imap.h"
#include "mail_intake.h"
#include "mail_transport.h"
#include "outbox.h"
#include "pmbctl.h"
#include "tmpl.h"
#include "token.h"
#include "tz.h"
#include "util.h"

/* pmbctl mail send: one chase pass (chase.c), then the due mail. */
static int
mail_send(const char *arg)
{
	int sent = 0, failed = 0, ok;

	(void)arg;
	if (!chase_pass())
		log_msg("mail: a database error stopped the unpaid orders' "
		    "pass");
	ok = mail_deliver_due(NULL, &sent, &failed);
	printf("mail: %d sent, %d failed\n", sent, failed);
	if (!ok)
		fail("mail: a database error stopped delivery");
	return ok ? 0 : 1;
}

/* When "mail run" fetches from imap_url next (now_ms); 0: at once. */
static double imap_next_ms;

/* Prints (to stdout) or logs what an IMAP pass did. */
static void
fetch_report(int print, const struct imap_counts *n)
{
#define FETCH_REPORT "mail fetch: %d stored, %d duplicate, %d dropped, " \
	    "%d left"
	if (print)
		printf(FETCH_REPORT "\n", n->stored, n->duplicate, n->dropped,
		    n->left);
	else
		log_msg(FETCH_REPORT, n->stored, n->duplicate, n->dropped,
		    n->left);
#undef FETCH_REPORT
}

/* Logs what became of the message of one UID (mail run). */
static void
fetch_each_log(uint32_t uid, const struct intake_result *res)
{
	char order[48] = "";

	if (res->order_id > 0)
		snprintf(order, sizeof(order), ", order %lld",
		    (long long)res->order_id);
	log_msg("mail fetch: UID %lu: %s (message %lld%s)",
	    (unsigned long)uid, res->where, (long long)res->inbound_id,
	    order);
}

/* Prints what became of the message of one UID (mail fetch). */
static void
fetch_each_print(uint32_t uid, const struct intake_result *res)
{
	char cmd[40];

	snprintf(cmd, sizeof(cmd), "mail fetch: UID %lu", (unsigned long)uid);
	intake_report(cmd, res);
}

/* mail run's IMAP pass, when imap_url is set and imap_poll_seconds have
 * passed since the last. A failure is logged; the pass is tried again
 * after imap_poll_seconds. Returns 1, or 0 after a logged error. */
static int
fetch_round(int (*stop)(void))
{
	struct imap_counts	n;
	struct buf		err;
	int			ok;

	if (*conf.imap_url == '\0' || now_ms() < imap_next_ms)
		return 1;
	imap_next_ms = now_ms() + (double)conf.imap_poll_seconds * 1000;
	buf_init(&err);
	n.each = fetch_each_log;
	ok = mail_imap_pass(&n, stop, &err);
	if (!ok || n.stored + n.duplicate + n.dropped > 0)
		fetch_report(0, &n);
	if (!ok)
		log_msg("mail fetch: %s; trying again in %lld s", err.data,
		    (long long)conf.imap_poll_seconds);
	buf_free(&err);
	return ok;
}

/* The pause of "mail run" between rounds: MAIL_POLL_SECONDS, or
 * imap_poll_seconds when that is shorter and imap_url is set. */
static int
mail_poll_seconds(void)
{
	if (*conf.imap_url != '\0' && conf.imap_poll_seconds <
	    MAIL_POLL_SECONDS)
		return (int)conf.imap_poll_seconds;
	return MAIL_POLL_SECONDS;
}

/* One round of "mail run": an IMAP pass (when imap_url is set and it is
 * due), a chase pass (reminders, cancellations, the digest), then the
 * due mail, which neither failure holds up. Returns 1, or 0 after a
 * logged error. */
static int
mail_round(int (*stop)(void))
{
	int ok = fetch_round(stop);

	/* A failed pass does not hold up the mail already queued. */
	if (!chase_pass()) {
		log_msg("mail: a database error stopped the unpaid orders' "
		    "pass");
		ok = 0;
	}
	if (!mail_deliver_due(stop, NULL, NULL)) {
		log_msg("mail: a database error stopped this round");
		ok = 0;
	}
	return ok;
}

/* On SIGHUP: the settings file again, and with it the time zone. A file
 * that fails leaves the settings as they were. The database, the
 * templates and the keys stay as they were read at start: a new
 * database, template_dir or key_file needs a restart (the keys' old
 * ones still verify). */
static void
mail_reload(void)
{
	const char	*why;
	char		 err[512];

	if (!conf_reload(err, sizeof(err))) {
		log_msg("mail: SIGHUP: %s; the settings stay as they were",
		    err);
		return;
	}
	if (!tz_use(conf.time_zone, err, sizeof(err)))
		log_msg("mail: SIGHUP: %s", err);
	if ((why = mail_transport_problem()) != NULL)
		log_msg("mail: SIGHUP: %s", why);
	imap_next_ms = 0;	/* a new imap_url is fetched from at once */
	log_msg("mail: SIGHUP: settings re-read from %s; delivering with the "
	    "%s transport", conf_file() != NULL ? conf_file() :
	    "no file (defaults)", conf.mail_transport);
}

/* pmbctl mail run */
static int
mail_run(const char *arg)
{
	(void)arg;
	log_msg("mail: delivering with the %s transport (pid %ld), settings "
	    "from %s", conf.mail_transport, (long)getpid(),
	    conf_file() != NULL ? conf_file() : "no file: defaults");
	if (*conf.imap_url != '\0')
		log_msg("mail: fetching from %s every %lld s", conf.imap_url,
		    (long long)conf.imap_poll_seconds);
	return run_rounds("mail", mail_poll_seconds(), mail_round,
	    mail_reload);
}

/* pmbctl mail fetch: one IMAP pass. */
static int
mail_fetch(const char *arg)
{
	struct imap_counts	n;
	struct buf		err;
	int			ok;

	(void)arg;
	if (*conf.imap_url == '\0')
		return fail("mail fetch: imap_url is not set (the settings "
		    "file names the IMAP mailbox to fetch from)");
	buf_init(&err);
	n.each = fetch_each_print;
	ok = mail_imap_pass(&n, NULL, &err);
	fetch_report(1, &n);
	fflush(stdout);
	if (!ok)
		fail("mail fetch: %s", err.data);
	buf_free(&err);
	return ok ? 0 : 1;
}

/* Prints one outbox row for "mail list". */
static void
print_row(const struct mail_info *mi, void *arg)
{
	struct buf *b = arg;

	buf_reset(b);
	fmt_iso(b, mi->created_at);
	printf("%-6lld %-7s %2lld tries  %s  %-14s %s", (long long)mi->id,
	    mi->status, (long long)mi->attempts, b->data, mi->kind,
	    mi->to_addr);
	if (strcmp(mi->status, "queued") == 0) {
		buf_reset(b);
		fmt_iso(b, mi->next_at);
		printf("  next %s", b->data);
	}
	if (*mi->last_error != '\0')
		printf("  error: %s", mi->last_error);
	if (mi->bounced_at != 0) {
		buf_reset(b);
		fmt_iso(b, mi->bounced_at);
		printf("  bounced %s: %s", b->data, mi->bounce);
	}
	putchar('\n');
}

/* pmbctl mail list [STATUS] */
static int
mail_list_status(const char *status)
{
	struct buf	b;
	int64_t		counts[MAIL_STATUSES];
	int		n, known = status == NULL;

	for (int i = 0; i < MAIL_STATUSES && !known; i++)
		known = strcmp(status, mail_statuses[i]) == 0;
	if (!known)
		return fail("the status is one of queued, sending, sent, "
		    "failed, bounced");
	buf_init(&b);
	n = mail_list(status, 1000, 0, print_row, &b);
	buf_free(&b);
	if (n < 0 || !mail_counts(counts))
		return fail("cannot read the outbox");
	printf("outbox: %lld queued, %lld sending, %lld sent, %lld failed, "
	    "%lld bounced\n", (long long)counts[0], (long long)counts[1],
	    (long long)counts[2], (long long)counts[3], (long long)counts[4]);
	return 0;
}

/* pmbctl mail retry ID */
static int
mail_retry(const char *arg)
{
	struct buf	detail;
	int64_t		id;
	int		rc;

	if (!parse_int64(arg, 1, INT64_MAX, &id))
		return fail("expected a message number");
	if (!db_begin())
		return fail("cannot start a transaction");
	buf_init(&detail);
	buf_printf(&detail, "outbox #%lld", (long long)id);
	rc = mail_retry_now(id);
	if (rc == 1 && !audit_log(NULL, 0, "mail retry", 0, detail.data))
		rc = -1;
	buf_free(&detail);
	if (rc != 1 || !db_commit()) {
		db_rollback();
		if (rc == 0)
			return fail("no queued or failed message %lld",
			    (long long)id);
		return fail("cannot change the outbox");
	}
	printf("message %lld is due now\n", (long long)id);
	return 0;
}

/* Gets the store and the transports ready, runs fn(arg) and puts them
 * away; ro: the store read-only, and the delivery settings not needed;
 * else also the templates and keys of the chase pass's mail and links.
 * Returns fn's exit status, or 1 after a message. */
static int
with_mail(int ro, int (*fn)(const char *), const char *arg)
{
	const char	*why;
	char		 err[512];
	int		 rc;

	if (!ro && (why = mail_transport_problem()) != NULL)
		return fail("%s", why);
	if (!ro && (!tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !token_keys_load(conf.key_file, err, sizeof(err))))
		return fail("%s", err);
	if (!open_db_current(ro ? DB_READONLY : 0))
		return 1;
	if (!mail_transport_start()) {
		db_close();
		return fail("cannot start libcurl");
	}
	rc = fn(arg);
	mail_transport_stop();
	db_close();
	return rc;
}

int
cmd_mail_send(char *argv[])
{
	(void)argv;
	return with_mail(0, mail_send, NULL);
}

int
cmd_mail_run(char *argv[])
{
	(void)argv;
	return with_mail(0, mail_run, NULL);
}

int
cmd_mail_fetch(char *argv[])
{
	(void)argv;
	return with_mail(0, mail_fetch, NULL);
}

int
cmd_mail_list(char *argv[])
{
	return with_mail(1, mail_list_status, argv[0]);
}

int
cmd_mail_retry(char *argv[])
{
	return with_mail(0, mail_retry, argv[0]);
}

/* pmbctl mail test ADDRESS: a message built and handed over as the
 * outbox's are, with the settings as they are; nothing is stored. */
int
cmd_mail_test(char *argv[])
{
	struct mail_msg	 m;
	struct buf	 err, said, text;
	const char	*why;
	int		 permanent, ok;

	if ((why = mail_transport_problem()) != NULL)
		return fail("%s", why);
	if (!mail_transport_start())
		return fail("cannot start libcurl");
	buf_init(&err);
	buf_init(&said);
	buf_init(&text);
	buf_printf(&text, "This is a test email from %s (%s), sent by \"pmbctl "
	    "mail test\" through the %s transport, from %s.\n\nIf it reached "
	    "you, the mail settings work.\n", conf.site_name, conf.base_url,
	    conf.mail_transport, conf.mail_from);
	memset(&m, 0, sizeof(m));
	m.kind = "test";
	m.to_addr = argv[0];
	m.subject = "Test email from pmbctl mail test";
	m.body_text = text.data;
	m.body_html = "";
	m.created_at = now_unix();
	mail_transport_answers(&said);
	ok = mail_transport_send(&m, &err, &permanent);
	mail_transport_answers(NULL);
	mail_transport_stop();
	if (said.len > 0)
		printf("%s server %s said:\n%s", conf.mail_transport,
		    conf.smtp_url, said.data);
	if (ok)
		printf("mail test: %s handed to the %s transport (from %s)\n",
		    argv[0], conf.mail_transport, conf.mail_from);
	else
		fail("mail test: %s", err.data);
	buf_free(&err);
	buf_free(&said);
	buf_free(&text);
	return ok ? 0 : 1;
}

/* Reads standard input whole into b, up to INTAKE_MAX_BYTES (the rest
 * read and counted, so the mail server's pipe is not cut). Returns the
 * bytes received, or -1 on a read error. */
static ssize_t
read_message(struct buf *b)
{
	char	 chunk[65536];
	size_t	 total = 0, n;

	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (total < INTAKE_MAX_BYTES)
			buf_append(b, chunk, total + n > INTAKE_MAX_BYTES ?
			    INTAKE_MAX_BYTES - total : n);
		total += n;
	}
	return ferror(stdin) ? -1 : (ssize_t)total;
}

/* Prints what became of a message, for the operator's shell and the
 * log. */
void
intake_report(const char *cmd, const struct intake_result *res)
{
	printf("%s: %s", cmd, res->where);
	if (res->inbound_id > 0)
		printf(" (message %lld", (long long)res->inbound_id);
	if (res->order_id > 0)
		printf("%sorder %lld", res->inbound_id > 0 ? ", " : " (",
		    (long long)res->order_id);
	printf("%s\n", res->inbound_id > 0 || res->order_id > 0 ? ")" : "");
}

/* pmbctl mail receive: one message on standard input, from a mail
 * server's pipe. Exits 0 once it is committed (or dropped on purpose),
 * EX_TEMPFAIL (75) when it cannot be stored now: the mail server keeps
 * it and tries again; nothing is acknowledged before its COMMIT. */
int
cmd_mail_receive(char *argv[])
{
	struct intake_result	 res;
	struct buf		 b;
	ssize_t			 n;
	char			 err[512];

	(void)argv;
	buf_init(&b);
	if ((n = read_message(&b)) < 0) {
		buf_free(&b);
		fail("mail receive: cannot read the message: %s",
		    strerror(errno));
		return EX_TEMPFAIL;
	}
	if (!tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !token_keys_load(conf.key_file, err, sizeof(err))) {
		buf_free(&b);
		fail("mail receive: %s", err);
		return EX_TEMPFAIL;
	}
	if (!open_db_current(0)) {
		buf_free(&b);
		return EX_TEMPFAIL;
	}
	/* The bytes past INTAKE_MAX_BYTES were counted, not kept. */
	mail_intake_sized(b.data != NULL ? b.data : "", b.len, (size_t)n,
	    "pipe", &res);
	db_close();
	buf_free(&b);
	intake_report("mail receive", &res);
	if (res.what == INTAKE_TEMPFAIL) {
		fail("mail receive: not stored (the database is busy or "
		    "failing); the mail server will try again");
		return EX_TEMPFAIL;
	}
	return 0;
}
