/* markdown.c: the one Markdown path, shared by the client's status page,
 * the admin preview and the emails. */
#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "markdown.h"

char *
md_render(const char *md)
{
	struct buf	 shown;
	char		*html;

	/* Invisible and text-direction characters are shown, as escaped
	 * text that no Markdown construct can take in. */
	buf_init(&shown);
	if (has_invisible(md)) {
		show_invisible(&shown, md, "\\[", "\\]");
		md = shown.data;
	}
	/* Without CMARK_OPT_UNSAFE, cmark drops raw HTML and links to
	 * javascript:, vbscript:, file: and most data: URLs. */
	html = cmark_markdown_to_html(md, strlen(md),
	    CMARK_OPT_DEFAULT | CMARK_OPT_SMART | CMARK_OPT_VALIDATE_UTF8);
	buf_free(&shown);
	if (html == NULL)
		return xstrdup("");
	return html;
}

void
md_escape(struct buf *b, const char *s)
{
	int bol = 1;	/* at the start of a line */

	for (; *s != '\0'; s++) {
		/* Blanks that start a line could indent a code block: the
		 * first one goes as a character reference. */
		if (bol && (*s == ' ' || *s == '\t')) {
			buf_puts(b, *s == ' ' ? "&#32;" : "&#9;");
			bol = 0;
			continue;
		}
		bol = *s == '\n' || *s == '\r';
		/* '=' too: a line of them would make the one above a
		 * heading. */
		if (strchr("\\`*_{}[]()#+-.!<>&|~\"'=", *s) != NULL)
			buf_putc(b, '\\');
		buf_putc(b, *s);
	}
}
