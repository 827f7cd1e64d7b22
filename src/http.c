/* http.c: the request's parsers (query, form body, cookies), field
 * validation, and the one place that opens every response. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <strings.h>

#include "conf.h"
#include "http.h"

/* Room made at once for a response's header lines, besides the queued
 * ones (the security headers alone are some 350 bytes). */
#define HEADERS_GUESS	512
/* A request's small allocations (req_alloc) are cut from chunks of this
 * many bytes, each one malloc, freed with the request. Built with
 * AddressSanitizer, each is a malloc of its own, so that ASan still sees
 * an overrun of one. */
#ifdef __SANITIZE_ADDRESS__
#define ARENA_CHUNK	0
#else
#define ARENA_CHUNK	4096
#endif
#define ARENA_ALIGN	16	/* as malloc's */

void
req_init(struct request *r, struct io *io)
{
	memset(r, 0, sizeof(*r));
	r->io = io;
	r->status = 200;
	buf_init(&r->headers);
	r->t0 = now_ms();
}

void
req_free(struct request *r)
{
	kv_free(r->params, r->nparams);
	kv_free(r->cookies, r->ncookies);
	free(r->path);
	free(r->arg);
	free(r->arg2);
	free(r->fields);
	free(r->body);
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i].fd >= 0)
			close(r->files[i].fd);
	free(r->files);
	for (size_t i = 0; i < r->npool; i++)
		free(r->pool[i]);
	free(r->pool);
	buf_free(&r->headers);
}

void *
req_keep(struct request *r, void *p)
{
	if (r->npool == r->poolcap) {
		r->poolcap = r->poolcap ? r->poolcap * 2 : 32;
		r->pool = xrealloc(r->pool, r->poolcap * sizeof(*r->pool));
	}
	r->pool[r->npool++] = p;
	return p;
}

void *
req_alloc(struct request *r, size_t n)
{
	char *p;

	/* A large one is a malloc of its own. */
	if (ARENA_CHUNK == 0 || n > ARENA_CHUNK / 4)
		return req_keep(r, xmalloc(n));
	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (n > r->arena_left) {
		r->arena = req_keep(r, xmalloc(ARENA_CHUNK));
		r->arena_left = ARENA_CHUNK;
	}
	p = r->arena;
	r->arena += n;
	r->arena_left -= n;
	return p;
}

char *
req_strdup(struct request *r, const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(req_alloc(r, n), s, n);
}

char *
req_printf(struct request *r, const char *fmt, ...)
{
	struct buf	b;
	va_list		ap;

	buf_init(&b);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return req_keep(r, buf_take(&b));
}

/* Returns 1 if ip is listed in the trusted_proxies setting. */
static int
proxy_trusted(const char *ip, size_t n)
{
	const char *p = conf.trusted_proxies;

	while (*p != '\0') {
		size_t k;

		p += strspn(p, " ,");
		k = strcspn(p, " ,");
		if (k > 0 && k == n && strncmp(p, ip, n) == 0)
			return 1;
		p += k;
	}
	return 0;
}

char *
req_cat(struct request *r, ...)
{
	va_list		 ap;
	const char	*s;
	char		*out, *p;
	size_t		 n = 0;

	va_start(ap, r);
	while ((s = va_arg(ap, const char *)) != NULL)
		n += strlen(s);
	va_end(ap);
	p = out = req_alloc(r, n + 1);
	va_start(ap, r);
	while ((s = va_arg(ap, const char *)) != NULL) {
		size_t k = strlen(s);

		memcpy(p, s, k);
		p += k;
	}
	va_end(ap);
	*p = '\0';
	return out;
}

const char *
req_client_ip(struct request *r)
{
	const char	*xff, *end;

	if (r->client_ip != NULL)
		return r->client_ip;
	r->client_ip = r->remote_addr;
	if (!proxy_trusted(r->remote_addr, strlen(r->remote_addr)) ||
	    (xff = req_env(r, "HTTP_X_FORWARDED_FOR")) == NULL)
		return r->client_ip;
	/* Walk X-Forwarded-For from the right, past trusted proxies. */
	end = xff + strlen(xff);
	while (end > xff) {
		const char	*start = end;
		size_t		 n;

		while (start > xff && start[-1] != ',')
			start--;
		n = (size_t)(end - start);
		while (n > 0 && *start == ' ')
			start++, n--;
		while (n > 0 && start[n - 1] == ' ')
			n--;
		if (n == 0 || n > 45)
			break;
		if (!proxy_trusted(start, n)) {
			char *ip = req_keep(r, xstrndup(start, n));

			if (!has_ctl(ip))
				r->client_ip = ip;
			break;
		}
		end = start > xff ? start - 1 : xff;
	}
	return r->client_ip;
}

