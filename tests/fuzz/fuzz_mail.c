/* fuzz_mail: the email encoders (mime_header_text, mime_header_mailbox,
 * mime_parse_mailbox, mime_qp, mail_build). Input parts: subject,
 * recipient, recipient's name, text body, HTML body, then a mail_from
 * setting. Checks: everything written is 7-bit printable ASCII in CRLF
 * lines of at most 998 characters (RFC 5322); a header's value never
 * starts a new header line (each continuation is folded with a space);
 * quoted-printable lines are at most 76 characters. */
#include <stdint.h>
#include <string.h>

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
	return 0;
}

/* Checks that b is CRLF lines of printable ASCII no longer than max;
 * with folded, every line after the first starts with a space or tab;
 * with crlf, the last line ends in CRLF too. */
static void
check_lines(const struct buf *b, size_t max, int folded, int crlf,
    const char *what)
{
	size_t col = 0, line = 0;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];

		if (c == '\r') {
			FUZZ_CHECK(i + 1 < b->len && b->data[i + 1] == '\n',
			    what);
			i++;
			col = 0;
			line++;
			if (folded && i + 1 < b->len)
				FUZZ_CHECK(b->data[i + 1] == ' ' ||
				    b->data[i + 1] == '\t', what);
			continue;
		}
		FUZZ_CHECK(c != '\n', what);
		FUZZ_CHECK((c >= 0x20 && c < 0x7f) || c == '\t', what);
		FUZZ_CHECK(++col <= max, what);
	}
	if (crlf)
		FUZZ_CHECK(b->len == 0 || (line > 0 && col == 0), what);
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

	buf_init(&b);
	mime_header_text(&b, "Subject", p.s[0]);
	check_lines(&b, 998, 1, 1, "mime_header_text: bad header");
	buf_free(&b);

	buf_init(&b);
	mime_qp(&b, p.s[3]);
	/* The last line of mime_qp's output may lack its CRLF. */
	check_lines(&b, 76, 0, 0, "mime_qp: bad line");
	buf_free(&b);

	if (mime_parse_mailbox(p.s[1], &name, &addr)) {
		FUZZ_CHECK(mime_addr_ok(addr), "parsed address is acceptable");
		buf_init(&b);
		mime_header_mailbox(&b, "To", name, addr);
		check_lines(&b, 998, 1, 1, "mime_header_mailbox: bad header");
		buf_free(&b);
	}
	free(name);
	free(addr);

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
		FUZZ_CHECK(strstr(b.data, "\r\n\r\n") != NULL, "a body");
		check_lines(&b, 998, 0, 1, "mail_build: bad message");
	} else
		FUZZ_CHECK(why != NULL, "a reason when no message is built");
	buf_free(&b);
	if (p.n > 5 && !conf_parse("", "defaults", err, sizeof(err)))
		abort();
	parts_free(&p);
	return 0;
}
