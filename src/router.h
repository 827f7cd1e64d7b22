/* router.h: the dispatch table and the front-line gate. */
#ifndef PMB_ROUTER_H
#define PMB_ROUTER_H

#include <stddef.h>

#include "http.h"

#define M_GET	0x01	/* also answers HEAD */
#define M_POST	0x02

#define R_DB		0x01	/* needs the database */
#define R_SECRET	0x02	/* the path's wildcard is a secret: mask it */
#define R_FORM		0x04	/* the handler re-renders its own form when
				   fields are invalid; otherwise the gate
				   answers 400 */
#define R_NOSTORE	0x08	/* Cache-Control: no-store */
#define R_ADMIN		0x10	/* staff only: needs a session */
#define R_CSRF		0x20	/* POST checked for CSRF: 403 unless R_FORM,
				   which handles req->csrf_ok itself */
#define R_RAWBODY	0x40	/* POST body application/json, kept as
				   sent in req->body (a webhook's
				   signature covers the bytes); every
				   other route answers 415 to JSON */
#define R_DBSOFT	0x80	/* uses the database if it can be opened:
				   without it the handler still answers
				   (db_handle() is NULL), not 503 */
#define R_FILES		0x100	/* POST may also be multipart/form-data
				   with files (upload.h), up to
				   upload_body_limit() */

typedef void (*handler_fn)(struct request *);

struct route {
	const char		*pattern;	/* '*' matches one segment */
	unsigned		 method;	/* one of M_GET, M_POST */
	handler_fn		 handler;
	const struct field	*fields;	/* NULL-terminated, or NULL */
	unsigned		 flags;
};

/* Runs one request through the gate and its handler; always answers.
 * Returns the status sent. */
int	 router_dispatch(struct request *);
/* Writes the request's log line (path with secrets masked). */
void	 router_log(const struct request *);

#endif
