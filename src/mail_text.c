/* mail_text.c: a received message's text made fit to show (issue 18).
 * mail_html_text walks the tree libxml2's HTML parser builds (it decodes
 * entities and mends broken markup; no regular expressions); it is the
 * text of an HTML-only reply, so it keeps what a reader sees: lines where
 * blocks end, "- " for list items, "> " for blockquotes (where Gmail and
 * Outlook put the quoted message), a link's text. mail_reply_text then
 * keeps what the client wrote above the quoted message, as help desks do
 * (the forms are those Gmail, Outlook, Apple Mail, Thunderbird and iOS
 * Mail write; tests/mail-samples/ holds one of each). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "mail_text.h"
#include "util.h"

#define WROTE_LINES	3	/* "On ... wrote:" wrapped over at most */
#define WROTE_MAX	300	/* ...and at most this many bytes */
#define HEADER_LINES	5	/* Outlook's "From:" to "Sent:" at most */
#define RULE_MIN	10	/* Outlook's "____" separator, at least */
#define SENT_FROM_MAX	60	/* a "Sent from my iPhone" line, at most */

/* The text being written from an HTML tree. */
struct writer {
	struct buf	 b;
	int		 nl;	/* line ends owed before the next text */
	int		 space;	/* a space owed before the next text */
	int		 bol;	/* at the beginning of a line */
	int		 quote;	/* blockquotes open */
	int		 pre;	/* <pre> elements open */
};

/* Owes at least n line ends (none before the first text). */
static void
wr_break(struct writer *w, int n)
{
	if (w->b.len > 0 && w->nl < n)
		w->nl = n;
}

/* Writes n bytes of visible text at s, after the line ends, quote
 * marks and space owed. */
static void
wr_text(struct writer *w, const char *s, size_t n)
{
	for (; w->nl > 0; w->nl--) {
		buf_putc(&w->b, '\n');
		w->bol = 1;
		w->space = 0;
	}
	if (w->bol) {
		for (int i = 0; i < w->quote; i++)
			buf_puts(&w->b, "> ");
		w->bol = 0;
	} else if (w->space)
		buf_putc(&w->b, ' ');
	w->space = 0;
	buf_append(&w->b, s, n);
}

/* Writes a text node's content: runs of white space (no-break spaces
 * too) become one space, except inside <pre>. */
static void
wr_node_text(struct writer *w, const char *s)
{
	while (*s != '\0') {
		size_t n;

		if (w->pre && *s == '\n') {
			w->nl++;
			s++;
		} else if (!w->pre && (*s == ' ' || *s == '\t' || *s == '\n' ||
		    *s == '\r' || *s == '\f')) {
			w->space = 1;
			s++;
		} else if (!w->pre && (unsigned char)s[0] == 0xc2 &&
		    (unsigned char)s[1] == 0xa0) {
			w->space = 1;
			s += 2;
		} else {
			n = w->pre ? strcspn(s, "\n") : strcspn(s,
			    " \t\n\r\f\xc2");
			if (n == 0)
				n = 1;	/* a 0xc2 that starts no no-break space */
			wr_text(w, s, n);
			s += n;
		}
	}
}

/* Returns 1 if the element named name is one whose content is not
 * shown. */
static int
hidden(const char *name)
{
	static const char *const names[] = { "head", "script", "style",
	    "title", "template", "noscript", "object", "iframe", "svg" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return 1;
	return 0;
}

/* Returns the line ends owed around the element named name: 2 for a
 * paragraph or heading, 1 for another block element, 0 for inline. */
static int
block(const char *name)
{
	static const char *const blocks[] = { "address", "article", "aside",
	    "blockquote", "center", "dd", "details", "dialog", "dir", "div",
	    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
	    "header", "hr", "li", "main", "nav", "ol", "pre", "section",
	    "summary", "table", "tr", "ul", "caption", "body", "html" };

	if (strcasecmp(name, "p") == 0 || (tolower((unsigned char)name[0]) ==
	    'h' && name[1] >= '1' && name[1] <= '6' && name[2] == '\0'))
		return 2;
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (strcasecmp(name, blocks[i]) == 0)
			return 1;
	return 0;
}

/* Writes the text of node and its siblings' subtrees. */
static void
wr_nodes(struct writer *w, xmlNode *node)
{
	for (; node != NULL; node = node->next) {
		const char	*name = (const char *)node->name;
		int		 n;

		if (node->type == XML_TEXT_NODE ||
		    node->type == XML_CDATA_SECTION_NODE) {
			if (node->content != NULL)
				wr_node_text(w, (const char *)node->content);
			continue;
		}
		if (node->type != XML_ELEMENT_NODE || name == NULL ||
		    hidden(name))
			continue;
		if (strcasecmp(name, "br") == 0) {
			if (w->b.len > 0)
				w->nl++;
			continue;
		}
		n = block(name);
		wr_break(w, n);
		if (strcasecmp(name, "li") == 0) {
			wr_text(w, "-", 1);
			w->space = 1;
		}
		w->quote += strcasecmp(name, "blockquote") == 0;
		w->pre += strcasecmp(name, "pre") == 0;
		wr_nodes(w, node->children);
		w->quote -= strcasecmp(name, "blockquote") == 0;
		w->pre -= strcasecmp(name, "pre") == 0;
		wr_break(w, n);
		if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0)
			w->space = 1;
	}
}

