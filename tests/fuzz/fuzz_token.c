/* fuzz_token: signed tokens and cookies (token_parse, token_verify,
 * token_check, unsign_bytes, mac_text_verify). Nothing but what the key
 * signed may verify: a random input must never be TOKEN_OK; and a token
 * made here, with one byte of the input XORed into it, verifies only
 * when the byte changed nothing. */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "token.h"
#include "util.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char k[32];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	memset(k, 0x42, sizeof(k));
	token_key_set(1, k);
	memset(k, 0x17, sizeof(k));
	token_key_set(7, k);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	p;
	struct token	t;
	unsigned char	out[256];
	char		made[TOKEN_TEXT_LEN + 1], flipped[TOKEN_TEXT_LEN + 1];

	parts_split(&p, data, size);
	/* An arbitrary string as a token, with an arbitrary state. */
	for (unsigned purpose = 0; purpose <= 6; purpose++) {
		enum token_result r = token_check(p.s[0], purpose,
		    p.n > 1 ? p.s[1] : NULL, &t);

		FUZZ_CHECK(r != TOKEN_OK || strlen(p.s[0]) == TOKEN_TEXT_LEN,
		    "only a full-length token can verify");
	}
	if (token_parse(p.s[0], &t))
		(void)token_verify(&t, t.purpose, p.s[1]);
	for (size_t n = 0; n <= 64; n += 8)
		(void)unsign_bytes(p.s[0], out, n);
	(void)unsign_bytes(p.s[0], out, 300);	/* over the limit */
	(void)mac_text_verify(p.s[0], "csrf", p.s[1]);

	/* A real token, one byte of its text changed by the input. */
	if (size >= 2) {
		size_t	at = data[0] % TOKEN_TEXT_LEN;
		char	c = (char)data[1];

		FUZZ_CHECK(token_make(made, TOK_REFUND, 1234, 0, p.s[1]),
		    "token_make");
		FUZZ_CHECK(token_check(made, TOK_REFUND, p.s[1], &t) ==
		    TOKEN_OK, "a fresh token verifies");
		FUZZ_CHECK(token_check(made, TOK_TRACK, p.s[1], &t) ==
		    TOKEN_BAD, "not for another purpose");
		memcpy(flipped, made, sizeof(made));
		flipped[at] = c;
		if (token_check(flipped, TOK_REFUND, p.s[1], &t) == TOKEN_OK) {
			/* Base64 has slack only in the last character's
			 * low bits: the decoded bytes must be the same. */
			struct token t0;

			FUZZ_CHECK(token_parse(made, &t0), "reparse");
			FUZZ_CHECK(t.rawlen == t0.rawlen &&
			    memcmp(t.raw, t0.raw, t.rawlen) == 0,
			    "a changed token verified");
		}
		if (p.n > 2 && strcmp(p.s[1], p.s[2]) != 0)
			FUZZ_CHECK(token_check(made, TOK_REFUND, p.s[2], &t) ==
			    TOKEN_BAD, "another state kills the token");
	}
	parts_free(&p);
	return 0;
}
