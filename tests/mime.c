/* mime.c: unit tests of the message builder of src/mime.c (GMime): each
 * message is built with mail_build and read back with GMime's parser, so
 * the tests check what a mail client sees (text, HTML, subject, names)
 * and what the wire carries (CRLF only, 7-bit, line lengths, one header
 * per line); the addresses, and outbox.c's backoff schedule. Prints TAP. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
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

/* Returns 1 if every line of s ends with CRLF (the last one too), has
 * no bare CR or LF, only printable ASCII or tab, and is at most max
 * characters long; from the first empty line on (the body), at most
 * body_max. */
static int
lines_ok(const char *s, size_t max, size_t body_max)
{
	size_t	col = 0;
	int	body = 0;

	for (; *s != '\0'; s++) {
		if (*s == '\r') {
			if (s[1] != '\n')
				return 0;
			s++;
			if (col == 0)
				body = 1;
			col = 0;
		} else if (*s == '\n' || ((unsigned char)*s < 0x20 &&
		    *s != '\t') || (unsigned char)*s > 0x7e)
			return 0;
		else if (++col > (body ? body_max : max))
			return 0;
	}
	return col == 0;
}

/* Returns the message built from m with the test's settings (a string
 * to free), or NULL. */
static char *
build(const struct mail_msg *m)
{
	struct buf	 b;
	const char	*why = NULL;

	buf_init(&b);
	if (!mail_build(&b, m, &why)) {
		buf_free(&b);
		return NULL;
	}
	return buf_take(&b);
}

/* Returns raw parsed by GMime (unref it), or NULL. */
static GMimeMessage *
parse(const char *raw)
{
	GMimeStream	*s;
	GMimeParser	*p;
	GMimeMessage	*msg;

	s = g_mime_stream_mem_new_with_buffer(raw, strlen(raw));
	p = g_mime_parser_new_with_stream(s);
	msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	return msg;
}

/* Returns the decoded text of msg's text/SUBTYPE part with LF line
 * ends (a string to free), or NULL if there is none. */
static char *
part_text(GMimeMessage *msg, const char *subtype)
{
	GMimeObject	*o = g_mime_message_get_mime_part(msg);
	GMimeContentType *ct;
	char		*t, *out, *q;

	if (o != NULL && GMIME_IS_MULTIPART(o)) {
		GMimeMultipart *mp = GMIME_MULTIPART(o);

		o = NULL;
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++) {
			GMimeObject *c = g_mime_multipart_get_part(mp, i);

			ct = g_mime_object_get_content_type(c);
			if (g_mime_content_type_is_type(ct, "text", subtype))
				o = c;
		}
	}
	if (o == NULL || !GMIME_IS_TEXT_PART(o))
		return NULL;
	ct = g_mime_object_get_content_type(o);
	if (!g_mime_content_type_is_type(ct, "text", subtype))
		return NULL;
	if ((t = g_mime_text_part_get_text(GMIME_TEXT_PART(o))) == NULL)
		return NULL;
	out = xstrdup(t);
	g_free(t);
	for (const char *p = q = out; *p != '\0'; p++)
		if (!(p[0] == '\r' && p[1] == '\n'))
			*q++ = *p;
	*q = '\0';
	return out;
}

/* Returns raw's header field (its value, unfolded), or NULL. */
static char *
header_raw(const char *raw, const char *field)
{
	struct buf	 b;
	const char	*p = raw;
	size_t		 n = strlen(field);

	for (;;) {
		if (strncmp(p, field, n) == 0 && p[n] == ':')
			break;
		if ((p = strstr(p, "\r\n")) == NULL || p[2] == '\r')
			return NULL;
		p += 2;
	}
	buf_init(&b);
	for (p += n + 1; *p == ' '; p++)
		continue;
	for (; *p != '\0'; p++) {
		if (p[0] == '\r' && p[1] == '\n') {
			if (p[2] != ' ' && p[2] != '\t')
				break;
			p++;
		} else
			buf_putc(&b, *p);
	}
	return buf_take(&b);
}

/* Returns raw's header field decoded as a mail client shows it (a
 * string to free), or NULL: each RFC 2047 word decoded alone by GMime,
 * the space between two encoded words dropped, quoted strings unquoted,
 * every other run of space one space; with phrase, only the display
 * name before an address's "<". (Not GMime's parser: GMime 3.2.13 joins
 * adjacent base64 words before decoding and loses what follows one that
 * ends in "=" padding, which its own writer makes; nor does it unfold a
 * display name.) */
