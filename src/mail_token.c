/* mail_token.c: signed reply tokens, Message-IDs and VERP addresses
 * (see mail_token.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "mail_token.h"
#include "token.h"

#define MAC_BYTES	10	/* 80 bits of MAC */
#define ID_BYTES	5	/* an order id in a reply token */
#define REPLY_BYTES	(1 + ID_BYTES + MAC_BYTES)
#define SIG_BYTES	(1 + MAC_BYTES)
#define ID_DIGITS_MAX	18

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Writes n bytes of in as unpadded base32 into out (NUL-terminated). */
static void
b32_encode(char *out, const unsigned char *in, size_t n)
{
	unsigned	bits = 0, acc = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			*out++ = b32[(acc >> bits) & 31];
		}
	}
	if (bits > 0)
		*out++ = b32[(acc << (5 - bits)) & 31];
	*out = '\0';
}

/* Decodes exactly len characters of s (any case) into n bytes at out.
 * Returns 1, or 0 unless s is the canonical encoding of n bytes. */
static int
b32_decode(unsigned char *out, size_t n, const char *s, size_t len)
{
	unsigned	bits = 0, acc = 0;
	size_t		o = 0;

	if (len != (n * 8 + 4) / 5)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char		 c = s[i];
		const char	*p;

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '\0' || (p = strchr(b32, c)) == NULL)
			return 0;
		acc = (acc << 5) | (unsigned)(p - b32);
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
		acc &= (1u << bits) - 1;
	}
	return o == n && acc == 0;	/* no stray bits at the end */
}

/* Writes the MAC of purpose and id with key key_id (0: the signing key)
 * into mac; returns the key's id, or 0. */
static unsigned
id_mac(unsigned char mac[MAC_BYTES], unsigned key_id, const char *purpose,
    int64_t id)
{
	char	num[24];

	snprintf(num, sizeof(num), "%lld", (long long)id);
	return token_short_mac(mac, MAC_BYTES, key_id, purpose, num);
}

/* Returns 1 if mac is the MAC of purpose and id under key_id. */
static int
id_mac_ok(const unsigned char mac[MAC_BYTES], unsigned key_id,
    const char *purpose, int64_t id)
{
	unsigned char	want[MAC_BYTES];
	int		ok;

	if (key_id == 0 || id_mac(want, key_id, purpose, id) == 0)
		return 0;
	ok = sodium_memcmp(want, mac, MAC_BYTES) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

int
mail_reply_token(char out[MAIL_REPLY_TOKEN_LEN + 1], int64_t order_id)
{
	unsigned char	raw[REPLY_BYTES];
	unsigned	kid;

	*out = '\0';
	if (order_id < 1 || order_id > MAIL_REPLY_ID_MAX ||
	    (kid = id_mac(raw + 1 + ID_BYTES, 0, "reply", order_id)) == 0)
		return 0;
	raw[0] = (unsigned char)kid;
	for (int i = 0; i < ID_BYTES; i++)
		raw[1 + i] = (unsigned char)(order_id >> (8 * (ID_BYTES - 1 - i)));
	b32_encode(out, raw, sizeof(raw));
	return 1;
}

/* Points *tag at the part of s between its last '+' and its '@' when s
 * is an address, else at s; returns the tag's length. */
static size_t
addr_tag(const char *s, const char **tag)
{
	const char *at = strchr(s, '@'), *plus;

	if (at == NULL) {
		*tag = s;
		return strlen(s);
	}
	for (plus = at; plus > s && plus[-1] != '+'; plus--)
		;
	*tag = plus;
	return (size_t)(at - plus);
}

int64_t
mail_reply_verify(const char *s)
{
	unsigned char	 raw[REPLY_BYTES];
	const char	*tag = "";
	size_t		 len = s != NULL ? addr_tag(s, &tag) : 0;
	int64_t		 id = 0;

	if (!b32_decode(raw, sizeof(raw), tag, len))
		return 0;
	for (int i = 0; i < ID_BYTES; i++)
		id = (id << 8) | raw[1 + i];
	if (id < 1 || !id_mac_ok(raw + 1 + ID_BYTES, raw[0], "reply", id))
		return 0;
	return id;
}

/* Appends ID SEP SIG of purpose to b. Returns 1, or 0. */
static int
sig_put(struct buf *b, const char *purpose, int64_t id, char sep)
{
	unsigned char	raw[SIG_BYTES];
	char		sig[MAIL_SIG_LEN + 1];
	unsigned	kid;

	if (id < 1 || (kid = id_mac(raw + 1, 0, purpose, id)) == 0)
		return 0;
	raw[0] = (unsigned char)kid;
	b32_encode(sig, raw, sizeof(raw));
	buf_printf(b, "%lld%c%s", (long long)id, sep, sig);
	return 1;
}

/* Reads "ID SEP SIG" (exactly len characters at s) signed for purpose.
 * Returns the id, or 0. */
static int64_t
sig_check(const char *s, size_t len, const char *purpose, char sep)
{
	unsigned char	raw[SIG_BYTES];
	int64_t		id = 0;
	size_t		i = 0;

	if (len == 0 || s[0] == '0')
		return 0;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		if (i == ID_DIGITS_MAX)
			return 0;
		id = id * 10 + (s[i] - '0');
	}
	if (i == 0 || i >= len || s[i] != sep ||
	    !b32_decode(raw, sizeof(raw), s + i + 1, len - i - 1) ||
	    !id_mac_ok(raw + 1, raw[0], purpose, id))
		return 0;
	return id;
}

int
mail_msgid_make(struct buf *b, int64_t outbox_id, const char *domain)
{
	struct buf	v;
	int		ok;

	buf_init(&v);
	if ((ok = sig_put(&v, "msgid", outbox_id, '.')))
		buf_printf(b, "<pmb.%s@%s>", v.data, domain);
	buf_free(&v);
	return ok;
}

int64_t
mail_msgid_verify(const char *s)
{
	const char	*at;
	size_t		 len;

	if (s == NULL)
		return 0;
	len = strlen(s);

	if (len > 0 && s[0] == '<') {
		if (s[len - 1] != '>')
			return 0;
		s++;
		len -= 2;
	}
	if (len < 4 || strncasecmp(s, "pmb.", 4) != 0 ||
	    (at = memchr(s, '@', len)) == NULL)
		return 0;
	return sig_check(s + 4, (size_t)(at - s) - 4, "msgid", '.');
}

int
mail_verp_make(struct buf *b, int64_t outbox_id, const char *addr)
{
	const char	*at = strrchr(addr, '@');
	struct buf	 v;
	int		 ok;

	if (at == NULL)
		return 0;
	buf_init(&v);
	if ((ok = sig_put(&v, "bounce", outbox_id, '-')))
		buf_printf(b, "%.*s+b-%s%s", (int)(at - addr), addr, v.data,
		    at);
	buf_free(&v);
	return ok;
}

int64_t
mail_verp_verify(const char *s)
{
	const char	*tag = "";
	size_t		 len = s != NULL ? addr_tag(s, &tag) : 0;

	if (len < 2 || (tag[0] != 'b' && tag[0] != 'B') || tag[1] != '-')
		return 0;
	return sig_check(tag + 2, len - 2, "bounce", '-');
}
