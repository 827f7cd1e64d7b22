/* mime.c: unit tests of the message builder of src/mime.c: the
 * quoted-printable and RFC 2047 encoders, header folding, addresses,
 * a whole message, and outbox.c's backoff schedule. Prints TAP. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conf.h"
#include "mime.h"
#include "outbox.h"
#include "util.h"
#include "tap.h"

/* Returns s with CR and LF shown as \r and \n, for test names (a
 * static buffer). */
static const char *
show(const char *s)
{
	static struct buf b;

	buf_reset(&b);
	for (; s != NULL && *s != '\0'; s++)
		if (*s == '\r')
			buf_puts(&b, "\\r");
		else if (*s == '\n')
			buf_puts(&b, "\\n");
		else
			buf_putc(&b, *s);
	return b.data != NULL ? b.data : "";
}

/* Returns the value of hex digit c, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes quoted-printable s (CRLF lines) into out, with LF line ends.
 * Returns 1, or 0 on a malformed escape. */
static int
qp_decode(struct buf *out, const char *s)
{
	buf_reset(out);
	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n')
			s += 3;
		else if (s[0] == '=') {
			if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
				return 0;
			buf_putc(out, (char)(hexval(s[1]) * 16 + hexval(s[2])));
			s += 3;
		} else if (s[0] == '\r' && s[1] == '\n') {
			buf_putc(out, '\n');
			s += 2;
		} else
			buf_putc(out, *s++);
	}
	return 1;
}

/* Returns 1 if every line of s ends with CRLF or ends s, has no bare CR
 * or LF, and is at most max characters long. */
static int
lines_ok(const char *s, size_t max)
{
	size_t col = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\r') {
			if (s[1] != '\n')
				return 0;
			s++;
			col = 0;
		} else if (*s == '\n')
			return 0;
		else if (++col > max)
			return 0;
	}
	return 1;
}

/* Decodes a header line "Name: value" made by the encoder: unfolds it
 * and decodes its RFC 2047 Q words (whitespace between two adjacent
 * words dropped, as RFC 2047 says). Returns the value, or NULL. */
static char *
header_decode(const char *h)
{
	struct buf	 out, unf;
	const char	*p;
	int		 prev_word = 0;

	buf_init(&out);
	buf_init(&unf);
	for (p = h; *p != '\0'; p++)
		if (p[0] == '\r' && p[1] == '\n')
			p++;
		else
			buf_putc(&unf, *p);
	if ((p = strchr(unf.data, ':')) == NULL) {
		buf_free(&unf);
		return NULL;
	}
	p += 2;
	while (*p != '\0') {
		const char	*sp = p;
		size_t		 n;

		while (*p == ' ')
			p++;
		if (strncmp(p, "=?UTF-8?Q?", 10) == 0) {
			const char *end = strstr(p + 10, "?=");

			if (end == NULL)
				break;
			if (!prev_word)
				buf_append(&out, sp, (size_t)(p - sp));
			for (const char *q = p + 10; q < end; q++) {
				if (*q == '_')
					buf_putc(&out, ' ');
				else if (*q == '=' && q + 2 < end) {
					buf_putc(&out, (char)(hexval(q[1]) *
					    16 + hexval(q[2])));
					q += 2;
				} else
					buf_putc(&out, *q);
			}
			p = end + 2;
			prev_word = 1;
		} else {
			buf_append(&out, sp, (size_t)(p - sp));
			n = strcspn(p, " ");
			buf_append(&out, p, n);
			p += n;
			prev_word = 0;
		}
	}
	buf_free(&unf);
	return buf_take(&out);
}

static void
test_qp(void)
{
	struct buf	 b, d;
	const char	*cases[] = {
		"plain text\nsecond line\n",
		"Grüße, Zoë! 100% = sure\r\nline two",
		"trailing space \ntrailing tab\t\n",
		".starts with a dot\nFrom the start\n",
		"a=b\n\n\nthree blank lines above",
		"long: https://example.com/o/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAA end\n",
		"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé",
		"",
	};

	buf_init(&b);
	buf_init(&d);
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf want;

		buf_reset(&b);
		mime_qp(&b, cases[i]);
		buf_init(&want);
		for (const char *p = cases[i]; *p != '\0'; p++)
			if (!(p[0] == '\r' && p[1] == '\n'))
				buf_putc(&want, *p);
		ok(lines_ok(b.data ? b.data : "", 76),
		    "qp case %zu: CRLF lines of at most 76", i);
		ok(qp_decode(&d, b.data ? b.data : "") &&
		    !strcmp(d.data ? d.data : "", want.data ? want.data : ""),
		    "qp case %zu decodes back to the text", i);
		for (const unsigned char *p = (unsigned char *)b.data;
		    p != NULL && *p != '\0'; p++)
			if (*p > 126 || (*p < 32 && *p != '\r' && *p != '\n')) {
				ok(0, "qp case %zu is 7-bit printable", i);
				break;
			}
		buf_free(&want);
	}
	buf_reset(&b);
	mime_qp(&b, "end space \n.dot\nFrom me\n=");
	ok(!strcmp(b.data, "end space=20\r\n=2Edot\r\n=46rom me\r\n=3D"),
	    "qp encodes trailing space, leading dot, From, '=': %s", show(b.data));
	buf_reset(&b);
	mime_qp(&b, "é");
	ok(!strcmp(b.data, "=C3=A9"), "qp encodes UTF-8 bytes");
	buf_free(&b);
	buf_free(&d);
}

