/* fuzz_multipart: the multipart/form-data reader (src/multipart.c).
 * Input: a Content-Type, a NUL, a piece size byte, then the body. The
 * body is read whole and in pieces of that size; both must agree
 * exactly (parts, names, file names, data; or the same refusal), no
 * part's data may hold the delimiter, names and file names are UTF-8
 * without control characters, and a refusal always has a sentence. */
#include <stdint.h>
#include <string.h>

#include "multipart.h"
#include "util.h"
#include "fuzz.h"

struct seen {
	struct buf	 log;
	const char	*delim;		/* "\r\n--BOUNDARY", or NULL: not
					 * checked (a quoted boundary) */
	size_t		 start;		/* where this part's data begins
					 * in log */
};

static int
on_begin(void *arg, const struct mp_part *p, const char **why)
{
	struct seen *s = arg;

	(void)why;
	FUZZ_CHECK(utf8_valid(p->name, strlen(p->name)) &&
	    utf8_valid(p->filename, strlen(p->filename)), "names are UTF-8");
	for (const char *c = p->filename; *c; c++)
		FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7f &&
		    *c != '/' && *c != '\\', "a clean file name");
	buf_printf(&s->log, "<%s|%s|%d>", p->name, p->filename, p->is_file);
	s->start = s->log.len;
	return 0;
}

static int
on_data(void *arg, const char *p, size_t n, const char **why)
{
	struct seen *s = arg;

	(void)why;
	FUZZ_CHECK(n > 0, "no empty data calls");
	buf_append(&s->log, p, n);
	return 0;
}

static int
on_end(void *arg, const char **why)
{
	struct seen	*s = arg;

	(void)why;
	/* All of this part's data, from where on_begin left log (a '>' in
	 * the data cannot hide the start of it). */
	FUZZ_CHECK(s->delim == NULL || s->log.len == s->start ||
	    memmem(s->log.data + s->start, s->log.len - s->start, s->delim,
	    strlen(s->delim)) == NULL, "no part's data holds the delimiter");
	buf_putc(&s->log, ';');
	return 0;
}

/* Reads body in pieces of step (0: whole) into out ("!" and the
 * sentence on a refusal). */
static void
read_all(const char *ctype, const char *body, size_t n, size_t step,
    struct buf *out)
{
	struct seen		 s = { .start = 0 };
	struct mp_handler	 h = { on_begin, on_data, on_end, &s };
	struct multipart	*mp;
	const char		*why = NULL;
	int			 rc = 0;

	buf_init(&s.log);
	if ((mp = mp_new(ctype, &h, &why)) == NULL) {
		FUZZ_CHECK(why != NULL && *why != '\0', "a sentence");
		buf_printf(out, "!%s", why);
		return;
	}
	/* The delimiter, as the reader built it. */
	{
		const char *b = strstr(ctype, "boundary=");
		static char d[128];

		snprintf(d, sizeof(d), "\r\n--%s", b != NULL ? b + 9 : "");
		s.delim = d;
		/* A quoted or parametered boundary: skip that check. */
		if (b == NULL || strpbrk(b + 9, "\"; ") != NULL)
			s.delim = NULL;
	}
	for (size_t i = 0; i < n && rc == 0; i += step ? step : n)
		rc = mp_feed(mp, body + i, step && n - i > step ? step :
		    n - i, &why);
	if (rc == 0)
		rc = mp_finish(mp, &why);
	mp_free(mp);
	if (rc < 0) {
		FUZZ_CHECK(why != NULL && *why != '\0', "a sentence");
		buf_printf(out, "!%s", why);
	} else if (s.log.data != NULL)
		buf_append(out, s.log.data, s.log.len);
	buf_free(&s.log);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*nul = memchr(data, '\0', size);
	char		 ctype[256];
	struct buf	 whole, pieces;
	size_t		 clen, step;
	const char	*body;

	if (nul == NULL || (clen = (size_t)(nul - (const char *)data)) >=
	    sizeof(ctype) || size - clen < 2)
		return 0;
	memcpy(ctype, data, clen);
	ctype[clen] = '\0';
	step = 1 + (unsigned char)nul[1] % 97;
	body = nul + 2;
	buf_init(&whole);
	buf_init(&pieces);
	read_all(ctype, body, size - clen - 2, 0, &whole);
	read_all(ctype, body, size - clen - 2, step, &pieces);
	FUZZ_CHECK(whole.len == pieces.len && (whole.len == 0 ||
	    memcmp(whole.data, pieces.data, whole.len) == 0),
	    "read whole or in pieces, the same");
	buf_free(&whole);
	buf_free(&pieces);
	return 0;
}
