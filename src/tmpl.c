/* tmpl.c: a small logic-less template engine. Templates are read and
 * compiled into node lists once, at start; rendering walks the nodes. */
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

enum ntype {
	N_TEXT, N_VAR, N_RAW, N_IF, N_UNLESS, N_END,
	N_PARTIAL,	/* {{> file}} */
	N_DPARTIAL	/* {{>*name}}: the template named by name's value */
};

/* How deep partials may include partials: past it, or when a template
 * would include itself (directly or not), the partial is left out and
 * logged. */
#define PARTIAL_DEPTH	8

struct node {
	enum ntype	 type;
	const char	*text;		/* N_TEXT: points into src */
	size_t		 len;
	char		*name;		/* variables and sections */
	unsigned	 hash;		/* of name: see tv_hash */
	size_t		 end;		/* sections: index of their N_END */
	size_t		 target;	/* N_PARTIAL: 1 + its index in tmpls;
					   0: no such template (tmpl_link) */
};

struct tmpl {
	char		*name;		/* e.g. "home.html", "mail/answer.txt" */
	unsigned	 hash;		/* of name: see tv_hash */
	char		*src;
	struct node	*nodes;
	size_t		 nnodes;
};

static struct tmpl	*tmpls;
static size_t		 ntmpls;

/* Returns the hash of a variable name (FNV-1a). */
static unsigned
tv_hash(const char *key)
{
	unsigned h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

/* A block of the arena that rows and further variable blocks come from;
 * rows are bumped out of blocks of TMEM_BLOCK bytes, so a list of rows
 * costs one malloc per few rows, and tv_free frees them all. */
#define TMEM_BLOCK	16384

struct tmem {
	struct tmem	*next;
	size_t		 used, cap;
	max_align_t	 data[];
};

/* Returns n bytes from the arena of tv's owner (aborts when out of
 * memory, as xmalloc does). */
static void *
tv_alloc(struct tvars *tv, size_t n)
{
	struct tvars	*o = tv->owner != NULL ? tv->owner : tv;
	struct tmem	*m = o->mem;
	void		*p;

	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
	    sizeof(max_align_t);
	if (m == NULL || m->cap - m->used < n) {
		size_t cap = n > TMEM_BLOCK ? n : TMEM_BLOCK;

		m = xmalloc(sizeof(*m) + cap);
		m->next = o->mem;
		m->used = 0;
		m->cap = cap;
		o->mem = m;
	}
	p = (char *)m->data + m->used;
	m->used += n;
	return p;
}

/* Returns a new, empty block of variables from tv's arena. The entries
 * themselves are left as they are: n says none is in use. */
static struct tvars *
tv_new(struct tvars *tv)
{
	struct tvars *b = tv_alloc(tv, sizeof(*b));

	memset(b->slot, 0, sizeof(b->slot));
	b->n = 0;
	b->more = b->next = NULL;
	b->outer = NULL;
	b->owner = tv->owner != NULL ? tv->owner : tv;
	b->mem = NULL;
	return b;
}

void
tv_free(struct tvars *tv)
{
	struct tmem *m, *next;

	for (m = tv->mem; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
	tv->mem = NULL;
	tv->more = NULL;
	tv->n = 0;
	memset(tv->slot, 0, sizeof(tv->slot));
}

/* Returns the slot of key (hash h) in one block's index: the one that
 * holds it, or the free one where it would go. The index is never more
 * than half full, so the probe ends. */
static size_t
tv_slot(const struct tvars *tv, const char *key, unsigned h)
{
	size_t i = h & (TVARS_SLOTS - 1);

	while (tv->slot[i] != 0) {
		size_t k = tv->slot[i] - 1u;

		if (tv->v[k].hash == h && (tv->v[k].key == key ||
		    strcmp(tv->v[k].key, key) == 0))
			break;
		i = (i + 1) & (TVARS_SLOTS - 1);
	}
	return i;
}

/* Returns the variable key, whose hash is h, in tv, its further blocks
 * and its outer ones; or NULL. */
static const struct tvar *
tv_lookup(const struct tvars *tv, const char *key, unsigned h)
{
	for (; tv != NULL; tv = tv->outer)
		for (const struct tvars *b = tv; b != NULL; b = b->more) {
			size_t i = tv_slot(b, key, h);

			if (b->slot[i] != 0)
				return &b->v[b->slot[i] - 1u];
		}
	return NULL;
}

/* Returns tv's own variable key (not an outer one's), added if new. */
static struct tvar *
tv_entry(struct tvars *tv, const char *key)
{
	unsigned	 h = tv_hash(key);
	struct tvars	*b = tv;
	size_t		 i;
	struct tvar	*e;

	for (;;) {
		i = tv_slot(b, key, h);
		if (b->slot[i] != 0)
			return &b->v[b->slot[i] - 1u];
		if (b->more == NULL)
			break;
		b = b->more;
	}
	if (b->n == TVARS_MAX) {
		b->more = tv_new(tv);
		b = b->more;
		i = tv_slot(b, key, h);
	}
	e = &b->v[b->n++];
	e->key = key;
	e->kind = TV_TEXT;
	e->u.text = NULL;
	e->hash = h;
	b->slot[i] = (unsigned char)b->n;
	return e;
}

void
tv_set(struct tvars *tv, const char *key, const char *val)
{
	struct tvar *e = tv_entry(tv, key);

	e->kind = TV_TEXT;
	e->u.text = val;
}

void
tv_set_fn(struct tvars *tv, const char *key, tv_fn fn, void *arg)
{
	struct tvar *e = tv_entry(tv, key);

	e->kind = TV_FN;
	e->fn = fn;
	e->u.arg = arg;
}

const char *
tv_get(const struct tvars *tv, const char *key)
{
	const struct tvar *e = tv_lookup(tv, key, tv_hash(key));

	return e != NULL && e->kind == TV_TEXT ? e->u.text : NULL;
}

struct tvars *
tv_row(struct tvars *tv, const char *key)
{
	struct tvar	*e = tv_entry(tv, key);
	struct tvars	*row = tv_new(tv);
	struct tlist	*l;

	if (e->kind != TV_LIST) {
		e->kind = TV_LIST;
		e->u.list = l = tv_alloc(tv, sizeof(*l));
		l->first = l->last = NULL;
		l->n = 0;
	}
	l = e->u.list;
	if (l->last != NULL)
		l->last->next = row;
	else
		l->first = row;
	l->last = row;
	l->n++;
	return row;
}

/* Returns the line number of position p in src. */
static int
lineof(const char *src, const char *p)
{
	int n = 1;

	for (; src < p; src++)
		if (*src == '\n')
			n++;
	return n;
}

/* Appends a node to t. */
static struct node *
node_add(struct tmpl *t, enum ntype type)
{
	struct node *n;

	t->nodes = xrealloc(t->nodes, (t->nnodes + 1) * sizeof(*t->nodes));
	n = &t->nodes[t->nnodes++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	return n;
}

/* Returns 1 if the n bytes at s make a valid variable name. */
static int
valid_name(const char *s, size_t n)
{
	return n > 0 && n <= 64 && ascii_word(s, n, "_.");
}

/* Frees one template's memory. */
static void
tmpl_clear(struct tmpl *t)
{
	for (size_t i = 0; i < t->nnodes; i++)
		free(t->nodes[i].name);
	free(t->nodes);
	free(t->src);
	free(t->name);
}

/* Returns the type of the {{...}} tag whose inside starts at *inner (not
 * a raw one or a comment), and moves *inner past its sigil. */
static enum ntype
tag_type(const char **inner)
{
	const char	*s = *inner;
	enum ntype	 type = N_VAR;

	if (*s == '#' || *s == '^' || *s == '/') {
		type = *s == '#' ? N_IF : *s == '^' ? N_UNLESS : N_END;
		s++;
	} else if (*s == '>') {
		s += 1 + strspn(s + 1, " ");
		type = N_PARTIAL;
		if (*s == '*') {
			type = N_DPARTIAL;
			s++;
		}
	}
	*inner = s;
	return type;
}

/* Compiles t->src into nodes; returns 1, or 0 with a message. */
static int
tmpl_compile(struct tmpl *t, char *err, size_t errsz)
{
	const char	*p = t->src, *open;
	size_t		 stack[32], depth = 0;

	while ((open = strstr(p, "{{")) != NULL) {
		const char	*inner, *close;
		int		 triple = open[2] == '{';
		enum ntype	 type = N_VAR;
		struct node	*n;
		size_t		 nlen;

		if (open > p) {
			n = node_add(t, N_TEXT);
			n->text = p;
			n->len = (size_t)(open - p);
		}
		inner = open + (triple ? 3 : 2);
		close = strstr(inner, triple ? "}}}" : "}}");
		if (close == NULL) {
			snprintf(err, errsz, "%s:%d: unclosed tag", t->name,
			    lineof(t->src, open));
			return 0;
		}
		p = close + (triple ? 3 : 2);
		if (triple)
			type = N_RAW;
		else if (*inner == '!')
			continue;
		else
			type = tag_type(&inner);
		while (*inner == ' ')
			inner++;
		nlen = (size_t)(close - inner);
		while (nlen > 0 && inner[nlen - 1] == ' ')
			nlen--;
		/* A partial may name a template in a folder (mail/...). */
		if (type == N_PARTIAL ? !ascii_word(inner, nlen, "_./") ||
		    nlen == 0 || nlen > 64 : !valid_name(inner, nlen)) {
			snprintf(err, errsz, "%s:%d: bad tag name", t->name,
			    lineof(t->src, open));
			return 0;
		}
		n = node_add(t, type);
		n->name = xstrndup(inner, nlen);
		n->hash = tv_hash(n->name);
		if (type == N_IF || type == N_UNLESS) {
			if (depth == ARRAY_LEN(stack)) {
				snprintf(err, errsz, "%s:%d: sections nested "
				    "too deep", t->name, lineof(t->src, open));
				return 0;
			}
			stack[depth++] = t->nnodes - 1;
		} else if (type == N_END) {
			if (depth == 0 || strcmp(t->nodes[stack[depth - 1]].name,
			    n->name) != 0) {
				snprintf(err, errsz, "%s:%d: {{/%s}} closes no "
				    "open section", t->name,
				    lineof(t->src, open), n->name);
				return 0;
			}
			t->nodes[stack[--depth]].end = t->nnodes - 1;
		}
	}
	if (*p != '\0') {
		struct node *n = node_add(t, N_TEXT);

		n->text = p;
		n->len = strlen(p);
	}
	if (depth > 0) {
		snprintf(err, errsz, "%s: section {{#%s}} is never closed",
		    t->name, t->nodes[stack[depth - 1]].name);
		return 0;
	}
	return 1;
}

static const struct tmpl *tmpl_find_hashed(const char *, unsigned);

/* Points every {{> file}} of every template at its template, so that a
 * render finds it without a search (a partial in a list's row is
 * rendered once per row). */
static void
tmpl_link(void)
{
	for (size_t i = 0; i < ntmpls; i++)
		for (size_t k = 0; k < tmpls[i].nnodes; k++) {
			struct node		*n = &tmpls[i].nodes[k];
			const struct tmpl	*p;

			if (n->type != N_PARTIAL)
				continue;
			p = tmpl_find_hashed(n->name, n->hash);
			n->target = p != NULL ? (size_t)(p - tmpls) + 1 : 0;
		}
}

int
tmpl_add(const char *name, const char *text, char *err, size_t errsz)
{
	struct tmpl t;

	memset(&t, 0, sizeof(t));
	t.name = xstrdup(name);
	t.hash = tv_hash(name);
	t.src = xstrdup(text);
	if (!tmpl_compile(&t, err, errsz)) {
		tmpl_clear(&t);
		return 0;
	}
	for (size_t i = 0; i < ntmpls; i++)
		if (strcmp(tmpls[i].name, name) == 0) {
			tmpl_clear(&tmpls[i]);
			tmpls[i] = t;
			tmpl_link();
			return 1;
		}
	tmpls = xrealloc(tmpls, (ntmpls + 1) * sizeof(*tmpls));
	tmpls[ntmpls++] = t;
	tmpl_link();
	return 1;
}

/* Returns 1 if file name ends with a template extension. */
static int
is_template(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".html")) ||
	    (n > 4 && (!strcmp(name + n - 4, ".txt") ||
	    !strcmp(name + n - 4, ".svg"))));
}

