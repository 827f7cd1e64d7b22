/* db.c: opening the SQLite store, migrating it, and running the
 * statements of db_stmts.h, each prepared once per process. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "util.h"

#define X(name, sql) sql,
static const char *const stmt_sql[ST__MAX] = {
#include "db_stmts.h"
};
#undef X
#define X(name, sql) #name,
static const char *const stmt_name[ST__MAX] = {
#include "db_stmts.h"
};
#undef X

/* From sql_migrations.c, generated from sql/NNN_*.sql at build time. */
extern const char *const pmb_migrations[];
extern const char *const pmb_migration_names[];
extern const int pmb_nmigrations;

static sqlite3		*db;
static sqlite3_stmt	*stmts[ST__MAX];
static int		(*hook_opened)(sqlite3 *);
static void		(*hook_closing)(void);

sqlite3 *
db_handle(void)
{
	return db;
}

int
db_known_version(void)
{
	return pmb_nmigrations;
}

/* Runs one pragma or statement without results; returns 1 or 0. */
static int
db_exec(const char *sql, char *err, size_t errsz)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errsz, "%s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return 0;
	}
	return 1;
}

/* Turns off SQLite's memory statistics, which only sqlite3_memory_used()
 * and the soft heap limit read (pmb uses neither): each of the twenty-odd
 * allocations of a page's statements then skips a mutex and the counting.
 * SQLite takes this only before it initialises, so the first open sets
 * it; later opens leave it as it is. */
static void
db_configure(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	/* SQLITE_MISUSE: SQLite was initialised already (by an open not
	 * through here); the statistics then stay on, which costs only
	 * time. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
db_open(const char *path, int flags, char *err, size_t errsz)
{
	int	 oflags = SQLITE_OPEN_NOMUTEX;
	char	 why[256];

	db_configure();
	if (flags & DB_READONLY)
		oflags |= SQLITE_OPEN_READONLY;
	else
		oflags |= SQLITE_OPEN_READWRITE;
	if (flags & DB_CREATE)
		oflags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, oflags, NULL) != SQLITE_OK) {
		snprintf(err, errsz, "%s: %s", path,
		    db ? sqlite3_errmsg(db) : "cannot open");
		db_close();
		return 0;
	}
	sqlite3_extended_result_codes(db, 0);
	sqlite3_busy_timeout(db, (int)conf.busy_timeout_ms);
	if (!(flags & DB_READONLY) &&
	    !db_exec("PRAGMA journal_mode = WAL", why, sizeof(why))) {
		snprintf(err, errsz, "%s: %s", path, why);
		db_close();
		return 0;
	}
	/* secure_delete: every deleted or overwritten byte is zeroed in
	 * the file, so an erased client's data (privacy.c) leaves no trace
	 * in free pages (bench/README.md measures its cost). */
	if (!db_exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA secure_delete = ON;",
	    why, sizeof(why))) {
		snprintf(err, errsz, "%s: %s", path, why);
		db_close();
		return 0;
	}
	if (hook_opened != NULL)
		(void)hook_opened(db);
	return 1;
}

void
db_set_hooks(int (*opened)(sqlite3 *), void (*closing)(void))
{
	hook_opened = opened;
	hook_closing = closing;
}

void
db_close(void)
{
	if (hook_closing != NULL)
		hook_closing();
	for (size_t i = 0; i < ST__MAX; i++) {
		sqlite3_finalize(stmts[i]);
		stmts[i] = NULL;
	}
	if (db != NULL)
		sqlite3_close(db);
	db = NULL;
}

