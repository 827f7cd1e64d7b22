/* auth.c: CSRF in layers, as Fossil does it: POST only, same-origin
 * headers, and a token in every form. The token is a MAC of a random
 * per-browser cookie, so a page of another site can neither read nor
 * forge it. */
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "rate.h"
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

	return n >= 16 && n <= 64 && ascii_word(v, n, "-_");
}

const char *
csrf_token(struct request *r)
{
	const char	*c = req_cookie(r, csrf_cookie_name());
	char		 tag[64], val[64], age[INT_TEXT_MAX];

	if (r->session != NULL)
		return r->session->csrf;
	if (r->csrf != NULL)
		return r->csrf;
	if (c == NULL || !csrf_cookie_valid(c)) {
		unsigned char	rnd[CSRF_COOKIE_BYTES];

		randombytes_buf(rnd, sizeof(rnd));
		sodium_bin2base64(val, sizeof(val), rnd, sizeof(rnd),
		    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		c = val;
		http_header(r, "Set-Cookie", req_cat(r, csrf_cookie_name(), "=",
		    c, "; Path=/; Max-Age=", int_text(age, CSRF_COOKIE_AGE),
		    "; HttpOnly; SameSite=Lax", conf.https ? "; Secure" : "",
		    (char *)NULL));
	}
	mac_text(tag, sizeof(tag), "csrf", c);
	r->csrf = req_strdup(r, tag);
	return r->csrf;
}

int
csrf_check(struct request *r)
{
	const char *c = req_cookie(r, csrf_cookie_name());
	const char *tok = req_body_param(r, CSRF_FIELD);
	const char *o = r->origin, *sfs = r->sec_fetch_site;

	/*
	 * Our pages say "Referrer-Policy: no-referrer", under which browsers
	 * send "Origin: null" with a form POST even to their own origin: so
	 * "null" proves nothing, and Sec-Fetch-Site and the token decide.
	 */
	if (o != NULL && *o != '\0' && strcmp(o, "null") != 0 &&
	    strcmp(o, site_origin()) != 0)
		return 0;
	if (sfs != NULL && strcmp(sfs, "same-origin") != 0 &&
	    strcmp(sfs, "none") != 0)
		return 0;
	if (tok == NULL)
		return 0;
	if (r->session != NULL)
		return strlen(tok) == strlen(r->session->csrf) &&
		    sodium_memcmp(tok, r->session->csrf, strlen(tok)) == 0;
	if (c == NULL || !csrf_cookie_valid(c))
		return 0;
	return mac_text_verify(tok, "csrf", c);
}

#define SID_BYTES	32
#define TOUCH_EVERY	60	/* seconds between last_seen_at writes */

/* Returns the name of the session cookie (__Host- prefixed on https). */
static const char *
session_cookie_name(void)
{
	return conf.https ? "__Host-pmb_session" : "pmb_session";
}

/* Hashes a session id for storage: a copied database hands out no
 * sessions. */
static void
sid_hash(unsigned char out[32], const unsigned char sid[SID_BYTES])
{
	crypto_generichash(out, 32, sid, SID_BYTES, NULL, 0);
}

int
session_load(struct request *r)
{
	const char	*c = req_cookie(r, session_cookie_name());
	unsigned char	 sid[SID_BYTES], h[32];
	sqlite3_stmt	*s;
	struct session	*se;
	int64_t		 now = now_unix(), created, seen;
	int		 rc;

	r->session = NULL;
	if (c == NULL || !unsign_bytes(c, sid, sizeof(sid)))
		return 0;
	sid_hash(h, sid);
	sodium_memzero(sid, sizeof(sid));
	if ((s = db_stmt(ST_SESSION_BY_HASH)) == NULL ||
	    !db_bind(s, "b", h, (int)sizeof(h)))
		return -1;
	rc = db_step(ST_SESSION_BY_HASH);
	if (rc != DB_ROW) {
		db_done(ST_SESSION_BY_HASH);
		return rc == DB_DONE ? 0 : -1;
	}
	created = sqlite3_column_int64(s, 4);
	seen = sqlite3_column_int64(s, 5);
	if (now - seen > conf.session_idle_minutes * 60 ||
	    now - created > conf.session_max_hours * 3600) {
		int64_t id = sqlite3_column_int64(s, 0);

		db_done(ST_SESSION_BY_HASH);
		db_run(ST_SESSION_DELETE, "i", id);
		return 0;
	}
	se = req_keep(r, xcalloc(1, sizeof(*se)));
	se->id = sqlite3_column_int64(s, 0);
	se->user_id = sqlite3_column_int64(s, 1);
	se->username = req_strdup(r, db_text(s, 2));
	se->csrf = req_strdup(r, db_text(s, 3));
	db_done(ST_SESSION_BY_HASH);
	if (now - seen >= TOUCH_EVERY &&
	    db_run(ST_SESSION_TOUCH, "ii", now, se->id) != DB_DONE)
		log_msg("auth: could not touch a session");
	r->session = se;
	return 1;
}

/* Returns a hash of a random password, to verify unknown users against
 * so that they take as long as known ones; NULL if hashing failed. */
static const char *
dummy_hash(void)
{
	static char	h[crypto_pwhash_STRBYTES];
	unsigned char	pw[16];

	if (h[0] != '\0')
		return h;
	randombytes_buf(pw, sizeof(pw));
	if (crypto_pwhash_str(h, (const char *)pw, sizeof(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		h[0] = '\0';
		return NULL;
	}
	return h;
}

/* Makes a new session for user id, writing its cookie value into cookie;
 * call inside a transaction, and send the cookie only once it commits.
 * Returns 1 or 0. */
static int
session_new(struct request *r, int64_t user_id, char cookie[128])
{
	unsigned char	sid[SID_BYTES], h[32], csrf[24];
	char		csrf_txt[64];
	int64_t		now = now_unix();
	int		rc;

	randombytes_buf(sid, sizeof(sid));
	randombytes_buf(csrf, sizeof(csrf));
	sid_hash(h, sid);
	sign_bytes(cookie, 128, sid, sizeof(sid));
	sodium_memzero(sid, sizeof(sid));
	sodium_bin2base64(csrf_txt, sizeof(csrf_txt), csrf, sizeof(csrf),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	rc = db_run(ST_SESSION_INSERT, "bitiit", h, (int)sizeof(h), user_id,
	    csrf_txt, now, now, req_client_ip(r));
	return rc == DB_DONE && cookie[0] != '\0';
}

/* Records a failed sign-in for the (address, username) pair and the
 * address; returns 1 or 0. */
static int
login_failed(const char *kuser, const char *kip)
{
	if (!db_begin())
		return 0;
	if (!rate_note(kuser, LOGIN_MAX_IP_USER_FAILS, LOGIN_WINDOW) ||
	    !rate_note(kip, LOGIN_MAX_IP_FAILS, LOGIN_WINDOW)) {
		db_rollback();
		return 0;
	}
	return db_commit();
}

enum auth_result
auth_login(struct request *r, const char *user, const char *pass,
    int64_t *retry)
{
	sqlite3_stmt	*s;
	const char	*hash;
	char		*kuser, *kip, *stored = NULL, cookie[128];
	int64_t		 uid = 0, now = now_unix();
	int		 rc, ok, disabled = 1;

	/* An address holds no '/': the pair's key is unambiguous. */
	kuser = req_printf(r, "login-ip-user:%s/%s", req_client_ip(r), user);
	kip = req_printf(r, "login-ip:%s", req_client_ip(r));
	if ((rc = rate_allow(kuser, LOGIN_MAX_IP_USER_FAILS, LOGIN_WINDOW,
	    retry)) == 1)
		rc = rate_allow(kip, LOGIN_MAX_IP_FAILS, LOGIN_WINDOW, retry);
	if (rc != 1)
		return rc == 0 ? AUTH_LIMITED : AUTH_ERROR;

	if ((s = db_stmt(ST_USER_BY_NAME)) == NULL || !db_bind(s, "t", user))
		return AUTH_ERROR;
	rc = db_step(ST_USER_BY_NAME);
	if (rc == DB_ROW) {
		uid = sqlite3_column_int64(s, 0);
		stored = req_strdup(r, db_text(s, 1));
		disabled = sqlite3_column_int(s, 2);
	}
	db_done(ST_USER_BY_NAME);
	if (rc == DB_ERROR)
		return AUTH_ERROR;

	/* Unknown and disabled users verify against a dummy hash, so the
	 * answer takes as long. A failed hash (out of memory) denies. */
	hash = uid > 0 && !disabled ? stored : dummy_hash();
	ok = hash != NULL && crypto_pwhash_str_verify(hash, pass,
	    strlen(pass)) == 0 && uid > 0 && !disabled;
	if (!ok) {
		if (!login_failed(kuser, kip))
			return AUTH_ERROR;
		audit_log(r, 0, "sign-in failed", 0, "");
		return AUTH_DENIED;
	}

	if (!db_begin())
		return AUTH_ERROR;
	if (crypto_pwhash_str_needs_rehash(stored,
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		char fresh[crypto_pwhash_STRBYTES];

		if (crypto_pwhash_str(fresh, pass, strlen(pass),
		    crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0 &&
		    db_run(ST_USER_SET_HASH, "ti", fresh, uid) != DB_DONE)
			goto fail;
	}
	if (db_run(ST_SESSION_PRUNE, "ii", now - conf.session_idle_minutes *
	    60, now - conf.session_max_hours * 3600) != DB_DONE ||
	    db_run(ST_USER_SET_LOGIN, "ii", now, uid) != DB_DONE ||
	    !session_new(r, uid, cookie) ||
	    !audit_log(r, uid, "sign-in", 0, ""))
		goto fail;
	if (!db_commit()) {
		sodium_memzero(cookie, sizeof(cookie));
		return AUTH_ERROR;
	}
	http_header(r, "Set-Cookie", req_printf(r, "%s=%s; Path=/; "
	    "HttpOnly; SameSite=Strict%s", session_cookie_name(), cookie,
	    conf.https ? "; Secure" : ""));
	sodium_memzero(cookie, sizeof(cookie));
	return AUTH_OK;
fail:
	sodium_memzero(cookie, sizeof(cookie));
	db_rollback();
	return AUTH_ERROR;
}

int
auth_logout(struct request *r)
{
	if (r->session != NULL) {
		if (!db_begin())
			return 0;
		if (db_run(ST_SESSION_DELETE, "i", r->session->id) !=
		    DB_DONE || !audit_log(r, r->session->user_id, "sign-out",
		    0, "")) {
			db_rollback();
			return 0;
		}
		if (!db_commit())
			return 0;
	}
	/* Only once the session is gone: a failure keeps both. */
	http_header(r, "Set-Cookie", req_printf(r, "%s=; Path=/; Max-Age=0; "
	    "HttpOnly; SameSite=Strict%s", session_cookie_name(),
	    conf.https ? "; Secure" : ""));
	return 1;
}