/* Loads the templates of one directory, names prefixed by prefix. */
static int
load_dir(const char *dir, const char *prefix, char *err, size_t errsz)
{
	DIR		*d;
	struct dirent	*de;
	int		 ok = 1;

	if ((d = opendir(dir)) == NULL) {
		if (*prefix != '\0')
			return 1;	/* an optional subfolder */
		snprintf(err, errsz, "%s: cannot open the template folder",
		    dir);
		return 0;
	}
	while (ok && (de = readdir(d)) != NULL) {
		struct buf	 path, name;
		char		*text;

		if (!is_template(de->d_name))
			continue;
		buf_init(&path);
		buf_init(&name);
		buf_printf(&path, "%s/%s", dir, de->d_name);
		buf_printf(&name, "%s%s", prefix, de->d_name);
		if ((text = read_file(path.data, NULL)) == NULL) {
			snprintf(err, errsz, "%s: cannot read", path.data);
			ok = 0;
		} else
			ok = tmpl_add(name.data, text, err, errsz);
		free(text);
		buf_free(&path);
		buf_free(&name);
	}
	closedir(d);
	return ok;
}

/* Checks that each email's text template, mail/KIND.txt, has its HTML
 * template, mail/KIND.html (mail.c renders both, and refuses to send
 * one without the other). Returns 1, or 0 with a message in err. */
