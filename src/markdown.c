/* markdown.c: the one Markdown path, shared by the client's status page,
 * the admin preview and the emails. */
#include <stdlib.h>
#include <string.h>

#include <cmark.h>

#include "markdown.h"

/* Returns md with its invisible and text-direction characters shown, as
 * escaped text that no Markdown construct can take in: md itself when
 * it has none, else shown's text (shown is initialised here, freed by
 * the caller). */
static const char *
md_shown(struct buf *shown, const char *md)
{
	buf_init(shown);
	if (!has_invisible(md))
		return md;
	show_invisible(shown, md, "\\[", "\\]");
	return shown->data;
}

#define MD_OPTS	(CMARK_OPT_DEFAULT | CMARK_OPT_SMART | CMARK_OPT_VALIDATE_UTF8)

char *
md_render(const char *md)
{
	struct buf	 shown;
	char		*html;

	md = md_shown(&shown, md);
	/* Without CMARK_OPT_UNSAFE, cmark drops raw HTML and links to
	 * javascript:, vbscript:, file: and most data: URLs. */
	html = cmark_markdown_to_html(md, strlen(md), MD_OPTS);
	buf_free(&shown);
	if (html == NULL)
		return xstrdup("");
	return html;
}

/* Replaces image node img with a link to the same address, its alt text
 * the link's text. Returns 1, or 0 when cmark refuses. */
static int
image_to_link(cmark_node *img)
{
	cmark_node	*link = cmark_node_new(CMARK_NODE_LINK), *c;
	const char	*title = cmark_node_get_title(img);

	if (link == NULL || !cmark_node_set_url(link,
	    cmark_node_get_url(img)) || !cmark_node_set_title(link,
	    title != NULL ? title : "")) {
		if (link != NULL)
			cmark_node_free(link);
		return 0;
	}
	while ((c = cmark_node_first_child(img)) != NULL)
		if (!cmark_node_append_child(link, c))
			break;
	if (!cmark_node_replace(img, link)) {
		cmark_node_free(link);
		return 0;
	}
	cmark_node_free(img);
	return 1;
}

/* Replaces every image of doc with a link (image_to_link). Returns 1,
 * or 0 when one could not be replaced. */
static int
images_to_links(cmark_node *doc)
{
	cmark_iter	*it;
	cmark_node	*img;
	cmark_event_type ev;

	/* One at a time, a fresh walk each: the tree changes under it. */
	for (;;) {
		if ((it = cmark_iter_new(doc)) == NULL)
			return 0;
		img = NULL;
		while (img == NULL &&
		    (ev = cmark_iter_next(it)) != CMARK_EVENT_DONE)
			if (ev == CMARK_EVENT_ENTER && cmark_node_get_type(
			    cmark_iter_get_node(it)) == CMARK_NODE_IMAGE)
				img = cmark_iter_get_node(it);
		cmark_iter_free(it);
		if (img == NULL)
			return 1;
		if (!image_to_link(img))
			return 0;
	}
}

char *
md_render_mail(const char *md)
{
	struct buf	 shown;
	cmark_node	*doc;
	char		*html = NULL;

	md = md_shown(&shown, md);
	doc = cmark_parse_document(md, strlen(md), MD_OPTS);
	if (doc != NULL && images_to_links(doc))
		html = cmark_render_html(doc, MD_OPTS);
	if (doc != NULL)
		cmark_node_free(doc);
	buf_free(&shown);
	return html != NULL ? html : xstrdup("");
}

/* A plain-text render of Markdown under way: the text so far, what each
 * new line of it starts with (the indentation of the list items and the
 * "> " of the quotes it is in), and whether it stands at a line's start. */
struct plain {
	struct buf	 out;
	struct buf	 prefix;
	int		 bol;
};

/* Appends s, starting each line that has text with the prefix. */
static void
plain_put(struct plain *p, const char *s)
{
	for (; *s != '\0'; s++) {
		if (p->bol && *s != '\n' && p->prefix.len > 0)
			buf_append(&p->out, p->prefix.data, p->prefix.len);
		buf_putc(&p->out, *s);
		p->bol = *s == '\n';
	}
}

/* Ends the block just written: a line break, and a blank line when
 * blank (none at the very start, never two). */
static void
plain_end_block(struct plain *p, int blank)
{
	size_t	n = p->out.len;

	if (n == 0)
		return;
	if (p->out.data[n - 1] != '\n')
		buf_putc(&p->out, '\n');
	n = p->out.len;
	if (blank && (n < 2 || p->out.data[n - 2] != '\n'))
		buf_putc(&p->out, '\n');
	p->bol = 1;
}

