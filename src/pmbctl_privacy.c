/* pmbctl_privacy.c: the operator's side of the erasure (privacy.c):
 * pmbctl privacy erase --email ADDRESS | --order NUMBER, privacy sweep
 * (nightly, conf/systemd/pmb-privacy-sweep.timer), and privacy columns,
 * the list of every column and whether it can hold personal data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "http.h"
#include "order.h"
#include "pmbctl.h"
#include "privacy.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

/* The most orders one person's erase takes (--email). */
#define ERASE_MAX_ORDERS	1000

/* One order to erase: its id and number. */
struct target {
	int64_t	 id;
	char	 number[32];
};

/* Reads the orders of address (any case) into t. Returns how many, or
 * -1 on error (or more than ERASE_MAX_ORDERS). */
static int
orders_of(const char *address, struct target *t)
{
	sqlite3_stmt	*s = db_stmt(ST_PRIVACY_ORDERS_BY_EMAIL);
	char		*key;
	int		 n = 0, rc;

	if (s == NULL || (key = email_addr_key(address)) == NULL)
		return -1;
	if (!db_bind(s, "t", key)) {
		free(key);
		return -1;
	}
	while ((rc = db_step(ST_PRIVACY_ORDERS_BY_EMAIL)) == DB_ROW &&
	    n < ERASE_MAX_ORDERS) {
		t[n].id = sqlite3_column_int64(s, 0);
		snprintf(t[n].number, sizeof(t[n].number), "%s",
		    db_text(s, 1));
		n++;
	}
	db_done(ST_PRIVACY_ORDERS_BY_EMAIL);
	free(key);
	return rc == DB_DONE ? n : -1;
}

/* Erases the n orders of t in one transaction, all or none: if any is
 * blocked, names each blocked one with why and erases nothing. Returns
 * the exit status. */
static int
erase_all(struct request *r, const struct target *t, int n)
{
	enum privacy_block	why;
	int			blocked = 0, rc;

	if (!db_begin())
		return fail("cannot start a transaction");
	for (int i = 0; i < n; i++) {
		if ((rc = privacy_erasable(t[i].id, now_unix())) < 0)
			goto fail;
		if (rc != PB_NONE) {
			fprintf(stderr, "pmbctl: %s: not erased: %s\n",
			    t[i].number, privacy_block_text(rc));
			blocked++;
		}
	}
	if (blocked > 0) {
		db_rollback();
		return fail("nothing was erased (%d order%s blocked)",
		    blocked, blocked == 1 ? "" : "s");
	}
	for (int i = 0; i < n; i++)
		if (privacy_erase_order(r, t[i].id, 0, 1, &why) != 1)
			goto fail;
	if (!db_commit())
		goto fail;
	for (int i = 0; i < n; i++)
		printf("%s: personal data erased\n", t[i].number);
	if (privacy_scrub() != 1)
		fprintf(stderr, "pmbctl: the data is erased, but the search "
		    "index or the WAL could not be scrubbed now (see the "
		    "log); the next erase or sweep does it\n");
	return 0;
fail:
	db_rollback();
	return fail("the erase failed: nothing was erased");
}

/* Loads what the "erased" email needs (templates, signing keys) and
 * opens the database. Returns 1, or 0 after a message. */
static int
privacy_open(void)
{
	char err[512];

	if (!tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !token_keys_load(conf.key_file, err, sizeof(err))) {
		fail("%s", err);
		return 0;
	}
	return open_db_current(0);
}

/* pmbctl privacy erase --email ADDRESS | --order NUMBER. */
int
cmd_privacy_erase(char *argv[])
{
	struct request	 r;
	struct target	*t;
	int64_t		 id;
	int		 n, rc, exact;

	if (strcmp(argv[0], "--email") != 0 && strcmp(argv[0], "--order")) {
		fprintf(stderr, "pmbctl: usage: pmbctl privacy erase "
		    "--email ADDRESS | --order NUMBER\n");
		return EXIT_USAGE;
	}
	if (!privacy_open())
		return 1;
	t = xcalloc(ERASE_MAX_ORDERS, sizeof(*t));
	req_init(&r, NULL);
	r.client_ip = "";	/* the operator's shell: no address */
	if (!strcmp(argv[0], "--order")) {
		id = order_number_parse(argv[1], &exact);
		if (id <= 0) {
			rc = fail("%s: not an order number (PMB-000123 or "
			    "123)", argv[1]);
			goto out;
		}
		t[0].id = id;
		snprintf(t[0].number, sizeof(t[0].number), "PMB-%06lld",
		    (long long)id);
		n = privacy_erasable(id, now_unix()) < 0 ? 0 : 1;
	} else if ((n = orders_of(argv[1], t)) < 0) {
		rc = fail("cannot read the orders of %s", argv[1]);
		goto out;
	}
	if (n == 0)
		rc = fail("%s: no such order", argv[1]);
	else
		rc = erase_all(&r, t, n);
out:
	req_free(&r);
	free(t);
	db_close();
	return rc;
}

/* pmbctl privacy sweep: prints (and audits) how many were erased. */
int
cmd_privacy_sweep(char *argv[])
{
	struct request	r;
	int64_t		n;

	(void)argv;
	if (!privacy_open())
		return 1;
	req_init(&r, NULL);
	r.client_ip = "";
	n = privacy_sweep(&r, now_unix());
	req_free(&r);
	db_close();
	if (n < 0)
		return fail("the sweep failed (orders erased before the "
		    "failure stay erased)");
	if (conf.retention_days <= 0)
		printf("retention_days is 0: nothing is swept\n");
	printf("%lld order%s erased\n", (long long)n, n == 1 ? "" : "s");
	return 0;
}

/* pmbctl privacy columns: the list as TSV. */
int
cmd_privacy_columns(char *argv[])
{
	(void)argv;
	printf("table\tcolumn\tpersonal\twhy\n");
	for (size_t i = 0; i < privacy_columns_len; i++)
		printf("%s\t%s\t%d\t%s\n", privacy_columns[i].table,
		    privacy_columns[i].column, privacy_columns[i].personal,
		    privacy_columns[i].why);
	return 0;
}
