/* mail_parse.c: tests of src/mail_parse.c and src/mail_text.c (issue 18).
 * Every tests/mail-samples/NAME.eml is parsed and its text, cut by
 * mail_reply_text, must be NAME.txt (its last line end aside); the header
 * fields of each sample, and the special ones' (auto-reply, list, bounce,
 * spoofed sender), are checked one by one; then the quote cutter and the
 * HTML-to-text on short texts. Prints TAP. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mail_parse.h"
#include "mime.h"
#include "util.h"
#include "tap.h"

/* Returns the content of path (malloc'd, NUL-terminated) and its length
 * in *len, or NULL. */
static char *
slurp(const char *path, size_t *len)
{
	FILE		*f = fopen(path, "rb");
	struct buf	 b;
	char		 chunk[4096];
	size_t		 n;

	if (f == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return buf_take(&b);
}

static const char *samples;	/* the folder of the samples */

/* Parses samples/NAME.eml into m; returns 0 or -1 (and says why). */
static int
load(const char *name, struct inbound *m)
{
	char	 path[1024];
	size_t	 len;
	char	*raw;
	int	 rc;

	snprintf(path, sizeof(path), "%s/%s.eml", samples, name);
	if ((raw = slurp(path, &len)) == NULL) {
		ok(0, "%s can be read", path);
		memset(m, 0, sizeof(*m));
		return -1;
	}
	rc = mail_parse(raw, len, m);
	free(raw);
	return rc;
}

/* Returns 1 if a and b are both NULL or equal. */
static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/* Checks that NAME.eml's text after quote cutting is NAME.txt. */
static void
check_text(const char *name)
{
	struct inbound	 m;
	char		 path[1024], *want, *got;
	size_t		 len;

	snprintf(path, sizeof(path), "%s/%s.txt", samples, name);
	if ((want = slurp(path, &len)) == NULL) {
		ok(0, "%s has its .txt", name);
		return;
	}
	if (len > 0 && want[len - 1] == '\n')
		want[len - 1] = '\0';
	if (!ok(load(name, &m) == 0, "%s: parsed", name))
		return;
	got = mail_reply_text(m.text);
	if (!ok(strcmp(got, want) == 0, "%s: its text after cutting is %s.txt",
	    name, name))
		printf("# got:\n%s\n# full text:\n%s\n", got, m.text);
	free(got);
	free(want);
	inbound_free(&m);
}

/* The header fields of the replies. */
static void
check_replies(void)
{
	struct inbound	 m;
	int		 rc;

	load("gmail_qp", &m);
	ok(same(m.from_addr, "joelle.martin.test@gmail.example"),
	    "gmail: From's domain lowercased, local part as given: %s",
	    m.from_addr);
	ok(same(m.from_name, "Jo\xc3\xab" "lle Martin"),
	    "gmail: the name decoded: %s", m.from_name);
	ok(same(m.subject, "Re: Your question \xe2\x80\x94 boiler pressure "
	    "drops"), "gmail: the subject decoded: %s", m.subject);
	ok(same(m.message_id, "CAF7x2Bq9Y0p=Zx8w@mail.gmail.example"),
	    "gmail: Message-ID without <>");
	ok(same(m.in_reply_to, "pmb.1234.confirm.k3j9x2@ask.example.com"),
	    "gmail: In-Reply-To without <>");
	ok(m.nreferences == 2 && same(m.references[0],
	    "pmb.1234.answer.x8x8x8@ask.example.com") && same(m.references[1],
	    "pmb.1234.confirm.k3j9x2@ask.example.com"),
	    "gmail: References, in order");
	ok(same(m.to, "answers+abcd2345efgh@ask.example.com") &&
	    same(m.delivered_to, "answers+abcd2345efgh@ask.example.com") &&
	    same(m.envelope_from, "joelle.martin.test@gmail.example"),
	    "gmail: To, Delivered-To and the envelope sender");
	ok(!m.text_from_html && !m.dsn && !m.list && m.auto_submitted == NULL
	    && m.natt == 0, "gmail: the text/plain part, no flags");
	inbound_free(&m);

	load("outlook_base64", &m);
	ok(m.natt == 1 && same(m.att[0].name, "Inventory March 2025.pdf") &&
	    same(m.att[0].type, "application/pdf") && m.att[0].size == 12,
	    "outlook: the attachment listed by name, type and decoded size");
	/* Without subject_decode's work-around, GMime 3.2.13 drops the
	 * second word. */
	ok(same(m.subject, "RE: Your question: deposit not returned "
	    "\xe2\x80\x94 \xc2\xa3" "1,200"),
	    "outlook: two B-encoded words, the first with one \"=\": %s",
	    m.subject);
	ok(same(m.from_addr, "sam.okafor.test@outlook.example") &&
	    same(m.envelope_from, "sam.okafor.test@outlook.example"),
	    "outlook: From, and a Return-Path without <>");
	inbound_free(&m);

	load("outlook_html_only", &m);
	ok(m.text_from_html, "outlook html: text made from the HTML part");
	ok(same(m.from_addr, "priya.shah.test@company.example") &&
	    same(m.from_name, "Shah, Priya"),
	    "outlook html: the whole domain lowercased, quoted name");
	ok(strstr(m.text, "MsoNormal") == NULL, "outlook html: no style text");
	inbound_free(&m);

	load("thunderbird_latin1", &m);
	ok(same(m.subject, "Re: Votre r\xc3\xa9ponse est pr\xc3\xaate") &&
	    same(m.from_name, "H\xc3\xa9l\xc3\xa8ne Gar\xc3\xa7on"),
	    "thunderbird: ISO-8859-1 encoded words to UTF-8");
	inbound_free(&m);

	{
		static const char flowed[] = "From: a@b.example\r\n"
		    "Content-Type: text/plain; format=flowed; delsp=yes\r\n"
		    "\r\nabc \r\ndef\r\n From x\r\n> q1 \r\n> q2\r\n"
		    "-- \r\nsig\r\n";

		rc = mail_parse(flowed, sizeof(flowed) - 1, &m);
		ok(rc == 0 && same(m.text, "abcdef\nFrom x\n> q1q2\n-- \n"
		    "sig\n"), "format=flowed; delsp=yes: unflowed, unstuffed,"
		    " the signature line kept");
		inbound_free(&m);
	}

	{
		/* GMime 3.2.13 alone loses the second word (word_b_to_q). */
		static const char split[] = "From: =?UTF-8?B?Sm/Dqw==?= "
		    "=?UTF-8?B?bGxlIE0=?=\r\n =?UTF-8?B?YXJ0aW4=?= "
		    "<Jo@Gmail.Example>\r\n\r\nx\r\n";

		rc = mail_parse(split, sizeof(split) - 1, &m);
		ok(rc == 0 && same(m.from_name, "Jo\xc3\xab" "lle Martin") &&
		    same(m.from_addr, "Jo@gmail.example"),
		    "a name in B-encoded words, one ending in one \"=\"");
		inbound_free(&m);
	}

	load("gmail_html_only", &m);
	ok(m.text_from_html && strstr(m.text, "alert") == NULL,
	    "gmail html: from HTML, the script dropped");
	ok(same(m.subject, "Re: Your question: b\xc3\xa9" "chamel sauce") &&
	    same(m.from_name, "Ana L\xc3\xb3pez"), "gmail html: B-encoded words");
	inbound_free(&m);
}

/* The auto-reply, the list message, the bounce and the spoofed sender. */
static void
check_special(void)
{
	struct inbound	 m;
	int		 rc;

	load("autoreply", &m);
	ok(same(m.auto_submitted, "auto-replied") && !m.dsn,
	    "autoreply: Auto-Submitted read");
	inbound_free(&m);

	load("list", &m);
	ok(m.list && same(m.precedence, "list"),
	    "list: List-Id/List-Unsubscribe and Precedence read");
	inbound_free(&m);

	load("bounce", &m);
	ok(m.dsn, "bounce: a DSN");
	ok(same(m.dsn_message_id, "pmb.1234.confirm.k3j9x2@ask.example.com"),
	    "bounce: our Message-ID from the returned headers: %s",
	    m.dsn_message_id);
	ok(same(m.dsn_status, "5.1.1"), "bounce: Status");
	ok(same(m.dsn_diagnostic, "smtp; 550 5.1.1 <nobody.test@invalid."
	    "example>: Recipient address rejected: User unknown"),
	    "bounce: Diagnostic-Code, its lines joined: %s", m.dsn_diagnostic);
	ok(same(m.delivered_to, "answers+b-42-k2m4p6r8@ask.example.com") &&
	    same(m.auto_submitted, "auto-replied"),
	    "bounce: Delivered-To (the VERP address) and Auto-Submitted");
	ok(m.natt == 0, "bounce: its report parts are no attachments");
	inbound_free(&m);

	/* Exim returns the whole message (message/rfc822); a read receipt
	 * is a report but no DSN. */
	{
		static const char exim[] = "From: Mail Delivery System "
		    "<Mailer-Daemon@mx.example>\r\nSubject: Mail delivery "
		    "failed\r\nContent-Type: multipart/report; report-type="
		    "\"delivery-status\"; boundary=\"b1\"\r\n\r\n--b1\r\n"
		    "Content-Type: text/plain\r\n\r\nfailed\r\n--b1\r\n"
		    "Content-Type: message/delivery-status\r\n\r\n"
		    "Reporting-MTA: dns; mx.example\r\n\r\nAction: failed"
		    "\r\nFinal-Recipient: rfc822;x@y.example\r\nStatus: "
		    "5.0.0\r\n\r\n--b1\r\nContent-Type: message/rfc822\r\n"
		    "\r\nFrom: a@b.example\r\nMessage-ID: <ours.1@b.example>"
		    "\r\nSubject: hi\r\n\r\nbody\r\n--b1--\r\n";
		char mdn[sizeof(exim)];
		char *at = strstr(strcpy(mdn, exim), "\"delivery-status\"");

		rc = mail_parse(exim, sizeof(exim) - 1, &m);
		ok(rc == 0 && m.dsn && same(m.dsn_message_id,
		    "ours.1@b.example") && same(m.dsn_status, "5.0.0") &&
		    m.dsn_diagnostic == NULL && m.natt == 0,
		    "a DSN with the whole message returned: %s",
		    m.dsn_message_id);
		inbound_free(&m);
		memcpy(at, "\"disposition-not\"", 17);
		rc = mail_parse(mdn, sizeof(mdn) - 1, &m);
		ok(rc == 0 && !m.dsn && m.dsn_message_id == NULL &&
		    m.dsn_status == NULL && m.natt == 2 &&
		    same(m.att[1].type, "message/rfc822"),
		    "another report is no DSN (its parts listed)");
		inbound_free(&m);
	}

	load("spoofed", &m);
	ok(same(m.from_addr, "joelle.martin.test@gmail.example") &&
	    same(m.envelope_from, "bulk.sender.test@spam.example"),
	    "spoofed: From as written, the envelope sender beside it");
	inbound_free(&m);
}

/* Returns mail_reply_text(in) == want; shows what it got if not. */
static int
cut_is(const char *in, const char *want)
{
	char	*got = mail_reply_text(in);
	int	 r = strcmp(got, want) == 0;

	if (!r)
		printf("# got: [%s]\n", got);
	free(got);
	return r;
}

/* The quote cutter and HTML-to-text on short texts. */
static void
check_cutting(void)
{
	const char	*h;
	char		*t;

	ok(cut_is("Yes.\r\n\r\n" MAIL_REPLY_MARKER "\r\nHello", "Yes."),
	    "cut at our marker, CRLF lines");
	ok(cut_is("Fine\nOn Tue, 8 Dec 2026, Pick My Brain <a@b.example>"
	    " wrote:\n> x", "Fine"), "cut at On ... wrote:");
	ok(cut_is("Fine\nOn Tue, 8 Dec 2026 at 09:00, Someone Long <\n"
	    "someone@example.com> wrote:\n> x", "Fine"),
	    "cut at On ... wrote: over two lines");
	ok(cut_is("On Monday I will call.\nBye", "On Monday I will call.\nBye"),
	    "a line starting On without wrote: stays");
	ok(cut_is("A\n-----Original Message-----\nFrom: x", "A"),
	    "cut at -----Original Message-----");
	ok(cut_is("A\nFrom: Pick My Brain\nSent: today\nTo: me\nB", "A"),
	    "cut at Outlook's From:/Sent: block");
	ok(cut_is("From: now on I agree", "From: now on I agree"),
	    "a From: line without Sent: stays");
	ok(cut_is("A\n\n-- \nJo\n", "A"), "cut at the signature delimiter");
	ok(cut_is("A\nSent from my iPhone\n", "A"), "cut at Sent from my iPhone");
	ok(cut_is("A\n> q1\n\n> q2\n", "A"), "quoted lines at the end cut");
	ok(cut_is("> q1\nmy answer\n> q2\nA\n", "> q1\nmy answer\n> q2\nA"),
	    "quoted lines in the middle kept");
	ok(cut_is("\n\n  \nA  \n\n", "A"), "blank lines and end spaces trimmed");
	ok(cut_is("", ""), "an empty text");

	h = "<p>a&amp;b</p><p>c<br>d</p><ul><li>x</li>"
	    "<li>y</li></ul><style>p{}</style>";
	t = mail_html_text(h, strlen(h));
	ok(strcmp(t, "a&b\n\nc\nd\n\n- x\n- y") == 0,
	    "html: paragraphs, br, list items, entities, style dropped");
	free(t);
	h = "<blockquote>q<br>r</blockquote>s";
	t = mail_html_text(h, strlen(h));
	ok(strcmp(t, "> q\n> r\ns") == 0, "html: a blockquote's lines start >");
	free(t);
	h = "<pre>a  b\n c</pre>";
	t = mail_html_text(h, strlen(h));
	ok(strcmp(t, "a  b\n c") == 0, "html: <pre> keeps its spaces");
	free(t);
	t = mail_html_text("", 0);
	ok(strcmp(t, "") == 0, "html: empty");
	free(t);
}

int
main(void)
{
	static const char *const names[] = { "gmail_qp", "gmail_html_only",
	    "outlook_base64", "outlook_html_only", "apple_mail_qp",
	    "thunderbird_latin1", "ios_mail_base64", "autoreply", "list",
	    "bounce", "spoofed" };
	const char	*src = getenv("PMB_SRCDIR");
	char		 dir[1024];
	struct inbound	 m;

	snprintf(dir, sizeof(dir), "%s/tests/mail-samples",
	    src != NULL ? src : ".");
	samples = dir;
	mime_start();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		check_text(names[i]);
	check_replies();
	check_special();
	check_cutting();
	ok(mail_parse("", 0, &m) == 0 || m.text != NULL,
	    "an empty input parses to an empty message");
	inbound_free(&m);
	mime_stop();
	return tap_done();
}
