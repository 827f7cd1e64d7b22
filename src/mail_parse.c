/* mail_parse.c: reading a received message with GMime 3 (issue 18). The
 * parse keeps what routing needs (addresses, threading headers, the loop
 * and list headers, a bounce's fields) and one text: the first text/plain
 * part that is not an attachment, else the first text/html part made text
 * with libxml2's HTML parser (GMime has no HTML-to-text). GMime converts
 * each part's charset to UTF-8 (g_mime_text_part_get_text); a charset it
 * cannot convert leaves bytes that g_utf8_make_valid replaces. Nothing
 * is trusted: the fuzz harness tests/fuzz/fuzz_parse.c feeds it any bytes.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "conf.h"
#include "mail_parse.h"
#include "util.h"

#define MAX_DEPTH	32	/* MIME nesting walked at most */
#define MAX_REFERENCES	100	/* References kept at most */

/* What the walk over the MIME tree has found so far. */
struct walk {
	int	 plain;		/* a text/plain part was taken */
	char	*html;		/* the first text/html part's text */
	int	 report;	/* inside a delivery-status report */
};

/* Returns the message GMime reads from len bytes at raw (its reference),
 * or NULL. */
static GMimeMessage *
message_new(const char *raw, size_t len)
{
	GMimeStream	*stream = g_mime_stream_mem_new_with_buffer(raw, len);
	GMimeParser	*parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage	*msg;

	g_object_unref(stream);
	msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	return msg;
}

/* Returns a malloc'd copy of s (a GLib string or NULL: then NULL), made
 * valid UTF-8. */
static char *
dup_utf8(const char *s)
{
	gchar	*v;
	char	*r;

	if (s == NULL)
		return NULL;
	v = g_utf8_make_valid(s, -1);
	r = xstrdup(v);
	g_free(v);
	return r;
}

/* Returns the decoded bytes of part as a malloc'd NUL-terminated string
 * (NUL bytes inside end it early), and their count in *size. */
static char *
part_bytes(GMimePart *part, size_t *size)
{
	GMimeDataWrapper	*content = g_mime_part_get_content(part);
	GMimeStream		*mem;
	GByteArray		*bytes;
	char			*r;

	*size = 0;
	if (content == NULL)
		return xstrdup("");
	mem = g_mime_stream_mem_new();
	if (g_mime_data_wrapper_write_to_stream(content, mem) < 0) {
		g_object_unref(mem);
		return xstrdup("");
	}
	bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	*size = bytes->len;
	r = xmalloc(bytes->len + 1);
	if (bytes->len > 0)
		memcpy(r, bytes->data, bytes->len);
	r[bytes->len] = '\0';
	g_object_unref(mem);
	return r;
}

/* Returns a malloc'd copy of the Message-ID in value, without "<>", or
 * NULL when there is none. */
static char *
message_id(const char *value)
{
	char	*id, *r;

	if (value == NULL)
		return NULL;
	if ((id = g_mime_utils_decode_message_id(value)) == NULL)
		return NULL;
	r = dup_utf8(id);
	g_free(id);
	return r;
}

/* Appends to b the encoded word "=?CHARSET?B?PAYLOAD?=" at w (wlen
 * bytes) made Q-encoded: every decoded byte as "=XX". GMime 3.2.13
 * drops the encoded word that follows a B-encoded word ending in one
 * "=" of padding ("=?UTF-8?B?UmU6IA==?= =?UTF-8?B?w6k=?= x" decodes,
 * "=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=" loses its second "\xc3\xa9"), in
 * a Subject as in a display name;
 * Q-encoded words do not trip it, and GMime still joins adjacent words
 * before converting their charset (a character split over two words). */
