/* fuzz_conf: the settings parser (conf_parse). Any text either parses or
 * gives a "name:line: reason" message; after a failure the defaults are
 * back in place on the next parse. */
#include <stdint.h>
#include <string.h>

#include "conf.h"
#include "util.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	p;
	char		err[512];

	parts_split(&p, data, size);
	memset(err, 'x', sizeof(err));
	if (conf_parse(p.s[0], "fuzz.conf", err, sizeof(err))) {
		FUZZ_CHECK(conf.database != NULL && conf.base_url != NULL &&
		    conf.mail_from != NULL, "every string setting is set");
		FUZZ_CHECK(conf.body_limit >= 1024 && conf.price >= 0,
		    "numbers within their limits");
		FUZZ_CHECK(strlen(conf.currency) == 3, "a currency code");
		FUZZ_CHECK(strchr(conf.admin_email, '@') != NULL, "an address");
	} else {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL,
		    "the message is terminated");
		FUZZ_CHECK(strncmp(err, "fuzz.conf:", 10) == 0,
		    "the message names the file and line");
	}
	/* The defaults parse, and free what the fuzzed text set. */
	FUZZ_CHECK(conf_parse("", "empty", err, sizeof(err)), "defaults");
	conf_free();
	parts_free(&p);
	return 0;
}
