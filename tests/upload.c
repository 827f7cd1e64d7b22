/* tests/upload.c: the gate's reading of a multipart body (src/upload.c)
 * through a request whose body comes from memory: fields become
 * parameters, files are spooled with their size and SHA-256, the limits
 * of attachment_max_mb and attachments_per_message keep the form and say
 * why, a body cut short or malformed is refused, and every spool is
 * closed with the request. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "http.h"
#include "upload.h"
#include "util.h"
#include "tap.h"

#define CT	"multipart/form-data; boundary=B0undary"
#define D	"--B0undary"

/* A body in memory, handed out at most max bytes a read. */
struct mem {
	const char	*p;
	size_t		 n, off, max;
	char		 len[32];
};

static long
mem_read(void *ctx, char *p, size_t n)
{
	struct mem *m = ctx;

	if (n > m->max)
		n = m->max;
	if (n > m->n - m->off)
		n = m->n - m->off;
	memcpy(p, m->p + m->off, n);
	m->off += n;
	return (long)n;
}

static const char *
mem_env(void *ctx, const char *name)
{
	struct mem *m = ctx;

	if (!strcmp(name, "CONTENT_TYPE"))
		return CT;
	if (!strcmp(name, "CONTENT_LENGTH"))
		return m->len;
	if (!strcmp(name, "REQUEST_METHOD"))
		return "POST";
	return NULL;
}

/* Returns the number of open file descriptors. */
static int
open_fds(void)
{
	DIR		*d = opendir("/proc/self/fd");
	int		 n = 0;

	while (d != NULL && readdir(d) != NULL)
		n++;
	if (d != NULL)
		closedir(d);
	return n;
}

/* Parses body (n bytes; claimed is its Content-Length, 0: n) into r,
 * read max bytes at a time. Returns req_parse's status. */
static int
parse(struct request *r, struct io *io, struct mem *m, const char *body,
    size_t n, size_t claimed, const char **why)
{
	int rc;

	*m = (struct mem){ .p = body, .n = n, .max = 7000 };
	snprintf(m->len, sizeof(m->len), "%zu", claimed ? claimed : n);
	*io = (struct io){ mem_read, NULL, mem_env, m };
	req_init(r, io);
	r->method = "POST";
	r->files_ok = 1;
	r->files_max = upload_body_limit();
	*why = "";
	if ((rc = req_parse(r, why)) != 0 || !r->multipart)
		return rc;
	return upload_read(r, r->body_len, why);
}

/* Returns the bytes of file u, read back from its spool. Caller frees. */
static char *
spooled(const struct upload *u)
{
	char *p = xmalloc((size_t)u->size + 1);

	if (pread(u->fd, p, (size_t)u->size, 0) != u->size)
		p[0] = '\0';
	p[u->size] = '\0';
	return p;
}

static void
test_fields_and_files(void)
{
	struct request	 r;
	struct io	 io;
	struct mem	 m;
	struct buf	 b, big;
	const char	*why;
	unsigned char	 h[32];
	char		*got;
	int		 fds = open_fds(), rc;

	buf_init(&b);
	buf_init(&big);
	for (int i = 0; i < 300000; i++)
		buf_putc(&big, "\r\n-x"[i % 4]);
	buf_printf(&b, D "\r\nContent-Disposition: form-data; name=\"message\"\r\n"
	    "\r\nZo\xc3\xab's question\r\nline two\r\n"
	    D "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	    D "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
	    D "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"big.bin\"\r\n\r\n");
	buf_append(&b, big.data, big.len);
	buf_printf(&b, "\r\n" D "\r\nContent-Disposition: form-data; "
	    "name=\"csrf_token\"\r\n\r\ntok\r\n" D "--\r\n");
	rc = parse(&r, &io, &m, b.data, b.len, 0, &why);
	ok(rc == 0 && *why == '\0', "a form with text and two files reads, "
	    "no refusal worded: %d %s", rc, why);
	ok(r.nparams == 2 && !strcmp(req_param(&r, "message"),
	    "Zo\xc3\xab's question\r\nline two") &&
	    !strcmp(req_param(&r, "csrf_token"), "tok"),
	    "its fields are the request's parameters");
	ok(r.nfiles == 2 && r.upload_error == NULL, "two files (the empty "
	    "input is none), no complaint: %zu", r.nfiles);
	if (r.nfiles == 2) {
		got = spooled(&r.files[0]);
		ok(!strcmp(r.files[0].name, "a.txt") &&
		    !strcmp(r.files[0].field, "files") && r.files[0].size == 5 &&
		    !strcmp(got, "hello"), "a.txt: its name, field and bytes");
		free(got);
		crypto_hash_sha256(h, (const unsigned char *)"hello", 5);
		ok(!memcmp(h, r.files[0].sha256, 32), "and its SHA-256");
		got = spooled(&r.files[1]);
		ok(r.files[1].size == (int64_t)big.len &&
		    !memcmp(got, big.data, big.len), "big.bin (300 kB of CR, "
		    "LF and dashes) spooled whole");
		free(got);
		crypto_hash_sha256(h, (const unsigned char *)big.data, big.len);
		ok(!memcmp(h, r.files[1].sha256, 32), "and its SHA-256");
	}
	req_free(&r);
	ok(open_fds() == fds, "the spools are closed with the request");
	buf_free(&b);
	buf_free(&big);
}

