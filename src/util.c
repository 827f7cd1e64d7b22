/* util.c: memory, growable buffers, escaping, UTF-8 and time helpers. */
#include <sys/file.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Aborts the process: used only when memory cannot be had. */
static void
oom(void)
{
	fputs("pmb: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		oom();
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

#define BUF_START	256	/* a new buffer's least size */
#define LOG_STAMP_LEN	20	/* "2026-11-26T05:02:37Z" */

void
buf_reserve(struct buf *b, size_t n)
{
	size_t need;

	if (n > SIZE_MAX / 2 - b->len)
		oom();
	need = b->len + n + 1;
	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = need > BUF_START ? need : BUF_START;
	while (b->cap < need)
		b->cap *= 2;
	b->data = xrealloc(b->data, b->cap);
}

void
buf_append(struct buf *b, const char *s, size_t n)
{
	/* Most appends fit: call buf_reserve only when one does not. */
	if (n >= b->cap - b->len)
		buf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void
buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

#define PRINTF_SHORT	256	/* most formatted pieces fit in this */

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	char	short_out[PRINTF_SHORT];
	va_list	ap2;
	int	n;

	/* One pass for a short result (ids, times, links: most of them);
	 * only a longer one is measured and then formatted again. */
	va_copy(ap2, ap);
	n = vsnprintf(short_out, sizeof(short_out), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(short_out)) {
		buf_append(b, short_out, (size_t)n);
		return;
	}
	buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *
buf_take(struct buf *b)
{
	char *s = b->data != NULL ? b->data : xstrdup("");

	buf_init(b);
	return s;
}

void
buf_replace(struct buf *b, const char *s, const char *from, const char *to)
{
	size_t		 n = strlen(from), m = strlen(to);
	const char	*hit;

	while ((hit = strstr(s, from)) != NULL) {
		buf_append(b, s, (size_t)(hit - s));
		buf_append(b, to, m);
		s = hit + n;
	}
	buf_puts(b, s);
}

/* The lead bytes of the characters utf8_invisible finds. */
#define INVISIBLE_LEADS	"\xd8\xe1\xe2\xef\xf3"

/* Appends code point cp as "U+XXXX" between open and close. */
static void
mark_invisible(struct buf *b, uint32_t cp, const char *open,
    const char *close)
{
	buf_puts(b, open);
	buf_printf(b, "U+%04X", (unsigned)cp);
	buf_puts(b, close);
}

void
html_escape(struct buf *b, const char *s)
{
	for (;;) {
		/* Copy the run of plain text at once (strcspn is vectorised). */
		size_t		n = strcspn(s, "&<>\"'" INVISIBLE_LEADS);
		uint32_t	cp;

		buf_append(b, s, n);
		s += n;
		switch (*s) {
		case '\0': return;
		case '&': buf_append(b, "&amp;", 5); break;
		case '<': buf_append(b, "&lt;", 4); break;
		case '>': buf_append(b, "&gt;", 4); break;
		case '"': buf_append(b, "&quot;", 6); break;
		case '\'': buf_append(b, "&#39;", 5); break;
		default:
			if ((n = utf8_invisible(s, &cp)) > 0) {
				mark_invisible(b, cp, "[", "]");
				s += n;
				continue;
			}
			buf_putc(b, *s);
			break;
		}
		s++;
	}
}

size_t
utf8_invisible(const char *p, uint32_t *cp)
{
	const unsigned char	*s = (const unsigned char *)p;
	size_t			 n;
	uint32_t		 c;

	if (s[0] == 0xd8 || s[0] == 0xe1 || s[0] == 0xe2 || s[0] == 0xef)
		n = s[0] == 0xd8 ? 2 : 3;
	else if (s[0] == 0xf3)
		n = 4;
	else
		return 0;
	c = s[0] & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	*cp = c;
	return c == 0x061c || c == 0x180e || (c >= 0x200b && c <= 0x200f) ||
	    (c >= 0x202a && c <= 0x202e) || (c >= 0x2060 && c <= 0x2064) ||
	    (c >= 0x2066 && c <= 0x206f) || c == 0xfeff ||
	    (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe007f) ?
	    n : 0;
}

int
has_invisible(const char *s)
{
	uint32_t cp;

	while ((s = strpbrk(s, INVISIBLE_LEADS)) != NULL)
		if (utf8_invisible(s++, &cp) > 0)
			return 1;
	return 0;
}

void
show_invisible(struct buf *b, const char *s, const char *open,
    const char *close)
{
	for (;;) {
		size_t		n = strcspn(s, INVISIBLE_LEADS);
		uint32_t	cp;

		buf_append(b, s, n);
		s += n;
		if (*s == '\0')
			return;
		if ((n = utf8_invisible(s, &cp)) > 0) {
			mark_invisible(b, cp, open, close);
			s += n;
		} else
			buf_putc(b, *s++);
	}
}

void
url_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~')
			buf_putc(b, (char)c);
		else {
			buf_putc(b, '%');
			buf_putc(b, hex[c >> 4]);
			buf_putc(b, hex[c & 15]);
		}
	}
}

int
word_in_list(const char *list, const char *word, const char *seps)
{
	size_t n = strlen(word);

	while (*list != '\0') {
		size_t w;

		list += strspn(list, seps);
		w = strcspn(list, seps);
		if (w > 0 && w == n && strncmp(list, word, n) == 0)
			return 1;
		list += w;
	}
	return 0;
}

int
utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t need;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else
			return 0;
		if (n - i <= need)
			return 0;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

int
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

int
has_ctl_text(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') ||
		    c == 0x7f)
			return 1;
	}
	return 0;
}

