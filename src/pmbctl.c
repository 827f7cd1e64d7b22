/* pmbctl.c: the operator's tool. It reuses the modules of pmb.fcgi. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "conf.h"
#include "db.h"
#include "pmbctl.h"
#include "search_index.h"
#include "search_rank.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

#define PW_MIN		12	/* characters (code points) */
#define PW_MAX		1024	/* characters (code points) */
/* The most bytes a password of PW_MAX characters takes, its line end
 * and a NUL: UTF-8 is at most 4 bytes a character. */
#define PW_BUF		(4 * PW_MAX + 3)
#define USERNAME_MAX	64
#define KEY_BYTES	32
/* Exit status for a command line that makes no sense. */
#define EXIT_USAGE	2

/* Every command: its words, its arguments, and what it does. */
struct command {
	const char	*words;		/* "init", "user add" */
	const char	*args;		/* "USERNAME", or "" */
	const char	*help;
};

static const struct command commands[] = {
	{ "init", "", "create the database, apply migrations, and make\n"
	    "the secret key file (mode 0600) if it is missing;\n"
	    "safe to run again: an existing key is kept" },
	{ "migrate", "", "apply pending migrations (refuses a database\n"
	    "newer than this program)" },
	{ "user add", "USERNAME",
	    "add a staff user; the password (12 to 1,024\n"
	    "characters) is read twice from the terminal\n"
	    "without echo, or as one line from stdin" },
	{ "user passwd", "USERNAME", "set a user's password, read as for\n"
	    "\"user add\"; ends their sessions" },
	{ "user list", "", "list staff users" },
	{ "user disable", "USERNAME",
	    "disable a user and end all their sessions" },
	{ "user enable", "USERNAME", "enable a disabled user" },
	{ "backup", "FILE", "copy the database to FILE (mode 0600), safely\n"
	    "while the site runs (SQLite online backup)" },
	{ "check", "", "check the settings, the key file, the templates\n"
	    "and the database; exits 1 naming each problem" },
	{ "mail send", "", "deliver the outbox messages that are due, once" },
	{ "mail run", "", "keep delivering: every 5 s, at once on SIGUSR1\n"
	    "or SIGHUP; SIGTERM or SIGINT stop it after the\n"
	    "message in hand" },
	{ "mail list", "[STATUS]", "list outbox messages, newest first (STATUS:\n"
	    "queued, sending, sent or failed)" },
	{ "mail retry", "ID", "make a queued or failed message due now" },
	{ "search index", "", "make every pending change to orders searchable\n"
	    "now (the search page does this itself before it\n"
	    "searches; for cron, or after a bulk import)" },
	{ "search optimize", "", "index what is pending, then merge the search\n"
	    "index into one segment, a step at a time (search\n"
	    "is faster; conf/systemd/pmb-search-optimize.timer\n"
	    "runs it nightly)" },
	{ "key list", "", "list the ids of the signing keys (the first signs)" },
	{ "key rotate", "", "add a new signing key on top; the old ones still\n"
	    "verify links until removed (restart pmb.fcgi)" },
	{ "key remove", "ID", "remove an old key: links it signed stop working" },
};

/* Prints the usage of every command to f. */
static void
usage(FILE *f)
{
	fputs("usage: pmbctl [--config FILE] COMMAND [ARGS]\n"
	    "       pmbctl [COMMAND] --help\n\nCommands:\n", f);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		char line[64];

		snprintf(line, sizeof(line), "%s %s", commands[i].words,
		    commands[i].args);
		fprintf(f, "  %-22s", line);
		for (const char *p = commands[i].help; *p != '\0'; p++) {
			fputc(*p, f);
			if (*p == '\n')
				fprintf(f, "  %-22s", "");
		}
		fputc('\n', f);
	}
	fputs("\nThe settings file comes from --config FILE or $PMB_CONFIG.\n",
	    f);
}

/* Prints the help of the commands whose words start with the given
 * words (argv up to "--help"); returns 1, or 0 if none match. */