static void
word_b_to_q(struct buf *b, const char *w, size_t wlen)
{
	const char	*q1 = memchr(w + 2, '?', wlen - 2), *payload;
	char		*text;
	guchar		*bytes;
	gsize		 n;

	if (q1 == NULL || q1 + 3 > w + wlen - 2 || (q1[1] != 'B' &&
	    q1[1] != 'b') || q1[2] != '?') {
		buf_append(b, w, wlen);
		return;
	}
	payload = q1 + 3;
	text = xmalloc((size_t)(w + wlen - 2 - payload) + 1);
	memcpy(text, payload, (size_t)(w + wlen - 2 - payload));
	text[w + wlen - 2 - payload] = '\0';
	bytes = g_base64_decode(text, &n);
	buf_append(b, w, (size_t)(q1 - w));
	buf_puts(b, "?Q?");
	for (gsize i = 0; i < n; i++)
		buf_printf(b, "=%02X", bytes[i]);
	buf_puts(b, "?=");
	g_free(bytes);
	free(text);
}

/* Returns the raw value of msg's header name (malloc'd), unfolded, its
 * B-encoded words made Q (word_b_to_q), or NULL when it has none. */
static char *
header_raw(GMimeMessage *msg, const char *name)
{
	GMimeHeaderList	*hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	GMimeHeader	*h = hl != NULL ? g_mime_header_list_get_header(hl,
	    name) : NULL;
	const char	*raw = h != NULL ? g_mime_header_get_raw_value(h) : NULL;
	struct buf	 b;

	if (raw == NULL)
		return NULL;
	buf_init(&b);
	for (const char *p = raw; *p != '\0';) {
		const char *q1, *end;

		if (*p == '\r' || *p == '\n') {
			p++;
		} else if (p[0] == '=' && p[1] == '?' &&
		    (q1 = strchr(p + 2, '?')) != NULL && q1[1] != '\0' &&
		    q1[2] == '?' && (end = strstr(q1 + 3, "?=")) != NULL) {
			/* "=?CHARSET?E?PAYLOAD?=" */
			word_b_to_q(&b, p, (size_t)(end + 2 - p));
			p = end + 2;
		} else
			buf_putc(&b, *p++);
	}
	return buf_take(&b);
}

/* Returns the decoded Subject of msg (malloc'd), or NULL. */
static char *
subject_decode(GMimeMessage *msg)
{
	char	*raw = header_raw(msg, "Subject"), *decoded, *r;

	if (raw == NULL)
		return NULL;
	decoded = g_mime_utils_header_decode_text(NULL, raw);
	r = dup_utf8(g_strstrip(decoded));
	g_free(decoded);
	free(raw);
	return r;
}

/* Sets m's from address (domain lowercased) and name from msg's From
 * (read again from its raw value: see word_b_to_q). */
static void
parse_from(GMimeMessage *msg, struct inbound *m)
{
	char			*raw = header_raw(msg, "From"), *at;
	InternetAddressList	*from = raw != NULL ?
	    internet_address_list_parse(NULL, raw) : NULL;
	InternetAddress		*ia;
	const char		*name;

	free(raw);
	if (from == NULL)
		return;
	if (internet_address_list_length(from) < 1 ||
	    !INTERNET_ADDRESS_IS_MAILBOX(ia =
	    internet_address_list_get_address(from, 0))) {
		g_object_unref(from);
		return;
	}
	m->from_addr = dup_utf8(internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(ia)));
	name = internet_address_get_name(ia);
	m->from_name = dup_utf8(name != NULL ? name : "");
	if (m->from_addr != NULL && (at = strrchr(m->from_addr, '@')) != NULL)
		for (; *at != '\0'; at++)
			*at = (char)tolower((unsigned char)*at);
	g_object_unref(from);
}

/* Appends the mailboxes of list (groups' members too) to b. */
static void
list_addrs(InternetAddressList *list, struct buf *b, int depth)
{
	int	 n = list != NULL ? internet_address_list_length(list) : 0;

	for (int i = 0; i < n && depth < 2; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			list_addrs(internet_address_group_get_members(
			    INTERNET_ADDRESS_GROUP(ia)), b, depth + 1);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		if (b->len > 0)
			buf_puts(b, ", ");
		buf_puts(b, internet_address_mailbox_get_addr(
		    INTERNET_ADDRESS_MAILBOX(ia)));
	}
}

