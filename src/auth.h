/* auth.h: CSRF protection for every form (and, for staff, sign-in and
 * sessions). */
#ifndef PMB_AUTH_H
#define PMB_AUTH_H

#include "http.h"

#define CSRF_FIELD	"csrf_token"	/* the hidden field of every form */

/* Returns the CSRF token for this browser's forms, setting the CSRF
 * cookie on the response when the browser has none yet. */
const char *csrf_token(struct request *);
/* Checks a POST: same-origin Origin/Sec-Fetch-Site headers and a valid
 * token in the csrf_token field. Returns 1 if it passes. */
int	 csrf_check(struct request *);
/* Returns the origin (scheme://host[:port]) of base_url, for checks. */
const char *site_origin(void);

#endif