static void
test_headers(void)
{
	struct buf	 b;
	char		*v;
	const char	*evil = "Zo\xc3\xab \xc3\x9cnal\r\nBcc: x@evil.example";

	buf_init(&b);
	mime_header_text(&b, "Subject", "Your question PMB-000001 is in");
	ok(!strcmp(b.data, "Subject: Your question PMB-000001 is in\r\n"),
	    "an ASCII subject goes as it is");

	buf_reset(&b);
	mime_header_text(&b, "Subject", evil);
	ok(strstr(b.data, "\nBcc") == NULL && strstr(b.data, "Bcc:") == NULL,
	    "no Bcc header from a subject with CR LF: %s", show(b.data));
	ok(lines_ok(b.data, 76), "encoded subject lines are short");
	ok(strncmp(b.data, "Subject: =?UTF-8?Q?", 19) == 0,
	    "a non-ASCII subject is an encoded word");
	v = header_decode(b.data);
	ok(v != NULL && !strcmp(v, "Zo\xc3\xab \xc3\x9cnal Bcc: x@evil.example"),
	    "it decodes to the text with CR LF as one space: %s", show(v));
	free(v);

	buf_reset(&b);
	mime_header_text(&b, "Subject", "a\nBcc: x@evil.example");
	ok(!strcmp(b.data, "Subject: a Bcc: x@evil.example\r\n"),
	    "ASCII with LF: flattened, one header: %s", show(b.data));

	buf_reset(&b);
	mime_header_text(&b, "Subject", "=?UTF-8?Q?fake?= word");
	v = header_decode(b.data);
	ok(v != NULL && !strcmp(v, "=?UTF-8?Q?fake?= word"),
	    "text that looks like an encoded word is encoded: %s", show(b.data));
	free(v);

	buf_reset(&b);
	mime_header_text(&b, "Subject", "A long subject line that goes on "
	    "and on and on, past the seventy-six columns of a header line");
	ok(lines_ok(b.data, 76) && strstr(b.data, "\r\n ") != NULL,
	    "a long ASCII subject is folded: %s", show(b.data));
	v = header_decode(b.data);
	ok(v != NULL && !strcmp(v, "A long subject line that goes on and on "
	    "and on, past the seventy-six columns of a header line"),
	    "and unfolds to the same text");
	free(v);

	buf_reset(&b);
	{
		char	long_utf8[400] = "";

		for (int i = 0; i < 40; i++)
			strcat(long_utf8, "\xe2\x82\xac\xc3\xa9 ");
		mime_header_text(&b, "Subject", long_utf8);
		v = header_decode(b.data);
		ok(lines_ok(b.data, 76) && v != NULL && !strcmp(v, long_utf8),
		    "a long UTF-8 subject folds into words and decodes back");
		free(v);
	}

	buf_reset(&b);
	mime_header_text(&b, "Subject", "bad \xff\xfe utf-8");
	ok(!strcmp(b.data, "Subject: bad ?? utf-8\r\n"),
	    "invalid UTF-8 becomes '?': %s", show(b.data));

	buf_reset(&b);
	mime_header_mailbox(&b, "To", "Ada \"The Baker\"", "ada@bakery.example");
	ok(!strcmp(b.data, "To: \"Ada \\\"The Baker\\\"\" <ada@bakery.example>\r\n"),
	    "an ASCII name is a quoted string: %s", show(b.data));
	buf_reset(&b);
	mime_header_mailbox(&b, "To", evil, "zoe@example.com");
	ok(strstr(b.data, "Bcc:") == NULL && lines_ok(b.data, 76),
	    "a name with CR LF makes no header: %s", show(b.data));
	ok(strstr(b.data, "<zoe@example.com>\r\n") != NULL,
	    "the address ends the header");
	buf_reset(&b);
	mime_header_mailbox(&b, "To", "", "zoe@example.com");
	ok(!strcmp(b.data, "To: zoe@example.com\r\n"), "no name: the address");
	buf_free(&b);
}

