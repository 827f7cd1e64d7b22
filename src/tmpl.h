/* tmpl.h: templates loaded once per process and rendered with values.
 *
 * Syntax: {{name}} is replaced by the value, HTML-escaped (safe in text
 * and in quoted attributes); {{{name}}} inserts it raw, which is only for
 * HTML the program made itself; {{#name}}...{{/name}} keeps its inside
 * when name is set and not empty; {{^name}}...{{/name}} when it is not;
 * {{! comment }} is dropped. */
#ifndef PMB_TMPL_H
#define PMB_TMPL_H

#include "util.h"

#define TVARS_MAX	64
#define TVARS_SLOTS	128	/* hash slots: a power of two, 2 x TVARS_MAX */

/* A page's variables, in the order set, with a hash index over them so
 * that setting and looking one up costs about one string compare.
 * Initialise with { .n = 0 } (everything zero). */
struct tvars {
	struct {
		const char	*key;
		const char	*val;
		unsigned	 hash;
	} v[TVARS_MAX];
	unsigned char	slot[TVARS_SLOTS];	/* 1 + index into v; 0: free */
	size_t		n;
};

/* Loads every *.html and *.txt under dir (and dir/mail); returns 1, or 0
 * with a message in err naming the file and line. */
int	 tmpl_load(const char *dir, char *err, size_t errsz);
/* Compiles one template from text (for tests); as tmpl_load. */
int	 tmpl_add(const char *name, const char *text, char *err, size_t errsz);
/* Frees every template. */
void	 tmpl_free(void);
/* Returns 1 if a template called name is loaded. */
int	 tmpl_exists(const char *name);
/* Renders template name with vars into out; returns 1, or 0 if there is
 * no such template. */
int	 tmpl_render(struct buf *out, const char *name, const struct tvars *);

/* As tmpl_render, but {{name}} goes through esc instead of the HTML
 * escaper (NULL: inserted as it is, for plain text). */
typedef void (*tmpl_escaper)(struct buf *, const char *);
int	 tmpl_render_esc(struct buf *out, const char *name,
	    const struct tvars *, tmpl_escaper esc);

/* Sets key to val (not copied: it must outlive the render). */
void	 tv_set(struct tvars *, const char *key, const char *val);
/* Returns the value of key, or NULL. */
const char *tv_get(const struct tvars *, const char *key);

#endif