static int
mail_pairs(const char *dir, char *err, size_t errsz)
{
	for (size_t i = 0; i < ntmpls; i++) {
		const char	*name = tmpls[i].name;
		size_t		 n = strlen(name);
		struct buf	 html;
		int		 ok;

		if (strncmp(name, "mail/", 5) != 0 || n < 4 ||
		    strcmp(name + n - 4, ".txt") != 0)
			continue;
		buf_init(&html);
		buf_printf(&html, "%.*s.html", (int)(n - 4), name);
		if (!(ok = tmpl_exists(html.data)))
			snprintf(err, errsz, "%s/%s: missing (every email has a "
			    "text and an HTML template)", dir, html.data);
		buf_free(&html);
		if (!ok)
			return 0;
	}
	return 1;
}

int
tmpl_load(const char *dir, char *err, size_t errsz)
{
	struct buf	mail;
	int		ok;

	if (!load_dir(dir, "", err, errsz))
		return 0;
	buf_init(&mail);
	buf_printf(&mail, "%s/mail", dir);
	ok = load_dir(mail.data, "mail/", err, errsz) &&
	    mail_pairs(dir, err, errsz);
	buf_free(&mail);
	return ok;
}

void
tmpl_free(void)
{
	for (size_t i = 0; i < ntmpls; i++)
		tmpl_clear(&tmpls[i]);
	free(tmpls);
	tmpls = NULL;
	ntmpls = 0;
}

