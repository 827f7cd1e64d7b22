/* pmbctl.c: the operator's tool: every command in one table, with its
 * words, arguments, help and function, and the line that runs one. The
 * commands are in pmbctl_store.c, pmbctl_user.c, pmbctl_key.c,
 * pmbctl_mail.c, pmbctl_pay.c and pmbctl_privacy_*.c; they reuse the
 * modules of pmb.fcgi. */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "mime.h"
#include "pmbctl.h"
#include "search_rank.h"
#include "tz.h"
#include "util.h"

/* Every command: its words, its arguments, what it does, and what runs
 * it. */
struct command {
	const char	*words;		/* "init", "user add" */
	const char	*args;		/* "USERNAME", "[STATUS]", or "" */
	const char	*help;
	int		(*run)(char *argv[]);
	/* Run as root before pmbctl takes the store owner's ids, or NULL:
	 * what the owner could not do (make a backup folder under /). */
	int		(*prepare)(char *argv[]);
};

static const struct command commands[] = {
	{ "init", "", "create the database, apply migrations, and make\n"
	    "the secret key file (mode 0600) if it is missing;\n"
	    "safe to run again: an existing key is kept",
	    cmd_init },
	{ "migrate", "", "apply pending migrations (refuses a database\n"
	    "newer than this program); when there are any,\n"
	    "first a backup into backup_dir",
	    cmd_migrate, backup_migrate_prepare },
	{ "user add", "USERNAME",
	    "add a staff user; the password (12 to 1,024\n"
	    "characters) is read twice from the terminal\n"
	    "without echo, or as one line from stdin",
	    cmd_user_add },
	{ "user passwd", "USERNAME", "set a user's password, read as for\n"
	    "\"user add\"; ends their sessions",
	    cmd_user_passwd },
	{ "user list", "", "list staff users",
	    cmd_user_list },
	{ "user disable", "USERNAME",
	    "disable a user and end all their sessions",
	    cmd_user_disable },
	{ "user enable", "USERNAME", "enable a disabled user",
	    cmd_user_enable },
	{ "backup", "[FILE.db|DIR]",
	    "copy the database to FILE.db and the key\n"
	    "file to FILE.key (the originals' modes), safely\n"
	    "while the site runs (SQLite online backup); into\n"
	    "DIR (default backup_dir) as pmb-DATE-TIME.db/.key,\n"
	    "keeping the newest backup_keep pairs; makes the\n"
	    "folder (0750) if missing (write a new DIR as DIR/)",
	    cmd_backup, backup_prepare },
	{ "restore", "FROM.db", "put the backup FROM.db and FROM.key back as\n"
	    "the database and the key file; refuses while\n"
	    "pmb.fcgi, a daemon or any process has the store\n"
	    "open (it stops nothing)",
	    cmd_restore },
	{ "check", "[--strict]",
	    "check the settings, the key file, the templates,\n"
	    "consultant_photo and the database; exits 1 naming\n"
	    "each problem; warns of what is wrong for\n"
	    "production (http or loopback base_url,\n"
	    "mail_transport = dir, the sample's bank details,\n"
	    "example addresses, no staff user, owners and\n"
	    "modes, imap_url without imap_user or\n"
	    "reply_address), and with --strict exits 1 on a\n"
	    "warning too",
	    cmd_check },
	{ "mail send", "", "deliver the outbox messages that are due, once",
	    cmd_mail_send },
	{ "mail run", "", "keep delivering: every 5 s, at once on SIGUSR1;\n"
	    "SIGHUP re-reads the settings file, then\n"
	    "delivers; SIGTERM or SIGINT stop it after the\n"
	    "message in hand; with imap_url set, also\n"
	    "fetches every imap_poll_seconds (as mail fetch)",
	    cmd_mail_run },
	{ "mail fetch", "", "take the new messages of the IMAP mailbox\n"
	    "imap_url once: each is stored (replies into their\n"
	    "order, the rest into /admin/inbox), then marked\n"
	    "PmbStored or moved to imap_done_folder (\\Seen is\n"
	    "left alone); prints what it took; exits 1 on an\n"
	    "IMAP or database error",
	    cmd_mail_fetch },
	{ "mail test", "ADDRESS", "send a test email to ADDRESS now, with the\n"
	    "settings as they are, through the transport the\n"
	    "mail daemon uses; prints the SMTP server's answers",
	    cmd_mail_test },
	{ "mail receive", "", "store one email read from standard input (a mail\n"
	    "server's pipe): a client's reply goes into its\n"
	    "order, a bounce marks the email it names, anything\n"
	    "else waits in /admin/inbox; exits 0 once stored\n"
	    "(or dropped on purpose, counted), 75 (EX_TEMPFAIL)\n"
	    "when it cannot be stored now",
	    cmd_mail_receive },
	{ "mail list", "[STATUS]", "list outbox messages, newest first (STATUS:\n"
	    "queued, sending, sent, failed or bounced)",
	    cmd_mail_list },
	{ "mail retry", "ID", "make a queued or failed message due now",
	    cmd_mail_retry },
	{ "pay send", "", "carry out the payment jobs that are due, once\n"
	    "(refunds to the card, expiring the sessions of\n"
	    "cancelled orders)",
	    cmd_pay_send },
	{ "pay run", "", "keep carrying out payment jobs: every 5 s, at\n"
	    "once on SIGUSR1 or SIGHUP; SIGTERM or SIGINT stop\n"
	    "it after the job in hand",
	    cmd_pay_run },
	{ "pay reconcile", "[--days N]", "ask Stripe for the Checkout Sessions and\n"
	    "refunds of the last N days (default 3) and do what\n"
	    "a lost webhook left undone; prints each fix",
	    cmd_pay_reconcile },
	{ "search index", "", "make every pending change to orders searchable\n"
	    "now (the search page does this itself before it\n"
	    "searches; for cron, or after a bulk import)",
	    cmd_search_index },
	{ "search optimize", "", "index what is pending, then merge the search\n"
	    "index into one segment, a step at a time (search\n"
	    "is faster; conf/systemd/pmb-search-optimize.timer\n"
	    "runs it nightly)",
	    cmd_search_optimize },
	/* Privacy (issue 20). */
	{ "privacy export", "--email|--order ADDRESS|NUMBER [--out FILE]",
	    "everything held about a client (every order of\n"
	    "the address, any case; --order: of that order's\n"
	    "client) as one JSON document, files in base64, to\n"
	    "stdout or FILE (0600); erased orders are left out;\n"
	    "exit 1 when there is none",
	    cmd_privacy_export },
	{ "privacy erase", "--email|--order VALUE",
	    "erase the personal data of every order of an\n"
	    "address (--email ADDRESS, any case) or of one\n"
	    "order (--order PMB-000123 or 123), keeping the\n"
	    "books; if any is blocked (refund open, money\n"
	    "held in the guarantee, payment job pending)\n"
	    "erases none and names each, exit 1",
	    cmd_privacy_erase },
	{ "privacy sweep", "", "erase the orders closed more than retention_days\n"
	    "ago (none with money owed), 500 per transaction;\n"
	    "prints and audits how many\n"
	    "(conf/systemd/pmb-privacy-sweep.timer: nightly)",
	    cmd_privacy_sweep },
	{ "privacy columns", "", "list every column of the database as TSV: table,\n"
	    "column, personal (1: erased), why",
	    cmd_privacy_columns },
	{ "key list", "", "list the ids of the signing keys (the first signs)",
	    cmd_key_list },
	{ "key rotate", "", "add a new signing key on top; the old ones still\n"
	    "verify links until removed (restart pmb.fcgi)",
	    cmd_key_rotate },
	{ "key remove", "ID", "remove an old key: links it signed stop working",
	    cmd_key_remove },
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
		fprintf(f, "  %-26s", line);
		/* A long one ("privacy export ...") has its help below. */
		if (strlen(line) >= 26)
			fprintf(f, "\n  %-26s", "");
		for (const char *p = commands[i].help; *p != '\0'; p++) {
			fputc(*p, f);
			if (*p == '\n')
				fprintf(f, "  %-26s", "");
		}
		fputc('\n', f);
	}
	fputs("\nThe settings file comes from --config FILE, or $PMB_CONFIG, "
	    "or else\n" PMB_DEFAULT_CONFIG " if it exists.\n", f);
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

