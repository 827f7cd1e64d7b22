/* filekind.c: tests of src/filekind.c (issue 19): every sample of
 * tests/files/ (made by tests/files/make-samples) is named from its
 * content, from memory and from its file, whatever its name says; then
 * /bin/true, texts made here (UTF-8 or not, NUL bytes, a character cut
 * by the head's end, CSV or prose), zip files damaged on purpose and the
 * Content-Type of each kind. Prints TAP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filekind.h"
#include "util.h"
#include "tap.h"

static const char *samples;	/* the folder of the samples */

/* Returns 1 if the kinds a and b are both NULL or the same. */
static int
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/* Checks that data (len bytes) is kind want (NULL: refused, with a
 * reason holding because), named label. */
static void
check_buf(const char *label, const void *data, size_t len,
    const char *want, const char *because)
{
	const char *why = NULL, *got = filekind_detect(data, len, &why);

	ok(same(got, want) && (got != NULL || (why != NULL &&
	    strstr(why, because) != NULL)), "%s: %s (got %s%s%s)", label,
	    want ? want : because, got ? got : "refused: ", got ? "" : why,
	    "");
}

/* check_buf on a NUL-terminated string. */
#define check_str(label, s, want, because) \
	check_buf((label), (s), strlen(s), (want), (because))

/* Checks the file at path the same way, through filekind_detect_file. */
static void
check_file(const char *label, const char *path, const char *want,
    const char *because)
{
	const char *why = NULL, *got = filekind_detect_file(path, &why);

	ok(same(got, want) && (got != NULL || (why != NULL &&
	    strstr(why, because) != NULL)), "%s (file): %s (got %s%s)", label,
	    want ? want : because, got ? got : "refused: ", got ? "" : why);
}

/* The samples and what each is. */
static const struct {
	const char	*name, *kind, *because;
} cases[] = {
	{ "sample.pdf", "pdf", NULL },
	{ "sample.png", "png", NULL },
	{ "sample.jpeg", "jpeg", NULL },
	{ "gps.jpeg", "jpeg", NULL },
	{ "sample.gif", "gif", NULL },
	{ "sample.webp", "webp", NULL },
	{ "bomb.png", "png", NULL },
	{ "sample.docx", "docx", NULL },
	{ "sample.xlsx", "xlsx", NULL },
	{ "late.xlsx", "xlsx", NULL },
	{ "sample.pptx", "pptx", NULL },
	{ "sample.odt", "odt", NULL },
	{ "sample.ods", "ods", NULL },
	{ "notes.txt", "txt", NULL },
	{ "numbers.csv", "csv", NULL },
	{ "sample.odp", NULL, "not a text or a spreadsheet" },
	{ "macros.docm", NULL, "macros" },
	{ "plain.zip", NULL, "not a Word, Excel" },
	{ "image.svg", NULL, "SVG" },
	{ "page.html", NULL, "HTML" },
	{ "php.png", NULL, "PHP" },
	{ "polyglot.gif", NULL, "HTML or PHP inside" },
};

/* Each sample, from memory and from its file. */
static void
test_samples(void)
{
	char		 path[1024];
	unsigned char	*data;
	size_t		 i, len;

	for (i = 0; i < ARRAY_LEN(cases); i++) {
		snprintf(path, sizeof(path), "%s/%s", samples, cases[i].name);
		if ((data = (unsigned char *)read_file(path, &len)) == NULL) {
			ok(0, "%s can be read", path);
			continue;
		}
		check_buf(cases[i].name, data, len, cases[i].kind,
		    cases[i].because);
		check_file(cases[i].name, path, cases[i].kind,
		    cases[i].because);
		free(data);
	}
	check_file("/bin/true", "/bin/true", NULL, "programs");
	check_file("a folder", samples, NULL, "cannot be read");
	check_file("a missing file", "/nonexistent/x", NULL, "cannot be read");
}

/* Writes len bytes of data to a new temporary file; returns its path
 * (static), or NULL. */
static const char *
temp_file(const void *data, size_t len)
{
	static char	 path[64];
	int		 fd;

	snprintf(path, sizeof(path), "/tmp/pmb-filekind-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return NULL;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return NULL;
	}
	close(fd);
	return path;
}

