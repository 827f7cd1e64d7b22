/* tmpl.c: a small logic-less template engine. Templates are read and
 * compiled into node lists once, at start; rendering walks the nodes. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

enum ntype { N_TEXT, N_VAR, N_RAW, N_IF, N_UNLESS, N_END };

struct node {
	enum ntype	 type;
	const char	*text;		/* N_TEXT: points into src */
	size_t		 len;
	char		*name;		/* variables and sections */
	unsigned	 hash;		/* of name: see tv_hash */
	size_t		 end;		/* sections: index of their N_END */
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

/* Returns the slot of key (hash h) in tv's index: the one that holds it,
 * or the free one where it would go. The index is never more than half
 * full, so the probe ends. */
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

/* Returns the value of key, whose hash is h, or NULL. */
static const char *
tv_lookup(const struct tvars *tv, const char *key, unsigned h)
{
	size_t i;

	if (tv == NULL)
		return NULL;
	i = tv_slot(tv, key, h);
	return tv->slot[i] != 0 ? tv->v[tv->slot[i] - 1u].val : NULL;
}

void
tv_set(struct tvars *tv, const char *key, const char *val)
{
	unsigned	h = tv_hash(key);
	size_t		i = tv_slot(tv, key, h);

	if (tv->slot[i] != 0) {
		tv->v[tv->slot[i] - 1u].val = val;
		return;
	}
	if (tv->n == TVARS_MAX) {
		log_msg("template variables full: %s dropped", key);
		return;
	}
	tv->v[tv->n].key = key;
	tv->v[tv->n].val = val;
	tv->v[tv->n].hash = h;
	tv->n++;
	tv->slot[i] = (unsigned char)tv->n;
}

const char *
tv_get(const struct tvars *tv, const char *key)
{
	return tv_lookup(tv, key, tv_hash(key));
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
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' &&
		    s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
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
		else if (*inner == '#' || *inner == '^' || *inner == '/') {
			type = *inner == '#' ? N_IF : *inner == '^' ?
			    N_UNLESS : N_END;
			inner++;
		}
		while (*inner == ' ')
			inner++;
		nlen = (size_t)(close - inner);
		while (nlen > 0 && inner[nlen - 1] == ' ')
			nlen--;
		if (!valid_name(inner, nlen)) {
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
			return 1;
		}
	tmpls = xrealloc(tmpls, (ntmpls + 1) * sizeof(*tmpls));
	tmpls[ntmpls++] = t;
	return 1;
}

/* Returns 1 if file name ends with a template extension. */
static int
is_template(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".html")) ||
	    (n > 4 && !strcmp(name + n - 4, ".txt")));
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

int
tmpl_load(const char *dir, char *err, size_t errsz)
{
	struct buf	mail;
	int		ok;

	if (!load_dir(dir, "", err, errsz))
		return 0;
	buf_init(&mail);
	buf_printf(&mail, "%s/mail", dir);
	ok = load_dir(mail.data, "mail/", err, errsz);
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

/* Returns the template called name, or NULL. (Comparing hashes first
 * spares a strcmp with each of the thirty-odd templates.) */
static const struct tmpl *
tmpl_find(const char *name)
{
	unsigned h = tv_hash(name);

	for (size_t i = 0; i < ntmpls; i++)
		if (tmpls[i].hash == h && strcmp(tmpls[i].name, name) == 0)
			return &tmpls[i];
	return NULL;
}

int
tmpl_exists(const char *name)
{
	return tmpl_find(name) != NULL;
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
	const struct tmpl *t = tmpl_find(name);

	if (t == NULL) {
		log_msg("no template %s", name);
		return 0;
	}
	for (size_t i = 0; i < t->nnodes; i++) {
		const struct node	*n = &t->nodes[i];
		const char		*v;

		switch (n->type) {
		case N_TEXT:
			buf_append(out, n->text, n->len);
			break;
		case N_VAR:
			if ((v = tv_lookup(tv, n->name, n->hash)) == NULL)
				break;
			if (esc != NULL)
				esc(out, v);
			else
				buf_puts(out, v);
			break;
		case N_RAW:
			if ((v = tv_lookup(tv, n->name, n->hash)) != NULL)
				buf_puts(out, v);
			break;
		case N_IF:
		case N_UNLESS:
			v = tv_lookup(tv, n->name, n->hash);
			if ((v != NULL && *v != '\0') != (n->type == N_IF))
				i = n->end;
			break;
		case N_END:
			break;
		}
	}
	return 1;
}
