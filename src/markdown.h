/* markdown.h: Markdown to HTML with cmark, unsafe HTML off. */
#ifndef PMB_MARKDOWN_H
#define PMB_MARKDOWN_H

#include "util.h"

/* Renders Markdown to safe HTML (raw HTML and unsafe links dropped);
 * returns a string to free. */
char	*md_render(const char *);
/* Appends s with every Markdown punctuation character backslash-escaped,
 * so that it renders as the same literal text. */
void	 md_escape(struct buf *, const char *);

#endif