/* A text of len bytes: lines of "é" and words, so that a multibyte
 * character crosses FILEKIND_HEAD; at is set to a NUL when nul. */
static void
check_long_text(size_t len, int nul, const char *want, const char *because)
{
	char		*t = xmalloc(len);
	const char	*path;
	size_t		 i;

	for (i = 0; i < len; i++)
		t[i] = "ab\xc3\xa9 cd\n"[i % 8];
	/* A 2-byte character starting on the head's last byte. */
	t[FILEKIND_HEAD - 1] = '\xc3';
	t[FILEKIND_HEAD] = '\xa9';
	t[len - 1] = '\n';
	if (len % 8 == 4)	/* never end in the middle of "é" */
		t[len - 2] = 'x';
	if (nul)
		t[len - 10] = '\0';
	path = temp_file(t, len);
	check_file(nul ? "a long text with a NUL" : "a long text", path, want,
	    because);
	check_buf(nul ? "a long text with a NUL" : "a long text", t, len,
	    want, because);
	if (path != NULL)
		unlink(path);
	free(t);
}

/* A text with "<script" past the bytes libmagic looks at for HTML
 * (text/plain to it), but within FILEKIND_HEAD: a polyglot. */
static void
check_deep_script(void)
{
	struct buf	b;
	int		i;

	buf_init(&b);
	for (i = 0; i < 300; i++)
		buf_puts(&b, "Plain notes line.\n");
	buf_puts(&b, "then <script>alert(1)</script>\n");
	check_buf("text with <script> deep inside", b.data, b.len, NULL,
	    "HTML or PHP inside");
	buf_free(&b);
}

/* Texts: UTF-8 or not, NUL, scripts, markup, CSV or prose. */
static void
test_texts(void)
{
	static const char latin1[] = "caf\xe9 au lait\n";
	static const char nul[] = "one\0two\n";

	check_str("UTF-8 text", "Hello, world.\nHow are you?\nFine.\n",
	    "txt", NULL);
	check_buf("Latin-1 text", latin1, sizeof(latin1) - 1, NULL,
	    "not UTF-8");
	check_buf("a NUL byte", nul, sizeof(nul) - 1, NULL, "");
	check_buf("an empty file", "", 0, NULL, "empty");
	check_str("a shell script", "#!/bin/sh\nrm -rf /\n", NULL,
	    "scripts");
	check_str("text with <script>", "Just a note.\n<script>alert(1)"
	    "</script>\n", NULL, "");
	check_str("text with <?php", "Notes\nmore notes <?php phpinfo(); "
	    "?>\n", NULL, "");
	check_deep_script();
	check_str("CSV with semicolons", "a;b;c\n1;2;3\n4;5;6\n7;8;9\n",
	    "csv", NULL);
	check_str("CSV with tabs, a quoted line end", "a\tb\n1\t\"x\ny\"\n"
	    "2\t3\n", "csv", NULL);
	check_str("prose with commas", "Dear Ann, hello.\nThe numbers, the "
	    "plan, and the rest\nare here.\nBest\n", "txt", NULL);
	check_long_text(FILEKIND_HEAD * 3 + 5, 0, "txt", NULL);
	check_long_text(FILEKIND_HEAD * 2 + 100, 1, NULL, "NUL");
}

/* Returns the offset of the End Of Central Directory record in the zip
 * of len bytes at z (no comment), or 0. */
static size_t
eocd_at(const unsigned char *z, size_t len)
{
	return len >= 22 && memcmp(z + len - 22, "PK\5\6", 4) == 0 ?
	    len - 22 : 0;
}

/* Checks that the zip reader refuses the len bytes at z (label), with
 * a reason holding because. */
static void
zip_refused(const char *label, const void *z, size_t len,
    const char *because)
{
	const char *why = NULL, *got = filekind_zip(z, len, &why);

	ok(got == NULL && why != NULL && strstr(why, because) != NULL,
	    "the zip reader refuses %s: %s", label, why ? why : got);
}

/* A docx damaged in one way at a time must be refused by the zip
 * reader; a comment after the directory is fine. */
