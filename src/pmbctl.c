/* pmbctl.c: the operator's tool. It reuses the modules of pmb.fcgi. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

#define PW_MIN	12
#define PW_MAX	1024

static const char *usage_text =
"usage: pmbctl [--config FILE] COMMAND [ARGS]\n"
"\n"
"Commands:\n"
"  init                  create the database, apply migrations, and make\n"
"                        the secret key file (mode 0600) if missing\n"
"  migrate               apply pending migrations\n"
"  user add USERNAME     add a staff user; the password is read from the\n"
"                        terminal without echo, or as one line from stdin\n"
"  user passwd USERNAME  set a user's password (ends their sessions)\n"
"  user list             list staff users\n"
"  user disable USERNAME disable a user and end all their sessions\n"
"  user enable USERNAME  enable a disabled user\n"
"  backup FILE           copy the database to FILE, safely while the\n"
"                        site runs (SQLite online backup)\n"
"  check                 check the database, the settings and the key\n"
"\n"
"The settings file comes from --config FILE or $PMB_CONFIG.\n";

/* Prints an error and returns the exit status 1. */
static int
fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
fail(const char *fmt, ...)
{
	va_list ap;

	fputs("pmbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Opens the database ready for use; returns 1 or 0 after a message. */
static int
open_db(int flags)
{
	char err[512];

	if (!db_open(conf.database, flags, err, sizeof(err))) {
		fail("%s", err);
		return 0;
	}
	return 1;
}

/* Writes a new key file with one random key; returns 1 or 0. */
static int
make_key_file(const char *path)
{
	unsigned char	key[32];
	char		b64[sodium_base64_ENCODED_LEN(32,
			    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char		line[128];
	int		fd, n;

	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = snprintf(line, sizeof(line), "1:%s\n", b64);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b64, sizeof(b64));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		sodium_memzero(line, sizeof(line));
		return fail("%s: %s", path, strerror(errno)), 0;
	}
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		sodium_memzero(line, sizeof(line));
		close(fd);
		unlink(path);
		return fail("%s: cannot write the key", path), 0;
	}
	sodium_memzero(line, sizeof(line));
	close(fd);
	return 1;
}

/* pmbctl init */
static int
cmd_init(void)
{
	char	err[512];
	int	n;

	if (access(conf.key_file, F_OK) != 0) {
		if (!make_key_file(conf.key_file))
			return 1;
		printf("created the key file %s\n", conf.key_file);
	}
	if (!open_db(DB_CREATE))
		return 1;
	if ((n = db_migrate(err, sizeof(err))) < 0)
		return fail("%s", err);
	printf("database %s is at schema version %d (%d applied)\n",
	    conf.database, db_version(), n);
	db_close();
	return 0;
}

/* pmbctl migrate */
static int
cmd_migrate(void)
{
	char	err[512];
	int	n;

	if (!open_db(0))
		return 1;
	if ((n = db_migrate(err, sizeof(err))) < 0)
		return fail("%s", err);
	printf("%d migrations applied; schema version %d\n", n, db_version());
	db_close();
	return 0;
}

/* Reads a password: from the terminal without echo (twice), or one line
 * from stdin. Returns a string to free, or NULL after a message. */
static char *
read_password(void)
{
	char		*pw = sodium_malloc(PW_MAX + 2);
	char		*again = NULL;
	struct termios	 t, quiet;
	int		 tty = isatty(STDIN_FILENO);
	size_t		 n;

	if (pw == NULL)
		return fail("out of memory"), NULL;
	if (tty) {
		fputs("Password: ", stderr);
		tcgetattr(STDIN_FILENO, &t);
		quiet = t;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	if (fgets(pw, PW_MAX + 2, stdin) == NULL)
		pw[0] = '\0';
	if (tty) {
		fputs("\nAgain: ", stderr);
		if ((again = sodium_malloc(PW_MAX + 2)) == NULL ||
		    fgets(again, PW_MAX + 2, stdin) == NULL) {
			if (again)
				again[0] = '\0';
		}
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
		fputc('\n', stderr);
	}
	n = strcspn(pw, "\r\n");
	if (pw[n] == '\0' && n > PW_MAX) {
		sodium_free(pw);
		sodium_free(again);
		return fail("the password is longer than %d characters",
		    PW_MAX), NULL;
	}
	pw[n] = '\0';
	if (again != NULL) {
		again[strcspn(again, "\r\n")] = '\0';
		if (strcmp(pw, again) != 0) {
			sodium_free(pw);
			sodium_free(again);
			return fail("the two passwords differ"), NULL;
		}
		sodium_free(again);
	}
	if (!utf8_valid(pw, strlen(pw)) || utf8_len(pw) < PW_MIN ||
	    utf8_len(pw) > PW_MAX) {
		sodium_free(pw);
		return fail("a password must have %d to %d characters",
		    PW_MIN, PW_MAX), NULL;
	}
	return pw;
}

/* Hashes pw with Argon2id into out; returns 1 or 0 after a message. */
static int
hash_password(char out[crypto_pwhash_STRBYTES], const char *pw)
{
	if (crypto_pwhash_str(out, pw, strlen(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return fail("hashing the password failed (out of memory?)"), 0;
	return 1;
}

/* Returns 1 if name is an acceptable username. */
static int
valid_username(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' &&
		    name[i] <= 'Z') || (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '.' || name[i] == '_' || name[i] == '-' ||
		    name[i] == '@'))
			return 0;
	return 1;
}

/* Looks up a user's id; returns it, 0 if unknown, -1 on error. */
static int64_t
user_id(const char *name)
{
	sqlite3_stmt	*s = db_stmt(ST_USER_BY_NAME);
	int64_t		 id = 0;
	int		 rc;

	if (s == NULL || !db_bind(s, "t", name))
		return -1;
	rc = db_step(ST_USER_BY_NAME);
	if (rc == DB_ROW)
		id = sqlite3_column_int64(s, 0);
	else if (rc == DB_ERROR)
		id = -1;
	db_done(ST_USER_BY_NAME);
	return id;
}

/* Writes an audit row for an operator action (no user: the shell). */
static int
audit(const char *action, const char *detail)
{
	return db_run(ST_AUDIT_INSERT, "intntt", now_unix(), action, "",
	    detail) == DB_DONE;
}

/* pmbctl user add|passwd USERNAME */
static int
cmd_user_set(const char *name, int add)
{
	char	 hash[crypto_pwhash_STRBYTES];
	char	*pw;
	int64_t	 id;
	int	 rc;

	if (!valid_username(name))
		return fail("a username has 1 to 64 letters, digits or . _ - @");
	if (!open_db(0))
		return 1;
	{
		char err[256];

		if (!db_check_version(err, sizeof(err)))
			return fail("%s", err);
	}
	if ((id = user_id(name)) < 0)
		return fail("cannot read users");
	if (add && id > 0)
		return fail("user %s exists already", name);
	if (!add && id == 0)
		return fail("no user %s", name);
	if ((pw = read_password()) == NULL)
		return 1;
	rc = hash_password(hash, pw);
	sodium_free(pw);
	if (!rc)
		return 1;
	if (!db_begin())
		return fail("cannot start a transaction");
	if (add)
		rc = db_run(ST_USER_INSERT, "tti", name, hash, now_unix());
	else {
		rc = db_run(ST_USER_SET_HASH, "ti", hash, id);
		if (rc == DB_DONE)
			rc = db_run(ST_SESSION_DELETE_USER, "i", id);
	}
	if (rc == DB_DONE)
		rc = audit(add ? "user add" : "user passwd", name) ?
		    DB_DONE : DB_ERROR;
	if (rc != DB_DONE || !db_commit()) {
		db_rollback();
		return fail("cannot save the user");
	}
	printf("%s %s\n", add ? "added user" : "set the password of", name);
	db_close();
	return 0;
}

/* pmbctl user disable|enable USERNAME */
static int
cmd_user_disable(const char *name, int disable)
{
	int64_t	id;
	int	rc;

	if (!open_db(0))
		return 1;
	if ((id = user_id(name)) <= 0)
		return fail(id < 0 ? "cannot read users" : "no user %s", name);
	if (!db_begin())
		return fail("cannot start a transaction");
	rc = db_run(ST_USER_SET_DISABLED, "ii", (int64_t)disable, id);
	if (rc == DB_DONE && disable)
		rc = db_run(ST_SESSION_DELETE_USER, "i", id);
	if (rc == DB_DONE && !audit(disable ? "user disable" : "user enable",
	    name))
		rc = DB_ERROR;
	if (rc != DB_DONE || !db_commit()) {
		db_rollback();
		return fail("cannot change the user");
	}
	printf("%s %s\n", disable ? "disabled" : "enabled", name);
	db_close();
	return 0;
}

/* pmbctl user list */
static int
cmd_user_list(void)
{
	sqlite3_stmt *s;

	if (!open_db(DB_READONLY) || (s = db_stmt(ST_USER_LIST)) == NULL)
		return 1;
	while (db_step(ST_USER_LIST) == DB_ROW) {
		struct buf b;

		buf_init(&b);
		fmt_iso(&b, sqlite3_column_int64(s, 2));
		printf("%-24s %-8s created %s\n", db_text(s, 0),
		    sqlite3_column_int(s, 1) ? "disabled" : "active", b.data);
		buf_free(&b);
	}
	db_done(ST_USER_LIST);
	db_close();
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

/* pmbctl backup FILE */
static int
cmd_backup(const char *dest)
{
	sqlite3		*out = NULL;
	sqlite3_backup	*bk;
	struct buf	 tmp;
	int		 rc;

	if (!open_db(DB_READONLY))
		return 1;
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp-%ld", dest, (long)getpid());
	if (sqlite3_open(tmp.data, &out) != SQLITE_OK) {
		rc = fail("%s: %s", dest, sqlite3_errmsg(out));
		goto done;
	}
	if ((bk = sqlite3_backup_init(out, "main", db_handle(), "main")) ==
	    NULL) {
		rc = fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	/* Copies in steps, so the site's writers are only briefly held. */
	do {
		rc = sqlite3_backup_step(bk, 256);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		rc = fail("backup: %s", sqlite3_errstr(rc));
		goto done;
	}
	if (sqlite3_exec(out, "PRAGMA journal_mode = DELETE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		rc = fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	sqlite3_close(out);
	out = NULL;
	if (rename(tmp.data, dest) != 0) {
		rc = fail("%s: %s", dest, strerror(errno));
		goto done;
	}
	printf("backed up %s to %s\n", conf.database, dest);
	rc = 0;
done:
	if (out != NULL)
		sqlite3_close(out);
	if (rc != 0)
		unlink(tmp.data);
	buf_free(&tmp);
	db_close();
	return rc;
}

/* pmbctl check */
static int
cmd_check(void)
{
	struct stat	st;
	char		err[512];
	int		bad = 0;

	printf("settings: ok\n");
	if (!token_keys_load(conf.key_file, err, sizeof(err))) {
		printf("key file: %s\n", err);
		bad++;
	} else if (stat(conf.key_file, &st) == 0 && (st.st_mode & 077)) {
		printf("key file: %s is readable by others (chmod 600)\n",
		    conf.key_file);
		bad++;
	} else
		printf("key file: ok\n");
	if (!tmpl_load(conf.template_dir, err, sizeof(err))) {
		printf("templates: %s\n", err);
		bad++;
	} else
		printf("templates: ok\n");
	if (!open_db(DB_READONLY))
		return 1;
	if (!db_check_version(err, sizeof(err))) {
		printf("schema: %s\n", err);
		bad++;
	} else
		printf("schema: version %d, ok\n", db_version());
	if (!integrity_ok()) {
		printf("integrity: FAILED\n");
		bad++;
	} else
		printf("integrity: ok\n");
	db_close();
	if (bad)
		return fail("%d problems found", bad);
	return 0;
}

int
main(int argc, char *argv[])
{
	const char	*config = NULL;
	char		 err[512];
	int		 i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (i == argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	for (int k = i; k < argc; k++)
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
	if (sodium_init() < 0)
		return fail("sodium_init failed");
	if (!conf_load(config, err, sizeof(err)))
		return fail("%s", err);

	argc -= i;
	argv += i;
	if (!strcmp(argv[0], "init") && argc == 1)
		return cmd_init();
	if (!strcmp(argv[0], "migrate") && argc == 1)
		return cmd_migrate();
	if (!strcmp(argv[0], "check") && argc == 1)
		return cmd_check();
	if (!strcmp(argv[0], "backup") && argc == 2)
		return cmd_backup(argv[1]);
	if (!strcmp(argv[0], "user") && argc >= 2) {
		if (!strcmp(argv[1], "list") && argc == 2)
			return cmd_user_list();
		if (argc == 3 && !strcmp(argv[1], "add"))
			return cmd_user_set(argv[2], 1);
		if (argc == 3 && !strcmp(argv[1], "passwd"))
			return cmd_user_set(argv[2], 0);
		if (argc == 3 && !strcmp(argv[1], "disable"))
			return cmd_user_disable(argv[2], 1);
		if (argc == 3 && !strcmp(argv[1], "enable"))
			return cmd_user_disable(argv[2], 0);
	}
	fputs(usage_text, stderr);
	return 2;
}
