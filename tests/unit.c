/* unit.c: unit tests of the parsers, escaping, templates, settings,
 * tokens and migrations. Prints TAP. */
#include <sys/stat.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "currency.h"
#include "db.h"
#include "email_addr.h"
#include "image.h"
#include "http.h"
#include "markdown.h"
#include "outbox.h"
#include "pay_jobs.h"
#include "search_rank.h"
#include "stripe.h"
#include "stripe_sig.h"
#include "tmpl.h"
#include "token.h"
#include "mail_token.h"
#include "tz.h"
#include "util.h"
#include "tap.h"

/* Returns the escaped form of s (static buffer). */
static const char *
esc(const char *s)
{
	static struct buf b;

	buf_reset(&b);
	html_escape(&b, s);
	return b.data ? b.data : "";
}

static void
test_escape(void)
{
	struct buf b;

	ok(!strcmp(esc("<script>alert('x')</script>"),
	    "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
	    "html_escape escapes tags and quotes");
	ok(!strcmp(esc("a \"b\" & c"), "a &quot;b&quot; &amp; c"),
	    "html_escape escapes attribute quotes and ampersands");
	ok(!strcmp(esc("plain"), "plain"), "html_escape keeps plain text");
	buf_init(&b);
	url_escape(&b, "a b&c=d/é");
	ok(!strcmp(b.data, "a%20b%26c%3Dd%2F%C3%A9"), "url_escape: %s", b.data);
	buf_free(&b);
	buf_init(&b);
	buf_replace(&b, "xAyAAz", "A", "<ab>");
	ok(!strcmp(b.data, "x<ab>y<ab><ab>z"), "buf_replace replaces every "
	    "occurrence: %s", b.data);
	buf_reset(&b);
	buf_replace(&b, "pmbn1 and pmbn1x", "pmbn1", "");
	ok(!strcmp(b.data, " and x"), "buf_replace with nothing: %s", b.data);
	buf_reset(&b);
	buf_replace(&b, "none here", "pmbt", "T");
	ok(!strcmp(b.data, "none here"), "buf_replace without a hit copies");
	buf_free(&b);
}

static void
test_utf8(void)
{
	ok(utf8_valid("héllo", strlen("héllo")), "valid UTF-8 accepted");
	ok(!utf8_valid("\xc3\x28", 2), "invalid continuation refused");
	ok(!utf8_valid("\xc0\xaf", 2), "overlong form refused");
	ok(!utf8_valid("\xed\xa0\x80", 3), "surrogate refused");
	ok(!utf8_valid("\xf4\x90\x80\x80", 4), "past U+10FFFF refused");
	ok(!utf8_valid("a\0b", 3), "NUL refused");
	ok(!utf8_valid("\xe2\x82", 2), "truncated sequence refused");
	ok(utf8_len("héllo") == 5, "utf8_len counts code points");
}

static void
test_urlencoded(void)
{
	struct kv	*kv = NULL;
	size_t		 n = 0;
	const char	*why = NULL;
	char		*d;
	struct buf	 many;
	int		 rc;

	const char *q = "a=1&b=hello+world&c=%C3%A9&&d";

	rc = parse_urlencoded(q, strlen(q), &kv, &n, 100, &why);
	ok(rc == 0 && n == 4, "four pairs parsed (rc %d n %zu)", rc, n);
	ok(n == 4 && !strcmp(kv[1].val, "hello world"), "plus is a space");
	ok(n == 4 && !strcmp(kv[2].val, "é"), "percent-decoding to UTF-8");
	ok(n == 4 && !strcmp(kv[3].key, "d") && !strcmp(kv[3].val, ""),
	    "key without = has an empty value");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_urlencoded("x=%zz", 5, &kv, &n, 100, &why) < 0,
	    "malformed percent-encoding refused");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_urlencoded("x=%4", 4, &kv, &n, 100, &why) < 0,
	    "truncated percent-encoding refused");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_urlencoded("x=%ff%fe", 8, &kv, &n, 100, &why) < 0,
	    "invalid UTF-8 after decoding refused");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_urlencoded("x=%00", 5, &kv, &n, 100, &why) < 0,
	    "encoded NUL refused");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	buf_init(&many);
	for (int i = 0; i < 1001; i++)
		buf_printf(&many, "f%d=1&", i);
	ok(parse_urlencoded(many.data, many.len, &kv, &n, HTTP_MAX_FIELDS,
	    &why) < 0, "more than 1000 fields refused");
	kv_free(kv, n);
	buf_free(&many);
	d = url_decode("%41%42c", 7, 0);
	ok(d && !strcmp(d, "ABc"), "url_decode");
	free(d);
}

static void
test_cookies(void)
{
	struct kv	*kv = NULL;
	size_t		 n = 0;
	const char	*why;

	ok(parse_cookies("a=1; b=two;c=3", &kv, &n, &why) == 0 && n == 3,
	    "three cookies parsed");
	ok(n == 3 && !strcmp(kv[1].key, "b") && !strcmp(kv[1].val, "two"),
	    "cookie name and value");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_cookies("a=%zz", &kv, &n, &why) < 0,
	    "malformed cookie refused");
	kv_free(kv, n);
	kv = NULL;
	n = 0;
	ok(parse_cookies("a=\xff", &kv, &n, &why) < 0,
	    "invalid UTF-8 cookie refused");
	kv_free(kv, n);
}

static void
test_money(void)
{
	int64_t		v;
	struct buf	b;
	char		num[INT_TEXT_MAX];

	char		m[MONEY_TEXT_MAX];

	/* Two decimals (GBP). */
	ok(parse_money("150.00", 2, &v) && v == 15000, "150.00 is 15000");
	ok(parse_money("99.5", 2, &v) && v == 9950, "99.5 is 9950");
	ok(parse_money("7", 2, &v) && v == 700, "7 is 700");
	ok(!parse_money("1.234", 2, &v), "three decimals refused");
	ok(!parse_money("-5", 2, &v), "negative refused");
	ok(!parse_money("12a", 2, &v), "garbage refused");
	ok(!parse_money("1.", 2, &v) && !parse_money(".5", 2, &v) &&
	    !parse_money("", 2, &v) && !parse_money("1.2.3", 2, &v),
	    "a point without digits on both sides refused");
	ok(!parse_money("99999999999999999999", 2, &v), "overflow refused");
	ok(parse_money("90000000000000000.01", 2, &v) &&
	    v == INT64_C(9000000000000000001), "a very large amount parses");
	/* No decimals (JPY). */
	ok(parse_money("1500", 0, &v) && v == 1500, "1500 JPY is 1500");
	ok(!parse_money("1500.5", 0, &v) && !parse_money("1500.0", 0, &v) &&
	    !parse_money("1500.", 0, &v), "JPY: any decimal refused");
	ok(parse_money("9000000000000000001", 0, &v) &&
	    v == INT64_C(9000000000000000001) &&
	    !parse_money("99999999999999999999", 0, &v),
	    "JPY: large and overflowing amounts");
	/* Three and four decimals (BHD, CLF). */
	ok(parse_money("12.345", 3, &v) && v == 12345, "12.345 BHD is 12345");
	ok(parse_money("12.3", 3, &v) && v == 12300, "12.3 BHD is 12300");
	ok(parse_money("12", 3, &v) && v == 12000, "12 BHD is 12000");
	ok(!parse_money("1.2345", 3, &v), "BHD: four decimals refused");
	ok(parse_money("1.2345", 4, &v) && v == 12345, "1.2345 CLF is 12345");
	ok(!parse_money("1", -1, &v) && !parse_money("1", 9, &v),
	    "an exponent out of range refused");
	buf_init(&b);
	fmt_money(&b, 12345, 2);
	ok(!strcmp(b.data, "123.45"), "fmt_money");
	buf_reset(&b);
	fmt_money(&b, 10, 2);
	fmt_money(&b, 0, 2);
	fmt_money(&b, -205, 2);
	fmt_money(&b, 100, 2);
	ok(!strcmp(b.data, "0.100.00-2.051.00"), "fmt_money: cents, zero, "
	    "negative, whole");
	buf_free(&b);
	ok(!strcmp(money_text(m, 1500, 0), "1500") &&
	    !strcmp(money_text(m, 0, 0), "0") &&
	    !strcmp(money_text(m, -7, 0), "-7"), "money_text: no decimals");
	ok(!strcmp(money_text(m, 12345, 3), "12.345") &&
	    !strcmp(money_text(m, 5, 3), "0.005") &&
	    !strcmp(money_text(m, -12000, 3), "-12.000"),
	    "money_text: three decimals");
	ok(!strcmp(money_text(m, 12345, 4), "1.2345"),
	    "money_text: four decimals");
	ok(!strcmp(money_text(m, INT64_MIN, 2), "-92233720368547758.08") &&
	    !strcmp(money_text(m, INT64_MIN, 0), "-9223372036854775808"),
	    "money_text: the smallest amount fits MONEY_TEXT_MAX");
	ok(!strcmp(int_text(num, 0), "0") && !strcmp(int_text(num, 1907),
	    "1907") && !strcmp(int_text(num, -42), "-42") &&
	    !strcmp(int_text(num, INT64_MIN), "-9223372036854775808"),
	    "int_text");
	ok(parse_int64("42", 0, 100, &v) && v == 42, "parse_int64");
	ok(!parse_int64("101", 0, 100, &v), "parse_int64 range");
	ok(!parse_int64("4x", 0, 100, &v), "parse_int64 garbage");
}

/* Returns 1 if f(t) writes what strftime writes with fmt. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int
same_as_strftime(void (*f)(struct buf *, int64_t), const char *fmt,
    int64_t t)
{
	struct buf	b;
	struct tm	tm;
	time_t		tt = (time_t)t;
	char		want[64];
	int		same;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(want, sizeof(want), fmt, &tm) == 0)
		return 0;
	buf_init(&b);
	f(&b, t);
	same = b.data != NULL && strcmp(b.data, want) == 0;
	if (!same)
		printf("# %lld: \"%s\", strftime \"%s\"\n", (long long)t,
		    b.data ? b.data : "", want);
	buf_free(&b);
	return same;
}
#pragma GCC diagnostic pop

static void
test_times(void)
{
	int64_t	t = 0;
	int	bad = 0;

	/* Every few hours over 70 years, then the ends of the fast path. */
	for (int i = 0; i < 60000; i++, t += 36877)
		bad += !same_as_strftime(fmt_time, "%-d %b %Y, %H:%M UTC", t) +
		    !same_as_strftime(fmt_iso, "%Y-%m-%dT%H:%M:%SZ", t);
	ok(bad == 0, "fmt_time and fmt_iso write what strftime writes");
	ok(same_as_strftime(fmt_time, "%-d %b %Y, %H:%M UTC", 253402300799) &&
	    same_as_strftime(fmt_iso, "%Y-%m-%dT%H:%M:%SZ", 253402300800) &&
	    same_as_strftime(fmt_iso, "%Y-%m-%dT%H:%M:%SZ", -30610224001),
	    "fmt_time and fmt_iso past four-digit years");
	bad = 0;
	for (int m = 0; m < 12; m++) {
		struct tm	tm = { .tm_mon = m, .tm_mday = 1, .tm_year = 126 };
		char		want[8];

		strftime(want, sizeof(want), "%b", &tm);
		bad += strcmp(month_abbr(m), want) != 0;
	}
	ok(bad == 0 && strcmp(month_abbr(12), "???") == 0 &&
	    strcmp(month_abbr(-1), "???") == 0,
	    "month_abbr: strftime's %%b names, ??? outside 0 to 11");
}

