/* conf.c: reads "key = value" settings with '#' comments.
 * Every setting is declared once in the table below, with its type,
 * default and limits; conf/pmb.conf documents each one. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "currency.h"
#include "email_addr.h"
#include "filekind.h"
#include "tz.h"
#include "util.h"

#ifndef PMB_TEMPLATE_DIR
#define PMB_TEMPLATE_DIR "www/templates"
#endif

struct conf conf;

enum ctype { C_STR, C_INT, C_BOOL, C_MONEY, C_URL, C_CURRENCY,
    C_ENUM_TRANSPORT, C_ENUM_HSTS, C_EMAIL, C_TIME_ZONE, C_HOUR_OR_OFF,
    C_STATIC_IMAGE, C_IMAP_URL, C_KINDS };

struct setting {
	const char	*name;
	enum ctype	 type;
	size_t		 off;
	const char	*def;
	int64_t		 min, max;
};

/* The longest imap_url. */
#define IMAP_URL_MAX	512

#define S(n, t, d, lo, hi) { #n, t, offsetof(struct conf, n), d, lo, hi }

static const struct setting settings[] = {
	S(database, C_STR, "/var/lib/pmb/pmb.db", 1, 4096),
	S(key_file, C_STR, "/var/lib/pmb/pmb.key", 1, 4096),
	S(backup_dir, C_STR, "", 0, 4096),
	S(backup_keep, C_INT, "14", 1, 100000),
	S(template_dir, C_STR, PMB_TEMPLATE_DIR, 1, 4096),
	S(base_url, C_URL, "http://127.0.0.1:8080", 8, 512),
	S(site_name, C_STR, "Pick My Brain", 1, 100),
	S(consultant_name, C_STR, "Sam Carter", 1, 100),
	S(offer_title, C_STR, "Pick my brain about your marketing", 1, 200),
	S(offer_intro, C_STR, "Bring me the marketing or business problem "
	    "that keeps you up at night. I will read it carefully and send "
	    "you clear answers and ideas you can use straight away.", 0, 2000),
	/* "150", not "150.00": the default is right whatever the currency,
	 * JPY (no decimals) as much as GBP. */
	S(price, C_MONEY, "150", 0, 0),
	S(currency, C_CURRENCY, "GBP", 0, 0),
	S(answer_hours, C_INT, "48", 1, 24 * 365),
	S(guarantee_days, C_INT, "30", 1, 3650),
	S(payment_instructions, C_STR, "Pay by bank transfer to Sam Carter "
	    "Consulting, sort code 00-00-00, account 00000000, with your "
	    "order number as the reference. I start as soon as it arrives.",
	    0, 2000),
	/* The landing page's "About me" and sample answer (src/offer.c):
	 * empty, nothing of them shows. */
	S(consultant_bio, C_STR, "", 0, 5000),
	S(consultant_photo, C_STATIC_IMAGE, "", 0, 200),
	S(consultant_credentials, C_STR, "", 0, 1000),
	S(sample_question, C_STR, "", 0, 2000),
	S(sample_answer, C_STR, "", 0, 20000),
	S(happy_min_ratings, C_INT, "5", 1, 1000000),
	S(proof_cache_seconds, C_INT, "60", 0, 3600),
	S(topics, C_STR, "Marketing strategy, Pricing, Getting customers, "
	    "Social media, Website and SEO, Branding, Other", 1, 2000),
	S(followups_included, C_INT, "1", 0, 100),
	S(attachment_max_mb, C_INT, "10", 0, 100),
	S(attachments_per_message, C_INT, "5", 1, 20),
	S(attachment_types, C_KINDS, "pdf png jpeg gif webp txt csv docx xlsx "
	    "pptx odt ods", 0, 200),
	S(body_limit, C_INT, "65536", 1024, 64 * 1024 * 1024),
	S(rate_limit_email_per_hour, C_INT, "5", 0, 1000000),
	S(rate_limit_ip_per_hour, C_INT, "20", 0, 1000000),
	S(trusted_proxies, C_STR, "", 0, 2000),
	S(session_idle_minutes, C_INT, "120", 1, 60 * 24 * 30),
	S(session_max_hours, C_INT, "12", 1, 24 * 90),
	S(refund_if_late, C_BOOL, "no", 0, 0),
	S(refund_auto_approve, C_BOOL, "no", 0, 0),
	S(refund_days, C_INT, "5", 1, 365),
	S(hsts, C_ENUM_HSTS, "on", 0, 0),
	S(stripe_secret_key, C_STR, "", 0, 256),
	S(stripe_webhook_secret, C_STR, "", 0, 512),
	S(stripe_api_url, C_URL, "https://api.stripe.com", 8, 512),
	S(stripe_timeout, C_INT, "10", 1, 60),
	S(mail_transport, C_ENUM_TRANSPORT, "dir", 0, 0),
	S(mail_dir, C_STR, "/var/lib/pmb/mail", 1, 4096),
	S(smtp_url, C_STR, "smtp://127.0.0.1:25", 1, 512),
	S(smtp_user, C_STR, "", 0, 256),
	S(smtp_password, C_STR, "", 0, 256),
	S(smtp_timeout, C_INT, "30", 1, 600),
	S(smtp_ca_file, C_STR, "", 0, 4096),
	S(sendmail_command, C_STR, "/usr/sbin/sendmail -t -i", 1, 1024),
	S(mail_from, C_EMAIL, "Sam Carter <sam@example.com>", 3, 320),
	S(admin_email, C_EMAIL, "sam@example.com", 3, 254),
	S(reply_address, C_EMAIL, "", 0, 254),
	/* The IMAP mailbox that replies are fetched from (mail_imap.c). */
	S(imap_url, C_IMAP_URL, "", 0, IMAP_URL_MAX),
	S(imap_user, C_STR, "", 0, 256),
	S(imap_password, C_STR, "", 0, 256),
	S(imap_poll_seconds, C_INT, "60", 1, 86400),
	S(imap_done_folder, C_STR, "", 0, 200),
	S(inbound_hourly_limit, C_INT, "20", 0, 100000),
	S(alert_new_orders, C_BOOL, "yes", 0, 0),
	S(mail_max_attempts, C_INT, "8", 1, 100),
	S(busy_timeout_ms, C_INT, "5000", 0, 600000),
	S(log_requests, C_BOOL, "yes", 0, 0),
	S(time_zone, C_TIME_ZONE, TZ_UTC, 0, 0),
	S(unpaid_reminder_hours, C_INT, "24", 0, 24 * 365),
	S(unpaid_cancel_days, C_INT, "14", 0, 3650),
	S(digest_hour, C_HOUR_OR_OFF, "8", 0, 23),
	/* Privacy (src/privacy.c, GET /privacy): who answers for the
	 * clients' data, where to ask, and how long it is kept. */
	S(privacy_controller, C_STR, "", 0, 1000),
	S(privacy_contact, C_STR, "", 0, 320),
	S(retention_days, C_INT, "0", 0, 36500),
};

