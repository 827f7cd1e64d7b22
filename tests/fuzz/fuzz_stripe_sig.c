/* fuzz_stripe_sig: the Stripe-Signature header parser and verifier
 * (stripe_sig_parse, stripe_sig_verify). Parts: the header, the body,
 * the secrets. What the parser accepts has a t of digits only and
 * between 1 and STRIPE_SIG_V1_MAX signatures; the verifier never says
 * valid for a header the parser refuses, nor for random input. */
#include <stdint.h>
#include <string.h>

#include "stripe_sig.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts		 p;
	struct stripe_sig	 sig;
	enum stripe_sig_result	 v;
	int			 parsed;

	parts_split(&p, data, size);
	parsed = stripe_sig_parse(p.s[0], &sig);
	if (parsed) {
		FUZZ_CHECK(sig.nv1 >= 1 && sig.nv1 <= STRIPE_SIG_V1_MAX,
		    "1 to STRIPE_SIG_V1_MAX signatures");
		FUZZ_CHECK(sig.t[0] != '\0' && strspn(sig.t, "0123456789") ==
		    strlen(sig.t), "t is digits");
	}
	v = stripe_sig_verify(p.s[0], p.s[1], p.len[1], p.s[2], sig.when);
	if (!parsed)
		FUZZ_CHECK(v == STRIPE_SIG_MALFORMED, "refused header: malformed");
	else
		FUZZ_CHECK(v != STRIPE_SIG_MALFORMED &&
		    v != STRIPE_SIG_TOO_OLD, "parsed header at its own time");
	FUZZ_CHECK(stripe_sig_text(v) != NULL, "a word for each result");
	parts_free(&p);
	return 0;
}