int
ascii_word(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr(extra, c) != NULL)))
			return 0;
	}
	return 1;
}

size_t
utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0' || *s == ' ' || *s == '+')
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return 0;
	*out = v;
	return 1;
}

int
parse_money(const char *s, int exponent, int64_t *out)
{
	int64_t	whole = 0, frac = 0, unit = 1, limit;
	int	digits = 0, fdigits = 0;

	if (s == NULL || *s == '\0' || exponent < 0 || exponent > 8)
		return 0;
	for (int i = 0; i < exponent; i++)
		unit *= 10;
	/* whole * unit + frac, with frac < unit, must fit. */
	limit = INT64_MAX / unit - 1;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		if (whole > (limit - 9) / 10)
			return 0;
		whole = whole * 10 + (*s - '0');
	}
	if (digits == 0)
		return 0;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, fdigits++) {
			if (fdigits == exponent)
				return 0;
			frac = frac * 10 + (*s - '0');
		}
		if (fdigits == 0)
			return 0;
		for (int i = fdigits; i < exponent; i++)
			frac *= 10;
	}
	if (*s != '\0')
		return 0;
	*out = whole * unit + frac;
	return 1;
}

/* Writes the decimal digits of v (at least min of them, zeros in front)
 * so that they end just before end; returns where they start. */
static char *
put_digits(char *end, uint64_t v, int min)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
		min--;
	} while (v > 0 || min > 0);
	return end;
}

char *
int_text(char out[INT_TEXT_MAX], int64_t v)
{
	char	 s[INT_TEXT_MAX], *p;

	p = put_digits(s + sizeof(s) - 1, v < 0 ? -(uint64_t)v : (uint64_t)v, 1);
	if (v < 0)
		*--p = '-';
	s[sizeof(s) - 1] = '\0';
	memcpy(out, p, (size_t)(s + sizeof(s) - p));
	return out;
}

char *
money_text(char out[MONEY_TEXT_MAX], int64_t minor, int exponent)
{
	uint64_t	 v = minor < 0 ? -(uint64_t)minor : (uint64_t)minor;
	uint64_t	 unit = 1;
	char		 s[MONEY_TEXT_MAX], *end = s + sizeof(s) - 1, *p;

	exponent = exponent < 0 ? 0 : exponent > 8 ? 8 : exponent;
	for (int i = 0; i < exponent; i++)
		unit *= 10;
	/* "%lld.%0*lld" of the whole units and the minor ones, by hand;
	 * no point for a currency without decimals. */
	*end = '\0';
	p = end;
	if (unit > 1) {
		p = put_digits(p, v % unit, exponent);
		*--p = '.';
	}
	p = put_digits(p, v / unit, 1);
	if (minor < 0)
		*--p = '-';
	memcpy(out, p, (size_t)(end + 1 - p));
	return out;
}

void
fmt_money(struct buf *b, int64_t minor, int exponent)
{
	char s[MONEY_TEXT_MAX];

	buf_puts(b, money_text(s, minor, exponent));
}

int64_t
now_unix(void)
{
	/* The environment is read once: getenv walks all of it, and a page
	 * asks for the time several times. (pmb never sets the variable.) */
	static int		 looked;
	static const char	*t;
	int64_t			 v;

	if (!looked) {
		t = getenv("PMB_TEST_NOW");
		looked = 1;
	}
	if (t != NULL && parse_int64(t, 0, INT64_MAX, &v))
		return v;
	return (int64_t)time(NULL);
}

