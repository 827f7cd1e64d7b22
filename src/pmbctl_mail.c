/* pmbctl_mail.c: pmbctl's mail commands: send, run, list, retry. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "mail_transport.h"
#include "outbox.h"
#include "pmbctl.h"
#include "util.h"

/* The signals that "mail run" waits for; blocked while it works, so a
 * stop request waits until the message in hand is done. */
static sigset_t run_signals;

/* Returns 1 if SIGTERM or SIGINT is waiting, else 0. */
static int
stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p) != 0)
		return 0;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1;
}

/* pmbctl mail send */
static int
cmd_send(void)
{
	int sent = 0, failed = 0, ok;

	ok = mail_deliver_due(NULL, &sent, &failed);
	printf("mail: %d sent, %d failed\n", sent, failed);
	if (!ok)
		fprintf(stderr, "pmbctl: mail: a database error stopped "
		    "delivery\n");
	return ok ? 0 : 1;
}

/* pmbctl mail run */
static int
cmd_run(void)
{
	sigset_t	old;
	int		sig;

	sigemptyset(&run_signals);
	sigaddset(&run_signals, SIGTERM);
	sigaddset(&run_signals, SIGINT);
	sigaddset(&run_signals, SIGHUP);
	sigaddset(&run_signals, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &run_signals, &old) != 0) {
		fprintf(stderr, "pmbctl: sigprocmask: %s\n", strerror(errno));
		return 1;
	}
	log_msg("mail: delivering with the %s transport (pid %ld)",
	    conf.mail_transport, (long)getpid());
	for (;;) {
		struct timespec	ts = { MAIL_POLL_SECONDS, 0 };
		int		sent = 0, failed = 0;

		if (!mail_deliver_due(stop_pending, &sent, &failed))
			log_msg("mail: a database error stopped this round");
		if (stop_pending())
			break;
		sig = sigtimedwait(&run_signals, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_msg("mail: stopped");
	/* Take the stop signal, so that unblocking does not deliver it. */
	{
		struct timespec zero = { 0, 0 };

		while (sigtimedwait(&run_signals, NULL, &zero) > 0)
			;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
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
	putchar('\n');
}

/* pmbctl mail list [STATUS] */
static int
cmd_list(const char *status)
{
	struct buf	b;
	int64_t		counts[4];
	int		n;

	if (status != NULL && strcmp(status, "queued") &&
	    strcmp(status, "sending") && strcmp(status, "sent") &&
	    strcmp(status, "failed")) {
		fprintf(stderr, "pmbctl: the status is one of queued, "
		    "sending, sent, failed\n");
		return 1;
	}
	buf_init(&b);
	n = mail_list(status, 1000, 0, print_row, &b);
	buf_free(&b);
	if (n < 0 || !mail_counts(counts)) {
		fprintf(stderr, "pmbctl: cannot read the outbox\n");
		return 1;
	}
	printf("outbox: %lld queued, %lld sending, %lld sent, %lld failed\n",
	    (long long)counts[0], (long long)counts[1], (long long)counts[2],
	    (long long)counts[3]);
	return 0;
}

/* pmbctl mail retry ID */
static int
cmd_retry(const char *arg)
{
	struct buf	detail;
	int64_t		id;
	int		rc;

	if (!parse_int64(arg, 1, INT64_MAX, &id)) {
		fprintf(stderr, "pmbctl: expected a message number\n");
		return 1;
	}
	if (!db_begin()) {
		fprintf(stderr, "pmbctl: cannot start a transaction\n");
		return 1;
	}
	buf_init(&detail);
	buf_printf(&detail, "outbox #%lld", (long long)id);
	rc = mail_retry_now(id);
	if (rc == 1 && !audit_log(NULL, 0, "mail retry", 0,
	    detail.data))
		rc = -1;
	buf_free(&detail);
	if (rc != 1 || !db_commit()) {
		db_rollback();
		if (rc == 0)
			fprintf(stderr, "pmbctl: no queued or failed message "
			    "%lld\n", (long long)id);
		else
			fprintf(stderr, "pmbctl: cannot change the outbox\n");
		return 1;
	}
	printf("message %lld is due now\n", (long long)id);
	return 0;
}

int
mail_command(int argc, char *argv[])
{
	const char	*why;
	char		 err[512];
	int		 rc, ro = 0;

	if (argc < 1)
		return -1;
	if (argc == 1 && (strcmp(argv[0], "send") == 0 ||
	    strcmp(argv[0], "run") == 0))
		;
	else if (strcmp(argv[0], "list") == 0 && argc <= 2)
		ro = 1;
	else if (!(strcmp(argv[0], "retry") == 0 && argc == 2))
		return -1;
	if (!ro && (why = mail_transport_problem()) != NULL) {
		fprintf(stderr, "pmbctl: %s\n", why);
		return 1;
	}
	if (access(conf.database, F_OK) != 0) {
		fprintf(stderr, "pmbctl: %s: no database (run \"pmbctl "
		    "init\")\n", conf.database);
		return 1;
	}
	if (!db_open(conf.database, ro ? DB_READONLY : 0, err, sizeof(err)) ||
	    !db_check_version(err, sizeof(err))) {
		db_close();
		fprintf(stderr, "pmbctl: %s\n", err);
		return 1;
	}
	if (!mail_transport_start()) {
		db_close();
		fprintf(stderr, "pmbctl: cannot start libcurl\n");
		return 1;
	}
	if (strcmp(argv[0], "send") == 0)
		rc = cmd_send();
	else if (strcmp(argv[0], "run") == 0)
		rc = cmd_run();
	else if (strcmp(argv[0], "list") == 0)
		rc = cmd_list(argc == 2 ? argv[1] : NULL);
	else
		rc = cmd_retry(argv[1]);
	mail_transport_stop();
	db_close();
	return rc;
}