/* Sets m's References from the header's value. */
static void
parse_references(const char *value, struct inbound *m)
{
	GMimeReferences	*refs;
	int		 n;

	if (value == NULL || (refs = g_mime_references_parse(NULL, value))
	    == NULL)
		return;
	n = g_mime_references_length(refs);
	if (n > MAX_REFERENCES)
		n = MAX_REFERENCES;
	m->references = xcalloc((size_t)n + 1, sizeof(*m->references));
	for (int i = 0; i < n; i++)
		m->references[m->nreferences++] = dup_utf8(
		    g_mime_references_get_message_id(refs, i));
	g_mime_references_free(refs);
}

/* Sets the header fields of m from msg. */
static void
parse_headers(GMimeMessage *msg, struct inbound *m)
{
	GMimeObject	*o = GMIME_OBJECT(msg);
	struct buf	 to;
	const char	*v;

	parse_from(msg, m);
	buf_init(&to);
	list_addrs(g_mime_message_get_to(msg), &to, 0);
	m->to = dup_utf8(to.data != NULL ? to.data : "");
	buf_free(&to);
	m->delivered_to = dup_utf8(g_mime_object_get_header(o, "Delivered-To"));
	if ((v = g_mime_object_get_header(o, "Return-Path")) != NULL) {
		char *id = message_id(v);	/* "<addr>": the same syntax */

		m->envelope_from = id != NULL ? id : dup_utf8(v);
	}
	m->subject = subject_decode(msg);
	m->message_id = dup_utf8(g_mime_message_get_message_id(msg));
	m->in_reply_to = message_id(g_mime_object_get_header(o,
	    "In-Reply-To"));
	parse_references(g_mime_object_get_header(o, "References"), m);
	m->auto_submitted = dup_utf8(g_mime_object_get_header(o,
	    "Auto-Submitted"));
	m->precedence = dup_utf8(g_mime_object_get_header(o, "Precedence"));
	m->list = g_mime_object_get_header(o, "List-Id") != NULL ||
	    g_mime_object_get_header(o, "List-Unsubscribe") != NULL;
}

/* Returns a malloc'd copy of the first field name's value in the
 * delivery-status text s (continuation lines joined by one space), or
 * NULL. */
static char *
dsn_field(const char *s, const char *name)
{
	size_t		 nlen = strlen(name);
	struct buf	 b;

	for (const char *l = s; *l != '\0'; l += strcspn(l, "\n"), l +=
	    *l == '\n') {
		if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':')
			continue;
		buf_init(&b);
		for (const char *p = l + nlen + 1;;) {
			size_t n = strcspn(p, "\r\n");

			buf_append(&b, p, n);
			p += n;
			p += *p == '\r';
			p += *p == '\n';
			if (*p != ' ' && *p != '\t')
				break;
			/* A folded line goes on after one space. */
			buf_putc(&b, ' ');
			p += strspn(p, " \t");
		}
		{
			char *v = buf_take(&b), *r = dup_utf8(g_strstrip(v));

			free(v);
			return r;
		}
	}
	return NULL;
}

/* Sets m's DSN fields from a message/delivery-status part's text. */
static void
parse_dsn_status(const char *s, struct inbound *m)
{
	if (m->dsn_status == NULL)
		m->dsn_status = dsn_field(s, "Status");
	if (m->dsn_diagnostic == NULL)
		m->dsn_diagnostic = dsn_field(s, "Diagnostic-Code");
}

/* Sets m's dsn_message_id from the headers in text (text/rfc822-headers). */
static void
parse_dsn_headers(const char *text, size_t len, struct inbound *m)
{
	GMimeMessage	*msg;

	if (m->dsn_message_id != NULL || (msg = message_new(text, len)) == NULL)
		return;
	m->dsn_message_id = dup_utf8(g_mime_message_get_message_id(msg));
	g_object_unref(msg);
}