/* Prints "pmbctl: ", the message and a newline to stderr. */
static void
complain(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static void
complain(const char *fmt, va_list ap)
{
	fputs("pmbctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	complain(fmt, ap);
	va_end(ap);
	return 1;
}

int
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

int
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

/* Returns how many of argv the words of c take ("user add": 2), or 0
 * if argv does not start with them. */
static int
words_match(const struct command *c, int argc, char *argv[])
{
	const char	*w = c->words;
	int		 n = 0;

	while (*w != '\0') {
		size_t len = strcspn(w, " ");

		if (n == argc || strlen(argv[n]) != len ||
		    strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len + (w[len] == ' ');
	}
	return n;
}

/* Returns 1 if n arguments fit the args of c: one for each word, the
 * words in brackets ("[STATUS]", "[--days N]") optional. */
static int
args_fit(const struct command *c, int n)
{
	int	 least = 0, most = 0, optional = 0;

	for (const char *a = c->args; *a != '\0'; ) {
		size_t len = strcspn(a, " ");

		optional |= *a == '[';
		most++;
		least += !optional;
		if (len > 0 && a[len - 1] == ']')
			optional = 0;
		a += len + (a[len] == ' ');
	}
	return n >= least && n <= most;
}

/* The signals that a daemon command waits for; blocked while it works,
 * so a stop request waits until the item in hand is done. */
static sigset_t run_signals;

/* Returns 1 if SIGTERM or SIGINT is waiting, else 0. */
static int
stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p) != 0)
		return 0;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1;
}

