/* mime.c: RFC 5322 + MIME messages, built with GMime 3 from the outbox
 * row alone (Date is when it was queued, Message-ID and boundary are
 * derived from the row), so every try of one message sends the same
 * bytes. GMime's defaults are not ours (ISO-8859-1 text, 8bit bodies, LF
 * line ends), so each is set explicitly: UTF-8 parts, quoted-printable,
 * UTF-8 encoded words in headers, CRLF on the wire. GMime leaves a line
 * that starts with "." or "From " as it is: the SMTP transport (libcurl)
 * dot-stuffs, sendmail runs with -i, and the dir transport writes files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "conf.h"
#include "email_addr.h"
#include "mail_token.h"
#include "mail.h"
#include "mail_text.h"
#include "mime.h"
#include "util.h"

#define QP_LINE	76	/* a quoted-printable line's length at most */

void
mime_start(void)
{
	g_mime_init();
}

void
mime_stop(void)
{
	g_mime_shutdown();
}

/* Returns a copy of s fit for a header: each run of spaces and control
 * characters becomes one space and, if s is not valid UTF-8, every
 * non-ASCII byte becomes '?'. Names and subjects pass here before GMime:
 * it would send a CR LF safely encoded ("=0D=0A"), but as a line break
 * that a mail client decodes and shows. The caller frees it. */
static char *
header_clean(const char *s)
{
	char		*t = xstrdup(s != NULL ? s : "");
	unsigned char	*p, *q;
	int		 valid = utf8_valid(t, strlen(t));

	for (p = q = (unsigned char *)t; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f) {
			if (q == (unsigned char *)t || q[-1] != ' ')
				*q++ = ' ';
		} else
			*q++ = *p >= 0x80 && !valid ? '?' : *p;
	*q = '\0';
	return t;
}

int
mime_addr_ok(const char *addr)
{
	InternetAddress	*ia;
	int		 same;

	if (email_addr_check(addr) != NULL)
		return 0;
	/* GMime decodes and re-encodes a domain's "xn--" labels, and writes
	 * one that is not valid punycode changed ("a@xn--a.example" as
	 * "a@.example"): such a To header would not name the envelope's
	 * recipient. */
	ia = internet_address_mailbox_new(NULL, addr);
	same = strcmp(internet_address_mailbox_get_idn_addr(
	    INTERNET_ADDRESS_MAILBOX(ia)), addr) == 0;
	g_object_unref(ia);
	return same;
}

/* Returns a copy of the n bytes at s without spaces at either end. */
static char *
trimmed(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return xstrndup(s, n);
}

int
mime_parse_mailbox(const char *s, char **name, char **addr)
{
	const char *lt = strrchr(s, '<'), *gt;

	*name = *addr = NULL;
	if (lt == NULL) {
		*name = xstrdup("");
		*addr = trimmed(s, strlen(s));
	} else {
		if ((gt = strchr(lt, '>')) == NULL)
			return 0;
		for (const char *p = gt + 1; *p != '\0'; p++)
			if (*p != ' ' && *p != '\t')
				return 0;
		*addr = xstrndup(lt + 1, (size_t)(gt - lt - 1));
		*name = trimmed(s, (size_t)(lt - s));
		/* A quoted display name loses its quotes. */
		size_t n = strlen(*name);
		if (n >= 2 && (*name)[0] == '"' && (*name)[n - 1] == '"') {
			memmove(*name, *name + 1, n - 2);
			(*name)[n - 2] = '\0';
		}
	}
	return mime_addr_ok(*addr);
}

/* Returns a copy of text whose line ends (CR LF, CR, LF) are all LF,
 * with one at the end if text is not empty and has none: GMime's DOS
 * newline format makes each LF a CR LF on the wire, a CR left alone
 * would go out as "=0D", and every part ends its last line the same way
 * (GMime ends one with trailing space in a soft line break, another
 * without in a hard one). The caller frees it. */
static char *
lf_lines(const char *text)
{
	size_t	 n = strlen(text != NULL ? text : "");
	char	*t = xmalloc(n + 2), *q = t;

	memcpy(t, text != NULL ? text : "", n + 1);
	for (const char *p = t; *p != '\0'; p++)
		if (*p != '\r')
			*q++ = *p;
		else if (p[1] != '\n')
			*q++ = '\n';
	if (q > t && q[-1] != '\n')
		*q++ = '\n';
	*q = '\0';
	return t;
}

/* Returns a new text/SUBTYPE part holding text (lines made LF), labelled
 * UTF-8 and quoted-printable. */
