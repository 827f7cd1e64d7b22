/* multipart.c: a streaming multipart/form-data reader (multipart.h).
 *
 * The bytes fed are copied into a window and read from there as far as
 * they go; what may still be the start of a delimiter or of a header
 * line stays for the next feed. The first delimiter is found as every
 * other one ("\r\n--BOUNDARY") by starting the window with "\r\n". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "multipart.h"
#include "util.h"

/* The window: a feed's bytes are read through it in pieces this big. */
#define MP_WINDOW	65536

enum mp_state {
	MP_PREAMBLE,	/* before the first delimiter: nothing allowed */
	MP_AFTER,	/* after a delimiter: "\r\n" or "--" */
	MP_HEADERS,	/* a part's header lines */
	MP_DATA,	/* a part's data, up to the next delimiter */
	MP_EPILOGUE,	/* after the closing delimiter: ignored */
	MP_FAILED
};

struct multipart {
	enum mp_state		 state;
	struct mp_handler	 h;
	char			 delim[4 + MP_BOUNDARY_MAX + 1]; /* \r\n--B */
	size_t			 dlen;
	int			 in_part;	/* begin called, end not yet */
	size_t			 parts;
	size_t			 headers;	/* lines of this part */
	int			 disposition;	/* this part had one */
	struct mp_part		 part;
	char			 win[MP_WINDOW + 4 + MP_BOUNDARY_MAX + 2];
	size_t			 pos, len;	/* unread: win[pos..len) */
};

/* Returns 1 if c may be in a boundary (RFC 2046's bchars). */
static int
bchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=? ", c) != NULL;
}

/* Copies ctype's boundary parameter into b (size MP_BOUNDARY_MAX + 1).
 * Returns 1, or 0 if there is none or it is not a valid boundary. */
static int
boundary_of(const char *ctype, char *b)
{
	const char	*p = ctype;
	size_t		 n = 0;
	int		 quoted;

	while ((p = strchr(p, ';')) != NULL) {
		p += 1 + strspn(p + 1, " \t");
		if (strncasecmp(p, "boundary=", 9) == 0)
			break;
	}
	if (p == NULL)
		return 0;
	p += 9;
	if ((quoted = *p == '"'))
		p++;
	for (; *p != '\0' && (quoted ? *p != '"' : *p != ';' && *p != ' ');
	    p++) {
		if (!bchar(*p) || n == MP_BOUNDARY_MAX)
			return 0;
		b[n++] = *p;
	}
	if (quoted && *p++ != '"')
		return 0;
	b[n] = '\0';
	/* Nothing but other parameters may follow. */
	p += strspn(p, " \t");
	return n > 0 && b[n - 1] != ' ' && (*p == '\0' || *p == ';');
}

struct multipart *
mp_new(const char *ctype, const struct mp_handler *h, const char **why)
{
	struct multipart	*mp;
	char			 b[MP_BOUNDARY_MAX + 1];

	if (ctype == NULL || strncasecmp(ctype, "multipart/form-data", 19) ||
	    (ctype[19] != ';' && ctype[19] != ' ' &&
	    ctype[19] != '\0')) {
		*why = "This address accepts only HTML form posts.";
		return NULL;
	}
	if (!boundary_of(ctype, b)) {
		*why = "The upload's Content-Type has no valid boundary.";
		return NULL;
	}
	mp = xcalloc(1, sizeof(*mp));
	mp->h = *h;
	mp->dlen = (size_t)snprintf(mp->delim, sizeof(mp->delim), "\r\n--%s",
	    b);
	/* The first delimiter has no CRLF before it: give it one. */
	memcpy(mp->win, "\r\n", 2);
	mp->len = 2;
	mp->state = MP_PREAMBLE;
	return mp;
}

/* Fails mp with why; returns -1. */
static int
mp_fail(struct multipart *mp, const char **why, const char *msg)
{
	if (msg != NULL)
		*why = msg;
	mp->state = MP_FAILED;
	return -1;
}

/* Copies a parameter value (quoted-string or token) at *s into out
 * (size MP_NAME_MAX + 1), moving *s past it. Returns 1, or 0 when it is
 * malformed or too long. */
static int
param_value(const char **s, char *out)
{
	const char	*p = *s;
	size_t		 n = 0;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			/* Browsers send a quote as %22, a backslash as it
			 * is (the HTML spec), so none escapes. */
			if (*p == '\0')
				return 0;
			if (n == MP_NAME_MAX)
				return 0;
			out[n++] = *p;
		}
		p++;
	} else
		for (; *p != '\0' && *p != ';' && *p != ' ' && *p != '\t';
		    p++) {
			if (n == MP_NAME_MAX)
				return 0;
			out[n++] = *p;
		}
	out[n] = '\0';
	*s = p;
	return 1;
}

/* Decodes an RFC 8187 value (UTF-8'lang'pct-encoded) in place. Returns
 * 1, or 0 if it is not UTF-8 or malformed. */
