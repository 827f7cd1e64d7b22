/* token.c: signing and verifying links and cookies with libsodium. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "token.h"
#include "util.h"

#define TOKEN_VERSION	1
#define MAX_KEYS	TOKEN_KEYS_MAX
#define KEY_ID_MAX	255
#define KEY_B64_LEN	sodium_base64_ENCODED_LEN(crypto_auth_KEYBYTES, \
			    sodium_base64_VARIANT_URLSAFE_NO_PADDING)
/* version, key id, purpose, id (8), issued (4), expires (4). */
#define TOKEN_BODY	19
#define TOKEN_RAW	(TOKEN_BODY + crypto_auth_BYTES)

struct key {
	unsigned	 id;
	unsigned char	 k[crypto_auth_KEYBYTES];
	/* HMAC's state after the key (its inner and outer pads), made once
	 * when the key is set: each MAC copies it instead of hashing the
	 * two pad blocks again. */
	crypto_auth_hmacsha512256_state keyed;
};

static struct key	keys[MAX_KEYS];
static size_t		nkeys;
/* The key file's comment and blank lines (each ending "\n") before key
 * i, and at nkeys those after the last key (NULL: none), so that
 * token_keys_save writes back what it read. */
static char		*notes[MAX_KEYS + 1];

void
token_keys_clear(void)
{
	sodium_memzero(keys, sizeof(keys));
	for (size_t i = 0; i < ARRAY_LEN(notes); i++) {
		free(notes[i]);
		notes[i] = NULL;
	}
	nkeys = 0;
}

void
token_key_set(unsigned id, const unsigned char key[32])
{
	if (nkeys == MAX_KEYS)
		return;
	keys[nkeys].id = id;
	memcpy(keys[nkeys].k, key, crypto_auth_KEYBYTES);
	crypto_auth_hmacsha512256_init(&keys[nkeys].keyed, keys[nkeys].k,
	    crypto_auth_KEYBYTES);
	nkeys++;
}

/* Returns the key with id, or NULL. */
static const struct key *
key_find(unsigned id)
{
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].id == id)
			return &keys[i];
	return NULL;
}

int
token_keys_load(const char *path, char *err, size_t errsz)
{
	char		*text, *line, *next;
	struct buf	 note;
	int		 lineno = 0, ok = 1;

	token_keys_clear();
	if ((text = read_file(path, NULL)) == NULL) {
		snprintf(err, errsz, "%s: cannot read the key file "
		    "(run \"pmbctl init\")", path);
		return 0;
	}
	buf_init(&note);
	for (line = text; ok && line != NULL && *line != '\0'; line = next) {
		unsigned char	 k[crypto_auth_KEYBYTES];
		size_t		 klen;
		const char	*end;
		char		*colon;
		long		 id;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (*line == '#' || *line == '\0') {
			buf_puts(&note, line);
			buf_putc(&note, '\n');
			continue;
		}
		id = strtol(line, &colon, 10);
		if (colon == line || *colon != ':' || id < 1 ||
		    id > KEY_ID_MAX ||
		    sodium_base642bin(k, sizeof(k), colon + 1, strlen(colon + 1),
		    NULL, &klen, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
		    != 0 || *end != '\0' || klen != sizeof(k) ||
		    key_find((unsigned)id) != NULL || nkeys == MAX_KEYS) {
			snprintf(err, errsz, "%s:%d: expected ID:KEY with a "
			    "unique id and a 32-byte base64url key", path,
			    lineno);
			ok = 0;
		} else {
			notes[nkeys] = note.len > 0 ? buf_take(&note) : NULL;
			token_key_set((unsigned)id, k);
		}
		sodium_memzero(k, sizeof(k));
	}
	notes[nkeys] = ok && note.len > 0 ? buf_take(&note) : NULL;
	buf_free(&note);
	sodium_memzero(text, strlen(text));
	free(text);
	if (!ok) {
		token_keys_clear();
		return 0;
	}
	if (nkeys == 0) {
		snprintf(err, errsz, "%s: no key in the key file", path);
		return 0;
	}
	return 1;
}

size_t
token_key_ids(unsigned ids[TOKEN_KEYS_MAX])
{
	for (size_t i = 0; i < nkeys; i++)
		ids[i] = keys[i].id;
	return nkeys;
}

unsigned
token_key_add(void)
{
	unsigned char	k[crypto_auth_KEYBYTES];
	struct key	top;
	unsigned	id = 0;

	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].id > id)
			id = keys[i].id;
	if (nkeys == MAX_KEYS || ++id > KEY_ID_MAX)
		return 0;
	randombytes_buf(k, sizeof(k));
	token_key_set(id, k);
	sodium_memzero(k, sizeof(k));
	/* The new key goes on top, before the notes of the old first. */
	top = keys[nkeys - 1];
	memmove(keys + 1, keys, (nkeys - 1) * sizeof(keys[0]));
	keys[0] = top;
	sodium_memzero(&top, sizeof(top));
	memmove(notes + 1, notes, nkeys * sizeof(notes[0]));
	notes[0] = NULL;
	return id;
}