/* Adds an attachment to m's list, with its decoded bytes data (taken
 * over; NULL: none) when files are on and it is within
 * attachment_max_mb. */
static void
add_attachment(struct inbound *m, const char *name, GMimeContentType *ct,
    size_t size, char *data)
{
	struct inbound_attachment *a;
	char *type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;

	m->att = xrealloc(m->att, (m->natt + 1) * sizeof(*m->att));
	a = &m->att[m->natt++];
	a->name = dup_utf8(name != NULL ? name : "");
	a->type = dup_utf8(type != NULL ? type : "application/octet-stream");
	a->size = size;
	a->data = NULL;
	if (data != NULL && size > 0 && (uint64_t)size <=
	    (uint64_t)conf.attachment_max_mb * 1024 * 1024)
		a->data = data;
	else
		free(data);
	g_free(type);
}

/* Returns text (format=flowed, RFC 3676) unflowed, malloc'd: a line
 * ending in a space joins the next one of the same quote depth (with
 * delsp, without that space); a space-stuffed line loses its first space
 * (a quoted one keeps it after the ">" that start its first line);
 * the signature line "-- " stays as it is. Line ends become LF. */
static char *
unflow(const char *text, int delsp)
{
	struct buf	 b;
	int		 joining = 0;
	size_t		 depth = 0;

	buf_init(&b);
	for (const char *p = text; *p != '\0';) {
		size_t	 n = strcspn(p, "\n"), q = strspn(p, ">");
		size_t	 len = n > 0 && p[n - 1] == '\r' ? n - 1 : n;
		const char *body = p + q;
		size_t	 blen = len - q;
		int	 soft;

		/* Space-stuffed; a quoted line's "> " stays at its start. */
		if (blen > 0 && *body == ' ' && (q == 0 || (joining &&
		    q == depth))) {
			body++;
			blen--;
		}
		if (joining && q != depth)	/* a broken flow: end it */
			buf_putc(&b, '\n');
		if (!joining || q != depth)
			buf_append(&b, p, q);
		soft = blen > 0 && body[blen - 1] == ' ' && !(blen == 3 &&
		    memcmp(body, "-- ", 3) == 0);
		buf_append(&b, body, soft && delsp ? blen - 1 : blen);
		if (!soft && p[n] == '\n')
			buf_putc(&b, '\n');
		joining = soft;
		depth = q;
		p += n;
		p += *p == '\n';
	}
	return buf_take(&b);
}

/* Returns the text of a text part converted to UTF-8 (malloc'd), and
 * unflowed if it is format=flowed. */
static char *
text_of(GMimePart *part)
{
	char		*t, *r;
	const char	*flowed;

	if (!GMIME_IS_TEXT_PART(part))
		return xstrdup("");
	t = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	r = dup_utf8(t != NULL ? t : "");
	g_free(t);
	if ((flowed = g_mime_object_get_content_type_parameter(GMIME_OBJECT(
	    part), "format")) != NULL && strcasecmp(flowed, "flowed") == 0) {
		const char *delsp = g_mime_object_get_content_type_parameter(
		    GMIME_OBJECT(part), "delsp");

		t = r;
		r = unflow(t, delsp != NULL && strcasecmp(delsp, "yes") == 0);
		free(t);
	}
	return r;
}

/* Takes one leaf part: the text, the HTML, a DSN's parts, or an
 * attachment listed. */
