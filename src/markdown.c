/* markdown.c: the one Markdown path, shared by the client's status page,
 * the admin preview and the emails. */
#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "markdown.h"

char *
md_render(const char *md)
{
	/* Without CMARK_OPT_UNSAFE, cmark drops raw HTML and links to
	 * javascript:, vbscript:, file: and most data: URLs. */
	char *html = cmark_markdown_to_html(md, strlen(md),
	    CMARK_OPT_DEFAULT | CMARK_OPT_SMART | CMARK_OPT_VALIDATE_UTF8);

	if (html == NULL)
		return xstrdup("");
	return html;
}

void
md_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (strchr("\\`*_{}[]()#+-.!<>&|~\"'", *s) != NULL)
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
}
