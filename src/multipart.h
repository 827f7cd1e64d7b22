/* multipart.h: a streaming reader of multipart/form-data bodies (RFC
 * 7578, RFC 2046's syntax), for the front-line gate's file uploads
 * (issue 19). Strict: the body starts with the first delimiter, every
 * part has a Content-Disposition "form-data" with a name, header lines
 * and parts are bounded, a filename* (RFC 5987/8187, UTF-8 only) wins
 * over filename; anything else is refused with a sentence for the
 * user. Fed in chunks of any size: a part's data is handed on as it
 * arrives (never the whole body in memory). No allocation per byte;
 * nothing here touches files or the request. */
#ifndef PMB_MULTIPART_H
#define PMB_MULTIPART_H

#include <stddef.h>

/* Limits. */
#define MP_MAX_PARTS		64	/* parts in one body */
#define MP_MAX_HEADER		1024	/* bytes in one header line */
#define MP_MAX_HEADERS		8	/* header lines in one part */
#define MP_BOUNDARY_MAX		70	/* RFC 2046 */
#define MP_NAME_MAX		255	/* bytes in a name or filename */

/* One part, as its headers describe it. */
struct mp_part {
	char	 name[MP_NAME_MAX + 1];		/* the form field */
	char	 filename[MP_NAME_MAX + 1];	/* its last path component,
						 * control characters
						 * removed; "" for a field */
	int	 is_file;	/* a filename parameter was given (even "") */
	char	 ctype[128];	/* Content-Type as sent ("" if none): for
				 * the log only, never trusted */
};

/* What the reader calls, in order, for each part: begin, data (zero or
 * more times), end. Each returns 0 to go on, or -1 with a sentence in
 * *why to stop the whole body. */
struct mp_handler {
	int	(*begin)(void *arg, const struct mp_part *, const char **why);
	int	(*data)(void *arg, const char *p, size_t n, const char **why);
	int	(*end)(void *arg, const char **why);
	void	*arg;
};

struct multipart;

/* Returns a reader for a body of Content-Type ctype (which names the
 * boundary), or NULL with a sentence in *why (not multipart/form-data,
 * no or a bad boundary). */
struct multipart *mp_new(const char *ctype, const struct mp_handler *,
		    const char **why);
/* Feeds n bytes of the body. Returns 0, or -1 with *why (malformed, or
 * a handler stopped it); after -1, only mp_free. */
int		 mp_feed(struct multipart *, const char *p, size_t n,
		    const char **why);
/* Ends the body: returns 0 if it ended with the closing delimiter, else
 * -1 with *why (cut short). */
int		 mp_finish(struct multipart *, const char **why);
void		 mp_free(struct multipart *);

#endif