/* The text of each money setting and the line it was read from (0: the
 * default), kept until the whole file is read: only then is the currency
 * known, wherever its line is, and with it how many decimals the amount
 * may have (money_settle). */
static struct {
	char	*text;
	int	 line;
} money_read[ARRAY_LEN(settings)];

/* Returns the slot of setting s inside conf. */
static void *
slot(const struct setting *s)
{
	return (char *)&conf + s->off;
}

/* Returns 1 if v is an address, or a name and an address in angle
 * brackets ("Sam Carter <sam@example.com>"), that email_addr_check
 * accepts. */
static int
mailbox_ok(const char *v)
{
	const char	*lt = strrchr(v, '<');
	char		*addr;
	int		 ok;

	if (lt == NULL)
		return email_addr_check(v) == NULL;
	if (v[strlen(v) - 1] != '>')
		return 0;
	addr = xstrndup(lt + 1, strlen(lt + 1) - 1);
	ok = email_addr_check(addr) == NULL;
	free(addr);
	return ok;
}

/* Returns NULL if v is empty or the name of an image file that may be
 * looked for in the static folder: no folder in it (no "/", no ".."),
 * ending .jpg, .jpeg, .png or .webp (any case); else why not. Whether
 * the file is there, and its size, src/offer.c finds at start-up. */