static char *
header_decoded(const char *raw, const char *field, int phrase)
{
	struct buf	 out;
	char		*v = header_raw(raw, field), *p;
	int		 prev_ew = 0, space = 0;

	if (v == NULL)
		return NULL;
	buf_init(&out);
	for (p = v; *p != '\0';) {
		if (*p == ' ' || *p == '\t') {
			space = 1;
			p++;
			continue;
		}
		if (phrase && *p == '<')
			break;
		if (phrase && *p == '"') {
			if (space && out.len > 0)
				buf_putc(&out, ' ');
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				buf_putc(&out, *p);
			}
			if (*p == '"')
				p++;
			prev_ew = 0;
		} else {
			size_t	 n = strcspn(p, phrase ? " \t\"<" : " \t");
			char	*w = xstrndup(p, n), *d;
			int	 ew = n > 4 && !strncmp(w, "=?", 2) &&
			    !strcmp(w + n - 2, "?=");

			if (space && out.len > 0 && !(ew && prev_ew))
				buf_putc(&out, ' ');
			d = ew ? g_mime_utils_header_decode_text(NULL, w) : NULL;
			buf_puts(&out, d != NULL ? d : w);
			g_free(d);
			free(w);
			prev_ew = ew;
			p += n;
		}
		space = 0;
	}
	free(v);
	if (out.data == NULL)
		buf_puts(&out, "");
	return buf_take(&out);
}

/* Returns text with its line ends made LF (a string to free). */
static char *
lf(const char *text)
{
	char *t = xstrdup(text), *q = t;

	for (const char *p = t; *p != '\0'; p++)
		if (*p != '\r')
			*q++ = *p;
		else if (p[1] != '\n')
			*q++ = '\n';
	*q = '\0';
	return t;
}

/* The message the tests vary. */
static struct mail_msg
msg_base(void)
{
	struct mail_msg m = {
		.id = 42, .kind = "confirmation",
		.to_addr = "zoe@example.com", .to_name = "Zo\xc3\xab",
		.subject = "Your question PMB-000001 is in",
		.body_text = "Hello,\n", .body_html = "<p>Hello</p>\n",
		.created_at = 1764133357,
	};

	return m;
}

static void
test_bodies(void)
{
	const char	*cases[] = {
		"plain text\nsecond line\n",
		"Gr\xc3\xbc\xc3\x9f" "e, Zo\xc3\xab! 100% = sure\r\nline two",
		"trailing space \ntrailing tab\t\n",
		".starts with a dot\nFrom the start\n.\n",
		"a=b\n\n\nthree blank lines above",
		"old Mac\rline ends\r",
		/* GMime's encoder alone would write these as lines of 77 and
		 * 78 (a held-back space): mail_build folds them. */
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxx \n",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxx= \n",
		"long: https://example.com/o/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAA end\n",
		"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
		    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
		"",
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		for (int html = 0; html < 2; html++) {
			struct mail_msg	 m = msg_base();
			char		*raw, *want = lf(cases[i]), *text = NULL;
			char		*h = NULL;
			GMimeMessage	*msg;

			/* Each part's last line ends in a line end. */
			int		 alt = html && *cases[i] != '\0';
			size_t		 n = strlen(want);

			if (n > 0 && want[n - 1] != '\n') {
				want = xrealloc(want, n + 2);
				strcpy(want + n, "\n");
			}
			m.body_text = cases[i];
			m.body_html = alt ? cases[i] : "";
			raw = build(&m);
			ok(raw != NULL && lines_ok(raw, 998, 76),
			    "body case %zu%s: 7-bit CRLF lines, the body's "
			    "of at most 76", i, html ? " (and HTML)" : "");
			msg = raw != NULL ? parse(raw) : NULL;
			if (msg != NULL) {
				text = part_text(msg, "plain");
				h = part_text(msg, "html");
			}
			ok(text != NULL && !strcmp(text, want),
			    "body case %zu%s: the text part decodes back to "
			    "the text: %s", i, html ? " (and HTML)" : "",
			    show(text));
			ok(alt ? h != NULL && !strcmp(h, want) : h == NULL,
			    "body case %zu%s: %s", i, html ? " (and HTML)" : "",
			    alt ? "the HTML part decodes back" : "no HTML part");
			if (msg != NULL)
				g_object_unref(msg);
			free(raw);
			free(want);
			free(text);
			free(h);
		}
}

/* Builds m with subject s and name n, and checks that the subject and
 * To name decode to want_s and want_n, one header each, lines short. */
static void
check_header(const char *what, const char *s, const char *n,
    const char *want_s, const char *want_n)
{
	struct mail_msg	 m = msg_base();
	char		*raw, *name = NULL, *head, *subj = NULL;
	GMimeMessage	*msg = NULL;
	InternetAddressList *to = NULL;

	m.subject = s;
	m.to_name = n;
	raw = build(&m);
	if (raw != NULL && (msg = parse(raw)) != NULL) {
		subj = header_decoded(raw, "Subject", 0);
		name = header_decoded(raw, "To", 1);
		to = g_mime_message_get_to(msg);
	}
	ok(to != NULL && internet_address_list_length(to) == 1 &&
	    !strcmp(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(
	    internet_address_list_get_address(to, 0))), "zoe@example.com"),
	    "%s: GMime reads one To address, the recipient's", what);
	ok(subj != NULL && !strcmp(subj, want_s),
	    "%s: the subject decodes as %s", what, show(subj));
	ok(name != NULL && !strcmp(name, want_n),
	    "%s: the name decodes as %s", what, show(name));
	head = raw != NULL ? strstr(raw, "\r\n\r\n") : NULL;
	if (head != NULL)
		head[2] = '\0';
	ok(head != NULL && lines_ok(raw, 78, 78) &&
	    strstr(raw, "\nBcc") == NULL && strstr(raw, "\nbody") == NULL,
	    "%s: headers of at most 78 columns, nothing injected", what);
	if (msg != NULL)
		g_object_unref(msg);
	free(raw);
	free(name);
	free(subj);
}

