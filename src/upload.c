/* upload.c: a multipart/form-data body read into a request (upload.h),
 * through the streaming reader of multipart.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "http.h"
#include "multipart.h"
#include "upload.h"
#include "util.h"

#define MB		(INT64_C(1024) * 1024)
/* Room for the parts' delimiters and headers beside the files. */
#define UPLOAD_SLACK	(64 * 1024)
/* Bytes read from the web server at a time. */
#define UPLOAD_CHUNK	65536

/* The reader's state, while the body goes by. */
struct upload_ctx {
	struct request		*r;
	struct mp_part		 part;		/* the part being read */
	struct buf		 value;		/* a field's value so far */
	size_t			 field_bytes;	/* every field's, so far */
	int			 fd;		/* a file's spool, or -1 */
	int64_t			 size;		/* its bytes so far */
	int			 skip;		/* a file not kept */
	crypto_hash_sha256_state sha;
	int			 status;	/* 503 when spooling failed */
};

int64_t
upload_body_limit(void)
{
	return conf.body_limit + conf.attachments_per_message *
	    conf.attachment_max_mb * MB + UPLOAD_SLACK;
}

/* Returns an unlinked temporary file open for reading and writing, or
 * -1. In TMPDIR, else /tmp. */
static int
spool_open(void)
{
	const char	*dir = getenv("TMPDIR");
	char		 path[4096];
	int		 fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
#ifdef O_TMPFILE
	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) >= 0)
		return fd;
#endif
	if ((size_t)snprintf(path, sizeof(path), "%s/pmb-upload-XXXXXX",
	    dir) >= sizeof(path) || (fd = mkostemp(path, O_CLOEXEC)) < 0)
		return -1;
	unlink(path);
	return fd;
}

/* Appends a file of the input "files" to r: its name, its spool fd
 * (read from its start) and its size; r owns the spool from here.
 * Returns it, for its SHA-256. */
static struct upload *
upload_push(struct request *r, const char *name, int fd, int64_t size)
{
	struct upload *u;

	r->files = xrealloc(r->files, (r->nfiles + 1) * sizeof(*r->files));
	u = &r->files[r->nfiles++];
	u->field = req_strdup(r, UPLOAD_FIELD);
	u->name = req_strdup(r, name);
	u->fd = fd;
	u->size = size;
	return u;
}

/* Notes the first thing wrong with the files, for the page. */
static void
upload_refuse(struct upload_ctx *c, const char *msg)
{
	if (c->r->upload_error == NULL)
		c->r->upload_error = req_strdup(c->r, msg);
}

static int
part_begin(void *arg, const struct mp_part *p, const char **why)
{
	struct upload_ctx *c = arg;

	c->part = *p;
	c->fd = -1;
	c->skip = 0;
	c->size = 0;
	buf_reset(&c->value);
	/* Only the input "files" holds files: a field sent with a file name
	 * (Python's requests names every part it is given as a file) is read
	 * as the field it is. */
	if (p->is_file && strcmp(p->name, UPLOAD_FIELD) != 0) {
		c->part.is_file = 0;
		c->part.filename[0] = '\0';
	}
	if (!c->part.is_file)
		return 0;
	crypto_hash_sha256_init(&c->sha);
	/* The file is opened with its first byte: a file input left empty
	 * sends a part with no name and no bytes. */
	(void)why;
	return 0;
}

/* Opens the spool of the part being read, or decides it is not kept.
 * Returns 0, or -1 with *why when no file can be made. */
static int
file_start(struct upload_ctx *c, const char **why)
{
	char msg[512];

	if (conf.attachment_max_mb == 0) {
		upload_refuse(c, "This site does not take files.");
		c->skip = 1;
		return 0;
	}
	if (c->r->nfiles >= (size_t)conf.attachments_per_message) {
		snprintf(msg, sizeof(msg), "At most %lld files can go with "
		    "one message.", (long long)conf.attachments_per_message);
		upload_refuse(c, msg);
		c->skip = 1;
		return 0;
	}
	if ((c->fd = spool_open()) < 0) {
		log_msg("upload: cannot make a temporary file: %s",
		    strerror(errno));
		c->status = 503;
		*why = "The file could not be received; please try again.";
		return -1;
	}
	return 0;
}