char *
mail_html_text(const char *html, size_t len)
{
	struct writer	 w;
	htmlDocPtr	 doc;

	memset(&w, 0, sizeof(w));
	buf_init(&w.b);
	w.bol = 1;
	if (len > 0 && len <= (size_t)INT32_MAX && (doc = htmlReadMemory(html,
	    (int)len, NULL, "UTF-8", HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
	    HTML_PARSE_NOWARNING | HTML_PARSE_NONET)) != NULL) {
		wr_nodes(&w, xmlDocGetRootElement(doc));
		xmlFreeDoc(doc);
	}
	return buf_take(&w.b);
}

/* One line of a text: where it starts and its length without its line
 * end. */
struct line {
	const char	*s;
	size_t		 n;
};

/* Returns 1 if l, with spaces at either end skipped, starts with p (any
 * case). */
static int
starts(struct line l, const char *p)
{
	size_t plen = strlen(p);

	while (l.n > 0 && isspace((unsigned char)*l.s)) {
		l.s++;
		l.n--;
	}
	return l.n >= plen && strncasecmp(l.s, p, plen) == 0;
}

/* Returns 1 if l contains p (any case). */
static int
contains(struct line l, const char *p)
{
	size_t plen = strlen(p);

	for (size_t i = 0; i + plen <= l.n; i++)
		if (strncasecmp(l.s + i, p, plen) == 0)
			return 1;
	return 0;
}

/* Returns l without spaces at its end. */
static struct line
rtrim(struct line l)
{
	while (l.n > 0 && isspace((unsigned char)l.s[l.n - 1]))
		l.n--;
	return l;
}

/* Returns 1 if lines i.. (up to WROTE_LINES of them) start "On " and end
 * "wrote:": the attribution line of Gmail, Apple Mail, Thunderbird and
 * iOS Mail, which Gmail wraps when the name and address are long. */
static int
attribution(const struct line *ls, size_t nl, size_t i)
{
	size_t	len = 0;

	if (!starts(ls[i], "On "))
		return 0;
	for (size_t j = i; j < nl && j < i + WROTE_LINES; j++) {
		struct line t = rtrim(ls[j]);

		len += t.n + 1;
		if (len > WROTE_MAX || (j > i && t.n == 0))
			return 0;
		if (t.n >= 6 && strncasecmp(t.s + t.n - 6, "wrote:", 6) == 0)
			return 1;
	}
	return 0;
}

/* Returns 1 if line i starts Outlook's header block: "From:" with a
 * "Sent:" (or "Date:") line within HEADER_LINES. */
static int
outlook_block(const struct line *ls, size_t nl, size_t i)
{
	if (!starts(ls[i], "From:"))
		return 0;
	for (size_t j = i + 1; j < nl && j <= i + HEADER_LINES; j++)
		if (starts(ls[j], "Sent:") || starts(ls[j], "Date:"))
			return 1;
	return 0;
}

/* Returns 1 if l is a line of RULE_MIN or more underscores. */
static int
rule(struct line l)
{
	l = rtrim(l);
	if (l.n < RULE_MIN)
		return 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.s[i] != '_')
			return 0;
	return 1;
}

/* Returns 1 if the text ends before line i. */
static int
cut_here(const struct line *ls, size_t nl, size_t i)
{
	struct line	l = ls[i], t = rtrim(ls[i]);

	if (contains(l, MAIL_REPLY_MARKER) || contains(l,
	    "Original Message-----") || contains(l, "Original Message -----"))
		return 1;
	if (rule(l) || attribution(ls, nl, i) || outlook_block(ls, nl, i))
		return 1;
	/* RFC 3676's signature delimiter, its space often lost. */
	if ((l.n == 3 && memcmp(l.s, "-- ", 3) == 0) || (t.n == 2 &&
	    memcmp(t.s, "--", 2) == 0))
		return 1;
	return t.n <= SENT_FROM_MAX && (starts(t, "Sent from my ") ||
	    starts(t, "Sent from Mail for ") || starts(t, "Get Outlook for ") ||
	    starts(t, "Sent from Outlook") || starts(t, "Sent from Yahoo Mail"));
}

/* Returns the lines of text (CR LF or LF ends) in a malloc'd array, their
 * count in *nl. */
static struct line *
split_lines(const char *text, size_t *nl)
{
	struct line	*ls = NULL;
	size_t		 n = 0;

	for (const char *p = text; *p != '\0';) {
		size_t len = strcspn(p, "\n");

		ls = xrealloc(ls, (n + 1) * sizeof(*ls));
		ls[n].s = p;
		ls[n].n = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
		n++;
		p += len;
		p += *p == '\n';
	}
	*nl = n;
	return ls;
}

char *
mail_reply_text(const char *text)
{
	struct line	*ls;
	size_t		 nl, end, start = 0;
	struct buf	 b;

	ls = split_lines(text != NULL ? text : "", &nl);
	for (end = 0; end < nl && !cut_here(ls, nl, end); end++)
		;
	/* Quoted lines at the end (a reply on top of a quote without an
	 * attribution line), and blank lines at either end. */
	while (end > 0 && (rtrim(ls[end - 1]).n == 0 ||
	    starts(ls[end - 1], ">")))
		end--;
	while (start < end && rtrim(ls[start]).n == 0)
		start++;
	buf_init(&b);
	for (size_t i = start; i < end; i++) {
		struct line t = rtrim(ls[i]);

		buf_append(&b, t.s, t.n);
		if (i + 1 < end)
			buf_putc(&b, '\n');
	}
	free(ls);
	return buf_take(&b);
}
