/* pmbctl_pay.c: pmbctl's payment commands: send, run (the daemon that
 * carries out payment jobs, pay_jobs.c) and reconcile (what a lost
 * webhook left undone, asked of Stripe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "card_refund.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "pay_jobs.h"
#include "payment.h"
#include "pmbctl.h"
#include "stripe.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

#define RECONCILE_DAYS	3	/* default of --days */
#define RECONCILE_MAX	365
#define PAGE_LIMIT	100	/* items of one list call */

/* pmbctl pay send */
static int
pay_send(const char *arg)
{
	int done = 0, failed = 0, ok;

	(void)arg;
	ok = pay_jobs_run_due(NULL, &done, &failed);
	printf("pay: %d done, %d failed or to try again\n", done, failed);
	if (!ok)
		fail("pay: a database error stopped the jobs");
	return ok ? 0 : 1;
}

/* One round of "pay run". Returns 1, or 0 after a logged error. */
static int
pay_round(int (*stop)(void))
{
	if (!pay_jobs_run_due(stop, NULL, NULL)) {
		log_msg("pay: a database error stopped this round");
		return 0;
	}
	return 1;
}

/* pmbctl pay run */
static int
pay_run(const char *arg)
{
	(void)arg;
	log_msg("pay: carrying out payment jobs (pid %ld)", (long)getpid());
	return run_rounds("pay", PAY_POLL_SECONDS, pay_round, NULL);
}

/* What reconcile fixed and saw. */
struct tally {
	int	 seen, fixed;
};

/* Lists Stripe's objects at path created since `since`, page by page,
 * and hands each to fn. Returns 1, or 0 after a message. */
static int
list_each(const char *path, int64_t since, int (*fn)(json_t *,
    struct tally *), struct tally *t)
{
	struct stripe_params	 p;
	struct stripe_error	 err;
	json_t			*list, *item, *last;
	const char		*after = NULL;
	char			*cursor = NULL;
	size_t			 i;
	int			 more = 1, ok = 1;

	while (more && ok) {
		stripe_params_init(&p);
		stripe_param_int(&p, "created[gte]", since);
		stripe_param_int(&p, "limit", PAGE_LIMIT);
		if (after != NULL)
			stripe_param(&p, "starting_after", after);
		if (stripe_call("GET", path, &p, NULL, &list, &err) !=
		    STRIPE_OK) {
			stripe_params_free(&p);
			free(cursor);
			return fail("%s: %s", path, err.message);
		}
		stripe_params_free(&p);
		json_array_foreach(stripe_get(list, "data"), i, item) {
			t->seen++;
			if (!fn(item, t))
				ok = 0;
		}
		last = json_array_get(stripe_get(list, "data"),
		    json_array_size(stripe_get(list, "data")) - 1);
		more = json_is_true(stripe_get(list, "has_more")) &&
		    stripe_str(last, "id") != NULL;
		free(cursor);
		cursor = more ? xstrdup(stripe_str(last, "id")) : NULL;
		after = cursor;
		json_decref(list);
	}
	free(cursor);
	return ok;
}

/* Settles (or records) one refund of Stripe's list in one transaction,
 * printing a line when that changed something. Returns 1, or 0 after a
 * message. */
static int
reconcile_refund(json_t *refund, struct tally *t)
{
	struct request	 r;
	const char	*text = "";
	int64_t		 oid = 0;
	int		 rc = -1;

	req_init(&r, NULL);
	r.client_ip = "";
	if (db_begin()) {
		rc = card_refund_event(&r, refund, &oid, &text);
		if (rc == 0 && !db_commit())
			rc = -1;
		if (rc < 0)
			db_rollback();
	}
	if (rc == 0 && (!strcmp(text, "refund succeeded") ||
	    !strcmp(text, "refund failed") ||
	    !strcmp(text, "refund made in Stripe, recorded"))) {
		printf("refund %s of order %lld: %s\n",
		    stripe_str(refund, "id"), (long long)oid, text);
		t->fixed++;
	}
	req_free(&r);
	if (rc < 0)
		return fail("refund %s: a database error",
		    stripe_str(refund, "id"));
	return 1;
}

/* Reads the status of the session pmb stored as Stripe's cs into st
 * (16 bytes; "" when pmb has none). Returns 1, or 0 on error. */