int
token_key_remove(unsigned id)
{
	struct buf	joined;
	size_t		i;

	for (i = 0; i < nkeys && keys[i].id != id; i++)
		;
	if (i == nkeys)
		return 0;
	/* The key's notes stay, before the key that followed it. */
	buf_init(&joined);
	buf_puts(&joined, notes[i] != NULL ? notes[i] : "");
	buf_puts(&joined, notes[i + 1] != NULL ? notes[i + 1] : "");
	free(notes[i]);
	free(notes[i + 1]);
	notes[i + 1] = joined.len > 0 ? buf_take(&joined) : NULL;
	buf_free(&joined);
	memmove(keys + i, keys + i + 1, (nkeys - i - 1) * sizeof(keys[0]));
	memmove(notes + i, notes + i + 1, (nkeys - i) * sizeof(notes[0]));
	nkeys--;
	notes[nkeys + 1] = NULL;
	sodium_memzero(&keys[nkeys], sizeof(keys[0]));
	return 1;
}

/* Gives the open file fd the owner, group and mode of the file at path,
 * so that a rewritten key file stays readable by the service that reads
 * it (pmbctl run as root must not leave it root's). Returns 1, or 0 with
 * errno set. */
static int
keep_owner_mode(int fd, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return 0;
	if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid) != 0)
		return 0;
	return fchmod(fd, st.st_mode & 07777) == 0;
}

