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

/* Returns 1 if path names the same file as the database or one of its
 * companion files (-wal, -shm), else 0. */
static int
is_database_file(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	struct stat	 a, b;
	struct buf	 name;
	int		 same = 0;

	if (stat(path, &a) != 0)
		return 0;
	buf_init(&name);
	for (size_t i = 0; i < ARRAY_LEN(sfx) && !same; i++) {
		buf_reset(&name);
		buf_printf(&name, "%s%s", conf.database, sfx[i]);
		same = stat(name.data, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino;
	}
	buf_free(&name);
	return same;
}

/* pmbctl backup FILE */
int
cmd_backup(char *argv[])
{
	const char	*dest = argv[0];
	sqlite3		*out = NULL;
	sqlite3_backup	*bk;
	struct buf	 tmp;
	char		*msg = NULL;
	int		 rc, fd, made = 0;

	if (is_database_file(dest))
		return fail("%s: that is the database itself", dest);
	if (!open_db(DB_READONLY))
		return 1;
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp-%ld", dest, (long)getpid());
	/* The copy holds password hashes: readable by the owner only. */
	if ((fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		rc = fail("%s: %s", tmp.data, strerror(errno));
		goto done;
	}
	made = 1;
	close(fd);
	if (sqlite3_open(tmp.data, &out) != SQLITE_OK) {
		rc = fail("%s: %s", tmp.data, out != NULL ?
		    sqlite3_errmsg(out) : "cannot open");
		goto done;
	}
	if ((bk = sqlite3_backup_init(out, "main", db_handle(), "main")) ==
	    NULL) {
		rc = fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	/*
	 * Copies every page in one step, inside one read transaction: in
	 * WAL mode that holds no writer back, and the copy is one
	 * consistent snapshot. (Copying in small steps would restart each
	 * time a writer commits, and never end on a busy site.)
	 */
	do {
		rc = sqlite3_backup_step(bk, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		rc = fail("backup: %s", sqlite3_errstr(rc));
		goto done;
	}
	/* A plain rollback-journal file, that copies and opens anywhere. */
	if (sqlite3_exec(out, "PRAGMA journal_mode = DELETE", NULL, NULL,
	    &msg) != SQLITE_OK) {
		rc = fail("backup: %s", msg != NULL ? msg :
		    sqlite3_errmsg(out));
		goto done;
	}
	if (sqlite3_close(out) != SQLITE_OK) {
		rc = fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	out = NULL;
	if (rename(tmp.data, dest) != 0) {
		rc = fail("%s: %s", dest, strerror(errno));
		goto done;
	}
	printf("backed up %s to %s\n", conf.database, dest);
	rc = 0;
done:
	sqlite3_free(msg);
	if (out != NULL)
		sqlite3_close(out);
	if (rc != 0 && made)
		unlink(tmp.data);
	buf_free(&tmp);
	db_close();
	return rc;
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
	printf("settings: ok\n");
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
