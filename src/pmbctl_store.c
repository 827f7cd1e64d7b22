/* pmbctl_store.c: pmbctl's commands on the store as a whole: init,
 * migrate, backup, check, and the search index's upkeep. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "offer.h"
#include "pmbctl.h"
#include "search_index.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

/* pmbctl init */
int
cmd_init(char *argv[])
{
	char	err[512];
	int	n;

	(void)argv;
	if (access(conf.key_file, F_OK) != 0) {
		token_keys_clear();
		if (token_key_add() == 0 ||
		    !token_keys_save(conf.key_file, 1, err, sizeof(err))) {
			token_keys_clear();
			return fail("%s", err);
		}
		printf("created the key file %s\n", conf.key_file);
	} else if (!token_keys_load(conf.key_file, err, sizeof(err)))
		return fail("%s (the file exists, so it is left alone)", err);
	token_keys_clear();
	if (!open_db(DB_CREATE))
		return 1;
	if ((n = db_migrate(err, sizeof(err))) < 0) {
		db_close();
		return fail("%s", err);
	}
	printf("database %s is at schema version %d (%d applied)\n",
	    conf.database, db_version(), n);
	db_close();
	return 0;
}

/* pmbctl migrate */
int
cmd_migrate(char *argv[])
{
	char	err[512];
	int	n;

	(void)argv;
	if (!open_db(0))
		return 1;
	/* Something to apply: a backup first, into backup_dir. */
	if (db_version() >= 0 && db_version() < db_known_version() &&
	    !backup_before_migrate()) {
		db_close();
		return fail("no migration applied, since the backup failed");
	}
	if ((n = db_migrate(err, sizeof(err))) < 0) {
		db_close();
		return fail("%s", err);
	}
	printf("%d migrations applied; schema version %d\n", n, db_version());
	db_close();
	return 0;
}

/* pmbctl search index */
int
cmd_search_index(char *argv[])
{
	int64_t n;

	(void)argv;
	if (!open_db_current(0))
		return 1;
	n = search_index_pending(0, NULL);
	db_close();
	if (n < 0)
		return fail("the search index could not be brought up to date");
	printf("%lld order%s indexed\n", (long long)n, n == 1 ? "" : "s");
	return 0;
}

/* pmbctl search optimize */
int
cmd_search_optimize(char *argv[])
{
	int64_t n;

	(void)argv;
	if (!open_db_current(0))
		return 1;
	n = search_optimize();
	db_close();
	if (n < 0)
		return fail("the search index could not be merged");
	printf("search index merged in %lld step%s\n", (long long)n,
	    n == 1 ? "" : "s");
	return 0;
}

/* Runs PRAGMA integrity_check on the open database; returns 1 if ok. */
static int
integrity_ok(void)
{
	sqlite3_stmt	*s = db_stmt(ST_INTEGRITY);
	int		 ok = 0;

	if (s != NULL && db_step(ST_INTEGRITY) == DB_ROW)
		ok = strcmp(db_text(s, 0), "ok") == 0;
	db_done(ST_INTEGRITY);
	return ok;
}

/* Adds what to the list of problems in b. */
static void
problem(struct buf *b, const char *what)
{
	buf_puts(b, b->len > 0 ? ", " : "");
	buf_puts(b, what);
}

/* pmbctl check */
int
cmd_check(char *argv[])
{
	struct stat	st;
	struct buf	bad;
	char		err[512];
	int		n = 0;

	(void)argv;
	buf_init(&bad);
	if (conf_file() != NULL)
		printf("settings: ok (%s)\n", conf_file());
	else
		printf("settings: ok (no settings file: defaults)\n");
	if (!token_keys_load(conf.key_file, err, sizeof(err))) {
		printf("key file: %s\n", err);
		problem(&bad, "key file");
	} else if (stat(conf.key_file, &st) != 0 || (st.st_mode & 077)) {
		printf("key file: %s is readable by others (chmod 600)\n",
		    conf.key_file);
		problem(&bad, "key file mode");
	} else
		printf("key file: ok\n");
	token_keys_clear();
	if (!tmpl_load(conf.template_dir, err, sizeof(err))) {
		printf("templates: %s\n", err);
		problem(&bad, "templates");
	} else
		printf("templates: ok\n");
	tmpl_free();
	if (!offer_load(err, sizeof(err))) {
		printf("offer: %s\n", err);
		problem(&bad, "consultant_photo");
	} else
		printf("offer: ok\n");
	offer_free();
	if (access(conf.database, F_OK) != 0) {
		printf("database: %s is missing (run \"pmbctl init\")\n",
		    conf.database);
		problem(&bad, "database");
	} else if (!db_open(conf.database, DB_READONLY, err, sizeof(err))) {
		printf("database: %s\n", err);
		problem(&bad, "database");
	} else {
		if (!db_check_version(err, sizeof(err))) {
			printf("schema: %s\n", err);
			problem(&bad, "schema version");
		} else
			printf("schema: version %d, ok\n", db_version());
		if (!integrity_ok()) {
			printf("integrity: FAILED\n");
			problem(&bad, "database integrity");
		} else
			printf("integrity: ok\n");
		db_close();
	}
	fflush(stdout);
	if (bad.len > 0)
		n = fail("problems found: %s", bad.data);
	buf_free(&bad);
	return n;
}
