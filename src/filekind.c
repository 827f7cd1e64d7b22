/* filekind.c: what an uploaded file is, from its content (issue 19).
 *
 * The order of the checks:
 * 1. A file that starts with a zip local header ("PK\3\4") is read by
 *    the zip reader below, whatever libmagic says (5.44 calls some valid
 *    docx/xlsx application/zip or octet-stream): Office Open XML is a zip
 *    with "[Content_Types].xml" and one of the word/, xl/, ppt/ folders;
 *    OpenDocument a zip whose first entry is "mimetype", stored, holding
 *    application/vnd.oasis.opendocument.text or .spreadsheet. The reader
 *    reads the End Of Central Directory record and the central directory,
 *    every field bounds-checked, and extracts nothing.
 * 2. Anything else is named by libmagic (MIME type of the first
 *    FILEKIND_HEAD bytes, database loaded once per process). PDF and the
 *    four raster images are accepted; text/plain and text/csv are
 *    accepted as text when the whole file is valid UTF-8 with no NUL
 *    byte; SVG, HTML, XML, scripts and executables are refused by name,
 *    and every other type as "not accepted".
 * 3. Polyglots: an image or a text with "<?php", "<script", "<html",
 *    "<iframe" or "<!doctype html" (any case) in its head is refused, and
 *    so is a text that starts with "#!".
 * 4. txt or csv: a text is CSV when it has at least two non-empty lines
 *    and, for one of the separators comma, semicolon and tab, the first
 *    line has at least one and at least 4 lines in 5 have as many as the
 *    first (separators and line ends inside double quotes not counted;
 *    only the lines of the head are looked at). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <magic.h>

#include "filekind.h"
#include "util.h"

/* Where a file's bytes are: in memory (data), or in an open file (fd). */
struct src {
	const unsigned char	*data;	/* the whole content, or NULL */
	int			 fd;	/* read with pread when data is NULL */
	uint64_t		 size;
};

static magic_t cookie;		/* libmagic, opened once per process */

/* libmagic without the parsers we never accept anything from: compressed
 * files (it would run decompressors), tar, CDF (old Office) and ELF
 * details; the MIME type is all we read. */
#define FILEKIND_MAGIC_FLAGS	(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | \
	MAGIC_NO_CHECK_TAR | MAGIC_NO_CHECK_CDF | MAGIC_NO_CHECK_ELF)

int
filekind_open(char *err, size_t errsz)
{
	if (cookie != NULL)
		return 1;
	if ((cookie = magic_open(FILEKIND_MAGIC_FLAGS)) == NULL) {
		snprintf(err, errsz, "libmagic: cannot start: %s",
		    strerror(errno));
		return 0;
	}
	if (magic_load(cookie, NULL) != 0) {
		snprintf(err, errsz, "libmagic: cannot load its database: %s",
		    magic_error(cookie) ? magic_error(cookie) : "no reason");
		magic_close(cookie);
		cookie = NULL;
		return 0;
	}
	/* The first text read walks the whole database (50 ms; the 8 MB
	 * file mapped in and 2.3 MB of libmagic's own): done here, before
	 * the workers fork, it is shared with them instead of made again
	 * in each (bench/README.md, issue 19). */
	(void)magic_buffer(cookie, "pmb\n", 4);
	return 1;
}

void
filekind_close(void)
{
	if (cookie != NULL)
		magic_close(cookie);
	cookie = NULL;
}

/* Copies the n bytes of s at off into out. Returns 1, or 0 when they lie
 * past the end or cannot be read. */