static int
ext_value(char *v)
{
	char	*q, *dec;
	size_t	 n;

	if (strncasecmp(v, "utf-8'", 6) != 0 ||
	    (q = strchr(v + 6, '\'')) == NULL)
		return 0;
	q++;
	if ((dec = url_decode(q, strlen(q), 0)) == NULL)
		return 0;
	n = strlen(dec);
	memcpy(v, dec, n + 1);	/* decoded is never longer */
	free(dec);
	return 1;
}

/* Makes f a file name fit to keep: its last path component (browsers
 * of old sent the whole path), the HTML spec's %22 for a quote
 * decoded, control characters removed. Returns 1, or 0 if it is not
 * UTF-8. */
static int
clean_filename(char *f)
{
	char	*base = f, *w, *p;

	for (p = f; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	for (w = f, p = base; *p != '\0'; p++) {
		if (p[0] == '%' && p[1] == '2' && p[2] == '2') {
			*w++ = '"';
			p += 2;
		} else if ((unsigned char)*p >= 0x20 && *p != 0x7f)
			*w++ = *p;
	}
	*w = '\0';
	return utf8_valid(f, strlen(f));
}

/* Reads a Content-Disposition value into mp->part. Returns 1, or 0
 * with *why. */
static int
disposition(struct multipart *mp, const char *v, const char **why)
{
	char	 key[32], val[MP_NAME_MAX + 1], ext[MP_NAME_MAX + 1] = "";
	int	 seen_name = 0, seen_file = 0, seen_ext = 0;
	size_t	 k;

	*why = "A part of the upload has a malformed Content-Disposition.";
	if (strncasecmp(v, "form-data", 9) != 0 || (v[9] != ';' &&
	    v[9] != '\0' && v[9] != ' '))
		return 0;
	for (v += 9;;) {
		v += strspn(v, " \t");
		if (*v == '\0')
			break;
		if (*v++ != ';')
			return 0;
		v += strspn(v, " \t");
		for (k = 0; *v != '=' && *v != '\0' && *v != ';'; v++)
			if (k < sizeof(key) - 1 && *v != ' ')
				key[k++] = *v;
		key[k] = '\0';
		if (*v++ != '=' || !param_value(&v, val))
			return 0;
		if (!strcasecmp(key, "name")) {
			if (seen_name++)
				return 0;
			memcpy(mp->part.name, val, sizeof(val));
		} else if (!strcasecmp(key, "filename")) {
			if (seen_file++)
				return 0;
			memcpy(mp->part.filename, val, sizeof(val));
		} else if (!strcasecmp(key, "filename*")) {
			if (seen_ext++ || !ext_value(val))
				return 0;
			memcpy(ext, val, sizeof(val));
		}
	}
	if (seen_ext)
		memcpy(mp->part.filename, ext, sizeof(ext));
	mp->part.is_file = seen_file || seen_ext;
	if (!seen_name || *mp->part.name == '\0' ||
	    !utf8_valid(mp->part.name, strlen(mp->part.name)))
		return 0;
	if (mp->part.is_file && !clean_filename(mp->part.filename)) {
		*why = "A file's name is not valid UTF-8.";
		return 0;
	}
	return 1;
}

/* Reads one header line (len bytes at line, no CRLF) of a part. Returns
 * 0, or -1 after failing mp. */
static int
header_line(struct multipart *mp, const char *line, size_t len,
    const char **why)
{
	char		 buf[MP_MAX_HEADER + 1];
	char		*colon, *v;
	const char	*bad;

	if (++mp->headers > MP_MAX_HEADERS)
		return mp_fail(mp, why, "A part of the upload has too many "
		    "header lines.");
	if (len == 0 || line[0] == ' ' || line[0] == '\t' ||
	    memchr(line, '\0', len) != NULL)
		return mp_fail(mp, why, "A part of the upload has a "
		    "malformed header.");
	memcpy(buf, line, len);
	buf[len] = '\0';
	if ((colon = strchr(buf, ':')) == NULL)
		return mp_fail(mp, why, "A part of the upload has a "
		    "malformed header.");
	*colon = '\0';
	v = colon + 1 + strspn(colon + 1, " \t");
	if (!strcasecmp(buf, "Content-Disposition")) {
		/* disposition words its refusal before it knows: *why is
		 * set only when the part is refused. */
		if (mp->disposition++)
			return mp_fail(mp, why, "A part of the upload has a "
			    "malformed Content-Disposition.");
		if (!disposition(mp, v, &bad))
			return mp_fail(mp, why, bad);
	} else if (!strcasecmp(buf, "Content-Type"))
		snprintf(mp->part.ctype, sizeof(mp->part.ctype), "%s", v);
	/* Other headers (Content-Transfer-Encoding, deprecated by RFC
	 * 7578) are counted and ignored. */
	return 0;
}

/* Reads the header lines in the window. Returns 1 when the part's data
 * begins, 0 when more bytes are needed, -1 on failure. */
static int
headers_step(struct multipart *mp, const char **why)
{
	char	*start = mp->win + mp->pos, *nl;
	size_t	 avail = mp->len - mp->pos, n;

	if ((nl = memmem(start, avail, "\r\n", 2)) == NULL) {
		/* A line at the limit may wait for its LF after its CR. */
		if (avail > MP_MAX_HEADER + 1)
			return mp_fail(mp, why, "A part of the upload has a "
			    "header line that is too long.");
		return 0;
	}
	n = (size_t)(nl - start);
	if (n > MP_MAX_HEADER)
		return mp_fail(mp, why, "A part of the upload has a header "
		    "line that is too long.");
	mp->pos += n + 2;
	if (n > 0)
		return header_line(mp, start, n, why) < 0 ? -1 : 2;
	if (!mp->disposition)
		return mp_fail(mp, why, "A part of the upload has no "
		    "Content-Disposition.");
	if (mp->h.begin(mp->h.arg, &mp->part, why) < 0)
		return mp_fail(mp, why, NULL);
	mp->in_part = 1;
	mp->state = MP_DATA;
	return 1;
}

/* Reads part data or the preamble up to a delimiter. Returns 1 when the
 * delimiter was passed, 0 when more bytes are needed, -1 on failure. */
static int
data_step(struct multipart *mp, const char **why)
{
	char	*start = mp->win + mp->pos, *d;
	size_t	 avail = mp->len - mp->pos, n;

	d = memmem(start, avail, mp->delim, mp->dlen);
	if (d != NULL)
		n = (size_t)(d - start);
	else	/* the last dlen - 1 bytes may begin a delimiter */
		n = avail >= mp->dlen ? avail - (mp->dlen - 1) : 0;
	if (n > 0 && mp->state == MP_PREAMBLE)
		return mp_fail(mp, why, "The upload does not start with its "
		    "boundary.");
	if (n > 0 && mp->h.data(mp->h.arg, start, n, why) < 0)
		return mp_fail(mp, why, NULL);
	mp->pos += n;
	if (d == NULL)
		return 0;
	mp->pos += mp->dlen;
	mp->state = MP_AFTER;
	return 1;
}

/* Reads what follows a delimiter. Returns 1 (went on), 0 (more bytes
 * needed), -1. */
static int
after_step(struct multipart *mp, const char **why)
{
	const char *p = mp->win + mp->pos;

	if (mp->len - mp->pos < 2)
		return 0;
	if (mp->in_part) {
		mp->in_part = 0;
		if (mp->h.end(mp->h.arg, why) < 0)
			return mp_fail(mp, why, NULL);
	}
	mp->pos += 2;
	if (p[0] == '-' && p[1] == '-') {
		mp->state = MP_EPILOGUE;
		return 1;
	}
	if (p[0] != '\r' || p[1] != '\n')
		return mp_fail(mp, why, "The upload's body is malformed.");
	if (++mp->parts > MP_MAX_PARTS)
		return mp_fail(mp, why, "The upload has too many parts.");
	memset(&mp->part, 0, sizeof(mp->part));
	mp->headers = 0;
	mp->disposition = 0;
	mp->state = MP_HEADERS;
	return 1;
}

/* Reads the window as far as it goes. Returns 0, or -1. */
static int
mp_step(struct multipart *mp, const char **why)
{
	int rc = 1;

	while (rc > 0)
		switch (mp->state) {
		case MP_PREAMBLE:
		case MP_DATA:
			rc = data_step(mp, why);
			break;
		case MP_AFTER:
			rc = after_step(mp, why);
			break;
		case MP_HEADERS:
			rc = headers_step(mp, why);
			break;
		case MP_EPILOGUE:
			mp->pos = mp->len;
			rc = 0;
			break;
		case MP_FAILED:
			return -1;
		}
	return rc < 0 ? -1 : 0;
}

int
mp_feed(struct multipart *mp, const char *p, size_t n, const char **why)
{
	while (n > 0) {
		size_t room, k;

		if (mp->state == MP_FAILED)
			return -1;
		/* Keep only the unread tail, at the window's start. */
		memmove(mp->win, mp->win + mp->pos, mp->len - mp->pos);
		mp->len -= mp->pos;
		mp->pos = 0;
		room = sizeof(mp->win) - mp->len;
		k = n < room ? n : room;
		memcpy(mp->win + mp->len, p, k);
		mp->len += k;
		p += k;
		n -= k;
		if (mp_step(mp, why) < 0)
			return -1;
	}
	return mp->state == MP_FAILED ? -1 : 0;
}

int
mp_finish(struct multipart *mp, const char **why)
{
	if (mp->state == MP_FAILED)
		return -1;
	if (mp->state != MP_EPILOGUE) {
		*why = "The upload was cut short.";
		mp->state = MP_FAILED;
		return -1;
	}
	return 0;
}

void
mp_free(struct multipart *mp)
{
	free(mp);
}
