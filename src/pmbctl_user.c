/* pmbctl_user.c: pmbctl's staff users: add, passwd, list, disable,
 * enable; passwords read from the terminal without echo, or from stdin. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "audit.h"
#include "db.h"
#include "pmbctl.h"
#include "util.h"

#define PW_MIN		12	/* characters (code points) */
#define PW_MAX		1024	/* characters (code points) */
/* The most bytes a password of PW_MAX characters takes, its line end
 * and a NUL: UTF-8 is at most 4 bytes a character. */
#define PW_BUF		(4 * PW_MAX + 3)
#define USERNAME_MAX	64

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
	return db_find_id(ST_USER_BY_NAME, name);
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
user_set(const char *name, int add)
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
user_disable(const char *name, int disable)
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
int
cmd_user_list(char *argv[])
{
	sqlite3_stmt	*s;
	struct buf	 b;
	int		 rc;

	(void)argv;
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

int
cmd_user_add(char *argv[])
{
	return user_set(argv[0], 1);
}

int
cmd_user_passwd(char *argv[])
{
	return user_set(argv[0], 0);
}

int
cmd_user_disable(char *argv[])
{
	return user_disable(argv[0], 1);
}

int
cmd_user_enable(char *argv[])
{
	return user_disable(argv[0], 0);
}