static int
src_read(const struct src *s, uint64_t off, void *out, size_t n)
{
	unsigned char *o = out;

	if (off > s->size || n > s->size - off)
		return 0;
	if (s->data != NULL) {
		memcpy(out, s->data + off, n);
		return 1;
	}
	while (n > 0) {
		ssize_t r = pread(s->fd, o, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		o += r;
		off += (uint64_t)r;
		n -= (size_t)r;
	}
	return 1;
}

/* Little-endian reads of 16 and 32 bits at p. */
static unsigned
le16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* The zip format's signatures and fixed sizes (APPNOTE.TXT 4.3). */
#define ZIP_LFH_SIG	0x04034b50u	/* local file header */
#define ZIP_CDH_SIG	0x02014b50u	/* central directory file header */
#define ZIP_EOCD_SIG	0x06054b50u	/* end of central directory */
#define ZIP64_LOC_SIG	0x07064b50u	/* zip64 end of directory locator */
#define ZIP_LFH_LEN	30
#define ZIP_CDH_LEN	46
#define ZIP_EOCD_LEN	22
#define ZIP64_LOC_LEN	20
#define ZIP_MAX_COMMENT	65535
/* More entries than any document has; a longer name is refused too. */
#define ZIP_MAX_ENTRIES	10000
#define ZIP_MAX_NAME	1024
/* The longest OpenDocument MIME type we look for, with room to spare. */
#define ODF_MIME_MAX	80

/* What the central directory holds, as far as the kind goes. */
struct zipdir {
	uint64_t	cd_off, cd_size;	/* the directory */
	unsigned	entries;
	int		content_types;	/* "[Content_Types].xml" */
	int		word, xl, ppt;	/* entries under word/, xl/, ppt/ */
	int		macros;		/* vbaProject.bin, Basic/, Scripts/ */
	int		odf_first;	/* first entry is "mimetype", stored */
	uint64_t	odf_off;	/* its local header */
	uint32_t	odf_len;	/* its size */
};

/* Finds the End Of Central Directory record in the last bytes of s (the
 * one whose comment ends the file) and fills d's directory place. Returns
 * NULL, or why the file is not a zip we read. */
static const char *
zip_eocd(const struct src *s, struct zipdir *d)
{
	size_t		 tail, i;
	uint64_t	 start, eocd;
	unsigned char	*t, *e;
	const char	*why = "a zip archive without its directory";

	if (s->size < ZIP_EOCD_LEN + ZIP_LFH_LEN)
		return "a zip archive too short to hold anything";
	tail = s->size < ZIP_EOCD_LEN + ZIP_MAX_COMMENT ? (size_t)s->size :
	    ZIP_EOCD_LEN + ZIP_MAX_COMMENT;
	start = s->size - tail;
	t = xmalloc(tail);
	if (!src_read(s, start, t, tail)) {
		free(t);
		return "a file that cannot be read";
	}
	for (i = tail - ZIP_EOCD_LEN + 1; i-- > 0; ) {
		e = t + i;
		if (le32(e) != ZIP_EOCD_SIG ||
		    i + ZIP_EOCD_LEN + le16(e + 20) != tail)
			continue;
		eocd = start + i;
		why = NULL;
		if (le16(e + 4) != 0 || le16(e + 6) != 0 ||
		    le16(e + 8) != le16(e + 10))
			why = "a zip archive split over several disks";
		else if (le16(e + 10) == 0xffff ||
		    le32(e + 12) == 0xffffffffu ||
		    le32(e + 16) == 0xffffffffu || (i >= ZIP64_LOC_LEN &&
		    le32(e - ZIP64_LOC_LEN) == ZIP64_LOC_SIG))
			why = "a zip64 archive (not read)";
		else if ((uint64_t)le32(e + 16) + le32(e + 12) != eocd)
			why = "a zip archive with bytes around its directory";
		d->entries = le16(e + 10);
		d->cd_off = le32(e + 16);
		d->cd_size = le32(e + 12);
		break;
	}
	free(t);
	if (why == NULL && (d->entries == 0 || d->entries > ZIP_MAX_ENTRIES))
		why = "a zip archive with no or too many entries";
	return why;
}

/* Returns 1 if the n bytes of name end with suffix, in any case. */
static int
name_ends(const char *name, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && strncasecmp(name + n - k, suffix, k) == 0;
}

/* Notes what the entry called name (n bytes; its header h) says of the
 * kind into d; first is 1 for the directory's first entry. */
static void
zip_note(struct zipdir *d, const unsigned char *h, const char *name,
    size_t n, int first)
{
	if (n == 19 && memcmp(name, "[Content_Types].xml", 19) == 0)
		d->content_types = 1;
	if (n > 5 && memcmp(name, "word/", 5) == 0)
		d->word = 1;
	if (n > 3 && memcmp(name, "xl/", 3) == 0)
		d->xl = 1;
	if (n > 4 && memcmp(name, "ppt/", 4) == 0)
		d->ppt = 1;
	if (name_ends(name, n, "vbaProject.bin") ||
	    (n > 6 && strncasecmp(name, "Basic/", 6) == 0) ||
	    (n > 8 && strncasecmp(name, "Scripts/", 8) == 0))
		d->macros = 1;
	/* ODF: "mimetype", stored (method 0), its size the same both ways. */
	if (first && n == 8 && memcmp(name, "mimetype", 8) == 0 &&
	    le16(h + 10) == 0 && le32(h + 20) == le32(h + 24) &&
	    le32(h + 24) <= ODF_MIME_MAX) {
		d->odf_first = 1;
		d->odf_len = le32(h + 24);
		d->odf_off = le32(h + 42);
	}
}

/* Walks the central directory of s (placed by zip_eocd) into d: every
 * entry inside the directory, the last ending where it ends, each local
 * header before the directory. Returns NULL or why not. */
static const char *
zip_walk(const struct src *s, struct zipdir *d)
{
	unsigned char	 h[ZIP_CDH_LEN];
	char		 name[ZIP_MAX_NAME];
	uint64_t	 pos = d->cd_off, end = d->cd_off + d->cd_size;
	unsigned	 i;

	for (i = 0; i < d->entries; i++) {
		size_t n;

		if (pos + ZIP_CDH_LEN > end ||
		    !src_read(s, pos, h, sizeof(h)) || le32(h) != ZIP_CDH_SIG)
			return "a zip archive with a broken directory";
		n = le16(h + 28);
		if (le32(h + 20) == 0xffffffffu ||
		    le32(h + 24) == 0xffffffffu || le32(h + 42) == 0xffffffffu)
			return "a zip64 archive (not read)";
		if (n == 0 || n > sizeof(name))
			return "a zip archive with an odd file name";
		if (pos + ZIP_CDH_LEN + n + le16(h + 30) + le16(h + 32) > end ||
		    !src_read(s, pos + ZIP_CDH_LEN, name, n))
			return "a zip archive with a broken directory";
		if ((uint64_t)le32(h + 42) + ZIP_LFH_LEN > d->cd_off)
			return "a zip archive with a broken directory";
		zip_note(d, h, name, n, i == 0);
		pos += ZIP_CDH_LEN + n + le16(h + 30) + le16(h + 32);
	}
	if (pos != end)
		return "a zip archive with a broken directory";
	return NULL;
}

/* Reads the OpenDocument "mimetype" entry that d found: its local header
 * at d->odf_off (its own name "mimetype" too), then its bytes. Returns "odt",
 * "ods", or NULL with *why. */
static const char *
zip_odf(const struct src *s, const struct zipdir *d, const char **why)
{
	static const char text[] = "application/vnd.oasis.opendocument.text";
	static const char sheet[] =
	    "application/vnd.oasis.opendocument.spreadsheet";
	unsigned char	 h[ZIP_LFH_LEN + 8];	/* and the name */
	char		 mime[ODF_MIME_MAX];
	uint64_t	 at;

	if (!src_read(s, d->odf_off, h, sizeof(h)) || le32(h) != ZIP_LFH_SIG ||
	    le16(h + 26) != 8 || memcmp(h + ZIP_LFH_LEN, "mimetype", 8) != 0) {
		*why = "an OpenDocument file with a broken mimetype entry";
		return NULL;
	}
	at = d->odf_off + ZIP_LFH_LEN + 8 + le16(h + 28);
	if (at + d->odf_len > d->cd_off || !src_read(s, at, mime, d->odf_len)) {
		*why = "an OpenDocument file with a broken mimetype entry";
		return NULL;
	}
	if (d->odf_len == sizeof(text) - 1 && memcmp(mime, text,
	    d->odf_len) == 0)
		return "odt";
	if (d->odf_len == sizeof(sheet) - 1 && memcmp(mime, sheet,
	    d->odf_len) == 0)
		return "ods";
	*why = "an OpenDocument file that is not a text or a spreadsheet";
	return NULL;
}

/* The zip reader on any source; see filekind_zip. */
static const char *
zip_kind(const struct src *s, const char **why)
{
	struct zipdir	d;
	unsigned char	lfh[4];

	memset(&d, 0, sizeof(d));
	if (!src_read(s, 0, lfh, sizeof(lfh)) || le32(lfh) != ZIP_LFH_SIG) {
		*why = "not a zip archive";
		return NULL;
	}
	if ((*why = zip_eocd(s, &d)) != NULL ||
	    (*why = zip_walk(s, &d)) != NULL)
		return NULL;
	if (d.macros) {
		*why = "documents with macros are refused";
		return NULL;
	}
	if (d.odf_first)
		return zip_odf(s, &d, why);
	if (d.content_types && d.word + d.xl + d.ppt == 1)
		return d.word ? "docx" : d.xl ? "xlsx" : "pptx";
	*why = "a zip archive that is not a Word, Excel, PowerPoint or "
	    "OpenDocument file";
	return NULL;
}

const char *
filekind_zip(const void *data, size_t len, const char **why)
{
	struct src s = { data, -1, len };

	return zip_kind(&s, why);
}

/* What is done with a MIME type libmagic gives. */
enum mime_do {
	DO_KIND,	/* accepted as kind */
	DO_IMAGE,	/* accepted as kind after the polyglot check */
	DO_TEXT,	/* txt or csv, after the UTF-8 and polyglot checks */
	DO_REFUSE	/* refused, why in kind */
};

static const struct mime_rule {
	const char	*mime;
	enum mime_do	 what;
	const char	*kind;	/* or the reason for DO_REFUSE */
} mime_rules[] = {
	{ "application/pdf", DO_KIND, "pdf" },
	{ "image/png", DO_IMAGE, "png" },
	{ "image/jpeg", DO_IMAGE, "jpeg" },
	{ "image/gif", DO_IMAGE, "gif" },
	{ "image/webp", DO_IMAGE, "webp" },
	{ "text/plain", DO_TEXT, NULL },
	{ "text/csv", DO_TEXT, NULL },
	{ "image/svg+xml", DO_REFUSE, "SVG images are refused: they can "
	    "carry scripts" },
	{ "text/html", DO_REFUSE, "HTML files are refused" },
	{ "application/xhtml+xml", DO_REFUSE, "HTML files are refused" },
	{ "text/xml", DO_REFUSE, "XML files are refused" },
	{ "application/xml", DO_REFUSE, "XML files are refused" },
	{ "text/x-php", DO_REFUSE, "scripts are refused (PHP)" },
	{ "text/x-shellscript", DO_REFUSE, "scripts are refused (shell)" },
	{ "text/x-script.python", DO_REFUSE, "scripts are refused (Python)" },
	{ "text/x-python", DO_REFUSE, "scripts are refused (Python)" },
	{ "application/javascript", DO_REFUSE,
	    "scripts are refused (JavaScript)" },
	{ "text/javascript", DO_REFUSE, "scripts are refused (JavaScript)" },
	{ "application/x-executable", DO_REFUSE, "programs are refused" },
	{ "application/x-pie-executable", DO_REFUSE, "programs are refused" },
	{ "application/x-sharedlib", DO_REFUSE, "programs are refused" },
	{ "application/x-object", DO_REFUSE, "programs are refused" },
	{ "application/x-dosexec", DO_REFUSE, "programs are refused" },
	{ "application/vnd.microsoft.portable-executable", DO_REFUSE,
	    "programs are refused" },
	{ "application/x-mach-binary", DO_REFUSE, "programs are refused" },
};

/* Markers of HTML or PHP that make an image or a text a polyglot. */
static const char *const polyglot_marks[] = {
	"<?php", "<script", "<html", "<iframe", "<!doctype html",
};

/* Returns 1 if the n bytes at p hold a polyglot marker, in any case. */
static int
has_polyglot_mark(const unsigned char *p, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (p[i] != '<')
			continue;
		for (k = 0; k < ARRAY_LEN(polyglot_marks); k++) {
			size_t m = strlen(polyglot_marks[k]);

			if (n - i >= m && strncasecmp((const char *)p + i,
			    polyglot_marks[k], m) == 0)
				return 1;
		}
	}
	return 0;
}

