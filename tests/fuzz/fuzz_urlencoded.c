/* fuzz_urlencoded: the query and form body parser (parse_urlencoded,
 * url_decode). Every pair it accepts must be valid UTF-8 without NUL,
 * and it must never give more than the maximum number of fields. */
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kv	*kv = NULL;
	size_t		 n = 0;
	const char	*why = NULL;
	char		*d;
	int		 rc;

	/* The parser takes a length: no NUL terminator is promised. */
	char *copy = malloc(size ? size : 1);

	FUZZ_CHECK(copy != NULL, "malloc");
	memcpy(copy, data, size);
	rc = parse_urlencoded(copy, size, &kv, &n, 50, &why);
	FUZZ_CHECK(n <= 50, "at most max fields");
	if (rc < 0)
		FUZZ_CHECK(why != NULL && *why != '\0', "a reason on failure");
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(utf8_valid(kv[i].key, strlen(kv[i].key)),
		    "key is UTF-8");
		FUZZ_CHECK(utf8_valid(kv[i].val, strlen(kv[i].val)),
		    "value is UTF-8");
	}
	kv_free(kv, n);

	/* A second call appends to the same array (query, then body). */
	kv = NULL;
	n = 0;
	(void)parse_urlencoded(copy, size, &kv, &n, HTTP_MAX_FIELDS, &why);
	(void)parse_urlencoded(copy, size, &kv, &n, HTTP_MAX_FIELDS, &why);
	FUZZ_CHECK(n <= HTTP_MAX_FIELDS, "at most HTTP_MAX_FIELDS");
	kv_free(kv, n);

	for (int plus = 0; plus < 2; plus++) {
		if ((d = url_decode(copy, size, plus)) != NULL) {
			size_t k = strlen(d);

			FUZZ_CHECK(k <= size, "decoding never grows");
			FUZZ_CHECK(utf8_valid(d, k), "decoded is UTF-8");
			free(d);
		}
	}
	free(copy);
	return 0;
}