/* Returns what f (fmt_time, fmt_date) writes of t, in a static buffer. */
static const char *
text_by(void (*f)(struct buf *, int64_t), int64_t t)
{
	static char	out[TIME_TEXT_MAX];
	struct buf	b;

	buf_init(&b);
	f(&b, t);
	snprintf(out, sizeof(out), "%s", b.data ? b.data : "");
	buf_free(&b);
	return out;
}

#define time_of(t)	text_by(fmt_time, (t))
#define date_of(t)	text_by(fmt_date, (t))

/* Returns the number of times t (every few hours over 70 years) for
 * which fmt_time differs from localtime_r and strftime in the zone set. */
static int
local_differences(void)
{
	int64_t	t = 0;
	int	bad = 0;

	for (int i = 0; i < 60000; i++, t += 36877) {
		time_t		tt = (time_t)t;
		struct tm	tm;
		char		want[TIME_TEXT_MAX];

		if (localtime_r(&tt, &tm) == NULL || strftime(want,
		    sizeof(want), "%-d %b %Y, %H:%M %Z", &tm) == 0 ||
		    strcmp(time_of(t), want) != 0) {
			if (bad++ == 0)
				printf("# %lld: \"%s\", strftime \"%s\"\n",
				    (long long)t, time_of(t), want);
		}
	}
	return bad;
}

/* 2026-03-29 01:00 UTC: London leaves GMT for BST. 2026-03-08 07:00 UTC:
 * New York leaves EST for EDT. */
#define LONDON_DST	1774746000
#define NEW_YORK_DST	1772953200
/* 2026-10-25 00:00 UTC (01:00 BST, London back to GMT at 01:00 UTC);
 * 2018-11-04 03:00 UTC, when Sao Paulo's clocks went from 00:00 to
 * 01:00. */
#define OCT_25_2026	1792886400
#define SAO_PAULO_SKIP	1541300400
#define HOUR_S		3600

static void
test_time_zones(void)
{
	char	err[512];
	int64_t	start, next;

	ok(tz_check("UTC") == NULL && tz_check("Europe/London") == NULL &&
	    tz_check("America/New_York") == NULL, "tz_check: real zones");
	ok(tz_check("Mars/Olympus") != NULL &&
	    strstr(tz_check("Mars/Olympus"), "no time zone") != NULL,
	    "tz_check: no such zone");
	ok(tz_check("../etc/passwd") != NULL && tz_check("Europe/./London") &&
	    tz_check("/etc/passwd") != NULL && tz_check("") != NULL &&
	    tz_check("Europe//London") != NULL &&
	    tz_check("Europe/London ") != NULL,
	    "tz_check: paths, \"..\" and odd characters refused");
	ok(tz_check("Europe") != NULL &&
	    strstr(tz_check("Europe"), "not a zone") != NULL,
	    "tz_check: a folder of zones is no zone");
	ok(tz_check("zone1970.tab") != NULL &&
	    strstr(tz_check("zone1970.tab"), "TZif") != NULL,
	    "tz_check: a file that is not TZif");
	setenv("TZDIR", "/nonexistent", 1);
	ok(tz_check("Europe/London") != NULL && tz_check("UTC") == NULL,
	    "tz_check: TZDIR is where zones are looked for");
	unsetenv("TZDIR");
	ok(!conf_parse("\ntime_zone = Europe\n", "t.conf", err, sizeof(err)) &&
	    strncmp(err, "t.conf:2: time_zone: ", 21) == 0,
	    "a bad time_zone names its line");
	ok(!conf_parse("attachment_types = pdf pdff png\n", "t.conf", err,
	    sizeof(err)) && strstr(err, "t.conf:1: attachment_types: ") ==
	    err && strstr(err, "pdf png jpeg") != NULL,
	    "a misspelt kind in attachment_types is refused, naming the kinds: "
	    "%s", err);
	ok(conf_parse("attachment_types = pdf, png,csv\n", "t.conf", err,
	    sizeof(err)) && word_in_list(conf.attachment_types, "png",
	    ATTACHMENT_SEPS) && word_in_list(conf.attachment_types, "csv",
	    ATTACHMENT_SEPS) && !word_in_list(conf.attachment_types, "pd",
	    ATTACHMENT_SEPS) && !word_in_list(conf.attachment_types, "jpeg",
	    ATTACHMENT_SEPS), "attachment_types: words by spaces or commas");
	ok(conf_parse("time_zone = Europe/London\n", "t.conf", err,
	    sizeof(err)) && strcmp(conf.time_zone, "Europe/London") == 0,
	    "time_zone = Europe/London");
	/* Each setting's most length, checked in one place whatever its
	 * type: a list of valid kinds, an IMAP URL, an image name. */
	{
		char	long_text[600], text[700];
		size_t	n;

		for (n = 0; n < 208; n += 4)	/* 52 words: 207 characters */
			memcpy(long_text + n, "pdf ", 4);
		long_text[n] = '\0';
		snprintf(text, sizeof(text), "attachment_types = %s\n",
		    long_text);
		ok(!conf_parse(text, "t.conf", err, sizeof(err)) &&
		    strstr(err, "too long") != NULL,
		    "attachment_types over 200 characters (valid kinds) is "
		    "refused as too long: %s", err);
		memset(long_text, 'a', 590);
		long_text[590] = '\0';
		snprintf(text, sizeof(text), "imap_url = imaps://%s.example/\n",
		    long_text);
		ok(!conf_parse(text, "t.conf", err, sizeof(err)) &&
		    strstr(err, "too long") != NULL,
		    "an over-long imap_url is refused as too long: %.80s", err);
		memset(long_text, 'b', 250);
		memcpy(long_text + 250, ".png", 5);
		snprintf(text, sizeof(text), "consultant_photo = %s\n",
		    long_text);
		ok(!conf_parse(text, "t.conf", err, sizeof(err)) &&
		    strstr(err, "too long") != NULL,
		    "an over-long consultant_photo is refused as too long: "
		    "%.80s", err);
	}

	ok(tz_use("Europe/London", err, sizeof(err)) &&
	    !strcmp(time_of(LONDON_DST - 1800), "29 Mar 2026, 00:30 GMT") &&
	    !strcmp(time_of(LONDON_DST + 1800), "29 Mar 2026, 02:30 BST") &&
	    !strcmp(time_of(1796652300), "7 Dec 2026, 14:05 GMT") &&
	    !strcmp(time_of(1783780200), "11 Jul 2026, 15:30 BST"),
	    "Europe/London: GMT in winter, BST in summer");
	ok(!strcmp(date_of(1783810800), "12 July 2026"),
	    "Europe/London: the date of 23:00 UTC is the next day");
	ok(local_differences() == 0,
	    "Europe/London: fmt_time writes what strftime writes");
	ok(tz_use("Asia/Kolkata", err, sizeof(err)) &&
	    local_differences() == 0,
	    "Asia/Kolkata: fmt_time writes what strftime writes");
	ok(tz_use("Europe/London", err, sizeof(err)) &&
	    time_day(LONDON_DST + 1800, &start, &next) &&
	    start == LONDON_DST - HOUR_S && next == LONDON_DST + 22 * HOUR_S,
	    "Europe/London: 29 Mar 2026 is 23 hours long");
	ok(time_day(OCT_25_2026 + 12 * HOUR_S, &start, &next) &&
	    start == OCT_25_2026 - HOUR_S && next == OCT_25_2026 + 24 * HOUR_S,
	    "Europe/London: 25 Oct 2026 is 25 hours long");
	ok(tz_use("America/New_York", err, sizeof(err)) &&
	    !strcmp(time_of(NEW_YORK_DST - 1800), "8 Mar 2026, 01:30 EST") &&
	    !strcmp(time_of(NEW_YORK_DST + 1800), "8 Mar 2026, 03:30 EDT") &&
	    !strcmp(date_of(1783810800), "11 July 2026"),
	    "America/New_York: EST, then EDT");
	ok(time_day(NEW_YORK_DST, &start, &next) &&
	    start == NEW_YORK_DST - 2 * HOUR_S &&
	    next == NEW_YORK_DST + 21 * HOUR_S &&
	    time_day(NEW_YORK_DST - 2 * HOUR_S - 1, &start, &next) &&
	    next == NEW_YORK_DST - 2 * HOUR_S,
	    "America/New_York: 8 Mar 2026 runs from 05:00 to 04:00 UTC");
	ok(tz_use("America/Sao_Paulo", err, sizeof(err)) &&
	    time_day(SAO_PAULO_SKIP + HOUR_S, &start, &next) &&
	    start == SAO_PAULO_SKIP && next == SAO_PAULO_SKIP + 23 * HOUR_S,
	    "America/Sao_Paulo: 4 Nov 2018 starts at 01:00, midnight skipped");
	ok(local_differences() == 0,
	    "America/New_York: fmt_time writes what strftime writes");
	ok(tz_use("UTC", err, sizeof(err)) &&
	    !strcmp(time_of(LONDON_DST + 1800), "29 Mar 2026, 01:30 UTC") &&
	    !strcmp(time_of(1796652300), "7 Dec 2026, 14:05 UTC") &&
	    !strcmp(date_of(1783810800), "11 July 2026"),
	    "UTC again: the fast path");
	ok(time_day(LONDON_DST + 1800, &start, &next) &&
	    start == LONDON_DST - HOUR_S && next == start + 24 * HOUR_S &&
	    time_day(-1, &start, &next) && start == -24 * HOUR_S && next == 0,
	    "UTC: days of 24 hours, before 1970 too");
	conf_parse("", "t", err, sizeof(err));
}