/* Returns the length of the n bytes at p without an incomplete UTF-8
 * sequence at their end (a head cut in the middle of a character would
 * make libmagic call a text binary). */
static size_t
utf8_whole(const unsigned char *p, size_t n)
{
	size_t	back = 0, need;

	while (back < 3 && back < n && (p[n - 1 - back] & 0xc0) == 0x80)
		back++;
	if (back == n)
		return n;
	need = p[n - 1 - back] >= 0xf0 ? 3 : p[n - 1 - back] >= 0xe0 ? 2 :
	    p[n - 1 - back] >= 0xc0 ? 1 : 0;
	return need > back ? n - 1 - back : n;
}

/* Returns 1 if all of s is UTF-8 with no NUL, read in pieces of
 * FILEKIND_HEAD bytes (a piece's cut character carried to the next). */
static int
text_valid(const struct src *s)
{
	unsigned char	*b;
	uint64_t	 off = 0;
	size_t		 carry = 0, n, whole;
	int		 good = 1;

	if (s->data != NULL)
		return utf8_valid((const char *)s->data, (size_t)s->size);
	b = xmalloc(FILEKIND_HEAD + 4);
	while (good && off < s->size) {
		n = s->size - off < FILEKIND_HEAD ? (size_t)(s->size - off) :
		    FILEKIND_HEAD;
		if (!src_read(s, off, b + carry, n)) {
			good = 0;
			break;
		}
		off += n;
		n += carry;
		whole = off < s->size ? utf8_whole(b, n) : n;
		good = utf8_valid((const char *)b, whole);
		carry = n - whole;
		memmove(b, b + whole, carry);
	}
	free(b);
	return good && carry == 0;
}