double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Writes t formatted with strftime format fmt into out (TIME_TEXT_MAX
 * bytes), in UTC, or with local set in the zone TZ names (tz_use); "?"
 * if it cannot; returns out. Callers pass only literal formats. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *
zone_text(char *out, int64_t t, const char *fmt, int local)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if ((local ? localtime_r(&tt, &tm) : gmtime_r(&tt, &tm)) == NULL ||
	    strftime(out, TIME_TEXT_MAX, fmt, &tm) == 0)
		strcpy(out, "?");
	return out;
}
#pragma GCC diagnostic pop

/* 1 when times are shown in a zone other than UTC (time_zone_local). */
static int time_local;

void
time_zone_local(int on)
{
	time_local = on;
}

/* Appends t formatted with strftime format fmt in UTC. */
static void
fmt_utc(struct buf *b, int64_t t, const char *fmt)
{
	char s[TIME_TEXT_MAX];

	buf_puts(b, zone_text(s, t, fmt, 0));
}

/* Writes v (0 to 99) as two digits at p; returns p + 2. */
static char *
put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
	return p + 2;
}

#define HOUR	3600
#define DAY	86400

/* Splits t into UTC fields for the formatters below. Returns 0 when the
 * year has not four digits (they leave that to strftime). */
static int
utc_fields(int64_t t, struct tm *tm)
{
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, tm) == NULL)
		return 0;
	return tm->tm_year + 1900 >= 1000 && tm->tm_year + 1900 <= 9999;
}