/* Returns fmt_duration's text of s in style, in a static buffer. */
static const char *
duration_of(int64_t s, enum duration_style style)
{
	static char	out[64];
	struct buf	b;

	buf_init(&b);
	fmt_duration(&b, s, style);
	snprintf(out, sizeof(out), "%s", b.data);
	buf_free(&b);
	return out;
}

static void
test_durations(void)
{
	static const struct {
		int64_t			 s;
		enum duration_style	 style;
		const char		*want;
	} cases[] = {
		{ 0, DURATION_SHORT, "0 min" },
		{ 45 * 60 + 59, DURATION_SHORT, "45 min" },
		{ 10 * 3600 + 5 * 60, DURATION_SHORT, "10 h 5 min" },
		{ 2 * 86400 - 1, DURATION_SHORT, "47 h 59 min" },
		{ 2 * 86400 + 22 * 3600, DURATION_SHORT, "2 d 22 h" },
		{ -45 * 60, DURATION_SHORT, "-45 min" },
		{ 1, DURATION_MINUTES, "1 minute" },
		{ 60, DURATION_MINUTES, "1 minute" },
		{ 61, DURATION_MINUTES, "2 minutes" },
		{ 3600, DURATION_MINUTES, "60 minutes" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = duration_of(cases[i].s, cases[i].style);

		ok(strcmp(got, cases[i].want) == 0, "fmt_duration(%lld): "
		    "\"%s\" (got \"%s\")", (long long)cases[i].s,
		    cases[i].want, got);
	}
}

/* Checks tv_set and tv_get past the variables held in place: none is
 * dropped, a value set again is replaced wherever it lives. */
static void
test_tvars(void)
{
	enum { NVARS = 3 * TVARS_MAX + 5 };
	static char	 names[NVARS][16];
	struct tvars	 tv = { .n = 0 };
	int		 bad = 0;

	for (int i = 0; i < NVARS; i++) {
		snprintf(names[i], sizeof(names[i]), "v%d", i);
		tv_set(&tv, names[i], names[i]);
	}
	tv_set(&tv, "v7", "seven");
	tv_set(&tv, names[NVARS - 1], "last");
	for (int i = 0; i < NVARS; i++) {
		const char *want = i == 7 ? "seven" : i == NVARS - 1 ? "last" :
		    names[i];
		const char *v = tv_get(&tv, names[i]);

		bad += v == NULL || strcmp(v, want) != 0;
	}
	ok(bad == 0, "tv_set keeps all %d variables (more than %d) and "
	    "replaces a value set again", NVARS, TVARS_MAX);
	ok(tv_get(&tv, "v") == NULL && tv_get(&tv, "v99999") == NULL &&
	    tv_get(NULL, "v1") == NULL, "tv_get: unknown names are NULL");
	tv_free(&tv);
	ok(tv_get(&tv, "v1") == NULL && tv_get(&tv, names[NVARS - 1]) == NULL,
	    "tv_free empties the variables");
}

/* Renders template name with tv into a fresh string; returns it
 * (the caller frees it), or NULL. */
static char *
render_str(const char *name, const struct tvars *tv)
{
	struct buf b;

	buf_init(&b);
	if (!tmpl_render(&b, name, tv)) {
		buf_free(&b);
		return NULL;
	}
	if (b.data == NULL)
		return xstrdup("");
	return buf_take(&b);
}

/* Checks that rendering template name with tv gives want. */
static void
render_is(const char *name, const struct tvars *tv, const char *want,
    const char *what)
{
	char *got = render_str(name, tv);

	ok(got != NULL && strcmp(got, want) == 0, "%s: %s", what,
	    got ? got : "(no template)");
	free(got);
}

/* Counts its calls in *arg; returns the count as "<N>" (for tv_set_fn). */
static const char *
count_calls(void *arg)
{
	static char	 s[16];
	int		*n = arg;

	snprintf(s, sizeof(s), "<%d>", ++*n);
	return s;
}

/* Checks list sections: rows, nesting, scopes, escaping, {{^}} on an
 * empty list, partials, computed values. */
static void
test_template_lists(void)
{
	struct tvars	 tv = { .n = 0 }, *row, *sub;
	char		 err[256];
	static char	 keys[200][8];
	int		 calls = 0;

	ok(tmpl_add("l1", "<ul>{{#rows}}<li title=\"{{t}}\">{{name}}/{{site}}"
	    "{{#sub}}[{{x}}:{{name}}]{{/sub}}{{{raw}}}</li>{{/rows}}"
	    "{{^rows}}<p>none</p>{{/rows}}</ul>", err, sizeof(err)),
	    "list template compiles: %s", err);
	tv_set(&tv, "site", "S&S");
	tv_set(&tv, "name", "outer");
	render_is("l1", &tv, "<ul><p>none</p></ul>",
	    "{{^rows}} renders when the list is unset");
	row = tv_row(&tv, "rows");
	tv_set(row, "name", "<a>");
	tv_set(row, "t", "\"q\"");
	tv_set(row, "raw", "<b>x</b>");
	sub = tv_row(row, "sub");
	tv_set(sub, "x", "1");
	sub = tv_row(row, "sub");
	tv_set(sub, "x", "2");
	tv_set(sub, "name", "inner");
	row = tv_row(&tv, "rows");
	render_is("l1", &tv, "<ul><li title=\"&quot;q&quot;\">&lt;a&gt;/S&amp;S"
	    "[1:&lt;a&gt;][2:inner]<b>x</b></li>"
	    "<li title=\"\">outer/S&amp;S</li></ul>",
	    "rows repeat, nested lists, names from outer scopes, escaped "
	    "and raw inside rows");
	ok(tv_get(&tv, "rows") == NULL, "a list has no text value");
	tv_set(&tv, "rows", "");
	render_is("l1", &tv, "<ul><p>none</p></ul>",
	    "a list set to an empty text is empty again");
	for (int i = 0; i < 200; i++) {
		row = tv_row(&tv, "rows");
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		for (int j = 0; j <= i % 70; j++)
			tv_set(row, keys[j < i ? j : i], "v");
		tv_set(row, "name", keys[i]);
	}
	{
		char	*got = render_str("l1", &tv);
		int	 n = 0;

		for (const char *p = got; p && (p = strstr(p, "<li")); p++)
			n++;
		ok(got && n == 200 && strstr(got, ">k199/") != NULL &&
		    strstr(got, ">k70/") != NULL, "200 rows, rows of more than "
		    "%d variables: %d rendered", TVARS_MAX, n);
		free(got);
	}
	tv_free(&tv);
	tv_set(&tv, "inner", "in.html");
	ok(tmpl_add("in.html", "({{name}})", err, sizeof(err)) &&
	    tmpl_add("l2", "{{#rows}}{{> in.html}}{{/rows}}|{{>*inner}}"
	    "{{>*nothing}}", err, sizeof(err)), "partials compile: %s", err);
	tv_set(&tv, "name", "top");
	tv_set(tv_row(&tv, "rows"), "name", "r<1>");
	render_is("l2", &tv, "(r&lt;1&gt;)|(top)",
	    "partials see the row's scope; {{>*name}} names its template");
	ok(tmpl_add("loop", "x{{> loop}}{{> loop2}}", err, sizeof(err)) &&
	    tmpl_add("loop2", "y{{> loop}}", err, sizeof(err)),
	    "templates that include themselves compile");
	{
		struct buf	b;
		int		rendered;

		buf_init(&b);
		rendered = tmpl_render(&b, "loop", &tv);
		ok(!rendered && b.data && strcmp(b.data, "xy") == 0,
		    "... are left out where they would include themselves, "
		    "and the render says so: %s", b.data ? b.data : "");
		buf_reset(&b);
		ok(tmpl_add("l4", "a{{> nowhere.html}}b", err, sizeof(err)) &&
		    !tmpl_render(&b, "l4", &tv), "a missing partial fails the "
		    "render");
		buf_free(&b);
	}
	ok(!tmpl_add("bad", "{{#a}}{{> }}{{/a}}", err, sizeof(err)),
	    "a partial without a name is refused");
	tv_free(&tv);
	tv_set_fn(&tv, "lazy", count_calls, &calls);
	ok(tmpl_add("l3", "{{#rows}}<{{lazy}}>{{/rows}}", err, sizeof(err)),
	    "computed value template compiles");
	render_is("l3", &tv, "", "a computed value unused is not computed");
	ok(calls == 0 && tv_get(&tv, "lazy") == NULL,
	    "... not even by tv_get: %d calls", calls);
	tv_row(&tv, "rows");
	tv_row(&tv, "rows");
	render_is("l3", &tv, "<&lt;1&gt;><&lt;2&gt;>",
	    "a computed value is computed where it is used, and escaped");
	tv_free(&tv);
	tmpl_free();
}

/* Checks that md_plain renders md as want. */
static void
plain_is(const char *md, const char *want, const char *what)
{
	char *got = md_plain(md);

	ok(!strcmp(got, want), "md_plain: %s: [%s]", what, got);
	free(got);
}

static void
test_markdown_plain(void)
{
	char *html;

	plain_is("Try a **loyalty card**, *now*, with `code`.",
	    "Try a loyalty card, now, with code.", "emphasis and code marks go");
	plain_is("A\\_b \\*c\\* x", "A_b *c* x", "backslash escapes are undone");
	plain_is("One\\\ntwo  \nthree", "One\ntwo\nthree",
	    "line breaks stay, their marks go");
	plain_is("# Plan\n\nText", "Plan\n\nText", "a heading keeps its line");
	plain_is("- one\n- two\n  more\n\nAfter",
	    "- one\n- two\n  more\n\nAfter",
	    "a tight list keeps its items, lined up");
	plain_is("3. a\n4. b", "3. a\n4. b", "an ordered list counts on");
	plain_is("- a\n\n  - b\n\n- c", "- a\n\n  - b\n\n- c",
	    "a nested list is indented");
	plain_is("> quoted\n> more", "> quoted\n> more", "a quote keeps its mark");
	plain_is("See [the guide](https://example.com/g).",
	    "See the guide (https://example.com/g).",
	    "a link's address follows it");
	plain_is("<b>x</b> y", "x y", "raw HTML is dropped, as in md_render");
	plain_is("    code  here\n    two", "    code  here\n    two",
	    "a code block stays indented");
	plain_is("", "", "nothing is nothing");
	html = md_render_mail("See ![the *chart*](https://example.com/c.png "
	    "\"Sales\") and <img src=\"https://example.com/p.gif\">.");
	ok(strstr(html, "<img") == NULL && strstr(html,
	    "<a href=\"https://example.com/c.png\" title=\"Sales\">the "
	    "<em>chart</em></a>") != NULL, "md_render_mail: an image is a link "
	    "to it, raw HTML dropped: %s", html);
	free(html);
	html = md_render("![x](https://example.com/c.png)");
	ok(strstr(html, "<img") != NULL, "md_render keeps images: %s", html);
	free(html);
}

static int	write_text(const char *, const char *);

/* An email's text template without its HTML one is refused at load. */
static void
test_mail_pairs(void)
{
	char		 dir[] = "/tmp/pmb-tmpl-XXXXXX", err[256] = "";
	struct buf	 sub, txt, html;
	int		 made = mkdtemp(dir) != NULL;

	buf_init(&sub);
	buf_init(&txt);
	buf_init(&html);
	buf_printf(&sub, "%s/mail", dir);
	buf_printf(&txt, "%s/x.txt", sub.data);
	buf_printf(&html, "%s/x.html", sub.data);
	made = made && mkdir(sub.data, 0700) == 0 &&
	    write_text(txt.data, "Subject: x\n\nHello\n");
	ok(made && !tmpl_load(dir, err, sizeof(err)) &&
	    strstr(err, "mail/x.html: missing") != NULL,
	    "mail/x.txt without mail/x.html is refused: %s", err);
	tmpl_free();
	ok(write_text(html.data, "<p>Hello</p>\n") &&
	    tmpl_load(dir, err, sizeof(err)) && tmpl_exists("mail/x.html"),
	    "... and loads with it");
	tmpl_free();
	unlink(html.data);
	unlink(txt.data);
	rmdir(sub.data);
	rmdir(dir);
	buf_free(&sub);
	buf_free(&txt);
	buf_free(&html);
}

static void
test_templates(void)
{
	struct tvars	tv = { .n = 0 };
	struct buf	b;
	char		err[256];

	ok(tmpl_add("t1", "<p title=\"{{a}}\">{{a}}</p>{{{raw}}}"
	    "{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{^no}}!N{{/no}}{{! gone }}",
	    err, sizeof(err)), "template compiles");
	tv_set(&tv, "a", "<b>\"x\"</b>");
	tv_set(&tv, "raw", "<i>ok</i>");
	tv_set(&tv, "yes", "1");
	tv_set(&tv, "no", "");
	buf_init(&b);
	ok(tmpl_render(&b, "t1", &tv), "template renders");
	ok(b.data && !strcmp(b.data, "<p title=\"&lt;b&gt;&quot;x&quot;&lt;/b&gt;\">"
	    "&lt;b&gt;&quot;x&quot;&lt;/b&gt;</p><i>ok</i>Y!N"),
	    "escaped by default, raw when marked, sections: %s", b.data);
	buf_free(&b);
	ok(!tmpl_add("t2", "{{#a}}x", err, sizeof(err)),
	    "unclosed section refused: %s", err);
	ok(!tmpl_add("t3", "{{#a}}x{{/b}}", err, sizeof(err)),
	    "mismatched section refused");
	ok(!tmpl_add("t4", "{{a", err, sizeof(err)), "unclosed tag refused");
	ok(!tmpl_add("t5", "{{a b}}", err, sizeof(err)), "bad name refused");
	ok(!tmpl_add("t6", "{{a/b}}", err, sizeof(err)),
	    "a variable's name has no folder");
	ok(tmpl_add("mail/p", "<{{a}}>", err, sizeof(err)) &&
	    tmpl_add("t7", "[{{> mail/p}}]", err, sizeof(err)),
	    "a partial may name a template in a folder: %s", err);
	buf_init(&b);
	ok(tmpl_render(&b, "t7", &tv) && b.data != NULL &&
	    !strcmp(b.data, "[<&lt;b&gt;&quot;x&quot;&lt;/b&gt;>]"),
	    "... and renders it: %s", b.data);
	buf_free(&b);
	buf_init(&b);
	ok(!tmpl_render(&b, "missing", &tv), "missing template reported");
	buf_free(&b);
	tmpl_free();
}

static void
test_currency(void)
{
	static const char *const zero[] = { "BIF", "CLP", "DJF", "GNF",
	    "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
	    "VUV", "XAF", "XOF", "XPF" };
	static const char *const three[] = { "BHD", "IQD", "JOD", "KWD",
	    "LYD", "OMR", "TND" };
	char	why[CURRENCY_ERROR_MAX];
	int	n0 = 0, n3 = 0;
	int64_t	v = -1;

	for (size_t i = 0; i < ARRAY_LEN(zero); i++)
		n0 += currency_exponent(zero[i]) == 0;
	for (size_t i = 0; i < ARRAY_LEN(three); i++)
		n3 += currency_exponent(three[i]) == 3;
	ok(n0 == (int)ARRAY_LEN(zero), "ISO 4217: every zero-decimal code");
	ok(n3 == (int)ARRAY_LEN(three), "ISO 4217: every three-decimal code");
	ok(currency_exponent("CLF") == 4 && currency_exponent("UYW") == 4,
	    "ISO 4217: CLF and UYW have four");
	ok(currency_exponent("GBP") == 2 && currency_exponent("USD") == 2 &&
	    currency_exponent("HUF") == 2 && currency_exponent("MGA") == 2 &&
	    currency_exponent("ZZZ") == 2 && currency_exponent(NULL) == 2,
	    "two decimals for the rest and for unknown codes");
	ok(currency_exponent("jpy") == 0, "case is ignored (Stripe's jpy)");
	/* Stripe's minimum charge table. */
	ok(currency_card_minimum("USD") == 50 &&
	    currency_card_minimum("GBP") == 30 &&
	    currency_card_minimum("EUR") == 50 &&
	    currency_card_minimum("JPY") == 50 &&
	    currency_card_minimum("HKD") == 400 &&
	    currency_card_minimum("HUF") == 17500 &&
	    currency_card_minimum("MXN") == 1000,
	    "Stripe's minimums in minor units");
	ok(currency_card_minimum("BHD") == -1 &&
	    currency_card_minimum("ZZZ") == -1, "no minimum: not listed");
	ok(currency_card_ok("GBP", 15000) && currency_card_ok("GBP", 30) &&
	    !currency_card_ok("GBP", 29) && !currency_card_ok("GBP", 0),
	    "GBP: a card from 0.30 up");
	ok(currency_card_ok("JPY", 1500) && currency_card_ok("JPY", 50) &&
	    !currency_card_ok("JPY", 49), "JPY: a card from 50 up");
	ok(!currency_card_ok("BHD", 12345) && !currency_card_ok("ZZZ", 15000),
	    "no card in a currency without a minimum");
	ok(currency_card_ok("USD", 99999999) &&
	    !currency_card_ok("USD", 100000000),
	    "no card above Stripe's eight digits");
	/* The refunds and events code (pay_jobs.c, card_refund.c) counts on
	 * it: in every currency pmb takes cards in, Stripe's unit is the
	 * currency's minor unit. */
	{
		static const char *const all[] = { "USD", "AED", "AUD", "BGN",
		    "BRL", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "HKD",
		    "HUF", "INR", "JPY", "MXN", "MYR", "NOK", "NZD", "PLN",
		    "RON", "SEK", "SGD", "THB", "ISK", "UGX", "MGA", "BHD",
		    "KWD", "CLP", "KRW", "TWD", "XOF", "ZZZ" };
		int same = 1, cards = 0;

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
			int64_t m = currency_card_minimum(all[i]), a = 0, b = 0;

			if (m <= 0 || !currency_card_ok(all[i], m * 7))
				continue;
			cards++;
			same &= currency_stripe_amount(all[i], m * 7, &a) &&
			    a == m * 7 && currency_stripe_minor(all[i], a,
			    &b) && b == m * 7;
		}
		ok(same && cards == 24, "every currency with a card (%d): "
		    "Stripe's unit is its minor unit", cards);
	}
	/* unit_amount as Stripe documents it. */
	ok(currency_stripe_amount("GBP", 15000, &v) && v == 15000,
	    "unit_amount: GBP as it is");
	ok(currency_stripe_amount("JPY", 1500, &v) && v == 1500,
	    "unit_amount: JPY as it is");
	ok(currency_stripe_amount("ISK", 5, &v) && v == 500 &&
	    currency_stripe_amount("UGX", 5, &v) && v == 500,
	    "unit_amount: ISK and UGX in two-decimal form");
	ok(currency_stripe_amount("HUF", 17550, &v) && v == 17550 &&
	    currency_stripe_amount("TWD", 1234, &v) && v == 1234,
	    "unit_amount: HUF and TWD charges keep two decimals");
	ok(currency_stripe_amount("KWD", 5120, &v) && v == 5120 &&
	    !currency_stripe_amount("KWD", 5124, &v),
	    "unit_amount: three decimals must end in 0, never rounded");
	ok(currency_stripe_amount("MGA", 150000, &v) && v == 1500 &&
	    !currency_stripe_amount("MGA", 150050, &v),
	    "unit_amount: MGA is zero-decimal at Stripe");
	ok(!currency_stripe_amount("GBP", -1, &v), "unit_amount: no negative");
	ok(currency_stripe_minor("jpy", 1500, &v) && v == 1500 &&
	    currency_stripe_minor("isk", 500, &v) && v == 5 &&
	    !currency_stripe_minor("isk", 550, &v) &&
	    currency_stripe_minor("usd", 15000, &v) && v == 15000 &&
	    currency_stripe_minor("mga", 1500, &v) && v == 150000,
	    "Stripe's amounts back into minor units");
	ok(!strcmp(currency_decimals_error(why, "JPY"), "JPY has no decimals: "
	    "enter an amount such as 150."), "JPY's error: %s", why);
	ok(!strcmp(currency_decimals_error(why, "BHD"), "BHD has at most 3 "
	    "decimals: enter an amount such as 150.000."), "BHD's error: %s",
	    why);
}

