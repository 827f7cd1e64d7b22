/* files.h: the files kept with messages (issue 19; 022_files.sql): each
 * written into the store from its spooled upload with incremental blob
 * I/O, inside the caller's transaction, and served in pieces, never read
 * whole into memory. */
#ifndef PMB_FILES_H
#define PMB_FILES_H

#include <stdint.h>

struct request;
struct tvars;
struct upload;

/* A file as a page or an email lists it (never its bytes). */
struct file_item {
	int64_t		 id;
	int64_t		 message_id;	/* 0: on the order's reply draft */
	int64_t		 size;
	const char	*name;
	const char	*kind;
};

/* Stores upload u (its spool read from the start) as a file of order_id
 * with message_id (0: the order's reply draft), of kind (filekind.c),
 * attached by user_id (0: the client). Inside the caller's transaction.
 * Returns the file's id, or 0 on error (logged). */
int64_t	 file_store(const struct upload *u, const char *kind,
	    int64_t order_id, int64_t message_id, int64_t user_id);

/* Who asks for a file. */
enum file_viewer {
	FILE_STAFF,	/* any file */
	FILE_CLIENT	/* only a file of order_id whose message the client
			 * sees (not a note's, not on a draft) */
};

/* Answers r with file id: 200 and its bytes in pieces, with the
 * download headers (Content-Type of its kind, Content-Disposition:
 * attachment with its name, nosniff, a sandboxing CSP, no caching); 404
 * when there is no such file for viewer (and order_id, for a client);
 * 503 on a database error. */
void	 file_serve(struct request *r, int64_t id, enum file_viewer viewer,
	    int64_t order_id);

/* Loads every file of order_id (one statement, on the index
 * files_order), in the order attached, into *out (owned by r). Returns
 * how many, or -1 on a database error. */
int64_t	 files_of_order(struct request *r, int64_t order_id,
	    struct file_item **out);
/* Adds to tv, as the list called list, the files of items[0..n) that
 * belong to message_id (0: the reply draft's): each row with file_id,
 * file_name, file_kind, file_size ("2.4 MB"), file_url (url_prefix and
 * the id) and file_image ("1" for a raster image the pages may show as
 * a thumbnail). Returns how many. */
int64_t	 files_tv(struct request *r, struct tvars *tv, const char *list,
	    const struct file_item *items, int64_t n, int64_t message_id,
	    const char *url_prefix);
/* Returns a file's size as people read it ("820 bytes", "14 KB",
 * "2.4 MB"), owned by r. */
const char *file_size_text(struct request *r, int64_t size);

/* Removes every file of order_id (a cancelled order keeps none), inside
 * the caller's transaction. Returns 1 or 0. */
int	 files_remove_order(int64_t order_id);
/* Reads every file back and compares it with its SHA-256 (pmbctl
 * check), calling bad(id, name) for each that differs. Sets *n to the
 * files read. Returns the number that differ, or -1 on a database
 * error. */
int64_t	 file_verify_all(int64_t *n, void (*bad)(int64_t, const char *));

#endif
