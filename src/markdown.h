/* markdown.h: Markdown to HTML with cmark, unsafe HTML off; and to plain
 * text. */
#ifndef PMB_MARKDOWN_H
#define PMB_MARKDOWN_H

#include "util.h"

/* Renders Markdown to safe HTML (raw HTML and unsafe links dropped);
 * returns a string to free. */
char	*md_render(const char *);
/* As md_render, for an email: each image a link to it instead (an
 * email loads nothing from elsewhere). Returns a string to free. */
char	*md_render_mail(const char *);
/* Renders Markdown as plain text for an email's text part: the marks
 * of emphasis, code and headings left out, list items as "- " or "1. ",
 * quotes as "> ", a link's address in brackets after its text, raw
 * HTML dropped (as md_render drops it). Returns a string to free. */
char	*md_plain(const char *);

#endif