/* Counts separator sep in the records of the n bytes at p (lines, but
 * a line end inside double quotes does not end one); records[i] gets
 * record i's count, blank records skipped, up to max. Returns how many
 * records were counted; the last, cut one is left out when cut is 1. */
static size_t
csv_counts(const unsigned char *p, size_t n, int cut, char sep,
    size_t *records, size_t max)
{
	size_t	i, got = 0, count = 0, len = 0;
	int	quoted = 0;

	for (i = 0; i < n && got < max; i++) {
		if (p[i] == '"')
			quoted = !quoted;
		else if (p[i] == sep && !quoted)
			count++;
		if (p[i] == '\n' && !quoted) {
			if (len > 0)
				records[got++] = count;
			count = len = 0;
		} else if (p[i] != '\r')
			len++;
	}
	if (!cut && len > 0 && got < max)
		records[got++] = count;
	return got;
}

/* Decides txt or csv from the head (n bytes at p; cut when the file goes
 * on): see the rule at the top of this file. */
static const char *
text_kind(const unsigned char *p, size_t n, int cut)
{
	static const char	 seps[] = { ',', ';', '\t' };
	size_t			 records[200], got, i, same, k;

	for (k = 0; k < sizeof(seps); k++) {
		got = csv_counts(p, n, cut, seps[k], records,
		    ARRAY_LEN(records));
		if (got < 2 || records[0] == 0)
			continue;
		for (same = 0, i = 0; i < got; i++)
			same += records[i] == records[0];
		if (same * 5 >= got * 4)
			return "csv";
	}
	return "txt";
}