const char *
req_env(const struct request *r, const char *name)
{
	return r->io->env(r->io->ctx, name);
}

/* Returns the value of hex digit c, or -1. */
static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
url_decode(const char *s, size_t n, int plus)
{
	char	*out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n)
				goto bad;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				goto bad;
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (plus && s[i] == '+')
			*o++ = ' ';
		else
			*o++ = s[i];
	}
	*o = '\0';
	if (!utf8_valid(out, (size_t)(o - out)))
		goto bad;
	return out;
bad:
	free(out);
	return NULL;
}

/* Appends the pair (k, v) to the array; takes ownership of both. */
static void
kv_push(struct kv **kv, size_t *n, char *k, char *v)
{
	if ((*n & (*n - 1)) == 0 || *n == 0)
		*kv = xrealloc(*kv, (*n ? *n * 2 : 4) * sizeof(**kv));
	(*kv)[*n].key = k;
	(*kv)[*n].val = v;
	(*n)++;
}

void
req_add_param(struct request *r, char *k, char *v)
{
	kv_push(&r->params, &r->nparams, k, v);
}

void
kv_free(struct kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].val);
	}
	free(kv);
}

int
parse_urlencoded(const char *s, size_t len, struct kv **kv, size_t *n,
    size_t max, const char **why)
{
	const char *end = s + len;

	while (s < end) {
		const char	*amp, *eq;
		char		*k, *v;

		if ((amp = memchr(s, '&', (size_t)(end - s))) == NULL)
			amp = end;
		if (amp == s) {
			s++;
			continue;
		}
		if (*n >= max) {
			*why = "The request has too many fields.";
			return -1;
		}
		if ((eq = memchr(s, '=', (size_t)(amp - s))) == NULL)
			eq = amp;
		k = url_decode(s, (size_t)(eq - s), 1);
		v = eq < amp ? url_decode(eq + 1, (size_t)(amp - eq - 1), 1) :
		    xstrdup("");
		if (k == NULL || v == NULL) {
			free(k);
			free(v);
			*why = "The request holds malformed percent-encoding "
			    "or text that is not valid UTF-8.";
			return -1;
		}
		kv_push(kv, n, k, v);
		s = amp + 1;
	}
	return 0;
}

int
parse_cookies(const char *s, struct kv **kv, size_t *n, const char **why)
{
	if (strlen(s) > HTTP_MAX_COOKIE_HDR) {
		*why = "The request's cookies are too large.";
		return -1;
	}
	while (*s != '\0') {
		const char	*semi, *eq, *ks, *ke;
		char		*k, *v;

		while (*s == ' ' || *s == '\t')
			s++;
		if ((semi = strchr(s, ';')) == NULL)
			semi = s + strlen(s);
		if (semi == s) {
			if (*s == ';')
				s++;
			continue;
		}
		if (*n >= HTTP_MAX_COOKIES) {
			*why = "The request has too many cookies.";
			return -1;
		}
		if ((eq = memchr(s, '=', (size_t)(semi - s))) == NULL)
			eq = semi;
		ks = s;
		ke = eq;
		while (ke > ks && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		k = url_decode(ks, (size_t)(ke - ks), 0);
		v = eq < semi ? url_decode(eq + 1, (size_t)(semi - eq - 1), 0) :
		    xstrdup("");
		if (k == NULL || v == NULL || has_ctl(k) || has_ctl(v)) {
			free(k);
			free(v);
			*why = "A cookie holds malformed percent-encoding or "
			    "text that is not valid UTF-8.";
			return -1;
		}
		kv_push(kv, n, k, v);
		s = *semi == ';' ? semi + 1 : semi;
	}
	return 0;
}

/* Returns the value of the first of the n pairs at kv named name; NULL
 * if none is. */
static const char *
kv_find(const struct kv *kv, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, name) == 0)
			return kv[i].val;
	return NULL;
}

const char *
req_param(const struct request *r, const char *name)
{
	return kv_find(r->params, r->nparams, name);
}

const char *
req_body_param(const struct request *r, const char *name)
{
	if (r->nparams == r->nquery)	/* params may be NULL: no offset */
		return NULL;
	return kv_find(r->params + r->nquery, r->nparams - r->nquery, name);
}

const char *
req_cookie(const struct request *r, const char *name)
{
	return kv_find(r->cookies, r->ncookies, name);
}