static GMimeObject *
text_part(const char *subtype, const char *text)
{
	GMimeTextPart	*part = g_mime_text_part_new_with_subtype(subtype);
	char		*lf = lf_lines(text);
	GMimeStream	*s;
	GMimeDataWrapper *w;

	/* Not g_mime_text_part_set_text: it picks the "best" charset and
	 * would convert the text to ISO-8859-1 when it fits. */
	s = g_mime_stream_mem_new_with_buffer(lf, strlen(lf));
	w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_part_set_content(GMIME_PART(part), w);
	g_object_unref(w);
	g_object_unref(s);
	free(lf);
	g_mime_text_part_set_charset(part, "UTF-8");
	g_mime_part_set_content_encoding(GMIME_PART(part),
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
	return GMIME_OBJECT(part);
}

/* Adds the mailbox "name <addr>" (no name if empty) to the header of
 * type t of msg; the name goes through header_clean, then GMime quotes
 * or encodes it (UTF-8). addr must pass mime_addr_ok. */
static void
add_mailbox(GMimeMessage *msg, GMimeAddressType t, const char *name,
    const char *addr)
{
	char		*n = header_clean(name);
	InternetAddress	*ia;

	ia = internet_address_mailbox_new(*n != '\0' ? n : NULL, addr);
	free(n);
	internet_address_set_charset(ia, "UTF-8");
	internet_address_list_add(g_mime_message_get_addresses(msg, t), ia);
	g_object_unref(ia);
}

/* The addresses of one message, each split into name and address. */
struct mail_addrs {
	char	*from_name, *from_addr;
	char	*rt_name, *rt_addr;	/* Reply-To */
	char	*to_name, *to_addr;
};

int
mime_to_client(const struct mail_msg *m)
{
	char	*name, *admin, *to;
	int	 client;

	if (m->order_id < 1)
		return 0;
	if (!mime_parse_mailbox(conf.admin_email, &name, &admin)) {
		free(name);
		return 1;
	}
	free(name);
	if (!mime_parse_mailbox(m->to_addr, &name, &to))
		to = NULL;
	free(name);
	client = to == NULL || strcasecmp(to, admin) != 0;
	free(admin);
	free(to);
	return client;
}

/* Sets a's Reply-To to reply_address's LOCAL+TOKEN@DOMAIN, TOKEN naming
 * m's order. Returns NULL, or why not. */
static const char *
reply_to_token(struct mail_addrs *a, const struct mail_msg *m)
{
	char		 tok[MAIL_REPLY_TOKEN_LEN + 1];
	char		*name, *addr, *at;
	struct buf	 v;

	if (!mime_parse_mailbox(conf.reply_address, &name, &addr))
		return "reply_address is not an address that mail can use";
	if (!mail_reply_token(tok, m->order_id)) {
		free(name);
		free(addr);
		return "no key to sign the reply address with";
	}
	at = strrchr(addr, '@');
	buf_init(&v);
	buf_printf(&v, "%.*s+%s%s", (int)(at - addr), addr, tok, at);
	free(a->rt_name);
	free(a->rt_addr);
	a->rt_name = name;
	a->rt_addr = xstrdup(v.data);
	buf_free(&v);
	free(addr);
	return NULL;
}

/* Fills a from the settings and m. Returns NULL, or why not. */
static const char *
addrs_parse(struct mail_addrs *a, const struct mail_msg *m)
{
	if (!mime_parse_mailbox(conf.mail_from, &a->from_name, &a->from_addr))
		return "mail_from is not an address that mail can use";
	if (!mime_parse_mailbox(conf.admin_email, &a->rt_name, &a->rt_addr))
		return "admin_email is not an address that mail can use";
	if (!mime_parse_mailbox(m->to_addr, &a->to_name, &a->to_addr))
		return "the recipient's address is not one that mail can use";
	if (m->to_name != NULL && *m->to_name != '\0') {
		free(a->to_name);
		a->to_name = xstrdup(m->to_name);
	}
	if (*conf.reply_address != '\0' && mime_to_client(m))
		return reply_to_token(a, m);
	return NULL;
}

/* Frees a's strings. */
static void
addrs_free(struct mail_addrs *a)
{
	free(a->from_name);
	free(a->from_addr);
	free(a->rt_name);
	free(a->rt_addr);
	free(a->to_name);
	free(a->to_addr);
}

/* Returns the message of m: its headers and a text part, or a
 * multipart/alternative of text and HTML; hex (from the row) names the
 * Message-ID and the boundary. */
static GMimeMessage *
message_new(const struct mail_msg *m, const struct mail_addrs *a,
    const char *hex)
{
	GMimeMessage	*msg = g_mime_message_new(TRUE);
	GMimeMultipart	*alt;
	GMimeObject	*text;
	GDateTime	*date;
	char		*subject = header_clean(m->subject);
	struct buf	 v;

	add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, a->from_name, a->from_addr);
	add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, a->rt_name, a->rt_addr);
	add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, a->to_name, a->to_addr);
	date = g_date_time_new_from_unix_utc(m->created_at);
	if (date == NULL)	/* out of GDateTime's range */
		date = g_date_time_new_from_unix_utc(0);
	g_mime_message_set_date(msg, date);
	g_date_time_unref(date);
	/* "Message-ID" as RFC 5322 spells it (GMime's setter writes
	 * "Message-Id"). */
	buf_init(&v);
	if (!mail_msgid_make(&v, m->id, strchr(a->from_addr, '@') + 1))
		buf_printf(&v, "<%s.%lld@%s>", hex, (long long)m->id,
		    strchr(a->from_addr, '@') + 1);
	g_mime_object_set_header(GMIME_OBJECT(msg), "Message-ID", v.data,
	    NULL);
	g_mime_message_set_subject(msg, subject, "UTF-8");
	free(subject);
	g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted",
	    "auto-generated", NULL);
	if (mail_marked(m->order_id, m->to_addr)) {
		/* A reply is cut at the marker (mail_reply_text). */
		buf_reset(&v);
		buf_printf(&v, "%s\n\n%s", MAIL_REPLY_MARKER, m->body_text);
		text = text_part("plain", v.data);
	} else
		text = text_part("plain", m->body_text);
	if (m->body_html == NULL || *m->body_html == '\0') {
		g_mime_message_set_mime_part(msg, text);
		g_object_unref(text);
		buf_free(&v);
		return msg;
	}
	/* "=_" never occurs in quoted-printable text. */
	alt = g_mime_multipart_new_with_subtype("alternative");
	buf_reset(&v);
	buf_printf(&v, "=_pmb_%s", hex);
	g_mime_multipart_set_boundary(alt, v.data);
	buf_free(&v);
	g_mime_multipart_add(alt, text);
	g_object_unref(text);
	text = text_part("html", m->body_html);
	g_mime_multipart_add(alt, text);
	g_object_unref(text);
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(alt));
	g_object_unref(alt);
	return msg;
}

