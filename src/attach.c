/* attach.c: a form's files checked, cleaned and stored (attach.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "attach.h"
#include "conf.h"
#include "filekind.h"
#include "files.h"
#include "http.h"
#include "imgclean_run.h"
#include "tmpl.h"
#include "util.h"

#define CHUNK	65536

/* What each kind is called on the form: its file name endings (the
 * input's accept list; the kind is still decided from the content) and
 * its name for people. */
static const struct {
	const char	*kind, *ext, *label;
} kind_names[] = {
	{ "pdf", ".pdf", "PDF" },
	{ "png", ".png", "PNG" },
	{ "jpeg", ".jpg,.jpeg", "JPEG" },
	{ "gif", ".gif", "GIF" },
	{ "webp", ".webp", "WebP" },
	{ "txt", ".txt", "text" },
	{ "csv", ".csv", "CSV" },
	{ "docx", ".docx", "Word" },
	{ "xlsx", ".xlsx", "Excel" },
	{ "pptx", ".pptx", "PowerPoint" },
	{ "odt", ".odt", "OpenDocument text" },
	{ "ods", ".ods", "OpenDocument spreadsheet" },
};
#define NKIND_NAMES	(sizeof(kind_names) / sizeof(kind_names[0]))

/* Returns 1 if kind is one of attachment_types' words. */
static int
kind_allowed(const char *kind)
{
	return word_in_list(conf.attachment_types, kind, ATTACHMENT_SEPS);
}

/* Copies size bytes from fd (from its start) to the new file path.
 * Returns 1 or 0. */
static int
copy_out(int fd, int64_t size, const char *path)
{
	char	*chunk = xmalloc(CHUNK);
	int	 out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int64_t	 off = 0;
	int	 ok = out >= 0;

	while (ok && off < size) {
		ssize_t k = pread(fd, chunk, CHUNK, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || !write_all(out, chunk, (size_t)k))
			ok = 0;
		else
			off += k;
	}
	free(chunk);
	if (out >= 0 && close(out) != 0)
		ok = 0;
	return ok;
}

/* Makes u's spool the cleaned image: its bytes, size and SHA-256.
 * Returns NULL, or why not (for the log). */
static const char *
image_clean(struct upload *u, char *err, size_t errsz)
{
	const char			*tmp = getenv("TMPDIR");
	char				 dir[4096], in[4200], out[4200], *chunk;
	crypto_hash_sha256_state	 sha;
	int				 fd = -1;
	int64_t				 size = 0;
	ssize_t				 k;

	snprintf(dir, sizeof(dir), "%s/pmb-img-XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		return "cannot make a folder for the helper";
	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	if (!copy_out(u->fd, u->size, in))
		snprintf(err, errsz, "cannot copy the image out");
	else if (imgclean_run(in, out, err, errsz) == 0 &&
	    (fd = open(out, O_RDONLY | O_CLOEXEC)) < 0)
		snprintf(err, errsz, "cannot open the cleaned image: %s",
		    strerror(errno));
	unlink(in);
	unlink(out);
	rmdir(dir);
	if (fd < 0)
		return err;
	crypto_hash_sha256_init(&sha);
	chunk = xmalloc(CHUNK);
	while ((k = read(fd, chunk, CHUNK)) > 0) {
		crypto_hash_sha256_update(&sha, (unsigned char *)chunk,
		    (size_t)k);
		size += k;
	}
	free(chunk);
	if (k < 0 || size == 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return "cannot read the cleaned image";
	}
	close(u->fd);
	u->fd = fd;
	u->size = size;
	crypto_hash_sha256_final(&sha, u->sha256);
	return NULL;
}

/* Decides the kind of u's spool. Returns it, or NULL with *why. */
static const char *
kind_of(const struct upload *u, const char **why)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", u->fd);
	return filekind_detect_file(path, why);
}

