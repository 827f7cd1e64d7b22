/* files.c: files in the store, written and served in pieces (files.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "db.h"
#include "filekind.h"
#include "files.h"
#include "http.h"
#include "page.h"
#include "tmpl.h"
#include "upload.h"
#include "util.h"

/* Bytes moved at a time between a spool, the store and the web server. */
#define FILE_CHUNK	65536

/* Copies u's spool into the blob of file id. Returns 1 or 0. */
static int
blob_fill(const struct upload *u, int64_t id)
{
	sqlite3_blob	*blob;
	char		*chunk;
	int64_t		 off = 0;
	int		 ok = 1;

	if (sqlite3_blob_open(db_handle(), "main", "files", "data", id, 1,
	    &blob) != SQLITE_OK) {
		log_msg("files: cannot open the blob of file %lld: %s",
		    (long long)id, sqlite3_errmsg(db_handle()));
		return 0;
	}
	chunk = xmalloc(FILE_CHUNK);
	while (ok && off < u->size) {
		ssize_t k = pread(u->fd, chunk, FILE_CHUNK, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || off + k > u->size) {
			/* The spool, not the store: SQLite's message would
			 * be stale. */
			log_msg("files: cannot read the spool of file %lld: "
			    "%s", (long long)id, k < 0 ? strerror(errno) :
			    "its size changed");
			ok = 0;
		} else if (sqlite3_blob_write(blob, chunk, (int)k, (int)off) !=
		    SQLITE_OK) {
			log_msg("files: cannot store file %lld: %s",
			    (long long)id, sqlite3_errmsg(db_handle()));
			ok = 0;
		} else
			off += k;
	}
	free(chunk);
	return sqlite3_blob_close(blob) == SQLITE_OK && ok;
}

int64_t
file_store(const struct upload *u, const char *kind, int64_t order_id,
    int64_t message_id, int64_t user_id)
{
	int64_t id;

	if (u->size <= 0 || u->size > INT32_MAX) {
		log_msg("files: cannot store a file of %lld bytes",
		    (long long)u->size);
		return 0;
	}
	if (db_run(ST_FILE_INSERT, "iittibiii", order_id, message_id, u->name,
	    kind, u->size, (const void *)u->sha256, 32, user_id, now_unix(),
	    u->size) != DB_DONE)
		return 0;
	id = db_last_id();
	return blob_fill(u, id) ? id : 0;
}

/* Queues the headers of a download of name. */
static void
download_headers(struct request *r, const char *name, int64_t size)
{
	struct buf	b;
	char		num[INT_TEXT_MAX];

	buf_init(&b);
	/* RFC 6266: an ASCII fallback, then the UTF-8 name. */
	buf_puts(&b, "attachment; filename=\"");
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c & 0xc0) == 0x80)		/* the rest of a character */
			continue;
		buf_putc(&b, c < 0x80 && c >= 0x20 && c != '"' && c != '\\' ?
		    (char)c : '_');
	}
	buf_puts(&b, "\"; filename*=UTF-8''");
	url_escape(&b, name);
	http_header(r, "Content-Disposition", b.data);
	buf_free(&b);
	http_header(r, "Content-Length", int_text(num, size));
	r->download = 1;
}

/* Streams the blob of file id (size bytes) to r. Returns 1, or 0 when it
 * could not be read (the response is then cut short). */
static int
blob_send(struct request *r, int64_t id, int64_t size)
{
	sqlite3_blob	*blob;
	char		*chunk;
	int64_t		 off = 0;
	int		 ok = 1;

	if (sqlite3_blob_open(db_handle(), "main", "files", "data", id, 0,
	    &blob) != SQLITE_OK)
		return 0;
	chunk = xmalloc(FILE_CHUNK);
	while (ok && off < size) {
		int n = size - off < FILE_CHUNK ? (int)(size - off) :
		    FILE_CHUNK;

		ok = sqlite3_blob_read(blob, chunk, n, (int)off) == SQLITE_OK &&
		    http_write(r, chunk, (size_t)n) == 0;
		off += n;
	}
	free(chunk);
	sqlite3_blob_close(blob);
	return ok;
}

void
file_serve(struct request *r, int64_t id, enum file_viewer viewer,
    int64_t order_id)
{
	enum stmt	 st = viewer == FILE_STAFF ? ST_FILE_STAFF :
			    ST_FILE_CLIENT;
	sqlite3_stmt	*s;
	char		*name = NULL, *kind = NULL;
	const char	*mime;
	int64_t		 size = 0;
	int		 rc;

	/* One read transaction: the row and its blob, one snapshot. */
	if (!db_read_begin() || (s = db_stmt(st)) == NULL ||
	    !db_bind(s, "ii", id, order_id)) {
		db_read_end();
		page_unavailable(r);
		return;
	}
	if ((rc = db_step(st)) == DB_ROW) {
		name = req_strdup(r, db_text(s, 0));
		kind = req_strdup(r, db_text(s, 1));
		size = sqlite3_column_int64(s, 2);
	}
	db_done(st);
	if (rc != DB_ROW) {
		db_read_end();
		if (rc == DB_DONE)
			page_error(r, 404, "File not found", "There is no such "
			    "file here.");
		else
			page_unavailable(r);
		return;
	}
	download_headers(r, name, size);
	http_open(r, 200, (mime = filekind_mime(kind)) != NULL ? mime :
	    "application/octet-stream");
	if (!r->head && !blob_send(r, id, size))
		log_msg("files: file %lld was cut short", (long long)id);
	db_read_end();
}