int
db_version(void)
{
	sqlite3_stmt	*st;
	int		 v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
db_migrate(char *err, size_t errsz)
{
	int	v = db_version(), applied = 0;
	char	why[512], sql[64];

	if (v < 0) {
		snprintf(err, errsz, "cannot read the schema version: %s",
		    sqlite3_errmsg(db));
		return -1;
	}
	if (v > pmb_nmigrations) {
		snprintf(err, errsz, "the database is at schema version %d, "
		    "newer than this program knows (%d): upgrade pmb", v,
		    pmb_nmigrations);
		return -1;
	}
	for (; v < pmb_nmigrations; v++, applied++) {
		if (!db_exec("BEGIN IMMEDIATE", why, sizeof(why)))
			goto fail;
		if (!db_exec(pmb_migrations[v], why, sizeof(why))) {
			db_exec("ROLLBACK", sql, sizeof(sql));
			goto fail;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (!db_exec(sql, why, sizeof(why)) ||
		    !db_exec("COMMIT", why, sizeof(why))) {
			db_exec("ROLLBACK", sql, sizeof(sql));
			goto fail;
		}
	}
	return applied;
fail:
	snprintf(err, errsz, "migration %s failed: %s",
	    pmb_migration_names[v], why);
	return -1;
}

int
db_check_version(char *err, size_t errsz)
{
	int v = db_version();

	if (v == pmb_nmigrations)
		return 1;
	if (v < 0)
		snprintf(err, errsz, "cannot read the schema version: %s",
		    sqlite3_errmsg(db));
	else if (v > pmb_nmigrations)
		snprintf(err, errsz, "the database is at schema version %d, "
		    "newer than this program knows (%d): upgrade pmb", v,
		    pmb_nmigrations);
	else
		snprintf(err, errsz, "the database is at schema version %d, "
		    "this program needs %d: run \"pmbctl migrate\"", v,
		    pmb_nmigrations);
	return 0;
}

sqlite3_stmt *
db_stmt(enum stmt st)
{
	if (stmts[st] == NULL) {
		if (sqlite3_prepare_v3(db, stmt_sql[st], -1,
		    SQLITE_PREPARE_PERSISTENT, &stmts[st], NULL) != SQLITE_OK) {
			log_msg("db: prepare %s: %s", stmt_name[st],
			    sqlite3_errmsg(db));
			stmts[st] = NULL;
			return NULL;
		}
	} else {
		sqlite3_reset(stmts[st]);
		sqlite3_clear_bindings(stmts[st]);
	}
	return stmts[st];
}

/* Binds per fmt from ap; returns 1 or 0. */
static int
db_vbind(sqlite3_stmt *s, const char *fmt, va_list ap)
{
	int i = 1, rc = SQLITE_OK;

	if ((int)strlen(fmt) != sqlite3_bind_parameter_count(s)) {
		log_msg("db: %zu values for %d parameters of \"%.60s\"",
		    strlen(fmt), sqlite3_bind_parameter_count(s),
		    sqlite3_sql(s));
		return 0;
	}

	for (; *fmt != '\0' && rc == SQLITE_OK; fmt++, i++) {
		const char	*t;
		const void	*p;
		int		 n;

		switch (*fmt) {
		case 't':
			t = va_arg(ap, const char *);
			rc = sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
			break;
		case 'z':
			t = va_arg(ap, const char *);
			rc = t == NULL || *t == '\0' ? sqlite3_bind_null(s, i) :
			    sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC);
			break;
		case 'i':
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
			break;
		case 'n':
			rc = sqlite3_bind_null(s, i);
			break;
		case 'b':
			p = va_arg(ap, const void *);
			n = va_arg(ap, int);
			rc = sqlite3_bind_blob(s, i, p, n, SQLITE_STATIC);
			break;
		default:
			log_msg("db: bad bind format %c", *fmt);
			return 0;
		}
	}
	if (rc != SQLITE_OK) {
		log_msg("db: bind %d: %s", i - 1, sqlite3_errmsg(db));
		return 0;
	}
	return 1;
}

int
db_bind(sqlite3_stmt *s, const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, fmt);
	rc = db_vbind(s, fmt, ap);
	va_end(ap);
	return rc;
}

int
db_step(enum stmt st)
{
	int rc;

	if (stmts[st] == NULL)
		return DB_ERROR;
	rc = sqlite3_step(stmts[st]);
	if (rc == SQLITE_ROW)
		return DB_ROW;
	if (rc == SQLITE_DONE)
		return DB_DONE;
	if (rc == SQLITE_CONSTRAINT)
		return DB_CONSTRAINT;
	log_msg("db: %s: %s", stmt_name[st], sqlite3_errmsg(db));
	return DB_ERROR;
}

int
db_run(enum stmt st, const char *fmt, ...)
{
	sqlite3_stmt	*s;
	va_list		 ap;
	int		 ok, rc;

	if ((s = db_stmt(st)) == NULL)
		return DB_ERROR;
	va_start(ap, fmt);
	ok = db_vbind(s, fmt, ap);
	va_end(ap);
	if (!ok)
		return DB_ERROR;
	rc = db_step(st);
	sqlite3_reset(s);
	return rc == DB_ROW ? DB_DONE : rc;
}

int
db_changed(int rc)
{
	return rc == DB_DONE ? sqlite3_changes(db) : -1;
}

void
db_done(enum stmt st)
{
	if (stmts[st] != NULL)
		sqlite3_reset(stmts[st]);
}

int
db_begin(void)
{
	return db_run(ST_BEGIN, "") == DB_DONE;
}

int
db_wal_truncate(int tries)
{
	for (int i = 0; i < tries; i++) {
		int rc = sqlite3_wal_checkpoint_v2(db, NULL,
		    SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

		if (rc == SQLITE_OK)
			return 1;
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) {
			log_msg("db: checkpoint: %s", sqlite3_errmsg(db));
			return 0;
		}
		if (i + 1 < tries)
			usleep(100000);
	}
	log_msg("db: the WAL is held by readers: it is truncated at a "
	    "later checkpoint");
	return 0;
}

int
db_commit(void)
{
	if (db_run(ST_COMMIT, "") == DB_DONE)
		return 1;
	db_rollback();
	return 0;
}

void
db_rollback(void)
{
	if (!sqlite3_get_autocommit(db))
		db_run(ST_ROLLBACK, "");
}

int
db_read_begin(void)
{
	return db_run(ST_BEGIN_READ, "") == DB_DONE;
}

void
db_read_end(void)
{
	/* A read's COMMIT fails only if SQLite already rolled it back. */
	if (!sqlite3_get_autocommit(db) && db_run(ST_COMMIT, "") != DB_DONE)
		db_rollback();
}

int64_t
db_last_id(void)
{
	return sqlite3_last_insert_rowid(db);
}

const char *
db_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t != NULL ? (const char *)t : "";
}

int64_t
db_find_id(enum stmt st, const char *key)
{
	sqlite3_stmt	*s = db_stmt(st);
	int64_t		 id = 0;
	int		 rc;

	if (s == NULL || !db_bind(s, "t", key))
		return -1;
	rc = db_step(st);
	if (rc == DB_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc != DB_DONE)
		id = -1;
	db_done(st);
	return id;
}
