/* fuzz_parse: reading a received message (src/mail_parse.c, GMime; the
 * HTML part through libxml2) and cutting its quotes (src/mail_text.c).
 * The whole input is the raw message. Checks: the parse fills a text
 * (valid UTF-8, never NULL), every string it fills is valid UTF-8, a
 * bounce's fields only come with a DSN, and the cut text is valid UTF-8,
 * no longer than the text it came from, with no blank line at either end;
 * the HTML-to-text also runs on the raw input itself. */
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "mail_parse.h"
#include "mime.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	mime_start();
	return 0;
}

/* Aborts unless s is NULL or valid UTF-8. */
static void
check_utf8(const char *s, const char *what)
{
	FUZZ_CHECK(s == NULL || g_utf8_validate(s, -1, NULL), what);
}

/* Checks what mail_reply_text made of text. */
static void
check_cut(const char *text)
{
	char	*cut = mail_reply_text(text);
	size_t	 n = strlen(cut);

	check_utf8(cut, "the cut text is UTF-8");
	FUZZ_CHECK(n <= strlen(text), "the cut text is no longer");
	FUZZ_CHECK(n == 0 || (cut[0] != '\n' && cut[n - 1] != '\n'),
	    "no blank line at either end");
	free(cut);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct inbound	 m;
	char		*html;

	if (mail_parse((const char *)data, size, &m) == 0) {
		FUZZ_CHECK(m.text != NULL, "a text");
		check_utf8(m.text, "the text is UTF-8");
		check_utf8(m.subject, "the subject is UTF-8");
		check_utf8(m.from_addr, "From is UTF-8");
		check_utf8(m.from_name, "the name is UTF-8");
		check_utf8(m.to, "To is UTF-8");
		check_utf8(m.delivered_to, "Delivered-To is UTF-8");
		check_utf8(m.envelope_from, "Return-Path is UTF-8");
		check_utf8(m.message_id, "Message-ID is UTF-8");
		check_utf8(m.in_reply_to, "In-Reply-To is UTF-8");
		check_utf8(m.auto_submitted, "Auto-Submitted is UTF-8");
		check_utf8(m.precedence, "Precedence is UTF-8");
		check_utf8(m.dsn_message_id, "the DSN's Message-ID is UTF-8");
		check_utf8(m.dsn_status, "the status is UTF-8");
		check_utf8(m.dsn_diagnostic, "the diagnostic is UTF-8");
		for (size_t i = 0; i < m.nreferences; i++)
			check_utf8(m.references[i], "References are UTF-8");
		for (size_t i = 0; i < m.natt; i++)
			check_utf8(m.att[i].name, "attachment names are UTF-8");
		FUZZ_CHECK(m.dsn || (m.dsn_status == NULL &&
		    m.dsn_message_id == NULL), "DSN fields only in a DSN");
		check_cut(m.text);
	}
	inbound_free(&m);
	html = mail_html_text((const char *)data, size);
	free(html);
	return 0;
}