/* Finds libmagic's MIME type in mime_rules; NULL when not there. */
static const struct mime_rule *
mime_rule(const char *mime)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(mime_rules); i++)
		if (strcmp(mime_rules[i].mime, mime) == 0)
			return &mime_rules[i];
	return NULL;
}

/* Applies rule r to s, whose head (n bytes at head) libmagic named.
 * Returns the kind or NULL with *why. */
static const char *
apply_rule(const struct src *s, const unsigned char *head, size_t n,
    const struct mime_rule *r, const char **why)
{
	if (r->what == DO_REFUSE) {
		*why = r->kind;
		return NULL;
	}
	if (r->what != DO_KIND && has_polyglot_mark(head, n)) {
		*why = "a file with HTML or PHP inside is refused";
		return NULL;
	}
	if (r->what != DO_TEXT)
		return r->kind;
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		*why = "scripts are refused";
		return NULL;
	}
	if (!text_valid(s)) {
		*why = "text that is not UTF-8 (or holds NUL bytes)";
		return NULL;
	}
	return text_kind(head, n, n < s->size);
}

/* Decides the kind of s; see filekind_detect. */
static const char *
detect(const struct src *s, const char **why)
{
	unsigned char		*head;
	size_t			 n;
	const char		*mime, *kind = NULL;
	const struct mime_rule	*r;
	char			 err[256];

	if (s->size == 0) {
		*why = "an empty file";
		return NULL;
	}
	n = s->size < FILEKIND_HEAD ? (size_t)s->size : FILEKIND_HEAD;
	head = xmalloc(n);
	if (!src_read(s, 0, head, n)) {
		*why = "a file that cannot be read";
		goto done;
	}
	if (n >= 4 && le32(head) == ZIP_LFH_SIG) {
		kind = zip_kind(s, why);
		goto done;
	}
	if (!filekind_open(err, sizeof(err))) {
		log_msg("%s", err);
		*why = "files cannot be checked just now";
		goto done;
	}
	mime = magic_buffer(cookie, head, n < s->size ? utf8_whole(head, n) :
	    n);
	if (mime == NULL)
		*why = "a file whose kind cannot be told";
	else if ((r = mime_rule(mime)) == NULL)
		*why = strncmp(mime, "text/", 5) == 0 ? "a kind of text that "
		    "is not accepted (only plain text and CSV are)" :
		    "a kind of file that is not accepted";
	else
		kind = apply_rule(s, head, n, r, why);
done:
	free(head);
	return kind;
}

