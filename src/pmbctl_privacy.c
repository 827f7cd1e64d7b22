/* pmbctl_privacy.c: the operator's side of the erasure (privacy.c):
 * pmbctl privacy erase --email ADDRESS | --order NUMBER, privacy sweep
 * (nightly, conf/systemd/pmb-privacy-sweep.timer), and privacy columns,
 * the list of every column and whether it can hold personal data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "http.h"
#include "order.h"
#include "pmbctl.h"
#include "privacy.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

/* Says what became of the orders of t (n of them) after
 * privacy_erase_person answered rc. Returns the exit status. */
static int
erase_said(int rc, const char *address, const struct privacy_target *t,
    int n)
{
	int blocked = 0;

	if (rc < 0)
		return fail("the erase failed: nothing was erased");
	if (n == 0)
		return fail("%s: no such order", address);
	for (int i = 0; i < n; i++) {
		if (rc == 1)
			printf("%s: personal data erased\n", t[i].number);
		else if (t[i].why != PB_NONE) {
			fprintf(stderr, "pmbctl: %s: not erased: %s\n",
			    t[i].number, privacy_block_text(t[i].why));
			blocked++;
		}
	}
	if (rc == 1)
		return 0;
	return fail("nothing was erased (%d order%s blocked)", blocked,
	    blocked == 1 ? "" : "s");
}

/* Erases order id (number its text). Returns the exit status. */
static int
erase_one(struct request *r, int64_t id, const char *number)
{
	enum privacy_block	why;
	struct order		o;
	int			rc;

	if ((rc = order_load(r, id, &o)) <= 0)
		return rc == 0 ? fail("%s: no such order", number) :
		    fail("cannot read %s", number);
	if ((rc = privacy_erase(r, id, 0, 1, &why)) < 0)
		return fail("the erase failed: nothing was erased");
	if (rc == 0) {
		fprintf(stderr, "pmbctl: %s: not erased: %s\n", number,
		    privacy_block_text(why));
		return fail("nothing was erased (1 order blocked)");
	}
	printf("%s: personal data erased\n", number);
	return 0;
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
	struct request		 r;
	struct privacy_target	*t;
	int64_t			 id;
	int			 n, rc, exact;

	if (strcmp(argv[0], "--email") != 0 && strcmp(argv[0], "--order")) {
		fprintf(stderr, "pmbctl: usage: pmbctl privacy erase "
		    "--email ADDRESS | --order NUMBER\n");
		return EXIT_USAGE;
	}
	if (!privacy_open())
		return 1;
	req_init(&r, NULL);
	r.client_ip = "";	/* the operator's shell: no address */
	if (!strcmp(argv[0], "--order")) {
		if ((id = order_number_parse(argv[1], &exact)) <= 0)
			rc = fail("%s: not an order number (PMB-000123 or "
			    "123)", argv[1]);
		else
			rc = erase_one(&r, id, req_printf(&r, "PMB-%06lld",
			    (long long)id));
	} else {
		t = xcalloc(PRIVACY_PERSON_MAX, sizeof(*t));
		rc = privacy_erase_person(&r, argv[1], 0, 1, t, &n);
		rc = erase_said(rc, argv[1], t, n);
		free(t);
	}
	req_free(&r);
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