/* Reads exactly n body bytes into a new string; NULL on a short read. */
static char *
read_body(struct request *r, size_t n)
{
	char	*body = xmalloc(n + 1);
	size_t	 got = 0;

	while (got < n) {
		long k = r->io->read(r->io->ctx, body + got, n - got);

		if (k <= 0) {
			free(body);
			return NULL;
		}
		got += (size_t)k;
	}
	body[n] = '\0';
	return body;
}

int
req_parse(struct request *r, const char **why)
{
	const char	*q, *cl, *cookie;
	int64_t		 len = 0;
	int		 post = strcmp(r->method, "POST") == 0, multipart;

	r->origin = req_env(r, "HTTP_ORIGIN");
	r->sec_fetch_site = req_env(r, "HTTP_SEC_FETCH_SITE");
	r->content_type = req_env(r, "CONTENT_TYPE");
	multipart = r->files_ok && r->content_type != NULL &&
	    strncasecmp(r->content_type, "multipart/form-data", 19) == 0;

	cl = req_env(r, "CONTENT_LENGTH");
	if (post) {
		if (cl == NULL || *cl == '\0') {
			*why = "The request did not say how long its body is.";
			return 400;
		}
		if (!parse_int64(cl, 0, INT64_MAX, &len)) {
			*why = "The request's Content-Length is not a number.";
			return 400;
		}
		if (len > (multipart ? r->files_max : conf.body_limit)) {
			*why = "The request is larger than this site accepts.";
			return 413;
		}
	} else if (cl != NULL && *cl != '\0' && strcmp(cl, "0") != 0) {
		*why = "This kind of request may not carry a body.";
		return 400;
	}

	if ((q = req_env(r, "QUERY_STRING")) != NULL && *q != '\0') {
		if (strlen(q) > HTTP_MAX_URI) {
			*why = "The address is too long.";
			return 414;
		}
		if (parse_urlencoded(q, strlen(q), &r->params, &r->nparams,
		    HTTP_MAX_FIELDS, why) < 0)
			return 400;
	}
	r->nquery = r->nparams;

	if (post && r->raw_body) {
		if (len > 0 && (r->content_type == NULL ||
		    strncmp(r->content_type, "application/json", 16) != 0)) {
			*why = "This address accepts only JSON.";
			return 415;
		}
		if ((r->body = read_body(r, (size_t)len)) == NULL) {
			*why = "The request's body was shorter than it said.";
			return 400;
		}
		r->body_len = (size_t)len;
	} else if (post && len > 0 && multipart) {
		r->multipart = 1;	/* the gate reads it (upload_read) */
		r->body_len = (size_t)len;
	} else if (post && len > 0) {
		char	*body;
		int	 rc;

		if (r->content_type == NULL || strncmp(r->content_type,
		    "application/x-www-form-urlencoded", 33) != 0) {
			*why = "This site accepts only HTML form posts.";
			return 415;
		}
		if ((body = read_body(r, (size_t)len)) == NULL) {
			*why = "The request's body was shorter than it said.";
			return 400;
		}
		rc = parse_urlencoded(body, (size_t)len, &r->params,
		    &r->nparams, HTTP_MAX_FIELDS, why);
		free(body);
		if (rc < 0)
			return 400;
	}

	if ((cookie = req_env(r, "HTTP_COOKIE")) != NULL &&
	    parse_cookies(cookie, &r->cookies, &r->ncookies, why) < 0)
		return 400;
	return 0;
}

