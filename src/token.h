/* token.h: signed, URL-safe tokens with a purpose, a subject id, times
 * and a key id, MAC'd with crypto_auth (HMAC-SHA-512-256).
 *
 * The MAC may also cover a "state" string that is not in the token (such
 * as an order's refund state), so that a change of state kills the link. */
#ifndef PMB_TOKEN_H
#define PMB_TOKEN_H

#include <stddef.h>
#include <stdint.h>

enum token_purpose {
	TOK_TRACK = 1,		/* /o/TOKEN: an order's status page */
	TOK_REFUND = 2,		/* /r/TOKEN: the refund page */
	TOK_FORM = 3,		/* the one-time token of a form */
	TOK_CSRF = 4,		/* a public form's CSRF token */
	TOK_SESSION = 5,	/* a staff session cookie */
};

enum token_result { TOKEN_OK = 0, TOKEN_BAD = 1, TOKEN_EXPIRED = 2 };

struct token {
	unsigned	 key_id;
	unsigned	 purpose;
	int64_t		 id;		/* subject: an order id, a nonce */
	int64_t		 issued;	/* Unix seconds */
	int64_t		 expires;	/* Unix seconds; 0: never */
	unsigned char	 raw[64];	/* the decoded token */
	size_t		 rawlen;
};

/* Length of a token's text form. */
#define TOKEN_TEXT_LEN	68

/* The most keys a key file holds. */
#define TOKEN_KEYS_MAX	8

/* Loads the key file: lines "ID:BASE64KEY" (ID 1 to 255), the first
 * line signs, every line verifies; lines starting with "#" and empty
 * lines are comments. Returns 1, or 0 with a message. The one parser of
 * the format. */
int	 token_keys_load(const char *path, char *err, size_t errsz);
/* Writes the ids of the loaded keys, the signing one first, into ids;
 * returns how many. */
size_t	 token_key_ids(unsigned ids[TOKEN_KEYS_MAX]);
/* Makes a new random key, with an id one more than the highest loaded,
 * and puts it first, so it signs. Returns its id, or 0 when no more fit
 * (TOKEN_KEYS_MAX keys, or id 255 taken). */
unsigned token_key_add(void);
/* Drops the loaded key with id; returns 1, or 0 if there is none. */
int	 token_key_remove(unsigned id);
/* Writes the loaded keys, in order and with the comments the file had,
 * as the key file at path, mode 0600: through path.new, renamed over
 * path, or with create set linked to path, never replacing a file. An
 * interrupted save leaves the old file whole. Returns 1, or 0 with a
 * message in err. */
int	 token_keys_save(const char *path, int create, char *err,
	    size_t errsz);
/* Installs one key directly (tests and fuzzing). */
void	 token_key_set(unsigned id, const unsigned char key[32]);
void	 token_keys_clear(void);

/* Makes a token; writes TOKEN_TEXT_LEN chars and a NUL into out. Returns
 * 1, or 0 if no key is loaded. */
int	 token_make(char out[TOKEN_TEXT_LEN + 1], unsigned purpose,
	    int64_t id, int64_t expires, const char *state);
/* Decodes a token's text without checking its MAC; returns 1 if it is
 * well-formed with a known key id, else 0. */
int	 token_parse(const char *s, struct token *);
/* Checks the MAC (with state, may be NULL), the purpose and the expiry.
 * TOKEN_EXPIRED is only returned for a token whose MAC is good. */
enum token_result token_verify(const struct token *, unsigned purpose,
	    const char *state);
/* token_parse + token_verify with no state. */
enum token_result token_check(const char *s, unsigned purpose,
	    const char *state, struct token *);

/* The most bytes sign_bytes takes. */
#define SIGN_BYTES_MAX	256
/* MACs and encodes at most SIGN_BYTES_MAX bytes (session cookies):
 * writes base64url of key id||data||tag into out (at least
 * sodium_base64_ENCODED_LEN), or "" for more. */
void	 sign_bytes(char *out, size_t outsz, const unsigned char *data,
	    size_t n);
/* Verifies and decodes what sign_bytes made into data (n bytes).
 * Returns 1, or 0 for anything not made by us. */
int	 unsign_bytes(const char *s, unsigned char *data, size_t n);

/* Writes base64url(HMAC(signing key, label ":" data)) into out (at least
 * 64 bytes): a MAC of text, such as a CSRF token bound to a cookie. */
void	 mac_text(char *out, size_t outsz, const char *label, const char *data);
/* Returns 1 if tag is mac_text(label, data) under any loaded key. */
int	 mac_text_verify(const char *tag, const char *label, const char *data);
/* Writes the first n (at most 32) bytes of HMAC(key, label ":" data)
 * into out, with the loaded key key_id (0: the signing key): a short
 * MAC for the addresses of mail (mail_token.c). Returns the key's id, or
 * 0 when there is no such key. */
unsigned token_short_mac(unsigned char *out, size_t n, unsigned key_id,
	    const char *label, const char *data);

#endif
