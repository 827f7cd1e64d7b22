/* pmbctl_store.c: pmbctl's commands on the store as a whole: init,
 * migrate, and the search index's upkeep (backup and restore are in
 * pmbctl_backup.c, check in pmbctl_check.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "pmbctl.h"
#include "search_index.h"
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