const char *
attach_check_one(struct request *r, struct upload *u, const char **kind)
{
	const char	*why = NULL, *failed;
	char		 err[512];

	if ((*kind = kind_of(u, &why)) == NULL)
		return req_printf(r, "\"%s\" cannot be taken: %s.", u->name,
		    why);
	if (!kind_allowed(*kind))
		return req_printf(r, "\"%s\" is a %s file, which this site "
		    "does not take. It takes: %s.", u->name, *kind,
		    conf.attachment_types);
	if (!filekind_is_image(*kind))
		return NULL;
	if ((failed = image_clean(u, err, sizeof(err))) != NULL) {
		log_msg("attach: an image was refused: %s", failed);
		return req_printf(r, "\"%s\" could not be read as an image.",
		    u->name);
	}
	/* What the helper wrote is checked again. */
	if ((*kind = kind_of(u, &why)) == NULL ||
	    !filekind_is_image(*kind))
		return req_printf(r, "\"%s\" could not be read as an image.",
		    u->name);
	return NULL;
}

const char *
attach_check(struct request *r, const char **kinds)
{
	const char *why;

	if (r->upload_error != NULL)
		return r->upload_error;
	for (size_t i = 0; i < r->nfiles; i++)
		if ((why = attach_check_one(r, &r->files[i], &kinds[i])) !=
		    NULL)
			return why;
	return NULL;
}

int
attach_store(struct request *r, const char **kinds, int64_t order_id,
    int64_t message_id, int64_t user_id)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (file_store(&r->files[i], kinds[i], order_id, message_id,
		    user_id) == 0)
			return 0;
	return 1;
}

const char *
attach_summary(struct request *r)
{
	struct buf b;

	if (r->nfiles == 0)
		return "";
	buf_init(&b);
	buf_printf(&b, "%zu file%s: ", r->nfiles, r->nfiles == 1 ? "" : "s");
	for (size_t i = 0; i < r->nfiles; i++)
		buf_printf(&b, "%s%s (%s)", i > 0 ? ", " : "",
		    r->files[i].name, file_size_text(r, r->files[i].size));
	return req_keep(r, buf_take(&b));
}

const char *
attach_accept(struct request *r)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < NKIND_NAMES; i++)
		if (kind_allowed(kind_names[i].kind))
			buf_printf(&b, "%s%s", b.len > 0 ? "," : "",
			    kind_names[i].ext);
	return b.len > 0 ? req_keep(r, buf_take(&b)) : "";
}

const char *
attach_hint(struct request *r)
{
	const char	*label[NKIND_NAMES];
	struct buf	 b, img;
	size_t		 n = 0;

	buf_init(&b);
	buf_init(&img);
	for (size_t i = 0; i < NKIND_NAMES; i++) {
		if (!kind_allowed(kind_names[i].kind))
			continue;
		if (!filekind_is_image(kind_names[i].kind))
			label[n++] = kind_names[i].label;
		else if (img.len == 0)
			label[n++] = NULL;	/* the images, together */
		if (filekind_is_image(kind_names[i].kind))
			buf_printf(&img, "%s%s", img.len > 0 ? ", " : "",
			    kind_names[i].label);
	}
	buf_printf(&b, "Up to %lld file%s of %lld MB each",
	    (long long)conf.attachments_per_message,
	    conf.attachments_per_message == 1 ? "" : "s",
	    (long long)conf.attachment_max_mb);
	for (size_t i = 0; i < n; i++)
		if (label[i] != NULL)
			buf_printf(&b, "%s%s", i > 0 ? ", " : ": ", label[i]);
		else
			buf_printf(&b, "%simages (%s)", i > 0 ? ", " : ": ",
			    img.data);
	buf_printf(&b, ".");
	buf_free(&img);
	return req_keep(r, buf_take(&b));
}

void
attach_form_vars(struct request *r, struct tvars *tv, const char *error)
{
	if (conf.attachment_max_mb <= 0)
		return;
	tv_set(tv, "files_on", "1");
	tv_set(tv, "files_accept", attach_accept(r));
	tv_set(tv, "files_hint", attach_hint(r));
	tv_set(tv, "err_files", error);
	tv_set(tv, "files_again", r->nfiles > 0 || r->upload_error != NULL ?
	    "1" : "");
}