int
token_keys_save(const char *path, int create, char *err, size_t errsz)
{
	struct buf	text, tmp;
	char		b64[KEY_B64_LEN];
	int		fd, ok;

	buf_init(&text);
	buf_init(&tmp);
	for (size_t i = 0; i <= nkeys; i++) {
		buf_puts(&text, notes[i] != NULL ? notes[i] : "");
		if (i == nkeys)
			break;
		sodium_bin2base64(b64, sizeof(b64), keys[i].k,
		    sizeof(keys[i].k), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		buf_printf(&text, "%u:%s\n", keys[i].id, b64);
	}
	sodium_memzero(b64, sizeof(b64));
	buf_printf(&tmp, "%s.new", path);
	unlink(tmp.data);
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ok = fd >= 0 && (create || keep_owner_mode(fd, path)) &&
	    write_all(fd, text.data, text.len) && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = 0;
	/* A new file never replaces one made meanwhile. */
	if (ok)
		ok = (create ? link(tmp.data, path) : rename(tmp.data, path)) ==
		    0;
	if (!ok)
		snprintf(err, errsz, "%s: cannot write the key file: %s", path,
		    strerror(errno));
	if (!ok || create)
		unlink(tmp.data);
	if (ok)
		sync_folder_of(path);
	sodium_memzero(text.data, text.len);
	buf_free(&text);
	buf_free(&tmp);
	return ok;
}

/* Writes v big-endian into n bytes at p. */
static void
put_be(unsigned char *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

/* Reads n bytes big-endian at p. */
static uint64_t
get_be(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Computes the MAC of body (and state) with key k into tag. */
static void
token_mac(unsigned char tag[crypto_auth_BYTES], const unsigned char *body,
    const char *state, const struct key *k)
{
	crypto_auth_hmacsha512256_state st = k->keyed;

	crypto_auth_hmacsha512256_update(&st, body, TOKEN_BODY);
	if (state != NULL)
		crypto_auth_hmacsha512256_update(&st,
		    (const unsigned char *)state, strlen(state));
	crypto_auth_hmacsha512256_final(&st, tag);
}

int
token_make(char out[TOKEN_TEXT_LEN + 1], unsigned purpose, int64_t id,
    int64_t expires, const char *state)
{
	unsigned char raw[TOKEN_RAW];

	if (nkeys == 0)
		return 0;
	raw[0] = TOKEN_VERSION;
	raw[1] = (unsigned char)keys[0].id;
	raw[2] = (unsigned char)purpose;
	put_be(raw + 3, (uint64_t)id, 8);
	put_be(raw + 11, (uint64_t)now_unix(), 4);
	put_be(raw + 15, (uint64_t)expires, 4);
	token_mac(raw + TOKEN_BODY, raw, state, &keys[0]);
	sodium_bin2base64(out, TOKEN_TEXT_LEN + 1, raw, sizeof(raw),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 1;
}

int
token_parse(const char *s, struct token *t)
{
	const char	*end;
	size_t		 n = strlen(s);

	memset(t, 0, sizeof(*t));
	if (n != TOKEN_TEXT_LEN ||
	    sodium_base642bin(t->raw, sizeof(t->raw), s, n, NULL, &t->rawlen,
	    &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end != '\0' || t->rawlen != TOKEN_RAW ||
	    t->raw[0] != TOKEN_VERSION || key_find(t->raw[1]) == NULL)
		return 0;
	t->key_id = t->raw[1];
	t->purpose = t->raw[2];
	t->id = (int64_t)get_be(t->raw + 3, 8);
	t->issued = (int64_t)get_be(t->raw + 11, 4);
	t->expires = (int64_t)get_be(t->raw + 15, 4);
	return 1;
}

enum token_result
token_verify(const struct token *t, unsigned purpose, const char *state)
{
	unsigned char	 tag[crypto_auth_BYTES];
	const struct key *k;
	int		 ok;

	if (t->rawlen != TOKEN_RAW || (k = key_find(t->key_id)) == NULL)
		return TOKEN_BAD;
	token_mac(tag, t->raw, state, k);
	ok = sodium_memcmp(tag, t->raw + TOKEN_BODY, sizeof(tag)) == 0;
	sodium_memzero(tag, sizeof(tag));
	if (!ok || t->purpose != purpose)
		return TOKEN_BAD;
	if (t->expires != 0 && now_unix() >= t->expires)
		return TOKEN_EXPIRED;
	return TOKEN_OK;
}

enum token_result
token_check(const char *s, unsigned purpose, const char *state,
    struct token *t)
{
	if (!token_parse(s, t))
		return TOKEN_BAD;
	return token_verify(t, purpose, state);
}

void
sign_bytes(char *out, size_t outsz, const unsigned char *data, size_t n)
{
	unsigned char buf[1 + SIGN_BYTES_MAX + crypto_auth_BYTES];

	if (n > SIGN_BYTES_MAX || nkeys == 0) {
		*out = '\0';
		return;
	}
	buf[0] = (unsigned char)keys[0].id;
	memcpy(buf + 1, data, n);
	crypto_auth(buf + 1 + n, buf, n + 1, keys[0].k);
	sodium_bin2base64(out, outsz, buf, n + 1 + crypto_auth_BYTES,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(buf, sizeof(buf));
}

int
unsign_bytes(const char *s, unsigned char *data, size_t n)
{
	unsigned char	 buf[1 + SIGN_BYTES_MAX + crypto_auth_BYTES];
	size_t		 len;
	const char	*end;
	const struct key *k;

	if (n > SIGN_BYTES_MAX || sodium_base642bin(buf, sizeof(buf), s,
	    strlen(s), NULL, &len, &end,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end != '\0' || len != n + 1 + crypto_auth_BYTES ||
	    (k = key_find(buf[0])) == NULL ||
	    crypto_auth_verify(buf + 1 + n, buf, n + 1, k->k) != 0)
		return 0;
	memcpy(data, buf + 1, n);
	sodium_memzero(buf, sizeof(buf));
	return 1;
}

/* Computes HMAC(k, label ":" data) into tag. */
static void
mac_text_raw(unsigned char tag[crypto_auth_BYTES], const struct key *k,
    const char *label, const char *data)
{
	crypto_auth_hmacsha512256_state st = k->keyed;

	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)label,
	    strlen(label));
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)":", 1);
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)data,
	    strlen(data));
	crypto_auth_hmacsha512256_final(&st, tag);
}

void
mac_text(char *out, size_t outsz, const char *label, const char *data)
{
	unsigned char tag[crypto_auth_BYTES];

	if (nkeys == 0 || outsz < sodium_base64_ENCODED_LEN(sizeof(tag),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING)) {
		if (outsz > 0)
			*out = '\0';
		return;
	}
	mac_text_raw(tag, &keys[0], label, data);
	sodium_bin2base64(out, outsz, tag, sizeof(tag),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int
mac_text_verify(const char *tag, const char *label, const char *data)
{
	unsigned char	 want[crypto_auth_BYTES], got[crypto_auth_BYTES];
	size_t		 len;
	const char	*end;
	int		 ok = 0;

	if (sodium_base642bin(got, sizeof(got), tag, strlen(tag), NULL, &len,
	    &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    *end != '\0' || len != sizeof(got))
		return 0;
	for (size_t i = 0; i < nkeys; i++) {
		mac_text_raw(want, &keys[i], label, data);
		ok |= sodium_memcmp(want, got, sizeof(got)) == 0;
	}
	sodium_memzero(want, sizeof(want));
	return ok;
}

unsigned
token_short_mac(unsigned char *out, size_t n, unsigned key_id,
    const char *label, const char *data)
{
	unsigned char	 tag[crypto_auth_BYTES];
	const struct key *k;

	k = key_id == 0 ? (nkeys > 0 ? &keys[0] : NULL) : key_find(key_id);
	if (k == NULL || n > sizeof(tag))
		return 0;
	mac_text_raw(tag, k, label, data);
	memcpy(out, tag, n);
	sodium_memzero(tag, sizeof(tag));
	return k->id;
}
