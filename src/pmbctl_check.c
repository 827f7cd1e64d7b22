/* pmbctl_check.c: pmbctl check: the problems that stop the site (the
 * settings, the key file, the templates, consultant_photo, the
 * database), then what is wrong for production (warnings; with --strict
 * they fail the check): a base_url on http or on this machine, mail that
 * never leaves it, the sample's payment text, example addresses, no
 * staff user, the store's owners and modes. */
#include <sys/stat.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "db.h"
#include "files.h"
#include "offer.h"
#include "pmbctl.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"

/* Words of the sample's placeholder bank details (conf/pmb.conf). */
static const char *const placeholder_words[] = {
	"sort code 00-00-00", "account 00000000",
};

/* Domains that are no one's (RFC 2606, RFC 6761): a domain equal to one
 * of these or under one of them is an example. */
static const char *const example_domains[] = {
	"example.com", "example.org", "example.net", "example", "test",
	"invalid", "localhost",
};

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

/* Returns the number of enabled staff users, or -1 on error. */
static int64_t
staff_users(void)
{
	sqlite3_stmt	*s = db_stmt(ST_USER_COUNT);
	int64_t		 n = -1;

	if (s != NULL && db_step(ST_USER_COUNT) == DB_ROW)
		n = sqlite3_column_int64(s, 0);
	db_done(ST_USER_COUNT);
	return n;
}

/* Adds what to the list in b. */
static void
problem(struct buf *b, const char *what)
{
	buf_puts(b, b->len > 0 ? ", " : "");
	buf_puts(b, what);
}

