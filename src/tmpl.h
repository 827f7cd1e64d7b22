/* tmpl.h: templates loaded once per process and rendered with values.
 *
 * Syntax: {{name}} is replaced by the value, HTML-escaped (safe in text
 * and in quoted attributes); {{{name}}} inserts it raw, which is only for
 * HTML the program made itself; {{#name}}...{{/name}} keeps its inside
 * when name is set and not empty, and repeats it once per row when name
 * is a list (inside, names are looked up in the row first, then outward);
 * {{^name}}...{{/name}} keeps its inside when name is unset, empty or an
 * empty list; {{> file}} renders the template called file there, with the
 * same variables; {{>*name}} the template whose name is name's value;
 * {{! comment }} is dropped. */
#ifndef PMB_TMPL_H
#define PMB_TMPL_H

#include "util.h"

#define TVARS_MAX	64	/* held in place; more go to a chained block */
#define TVARS_SLOTS	128	/* hash slots: a power of two, 2 x TVARS_MAX */

struct tvars;
struct tlist;
struct tmem;

/* Computes a variable's value when a template uses it (see tv_set_fn). */
typedef const char *(*tv_fn)(void *);

/* One variable: a text, a text computed when used, or a list of rows. */
struct tvar {
	const char	*key;
	union {
		const char	*text;	/* TV_TEXT */
		void		*arg;	/* TV_FN: fn(arg) is the text */
		struct tlist	*list;	/* TV_LIST */
	} u;
	tv_fn		 fn;
	unsigned	 hash;
	enum { TV_TEXT, TV_FN, TV_LIST } kind;
};

/* A list variable: its rows, in the order added. */
struct tlist {
	struct tvars	*first, *last;
	size_t		 n;
};

/* A page's variables, with a hash index over them so that setting and
 * looking one up costs about one string compare. There is no limit:
 * past TVARS_MAX, variables go to a further block. Initialise with
 * { .n = 0 } (everything zero); tv_free releases what rows and further
 * blocks took, all of it from one arena owned by the outermost tvars.
 * outer, if set, is looked in for names that are not here. */
struct tvars {
	struct tvar	 v[TVARS_MAX];
	unsigned char	 slot[TVARS_SLOTS];	/* 1 + index into v; 0: free */
	size_t		 n;
	struct tvars	*more;		/* the next TVARS_MAX variables */
	const struct tvars *outer;
	struct tvars	*owner;		/* holds the arena; NULL: this one */
	struct tvars	*next;		/* the next row of the same list */
	struct tmem	*mem;		/* the arena, in the owner only */
};

/* Loads every *.html, *.svg and *.txt under dir (and dir/mail); returns 1, or 0
 * with a message in err naming the file and line, or the email whose
 * mail/KIND.txt has no mail/KIND.html. */
int	 tmpl_load(const char *dir, char *err, size_t errsz);
/* Compiles one template from text (for tests); as tmpl_load. */
int	 tmpl_add(const char *name, const char *text, char *err, size_t errsz);
/* Frees every template. */
void	 tmpl_free(void);
/* Returns 1 if a template called name is loaded. */
int	 tmpl_exists(const char *name);
/* Renders template name with vars into out; returns 1, or 0 (logged) if
 * there is no such template, or a partial it includes is missing or
 * would include itself (out then holds the rest of the render). */
int	 tmpl_render(struct buf *out, const char *name, const struct tvars *);

/* As tmpl_render, but {{name}} goes through esc instead of the HTML
 * escaper (NULL: inserted as it is, for plain text). */
typedef void (*tmpl_escaper)(struct buf *, const char *);
int	 tmpl_render_esc(struct buf *out, const char *name,
	    const struct tvars *, tmpl_escaper esc);

/* Sets key to val (not copied: it must outlive the render). */
void	 tv_set(struct tvars *, const char *key, const char *val);
/* Sets key to the value fn(arg) returns each time a template uses key,
 * and only then (for a value that costs, or has an effect, such as the
 * CSRF token, whose cookie only a page with a form should set). */
void	 tv_set_fn(struct tvars *, const char *key, tv_fn fn, void *arg);
/* Returns the value of key (looking outer too), or NULL; NULL for a
 * list (and for a computed value, which only a template computes). */
const char *tv_get(const struct tvars *, const char *key);
/* Appends a row to the list called key (making key a list) and returns
 * it, empty, for tv_set; it lives until tv_free of the outermost tvars.
 * key is not copied. */
struct tvars *tv_row(struct tvars *, const char *key);
/* Frees every row and block tv took (tv itself is the caller's); tv is
 * empty afterwards and may be used again. Must not be called on a row. */
void	 tv_free(struct tvars *);

#endif