static const char *
static_image_name_check(const char *v)
{
	static const char *const exts[] = { ".jpg", ".jpeg", ".png", ".webp" };
	size_t len = strlen(v);

	if (len == 0)
		return NULL;
	if (strchr(v, '/') != NULL || strchr(v, '\\') != NULL ||
	    strstr(v, "..") != NULL || v[0] == '.')
		return "expected a file name in the static folder, with no "
		    "folder, \"/\" or \"..\" in it";
	for (size_t i = 0; i < ARRAY_LEN(exts); i++) {
		size_t n = strlen(exts[i]);

		if (len > n && strcasecmp(v + len - n, exts[i]) == 0)
			return NULL;
	}
	return "expected a .jpg, .jpeg, .png or .webp file";
}

/* Returns NULL if v is empty or an imap:// or imaps:// URL with no user
 * or password in it (they have settings of their own, kept out of
 * logs), else why not. */
static const char *
imap_url_problem(const char *v)
{
	const char *host;

	if (*v == '\0')
		return NULL;
	if (strncmp(v, "imap://", 7) && strncmp(v, "imaps://", 8))
		return "expected a URL such as imaps://mail.example.com/INBOX, "
		    "or nothing";
	host = strstr(v, "://") + 3;
	if (memchr(host, '@', strcspn(host, "/")) != NULL)
		return "put the user name and password in imap_user and "
		    "imap_password, not in the URL";
	return NULL;
}

/* Returns NULL if every word of v (attachment_types) is a kind of file
 * pmb takes, else the reason naming them: a misspelt kind would turn
 * that kind of file away without a word. */
static const char *
kinds_problem(const char *v)
{
	char	 word[32];
	size_t	 w;

	while (*v != '\0') {
		v += strspn(v, ATTACHMENT_SEPS);
		w = strcspn(v, ATTACHMENT_SEPS);
		if (w > 0 && (w >= sizeof(word) || (memcpy(word, v, w),
		    word[w] = '\0', filekind_mime(word) == NULL)))
			return "expected kinds among pdf png jpeg gif webp txt "
			    "csv docx xlsx pptx odt ods";
		v += w;
	}
	return NULL;
}

/* Returns NULL if v is one of the words setting type t takes (for
 * C_IMAP_URL: a URL that imap_url_problem takes; C_KINDS, C_TIME_ZONE,
 * C_STATIC_IMAGE: what their checks take), else the reason naming them. */
static const char *
enum_problem(enum ctype t, const char *v)
{
	if (t == C_IMAP_URL)
		return imap_url_problem(v);
	if (t == C_KINDS)
		return kinds_problem(v);
	if (t == C_TIME_ZONE)
		return tz_check(v);
	if (t == C_STATIC_IMAGE)
		return static_image_name_check(v);
	if (t == C_ENUM_TRANSPORT && strcmp(v, "dir") && strcmp(v, "smtp") &&
	    strcmp(v, "sendmail"))
		return "expected dir, smtp or sendmail";
	if (t == C_ENUM_HSTS && strcmp(v, "off") && strcmp(v, "on") &&
	    strcmp(v, "include-subdomains"))
		return "expected off, on or include-subdomains";
	return NULL;
}

/* Stores v as a yes/no setting in *b: yes, true or 1; no, false or 0.
 * Returns 1, or 0 (nothing stored) for anything else. */
static int
bool_set(int *b, const char *v)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*b = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*b = 0;
	else
		return 0;
	return 1;
}

/* Checks and stores value v for setting s, read from line (0 for its
 * default); returns NULL or a reason. */