/* Prints "warning: " and the message, and counts it in *n. */
static void
warn(int *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
warn(int *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("warning: ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	(*n)++;
}

/* Prints a file whose bytes no longer match its SHA-256. */
static void
file_differs(int64_t id, const char *name)
{
	printf("files: file %lld (\"%s\") does not match its SHA-256\n",
	    (long long)id, name);
}

/* Reads every stored file back against its SHA-256; adds to bad. */
static void
check_files(struct buf *bad)
{
	int64_t n, differ = file_verify_all(&n, file_differs);

	if (differ < 0) {
		printf("files: cannot be read\n");
		problem(bad, "files");
	} else if (differ > 0) {
		printf("files: %lld of %lld damaged\n", (long long)differ,
		    (long long)n);
		problem(bad, "files");
	} else
		printf("files: %lld, every one matches its SHA-256\n",
		    (long long)n);
}

/* The database's checks: schema, integrity; *staff gets the number of
 * staff users (-1 if unknown). Adds to bad. */
static void
check_database(struct buf *bad, int64_t *staff)
{
	char err[512];

	*staff = -1;
	if (access(conf.database, F_OK) != 0) {
		printf("database: %s is missing (run \"pmbctl init\")\n",
		    conf.database);
		problem(bad, "database");
		return;
	}
	if (!db_open(conf.database, DB_READONLY, err, sizeof(err))) {
		printf("database: %s\n", err);
		problem(bad, "database");
		return;
	}
	if (!db_check_version(err, sizeof(err))) {
		printf("schema: %s\n", err);
		problem(bad, "schema version");
	} else {
		printf("schema: version %d, ok\n", db_version());
		*staff = staff_users();
	}
	if (!integrity_ok()) {
		printf("integrity: FAILED\n");
		problem(bad, "database integrity");
	} else
		printf("integrity: ok\n");
	check_files(bad);
	db_close();
}

/* The checks that stop the site; adds each problem to bad. */
static void
check_basics(struct buf *bad, int64_t *staff)
{
	struct stat	st;
	char		err[512];

	if (conf_file() != NULL)
		printf("settings: ok (%s)\n", conf_file());
	else
		printf("settings: ok (no settings file: defaults)\n");
	if (!token_keys_load(conf.key_file, err, sizeof(err))) {
		printf("key file: %s\n", err);
		problem(bad, "key file");
	} else if (stat(conf.key_file, &st) != 0 || (st.st_mode & 077)) {
		printf("key file: %s is readable by others (chmod 600)\n",
		    conf.key_file);
		problem(bad, "key file mode");
	} else
		printf("key file: ok\n");
	token_keys_clear();
	if (!tmpl_load(conf.template_dir, err, sizeof(err))) {
		printf("templates: %s\n", err);
		problem(bad, "templates");
	} else
		printf("templates: ok\n");
	tmpl_free();
	if (!offer_load(err, sizeof(err))) {
		printf("offer: %s\n", err);
		problem(bad, "consultant_photo");
	} else
		printf("offer: ok\n");
	offer_free();
	check_database(bad, staff);
}

/* Returns 1 if the host of base_url is this machine: localhost (or a
 * name under it), 127.0.0.0/8, [::1] or 0.0.0.0. */
static int
base_url_is_loopback(void)
{
	const char	*h = strstr(conf.base_url, "://") + 3;
	size_t		 n;
	char		 host[256];

	n = *h == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");

	snprintf(host, sizeof(host), "%.*s", (int)n, h);
	for (char *p = host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	n = strlen(host);
	return strcmp(host, "localhost") == 0 || (n > 10 &&
	    strcmp(host + n - 10, ".localhost") == 0) ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "0.0.0.0") == 0;
}

/* Returns 1 if the address in v ("a@b" or "Name <a@b>") is at an
 * example domain, or has none. */
static int
example_address(const char *v)
{
	const char	*at = strrchr(v, '@');
	char		 dom[256];
	size_t		 n;

	if (at == NULL)
		return 1;
	snprintf(dom, sizeof(dom), "%.*s", (int)strcspn(at + 1, ">"), at + 1);
	for (char *p = dom; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	n = strlen(dom);
	for (size_t i = 0; i < ARRAY_LEN(example_domains); i++) {
		size_t k = strlen(example_domains[i]);

		if (strcmp(dom, example_domains[i]) == 0 || (n > k &&
		    dom[n - k - 1] == '.' &&
		    strcmp(dom + n - k, example_domains[i]) == 0))
			return 1;
	}
	return 0;
}

/* Warns if the file at path (what) is not owned by the owner of the
 * database's folder, or if mode bits of bad_bits are set. */
static void
check_owner_mode(int *n, const char *what, const char *path,
    mode_t bad_bits)
{
	struct stat	 f, d;
	char		*dir = path_folder(conf.database);

	if (stat(path, &f) == 0 && stat(dir, &d) == 0) {
		if (f.st_uid != d.st_uid)
			warn(n, "%s %s belongs to uid %ld, not to the owner "
			    "of %s (uid %ld), who runs the site: chown it",
			    what, path, (long)f.st_uid, dir, (long)d.st_uid);
		if (f.st_mode & bad_bits)
			warn(n, "%s %s is mode %04o: others can read it "
			    "(chmod %o)", what, path,
			    (unsigned)(f.st_mode & 07777),
			    (unsigned)(f.st_mode & 0777 & ~bad_bits));
	}
	free(dir);
}

/* Prints a warning for each setting or file that is wrong for a site
 * in production; returns how many. */
static int
check_production(int64_t staff)
{
	int n = 0;

	if (strncmp(conf.base_url, "https://", 8) != 0)
		warn(&n, "base_url %s is not https:// (no Secure cookies, "
		    "no HSTS)", conf.base_url);
	if (base_url_is_loopback())
		warn(&n, "base_url %s is this machine: links in emails "
		    "reach no client", conf.base_url);
	if (strcmp(conf.mail_transport, "dir") == 0)
		warn(&n, "mail_transport = dir: mail is written to %s and "
		    "never leaves this server (use smtp or sendmail)",
		    conf.mail_dir);
	for (size_t i = 0; i < ARRAY_LEN(placeholder_words); i++)
		if (strstr(conf.payment_instructions, placeholder_words[i])) {
			warn(&n, "payment_instructions still holds the "
			    "sample's placeholder bank details (\"%s\")",
			    placeholder_words[i]);
			break;
		}
	if (example_address(conf.admin_email))
		warn(&n, "admin_email %s is not set to a real address (an "
		    "example domain)", conf.admin_email);
	if (example_address(conf.mail_from))
		warn(&n, "mail_from %s is not set to a real address (an "
		    "example domain)", conf.mail_from);
	if (staff == 0)
		warn(&n, "no staff user can sign in (pmbctl user add NAME)");
	if (*conf.imap_url != '\0' && *conf.imap_user == '\0')
		warn(&n, "imap_url is set but imap_user is empty: mail fetch "
		    "cannot log in");
	if (*conf.imap_url != '\0' && *conf.reply_address == '\0')
		warn(&n, "imap_url is set but reply_address is empty: "
		    "clients' replies go to admin_email, not to the mailbox "
		    "pmb fetches");
	check_owner_mode(&n, "key file", conf.key_file, 077);
	check_owner_mode(&n, "database", conf.database, 007);
	return n;
}

/* pmbctl check [--strict] */
int
cmd_check(char *argv[])
{
	struct buf	bad;
	int64_t		staff;
	int		n, strict = 0, rc = 0;

	if (argv[0] != NULL && !(strict = strcmp(argv[0], "--strict") == 0))
		return fail("check takes --strict or nothing");
	buf_init(&bad);
	check_basics(&bad, &staff);
	n = check_production(staff);
	fflush(stdout);
	if (bad.len > 0)
		rc = fail("problems found: %s", bad.data);
	else if (n > 0 && strict)
		rc = fail("%d warning%s for production (--strict)", n,
		    n == 1 ? "" : "s");
	else if (n > 0)
		printf("%d warning%s for production (--strict fails on "
		    "them)\n", n, n == 1 ? "" : "s");
	buf_free(&bad);
	return rc;
}
