/* stripe_sig.c: the Stripe-Signature header of a webhook, parsed and
 * checked. One concern, no I/O: fuzzed by tests/fuzz/fuzz_stripe_sig.c. */
#include <string.h>

#include <sodium.h>

#include "stripe_sig.h"
#include "util.h"

#define SECRET_MAX	512	/* bytes of one secret (the setting's cap) */

/* Parses the n bytes at s as 64 hex digits into out; returns 1, or 0. */
static int
hex_sig(const char *s, size_t n, unsigned char out[STRIPE_SIG_BYTES])
{
	size_t bin = 0;

	if (n != 2 * STRIPE_SIG_BYTES)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return sodium_hex2bin(out, STRIPE_SIG_BYTES, s, n, NULL, &bin,
	    NULL) == 0 && bin == STRIPE_SIG_BYTES;
}

/* Takes item k=v (klen and vlen bytes) into sig; *has_t notes a t.
 * Returns 0 when the item makes the header malformed (a second t, or a
 * t that is not a number). */
static int
sig_item(struct stripe_sig *sig, const char *k, size_t klen, const char *v,
    size_t vlen, int *has_t)
{
	if (klen == 1 && k[0] == 't') {
		if (*has_t || vlen == 0 || vlen > STRIPE_SIG_T_MAX ||
		    strspn(v, "0123456789") < vlen)
			return 0;
		memcpy(sig->t, v, vlen);
		sig->t[vlen] = '\0';
		if (!parse_int64(sig->t, 0, INT64_MAX, &sig->when))
			return 0;
		*has_t = 1;
	} else if (klen == 2 && k[0] == 'v' && k[1] == '1' &&
	    sig->nv1 < STRIPE_SIG_V1_MAX && hex_sig(v, vlen,
	    sig->v1[sig->nv1]))
		sig->nv1++;
	/* v0 (a test-mode legacy scheme) and unknown keys: ignored. */
	return 1;
}

int
stripe_sig_parse(const char *header, struct stripe_sig *sig)
{
	const char	*p = header;
	int		 has_t = 0;

	memset(sig, 0, sizeof(*sig));
	if (header == NULL || strlen(header) > STRIPE_SIG_HEADER_MAX)
		return 0;
	while (*p != '\0') {
		size_t		 n = strcspn(p, ","), klen;
		const char	*eq = memchr(p, '=', n), *k = p, *v;

		if (eq != NULL) {
			klen = (size_t)(eq - p);
			v = eq + 1;
			/* Spaces around an item, as after ", ". */
			while (klen > 0 && *k == ' ')
				k++, klen--;
			if (!sig_item(sig, k, klen, v, (size_t)(p + n - v),
			    &has_t))
				return 0;
		}
		p += n + (p[n] == ',');
	}
	return has_t && sig->nv1 > 0;
}

void
stripe_sig_sign(char out[2 * STRIPE_SIG_BYTES + 1], const char *t,
    const char *body, size_t len, const char *secret, size_t slen)
{
	crypto_auth_hmacsha256_state	st;
	unsigned char			mac[STRIPE_SIG_BYTES];

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, slen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t,
	    strlen(t));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_bin2hex(out, 2 * STRIPE_SIG_BYTES + 1, mac, sizeof(mac));
	sodium_memzero(&st, sizeof(st));
}

/* Returns 1 if any v1 of sig is the signature of body made with the n
 * bytes of secret at s. Compares every v1, whatever matched before. */
static int
sig_match(const struct stripe_sig *sig, const char *body, size_t len,
    const char *s, size_t n)
{
	crypto_auth_hmacsha256_state	st;
	unsigned char			mac[STRIPE_SIG_BYTES];
	int				found = 0;

	crypto_auth_hmacsha256_init(&st, (const unsigned char *)s, n);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)sig->t,
	    strlen(sig->t));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, mac);
	for (size_t i = 0; i < sig->nv1; i++)
		found |= sodium_memcmp(mac, sig->v1[i], sizeof(mac)) == 0;
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(mac, sizeof(mac));
	return found;
}

enum stripe_sig_result
stripe_sig_verify(const char *header, const char *body, size_t len,
    const char *secrets, int64_t now)
{
	struct stripe_sig	 sig;
	const char		*p = secrets != NULL ? secrets : "";
	int			 found = 0, tried = 0;

	if (!stripe_sig_parse(header, &sig))
		return STRIPE_SIG_MALFORMED;
	if (sig.when > now + STRIPE_SIG_TOLERANCE ||
	    sig.when < now - STRIPE_SIG_TOLERANCE)
		return STRIPE_SIG_TOO_OLD;
	while (*p != '\0' && tried < STRIPE_SIG_SECRETS) {
		size_t		 n = strcspn(p, ",");
		const char	*s = p;
		size_t		 k = n;

		while (k > 0 && *s == ' ')
			s++, k--;
		while (k > 0 && s[k - 1] == ' ')
			k--;
		if (k > 0 && k <= SECRET_MAX) {
			found |= sig_match(&sig, body, len, s, k);
			tried++;
		}
		p += n + (p[n] == ',');
	}
	return found ? STRIPE_SIG_OK : STRIPE_SIG_NO_MATCH;
}

const char *
stripe_sig_text(enum stripe_sig_result r)
{
	switch (r) {
	case STRIPE_SIG_OK:		return "valid";
	case STRIPE_SIG_MALFORMED:	return "missing or malformed header";
	case STRIPE_SIG_TOO_OLD:	return "timestamp out of tolerance";
	default:			return "no matching signature";
	}
}
