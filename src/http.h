/* http.h: one request's data, the front-line gate's parsers, and the one
 * function that opens every response. */
#ifndef PMB_HTTP_H
#define PMB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Hard limits of the gate. */
#define HTTP_MAX_FIELDS		1000	/* query + body pairs */
#define HTTP_MAX_COOKIES	50
#define HTTP_MAX_URI		8192
#define HTTP_MAX_COOKIE_HDR	8192

/* Where a request comes from and where its answer goes: FastCGI or CGI. */
struct io {
	/* Reads up to n bytes of the body; returns bytes read, 0 at end,
	 * -1 on error. */
	long		(*read)(void *ctx, char *p, size_t n);
	/* Writes n bytes; returns 0, or -1 on error. */
	int		(*write)(void *ctx, const char *p, size_t n);
	/* Returns a CGI variable, or NULL. */
	const char	*(*env)(void *ctx, const char *name);
	void		*ctx;
};

struct kv {
	char	*key;
	char	*val;
};

/* A page's declared input field (kcgi's fieldmap idea). */
#define F_REQUIRED	0x01	/* may not be empty */
#define F_MULTILINE	0x02	/* may hold newlines and tabs */
#define F_CHECKBOX	0x04	/* present means "on" */

struct field {
	const char	*name;		/* the form/query name (an interface) */
	const char	*label;		/* for error messages */
	size_t		 minlen;	/* in characters, when not empty */
	size_t		 maxlen;	/* in characters */
	unsigned	 flags;
	/* Returns NULL if v is acceptable, else a message for the user. */
	const char	*(*check)(const char *v);
};

/* Ends a page's field table. */
#define FIELDS_END	{ NULL, NULL, 0, 0, 0, NULL }

/* A field's value after the gate: value is "" when absent. */
struct fieldval {
	const char	*value;
	const char	*error;		/* NULL when valid */
};

/* One file of a multipart body, spooled by the gate (upload.c). */
struct upload {
	char		*field;		/* its form field: "files" */
	char		*name;		/* its name, cleaned (multipart.c) */
	int		 fd;		/* its bytes, from offset 0 */
	int64_t		 size;		/* bytes */
	unsigned char	 sha256[32];
};

struct route;
struct session;

struct request {
	struct io		*io;
	const char		*method;	/* GET, HEAD or POST */
	int			 head;		/* HEAD: no body is sent */
	char			*path;		/* decoded path, no query */
	const char		*remote_addr;	/* client IP */
	const char		*origin;
	const char		*sec_fetch_site;
	const char		*content_type;
	const char		*client_ip;	/* see req_client_ip */
	int			 csrf_ok;	/* POST: token and origin ok */
	int			 raw_body;	/* set by the gate (R_RAWBODY):
						   keep a JSON body raw */
	int			 files_ok;	/* set by the gate (R_FILES):
						   multipart with files, up
						   to files_max bytes */
	int64_t			 files_max;
	int			 multipart;	/* its body is left for
						   upload_read (body_len) */
	struct upload		*files;		/* the body's files */
	size_t			 nfiles;
	const char		*upload_error;	/* a file not kept: why */
	char			*body;		/* that body, NUL-terminated;
						   NULL for every other route */
	size_t			 body_len;
	char			*csrf;		/* this browser's form token */

	struct kv		*params;	/* query, then body */
	size_t			 nparams;
	size_t			 nquery;	/* of them from the query */
	struct kv		*cookies;
	size_t			 ncookies;

	const struct route	*route;
	char			*arg;		/* path wildcard, e.g. a token */
	char			*arg2;		/* a second one, e.g. a file id */
	struct fieldval		*fields;	/* one per route field */
	size_t			 nerrors;	/* invalid fields */

	struct session		*session;	/* signed-in staff, or NULL */

	/* Response state. */
	int			 status;
	int			 opened;	/* headers written */
	int			 nostore;	/* Cache-Control: no-store */
	int			 download;	/* a file served: sandboxed,
						   private, no-store */
	const char		*form_action;	/* an origin the page's forms
						   may also post or be
						   redirected to (CSP), or
						   NULL */
	struct buf		 headers;	/* extra headers (Location...) */

	/* Strings owned by the request, freed at its end. */
	void			**pool;
	size_t			 npool, poolcap;
	char			*arena;		/* see req_alloc */
	size_t			 arena_left;
	double			 t0;		/* start, for the log line */
};

/* Sets up req for io; returns nothing (parsing happens in the gate). */
void	 req_init(struct request *, struct io *);
/* Frees everything the request owns. */
void	 req_free(struct request *);

/* Request-lifetime memory: the pointer is freed by req_free. */
void	*req_alloc(struct request *, size_t);
char	*req_strdup(struct request *, const char *);
char	*req_printf(struct request *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	*req_keep(struct request *, void *);
/* Returns the strings up to NULL joined, owned by the request. */
char	*req_cat(struct request *, ...) __attribute__((sentinel));

/* Decodes a percent-encoded component (plus as space if plus).
 * Returns a new string, or NULL if malformed or not valid UTF-8. */
char	*url_decode(const char *, size_t, int plus);
/* Splits "a=1&b=2" into pairs appended to *kv; returns 0, or -1 with
 * a reason in *why (malformed, too many). */
int	 parse_urlencoded(const char *, size_t, struct kv **, size_t *,
	    size_t max, const char **why);
/* Splits a Cookie header into pairs; as parse_urlencoded. */
int	 parse_cookies(const char *, struct kv **, size_t *,
	    const char **why);
/* Appends the pair (k, v) to r's parameters; takes both. */
void	 req_add_param(struct request *, char *k, char *v);
/* Frees a pair array. */
void	 kv_free(struct kv *, size_t);

/* Returns the first parameter or cookie called name, or NULL. */
const char *req_param(const struct request *, const char *);
/* Returns the first parameter called name of a POST's body (never of
 * its query string), or NULL. */
const char *req_body_param(const struct request *, const char *);
const char *req_cookie(const struct request *, const char *);
/* Returns the CGI variable name, or NULL. */
const char *req_env(const struct request *, const char *);

/* Returns the client's IP: REMOTE_ADDR, or from X-Forwarded-For when
 * REMOTE_ADDR is a trusted proxy (setting trusted_proxies). */
const char *req_client_ip(struct request *);

/* Reads and parses the body and query; returns 0, or the HTTP status
 * to answer (400, 413, 415) with a reason in *why. A route that takes
 * files (files_ok) also takes multipart/form-data, up to files_max
 * bytes: its body is left unread (multipart, body_len) for the gate's
 * upload_read. */
int	 req_parse(struct request *, const char **why);
/* Validates the fields of a NULL-terminated table into req->fields;
 * returns the number of invalid fields. */
size_t	 req_validate(struct request *, const struct field *);

/* Queues a header for the response, e.g. ("Location", url). */
void	 http_header(struct request *, const char *name, const char *val);
/* Opens the response: status line, Content-Type, the security headers,
 * queued headers. Every response goes through here. */
void	 http_open(struct request *, int status, const char *ctype);
/* Writes body bytes (nothing for HEAD); returns 0 or -1. */
int	 http_write(struct request *, const char *, size_t);
int	 http_puts(struct request *, const char *);
/* Answers 303 See Other to a site path such as "/o/TOKEN". */
void	 http_redirect(struct request *, const char *path);
/* Returns the reason phrase of status. */
const char *http_reason(int);

#endif
