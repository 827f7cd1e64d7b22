/* mime.c: RFC 5322 + MIME messages, built from the outbox row alone
 * (Date is when it was queued, Message-ID and boundary are derived from
 * the row), so every try of one message sends the same bytes. The
 * encoders (quoted-printable, RFC 2047 Q words) are small and written
 * out here: curl's MIME API cannot hand back the bytes that the dir and
 * sendmail transports need, nor encode headers, and GMime would bring
 * GLib along for two hundred lines of code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "conf.h"
#include "email_addr.h"
#include "mime.h"
#include "util.h"

#define HDR_FOLD	76	/* fold header lines at this column (RFC
				 * 2047 caps lines with encoded words) */
#define EW_PAYLOAD	45	/* encoded bytes in one RFC 2047 word */
#define PLAIN_WORD_MAX	60	/* longer words go RFC 2047-encoded */
#define PLAIN_NAME_MAX	60	/* longer display names go encoded */
#define QP_LINE		76	/* quoted-printable line length */

static const char hexdig[] = "0123456789ABCDEF";

/* Appends one quoted-printable line (no line end) of n bytes. */
static void
qp_line(struct buf *b, const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char	 c = (unsigned char)s[i];
		int		 last = i + 1 == n, enc;
		char		 tok[3];
		size_t		 len;

		for (;;) {
			/* Whitespace is encoded only at the end of a line;
			 * a dot or "From " starting a line is encoded too,
			 * so no transport can mangle it. */
			if (c == ' ' || c == '\t')
				enc = last;
			else
				enc = c < 33 || c > 126 || c == '=' ||
				    (col == 0 && c == '.') || (col == 0 &&
				    n - i >= 5 && memcmp(s + i, "From ", 5) ==
				    0);
			len = enc ? 3 : 1;
			/* A soft break "=" ends every line but the last. */
			if (col + len <= QP_LINE - 1 ||
			    (last && col + len <= QP_LINE))
				break;
			buf_puts(b, "=\r\n");
			col = 0;
		}
		if (enc) {
			tok[0] = '=';
			tok[1] = hexdig[c >> 4];
			tok[2] = hexdig[c & 15];
			buf_append(b, tok, 3);
		} else
			buf_putc(b, (char)c);
		col += len;
	}
}

void
mime_qp(struct buf *b, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, "\r\n");

		qp_line(b, p, n);
		p += n;
		if (*p == '\0')
			break;
		buf_puts(b, "\r\n");
		if (p[0] == '\r' && p[1] == '\n')
			p += 2;
		else
			p++;
	}
}

/* A header being written: folds before a token that would pass
 * HDR_FOLD, never before the first token of a line. */
struct hdr {
	struct buf	*b;
	size_t		 col;
	int		 fresh;		/* no token on this line yet */
};

/* Starts the header "field:". */
static void
hdr_start(struct hdr *h, struct buf *b, const char *field)
{
	h->b = b;
	buf_puts(b, field);
	buf_putc(b, ':');
	h->col = strlen(field) + 1;
	h->fresh = 1;
}

/* Appends a token of n bytes after one space, or after a fold. */
static void
hdr_token(struct hdr *h, const char *tok, size_t n)
{
	if (!h->fresh && h->col + 1 + n > HDR_FOLD) {
		buf_puts(h->b, "\r\n");
		h->col = 0;
	}
	buf_putc(h->b, ' ');
	buf_append(h->b, tok, n);
	h->col += 1 + n;
	h->fresh = 0;
}

/* Ends the header line. */
static void
hdr_end(struct hdr *h)
{
	buf_puts(h->b, "\r\n");
}

/* Returns a copy of s fit for a header: each run of spaces and control
 * characters becomes one space and, if s is not valid UTF-8, every
 * non-ASCII byte becomes '?'. The caller frees it. */
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

/* Returns 1 if s (cleaned) may go into a header as it is: printable
 * ASCII, nothing that looks like an encoded word, no over-long word. */
static int
header_plain(const char *s)
{
	size_t word = 0;

	if (strstr(s, "=?") != NULL)
		return 0;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
		word = *s == ' ' ? 0 : word + 1;
		if (word > PLAIN_WORD_MAX)
			return 0;
	}
	return 1;
}

/* Appends s (cleaned UTF-8) as RFC 2047 Q encoded-words, each a token
 * of h, splitting only between characters. Only the characters that
 * RFC 2047 allows in a phrase go unencoded, so the words are valid in a
 * display name as well as in a Subject. */
static void
hdr_words(struct hdr *h, const char *s)
{
	struct buf	w;
	size_t		payload = 0;

	buf_init(&w);
	while (*s != '\0') {
		unsigned char	c = (unsigned char)*s;
		size_t		clen = 1, elen = 0;

		if (c >= 0xf0)
			clen = 4;
		else if (c >= 0xe0)
			clen = 3;
		else if (c >= 0xc0)
			clen = 2;
		for (size_t i = 0; i < clen; i++) {
			unsigned char d = (unsigned char)s[i];

			elen += (d >= 'A' && d <= 'Z') || (d >= 'a' &&
			    d <= 'z') || (d >= '0' && d <= '9') ||
			    strchr("!*+-/ ", d) != NULL ? 1 : 3;
		}
		if (payload > 0 && payload + elen > EW_PAYLOAD) {
			buf_puts(&w, "?=");
			hdr_token(h, w.data, w.len);
			buf_reset(&w);
			payload = 0;
		}
		if (payload == 0)
			buf_puts(&w, "=?UTF-8?Q?");
		for (size_t i = 0; i < clen; i++) {
			unsigned char d = (unsigned char)s[i];

			if (d == ' ')
				buf_putc(&w, '_');
			else if ((d >= 'A' && d <= 'Z') || (d >= 'a' &&
			    d <= 'z') || (d >= '0' && d <= '9') ||
			    strchr("!*+-/", d) != NULL)
				buf_putc(&w, (char)d);
			else {
				buf_putc(&w, '=');
				buf_putc(&w, hexdig[d >> 4]);
				buf_putc(&w, hexdig[d & 15]);
			}
		}
		payload += elen;
		s += clen;
	}
	if (payload > 0) {
		buf_puts(&w, "?=");
		hdr_token(h, w.data, w.len);
	}
	buf_free(&w);
}