int
run_rounds(const char *what, int poll, int (*round)(int (*)(void)),
    void (*reload)(void))
{
	struct timespec	zero = { 0, 0 };
	sigset_t	old;
	int		sig, hold;

	/* Held while it runs: pmbctl restore refuses to work under it. */
	hold = folder_lock(conf.database, LOCK_SH);
	sigemptyset(&run_signals);
	sigaddset(&run_signals, SIGTERM);
	sigaddset(&run_signals, SIGINT);
	sigaddset(&run_signals, SIGHUP);
	sigaddset(&run_signals, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &run_signals, &old) != 0) {
		if (hold >= 0)
			close(hold);
		return fail("sigprocmask: %s", strerror(errno));
	}
	for (;;) {
		struct timespec ts = { poll, 0 };

		round(stop_pending);
		if (stop_pending())
			break;
		sig = sigtimedwait(&run_signals, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP && reload != NULL)
			reload();
	}
	log_msg("%s: stopped", what);
	/* Take the stop signal, so that unblocking does not deliver it. */
	while (sigtimedwait(&run_signals, NULL, &zero) > 0)
		;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (hold >= 0)
		close(hold);
	return 0;
}

/* Runs the command that argv names with its arguments, as the store's
 * owner when run as root (pmbctl_owner.c; all_argc, all_argv: the whole
 * command line, for the refusal's advice). Returns its exit status, or
 * -1 if no command takes these words and arguments. */
static int
run_command(int argc, char *argv[], int all_argc, char *all_argv[])
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct command	*c = &commands[i];
		int			 n = words_match(c, argc, argv);

		if (n == 0 || !args_fit(c, argc - n))
			continue;
		if (!store_owner_find(all_argc, all_argv,
		    c->run == cmd_check) ||
		    (c->prepare != NULL && !c->prepare(argv + n)) ||
		    !store_owner_become())
			return 1;
		return c->run(argv + n);
	}
	return -1;
}

/* Says that the command line makes no sense; returns EXIT_USAGE. */
static int
bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
bad_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	complain(fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	return EXIT_USAGE;
}

int
main(int argc, char *argv[])
{
	const char	*config = NULL;
	char		 err[512];
	int		 i = 1, rc, early, all_argc = argc;
	char		**all_argv = argv;

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
	/* A mail server takes any other failure of its pipe for a message
	 * that can never be delivered, and bounces it. */
	early = argc >= 2 && !strcmp(argv[0], "mail") &&
	    !strcmp(argv[1], "receive") ? EX_TEMPFAIL : 1;
	if (sodium_init() < 0)
		return fail("sodium_init failed"), early;
	mime_start();
	if (!conf_load(config, err, sizeof(err)))
		return fail("%s", err), early;
	if (!tz_use(conf.time_zone, err, sizeof(err)))
		return fail("%s", err), early;
	/* Everything pmbctl makes is private: the database and its backups
	 * hold password hashes, mail files hold clients' questions. (SQLite
	 * gives a database's -wal and -shm files the database's mode.) */
	umask(077);
	db_set_hooks(search_rank_register, search_rank_reset);

	rc = run_command(argc, argv, all_argc, all_argv);
	mime_stop();
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