/* Appends the quoted-printable line s (n bytes, no line end) to b,
 * split with soft breaks into lines of at most QP_LINE, never inside an
 * "=XX". GMime's encoder writes a space it held back without looking at
 * the line's length, so its lines may reach 78 (RFC 2045 allows 76). */
static void
qp_fold(struct buf *b, const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; ) {
		size_t len = s[i] == '=' && i + 2 < n ? 3 : 1;

		if (n - i <= QP_LINE - col) {	/* the rest fits */
			buf_append(b, s + i, n - i);
			return;
		}
		if (col + len > QP_LINE - 1) {
			buf_puts(b, "=\r\n");
			col = 0;
		}
		buf_append(b, s + i, len);
		col += len;
		i += len;
	}
}

/* Appends message s (n bytes, CRLF lines) to b with every body line
 * longer than QP_LINE folded: after the headers, only quoted-printable
 * lines can be (boundaries and part headers are short). */
static void
fold_body(struct buf *b, const char *s, size_t n)
{
	const char	*end = s + n, *body, *eol;
	size_t		 len;

	body = memmem(s, n, "\r\n\r\n", 4);
	body = body != NULL ? body + 4 : end;
	buf_append(b, s, (size_t)(body - s));
	for (const char *p = body; p < end; p = eol + 2) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		len = (size_t)((eol != NULL ? eol : end) - p);
		if (len > QP_LINE)
			qp_fold(b, p, len);
		else
			buf_append(b, p, len);
		if (eol == NULL)
			break;
		buf_puts(b, "\r\n");
	}
}

int
mail_build(struct buf *b, const struct mail_msg *m, const char **why)
{
	unsigned char		 hash[16];
	char			 hex[sizeof(hash) * 2 + 1];
	struct mail_addrs	 a = { NULL };
	struct buf		 seed;
	GMimeMessage		*msg;
	GMimeFormatOptions	*opts;
	GMimeStream		*out;
	GByteArray		*bytes;
	int			 ok = 0;

	if ((*why = addrs_parse(&a, m)) != NULL)
		goto done;
	/* The same row always gives the same Message-ID and boundary. */
	buf_init(&seed);
	buf_printf(&seed, "pmb-mail:%lld:%lld:%s:%s", (long long)m->id,
	    (long long)m->created_at, m->kind, a.to_addr);
	crypto_generichash(hash, sizeof(hash), (unsigned char *)seed.data,
	    seed.len, NULL, 0);
	buf_free(&seed);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

	msg = message_new(m, &a, hex);
	opts = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(opts,
	    GMIME_NEWLINE_FORMAT_DOS);
	out = g_mime_stream_mem_new();
	if (g_mime_object_write_to_stream(GMIME_OBJECT(msg), opts, out) < 0)
		*why = "the message could not be written";
	else {
		bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
		fold_body(b, (const char *)bytes->data, bytes->len);
		ok = 1;
	}
	g_object_unref(out);
	g_mime_format_options_free(opts);
	g_object_unref(msg);
done:
	addrs_free(&a);
	return ok;
}