void
mime_header_text(struct buf *b, const char *field, const char *value)
{
	struct hdr	 h;
	char		*v = header_clean(value);

	hdr_start(&h, b, field);
	if (header_plain(v)) {
		/* Words split at single spaces: a fold keeps the space. */
		const char *p = v;

		for (;;) {
			size_t n = strcspn(p, " ");

			hdr_token(&h, p, n);
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
	} else
		hdr_words(&h, v);
	hdr_end(&h);
	free(v);
}

void
mime_header_mailbox(struct buf *b, const char *field, const char *name,
    const char *addr)
{
	struct hdr	 h;
	struct buf	 q;
	char		*n = header_clean(name);

	hdr_start(&h, b, field);
	if (*n == '\0') {
		hdr_token(&h, addr, strlen(addr));
		hdr_end(&h);
		free(n);
		return;
	}
	if (header_plain(n) && strlen(n) <= PLAIN_NAME_MAX) {
		buf_init(&q);
		buf_putc(&q, '"');
		for (const char *p = n; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&q, '\\');
			buf_putc(&q, *p);
		}
		buf_putc(&q, '"');
		hdr_token(&h, q.data, q.len);
		buf_free(&q);
	} else
		hdr_words(&h, n);
	buf_init(&q);
	buf_printf(&q, "<%s>", addr);
	hdr_token(&h, q.data, q.len);
	buf_free(&q);
	hdr_end(&h);
	free(n);
}

int
mime_addr_ok(const char *addr)
{
	return email_addr_check(addr) == NULL;
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

/* Appends Unix seconds t as an RFC 5322 date in UTC. */
static void
fmt_rfc5322(struct buf *b, int64_t t)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(b, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    day[tm.tm_wday % 7], tm.tm_mday, month_abbr(tm.tm_mon),
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Appends one MIME part of the given type, quoted-printable, preceded
 * by its boundary line. */
static void
mime_part(struct buf *b, const char *boundary, const char *type,
    const char *body)
{
	buf_printf(b, "\r\n--%s\r\n", boundary);
	buf_printf(b, "Content-Type: %s; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
	mime_qp(b, body);
}

int
mail_build(struct buf *b, const struct mail_msg *m, const char **why)
{
	unsigned char	 hash[16];
	char		 hex[sizeof(hash) * 2 + 1], boundary[64];
	char		*from_name = NULL, *from_addr = NULL;
	char		*rt_name = NULL, *rt_addr = NULL;
	char		*to_name = NULL, *to_addr = NULL;
	const char	*domain;
	struct buf	 seed;
	int		 ok = 0;

	if (!mime_parse_mailbox(conf.mail_from, &from_name, &from_addr)) {
		*why = "mail_from is not an address that mail can use";
		goto out;
	}
	if (!mime_parse_mailbox(conf.admin_email, &rt_name, &rt_addr)) {
		*why = "admin_email is not an address that mail can use";
		goto out;
	}
	if (!mime_parse_mailbox(m->to_addr, &to_name, &to_addr)) {
		*why = "the recipient's address is not one that mail can use";
		goto out;
	}
	if (m->to_name != NULL && *m->to_name != '\0') {
		free(to_name);
		to_name = xstrdup(m->to_name);
	}
	domain = strchr(from_addr, '@') + 1;

	/* The same row always gives the same Message-ID and boundary. */
	buf_init(&seed);
	buf_printf(&seed, "pmb-mail:%lld:%lld:%s:%s", (long long)m->id,
	    (long long)m->created_at, m->kind, to_addr);
	crypto_generichash(hash, sizeof(hash), (unsigned char *)seed.data,
	    seed.len, NULL, 0);
	buf_free(&seed);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(boundary, sizeof(boundary), "=_pmb_%s", hex);

	buf_puts(b, "Date: ");
	fmt_rfc5322(b, m->created_at);
	buf_printf(b, "\r\nMessage-ID: <%s.%lld@%s>\r\n", hex,
	    (long long)m->id, domain);
	mime_header_mailbox(b, "From", from_name, from_addr);
	mime_header_mailbox(b, "Reply-To", rt_name, rt_addr);
	mime_header_mailbox(b, "To", to_name, to_addr);
	mime_header_text(b, "Subject", m->subject);
	buf_puts(b, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
	if (m->body_html == NULL || *m->body_html == '\0') {
		buf_puts(b, "Content-Type: text/plain; charset=UTF-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		mime_qp(b, m->body_text);
		buf_puts(b, "\r\n");
	} else {
		/* "=_" never occurs in quoted-printable text. */
		buf_printf(b, "Content-Type: multipart/alternative;\r\n"
		    " boundary=\"%s\"\r\n", boundary);
		mime_part(b, boundary, "text/plain", m->body_text);
		mime_part(b, boundary, "text/html", m->body_html);
		buf_printf(b, "\r\n--%s--\r\n", boundary);
	}
	ok = 1;
out:
	free(from_name);
	free(from_addr);
	free(rt_name);
	free(rt_addr);
	free(to_name);
	free(to_addr);
	return ok;
}
