/* tests/multipart.c: the multipart/form-data reader (src/multipart.c):
 * what browsers send is read the same whole or a byte at a time; every
 * malformed body is refused with its sentence. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "util.h"
#include "tap.h"

/* What the handler saw: "name|filename|is_file|data;" per part. */
struct seen {
	struct buf	 log;
	int		 stop_at;	/* begin returns -1 on this part */
	int		 n;
};

static int
on_begin(void *arg, const struct mp_part *p, const char **why)
{
	struct seen *s = arg;

	if (++s->n == s->stop_at) {
		*why = "stopped";
		return -1;
	}
	buf_printf(&s->log, "%s|%s|%d|", p->name, p->filename, p->is_file);
	return 0;
}

static int
on_data(void *arg, const char *p, size_t n, const char **why)
{
	struct seen *s = arg;

	(void)why;
	buf_append(&s->log, p, n);
	return 0;
}

static int
on_end(void *arg, const char **why)
{
	struct seen *s = arg;

	(void)why;
	buf_putc(&s->log, ';');
	return 0;
}

/* Reads body (n bytes) of ctype in pieces of step bytes (0: whole).
 * Returns what was seen ("ERR: why" on a refusal), owned by the caller. */
static char *
read_body(const char *ctype, const char *body, size_t n, size_t step,
    int stop_at)
{
	struct mp_handler	 h = { on_begin, on_data, on_end, NULL };
	struct seen		 s = { .stop_at = stop_at };
	struct multipart	*mp;
	const char		*why = "";
	int			 rc = 0;
	struct buf		 out;

	buf_init(&s.log);
	buf_init(&out);
	h.arg = &s;
	if ((mp = mp_new(ctype, &h, &why)) == NULL) {
		buf_printf(&out, "ERR: %s", why);
		buf_free(&s.log);
		return buf_take(&out);
	}
	for (size_t i = 0; i < n && rc == 0; i += step ? step : n)
		rc = mp_feed(mp, body + i, step && n - i > step ? step :
		    n - i, &why);
	if (rc == 0)
		rc = mp_finish(mp, &why);
	mp_free(mp);
	if (rc < 0)
		buf_printf(&out, "ERR: %s", why);
	else
		buf_printf(&out, "%s", s.log.data ? s.log.data : "");
	buf_free(&s.log);
	return buf_take(&out);
}

#define CT	"multipart/form-data; boundary=----WebKitFormBoundaryX3"
#define D	"------WebKitFormBoundaryX3"

/* Checks that body reads as want whole, a byte at a time and in 7s. */
static void
same(const char *what, const char *ctype, const char *body, const char *want)
{
	size_t	 steps[] = { 0, 1, 7, 100 };
	char	*got;

	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		got = read_body(ctype, body, strlen(body), steps[i], 0);
		if (!ok(strcmp(got, want) == 0, "%s (fed %zu at a time)", what,
		    steps[i]))
			printf("#   got  %s\n#   want %s\n", got, want);
		free(got);
	}
}

static void
test_good(void)
{
	same("Chromium's form: two fields and a file", CT,
	    D "\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
	    "abc\r\n"
	    D "\r\nContent-Disposition: form-data; name=\"question\"\r\n\r\n"
	    "line one\r\nline two --not a boundary\r\n--\r\n"
	    D "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"price list.pdf\"\r\nContent-Type: application/pdf\r\n"
	    "\r\n%PDF-1.4\r\n\r\n--" "----WebKitFormBoundaryX\r\n"
	    D "--\r\n",
	    "csrf_token||0|abc;question||0|line one\r\nline two --not a "
	    "boundary\r\n--;files|price list.pdf|1|%PDF-1.4\r\n\r\n------"
	    "WebKitFormBoundaryX;");
	same("no file chosen: an empty filename and no data", CT,
	    D "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n"
	    "\r\n" D "--", "files||1|;");
	same("a quoted boundary, filename* over filename, a path cut, %22",
	    "multipart/form-data; boundary=\"a'b(c)+_,-./:=?\"; charset=x",
	    "--a'b(c)+_,-./:=?\r\nContent-Disposition: form-data; "
	    "name=\"f\"; filename=\"C:\\\\dir\\\\x.png\"; "
	    "filename*=UTF-8''Zo%C3%AB%20%22q%22.png\r\n\r\nPNG\r\n"
	    "--a'b(c)+_,-./:=?\r\nContent-Disposition: form-data; name=f2; "
	    "filename=\"/etc/a%22b.txt\"\r\n\r\n\r\n--a'b(c)+_,-./:=?--\r\n"
	    "epilogue ignored",
	    "f|Zo\xc3\xab \"q\".png|1|PNG;f2|a\"b.txt|1|;");
	same("control characters leave a file name", CT,
	    D "\r\nContent-Disposition: form-data; name=\"f\"; "
	    "filename=\"a\tb\x7f.txt\"\r\n\r\nx\r\n" D "--",
	    "f|ab.txt|1|x;");
	same("an empty form", CT, D "--\r\n", "");
}

