/* fuzz_tmpl: the template compiler and renderer with hostile templates
 * and values. Input: the template, then NUL-separated parts: "name=value"
 * sets a variable in the current scope, "#name" adds a row to the list
 * name and makes it the current scope, "/" goes back out, "*name=value"
 * sets a computed one. Checks: a template whose own text holds no '<', '>', '"', '\''
 * or '&' and no raw {{{tag}}}, rendered with the HTML escaper, gives
 * output without '<', '>', '"' or '\'' whatever the values (escaping is
 * the default); a render never fails for a template that compiled,
 * unless it includes a partial (which may be missing or loop). */
#include <stdint.h>
#include <string.h>

#include "tmpl.h"
#include "util.h"
#include "fuzz.h"

#define SCOPES	8	/* nested rows the input may open */

/* Returns arg: a computed value (tv_set_fn) that is the text given. */
static const char *
echo(void *arg)
{
	return arg;
}

/* Returns 1 if s holds a character that HTML escaping must remove
 * (with amp, '&' too: the escaper writes entities, so its output may). */
static int
has_html_special(const char *s, int amp)
{
	return strpbrk(s, amp ? "<>\"'&" : "<>\"'") != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	 p;
	struct tvars	 tv, *scope[SCOPES];
	struct buf	 out;
	char		 err[256];
	size_t		 depth = 0;

	parts_split(&p, data, size);
	memset(&tv, 0, sizeof(tv));
	scope[0] = &tv;
	for (size_t i = 1; i < p.n; i++) {
		char *eq = strchr(p.s[i], '=');

		if (p.s[i][0] == '#' && depth + 1 < SCOPES) {
			scope[depth + 1] = tv_row(scope[depth], p.s[i] + 1);
			depth++;
		} else if (p.s[i][0] == '/' && depth > 0)
			depth--;
		else if (eq != NULL) {
			*eq = '\0';
			if (p.s[i][0] == '*')
				tv_set_fn(scope[depth], p.s[i] + 1, echo,
				    eq + 1);
			else
				tv_set(scope[depth], p.s[i], eq + 1);
		}
	}
	err[0] = '\0';
	if (tmpl_add("fuzz.html", p.s[0], err, sizeof(err))) {
		int partials = strstr(p.s[0], "{{>") != NULL;

		buf_init(&out);
		FUZZ_CHECK(tmpl_render(&out, "fuzz.html", &tv) || partials,
		    "render");
		FUZZ_CHECK(out.data == NULL || strlen(out.data) == out.len,
		    "the buffer's length is its string's");
		if (!has_html_special(p.s[0], 1) && strstr(p.s[0], "{{{") == NULL)
			FUZZ_CHECK(out.len == 0 || !has_html_special(out.data, 0),
			    "a value escaped its HTML escaping");
		buf_reset(&out);
		FUZZ_CHECK(tmpl_render_esc(&out, "fuzz.html", &tv, NULL) ||
		    partials, "render plain");
		buf_free(&out);
		/* Replacing a template frees the old one. */
		FUZZ_CHECK(tmpl_add("fuzz.html", "x{{y}}", err, sizeof(err)),
		    "replace");
	} else
		FUZZ_CHECK(err[0] != '\0', "a message when it does not compile");
	tv_free(&tv);
	tmpl_free();
	parts_free(&p);
	return 0;
}