/* Returns the template called name, whose hash is h, or NULL: hashes are
 * compared first, sparing a strcmp with each of the templates. */
static const struct tmpl *
tmpl_find_hashed(const char *name, unsigned h)
{
	for (size_t i = 0; i < ntmpls; i++)
		if (tmpls[i].hash == h && strcmp(tmpls[i].name, name) == 0)
			return &tmpls[i];
	return NULL;
}

/* Returns the template called name, or NULL. */
static const struct tmpl *
tmpl_find(const char *name)
{
	return tmpl_find_hashed(name, tv_hash(name));
}

int
tmpl_exists(const char *name)
{
	return tmpl_find(name) != NULL;
}

/* The variables in scope while rendering: a row, then the scopes that
 * enclose it, out to the page's variables. */
struct scope {
	const struct tvars	*tv;
	const struct scope	*up;
};

/* Returns the variable name (hash h) of the innermost scope that has
 * it, or NULL. */
static const struct tvar *
scope_lookup(const struct scope *sc, const char *name, unsigned h)
{
	const struct tvar *e;

	for (; sc != NULL; sc = sc->up)
		if ((e = tv_lookup(sc->tv, name, h)) != NULL)
			return e;
	return NULL;
}

/* Returns e's text (computing it if need be), or NULL. */
static const char *
tvar_text(const struct tvar *e)
{
	if (e == NULL)
		return NULL;
	return e->kind == TV_FN ? e->fn(e->u.arg) : e->kind == TV_TEXT ?
	    e->u.text : NULL;
}

