/* pmbctl_key.c: pmbctl's signing keys: list, rotate, remove. The key
 * file is read and written by token.c alone. */
#include <stdio.h>

#include "conf.h"
#include "pmbctl.h"
#include "token.h"
#include "util.h"

/* Loads the key file; returns 1, or 0 after a message. */
static int
keys_load(void)
{
	char err[512];

	if (!token_keys_load(conf.key_file, err, sizeof(err)))
		return fail("%s", err), 0;
	return 1;
}

/* Writes the loaded keys back to the key file and forgets them; returns
 * 1, or 0 after a message. */
static int
keys_save(void)
{
	char	err[512];
	int	ok = token_keys_save(conf.key_file, 0, err, sizeof(err));

	token_keys_clear();
	if (!ok)
		fail("%s", err);
	return ok;
}

/* pmbctl key list */
int
cmd_key_list(char *argv[])
{
	unsigned	ids[TOKEN_KEYS_MAX];
	size_t		n;

	(void)argv;
	if (!keys_load())
		return 1;
	n = token_key_ids(ids);
	token_keys_clear();
	for (size_t i = 0; i < n; i++)
		printf("%u%s\n", ids[i], i == 0 ? " (signs)" : " (verifies)");
	return 0;
}

/* pmbctl key rotate */
int
cmd_key_rotate(char *argv[])
{
	unsigned id;

	(void)argv;
	if (!keys_load())
		return 1;
	if ((id = token_key_add()) == 0) {
		token_keys_clear();
		return fail("too many keys: remove an old one first");
	}
	if (!keys_save())
		return 1;
	printf("key %u now signs; restart pmb.fcgi to use it\n", id);
	return 0;
}

/* pmbctl key remove ID */
int
cmd_key_remove(char *argv[])
{
	unsigned	ids[TOKEN_KEYS_MAX];
	int64_t		id;

	if (!keys_load())
		return 1;
	if (!parse_int64(argv[0], 1, 255, &id)) {
		token_keys_clear();
		return fail("a key id is a number from 1 to 255");
	}
	if (token_key_ids(ids) > 0 && ids[0] == id) {
		token_keys_clear();
		return fail("key %lld signs: rotate first", (long long)id);
	}
	if (!token_key_remove((unsigned)id)) {
		token_keys_clear();
		return fail("no key %lld", (long long)id);
	}
	if (!keys_save())
		return 1;
	printf("removed key %lld; restart pmb.fcgi\n", (long long)id);
	return 0;
}