const char *
month_abbr(int mon)
{
	static const char *const month[12] = { "Jan", "Feb", "Mar", "Apr",
	    "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	return mon >= 0 && mon < 12 ? month[mon] : "???";
}

void
fmt_duration(struct buf *b, int64_t s, enum duration_style style)
{
	const char	*sign = s < 0 ? "-" : "";
	long long	 m;

	if (s < 0)
		s = -s;
	if (style == DURATION_MINUTES) {
		m = (long long)(s / 60 + (s % 60 != 0));
		buf_printf(b, "%s%lld minute%s", sign, m, m == 1 ? "" : "s");
	} else if (s < HOUR)
		buf_printf(b, "%s%lld min", sign, (long long)(s / 60));
	else if (s < 2 * DAY)
		buf_printf(b, "%s%lld h %lld min", sign, (long long)(s / HOUR),
		    (long long)(s % HOUR / 60));
	else
		buf_printf(b, "%s%lld d %lld h", sign, (long long)(s / DAY),
		    (long long)(s % DAY / HOUR));
}

void
fmt_time(struct buf *b, int64_t t)
{
	char s[TIME_TEXT_MAX];

	buf_puts(b, time_text(s, t));
}

/* The longest zone abbreviation time_text writes by hand; a longer one
 * (none in tzdata has more than 6 letters) goes through strftime. */
#define ZONE_ABBR_MAX	15

/* Writes tm (a four-digit year) as strftime's "%-d %b %Y, %H:%M ABBR"
 * into out, by hand; returns out. */
static char *
tm_text(char out[TIME_TEXT_MAX], const struct tm *tm, const char *abbr,
    size_t abbrlen)
{
	char *p = out;

	if (tm->tm_mday >= 10)
		*p++ = (char)('0' + tm->tm_mday / 10);
	*p++ = (char)('0' + tm->tm_mday % 10);
	*p++ = ' ';
	memcpy(p, month_abbr(tm->tm_mon), 3);
	p += 3;
	*p++ = ' ';
	p = put2(put2(p, (tm->tm_year + 1900) / 100),
	    (tm->tm_year + 1900) % 100);
	*p++ = ',';
	*p++ = ' ';
	p = put2(p, tm->tm_hour);
	*p++ = ':';
	p = put2(p, tm->tm_min);
	*p++ = ' ';
	memcpy(p, abbr, abbrlen);
	p[abbrlen] = '\0';
	return out;
}

/* Written by hand, as strftime in the C locale: a hot path
 * (bench/README.md, 21 and 22). In UTC from gmtime_r; in any other zone
 * from localtime_r, with the zone's abbreviation ("BST", "EST") from its
 * tm_zone. Years without four digits go through strftime. */
char *
time_text(char out[TIME_TEXT_MAX], int64_t t)
{
	struct tm	tm;
	time_t		tt = (time_t)t;
	size_t		n;

	if (time_local) {
		if (localtime_r(&tt, &tm) == NULL || tm.tm_zone == NULL ||
		    (n = strlen(tm.tm_zone)) > ZONE_ABBR_MAX ||
		    tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
			return zone_text(out, t, "%-d %b %Y, %H:%M %Z", 1);
		return tm_text(out, &tm, tm.tm_zone, n);
	}
	if (!utc_fields(t, &tm))
		return zone_text(out, t, "%-d %b %Y, %H:%M UTC", 0);
	return tm_text(out, &tm, "UTC", 3);
}

/* Returns the first second of local date y-m-d (tm's fields, normalised
 * by mktime: a day 32 is the next month's first): midnight, or where a
 * change skips midnight, the first second after the gap (glibc's mktime
 * reads a time in a gap with the offset before it). -1 if mktime
 * cannot. */
static int64_t
local_midnight(int y, int m, int d)
{
	struct tm	tm = { .tm_year = y, .tm_mon = m, .tm_mday = d,
			    .tm_isdst = -1 };
	time_t		c = mktime(&tm);

	return c == (time_t)-1 ? -1 : (int64_t)c;
}

int
time_day(int64_t t, int64_t *start, int64_t *next)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (!time_local) {
		*start = t - ((t % DAY) + DAY) % DAY;
		*next = *start + DAY;
		return 1;
	}
	if (localtime_r(&tt, &tm) == NULL)
		return 0;
	*start = local_midnight(tm.tm_year, tm.tm_mon, tm.tm_mday);
	*next = local_midnight(tm.tm_year, tm.tm_mon, tm.tm_mday + 1);
	return *start != -1 && *next != -1 && *start <= t && t < *next;
}

void
fmt_year(struct buf *b, int64_t t)
{
	fmt_utc(b, t, "%Y");
}

void
fmt_date(struct buf *b, int64_t t)
{
	char s[TIME_TEXT_MAX];

	if (time_local)
		buf_puts(b, zone_text(s, t, "%-d %B %Y", 1));
	else
		fmt_utc(b, t, "%-d %B %Y");
}

/* By hand, as strftime in the C locale: a hot path (bench/README.md, 21). */
void
fmt_iso(struct buf *b, int64_t t)
{
	struct tm	tm;
	char		s[32], *p = s;

	if (!utc_fields(t, &tm)) {
		fmt_utc(b, t, "%Y-%m-%dT%H:%M:%SZ");
		return;
	}
	p = put2(put2(p, (tm.tm_year + 1900) / 100), (tm.tm_year + 1900) % 100);
	*p++ = '-';
	p = put2(p, tm.tm_mon + 1);
	*p++ = '-';
	p = put2(p, tm.tm_mday);
	*p++ = 'T';
	p = put2(p, tm.tm_hour);
	*p++ = ':';
	p = put2(p, tm.tm_min);
	*p++ = ':';
	p = put2(p, tm.tm_sec);
	*p++ = 'Z';
	buf_append(b, s, (size_t)(p - s));
}

/* Writes the log line of message msg (n bytes): time stamp, message,
 * newline. */
static void
log_write(const char *msg, size_t n)
{
	struct buf b;

	buf_init(&b);
	buf_reserve(&b, n + LOG_STAMP_LEN + 2);
	fmt_iso(&b, (int64_t)time(NULL));
	buf_putc(&b, ' ');
	buf_append(&b, msg, n);
	buf_putc(&b, '\n');
	fwrite(b.data, 1, b.len, stderr);
	fflush(stderr);
	buf_free(&b);
}

void
log_msg(const char *fmt, ...)
{
	struct buf	b;
	va_list		ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	log_write(b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
}

void
log_text(const char *s)
{
	log_write(s, strlen(s));
}

char *
read_file(const char *path, size_t *lenp)
{
	FILE		*f;
	struct buf	 b;
	char		 chunk[8192];
	size_t		 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	if (ferror(f)) {
		fclose(f);
		buf_free(&b);
		return NULL;
	}
	fclose(f);
	if (lenp != NULL)
		*lenp = b.len;
	return buf_take(&b);
}

int64_t
backoff_pick(const int64_t *pause, size_t npause, int64_t tries)
{
	if (tries < 1)
		tries = 1;
	if (tries > (int64_t)npause)
		tries = (int64_t)npause;
	return pause[tries - 1];
}

char *
path_folder(const char *path)
{
	char	*dir = xstrdup(path), *slash = strrchr(dir, '/');

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		strcpy(dir, ".");
	return dir;
}

void
sync_folder_of(const char *path)
{
	char	*dir = path_folder(path);
	int	 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

int
folder_lock(const char *path, int op)
{
	char	*dir = path_folder(path);
	int	 fd, e;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd >= 0 && flock(fd, op) != 0) {
		e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	return fd;
}

int
write_all(int fd, const char *data, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, data, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		data += w;
		n -= (size_t)w;
	}
	return 1;
}