/* Parses a body of n files of size bytes each; returns the request. */
static int
files_body(struct request *r, struct io *io, struct mem *m, struct buf *b,
    int n, size_t size, const char **why)
{
	buf_reset(b);
	buf_printf(b, D "\r\nContent-Disposition: form-data; name=\"message\"\r\n"
	    "\r\nkept\r\n");
	for (int i = 0; i < n; i++) {
		buf_printf(b, D "\r\nContent-Disposition: form-data; "
		    "name=\"files\"; filename=\"f%d.bin\"\r\n\r\n", i);
		for (size_t k = 0; k < size; k++)
			buf_putc(b, 'z');
		buf_puts(b, "\r\n");
	}
	buf_puts(b, D "--\r\n");
	return parse(r, io, m, b->data, b->len, 0, why);
}

static void
test_limits(void)
{
	struct request	 r;
	struct io	 io;
	struct mem	 m;
	struct buf	 b;
	const char	*why;
	int		 rc, fds = open_fds();

	buf_init(&b);
	conf.attachment_max_mb = 1;
	conf.attachments_per_message = 2;
	rc = files_body(&r, &io, &m, &b, 3, 10, &why);
	ok(rc == 0 && r.nfiles == 2 && r.upload_error != NULL &&
	    strstr(r.upload_error, "At most 2 files") &&
	    !strcmp(req_param(&r, "message"), "kept"),
	    "a third file: two kept, the form kept, why said: %s",
	    r.upload_error ? r.upload_error : "");
	req_free(&r);
	rc = files_body(&r, &io, &m, &b, 1, 1024 * 1024 + 1, &why);
	ok(rc == 0 && r.nfiles == 0 && r.upload_error != NULL &&
	    strstr(r.upload_error, "\"f0.bin\" is larger than 1 MB"),
	    "a file of 1 MB and a byte: not kept, why said: %s",
	    r.upload_error ? r.upload_error : "");
	req_free(&r);
	rc = files_body(&r, &io, &m, &b, 1, 1024 * 1024, &why);
	ok(rc == 0 && r.nfiles == 1 && r.files[0].size == 1024 * 1024 &&
	    r.upload_error == NULL, "a file of exactly 1 MB is kept");
	req_free(&r);
	rc = files_body(&r, &io, &m, &b, 1, 0, &why);
	ok(rc == 0 && r.nfiles == 0 && r.upload_error != NULL &&
	    strstr(r.upload_error, "is empty"), "an empty file: said");
	req_free(&r);
	conf.attachment_max_mb = 0;
	rc = files_body(&r, &io, &m, &b, 1, 10, &why);
	ok(rc == 0 && r.nfiles == 0 && r.upload_error != NULL &&
	    strstr(r.upload_error, "does not take files"),
	    "files off: a file is not kept, and that is said");
	req_free(&r);
	conf.attachment_max_mb = 10;
	conf.attachments_per_message = 5;
	/* cut short: Content-Length says more than comes */
	files_body(&r, &io, &m, &b, 1, 10, &why);
	req_free(&r);
	rc = parse(&r, &io, &m, b.data, b.len - 20, b.len, &why);
	ok(rc == 400 && strstr(why, "cut short") && r.nfiles == 0,
	    "a truncated upload: 400, nothing kept (%s)", why);
	req_free(&r);
	rc = parse(&r, &io, &m, b.data, b.len - 20, 0, &why);
	ok(rc == 400 && strstr(why, "cut short"),
	    "a body without its closing delimiter: 400 (%s)", why);
	req_free(&r);
	{
		static const char bad[] = D "\r\nContent-Disposition: "
		    "form-data; name=\"m\"\r\n\r\n\xff\xfe\r\n" D "--";

		rc = parse(&r, &io, &m, bad, sizeof(bad) - 1, 0, &why);
	}
	ok(rc == 400 && strstr(why, "UTF-8"), "a field that is not UTF-8: "
	    "400 (%s)", why);
	req_free(&r);
	conf.body_limit = 1024;
	rc = files_body(&r, &io, &m, &b, 0, 0, &why);
	req_free(&r);
	buf_reset(&b);
	buf_puts(&b, D "\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\n");
	for (int i = 0; i < 2000; i++)
		buf_putc(&b, 'x');
	buf_puts(&b, "\r\n" D "--");
	rc = parse(&r, &io, &m, b.data, b.len, 0, &why);
	ok(rc == 400 && strstr(why, "form's text is larger"),
	    "fields over body_limit: 400 (%s)", why);
	req_free(&r);
	ok(upload_body_limit() == 1024 + 5 * 10 * 1048576 + 65536,
	    "the body limit of a route with files: %lld",
	    (long long)upload_body_limit());
	conf.body_limit = 65536;
	ok(open_fds() == fds, "no spool left open");
	buf_free(&b);
}

/* A field sent as a file part (with a file name, as Python's requests
 * sends every part it is given as a file) is read as the field: only the
 * input "files" holds files. */
static void
test_field_with_filename(void)
{
	static const char body[] = D "\r\nContent-Disposition: form-data; "
	    "name=\"csrf_token\"; filename=\"csrf_token\"\r\n\r\ntok\r\n" D
	    "\r\nContent-Disposition: form-data; name=\"files\"; "
	    "filename=\"a.txt\"\r\n\r\nhello\r\n" D "--\r\n";
	struct request	 r;
	struct io	 io;
	struct mem	 m;
	const char	*why;
	int		 rc;

	rc = parse(&r, &io, &m, body, sizeof(body) - 1, 0, &why);
	ok(rc == 0 && req_param(&r, "csrf_token") != NULL &&
	    !strcmp(req_param(&r, "csrf_token"), "tok") && r.nfiles == 1 &&
	    !strcmp(r.files[0].name, "a.txt"), "a field sent with a file name "
	    "is the field; only \"files\" holds files");
	req_free(&r);
}

int
main(void)
{
	char err[256];

	if (sodium_init() < 0 || !conf_parse("", "test", err, sizeof(err)))
		return 1;
	test_fields_and_files();
	test_limits();
	test_field_with_filename();
	return tap_done();
}