static void
test_headers(void)
{
	const char	*evil = "Zo\xc3\xab \xc3\x9cnal\r\nBcc: x@evil.example";
	const char	*flat = "Zo\xc3\xab \xc3\x9cnal Bcc: x@evil.example";
	const char	*ascii = "A long subject line that goes on and on and on, "
	    "past the seventy-six columns of a header line";
	struct mail_msg	 m = msg_base();
	char		 long_utf8[400] = "", *raw;

	for (int i = 0; i < 40; i++)
		strcat(long_utf8, "\xe2\x82\xac\xc3\xa9 ");
	long_utf8[strlen(long_utf8) - 1] = '\0';
	check_header("UTF-8", "Gr\xc3\xbc\xc3\x9f" "e", "Zo\xc3\xab \xc3\x9cnal",
	    "Gr\xc3\xbc\xc3\x9f" "e", "Zo\xc3\xab \xc3\x9cnal");
	check_header("CR LF", evil, evil, flat, flat);
	check_header("LF, then an empty line", "a\nBcc: x@evil.example\n\nbody",
	    "a\nBcc: x@evil.example\n\nbody", "a Bcc: x@evil.example body",
	    "a Bcc: x@evil.example body");
	check_header("long", ascii, long_utf8, ascii, long_utf8);
	check_header("long UTF-8", long_utf8, ascii, long_utf8, ascii);
	check_header("invalid UTF-8", "bad \xff\xfe utf-8", "bad \xff name",
	    "bad ?? utf-8", "bad ? name");
	check_header("quotes", "say \"hi\" (now) <x>", "Ada \"The Baker\" <x@y>, B",
	    "say \"hi\" (now) <x>", "Ada \"The Baker\" <x@y>, B");

	raw = build(&m);
	ok(raw != NULL && strstr(raw, "\r\nSubject: Your question "
	    "PMB-000001 is in\r\n") != NULL, "an ASCII subject goes as it is");
	free(raw);
	m.to_name = "";
	raw = build(&m);
	ok(raw != NULL && strstr(raw, "\r\nTo: zoe@example.com\r\n") != NULL,
	    "no name: the address alone");
	free(raw);
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
	ok(mime_addr_ok("a@xn--bcher-kva.example"), "an IDN domain is fine");
	ok(!mime_addr_ok("a@xn--a.example") && !mime_addr_ok("a@x.xn--example"),
	    "a label \"xn--\" that is not punycode refused (GMime would "
	    "change it)");
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

/* Returns the names of raw's message headers, in order, as "Name|Name|"
 * (a string to free). */
static char *
header_names(const char *raw)
{
	struct buf	 b;
	const char	*p = raw;

	buf_init(&b);
	while (*p != '\0' && !(p[0] == '\r' && p[1] == '\n')) {
		if (*p != ' ' && *p != '\t') {
			buf_append(&b, p, strcspn(p, ":"));
			buf_putc(&b, '|');
		}
		p += strcspn(p, "\n");
		if (*p == '\n')
			p++;
	}
	return buf_take(&b);
}

static void
test_build(void)
{
	char		*raw, *raw2, *names, *text, *html, *ct;
	const char	*why = NULL;
	struct buf	 b;
	GMimeMessage	*msg = NULL;
	struct mail_msg	 m = msg_base();

	m.body_text = "Hello Zo\xc3\xab,\n\nhttps://x.example/o/abc\n";
	m.body_html = "<p>Hello Zo\xc3\xab</p>\n";
	raw = build(&m);
	raw2 = build(&m);
	ok(raw != NULL && raw2 != NULL && !strcmp(raw, raw2),
	    "building twice gives the same bytes");
	free(raw2);
	if (raw == NULL)
		return;
	ok(lines_ok(raw, 998, 76), "CRLF lines only, 7-bit, short");
	names = header_names(raw);
	ok(!strcmp(names, "Date|From|Reply-To|Subject|To|Message-ID|"
	    "Auto-Submitted|MIME-Version|Content-Type|"),
	    "exactly the headers mail.py expects: %s", names);
	free(names);
	ok(strstr(raw, "Date: Wed, 26 Nov 2025 05:02:37 +0000\r\n") != NULL,
	    "Date is when it was queued");
	ok(strstr(raw, "\r\nMessage-ID: <") != NULL &&
	    strstr(raw, ".42@mail.example>\r\n") != NULL,
	    "Message-ID at the domain of mail_from, with the row's id");
	ok(strstr(raw, "\r\nFrom: Sam Carter <sam@mail.example>\r\n") != NULL &&
	    strstr(raw, "\r\nReply-To: help@mail.example\r\n") != NULL,
	    "From is mail_from, Reply-To admin_email");
	ok(strstr(raw, "\r\nAuto-Submitted: auto-generated\r\n") != NULL &&
	    strstr(raw, "\r\nMIME-Version: 1.0\r\n") != NULL,
	    "Auto-Submitted and MIME-Version");
	ct = header_raw(raw, "Content-Type");
	ok(ct != NULL && !strncmp(ct, "multipart/alternative;", 22) &&
	    strstr(ct, "boundary=\"=_pmb_") != NULL && strstr(raw, "Content-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n") != NULL &&
	    strstr(raw, "Content-Type: text/html; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n") != NULL,
	    "multipart/alternative of UTF-8 quoted-printable text and HTML");
	free(ct);
	ok(strstr(raw, "Hello Zo=C3=AB,\r\n\r\nhttps://x.example/o/abc") !=
	    NULL, "the text part is quoted-printable on the wire");
	if ((msg = parse(raw)) != NULL) {
		text = part_text(msg, "plain");
		html = part_text(msg, "html");
		ok(text != NULL && !strcmp(text, m.body_text) && html != NULL &&
		    !strcmp(html, m.body_html), "text and HTML decode back");
		free(text);
		free(html);
		g_object_unref(msg);
	} else
		ok(0, "GMime parses the message");
	free(raw);

	m.body_html = "";
	raw = build(&m);
	ok(raw != NULL && strstr(raw, "multipart") == NULL &&
	    strstr(raw, "\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n") != NULL,
	    "without HTML: one text/plain part");
	free(raw);
	m.to_addr = "bad address@example.com";
	buf_init(&b);
	ok(!mail_build(&b, &m, &why) && why != NULL,
	    "a bad recipient is refused: %s", why != NULL ? why : "");
	buf_free(&b);
}

int
main(void)
{
	char err[256];

	if (sodium_init() < 0)
		return 1;
	mime_start();
	if (!conf_parse("mail_from = Sam Carter <sam@mail.example>\n"
	    "admin_email = help@mail.example\n", "test", err, sizeof(err)))
		return 1;
	test_bodies();
	test_headers();
	test_addresses();
	test_backoff();
	test_build();
	conf_free();
	mime_stop();
	return tap_done();
}
