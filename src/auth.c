/* auth.c: CSRF in layers, as Fossil does it: POST only, same-origin
 * headers, and a token in every form. The token is a MAC of a random
 * per-browser cookie, so a page of another site can neither read nor
 * forge it. */
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "conf.h"
#include "token.h"

#define CSRF_COOKIE_BYTES	24
#define CSRF_COOKIE_AGE		(7 * 24 * 3600)

/* Returns the name of the CSRF cookie (__Host- prefixed on https). */
static const char *
csrf_cookie_name(void)
{
	return conf.https ? "__Host-pmb_csrf" : "pmb_csrf";
}

const char *
site_origin(void)
{
	static char	origin[520];
	const char	*p;
	size_t		 n;

	if (origin[0] != '\0')
		return origin;
	p = strstr(conf.base_url, "://");
	p = p != NULL ? p + 3 : conf.base_url;
	n = (size_t)(p - conf.base_url) + strcspn(p, "/");
	if (n >= sizeof(origin))
		n = sizeof(origin) - 1;
	memcpy(origin, conf.base_url, n);
	origin[n] = '\0';
	return origin;
}

/* Returns 1 if cookie value v has the shape of our CSRF cookie. */
static int
csrf_cookie_valid(const char *v)
{
	size_t n = strlen(v);

	if (n < 16 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' &&
		    v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
		    v[i] == '-' || v[i] == '_'))
			return 0;
	return 1;
}

const char *
csrf_token(struct request *r)
{
	const char	*c = req_cookie(r, csrf_cookie_name());
	char		 tag[64];

	if (r->csrf != NULL)
		return r->csrf;
	if (c == NULL || !csrf_cookie_valid(c)) {
		unsigned char	rnd[CSRF_COOKIE_BYTES];
		char		val[64];

		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2base64(val, sizeof(val), rnd, sizeof(rnd),
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		c = req_strdup(r, val);
		http_header(r, "Set-Cookie", req_printf(r, "%s=%s; Path=/; "
		    "Max-Age=%d; HttpOnly; SameSite=Lax%s", csrf_cookie_name(),
		    c, CSRF_COOKIE_AGE, conf.https ? "; Secure" : ""));
	}
	mac_text(tag, sizeof(tag), "csrf", c);
	r->csrf = req_strdup(r, tag);
	return r->csrf;
}

int
csrf_check(struct request *r)
{
	const char *c = req_cookie(r, csrf_cookie_name());
	const char *tok = req_param(r, CSRF_FIELD);
	const char *o = r->origin, *sfs = r->sec_fetch_site;

	if (o != NULL && *o != '\0' && strcmp(o, site_origin()) != 0)
		return 0;
	if (sfs != NULL && strcmp(sfs, "same-origin") != 0 &&
	    strcmp(sfs, "none") != 0)
		return 0;
	if (c == NULL || tok == NULL || !csrf_cookie_valid(c))
		return 0;
	return mac_text_verify(tok, "csrf", c);
}