static const char *
setting_set(const struct setting *s, const char *v, int line)
{
	const char	*why;
	int64_t	n;
	size_t	len = strlen(v);

	if (!utf8_valid(v, len))
		return "the value is not valid UTF-8";
	if (has_ctl(v))
		return "the value holds a control character";
	switch (s->type) {
	case C_INT:
		if (!parse_int64(v, s->min, s->max, &n))
			return "expected a whole number in range";
		*(int64_t *)slot(s) = n;
		return NULL;
	case C_MONEY:
		/* Its decimals are checked by money_settle. */
		if (!parse_money(v, CURRENCY_EXPONENT_MAX, &n))
			return "expected an amount such as 150.00";
		free(money_read[s - settings].text);
		money_read[s - settings].text = xstrdup(v);
		money_read[s - settings].line = line;
		return NULL;
	case C_HOUR_OR_OFF:
		/* Empty: off (-1). */
		if (len == 0)
			n = -1;
		else if (!parse_int64(v, s->min, s->max, &n))
			return "expected an hour from 0 to 23, or nothing "
			    "for none";
		*(int64_t *)slot(s) = n;
		return NULL;
	case C_BOOL:
		return bool_set((int *)slot(s), v) ? NULL :
		    "expected yes or no";
	case C_CURRENCY:
		if (len != 3 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' ||
		    v[1] > 'Z' || v[2] < 'A' || v[2] > 'Z')
			return "expected a three-letter ISO 4217 code, "
			    "such as GBP";
		break;
	case C_STATIC_IMAGE:
	case C_IMAP_URL:
	case C_KINDS:
		/* Free text checked by its own rule: the table's maximum
		 * holds, as a C_STR's does. */
		if ((int64_t)len > s->max)
			return "the value is too long";
		/* FALLTHROUGH */
	case C_TIME_ZONE:
	case C_ENUM_TRANSPORT:
	case C_ENUM_HSTS:
		if ((why = enum_problem(s->type, v)) != NULL)
			return why;
		break;
	case C_URL:
		if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
			return "expected a URL starting with http:// "
			    "or https://";
		if (len > 0 && v[len - 1] == '/')
			return "leave off the trailing slash";
		/* FALLTHROUGH */
	case C_EMAIL:
	case C_STR:
		if ((int64_t)len < s->min)
			return "the value may not be empty";
		if ((int64_t)len > s->max)
			return "the value is too long";
		if (s->type == C_EMAIL && len > 0 && !mailbox_ok(v))
			return "expected an email address such as "
			    "sam@example.com, or Name <sam@example.com>";
		break;
	}
	free(*(char **)slot(s));
	*(char **)slot(s) = xstrdup(v);
	return NULL;
}

/* Finds the setting called name; NULL if there is none. */
static const struct setting *
setting_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (strcmp(settings[i].name, name) == 0)
			return &settings[i];
	return NULL;
}

/* Loads every default; returns 1 (defaults are known good). */
static int
conf_defaults(void)
{
	conf_free();
	for (size_t i = 0; i < ARRAY_LEN(settings); i++)
		if (setting_set(&settings[i], settings[i].def, 0) != NULL) {
			fprintf(stderr, "bad default for %s\n",
			    settings[i].name);
			abort();
		}
	return 1;
}

/* Parses each money setting read (money_read) with the decimals of the
 * currency setting: "1500.5" is no amount of JPY. Returns 1, or 0 with a
 * message naming the file name and the line in err. */
static int
money_settle(const char *name, char *err, size_t errsz)
{
	char	why[CURRENCY_ERROR_MAX];
	int64_t	n;

	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		if (settings[i].type != C_MONEY || money_read[i].text == NULL)
			continue;
		if (!parse_money(money_read[i].text,
		    currency_exponent(conf.currency), &n)) {
			snprintf(err, errsz, "%s:%d: %s: %s", name,
			    money_read[i].line, settings[i].name,
			    currency_decimals_error(why, conf.currency));
			return 0;
		}
		*(int64_t *)slot(&settings[i]) = n;
	}
	return 1;
}