static void
test_conf(void)
{
	char err[256];

	ok(conf_parse("# comment\nsite_name = My Site \nprice = 99.50\n"
	    "currency = EUR\nanswer_hours=24\nrefund_if_late = yes\n", "t.conf",
	    err, sizeof(err)), "settings parse");
	ok(!strcmp(conf.site_name, "My Site") && conf.price == 9950 &&
	    !strcmp(conf.currency, "EUR") && conf.answer_hours == 24 &&
	    conf.refund_if_late == 1, "settings values");
	ok(conf.guarantee_days == 30 && conf.body_limit == 65536,
	    "defaults for missing keys");
	ok(!conf_parse("price = lots\n", "t.conf", err, sizeof(err)) &&
	    strstr(err, "t.conf:1:") && strstr(err, "price"),
	    "bad value names file:line: %s", err);
	ok(conf_parse("price = 1500\ncurrency = JPY\n", "t.conf", err,
	    sizeof(err)) && conf.price == 1500, "JPY: price 1500 is 1500");
	ok(conf_parse("currency = JPY\nprice = 1500\n", "t.conf", err,
	    sizeof(err)) && conf.price == 1500,
	    "JPY: the same with currency first");
	ok(conf_parse("currency = JPY\n", "t.conf", err, sizeof(err)) &&
	    conf.price == 150, "JPY: the default price is 150 yen");
	ok(conf_parse("price = 12.345\ncurrency = BHD\n", "t.conf", err,
	    sizeof(err)) && conf.price == 12345, "BHD: 12.345 is 12345");
	ok(conf_parse("price = 150\n", "t.conf", err, sizeof(err)) &&
	    conf.price == 15000, "GBP: 150 is 15000");
	ok(!conf_parse("# x\nprice = 1500.5\ncurrency = JPY\n", "t.conf", err,
	    sizeof(err)) && strstr(err, "t.conf:2: price: JPY has no "
	    "decimals"), "JPY: 1500.5 refused, naming its line: %s", err);
	ok(!conf_parse("currency = JPY\n\nprice = 1500.00\n", "t.conf", err,
	    sizeof(err)) && strstr(err, "t.conf:3: price: JPY"),
	    "JPY: 1500.00 refused after the currency too: %s", err);
	ok(!conf_parse("price = 1.234\n", "t.conf", err, sizeof(err)) &&
	    strstr(err, "t.conf:1: price: GBP has at most 2 decimals"),
	    "GBP: three decimals refused: %s", err);
	ok(!conf_parse("\n\nnope = 1\n", "t.conf", err, sizeof(err)) &&
	    strstr(err, "t.conf:3:"), "unknown key names its line: %s", err);
	ok(!conf_parse("currency = pounds\n", "t.conf", err, sizeof(err)),
	    "bad currency refused");
	ok(!conf_parse("base_url = ftp://x\n", "t.conf", err, sizeof(err)),
	    "bad base_url refused");
	ok(!conf_parse("mail_transport = pigeon\n", "t.conf", err,
	    sizeof(err)), "bad transport refused");
	ok(!conf_parse("body_limit = 10\n", "t.conf", err, sizeof(err)),
	    "out-of-range number refused");
	ok(conf_parse("base_url = https://x.example\n", "t.conf", err,
	    sizeof(err)) && conf.https == 1, "https detected");
	ok(conf_parse("", "t.conf", err, sizeof(err)), "empty file: defaults");
}