size_t
req_validate(struct request *r, const struct field *f)
{
	size_t nf = 0;

	while (f != NULL && f[nf].name != NULL)
		nf++;
	free(r->fields);
	r->fields = NULL;
	r->nerrors = 0;
	if (nf == 0)
		return 0;
	r->fields = xcalloc(nf, sizeof(*r->fields));
	for (size_t i = 0; i < nf; i++) {
		const char	*v = req_param(r, f[i].name);
		const char	*err = NULL;
		size_t		 n;

		if (v == NULL)
			v = "";
		n = utf8_len(v);
		if (*v == '\0') {
			if ((f[i].flags & F_REQUIRED) &&
			    (f[i].flags & F_CHECKBOX))
				err = req_printf(r, "Please tick \"%s\".",
				    f[i].label);
			else if (f[i].flags & F_REQUIRED)
				err = req_printf(r, "Please fill in %s.",
				    f[i].label);
		} else if ((f[i].flags & F_MULTILINE) ? has_ctl_text(v) :
		    has_ctl(v))
			err = req_printf(r, "%s holds characters that are "
			    "not allowed.", f[i].label);
		else if (!(f[i].flags & F_MULTILINE) && has_invisible(v))
			err = req_printf(r, "%s holds an invisible or "
			    "text-direction character (shown as [U+...]), "
			    "which could make it read as something else. "
			    "Please remove it.", f[i].label);
		else if (f[i].flags & F_CHECKBOX)
			;	/* any value is "on" */
		else if (n > f[i].maxlen)
			err = req_printf(r, "%s is too long: %zu characters, "
			    "at most %zu.", f[i].label, n, f[i].maxlen);
		else if (n < f[i].minlen)
			err = req_printf(r, "%s is too short: %zu characters, "
			    "at least %zu.", f[i].label, n, f[i].minlen);
		else if (f[i].check != NULL)
			err = f[i].check(v);
		if (err != NULL) {
			if (*err >= 'a' && *err <= 'z')
				*(char *)err = (char)(*err - 'a' + 'A');
			r->nerrors++;
		}
		r->fields[i].value = v;
		r->fields[i].error = err;
	}
	return r->nerrors;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void
http_header(struct request *r, const char *name, const char *val)
{
	/* A value with CR or LF would split the header: never write it. */
	if (strpbrk(name, "\r\n:") != NULL || strpbrk(val, "\r\n") != NULL) {
		log_msg("refused a header with a line break: %s", name);
		return;
	}
	buf_puts(&r->headers, name);
	buf_append(&r->headers, ": ", 2);
	buf_puts(&r->headers, val);
	buf_append(&r->headers, "\r\n", 2);
}

void
http_open(struct request *r, int status, const char *ctype)
{
	struct buf	b;
	char		code[INT_TEXT_MAX];

	if (r->opened)
		return;
	r->opened = 1;
	r->status = status;
	buf_init(&b);
	buf_reserve(&b, HEADERS_GUESS + r->headers.len);
	buf_puts(&b, "Status: ");
	buf_puts(&b, int_text(code, status));
	buf_putc(&b, ' ');
	buf_puts(&b, http_reason(status));
	buf_puts(&b, "\r\n");
	if (ctype != NULL) {
		buf_puts(&b, "Content-Type: ");
		buf_puts(&b, ctype);
		buf_puts(&b, "\r\n");
	}
	if (r->download)	/* a file: never a page of the site */
		buf_puts(&b, "Content-Security-Policy: sandbox; "
		    "default-src 'none'");
	else
		buf_puts(&b, "Content-Security-Policy: default-src 'self'; "
		    "object-src 'none'; base-uri 'none'; frame-ancestors "
		    "'none'; form-action 'self'");
	/* Browsers hold a form's redirect to form-action too: a page whose
	 * form leads to another site (Stripe Checkout) names it. */
	if (r->form_action != NULL && *r->form_action != '\0' &&
	    strpbrk(r->form_action, ";,'\r\n") == NULL) {
		buf_putc(&b, ' ');
		buf_puts(&b, r->form_action);
	}
	buf_puts(&b, "\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "Referrer-Policy: no-referrer\r\n"
	    "X-Frame-Options: DENY\r\n");
	/* HSTS only over https, and never for the domain's other sites
	 * unless hsts = include-subdomains asks. */
	if (conf.https && strcmp(conf.hsts, "off") != 0)
		buf_printf(&b, "Strict-Transport-Security: max-age=31536000%s"
		    "\r\n", strcmp(conf.hsts, "include-subdomains") == 0 ?
		    "; includeSubDomains" : "");
	if (r->download && status < 300)
		buf_puts(&b, "Cache-Control: private, no-store\r\n");
	else if (r->nostore || status >= 300)
		buf_puts(&b, "Cache-Control: no-store\r\n");
	else
		buf_puts(&b, "Cache-Control: no-cache\r\n");
	if (r->headers.len > 0)
		buf_append(&b, r->headers.data, r->headers.len);
	buf_puts(&b, "\r\n");
	r->io->write(r->io->ctx, b.data, b.len);
	buf_free(&b);
}

int
http_write(struct request *r, const char *p, size_t n)
{
	if (!r->opened)
		http_open(r, 200, "text/html; charset=utf-8");
	if (r->head || n == 0)
		return 0;
	return r->io->write(r->io->ctx, p, n);
}

int
http_puts(struct request *r, const char *s)
{
	return http_write(r, s, strlen(s));
}

void
http_redirect(struct request *r, const char *path)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s%s", conf.base_url, path);
	http_header(r, "Location", b.data);
	http_open(r, 303, "text/plain; charset=utf-8");
	http_puts(r, "See Other: ");
	http_puts(r, b.data);
	http_puts(r, "\n");
	buf_free(&b);
}