static void
walk_part(GMimePart *part, struct inbound *m, struct walk *w)
{
	GMimeContentType *ct = g_mime_object_get_content_type(
	    GMIME_OBJECT(part));
	const char	*name = g_mime_part_get_filename(part);
	int		 att = g_mime_part_is_attachment(part) || name != NULL;
	size_t		 size;
	char		*s;

	if (ct == NULL)
		return;
	if (w->report && (g_mime_content_type_is_type(ct, "message",
	    "delivery-status") || g_mime_content_type_is_type(ct, "message",
	    "global-delivery-status"))) {
		s = part_bytes(part, &size);
		parse_dsn_status(s, m);
		free(s);
	} else if (w->report && g_mime_content_type_is_type(ct, "text",
	    "rfc822-headers")) {
		s = part_bytes(part, &size);
		parse_dsn_headers(s, size, m);
		free(s);
	} else if (!att && !w->plain && g_mime_content_type_is_type(ct,
	    "text", "plain")) {
		free(m->text);
		m->text = text_of(part);
		w->plain = 1;
	} else if (!att && w->html == NULL && g_mime_content_type_is_type(ct,
	    "text", "html")) {
		w->html = text_of(part);
	} else if (att || !g_mime_content_type_is_type(ct, "text", "*")) {
		s = part_bytes(part, &size);
		add_attachment(m, name, ct, size, s);
	}
}

/* Walks the MIME tree under o (depth levels down). */
static void
walk(GMimeObject *o, int depth, struct inbound *m, struct walk *w)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);

	if (depth > MAX_DEPTH)
		return;
	if (GMIME_IS_MULTIPART(o)) {
		GMimeMultipart	*mp = GMIME_MULTIPART(o);
		const char	*rt = ct != NULL ?
		    g_mime_content_type_get_parameter(ct, "report-type") : NULL;
		int		 outer = w->report;

		if (ct != NULL && g_mime_content_type_is_type(ct, "multipart",
		    "report") && rt != NULL && (strcasecmp(rt,
		    "delivery-status") == 0 || strcasecmp(rt,
		    "global-delivery-status") == 0))
			m->dsn = w->report = 1;
		for (int i = 0; i < g_mime_multipart_get_count(mp); i++)
			walk(g_mime_multipart_get_part(mp, i), depth + 1, m, w);
		w->report = outer;
	} else if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(o));

		if (w->report && inner != NULL && m->dsn_message_id == NULL)
			m->dsn_message_id = dup_utf8(
			    g_mime_message_get_message_id(inner));
		else if (!w->report)
			add_attachment(m, NULL, ct, 0, NULL);
	} else if (GMIME_IS_PART(o))
		walk_part(GMIME_PART(o), m, w);
}

int
mail_parse(const char *raw, size_t len, struct inbound *m)
{
	GMimeMessage	*msg;
	GMimeObject	*body;
	struct walk	 w = { 0, NULL, 0 };

	memset(m, 0, sizeof(*m));
	m->text = xstrdup("");
	if ((msg = message_new(raw, len)) == NULL)
		return -1;
	parse_headers(msg, m);
	if ((body = g_mime_message_get_mime_part(msg)) != NULL)
		walk(body, 0, m, &w);
	if (!w.plain && w.html != NULL) {
		free(m->text);
		m->text = mail_html_text(w.html, strlen(w.html));
		m->text_from_html = 1;
	}
	free(w.html);
	g_object_unref(msg);
	return 0;
}

void
inbound_free(struct inbound *m)
{
	free(m->from_addr);
	free(m->from_name);
	free(m->to);
	free(m->delivered_to);
	free(m->envelope_from);
	free(m->subject);
	free(m->message_id);
	free(m->in_reply_to);
	for (size_t i = 0; i < m->nreferences; i++)
		free(m->references[i]);
	free(m->references);
	free(m->auto_submitted);
	free(m->precedence);
	free(m->dsn_message_id);
	free(m->dsn_status);
	free(m->dsn_diagnostic);
	free(m->text);
	for (size_t i = 0; i < m->natt; i++) {
		free(m->att[i].data);
		free(m->att[i].name);
		free(m->att[i].type);
	}
	free(m->att);
	memset(m, 0, sizeof(*m));
}