/* Returns 1 if the blob of file id (size bytes) hashes to want. */
static int
blob_matches(int64_t id, int64_t size, const unsigned char *want)
{
	crypto_hash_sha256_state	 sha;
	unsigned char			 got[crypto_hash_sha256_BYTES];
	sqlite3_blob			*blob;
	char				*chunk;
	int				 ok;

	if (sqlite3_blob_open(db_handle(), "main", "files", "data", id, 0,
	    &blob) != SQLITE_OK)
		return 0;
	ok = sqlite3_blob_bytes(blob) == size;
	crypto_hash_sha256_init(&sha);
	chunk = xmalloc(FILE_CHUNK);
	for (int64_t off = 0; ok && off < size; off += FILE_CHUNK) {
		int n = size - off < FILE_CHUNK ? (int)(size - off) :
		    FILE_CHUNK;

		if ((ok = sqlite3_blob_read(blob, chunk, n, (int)off) ==
		    SQLITE_OK))
			crypto_hash_sha256_update(&sha,
			    (unsigned char *)chunk, (size_t)n);
	}
	free(chunk);
	sqlite3_blob_close(blob);
	crypto_hash_sha256_final(&sha, got);
	return ok && sodium_memcmp(got, want, sizeof(got)) == 0;
}

int64_t
file_verify_all(int64_t *n, void (*bad)(int64_t, const char *))
{
	sqlite3_stmt	*s = db_stmt(ST_FILE_ALL);
	int64_t		 differ = 0;
	int		 rc;

	*n = 0;
	if (s == NULL)
		return -1;
	while ((rc = db_step(ST_FILE_ALL)) == DB_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		(*n)++;
		if (sqlite3_column_bytes(s, 3) != crypto_hash_sha256_BYTES ||
		    !blob_matches(id, sqlite3_column_int64(s, 2),
		    sqlite3_column_blob(s, 3))) {
			differ++;
			bad(id, db_text(s, 1));
		}
	}
	db_done(ST_FILE_ALL);
	return rc == DB_DONE ? differ : -1;
}

int64_t
files_of_order(struct request *r, int64_t order_id, struct file_item **out)
{
	sqlite3_stmt	*s = db_stmt(ST_FILES_BY_ORDER);
	int64_t		 n = 0, cap = 0;
	int		 rc;

	*out = NULL;
	if (s == NULL || !db_bind(s, "i", order_id))
		return -1;
	while ((rc = db_step(ST_FILES_BY_ORDER)) == DB_ROW) {
		struct file_item *f;

		if (n == cap) {
			struct file_item *old = *out;

			cap = cap == 0 ? 8 : cap * 2;
			*out = req_alloc(r, (size_t)cap * sizeof(**out));
			if (n > 0)
				memcpy(*out, old, (size_t)n * sizeof(**out));
		}
		f = &(*out)[n++];
		f->id = sqlite3_column_int64(s, 0);
		f->message_id = sqlite3_column_int64(s, 1);
		f->name = req_strdup(r, db_text(s, 2));
		f->kind = req_strdup(r, db_text(s, 3));
		f->size = sqlite3_column_int64(s, 4);
	}
	db_done(ST_FILES_BY_ORDER);
	return rc == DB_DONE ? n : -1;
}

const char *
file_size_text(struct request *r, int64_t size)
{
	if (size < 1024)
		return req_printf(r, "%lld byte%s", (long long)size,
		    size == 1 ? "" : "s");
	if (size < 1024 * 1024)
		return req_printf(r, "%lld KB", (long long)((size + 512) /
		    1024));
	return req_printf(r, "%.1f MB", (double)size / (1024.0 * 1024.0));
}

int64_t
files_tv(struct request *r, struct tvars *tv, const char *list,
    const struct file_item *items, int64_t n, int64_t message_id,
    const char *url_prefix)
{
	int64_t k = 0;

	for (int64_t i = 0; i < n; i++) {
		const struct file_item	*f = &items[i];
		struct tvars		*row;

		if (f->message_id != message_id)
			continue;
		row = tv_row(tv, list);
		tv_set(row, "file_id", req_printf(r, "%lld", (long long)f->id));
		tv_set(row, "file_name", f->name);
		tv_set(row, "file_kind", f->kind);
		tv_set(row, "file_size", file_size_text(r, f->size));
		tv_set(row, "file_url", req_printf(r, "%s%lld", url_prefix,
		    (long long)f->id));
		tv_set(row, "file_image", filekind_is_image(f->kind) ? "1" :
		    "");
		k++;
	}
	return k;
}

int
files_remove_order(int64_t order_id)
{
	return db_run(ST_FILES_REMOVE_ORDER, "i", order_id) == DB_DONE;
}