/* Returns 1 if e is set and not empty: a non-empty text or list. */
static int
tvar_true(const struct tvar *e)
{
	const char *v;

	if (e != NULL && e->kind == TV_LIST)
		return e->u.list->n > 0;
	return (v = tvar_text(e)) != NULL && *v != '\0';
}

/* The templates being rendered: the one whose nodes are walked, then
 * the ones that included it, out to the one asked for. */
struct chain {
	const struct tmpl	*t;
	const struct chain	*up;
	int			 depth;
};

static int render_nodes(struct buf *, const struct chain *, size_t, size_t,
    const struct scope *, tmpl_escaper);

/* Renders the partial p, called name (NULL: there is none), inside the
 * templates of ch. Returns 1, or 0 (logged) if it or one it includes is
 * missing, includes itself or nests too deep. */
static int
render_partial(struct buf *out, const struct tmpl *p, const char *name,
    const struct scope *sc, tmpl_escaper esc, const struct chain *ch)
{
	struct chain in = { p, ch, ch->depth + 1 };

	if (in.t == NULL) {
		log_msg("no template %s for a partial", name);
		return 0;
	}
	for (; ch != NULL; ch = ch->up)
		if (ch->t == in.t) {
			log_msg("template %s includes itself", name);
			return 0;
		}
	if (in.depth > PARTIAL_DEPTH) {
		log_msg("template %s: partials nested too deep", name);
		return 0;
	}
	return render_nodes(out, &in, 0, in.t->nnodes, sc, esc);
}

/* Renders nodes [from, to) of the template ch->t, looking names up in
 * sc. Returns 1, or 0 if a partial could not be rendered (the rest is). */
static int
render_nodes(struct buf *out, const struct chain *ch, size_t from, size_t to,
    const struct scope *sc, tmpl_escaper esc)
{
	const struct tmpl	*t = ch->t;
	int			 ok = 1;

	for (size_t i = from; i < to; i++) {
		const struct node	*n = &t->nodes[i];
		const struct tvar	*e = NULL;
		const char		*v;

		if (n->type == N_TEXT) {
			buf_append(out, n->text, n->len);
			continue;
		}
		/* Every tag but a partial or an end names a variable. */
		if (n->type != N_END && n->type != N_PARTIAL)
			e = scope_lookup(sc, n->name, n->hash);
		switch (n->type) {
		case N_VAR:
		case N_RAW:
			if ((v = tvar_text(e)) == NULL)
				break;
			if (esc != NULL && n->type == N_VAR)
				esc(out, v);
			else
				buf_puts(out, v);
			break;
		case N_IF:
			if (e != NULL && e->kind == TV_LIST) {
				for (const struct tvars *row = e->u.list->first;
				    row != NULL; row = row->next) {
					struct scope in = { row, sc };

					ok &= render_nodes(out, ch, i + 1,
					    n->end, &in, esc);
				}
				i = n->end;
			} else if (!tvar_true(e))
				i = n->end;
			break;
		case N_UNLESS:
			if (tvar_true(e))
				i = n->end;
			break;
		case N_PARTIAL:
			ok &= render_partial(out, n->target != 0 ?
			    &tmpls[n->target - 1] : NULL, n->name, sc, esc,
			    ch);
			break;
		case N_DPARTIAL:
			if ((v = tvar_text(e)) != NULL)
				ok &= render_partial(out, tmpl_find(v), v, sc,
				    esc, ch);
			break;
		case N_TEXT:
		case N_END:
			break;
		}
	}
	return ok;
}

int
tmpl_render(struct buf *out, const char *name, const struct tvars *tv)
{
	return tmpl_render_esc(out, name, tv, html_escape);
}

int
tmpl_render_esc(struct buf *out, const char *name, const struct tvars *tv,
    tmpl_escaper esc)
{
	struct chain	ch = { tmpl_find(name), NULL, 0 };
	struct scope	sc = { tv, NULL };

	if (ch.t == NULL) {
		log_msg("no template %s", name);
		return 0;
	}
	return render_nodes(out, &ch, 0, ch.t->nnodes, tv != NULL ? &sc :
	    NULL, esc);
}
