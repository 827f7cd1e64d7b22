/* fuzz_cookie: the Cookie header parser (parse_cookies). What it accepts
 * holds no control character and no more than HTTP_MAX_COOKIES pairs. */
#include <stdint.h>
#include <string.h>

#include "http.h"
#include "util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	 p;
	struct kv	*kv = NULL;
	size_t		 n = 0;
	const char	*why = NULL;
	int		 rc;

	parts_split(&p, data, size);
	/* A header value is a C string: the first part. */
	rc = parse_cookies(p.s[0], &kv, &n, &why);
	FUZZ_CHECK(n <= HTTP_MAX_COOKIES, "at most HTTP_MAX_COOKIES");
	if (rc < 0)
		FUZZ_CHECK(why != NULL, "a reason on failure");
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(!has_ctl(kv[i].key) && !has_ctl(kv[i].val),
		    "no control characters");
		FUZZ_CHECK(utf8_valid(kv[i].key, strlen(kv[i].key)) &&
		    utf8_valid(kv[i].val, strlen(kv[i].val)), "UTF-8");
	}
	kv_free(kv, n);
	parts_free(&p);
	return 0;
}
