/* mail_text.h: a received message's text made fit to show (issue 18):
 * an HTML part made text, a reply's quotes and signature cut. Plain C and
 * libxml2; no GMime. */
#ifndef PMB_MAIL_TEXT_H
#define PMB_MAIL_TEXT_H

#include <stddef.h>

/* The line our emails carry above their text, so that a reply is cut
 * there (mail_reply_text); matched anywhere in a line, any case. */
#define MAIL_REPLY_MARKER	"-- Reply above this line --"

/* Returns the new part of a reply's text: cut at MAIL_REPLY_MARKER, the
 * "On DATE, NAME wrote:" lines of Gmail, Apple Mail and Thunderbird (also
 * over two or three lines), Outlook's "-----Original Message-----" and
 * "From: ... Sent: ..." blocks and "____" separators, a signature after
 * "-- " and "Sent from my iPhone"-style lines; quoted (">") lines at the
 * end and blank lines at both ends removed, spaces at line ends too, LF
 * line ends. The caller frees it (free). */
char	*mail_reply_text(const char *text);
/* Returns the text of an HTML document (libxml2's HTML parser): block
 * elements end lines, <br> breaks, <li> starts "- ", a blockquote's
 * lines start "> ", script, style and head dropped. Caller frees. */
char	*mail_html_text(const char *html, size_t len);

#endif