static void
test_tokens(void)
{
	unsigned char	key[32], key2[32], data[32], back[32];
	char		tok[TOKEN_TEXT_LEN + 1], bad[TOKEN_TEXT_LEN + 1];
	char		sig[128];
	struct token	t;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(key2, sizeof(key2));
	token_keys_clear();
	token_key_set(1, key);
	ok(token_make(tok, TOK_TRACK, 123, 0, NULL), "token made");
	ok(strlen(tok) == TOKEN_TEXT_LEN, "token length %zu", strlen(tok));
	ok(token_check(tok, TOK_TRACK, NULL, &t) == TOKEN_OK && t.id == 123,
	    "token verifies with its id");
	ok(token_check(tok, TOK_REFUND, NULL, &t) == TOKEN_BAD,
	    "wrong purpose refused");
	for (size_t i = 0; i < TOKEN_TEXT_LEN; i++) {
		strcpy(bad, tok);
		bad[i] = bad[i] == 'A' ? 'B' : 'A';
		ok(token_check(bad, TOK_TRACK, NULL, &t) == TOKEN_BAD,
		    "token with character %zu changed refused", i);
	}
	strcpy(bad, tok);
	bad[10] = '\0';
	ok(token_check(bad, TOK_TRACK, NULL, &t) == TOKEN_BAD,
	    "truncated token refused");
	ok(token_check("", TOK_TRACK, NULL, &t) == TOKEN_BAD,
	    "empty token refused");
	ok(token_make(tok, TOK_REFUND, 5, 1000, "open"),
	    "token with state and expiry");
	ok(token_check(tok, TOK_REFUND, "open", &t) == TOKEN_EXPIRED,
	    "expired token reported as expired");
	ok(token_check(tok, TOK_REFUND, "requested", &t) == TOKEN_BAD,
	    "changed state kills the token");
	/* Rotation: a new key signs, the old one still verifies. */
	ok(token_make(tok, TOK_TRACK, 77, 0, NULL), "token by key 1");
	token_keys_clear();
	token_key_set(2, key2);
	token_key_set(1, key);
	ok(token_check(tok, TOK_TRACK, NULL, &t) == TOKEN_OK,
	    "old key still verifies after rotation");
	ok(token_make(bad, TOK_TRACK, 77, 0, NULL) && strcmp(bad, tok) &&
	    token_check(bad, TOK_TRACK, NULL, &t) == TOKEN_OK && t.key_id == 2,
	    "new key signs");
	token_keys_clear();
	token_key_set(2, key2);
	ok(token_check(tok, TOK_TRACK, NULL, &t) == TOKEN_BAD,
	    "removed key no longer verifies");
	randombytes_buf(data, sizeof(data));
	sign_bytes(sig, sizeof(sig), data, sizeof(data));
	ok(unsign_bytes(sig, back, sizeof(back)) &&
	    !memcmp(data, back, sizeof(data)), "signed bytes round trip");
	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	ok(!unsign_bytes(sig, back, sizeof(back)), "tampered signature refused");
	token_keys_clear();
}

/* Writes text to path; returns 1 or 0. */
static int
write_text(const char *path, const char *text)
{
	FILE	*f = fopen(path, "w");
	int	 ok = f != NULL && fputs(text, f) >= 0;

	return f != NULL && fclose(f) == 0 && ok;
}

/* The key file through token.c: read, a key added on top and one
 * removed, written back with its comments, never replacing a file when
 * made new. */
static void
test_key_file(void)
{
	char		 path[] = "/tmp/pmb-keys-XXXXXX", err[256];
	char		 key1[] = "1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	char		 key3[] = "3:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA";
	char		*text = NULL, *back = NULL;
	unsigned	 ids[TOKEN_KEYS_MAX];
	size_t		 n;
	int		 fd = mkstemp(path);
	struct buf	 b;

	if (fd >= 0)
		close(fd);
	buf_init(&b);
	buf_printf(&b, "# site keys\n%s\n\n# old\n%s\n# end\n", key1, key3);
	ok(fd >= 0 && write_text(path, b.data) &&
	    token_keys_load(path, err, sizeof(err)), "a key file with "
	    "comments loads");
	n = token_key_ids(ids);
	ok(n == 2 && ids[0] == 1 && ids[1] == 3, "token_key_ids: file order");
	ok(token_key_add() == 4 && token_key_ids(ids) == 3 && ids[0] == 4,
	    "token_key_add: the next id, on top");
	ok(token_key_remove(3) && !token_key_remove(3) &&
	    token_key_ids(ids) == 2 && ids[1] == 1, "token_key_remove drops "
	    "one key, once");
	ok(token_keys_save(path, 0, err, sizeof(err)) &&
	    (text = read_file(path, NULL)) != NULL && strncmp(text, "4:", 2) ==
	    0 && strstr(text, "\n# site keys\n1:AAAA") != NULL &&
	    strstr(text, "AA\n\n# old\n# end\n") != NULL,
	    "token_keys_save writes the keys with the comments in place");
	ok(token_keys_load(path, err, sizeof(err)) &&
	    token_keys_save(path, 0, err, sizeof(err)) &&
	    (back = read_file(path, NULL)) != NULL && text != NULL &&
	    strcmp(text, back) == 0, "a key file read and written again is "
	    "the same file");
	ok(!token_keys_save(path, 1, err, sizeof(err)) &&
	    strstr(err, "exists") != NULL, "a new key file never replaces "
	    "one: %s", err);
	for (int i = 0; i < TOKEN_KEYS_MAX; i++)
		token_key_add();
	ok(token_key_ids(ids) == TOKEN_KEYS_MAX && token_key_add() == 0,
	    "token_key_add refuses a ninth key");
	token_keys_clear();
	free(text);
	free(back);
	buf_free(&b);
	unlink(path);
}

/* Removes database file and its -wal and -shm files. */
static void
unlink_db(const char *file)
{
	char f[80];

	unlink(file);
	snprintf(f, sizeof(f), "%s-wal", file);
	unlink(f);
	snprintf(f, sizeof(f), "%s-shm", file);
	unlink(f);
}

static void
test_migrations(void)
{
	char	path[] = "/tmp/pmb-unit-XXXXXX";
	char	file[64], err[256];
	int	fd = mkstemp(path);

	if (fd >= 0)
		close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.db", path);
	conf_parse("", "t", err, sizeof(err));
	ok(db_open(file, DB_CREATE, err, sizeof(err)), "database opens");
	ok(db_version() == 0, "new database at version 0");
	ok(db_migrate(err, sizeof(err)) == db_known_version(),
	    "all migrations applied");
	ok(db_version() == db_known_version(), "user_version recorded");
	ok(db_migrate(err, sizeof(err)) == 0, "second migrate applies none");
	ok(db_check_version(err, sizeof(err)), "version check passes");
	sqlite3_exec(db_handle(), "PRAGMA user_version = 999", NULL, NULL,
	    NULL);
	ok(!db_check_version(err, sizeof(err)) && strstr(err, "newer"),
	    "newer database refused: %s", err);
	ok(db_migrate(err, sizeof(err)) < 0, "migrate refuses newer database");
	db_close();
	unlink_db(file);
}

/* Runs a query of search_fts ranked by rank_fn ('pmb_rank(...)' or
 * 'bm25(...)') and writes up to max rowids, best first, into ids.
 * Returns how many, or -1 on error. */