static int
command_help(int argc, char *argv[])
{
	char	words[64] = "";
	size_t	n;
	int	found = 0;

	for (int i = 0; i < argc && strcmp(argv[i], "--help") &&
	    strcmp(argv[i], "-h"); i++) {
		if (strlen(words) + strlen(argv[i]) + 2 > sizeof(words))
			return 0;
		if (*words != '\0')
			strcat(words, " ");
		strcat(words, argv[i]);
	}
	n = strlen(words);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const char *w = commands[i].words;

		/* "user" matches "user add"; "backup FILE" matches "backup". */
		if (!(strncmp(w, words, n) == 0 && (w[n] == '\0' ||
		    w[n] == ' ')) && !(strncmp(words, w, strlen(w)) == 0 &&
		    words[strlen(w)] == ' '))
			continue;
		printf("%susage: pmbctl [--config FILE] %s%s%s\n\n%s\n",
		    found ? "\n" : "", w, *commands[i].args ? " " : "",
		    commands[i].args, commands[i].help);
		found = 1;
	}
	return found;
}

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

	if (!(flags & DB_CREATE) && access(conf.database, F_OK) != 0) {
		fail("%s: no database (run \"pmbctl init\")", conf.database);
		return 0;
	}
	if (!db_open(conf.database, flags, err, sizeof(err))) {
		fail("%s", err);
		return 0;
	}
	return 1;
}

/* Opens the database and checks that its schema is the one this program
 * knows; returns 1, or 0 after a message (and closed). */
static int
open_db_current(int flags)
{
	char err[512];

	if (!open_db(flags))
		return 0;
	if (!db_check_version(err, sizeof(err))) {
		db_close();
		fail("%s", err);
		return 0;
	}
	return 1;
}