/* Writes the marker of list item node ("- ", or "3. " in an ordered
 * list) into b. */
static void
plain_bullet(struct buf *b, cmark_node *node)
{
	cmark_node	*list = cmark_node_parent(node);
	int		 n = cmark_node_get_list_start(list);

	if (cmark_node_get_list_type(list) != CMARK_ORDERED_LIST) {
		buf_puts(b, "- ");
		return;
	}
	for (cmark_node *c = cmark_node_previous(node); c != NULL;
	    c = cmark_node_previous(c))
		n++;
	buf_printf(b, "%d. ", n);
}

/* Whether paragraph node is in a tight list's item (no blank line
 * after it). */
static int
plain_tight(cmark_node *node)
{
	cmark_node *item = cmark_node_parent(node);

	return item != NULL && cmark_node_get_type(item) == CMARK_NODE_ITEM &&
	    cmark_node_get_list_tight(cmark_node_parent(item));
}

/* Writes what starts node (entering it) or ends it (leaving it). */
static void
plain_node(struct plain *p, cmark_node *node, int entering)
{
	struct buf	 b;
	const char	*url;

	switch (cmark_node_get_type(node)) {
	case CMARK_NODE_TEXT:
	case CMARK_NODE_CODE:
		plain_put(p, cmark_node_get_literal(node));
		break;
	case CMARK_NODE_SOFTBREAK:
	case CMARK_NODE_LINEBREAK:
		plain_put(p, "\n");
		break;
	case CMARK_NODE_CODE_BLOCK:	/* indented, its last LF left out */
		buf_init(&b);
		buf_replace(&b, cmark_node_get_literal(node), "\n", "\n    ");
		if (b.len >= 5 && strcmp(b.data + b.len - 5, "\n    ") == 0)
			b.data[b.len -= 5] = '\0';
		plain_put(p, "    ");
		plain_put(p, b.data != NULL ? b.data : "");
		buf_free(&b);
		plain_end_block(p, 1);
		break;
	case CMARK_NODE_THEMATIC_BREAK:
		plain_put(p, "---");
		plain_end_block(p, 1);
		break;
	case CMARK_NODE_PARAGRAPH:
	case CMARK_NODE_HEADING:
		if (!entering)
			plain_end_block(p, !plain_tight(node));
		break;
	case CMARK_NODE_LIST:
		if (!entering)
			plain_end_block(p, 1);
		break;
	case CMARK_NODE_ITEM:
	case CMARK_NODE_BLOCK_QUOTE:
		buf_init(&b);
		if (cmark_node_get_type(node) == CMARK_NODE_ITEM)
			plain_bullet(&b, node);
		else
			buf_puts(&b, "> ");
		if (entering) {
			plain_end_block(p, 0);
			plain_put(p, b.data);
			p->bol = 0;
			/* The item's further lines line up with its text. */
			for (size_t i = 0; i < b.len; i++)
				buf_putc(&p->prefix, b.data[i] == '>' ? '>' : ' ');
		} else {
			p->prefix.len -= b.len;
			plain_end_block(p, cmark_node_get_type(node) ==
			    CMARK_NODE_BLOCK_QUOTE);
		}
		buf_free(&b);
		break;
	case CMARK_NODE_LINK:
	case CMARK_NODE_IMAGE:
		url = cmark_node_get_url(node);
		if (!entering && url != NULL && *url != '\0') {
			plain_put(p, " (");
			plain_put(p, url);
			plain_put(p, ")");
		}
		break;
	default:	/* emphasis marks and raw HTML are left out */
		break;
	}
}

char *
md_plain(const char *md)
{
	struct plain	 p = { .bol = 1 };
	struct buf	 shown;
	cmark_node	*doc;
	cmark_iter	*it;
	cmark_event_type ev;

	buf_init(&p.out);
	buf_init(&p.prefix);
	md = md_shown(&shown, md);
	doc = cmark_parse_document(md, strlen(md), MD_OPTS);
	if (doc != NULL && (it = cmark_iter_new(doc)) != NULL) {
		while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE)
			plain_node(&p, cmark_iter_get_node(it),
			    ev == CMARK_EVENT_ENTER);
		cmark_iter_free(it);
	}
	if (doc != NULL)
		cmark_node_free(doc);
	buf_free(&shown);
	buf_free(&p.prefix);
	/* No blank line at the end. */
	while (p.out.len > 0 && p.out.data[p.out.len - 1] == '\n')
		p.out.data[--p.out.len] = '\0';
	return p.out.data != NULL ? buf_take(&p.out) : xstrdup("");
}
