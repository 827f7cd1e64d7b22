/* upload.h: a POST's multipart/form-data body, read by the gate on the
 * routes that take files (R_FILES; issue 19): its fields go into the
 * request's parameters as a form's do, its files are spooled as they
 * arrive to unlinked temporary files, each with its size and SHA-256,
 * so that a worker never holds a whole file in memory and no store
 * transaction waits on a body still being read. What a file is, and
 * whether it may be kept, the handler decides (filekind). */
#ifndef PMB_UPLOAD_H
#define PMB_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"	/* struct request, struct upload */

/* The one form input that holds files (an interface: issue 19). */
#define UPLOAD_FIELD	"files"

/* Returns the largest body a route that takes files accepts: the form
 * (body_limit), attachments_per_message files of attachment_max_mb, and
 * room for the parts' headers. */
int64_t	 upload_body_limit(void);
/* Reads the len bytes of r's multipart body (r->content_type names its
 * boundary): fields appended to r->params, files to r->files. A file
 * over attachment_max_mb, or past attachments_per_message, is read and
 * not kept, and r->upload_error says which (the page shows it by the
 * field, and stores nothing); a file chosen with attachments off too.
 * An empty file input (no file chosen) is no file. Returns 0, or the
 * HTTP status to answer with *why: 400 (malformed, cut short), 503 (a
 * file could not be spooled). */
int	 upload_read(struct request *r, size_t len, const char **why);

/* Adds a file called name with the len bytes of data to r's files,
 * spooled as an upload's are (an email's attachment, mail_intake.c).
 * Returns 1, or 0 when it cannot be spooled (logged). */
int	 upload_add_bytes(struct request *r, const char *name,
	    const void *data, size_t len);

#endif
