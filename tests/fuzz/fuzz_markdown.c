/* fuzz_markdown: the one Markdown path (md_render, md_render_mail,
 * md_plain). The HTML it makes holds only the tags and attributes cmark
 * writes (raw HTML from the input is omitted) and no javascript:,
 * vbscript:, file: or data: URL other than data:image/; an email's holds
 * no image; md_plain survives anything. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "markdown.h"
#include "util.h"
#include "fuzz.h"

/* The tags and attributes cmark writes; anything else came from the
 * input. */
static const char *const tags[] = { "p", "em", "strong", "a", "code", "pre",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "hr",
    "br", "img", NULL };
static const char *const attrs[] = { "href", "src", "alt", "title", "start",
    "class", NULL };

/* Returns 1 if the n bytes at s are one of the words in list. */
static int
listed(const char *const *list, const char *s, size_t n)
{
	for (; *list != NULL; list++)
		if (strlen(*list) == n && strncmp(*list, s, n) == 0)
			return 1;
	return 0;
}

/* Returns 1 if a link or image URL is one a safe renderer may emit. */
static int
url_safe(const char *u, size_t n)
{
	static const char *const bad[] = { "javascript:", "vbscript:",
	    "file:", "data:", NULL };

	if (n >= 11 && strncasecmp(u, "data:image/", 11) == 0)
		return 1;
	for (size_t i = 0; bad[i] != NULL; i++)
		if (n >= strlen(bad[i]) &&
		    strncasecmp(u, bad[i], strlen(bad[i])) == 0)
			return 0;
	return 1;
}

/* Checks every tag of html: a known tag with known attributes, each
 * value double-quoted, URLs safe. */
static void
check_html(const char *html)
{
	static const char omitted[] = "<!-- raw HTML omitted -->";
	const char *p = html;

	while ((p = strchr(p, '<')) != NULL) {
		size_t n;

		if (strncmp(p, omitted, sizeof(omitted) - 1) == 0) {
			p += sizeof(omitted) - 1;
			continue;
		}
		p++;
		if (*p == '/')
			p++;
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789");
		FUZZ_CHECK(listed(tags, p, n), "an unknown tag came through");
		p += n;
		for (;;) {
			const char *name, *val;

			p += strspn(p, " ");
			if (*p == '>' || strncmp(p, "/>", 2) == 0)
				break;
			name = p;
			n = strspn(p, "abcdefghijklmnopqrstuvwxyz");
			FUZZ_CHECK(listed(attrs, name, n),
			    "an unknown attribute came through");
			p += n;
			FUZZ_CHECK(p[0] == '=' && p[1] == '"', "an unquoted value");
			val = p + 2;
			p = strchr(val, '"');
			FUZZ_CHECK(p != NULL, "an unterminated value");
			if (strncmp(name, "href", 4) == 0 ||
			    strncmp(name, "src", 3) == 0)
				FUZZ_CHECK(url_safe(val, (size_t)(p - val)),
				    "an unsafe URL came through");
			FUZZ_CHECK(memchr(val, '<', (size_t)(p - val)) == NULL,
			    "'<' in an attribute");
			p++;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parts	 p;
	char		*html;

	parts_split(&p, data, size);
	html = md_render(p.s[0]);
	FUZZ_CHECK(html != NULL, "md_render returns a string");
	check_html(html);
	free(html);

	/* An email's HTML: as safe, and no image at all. */
	html = md_render_mail(p.s[0]);
	FUZZ_CHECK(html != NULL, "md_render_mail returns a string");
	check_html(html);
	FUZZ_CHECK(strstr(html, "<img") == NULL, "an image in an email");
	free(html);

	/* Plain text (not markup: "&lt;" is "<" there): a string. */
	html = md_plain(p.s[0]);
	FUZZ_CHECK(html != NULL, "md_plain returns a string");
	free(html);
	parts_free(&p);
	return 0;
}