/* Trims spaces and tabs at both ends of s in place; returns s. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
conf_parse(const char *text, const char *name, char *err, size_t errsz)
{
	char	*copy, *line, *next;
	int	 lineno = 0;

	conf_defaults();
	copy = xstrdup(text);
	for (line = copy; line != NULL; line = next) {
		char			*eq, *key, *val;
		const struct setting	*s;
		const char		*why;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: expected key = value",
			    name, lineno);
			goto fail;
		}
		*eq = '\0';
		key = trim(key);
		val = trim(eq + 1);
		if ((s = setting_find(key)) == NULL) {
			snprintf(err, errsz, "%s:%d: unknown setting \"%.64s\"",
			    name, lineno, key);
			goto fail;
		}
		if ((why = setting_set(s, val, lineno)) != NULL) {
			snprintf(err, errsz, "%s:%d: %s: %s", name, lineno,
			    s->name, why);
			goto fail;
		}
	}
	free(copy);
	if (!money_settle(name, err, errsz))
		return 0;
	conf.https = strncmp(conf.base_url, "https://", 8) == 0;
	return 1;
fail:
	free(copy);
	return 0;
}

/* The settings file that conf_load read (NULL: none, the defaults), and
 * its text, which conf_reload goes back to when the file turns bad. */
static char	*loaded_path;
static char	*loaded_text;

/* Returns the file to read when neither --config nor $PMB_CONFIG names
 * one: the configured default if it exists, else NULL (the defaults).
 * $PMB_DEFAULT_CONFIG stands in for the configured path, for the tests,
 * which cannot write /etc. */
static const char *
default_file(void)
{
	const char *path = getenv("PMB_DEFAULT_CONFIG");

	if (path == NULL || *path == '\0')
		path = PMB_DEFAULT_CONFIG;
	return access(path, F_OK) == 0 ? path : NULL;
}

/* Returns the text of the settings file at path (to free), or NULL with
 * a message in err. */
static char *
settings_text(const char *path, char *err, size_t errsz)
{
	char *text = read_file(path, NULL);

	if (text == NULL)
		snprintf(err, errsz, "%s: cannot read the settings file",
		    path);
	return text;
}

int
conf_load(const char *path, char *err, size_t errsz)
{
	char	*text;

	if (path == NULL || *path == '\0')
		path = getenv("PMB_CONFIG");
	if (path == NULL || *path == '\0')
		path = default_file();
	free(loaded_path);
	free(loaded_text);
	loaded_path = loaded_text = NULL;
	if (path == NULL) {
		conf_defaults();
		if (!money_settle("defaults", err, errsz))
			return 0;
		conf.https = strncmp(conf.base_url, "https://", 8) == 0;
		return 1;
	}
	if ((text = settings_text(path, err, errsz)) == NULL)
		return 0;
	if (!conf_parse(text, path, err, errsz)) {
		free(text);
		return 0;
	}
	loaded_path = xstrdup(path);
	loaded_text = text;
	return 1;
}

const char *
conf_file(void)
{
	return loaded_path;
}

int
conf_reload(char *err, size_t errsz)
{
	char	 why[512];
	char	*text;

	if (loaded_path == NULL)
		return 1;
	if ((text = settings_text(loaded_path, err, errsz)) == NULL)
		return 0;
	if (!conf_parse(text, loaded_path, err, errsz)) {
		free(text);
		/* The text read before was good: back to it. */
		if (!conf_parse(loaded_text, loaded_path, why, sizeof(why)))
			abort();
		return 0;
	}
	free(loaded_text);
	loaded_text = text;
	return 1;
}

void
conf_free(void)
{
	for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
		enum ctype t = settings[i].type;

		if (t == C_MONEY) {
			free(money_read[i].text);
			money_read[i].text = NULL;
		}
		if (t == C_INT || t == C_BOOL || t == C_MONEY ||
		    t == C_HOUR_OR_OFF)
			continue;
		free(*(char **)slot(&settings[i]));
		*(char **)slot(&settings[i]) = NULL;
	}
}