static int
session_status(const char *cs, char st[16])
{
	sqlite3_stmt	*s = db_stmt(ST_PAY_SESSION_STATUS);
	int		 rc;

	*st = '\0';
	if (s == NULL || !db_bind(s, "t", cs))
		return 0;
	if ((rc = db_step(ST_PAY_SESSION_STATUS)) == DB_ROW)
		snprintf(st, 16, "%s", db_text(s, 0));
	db_done(ST_PAY_SESSION_STATUS);
	return rc != DB_ERROR;
}

/* Fulfils (or ends) one Checkout Session of Stripe's list that pmb
 * stored and that is not yet complete here, through payment.c, in one
 * transaction; prints a line when its row changed. Returns 1, or 0
 * after a message. */
static int
reconcile_session(json_t *cs, struct tally *t)
{
	struct request		 r;
	struct pay_outcome	 out = { .text = "" };
	const char		*id = stripe_str(cs, "id");
	const char		*status = stripe_str(cs, "status");
	char			 before[16], after[16];
	int			 rc = -1;

	if (id == NULL || status == NULL || !session_status(id, before))
		return id == NULL || status == NULL ? 1 : fail("%s: a "
		    "database error", id);
	if (*before == '\0' || !strcmp(before, "complete") ||
	    (strcmp(status, "complete") && strcmp(status, "expired")))
		return 1;
	req_init(&r, NULL);
	r.client_ip = "";
	if (db_begin()) {
		rc = !strcmp(status, "complete") ? payment_fulfil(&r, cs, 0,
		    &out) : payment_session_ended(&r, cs, 0, &out);
		if (rc == 0 && !db_commit())
			rc = -1;
		if (rc < 0)
			db_rollback();
	}
	if (rc == 0 && session_status(id, after) && strcmp(before, after)) {
		printf("session %s of order %lld: %s\n", id,
		    (long long)out.order_id, out.text);
		t->fixed++;
	}
	req_free(&r);
	return rc < 0 ? fail("session %s: a database error", id) : 1;
}

/* pmbctl pay reconcile [--days N] */
static int
pay_reconcile(const char *arg)
{
	struct tally	 sessions = { 0, 0 }, refunds = { 0, 0 };
	int64_t		 days = RECONCILE_DAYS, since;
	int		 ok;

	if (arg != NULL && !parse_int64(arg, 1, RECONCILE_MAX, &days))
		return fail("--days takes a number of days from 1 to %d",
		    RECONCILE_MAX);
	since = now_unix() - days * 86400;
	ok = list_each("/v1/checkout/sessions", since, reconcile_session,
	    &sessions) && list_each("/v1/refunds", since, reconcile_refund, &refunds);
	printf("reconcile: last %lld days: %d sessions seen, %d fulfilled; "
	    "%d refunds seen, %d settled or recorded\n", (long long)days,
	    sessions.seen, sessions.fixed, refunds.seen, refunds.fixed);
	return ok ? 0 : 1;
}

/* Gets the store, templates, keys and libcurl ready, runs fn(arg) and
 * puts them away. Returns fn's exit status, or 1 after a message. */
static int
with_stripe(int (*fn)(const char *), const char *arg)
{
	char	err[512];
	int	rc;

	if (*conf.stripe_secret_key == '\0')
		return fail("stripe_secret_key is not set: card payments are "
		    "off");
	if (!tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !token_keys_load(conf.key_file, err, sizeof(err)))
		return fail("%s", err);
	if (!open_db_current(0))
		return 1;
	if (!stripe_start()) {
		db_close();
		return fail("cannot start libcurl");
	}
	rc = fn(arg);
	stripe_stop();
	db_close();
	token_keys_clear();
	tmpl_free();
	return rc;
}

int
cmd_pay_send(char *argv[])
{
	(void)argv;
	return with_stripe(pay_send, NULL);
}

int
cmd_pay_run(char *argv[])
{
	(void)argv;
	return with_stripe(pay_run, NULL);
}

int
cmd_pay_reconcile(char *argv[])
{
	if (argv[0] != NULL && (strcmp(argv[0], "--days") != 0 ||
	    argv[1] == NULL)) {
		fprintf(stderr, "pmbctl: usage: pmbctl pay reconcile "
		    "[--days N]\n");
		return EXIT_USAGE;
	}
	return with_stripe(pay_reconcile, argv[0] != NULL ? argv[1] : NULL);
}
