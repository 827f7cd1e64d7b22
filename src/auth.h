/* auth.h: CSRF protection for every form (and, for staff, sign-in and
 * sessions). */
#ifndef PMB_AUTH_H
#define PMB_AUTH_H

#include <stdint.h>

#include "http.h"

#define CSRF_FIELD	"csrf_token"	/* the hidden field of every form */
/* The CSRF field's entry in a POST route's field table. */
#define CSRF_FIELD_ENTRY { CSRF_FIELD, "the security token", 0, 200, 0, NULL }

/* Returns the CSRF token for this browser's forms, setting the CSRF
 * cookie on the response when the browser has none yet. */
const char *csrf_token(struct request *);
/* Checks a POST: same-origin Origin/Sec-Fetch-Site headers and a valid
 * token in the csrf_token field of the body (never of the query string,
 * which ends up in logs and Referer headers). Returns 1 if it passes. */
int	 csrf_check(struct request *);
/* Returns the origin (scheme://host[:port]) of base_url, for checks. */
const char *site_origin(void);

/* A signed-in staff member. */
struct session {
	int64_t	 id;		/* sessions.id */
	int64_t	 user_id;
	char	*username;
	char	*csrf;		/* the forms' token of this session */
};

/* Loads the session of the request's cookie into r->session. Returns 1
 * if signed in, 0 if not (no, bad, expired cookie), -1 on a database
 * error. */
int	 session_load(struct request *);
/* Checks username and password (Argon2id), with brute-force limits per
 * client address and per (address, username), and the same answer and
 * about the same time for unknown users. On success makes a new session
 * and sets its cookie. Returns AUTH_OK, AUTH_DENIED, AUTH_LIMITED (*retry
 * set) or AUTH_ERROR. */
enum auth_result { AUTH_OK, AUTH_DENIED, AUTH_LIMITED, AUTH_ERROR };
enum auth_result auth_login(struct request *, const char *user,
	    const char *pass, int64_t *retry);
/* Deletes the request's session server-side and, once that committed,
 * clears the cookie. Returns 1, or 0 on a database error (the session
 * and the cookie stay). */
int	 auth_logout(struct request *);

/* Brute-force limits of sign-in: failures within LOGIN_WINDOW seconds
 * from one client address, for one username and for all. Failures from
 * other addresses never count, so nobody can lock a username out. */
#define LOGIN_MAX_IP_USER_FAILS	5
#define LOGIN_MAX_IP_FAILS	20
#define LOGIN_WINDOW		(15 * 60)

#endif