/* Writes a new key file with one random key; returns 1 or 0. */
static int
make_key_file(const char *path)
{
	unsigned char	key[KEY_BYTES];
	char		b64[sodium_base64_ENCODED_LEN(KEY_BYTES,
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
	if (close(fd) != 0) {
		unlink(path);
		return fail("%s: cannot write the key", path), 0;
	}
	return 1;
}

/* Reads the key file's lines into ids[] (at most 8); returns how many,
 * or -1 after a message. *text gets the file (to free). */
static int
key_ids(char **text, long ids[8])
{
	char	err[512];
	int	n = 0;

	if (!token_keys_load(conf.key_file, err, sizeof(err)))
		return fail("%s", err), -1;
	token_keys_clear();
	if ((*text = read_file(conf.key_file, NULL)) == NULL)
		return fail("%s: cannot read", conf.key_file), -1;
	for (char *p = *text; *p != '\0' && n < 8; ) {
		if (*p != '#' && *p != '\n')
			ids[n++] = strtol(p, NULL, 10);
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	return n;
}

/* Replaces the key file with text, atomically and privately. Returns 1,
 * or 0 after a message. */
static int
key_file_write(const char *text)
{
	struct buf	tmp;
	int		fd, ok;
	size_t		n = strlen(text);

	buf_init(&tmp);
	buf_printf(&tmp, "%s.new", conf.key_file);
	unlink(tmp.data);
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok = fd >= 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = 0;
	if (ok && rename(tmp.data, conf.key_file) != 0)
		ok = 0;
	if (!ok) {
		unlink(tmp.data);
		fail("%s: cannot write the key file", conf.key_file);
	}
	buf_free(&tmp);
	return ok;
}

/* pmbctl key list */
static int
cmd_key_list(void)
{
	char	*text = NULL;
	long	 ids[8];
	int	 n = key_ids(&text, ids);

	for (int i = 0; i < n; i++)
		printf("%ld%s\n", ids[i], i == 0 ? " (signs)" : " (verifies)");
	if (text != NULL) {
		sodium_memzero(text, strlen(text));
		free(text);
	}
	return n < 0;
}

/* pmbctl key rotate */
static int
cmd_key_rotate(void)
{
	unsigned char	 key[KEY_BYTES];
	char		 b64[sodium_base64_ENCODED_LEN(KEY_BYTES,
			    sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	char		*text = NULL;
	struct buf	 out;
	long		 ids[8], next = 0;
	int		 n = key_ids(&text, ids), ok;

	if (n < 0)
		return 1;
	for (int i = 0; i < n; i++)
		if (ids[i] > next)
			next = ids[i];
	if (n >= 8 || ++next > 255) {
		sodium_memzero(text, strlen(text));
		free(text);
		return fail("too many keys: remove an old one first");
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_init(&out);
	buf_printf(&out, "%ld:%s\n%s", next, b64, text);
	ok = key_file_write(out.data);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(out.data, out.len);
	sodium_memzero(text, strlen(text));
	buf_free(&out);
	free(text);
	if (!ok)
		return 1;
	printf("key %ld now signs; restart pmb.fcgi to use it\n", next);
	return 0;
}

/* pmbctl key remove ID */
static int
cmd_key_remove(const char *idtext)
{
	char		*text = NULL;
	struct buf	 out;
	long		 ids[8];
	int64_t		 id;
	int		 n = key_ids(&text, ids), found = 0, ok;

	if (n < 0)
		return 1;
	if (!parse_int64(idtext, 1, 255, &id)) {
		free(text);
		return fail("a key id is a number from 1 to 255");
	}
	if (ids[0] == id) {
		sodium_memzero(text, strlen(text));
		free(text);
		return fail("key %lld signs: rotate first", (long long)id);
	}
	buf_init(&out);
	for (char *p = text; *p != '\0'; ) {
		size_t len = strcspn(p, "\n") + (p[strcspn(p, "\n")] == '\n');

		if (*p != '#' && strtol(p, NULL, 10) == id)
			found = 1;
		else
			buf_append(&out, p, len);
		p += len;
	}
	ok = found && key_file_write(out.data != NULL ? out.data : "");
	sodium_memzero(text, strlen(text));
	if (out.data != NULL)
		sodium_memzero(out.data, out.len);
	buf_free(&out);
	free(text);
	if (!found)
		return fail("no key %lld", (long long)id);
	if (!ok)
		return 1;
	printf("removed key %lld; restart pmb.fcgi\n", (long long)id);
	return 0;
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
static int
cmd_migrate(void)
{
	char	err[512];
	int	n;

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
static int
cmd_search_index(void)
{
	int64_t n;

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
static int
cmd_search_optimize(void)
{
	int64_t n;

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

/* The terminal's settings while echo is off, to restore on a signal. */
static struct termios	tty_saved;
static volatile sig_atomic_t tty_quiet;

/* Restores the terminal's echo and dies of the signal that came. */
static void
tty_restore_and_die(int sig)
{
	if (tty_quiet)
		tcsetattr(STDIN_FILENO, TCSANOW, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Turns the terminal's echo off (on = 0) or back on (on = 1); returns 1,
 * or 0 on error. */
static int
tty_echo(int on)
{
	static const int	 sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGTSTP };
	struct termios		 quiet;

	if (on) {
		if (!tty_quiet)
			return 1;
		tcsetattr(STDIN_FILENO, TCSANOW, &tty_saved);
		tty_quiet = 0;
		for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
			signal(sigs[i], SIG_DFL);
		return 1;
	}
	if (tcgetattr(STDIN_FILENO, &tty_saved) != 0)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
		signal(sigs[i], tty_restore_and_die);
	quiet = tty_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;
	tty_quiet = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
		tty_echo(1);
		return 0;
	}
	return 1;
}

/* Reads one line of at most PW_BUF - 2 bytes into buf (which holds
 * PW_BUF), without its line end. Returns its length, or -1 at the end of
 * input with nothing read, -2 for a longer line (the rest is skipped). */
static long
read_line(char *buf)
{
	size_t	n;

	if (fgets(buf, PW_BUF, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == PW_BUF - 1) {
		int c;

		while ((c = getchar()) != EOF && c != '\n')
			;
		return -2;
	}
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (long)n;
}

/* Checks a password typed: returns NULL if it will do, else why not. */
static const char *
password_problem(const char *pw, long n)
{
	if (n == -1)
		return "no password given";
	if (n == -2)
		return "the password is longer than 1,024 characters";
	if (!utf8_valid(pw, (size_t)n) || has_ctl(pw))
		return "the password must be UTF-8 text without control "
		    "characters";
	if (utf8_len(pw) < PW_MIN)
		return "the password is shorter than 12 characters";
	if (utf8_len(pw) > PW_MAX)
		return "the password is longer than 1,024 characters";
	return NULL;
}

/* Reads a password: from the terminal without echo (twice), or one line
 * from stdin. Returns a string to sodium_free, or NULL after a message.
 * The password is never printed. */
static char *
read_password(void)
{
	char		*pw, *again = NULL;
	const char	*why;
	int		 tty = isatty(STDIN_FILENO);
	long		 n, m = 0;

	/* No stdio buffer: the password stays only in guarded memory. */
	setvbuf(stdin, NULL, _IONBF, 0);
	if ((pw = sodium_malloc(PW_BUF)) == NULL ||
	    (tty && (again = sodium_malloc(PW_BUF)) == NULL)) {
		sodium_free(pw);
		return fail("out of memory"), NULL;
	}
	if (tty) {
		if (!tty_echo(0)) {
			sodium_free(pw);
			sodium_free(again);
			return fail("cannot turn off the terminal's echo"),
			    NULL;
		}
		fputs("Password: ", stderr);
		n = read_line(pw);
		if (n >= 0) {
			fputs("Again: ", stderr);
			m = read_line(again);
		}
		tty_echo(1);
	} else
		n = read_line(pw);
	why = password_problem(pw, n);
	if (why == NULL && tty && (m != n || sodium_memcmp(pw, again,
	    (size_t)n) != 0))
		why = "the two passwords differ";
	sodium_free(again);
	if (why != NULL) {
		sodium_free(pw);
		return fail("%s", why), NULL;
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

/* Returns 1 if name is an acceptable username: 1 to 64 letters, digits
 * or . _ - @, starting with a letter or digit. */
static int
valid_username(const char *name)
{
	size_t n = strlen(name);

	if (n < 1 || n > USERNAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-' &&
		    c != '@')))
			return 0;
	}
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

/* Refuses a bad username; returns 1 if it is fine, else 0 after a
 * message. */
static int
check_username(const char *name)
{
	if (valid_username(name))
		return 1;
	fail("bad username: a username has 1 to %d letters, digits or "
	    ". _ - @, and starts with a letter or digit", USERNAME_MAX);
	return 0;
}

/* pmbctl user add|passwd USERNAME */
static int
cmd_user_set(const char *name, int add)
{
	char	 hash[crypto_pwhash_STRBYTES];
	char	*pw;
	int64_t	 id;
	int	 rc;

	if (!check_username(name) || !open_db_current(0))
		return 1;
	if ((id = user_id(name)) < 0)
		rc = fail("cannot read users");
	else if (add && id > 0)
		rc = fail("user %s exists already", name);
	else if (!add && id == 0)
		rc = fail("no user %s", name);
	else
		rc = 0;
	if (rc != 0 || (pw = read_password()) == NULL) {
		db_close();
		return 1;
	}
	rc = hash_password(hash, pw);
	sodium_free(pw);
	if (!rc) {
		db_close();
		return 1;
	}
	if (!db_begin()) {
		db_close();
		return fail("cannot start a transaction");
	}
	if (add)
		rc = db_run(ST_USER_INSERT, "tti", name, hash, now_unix());
	else {
		rc = db_run(ST_USER_SET_HASH, "ti", hash, id);
		if (rc == DB_DONE)
			rc = db_run(ST_SESSION_DELETE_USER, "i", id);
	}
	if (rc == DB_DONE && !audit_log(NULL, 0, add ? "user add" :
	    "user passwd", 0, name))
		rc = DB_ERROR;
	if (rc != DB_DONE || !db_commit()) {
		db_rollback();
		db_close();
		if (add && rc == DB_CONSTRAINT)
			return fail("user %s exists already", name);
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

	if (!check_username(name) || !open_db_current(0))
		return 1;
	if ((id = user_id(name)) <= 0) {
		db_close();
		if (id < 0)
			return fail("cannot read users");
		return fail("no user %s", name);
	}
	if (!db_begin()) {
		db_close();
		return fail("cannot start a transaction");
	}
	rc = db_run(ST_USER_SET_DISABLED, "ii", (int64_t)disable, id);
	if (rc == DB_DONE && disable)
		rc = db_run(ST_SESSION_DELETE_USER, "i", id);
	if (rc == DB_DONE && !audit_log(NULL, 0, disable ? "user disable" :
	    "user enable", 0, name))
		rc = DB_ERROR;
	if (rc != DB_DONE || !db_commit()) {
		db_rollback();
		db_close();
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
	sqlite3_stmt	*s;
	struct buf	 b;
	int		 rc;

	if (!open_db_current(DB_READONLY))
		return 1;
	if ((s = db_stmt(ST_USER_LIST)) == NULL) {
		db_close();
		return fail("cannot read users");
	}
	buf_init(&b);
	while ((rc = db_step(ST_USER_LIST)) == DB_ROW) {
		buf_reset(&b);
		fmt_iso(&b, sqlite3_column_int64(s, 2));
		buf_puts(&b, " last login ");
		if (sqlite3_column_type(s, 3) == SQLITE_NULL)
			buf_puts(&b, "never");
		else
			fmt_iso(&b, sqlite3_column_int64(s, 3));
		printf("%-24s %-8s created %s\n", db_text(s, 0),
		    sqlite3_column_int(s, 1) ? "disabled" : "active", b.data);
	}
	buf_free(&b);
	db_done(ST_USER_LIST);
	db_close();
	if (rc != DB_DONE)
		return fail("cannot read users");
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
static int
cmd_backup(const char *dest)
{
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
static int
cmd_check(void)
{
	struct stat	st;
	struct buf	bad;
	char		err[512];
	int		n = 0;

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

/* Says that the command line makes no sense; returns EXIT_USAGE. */
static int
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("pmbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	usage(stderr);
	return EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
	const char	*config = NULL;
	char		 err[512];
	int		 i = 1, rc;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--config"))
			return bad_usage("%s needs a file name", argv[i]);
		else
			return bad_usage("unknown option \"%s\"", argv[i]);
	}
	if (i == argc)
		return bad_usage("a command is needed");
	for (int k = i; k < argc; k++)
		if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
			if (!command_help(argc - i, argv + i))
				return bad_usage("unknown command \"%s\"",
				    argv[i]);
			return 0;
		}
	argc -= i;
	argv += i;
	if (sodium_init() < 0)
		return fail("sodium_init failed");
	if (!conf_load(config, err, sizeof(err)))
		return fail("%s", err);
	/* Everything pmbctl makes is private: the database and its backups
	 * hold password hashes, mail files hold clients' questions. (SQLite
	 * gives a database's -wal and -shm files the database's mode.) */
	umask(077);
	db_set_hooks(search_rank_register, search_rank_reset);

	rc = -1;
	if (!strcmp(argv[0], "init") && argc == 1)
		rc = cmd_init();
	else if (!strcmp(argv[0], "migrate") && argc == 1)
		rc = cmd_migrate();
	else if (!strcmp(argv[0], "check") && argc == 1)
		rc = cmd_check();
	else if (!strcmp(argv[0], "backup") && argc == 2)
		rc = cmd_backup(argv[1]);
	else if (!strcmp(argv[0], "key") && argc == 2 &&
	    !strcmp(argv[1], "list"))
		rc = cmd_key_list();
	else if (!strcmp(argv[0], "key") && argc == 2 &&
	    !strcmp(argv[1], "rotate"))
		rc = cmd_key_rotate();
	else if (!strcmp(argv[0], "key") && argc == 3 &&
	    !strcmp(argv[1], "remove"))
		rc = cmd_key_remove(argv[2]);
	else if (!strcmp(argv[0], "search") && argc == 2 &&
	    !strcmp(argv[1], "index"))
		rc = cmd_search_index();
	else if (!strcmp(argv[0], "search") && argc == 2 &&
	    !strcmp(argv[1], "optimize"))
		rc = cmd_search_optimize();
	else if (!strcmp(argv[0], "mail") && argc >= 2)
		rc = mail_command(argc - 1, argv + 1);
	else if (!strcmp(argv[0], "user") && argc == 2 &&
	    !strcmp(argv[1], "list"))
		rc = cmd_user_list();
	else if (!strcmp(argv[0], "user") && argc == 3) {
		if (!strcmp(argv[1], "add"))
			rc = cmd_user_set(argv[2], 1);
		else if (!strcmp(argv[1], "passwd"))
			rc = cmd_user_set(argv[2], 0);
		else if (!strcmp(argv[1], "disable"))
			rc = cmd_user_disable(argv[2], 1);
		else if (!strcmp(argv[1], "enable"))
			rc = cmd_user_disable(argv[2], 0);
	}
	conf_free();
	if (rc >= 0)
		return rc;
	for (size_t k = 0; k < ARRAY_LEN(commands); k++) {
		size_t n = strlen(argv[0]);

		if (!strncmp(commands[k].words, argv[0], n) &&
		    (commands[k].words[n] == '\0' ||
		    commands[k].words[n] == ' ')) {
			fprintf(stderr, "pmbctl: wrong arguments for \"%s\"; "
			    "see \"pmbctl %s --help\"\n", argv[0], argv[0]);
			return EXIT_USAGE;
		}
	}
	return bad_usage("unknown command \"%s\"", argv[0]);
}
