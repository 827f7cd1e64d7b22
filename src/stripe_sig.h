/* stripe_sig.h: verifying the Stripe-Signature header of a webhook
 * (https://docs.stripe.com/webhooks#verify-manually): "t=TIME,v1=HEX"
 * with HMAC-SHA256 of "TIME.BODY" keyed with the whole whsec_ secret. */
#ifndef PMB_STRIPE_SIG_H
#define PMB_STRIPE_SIG_H

#include <stddef.h>
#include <stdint.h>

#define STRIPE_SIG_TOLERANCE	300	/* seconds between t and now */
#define STRIPE_SIG_HEADER_MAX	4096	/* bytes of a header looked at */
#define STRIPE_SIG_V1_MAX	8	/* v1 signatures kept of one header */
#define STRIPE_SIG_SECRETS	2	/* secrets tried: the old and the new */
#define STRIPE_SIG_BYTES	32	/* an HMAC-SHA256 */
#define STRIPE_SIG_T_MAX	20	/* digits of t */

/* A parsed header. */
struct stripe_sig {
	char		 t[STRIPE_SIG_T_MAX + 1]; /* as sent: it is signed */
	int64_t		 when;			/* t in Unix seconds */
	unsigned char	 v1[STRIPE_SIG_V1_MAX][STRIPE_SIG_BYTES];
	size_t		 nv1;
};

/* Parses a Stripe-Signature header: comma-separated key=value items;
 * exactly one t (1 to 20 decimal digits), any number of v1 (each 64 hex
 * digits; others are no signature and are passed over; the first
 * STRIPE_SIG_V1_MAX kept), v0 and unknown keys ignored. Returns 1 with
 * *sig filled when there is a t and at least one v1, else 0. */
int	 stripe_sig_parse(const char *header, struct stripe_sig *sig);

enum stripe_sig_result {
	STRIPE_SIG_OK,
	STRIPE_SIG_MALFORMED,	/* no header, or not what Stripe sends */
	STRIPE_SIG_TOO_OLD,	/* t more than the tolerance from now */
	STRIPE_SIG_NO_MATCH,	/* no v1 made with any of the secrets */
};

/* Verifies header for body (len bytes) against the secrets (comma-
 * separated, spaces around each ignored, the first STRIPE_SIG_SECRETS
 * used; "" matches nothing) at time now. Every v1 is compared with every
 * secret's signature in constant time (sodium_memcmp). */
enum stripe_sig_result stripe_sig_verify(const char *header,
	    const char *body, size_t len, const char *secrets, int64_t now);

/* Writes the v1 signature of body at time t (decimal text) with secret
 * into out (65 bytes: 64 hex digits and a NUL): what Stripe sends. For
 * tests. */
void	 stripe_sig_sign(char out[2 * STRIPE_SIG_BYTES + 1], const char *t,
	    const char *body, size_t len, const char *secret, size_t slen);

/* A word for each result, for the log: "malformed header"... */
const char *stripe_sig_text(enum stripe_sig_result);

#endif