const char *
filekind_detect(const void *data, size_t len, const char **why)
{
	struct src s = { data, -1, len };

	return detect(&s, why);
}

const char *
filekind_detect_file(const char *path, const char **why)
{
	struct src	 s = { NULL, -1, 0 };
	struct stat	 st;
	const char	*kind;

	if ((s.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		*why = "a file that cannot be read";
		return NULL;
	}
	if (fstat(s.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(s.fd);
		*why = "a file that cannot be read";
		return NULL;
	}
	s.size = (uint64_t)st.st_size;
	kind = detect(&s, why);
	close(s.fd);
	return kind;
}

/* The kinds of attachment_types and the Content-Type each is served as. */
static const struct {
	const char	*kind, *mime;
} kind_mimes[] = {
	{ "pdf", "application/pdf" },
	{ "png", "image/png" },
	{ "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },
	{ "webp", "image/webp" },
	{ "txt", "text/plain; charset=utf-8" },
	{ "csv", "text/csv; charset=utf-8" },
	{ "docx", "application/vnd.openxmlformats-officedocument."
	    "wordprocessingml.document" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument."
	    "spreadsheetml.sheet" },
	{ "pptx", "application/vnd.openxmlformats-officedocument."
	    "presentationml.presentation" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "ods", "application/vnd.oasis.opendocument.spreadsheet" },
};

const char *
filekind_mime(const char *kind)
{
	size_t i;

	for (i = 0; kind != NULL && i < ARRAY_LEN(kind_mimes); i++)
		if (strcmp(kind_mimes[i].kind, kind) == 0)
			return kind_mimes[i].mime;
	return NULL;
}

int
filekind_is_image(const char *kind)
{
	const char *mime = filekind_mime(kind);

	return mime != NULL && strncmp(mime, "image/", 6) == 0;
}