static void
test_zip(void)
{
	char		 path[1024];
	unsigned char	*z, *c;
	size_t		 len, e;
	const char	*why;

	snprintf(path, sizeof(path), "%s/sample.docx", samples);
	z = (unsigned char *)read_file(path, &len);
	if (z == NULL || (e = eocd_at(z, len)) == 0) {
		ok(0, "sample.docx can be read, its directory found");
		free(z);
		return;
	}
	c = xmalloc(len + 16);
	ok(same(filekind_zip(z, len, &why), "docx"), "the zip reader: docx");
	memcpy(c, z, len);
	memcpy(c + len, "a comment", 9);
	c[e + 20] = 9;
	ok(same(filekind_zip(c, len + 9, &why), "docx"), "with a comment");
	zip_refused("a cut comment", c, len + 8, "without its directory");
	zip_refused("cut short", z, len - 1, "without its directory");
	memcpy(c, z, len);
	memcpy(c + len, "junk", 4);
	zip_refused("bytes after", c, len + 4, "without its directory");
	memcpy(c, z, len);
	c[e + 8] = c[e + 10] = 0xff;
	c[e + 9] = c[e + 11] = 0xff;
	zip_refused("zip64", c, len, "zip64");
	memcpy(c, z, len);
	c[e + 8]++;
	c[e + 10]++;
	zip_refused("one entry too many", c, len, "broken directory");
	memcpy(c, z, len);
	c[e + 16]++;
	zip_refused("directory moved", c, len, "bytes around");
	memcpy(c, z, len);
	c[e + 12]--;
	c[e + 16]++;
	zip_refused("directory cut", c, len, "broken directory");
	zip_refused("a bare header", "PK\3\4", 4, "too short");
	free(c);
	free(z);
}

/* An OpenDocument file whose "mimetype" entry's local header names
 * another file is refused. */
static void
test_odf_local(void)
{
	char		 path[1024];
	unsigned char	*z;
	size_t		 len;

	snprintf(path, sizeof(path), "%s/sample.odt", samples);
	if ((z = (unsigned char *)read_file(path, &len)) == NULL || len < 38) {
		ok(0, "sample.odt can be read");
		free(z);
		return;
	}
	z[30] = 'M';	/* the first letter of the local name "mimetype" */
	zip_refused("an ODF whose local name is not mimetype", z, len,
	    "broken mimetype");
	free(z);
}

/* The Content-Type of each kind. */
static void
test_mime(void)
{
	ok(same(filekind_mime("pdf"), "application/pdf"), "pdf's type");
	ok(same(filekind_mime("jpeg"), "image/jpeg"), "jpeg's type");
	ok(same(filekind_mime("txt"), "text/plain; charset=utf-8"),
	    "txt's type");
	ok(same(filekind_mime("csv"), "text/csv; charset=utf-8"),
	    "csv's type");
	ok(same(filekind_mime("xlsx"), "application/vnd.openxmlformats-"
	    "officedocument.spreadsheetml.sheet"), "xlsx's type");
	ok(same(filekind_mime("ods"),
	    "application/vnd.oasis.opendocument.spreadsheet"), "ods's type");
	ok(filekind_mime("svg") == NULL && filekind_mime(NULL) == NULL,
	    "no type for svg");
}

/* The raster images, and nothing else, are images. */
static void
test_is_image(void)
{
	ok(filekind_is_image("png") && filekind_is_image("jpeg") &&
	    filekind_is_image("gif") && filekind_is_image("webp"),
	    "png, jpeg, gif and webp are images");
	ok(!filekind_is_image("pdf") && !filekind_is_image("txt") &&
	    !filekind_is_image("docx") && !filekind_is_image("ods"),
	    "pdf, txt, docx and ods are not");
	ok(!filekind_is_image("svg") && !filekind_is_image(NULL),
	    "nor svg (never a kind), nor NULL");
}

int
main(void)
{
	char		 err[256];
	const char	*src = getenv("PMB_SRCDIR");
	static char	 dir[1024];

	snprintf(dir, sizeof(dir), "%s/tests/files", src ? src : ".");
	samples = dir;
	ok(filekind_open(err, sizeof(err)), "libmagic opens");
	ok(filekind_open(err, sizeof(err)), "and again (already open)");
	test_samples();
	test_texts();
	test_zip();
	test_odf_local();
	test_mime();
	test_is_image();
	filekind_close();
	filekind_close();
	return tap_done();
}