static int
ranked_ids(const char *match, const char *rank_fn, int64_t *ids, int max)
{
	sqlite3_stmt	*s;
	char		 sql[256];
	int		 n = 0, rc;

	snprintf(sql, sizeof(sql), "SELECT rowid FROM search_fts WHERE "
	    "search_fts MATCH ?1 AND rank MATCH '%s' ORDER BY rank", rank_fn);
	if (sqlite3_prepare_v2(db_handle(), sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (n < max)
			ids[n++] = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? n : -1;
}

/* Returns pmb_hits(search_fts, col) for the document id matching match,
 * or -1 on error. */
static int
hits_of(const char *match, int64_t id, int col)
{
	sqlite3_stmt	*s;
	int		 n = -1;

	if (sqlite3_prepare_v2(db_handle(), "SELECT pmb_hits(search_fts, ?3) "
	    "FROM search_fts WHERE search_fts MATCH ?1 AND rowid = ?2", -1, &s,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, id);
	sqlite3_bind_int(s, 3, col);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* pmb_rank and pmb_hits (src/search_rank.c) on a migrated database. */
static void
test_search_rank(void)
{
	static const char *const weights = "(10.0, 10.0, 2.0, 1.0, 1.0)";
	char	path[] = "/tmp/pmb-unit-XXXXXX";
	char	file[64], err[256], pmb[64], bm25[64], sql[512];
	int64_t	a[400], b[400];
	int	fd = mkstemp(path), n, m, same;

	if (fd >= 0)
		close(fd);
	unlink(path);
	snprintf(file, sizeof(file), "%s.db", path);
	snprintf(pmb, sizeof(pmb), "pmb_rank%s", weights);
	snprintf(bm25, sizeof(bm25), "bm25%s", weights);
	db_set_hooks(search_rank_register, search_rank_reset);
	ok(db_open(file, DB_CREATE, err, sizeof(err)) &&
	    db_migrate(err, sizeof(err)) == db_known_version(),
	    "a migrated database for the search functions");
	ok(search_rank_ready(), "pmb_rank and pmb_hits are registered at "
	    "db_open by its hook");
	/* 1: a passing mention in a long reply; 2: the name; 3: five times
	 * in the question; 4: once in the question. Then 300 documents of
	 * a common word (past the sample of its document count), four of
	 * which also hold a rarer one. */
	sqlite3_exec(db_handle(), "BEGIN; INSERT INTO search_fts (rowid, name, "
	    "email, question, replies, notes) VALUES "
	    "(1, 'Ann Lee', 'ann@example.com', 'How do I price jam?', "
	    "'Price it well. ' || replace(hex(zeroblob(200)), '00', "
	    "'word ') || 'Also try a gorse honey line.', ''), "
	    "(2, 'Gorse Baker', 'gb@example.com', 'How do I sell bread?', "
	    "'', ''), "
	    "(3, 'Cy Dee', 'cy@example.com', 'Gorse gorse gorse: gorse "
	    "and gorse everywhere on my farm.', '', ''), "
	    "(4, 'Di Eve', 'di@example.com', 'My gorse hedge and my farm "
	    "shop.', '', '');", NULL, NULL, NULL);
	for (int i = 0; i < 300; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO search_fts (rowid, name, "
		    "email, question, replies, notes) VALUES (%d, 'N %d', "
		    "'n%d@example.com', 'common %s %.*s', '%s', '')", 100 + i,
		    i, i, i % 75 == 0 ? "rare" : "", i % 7, "common common "
		    "common common common common", i % 3 ? "common" : "");
		sqlite3_exec(db_handle(), sql, NULL, NULL, NULL);
	}
	sqlite3_exec(db_handle(), "COMMIT", NULL, NULL, NULL);

	n = ranked_ids("\"gorse\"", pmb, a, 400);
	ok(n == 4 && a[0] == 2 && a[1] == 3 && a[2] == 4 && a[3] == 1,
	    "pmb_rank: the name, then five times in the question, then once "
	    "in it, then a passing mention in a reply (%d: %lld %lld %lld "
	    "%lld)", n, (long long)a[0], (long long)a[1], (long long)a[2],
	    (long long)a[3]);
	m = ranked_ids("\"gorse\"", bm25, b, 400);
	ok(m == n && !memcmp(a, b, sizeof(a[0]) * (size_t)n),
	    "pmb_rank orders a word's matches as bm25 does");
	n = ranked_ids("\"common\" \"rare\"", pmb, a, 400);
	m = ranked_ids("\"common\" \"rare\"", bm25, b, 400);
	ok(n == 4 && m == n && !memcmp(a, b, sizeof(a[0]) * (size_t)n),
	    "a common word (estimated count) and a rare one: bm25's order");
	n = ranked_ids("\"common\"", pmb, a, 400);
	m = ranked_ids("\"common\"", bm25, b, 400);
	same = n == 300 && m == n;
	for (int i = 0; same && i < n; i++)
		same = a[i] == b[i];
	ok(same, "300 matches of one word: bm25's order (%d, %d)", n, m);

	ok(hits_of("\"gorse\"", 2, 0) == 1 && hits_of("\"gorse\"", 2, 2) ==
	    0, "pmb_hits: a hit in the name, none in the question");
	ok(hits_of("\"gorse\"", 3, 2) == 5 && hits_of("\"gorse\"", 3, 3) ==
	    0 && hits_of("\"gorse\"", 1, 3) == 1,
	    "pmb_hits counts the hits of a column");
	ok(hits_of("\"common\" \"rare\"", 100, 2) == 2,
	    "pmb_hits counts every phrase's hits");
	db_close();
	ok(!search_rank_ready(), "db_close forgets the registration");
	db_set_hooks(NULL, NULL);
	unlink_db(file);
}

/* One email validator (issue 14), for forms and settings. */
static void
test_email_addr(void)
{
	static const char *const good[] = { "ada@bakery.example",
	    "a.b+tag@x-y.example", "Ann@X.com", "o'neil@mail.example.co.uk" };
	static const char *const bad[] = { "a..b@example.com", ".a@x.com",
	    "a.@x.com", "a@b", "a@b@c.com", "a@.x.com", "a@x..com",
	    "a@x.com.", "a@-x.com", "a@x-.com", "a b@x.com", "a@x_y.com",
	    "@x.com", "a@", "ada <ada@x.example>", "" };
	char err[256];

	for (size_t i = 0; i < ARRAY_LEN(good); i++)
		ok(email_addr_check(good[i]) == NULL, "address %s accepted",
		    good[i]);
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ok(email_addr_check(bad[i]) != NULL, "address \"%s\" refused",
		    bad[i]);
	ok(!conf_parse("admin_email = a..b@example.com\n", "t.conf", err,
	    sizeof(err)), "setting admin_email goes through the validator");
	ok(!conf_parse("mail_from = Sam <sam@example..com>\n", "t.conf", err,
	    sizeof(err)) && conf_parse("mail_from = Sam Carter "
	    "<Sam@Example.com>\n", "t.conf", err, sizeof(err)),
	    "setting mail_from: the address in brackets is checked");
	ok(conf_parse("", "t.conf", err, sizeof(err)), "defaults again");
}

/* The key addresses are compared by (issue 14). */
static void
test_email_key(void)
{
	char *key = email_addr_key("Ann.Lee@Example.COM");

	ok(!strcmp(key, "ann.lee@example.com"), "the key lowers both parts");
	free(key);
}

/* Invisible and text-direction characters are shown (issue 14). */
static void
test_invisible(void)
{
	struct buf b;

	ok(!strcmp(esc("Invoice \xe2\x80\xaegpj.exe"),
	    "Invoice [U+202E]gpj.exe"), "html_escape shows U+202E");
	ok(!strcmp(esc("a\xe2\x80\x8b\xef\xbb\xbf\xe2\x81\xa6<b"),
	    "a[U+200B][U+FEFF][U+2066]&lt;b"),
	    "html_escape shows U+200B, U+FEFF and U+2066: %s",
	    esc("a\xe2\x80\x8b\xef\xbb\xbf\xe2\x81\xa6<b"));
	ok(!strcmp(esc("caf\xc3\xa9 \xe2\x80\x94 \xe2\x80\x99 \xef\xbc\x9d"),
	    "caf\xc3\xa9 \xe2\x80\x94 \xe2\x80\x99 \xef\xbc\x9d"),
	    "html_escape keeps visible text that shares the lead bytes");
	ok(has_invisible("x\xf3\xa0\x80\x81") && has_invisible("\xd8\x9c") &&
	    !has_invisible("\xd8\xa7 \xe2\x82\xac"),
	    "has_invisible finds tag characters and U+061C, not letters");
	buf_init(&b);
	show_invisible(&b, "\xe2\x80\x8dx\xe2\x80\x8d", "\\[", "\\]");
	ok(!strcmp(b.data, "\\[U+200D\\]x\\[U+200D\\]"),
	    "show_invisible marks with the given brackets: %s", b.data);
	buf_free(&b);
}

/* sign_bytes at its largest input: key id, data and tag are 289 bytes,
 * which a 288-byte buffer once took (the 289th byte was written by
 * libsodium, where ASan does not look). */
static void
test_sign_bytes_max(void)
{
	unsigned char	key[32], data[SIGN_BYTES_MAX + 1];
	unsigned char	back[SIGN_BYTES_MAX];
	char		sig[512];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(data, sizeof(data));
	token_keys_clear();
	token_key_set(1, key);
	sign_bytes(sig, sizeof(sig), data, SIGN_BYTES_MAX);
	ok(unsign_bytes(sig, back, sizeof(back)) &&
	    !memcmp(data, back, sizeof(back)),
	    "256 signed bytes round trip");
	sign_bytes(sig, sizeof(sig), data, SIGN_BYTES_MAX + 1);
	ok(sig[0] == '\0', "more than SIGN_BYTES_MAX bytes are refused");
	token_keys_clear();
}

/* Stripe's form encoding: nested names and values percent-encoded but
 * for the unreserved characters, in the order added. */
static void
test_stripe_params(void)
{
	struct stripe_params	p;
	struct buf		b;

	stripe_params_init(&p);
	buf_init(&b);
	stripe_params_encode(&p, &b);
	ok(b.len == 0, "no parameters encode to nothing");
	stripe_param(&p, "mode", "payment");
	stripe_param(&p, "line_items[0][price_data][currency]", "gbp");
	stripe_param_int(&p, "line_items[0][price_data][unit_amount]", 15000);
	stripe_param(&p, "line_items[0][price_data][product_data][name]",
	    "PMB-000123 \xe2\x80\x94 A & B = C+D");
	stripe_param(&p, "success_url", "https://x.example/o/T?checkout=done"
	    "&session_id={CHECKOUT_SESSION_ID}");
	stripe_param(&p, "metadata[order_id]", "-7.5_~");
	stripe_params_encode(&p, &b);
	ok(!strcmp(b.data, "mode=payment"
	    "&line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=gbp"
	    "&line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=15000"
	    "&line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D="
	    "PMB-000123%20%E2%80%94%20A%20%26%20B%20%3D%20C%2BD"
	    "&success_url=https%3A%2F%2Fx.example%2Fo%2FT%3Fcheckout%3Ddone"
	    "%26session_id%3D%7BCHECKOUT_SESSION_ID%7D"
	    "&metadata%5Border_id%5D=-7.5_~"),
	    "stripe_params_encode: %s", b.data);
	ok(p.n == 6 && !strcmp(p.v[2].value, "15000"),
	    "stripe_param_int adds the number in decimal");
	buf_free(&b);
	stripe_params_free(&p);
	ok(p.n == 0 && p.v == NULL, "stripe_params_free empties the list");
}

/* Sorting Stripe's answers: done, refused, worth another try; and the
 * secret key never in an error text. */
static void
test_stripe_answer(void)
{
	struct stripe_error	 e;
	json_t			*j;
	char			 err[256];
	const char		*s;
	int64_t			 v = 0;

	ok(conf_parse("stripe_secret_key = sk_test_S3cr3t\n", "t.conf", err,
	    sizeof(err)), "a secret key is set");
#define ANSWER(status, retry, body)					\
	stripe_answer(status, retry, body, strlen(body), &j, &e)
	ok(ANSWER(200, -1, "{\"id\":\"cs_1\",\"metadata\":{\"order_id\":"
	    "\"12\"},\"amount_total\":15000}") == STRIPE_OK && j != NULL &&
	    e.status == 200 && e.message[0] == '\0',
	    "200 with an object is done");
	s = stripe_str(j, "metadata.order_id");
	ok(s != NULL && !strcmp(s, "12"), "stripe_str follows a dotted path");
	ok(stripe_int(j, "amount_total", &v) && v == 15000,
	    "stripe_int reads an integer");
	ok(stripe_str(j, "amount_total") == NULL && !stripe_int(j, "id", &v) &&
	    stripe_str(j, "metadata.nope") == NULL &&
	    stripe_str(j, "id.deeper") == NULL && stripe_get(NULL, "x") == NULL,
	    "a missing or mistyped value is NULL or 0");
	json_decref(j);
	ok(ANSWER(200, -1, "[1]") == STRIPE_RETRY && j == NULL &&
	    ANSWER(200, -1, "<html>") == STRIPE_RETRY &&
	    ANSWER(200, -1, "{\"a\":1,\"a\":2}") == STRIPE_RETRY,
	    "200 with no JSON object, or a doubled key, may be retried");
	ok(ANSWER(402, -1, "{\"error\":{\"type\":\"card_error\",\"code\":"
	    "\"card_declined\",\"message\":\"Your card was\\ndeclined.\"}}") ==
	    STRIPE_REFUSED && e.status == 402 && !strcmp(e.type, "card_error") &&
	    !strcmp(e.code, "card_declined") &&
	    !strcmp(e.message, "Your card was declined."),
	    "402 is refused with Stripe's type, code and message on one line");
	ok(ANSWER(401, -1, "{\"error\":{\"type\":\"invalid_request_error\","
	    "\"message\":\"Invalid API Key provided: sk_test_S3cr3t\"}}") ==
	    STRIPE_REFUSED && strstr(e.message, "S3cr3t") == NULL &&
	    strstr(e.message, "sk_...") != NULL,
	    "a key echoed by Stripe is not kept: %s", e.message);
	ok(ANSWER(404, -1, "not json") == STRIPE_REFUSED &&
	    !strcmp(e.message, "HTTP 404 from Stripe") && e.code[0] == '\0',
	    "a 4xx without Stripe's error object is refused in words");
	ok(ANSWER(500, -1, "{\"error\":{\"type\":\"api_error\"}}") ==
	    STRIPE_RETRY && ANSWER(503, -1, "") == STRIPE_RETRY &&
	    ANSWER(429, -1, "{}") == STRIPE_RETRY &&
	    ANSWER(409, -1, "{}") == STRIPE_RETRY &&
	    ANSWER(302, -1, "") == STRIPE_RETRY,
	    "5xx, 429, 409 and a redirect may be retried");
	ok(ANSWER(400, 1, "{}") == STRIPE_RETRY &&
	    ANSWER(500, 0, "{}") == STRIPE_REFUSED,
	    "Stripe-Should-Retry decides when Stripe sends it");
#undef ANSWER
}

/* A call to a Stripe that does not answer: worth another try, status 0,
 * and the key in no error text. */
static void
test_stripe_unreachable(void)
{
	struct stripe_error	 e;
	struct stripe_params	 p;
	json_t			*j = NULL;
	char			 err[256];

	ok(conf_parse("stripe_secret_key = sk_test_S3cr3t\n"
	    "stripe_api_url = http://127.0.0.1:1\nstripe_timeout = 2\n",
	    "t.conf", err, sizeof(err)) && stripe_start(),
	    "Stripe at a closed port");
	stripe_params_init(&p);
	stripe_param(&p, "mode", "payment");
	ok(stripe_call("POST", "/v1/checkout/sessions", &p, "pmb-checkout-1",
	    &j, &e) == STRIPE_RETRY && j == NULL && e.status == 0 &&
	    e.message[0] != '\0' && strstr(e.message, "S3cr3t") == NULL,
	    "no answer may be retried: %s", e.message);
	ok(stripe_call("GET", "/v1/checkout/sessions/cs_x", NULL, NULL, &j,
	    &e) == STRIPE_RETRY && e.status == 0,
	    "a GET the same, with the kept handle lent again");
	ok(stripe_call("POST", "/v1/x", NULL, "bad\r\nX-Injected: 1", &j,
	    &e) == STRIPE_RETRY && strstr(e.message, "headers") != NULL,
	    "an Idempotency-Key that would break a header line is refused");
	stripe_params_free(&p);
	stripe_stop();
}

/* The Stripe-Signature header: Stripe's format, every v1 tried with
 * every secret, the time window. The expected signature was made with
 * Python's hmac (SHA-256, key "whsec_test_secret"). */
static void
test_stripe_sig(void)
{
	static const char body[] = "{\"id\":\"evt_1\"}";
	static const char good[] =
	    "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
	static const char other[] =
	    "0000000000000000000000000000000000000000000000000000000000000000";
	struct stripe_sig	 sig;
	char			 out[2 * STRIPE_SIG_BYTES + 1], h[512];
	const int64_t		 t = 1700000000;
	const size_t		 len = sizeof(body) - 1;

	stripe_sig_sign(out, "1700000000", body, len, "whsec_test_secret",
	    17);
	ok(!strcmp(out, good), "stripe_sig_sign agrees with Python's hmac");
#define VERIFY(hdr, secrets, now)					\
	stripe_sig_verify(hdr, body, len, secrets, now)
	snprintf(h, sizeof(h), "t=1700000000,v1=%s", good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_OK,
	    "a good signature verifies");
	ok(VERIFY(h, "whsec_test_secret", t + 300) == STRIPE_SIG_OK &&
	    VERIFY(h, "whsec_test_secret", t - 300) == STRIPE_SIG_OK,
	    "300 s either way is within the tolerance");
	ok(VERIFY(h, "whsec_test_secret", t + 301) == STRIPE_SIG_TOO_OLD &&
	    VERIFY(h, "whsec_test_secret", t - 301) == STRIPE_SIG_TOO_OLD,
	    "301 s is not");
	ok(VERIFY(h, "whsec_other", t) == STRIPE_SIG_NO_MATCH &&
	    VERIFY(h, "", t) == STRIPE_SIG_NO_MATCH,
	    "a wrong or no secret does not match");
	ok(VERIFY(h, "whsec_old, whsec_test_secret", t) == STRIPE_SIG_OK &&
	    VERIFY(h, "whsec_test_secret ,whsec_new", t) == STRIPE_SIG_OK,
	    "either of two secrets matches (rotation)");
	ok(VERIFY(h, "whsec_a,whsec_b,whsec_test_secret", t) ==
	    STRIPE_SIG_NO_MATCH, "a third secret is not tried");
	snprintf(h, sizeof(h), "t=1700000000,v1=%s,v0=%s,v1=%s,x=y",
	    other, other, good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_OK,
	    "any v1 of several matches; v0 and unknown keys are ignored");
	snprintf(h, sizeof(h), "t=1700000000,v1=%.63s", good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_MALFORMED,
	    "a v1 of 63 digits is no signature");
	snprintf(h, sizeof(h), "t=1700000001,v1=%s", good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_NO_MATCH,
	    "the time is signed");
	snprintf(h, sizeof(h), "t=01700000000,v1=%s", good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_NO_MATCH,
	    "t is signed as sent, not as a number");
	ok(stripe_sig_verify("t=1700000000,v1=" "248a374f50f943a28b0f6ab50faf"
	    "9a7e7e29b710fa26df9fb1618b9bf8ea9c9a", "{\"id\":\"evt_2\"}", len,
	    "whsec_test_secret", t) == STRIPE_SIG_NO_MATCH,
	    "another body does not match");
	snprintf(h, sizeof(h), "t=1,t=1700000000,v1=%s", good);
	ok(VERIFY(h, "whsec_test_secret", t) == STRIPE_SIG_MALFORMED &&
	    VERIFY(NULL, "whsec_test_secret", t) == STRIPE_SIG_MALFORMED &&
	    VERIFY("", "whsec_test_secret", t) == STRIPE_SIG_MALFORMED &&
	    VERIFY("t=abc,v1=x", "whsec_test_secret", t) ==
	    STRIPE_SIG_MALFORMED && VERIFY("v1=ab", "s", t) ==
	    STRIPE_SIG_MALFORMED && VERIFY("t=1700000000", "s", t) ==
	    STRIPE_SIG_MALFORMED, "two t, no header, no t or no v1: malformed");
#undef VERIFY
	snprintf(h, sizeof(h), " t=5, v1=%s", good);
	ok(stripe_sig_parse(h, &sig) && sig.when == 5 && sig.nv1 == 1 &&
	    !strcmp(sig.t, "5"), "spaces after the commas are allowed");
}

/* The pauses between tries: the mail's and the payment jobs' tables,
 * and the one picker both use. */
static void
test_backoff(void)
{
	static const int64_t p[] = { 5, 50 };

	ok(backoff_pick(p, 2, 0) == 5 && backoff_pick(p, 2, 1) == 5,
	    "backoff: the first pause after one failed try (or none)");
	ok(backoff_pick(p, 2, 2) == 50 && backoff_pick(p, 2, 99) == 50,
	    "backoff: past the table, its last pause");
	ok(mail_backoff(1) == 60 && mail_backoff(100) == 24 * 3600,
	    "mail: 1 min first, a day at most");
	ok(pay_backoff(1) == 10 && pay_backoff(2) == 60 &&
	    pay_backoff(100) == 24 * 3600,
	    "payment jobs: 10 s, 1 min, ... a day at most");
}

/* image_size: the three formats' headers, and every truncation of them
 * refused without reading past the end (ASan would see it). */
static void
test_image_size(void)
{
	static const unsigned char png[24] = { 0x89, 'P', 'N', 'G', '\r', '\n',
	    0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 1, 0x2c, 0, 0,
	    0, 200 };
	static const unsigned char jpeg[] = { 0xff, 0xd8, 0xff, 0xe0, 0, 4,
	    'J', 'F', 0xff, 0xff, 0xc2, 0, 11, 8, 0, 120, 0, 160 };
	static const unsigned char vp8[30] = { 'R', 'I', 'F', 'F', 22, 0, 0,
	    0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' ', 10, 0, 0, 0, 0, 0, 0,
	    0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00 };
	static const unsigned char vp8l[25] = { 'R', 'I', 'F', 'F', 17, 0, 0,
	    0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L', 5, 0, 0, 0, 0x2f,
	    /* 100 x 50: (100 - 1) | (50 - 1) << 14 */
	    0x63, 0x40, 0x0c, 0x00 };
	static const unsigned char sos_first[] = { 0xff, 0xd8, 0xff, 0xda, 0,
	    2, 0xff, 0xc0, 0, 11, 8, 0, 1, 0, 1 };
	const struct { const unsigned char *d; size_t n; int w, h; } good[] = {
		{ png, sizeof(png), 300, 200 },
		{ jpeg, sizeof(jpeg), 160, 120 },
		{ vp8, sizeof(vp8), 320, 240 },
		{ vp8l, sizeof(vp8l), 100, 50 },
	};
	int w, h, cut_ok = 1;

	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		const char *why = image_size(good[i].d, good[i].n, &w, &h);

		ok(why == NULL && w == good[i].w && h == good[i].h,
		    "image_size: %dx%d read (%s)", good[i].w, good[i].h,
		    why ? why : "ok");
		/* Every shorter copy (each ends where its size does), on the
		 * heap so that ASan knows its end. */
		for (size_t n = 0; n < good[i].n; n++) {
			unsigned char *c = xmalloc(n + 1);

			memcpy(c, good[i].d, n);
			if (image_size(c, n, &w, &h) == NULL)
				cut_ok = 0;
			free(c);
		}
	}
	ok(cut_ok, "image_size: cut-short headers give an error, never a read "
	    "past the end");
	ok(image_size(sos_first, sizeof(sos_first), &w, &h) != NULL,
	    "image_size: a JPEG's frame after its scan is not looked for");
	ok(image_size((const unsigned char *)"GIF89a.....", 11, &w, &h) !=
	    NULL, "image_size: other formats refused");
}

/* Writes into out a reply token of id with a MAC for purpose, by the
 * layout mail_token.h describes (key id 1): as mail_reply_token for
 * "reply". Returns 1, or 0 with no key 1. */
static int
reply_token_for(char *out, const char *purpose, int64_t id)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char	 raw[16];
	char		 num[24];
	unsigned	 acc = 0, bits = 0;

	snprintf(num, sizeof(num), "%lld", (long long)id);
	raw[0] = 1;
	for (int i = 0; i < 5; i++)
		raw[1 + i] = (unsigned char)(id >> (8 * (4 - i)));
	if (token_short_mac(raw + 6, 10, 1, purpose, num) != 1)
		return 0;
	for (size_t i = 0; i < sizeof(raw); i++) {
		acc = (acc << 8) | raw[i];
		for (bits += 8; bits >= 5; bits -= 5)
			*out++ = b32[(acc >> (bits - 5)) & 31];
	}
	*out++ = b32[(acc << (5 - bits)) & 31];
	*out = '\0';
	return 1;
}

/* The signed reply tokens, Message-IDs and VERP addresses of mail. */
static void
test_mail_tokens(void)
{
	unsigned char	 key[32], key2[32];
	char		 tok[MAIL_REPLY_TOKEN_LEN + 1], tok2[MAIL_REPLY_TOKEN_LEN + 1];
	char		 bad[128];
	struct buf	 b, v;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(key2, sizeof(key2));
	token_keys_clear();
	ok(!mail_reply_token(tok, 5) && *tok == '\0', "no key: no reply token");
	token_key_set(1, key);
	ok(mail_reply_token(tok, 42), "reply token made");
	ok(strlen(tok) == MAIL_REPLY_TOKEN_LEN &&
	    strspn(tok, "abcdefghijklmnopqrstuvwxyz234567") == strlen(tok),
	    "reply token: %zu lowercase base32 characters", strlen(tok));
	ok(mail_reply_verify(tok) == 42, "reply token verifies to its order");
	ok(mail_reply_token(tok2, 43) && strcmp(tok, tok2) != 0 &&
	    mail_reply_verify(tok2) == 43, "another order, another token");
	for (size_t i = 0; tok[i] != '\0'; i++)
		bad[i] = (char)toupper((unsigned char)tok[i]);
	bad[strlen(tok)] = '\0';
	ok(mail_reply_verify(bad) == 42, "case-folded reply token verifies");
	snprintf(bad, sizeof(bad), "Answers+%s@Example.COM", tok);
	ok(mail_reply_verify(bad) == 42, "reply address verifies");
	for (size_t i = 0; tok[i] != '\0'; i++) {
		strcpy(bad, tok);
		bad[i] = bad[i] == 'a' ? 'b' : 'a';
		ok(mail_reply_verify(bad) == 0,
		    "reply token with character %zu changed refused", i);
	}
	snprintf(bad, sizeof(bad), "%sa", tok);
	ok(mail_reply_verify(bad) == 0, "too long reply token refused");
	ok(reply_token_for(bad, "reply", 42) && strcmp(bad, tok) == 0,
	    "the test's encoder makes the same token");
	ok(reply_token_for(bad, "msgid", 42) && mail_reply_verify(bad) == 0,
	    "a reply token MAC'd for another purpose refused");
	snprintf(bad, sizeof(bad), "%.*s", MAIL_REPLY_TOKEN_LEN - 1, tok);
	ok(mail_reply_verify(bad) == 0, "truncated reply token refused");
	ok(mail_reply_verify("") == 0 && mail_reply_verify("@x") == 0,
	    "empty reply token refused");
	ok(!mail_reply_token(tok2, 0) && !mail_reply_token(tok2,
	    MAIL_REPLY_ID_MAX + 1), "order ids out of range refused");
	/* Message-IDs, and a signature for one purpose is no other's. */
	buf_init(&b);
	buf_init(&v);
	ok(mail_msgid_make(&b, 77, "example.com"), "Message-ID made");
	ok(strncmp(b.data, "<pmb.77.", 8) == 0 && strlen(b.data) ==
	    8 + MAIL_SIG_LEN + strlen("@example.com>"),
	    "Message-ID shape: %s", b.data);
	ok(mail_msgid_verify(b.data) == 77, "Message-ID verifies");
	snprintf(bad, sizeof(bad), "%.*s", (int)b.len - 2, b.data + 1);
	ok(mail_msgid_verify(bad) == 77, "without brackets verifies");
	for (size_t i = 0; bad[i] != '\0'; i++)
		bad[i] = (char)toupper((unsigned char)bad[i]);
	ok(mail_msgid_verify(bad) == 77, "case-folded Message-ID verifies");
	strcpy(bad, b.data);
	bad[5] = '8';
	ok(mail_msgid_verify(bad) == 0, "Message-ID with another id refused");
	strcpy(bad, b.data);
	bad[9] = bad[9] == 'a' ? 'b' : 'a';
	ok(mail_msgid_verify(bad) == 0, "tampered Message-ID refused");
	ok(mail_verp_make(&v, 77, "answers@example.com"), "VERP made");
	ok(strncmp(v.data, "answers+b-77-", 13) == 0 &&
	    strcmp(v.data + v.len - 12, "@example.com") == 0 &&
	    v.len - 12 <= 64, "VERP shape: %s", v.data);
	ok(mail_verp_verify(v.data) == 77, "VERP verifies");
	snprintf(bad, sizeof(bad), "answers+b-77-%.*s@example.com",
	    MAIL_SIG_LEN, strchr(b.data, '.') + 4);
	ok(mail_verp_verify(bad) == 0, "a Message-ID's signature is no VERP's");
	snprintf(bad, sizeof(bad), "<pmb.77.%.*s@example.com>", MAIL_SIG_LEN,
	    v.data + 13);
	ok(mail_msgid_verify(bad) == 0, "a VERP signature is no Message-ID's");
	snprintf(bad, sizeof(bad), "%s", v.data);
	bad[strlen(bad) - 13] ^= 1;
	ok(mail_verp_verify(bad) == 0, "tampered VERP refused");
	snprintf(bad, sizeof(bad), "answers+b-077-%s", v.data + 13);
	ok(mail_verp_verify(bad) == 0, "VERP id with a leading zero refused");
	/* Rotation: the old key still verifies, a removed one does not. */
	token_keys_clear();
	token_key_set(2, key2);
	token_key_set(1, key);
	ok(mail_reply_verify(tok) == 42 && mail_msgid_verify(b.data) == 77 &&
	    mail_verp_verify(v.data) == 77, "old key verifies after rotation");
	ok(mail_reply_token(tok2, 42) && strcmp(tok2, tok) != 0 &&
	    mail_reply_verify(tok2) == 42, "new key signs");
	token_keys_clear();
	token_key_set(2, key2);
	ok(mail_reply_verify(tok) == 0 && mail_msgid_verify(b.data) == 0 &&
	    mail_verp_verify(v.data) == 0, "removed key no longer verifies");
	buf_free(&b);
	buf_free(&v);
	token_keys_clear();
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_escape();
	test_utf8();
	test_urlencoded();
	test_cookies();
	test_money();
	test_currency();
	test_times();
	test_time_zones();
	test_durations();
	test_tvars();
	test_templates();
	test_mail_pairs();
	test_markdown_plain();
	test_template_lists();
	test_conf();
	test_tokens();
	test_mail_tokens();
	test_key_file();
	test_migrations();
	test_search_rank();
	test_email_addr();
	test_email_key();
	test_invisible();
	test_sign_bytes_max();
	test_stripe_params();
	test_stripe_answer();
	test_stripe_unreachable();
	test_stripe_sig();
	test_backoff();
	test_image_size();
	conf_free();
	return tap_done();
}
