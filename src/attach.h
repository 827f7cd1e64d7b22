/* attach.h: the files sent with a form made fit to keep (issue 19):
 * each one's kind decided from its content (filekind.c) and checked
 * against attachment_types; images made upright and stripped of their
 * metadata (EXIF, GPS position) in the pmb-imgclean helper process,
 * their spools replaced by the cleaned bytes; then stored with their
 * message (files.c) in the caller's transaction. */
#ifndef PMB_ATTACH_H
#define PMB_ATTACH_H

#include <stdint.h>

struct request;
struct upload;

/* Checks every file of r (upload.c spooled them), before any
 * transaction: sets each one's kind in kinds[] (r->nfiles of them).
 * Returns NULL when all may be kept, or a sentence for the page by the
 * files field (r->upload_error first, then the first file refused),
 * owned by the request. */
const char	*attach_check(struct request *r, const char **kinds);
/* Checks one file u as attach_check does, setting *kind (and making an
 * image's spool the cleaned image). Returns NULL when it may be kept,
 * or why not, a sentence owned by r. */
const char	*attach_check_one(struct request *r, struct upload *u,
		    const char **kind);
/* Stores r's files as checked (kinds from attach_check) with message
 * message_id (0: the consultant's draft) of order_id, from user_id (0:
 * the client). Inside the caller's transaction. Returns 1 or 0. */
int		 attach_store(struct request *r, const char **kinds,
		    int64_t order_id, int64_t message_id, int64_t user_id);

/* Returns what r's files are, for an alert email: "2 files: price
 * list.pdf (120 KB), ad.png (45 KB)", or "" with none; owned by r. */
const char	*attach_summary(struct request *r);
/* The file input's accept list for attachment_types (".pdf,.png,..."),
 * and the hint under it ("Up to 5 files of 10 MB each: PDF, images
 * (PNG, JPEG), ..."); owned by r. */
const char	*attach_accept(struct request *r);
const char	*attach_hint(struct request *r);
struct tvars;
/* Puts a form's file input into tv (www/templates/files_field.html):
 * files_on when attachment_max_mb allows files, files_accept and
 * files_hint from the settings, err_files (error, or NULL), and
 * files_again when r came with files, which a form shown again has not
 * kept (browsers cannot refill a file input). */
void		 attach_form_vars(struct request *r, struct tvars *tv,
		    const char *error);

#endif