static void
test_addresses(void)
{
	char *n, *a;

	ok(mime_addr_ok("ada@bakery.example"), "a plain address is fine");
	ok(mime_addr_ok("a.b+tag@x-y.example"), "dots, plus, hyphen are fine");
	ok(!mime_addr_ok("ada@bakery.example\r\nBcc: x@y"), "CR LF refused");
	ok(!mime_addr_ok("ada <ada@x.example>"), "a name refused");
	ok(!mime_addr_ok("a@b@c"), "two @ refused");
	ok(!mime_addr_ok("@x.example"), "empty local part refused");
	ok(!mime_addr_ok("a@"), "empty domain refused");
	ok(!mime_addr_ok("z\xc3\xab@x.example"), "non-ASCII refused");
	ok(!mime_addr_ok("a..b@x.example"), "double dot refused");
	ok(mime_parse_mailbox("Sam Carter <sam@example.com>", &n, &a) &&
	    !strcmp(n, "Sam Carter") && !strcmp(a, "sam@example.com"),
	    "Name <addr> parses");
	free(n);
	free(a);
	ok(mime_parse_mailbox("\"Carter, Sam\" <sam@example.com>", &n, &a) &&
	    !strcmp(n, "Carter, Sam"), "a quoted name loses its quotes");
	free(n);
	free(a);
	ok(mime_parse_mailbox(" sam@example.com ", &n, &a) && !strcmp(n, "") &&
	    !strcmp(a, "sam@example.com"), "a bare address parses");
	free(n);
	free(a);
	ok(!mime_parse_mailbox("Sam <sam@example.com> x", &n, &a),
	    "text after the address refused");
	free(n);
	free(a);
}

static void
test_backoff(void)
{
	ok(mail_backoff(1) == 60 && mail_backoff(2) == 300 &&
	    mail_backoff(3) == 1800 && mail_backoff(4) == 7200 &&
	    mail_backoff(5) == 21600, "backoff: 1 min, 5 min, 30 min, 2 h, 6 h");
	ok(mail_backoff(6) == 43200 && mail_backoff(7) == 86400 &&
	    mail_backoff(50) == 86400, "then 12 h, then a day at most");
}

static void
test_build(void)
{
	struct buf	 b, b2;
	const char	*why = NULL;
	char		 err[256];
	int		 rc;
	struct mail_msg	 m = {
		.id = 42, .kind = "confirmation",
		.to_addr = "zoe@example.com",
		.to_name = "Zo\xc3\xab \xc3\x9cnal\r\nBcc: x@evil.example",
		.subject = "Gr\xc3\xbc\xc3\x9f" "e\nBcc: y@evil.example",
		.body_text = "Hello Zo\xc3\xab,\n\nhttps://x.example/o/abc\n",
		.body_html = "<p>Hello Zo\xc3\xab</p>\n",
		.created_at = 1764133357,
	};

	ok(conf_parse("mail_from = Sam Carter <sam@mail.example>\n"
	    "admin_email = help@mail.example\n", "test", err, sizeof(err)),
	    "settings parse");
	buf_init(&b);
	buf_init(&b2);
	ok(mail_build(&b, &m, &why), "a message builds");
	ok(mail_build(&b2, &m, &why) && !strcmp(b.data, b2.data),
	    "building twice gives the same bytes");
	ok(lines_ok(b.data, 78), "every line ends CRLF and is short");
	ok(strncmp(b.data, "Date: Wed, 26 Nov 2025 05:02:37 +0000\r\n", 39) == 0,
	    "Date is when it was queued: %.40s", show(b.data));
	ok(strstr(b.data, "@mail.example>\r\nFrom: \"Sam Carter\" "
	    "<sam@mail.example>\r\nReply-To: help@mail.example\r\nTo: ") != NULL,
	    "Message-ID at the domain of mail_from, From, Reply-To");
	ok(strstr(b.data, "\nBcc") == NULL, "no Bcc header");
	ok(strstr(b.data, "MIME-Version: 1.0\r\n") != NULL &&
	    strstr(b.data, "Content-Type: multipart/alternative;") != NULL &&
	    strstr(b.data, "Content-Type: text/plain; charset=UTF-8") != NULL &&
	    strstr(b.data, "Content-Type: text/html; charset=UTF-8") != NULL,
	    "multipart/alternative of text and HTML");
	ok(strstr(b.data, "Hello Zo=C3=AB,\r\n\r\nhttps://x.example/o/abc") !=
	    NULL, "the text part is quoted-printable");
	m.body_html = "";
	buf_reset(&b);
	ok(mail_build(&b, &m, &why) && strstr(b.data, "multipart") == NULL &&
	    strstr(b.data, "Content-Type: text/plain; charset=UTF-8") != NULL,
	    "without HTML: one text/plain part");
	m.to_addr = "bad address@example.com";
	why = NULL;
	rc = mail_build(&b, &m, &why);
	ok(!rc && why != NULL, "a bad recipient is refused: %s",
	    why != NULL ? why : "");
	buf_free(&b);
	buf_free(&b2);
	conf_free();
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_qp();
	test_headers();
	test_addresses();
	test_backoff();
	test_build();
	return tap_done();
}
