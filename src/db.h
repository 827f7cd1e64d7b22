/* db.h: the SQLite store: opening, migrations, and every SQL statement,
 * named in an enum and prepared once per process. */
#ifndef PMB_DB_H
#define PMB_DB_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>

#define X(name, sql) ST_##name,
enum stmt {
#include "db_stmts.h"
	ST__MAX
};
#undef X

/* Results of db_step and db_run. */
#define DB_ERROR	(-1)
#define DB_ROW		1
#define DB_DONE		0
#define DB_CONSTRAINT	2

#define DB_CREATE	0x01	/* create the file if missing */
#define DB_READONLY	0x02

/* Opens the database and sets the connection's pragmas (WAL,
 * synchronous=FULL, foreign keys, busy timeout). Returns 1, or 0 with a
 * message in err. Call after fork(), never before. */
int	 db_open(const char *path, int flags, char *err, size_t errsz);
/* Sets what runs on every connection: opened(db) after db_open has set
 * it up (its answer is ignored: a hook that fails must leave the store
 * usable), closing() first in db_close. Either may be NULL. The program
 * that opens the store sets them at start (pmb.fcgi and pmbctl: the
 * search ranking functions), so db.c calls up into no other module. */
void	 db_set_hooks(int (*opened)(sqlite3 *), void (*closing)(void));
/* Finalizes every statement and closes; safe to call twice. */
void	 db_close(void);
sqlite3	*db_handle(void);

/* The schema version that this program knows (the last migration). */
int	 db_known_version(void);
/* Reads PRAGMA user_version; -1 on error. */
int	 db_version(void);
/* Applies pending migrations, each in one transaction. Returns the number
 * applied, or -1 with a message in err (also for a newer database). */
int	 db_migrate(char *err, size_t errsz);
/* Returns 1 if the schema is exactly the known version, else 0 with a
 * message telling the operator what to do. */
int	 db_check_version(char *err, size_t errsz);

/* Returns the prepared statement st, reset and unbound; NULL on error. */
sqlite3_stmt *db_stmt(enum stmt st);
/* Binds values by a format: t text, i int64, n null, z text or null if
 * empty, b blob (pointer, int length). Returns 1, or 0 on error. */
int	 db_bind(sqlite3_stmt *, const char *fmt, ...);
/* Steps st: DB_ROW, DB_DONE, DB_CONSTRAINT, or DB_ERROR (logged with the
 * statement's name). */
int	 db_step(enum stmt st);
/* Prepares, binds, steps once and resets: for writes. Returns as db_step
 * (DB_DONE on success). */
int	 db_run(enum stmt st, const char *fmt, ...);
/* Takes db_run's result for a guarded UPDATE or DELETE (or an INSERT
 * … SELECT … WHERE): returns the number of rows it changed, 0 when its
 * guard held none, -1 when it failed (DB_CONSTRAINT included). */
int	 db_changed(int rc);
/* db_run for such a statement, returning as db_changed. */
#define db_update(...)	db_changed(db_run(__VA_ARGS__))
/* Resets st after reading its rows. */
void	 db_done(enum stmt st);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. Return 1 on success, 0 on error. */
int	 db_begin(void);
int	 db_commit(void);
void	 db_rollback(void);
/* Starts a read transaction (BEGIN DEFERRED: no lock until the first
 * read), for a page that reads with several statements and writes
 * nothing in between. Returns 1, or 0 on error. */
int	 db_read_begin(void);
/* Ends the read transaction, if one is open. */
void	 db_read_end(void);

/* Checkpoints the WAL with TRUNCATE, so that no old version of a page
 * (an erased client's bytes) stays in the -wal: tries times, 100 ms
 * apart, while readers or a writer hold it. Returns 1, or 0 if it could
 * not (logged; the bytes go at a later checkpoint). */
int	 db_wal_truncate(int tries);

int64_t	 db_last_id(void);
/* Returns the text of the column, "" when NULL. */
const char *db_text(sqlite3_stmt *, int col);
/* Runs the query st with its one parameter bound to the text key; returns
 * the first column of its first row (an id), 0 when it has no row, -1 on
 * error. */
int64_t	 db_find_id(enum stmt st, const char *key);

#endif
