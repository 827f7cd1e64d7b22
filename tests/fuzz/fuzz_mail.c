/* fuzz_mail: the message builder (mail_build, GMime) and the address
 * parser (mime_parse_mailbox). Input parts: subject, recipient,
 * recipient's name, text body, HTML body, then a mail_from setting.
 * Checks: the message is 7-bit printable ASCII in CRLF lines of at most
 * 998 characters (RFC 5322), its body's lines at most 76 (quoted-
 * printable); read back by GMime, it has exactly the headers the
 * builder writes (nothing injected), each part its two, one To address
 * (the recipient's), and text and HTML parts that decode to the texts
 * given (line ends made CRLF, one ending the last line). */
#include <stdint.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "conf.h"
#include "mime.h"
#include "util.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0 || !conf_parse("", "defaults", err, sizeof(err)))
		abort();
	mime_start();
	return 0;
}

/* Checks that b is CRLF lines of printable ASCII, each no longer than
 * max, and the body's (from the first empty line) no longer than
 * body_max; the last line ends in CRLF too. */
static void
check_lines(const struct buf *b, size_t max, size_t body_max,
    const char *what)
{
	size_t	col = 0;
	int	body = 0;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];

		if (c == '\r') {
			FUZZ_CHECK(i + 1 < b->len && b->data[i + 1] == '\n',
			    what);
			i++;
			if (col == 0)
				body = 1;
			col = 0;
			continue;
		}
		FUZZ_CHECK(c != '\n', what);
		FUZZ_CHECK((c >= 0x20 && c < 0x7f) || c == '\t', what);
		FUZZ_CHECK(++col <= (body ? body_max : max), what);
	}
	FUZZ_CHECK(b->len > 0 && col == 0, what);
}

/* Returns text with every line end (CR LF, CR, LF) made CR LF, and one
 * at the end if it has none (a string to free). */
static char *
crlf(const char *text)
{
	struct buf b;

	buf_init(&b);
	for (const char *p = text; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n') {
			buf_puts(&b, "\r\n");
			if (p[0] == '\r' && p[1] == '\n')
				p++;
		} else
			buf_putc(&b, *p);
	if (b.len > 0 && b.data[b.len - 1] != '\n')
		buf_puts(&b, "\r\n");
	if (b.data == NULL)
		buf_puts(&b, "");
	return buf_take(&b);
}

/* Checks that part o (a text part) decodes to want. */
static void
check_part(GMimeObject *o, const char *want, const char *what)
{
	GMimeDataWrapper	*w;
	GMimeStream		*s;
	GByteArray		*a;

	FUZZ_CHECK(o != NULL && GMIME_IS_TEXT_PART(o), what);
	w = g_mime_part_get_content(GMIME_PART(o));
	FUZZ_CHECK(w != NULL, what);
	s = g_mime_stream_mem_new();
	FUZZ_CHECK(g_mime_data_wrapper_write_to_stream(w, s) >= 0, what);
	a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	FUZZ_CHECK(a->len == strlen(want) && (a->len == 0 ||
	    memcmp(a->data, want, a->len) == 0), what);
	g_object_unref(s);
}

/* Reads raw back with GMime and checks its headers, its To address
 * (to_addr) and its parts against text and html. */
static void
check_message(const struct buf *raw, const char *to_addr, const char *text,
    const char *html)
{
	static const char *const names[] = { "Date", "From", "Reply-To",
	    "To", "Subject", "Message-ID", "Auto-Submitted", "MIME-Version" };
	GMimeStream	*s = g_mime_stream_mem_new_with_buffer(raw->data,
			    raw->len);
	GMimeParser	*p = g_mime_parser_new_with_stream(s);
	GMimeMessage	*msg = g_mime_parser_construct_message(p, NULL);
	GMimeHeaderList	*h;
	InternetAddressList *to;
	GMimeObject	*body;
	char		*want;
	int		 alt = *html != '\0';

	FUZZ_CHECK(msg != NULL, "GMime reads the message back");
	h = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	FUZZ_CHECK(g_mime_header_list_get_count(h) == (int)ARRAY_LEN(names),
	    "exactly the builder's headers");
	for (size_t i = 0; i < ARRAY_LEN(names); i++)
		FUZZ_CHECK(g_mime_header_list_contains(h, names[i]),
		    "each of the builder's headers");
	/* The address as written (get_addr decodes punycode domains). */
	to = g_mime_message_get_to(msg);
	FUZZ_CHECK(internet_address_list_length(to) == 1 &&
	    INTERNET_ADDRESS_IS_MAILBOX(internet_address_list_get_address(to,
	    0)) && !strcmp(internet_address_mailbox_get_idn_addr(
	    INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(to, 0))),
	    to_addr), "one To address: the recipient's");
	/* Content-Type is the body's header, not in the message's list. */
	body = g_mime_message_get_mime_part(msg);
	if (alt) {
		FUZZ_CHECK(GMIME_IS_MULTIPART(body) && g_mime_multipart_get_count(
		    GMIME_MULTIPART(body)) == 2, "two parts");
		want = crlf(html);
		check_part(g_mime_multipart_get_part(GMIME_MULTIPART(body), 1),
		    want, "the HTML part decodes back");
		free(want);
		body = g_mime_multipart_get_part(GMIME_MULTIPART(body), 0);
	}
	FUZZ_CHECK(g_mime_header_list_get_count(g_mime_object_get_header_list(
	    body)) == 2 && g_mime_object_get_header(body, "Content-Type") !=
	    NULL && g_mime_object_get_header(body,
	    "Content-Transfer-Encoding") != NULL, "the part's two headers");
	if (!alt)	/* the body's headers are the message's */
		FUZZ_CHECK(strstr(raw->data, "\r\nContent-Type: text/plain; "
		    "charset=UTF-8\r\nContent-Transfer-Encoding: "
		    "quoted-printable\r\n\r\n") != NULL, "a text message");
	want = crlf(text);
	check_part(body, want, "the text part decodes back");
	free(want);
	g_object_unref(msg);
	g_object_unref(p);
	g_object_unref(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	 p;
	struct buf	 b;
	struct mail_msg	 m;
	char		*name = NULL, *addr = NULL, err[256];
	const char	*why = NULL;

	parts_split(&p, data, size);
	if (mime_parse_mailbox(p.s[1], &name, &addr))
		FUZZ_CHECK(mime_addr_ok(addr), "parsed address is acceptable");
	free(name);
	if (p.n > 5 && !conf_parse("", "defaults", err, sizeof(err)))
		abort();
	if (p.n > 5) {
		free(conf.mail_from);
		conf.mail_from = xstrdup(p.s[5]);
	}
	memset(&m, 0, sizeof(m));
	m.id = size;
	m.kind = "confirmation";
	m.subject = p.s[0];
	m.to_addr = p.s[1];
	m.to_name = p.s[2];
	m.body_text = p.s[3];
	m.body_html = p.s[4];
	m.created_at = (int64_t)size * 1000003;
	buf_init(&b);
	if (mail_build(&b, &m, &why)) {
		check_lines(&b, 998, 76, "mail_build: bad message");
		check_message(&b, addr, m.body_text, m.body_html);
	} else
		FUZZ_CHECK(why != NULL, "a reason when no message is built");
	free(addr);
	buf_free(&b);
	if (p.n > 5 && !conf_parse("", "defaults", err, sizeof(err)))
		abort();
	parts_free(&p);
	return 0;
}