static int
part_data(void *arg, const char *p, size_t n, const char **why)
{
	struct upload_ctx	*c = arg;
	char			 msg[512];

	if (!c->part.is_file) {
		if ((c->field_bytes += n) > (size_t)conf.body_limit) {
			*why = "The form's text is larger than this site "
			    "accepts.";
			return -1;
		}
		buf_append(&c->value, p, n);
		return 0;
	}
	if (c->size == 0 && c->fd < 0 && !c->skip &&
	    file_start(c, why) < 0)
		return -1;
	c->size += (int64_t)n;
	if (c->skip)
		return 0;
	if (c->size > conf.attachment_max_mb * MB) {
		snprintf(msg, sizeof(msg), "\"%s\" is larger than %lld MB.",
		    c->part.filename, (long long)conf.attachment_max_mb);
		upload_refuse(c, msg);
		close(c->fd);
		c->fd = -1;
		c->skip = 1;
		return 0;
	}
	crypto_hash_sha256_update(&c->sha, (const unsigned char *)p, n);
	if (!write_all(c->fd, p, n)) {
		log_msg("upload: cannot spool a file: %s", strerror(errno));
		c->status = 503;
		*why = "The file could not be received; please try again.";
		return -1;
	}
	return 0;
}

/* Appends the part just read, a field or a kept file, to the request.
 * Returns 0, or -1 with *why. */
static int
part_end(void *arg, const char **why)
{
	struct upload_ctx	*c = arg;
	struct request		*r = c->r;
	struct upload		*u;

	if (!c->part.is_file) {
		if (!utf8_valid(c->value.data ? c->value.data : "",
		    c->value.len)) {
			*why = "The request holds text that is not valid "
			    "UTF-8.";
			return -1;
		}
		if (r->nparams >= HTTP_MAX_FIELDS) {
			*why = "The request has too many fields.";
			return -1;
		}
		req_add_param(r, xstrdup(c->part.name), c->value.data ?
		    buf_take(&c->value) : xstrdup(""));
		return 0;
	}
	if (c->fd < 0) {	/* no file chosen, or not kept */
		if (!c->skip && *c->part.filename != '\0') {
			char msg[512];

			snprintf(msg, sizeof(msg), "\"%s\" is empty.",
			    c->part.filename);
			upload_refuse(c, msg);
		}
		return 0;
	}
	if (lseek(c->fd, 0, SEEK_SET) != 0) {
		*why = "The file could not be received; please try again.";
		c->status = 503;
		return -1;
	}
	/* Only the input "files" holds files (part_begin). */
	u = upload_push(r, *c->part.filename ? c->part.filename : "file",
	    c->fd, c->size);
	crypto_hash_sha256_final(&c->sha, u->sha256);
	c->fd = -1;
	return 0;
}

int
upload_read(struct request *r, size_t len, const char **why)
{
	struct upload_ctx	 c = { .r = r, .fd = -1 };
	struct mp_handler	 h = { part_begin, part_data, part_end, &c };
	struct multipart	*mp;
	char			*chunk;
	size_t			 got = 0;
	int			 rc = 0;

	if ((mp = mp_new(r->content_type, &h, why)) == NULL)
		return 415;
	buf_init(&c.value);
	chunk = xmalloc(UPLOAD_CHUNK);
	while (got < len && rc == 0) {
		size_t	 want = len - got < UPLOAD_CHUNK ? len - got :
		    UPLOAD_CHUNK;
		long	 k = r->io->read(r->io->ctx, chunk, want);

		if (k <= 0) {
			*why = "The upload was cut short.";
			rc = -1;
			break;
		}
		got += (size_t)k;
		rc = mp_feed(mp, chunk, (size_t)k, why);
	}
	if (rc == 0)
		rc = mp_finish(mp, why);
	free(chunk);
	mp_free(mp);
	buf_free(&c.value);
	if (c.fd >= 0)
		close(c.fd);
	/* Files kept so far are closed with the request (req_free). */
	if (rc < 0)
		return c.status ? c.status : 400;
	return 0;
}

int
upload_add_bytes(struct request *r, const char *name, const void *data,
    size_t len)
{
	struct upload	*u;
	int		 fd;

	if ((fd = spool_open()) < 0) {
		log_msg("upload: cannot spool a file: %s", strerror(errno));
		return 0;
	}
	if (!write_all(fd, data, len)) {
		log_msg("upload: cannot spool a file: %s", strerror(errno));
		close(fd);
		return 0;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return 0;
	}
	u = upload_push(r, name, fd, (int64_t)len);
	crypto_hash_sha256((unsigned char *)u->sha256, data, len);
	return 1;
}