/* Checks that body is refused with a sentence containing want. */
static void
refused(const char *what, const char *ctype, const char *body,
    const char *want)
{
	size_t	 steps[] = { 0, 1, 5 };
	char	*got;

	for (size_t i = 0; i < sizeof(steps) / sizeof(*steps); i++) {
		got = read_body(ctype, body, strlen(body), steps[i], 0);
		if (!ok(strncmp(got, "ERR: ", 5) == 0 && strstr(got, want) !=
		    NULL, "%s: refused (fed %zu at a time)", what, steps[i]))
			printf("#   got %s\n", got);
		free(got);
	}
}

static void
test_bad(void)
{
	struct buf	b;
	char		*got;

	refused("not multipart", "application/x-www-form-urlencoded", "",
	    "only HTML form posts");
	refused("no boundary", "multipart/form-data", "", "no valid boundary");
	refused("a boundary with a bad character",
	    "multipart/form-data; boundary=a\x01b", "", "no valid boundary");
	refused("a boundary of 71 characters", "multipart/form-data; "
	    "boundary=12345678901234567890123456789012345678901234567890"
	    "123456789012345678901", "", "no valid boundary");
	refused("a boundary ending in a space",
	    "multipart/form-data; boundary=\"ab \"", "", "no valid boundary");
	refused("a preamble", CT, "hello\r\n" D "--\r\n",
	    "does not start with its boundary");
	refused("no Content-Disposition", CT,
	    D "\r\nContent-Type: text/plain\r\n\r\nx\r\n" D "--",
	    "no Content-Disposition");
	refused("a disposition other than form-data", CT,
	    D "\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n"
	    D "--", "malformed Content-Disposition");
	refused("no name", CT, D "\r\nContent-Disposition: form-data; "
	    "filename=\"a\"\r\n\r\nx\r\n" D "--",
	    "malformed Content-Disposition");
	refused("a name twice", CT, D "\r\nContent-Disposition: form-data; "
	    "name=a; name=b\r\n\r\nx\r\n" D "--",
	    "malformed Content-Disposition");
	refused("two Content-Dispositions", CT,
	    D "\r\nContent-Disposition: form-data; name=a\r\n"
	    "Content-Disposition: form-data; name=b\r\n\r\nx\r\n" D "--",
	    "malformed Content-Disposition");
	refused("an unterminated quote", CT,
	    D "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n"
	    D "--", "malformed Content-Disposition");
	refused("a filename* not in UTF-8", CT,
	    D "\r\nContent-Disposition: form-data; name=a; "
	    "filename*=iso-8859-1''%E9.txt\r\n\r\nx\r\n" D "--",
	    "malformed Content-Disposition");
	refused("a file name that is not UTF-8", CT,
	    D "\r\nContent-Disposition: form-data; name=a; "
	    "filename=\"\xe9.txt\"\r\n\r\nx\r\n" D "--", "not valid UTF-8");
	refused("a folded header", CT,
	    D "\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n"
	    D "--", "malformed");
	refused("a header without a colon", CT,
	    D "\r\nContent-Disposition form-data; name=a\r\n\r\nx\r\n" D "--",
	    "malformed header");
	refused("too many header lines", CT,
	    D "\r\nContent-Disposition: form-data; name=a\r\nX: 1\r\nX: 2\r\n"
	    "X: 3\r\nX: 4\r\nX: 5\r\nX: 6\r\nX: 7\r\nX: 8\r\n\r\nx\r\n" D "--",
	    "too many header lines");
	refused("garbage after a delimiter", CT,
	    D "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n" D
	    "xx", "malformed");
	refused("cut short in the data", CT,
	    D "\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz",
	    "cut short");
	refused("cut short in the headers", CT,
	    D "\r\nContent-Disposition: form-data; name=a", "cut short");
	refused("no closing delimiter", CT,
	    D "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n" D
	    "\r\n", "cut short");
	buf_init(&b);
	buf_printf(&b, "%s\r\nContent-Disposition: form-data; name=a; x=\"",
	    D);
	for (int i = 0; i < MP_MAX_HEADER; i++)
		buf_putc(&b, 'y');
	buf_printf(&b, "\"\r\n\r\nx\r\n%s--", D);
	refused("a header line over the limit", CT, b.data, "too long");
	/* One of exactly MP_MAX_HEADER bytes, its CR and LF fed apart. */
	buf_reset(&b);
	buf_printf(&b, "%s\r\nContent-Disposition: form-data; name=a\r\n"
	    "X-Long: ", D);
	while (b.len < strlen(D) + 2 + 40 + MP_MAX_HEADER)
		buf_putc(&b, 'y');
	buf_printf(&b, "\r\n\r\nx\r\n%s--", D);
	got = read_body(CT, b.data, b.len, 1, 0);
	ok(strcmp(got, "a||0|x;") == 0, "a header line of exactly %d bytes, "
	    "fed a byte at a time: %s", MP_MAX_HEADER, got);
	free(got);
	buf_reset(&b);
	for (int i = 0; i <= MP_MAX_PARTS; i++)
		buf_printf(&b, "%s\r\nContent-Disposition: form-data; "
		    "name=p%d\r\n\r\nv\r\n", D, i);
	buf_printf(&b, "%s--", D);
	refused("too many parts", CT, b.data, "too many parts");
	buf_free(&b);
	{
		static const char two[] = D "\r\nContent-Disposition: "
		    "form-data; name=a\r\n\r\nx\r\n" D "\r\nContent-"
		    "Disposition: form-data; name=b\r\n\r\ny\r\n" D "--";

		got = read_body(CT, two, sizeof(two) - 1, 0, 2);
	}
	ok(strcmp(got, "ERR: stopped") == 0, "a handler that says no stops "
	    "the body with its sentence: %s", got);
	free(got);
}

/* A big file fed in 64 KB pieces arrives whole and in order. */
static void
test_big(void)
{
	struct buf	 b, want;
	char		*got;
	size_t		 n = 3 * 1024 * 1024 + 17;

	buf_init(&b);
	buf_init(&want);
	buf_printf(&b, "%s\r\nContent-Disposition: form-data; name=f; "
	    "filename=big.bin\r\n\r\n", D);
	buf_printf(&want, "f|big.bin|1|");
	for (size_t i = 0; i < n; i++) {
		/* CR, LF and dashes, so that delimiters are nearly there. */
		char c = "\r\n-ab"[i % 5];

		buf_putc(&b, c);
		buf_putc(&want, c);
	}
	buf_printf(&b, "\r\n%s--\r\n", D);
	buf_putc(&want, ';');
	got = read_body(CT, b.data, b.len, 65536, 0);
	ok(strcmp(got, want.data) == 0, "a 3 MB file of CR, LF and dashes "
	    "arrives whole, fed 64 KB at a time");
	free(got);
	buf_free(&b);
	buf_free(&want);
}

int
main(void)
{
	test_good();
	test_bad();
	test_big();
	return tap_done();
}
