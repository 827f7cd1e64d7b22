/* offer.c: the landing page's "About me", sample question and answer,
 * and proof (approved testimonials, the share of happy ratings). What
 * comes from the settings is made once at start (offer_load): the photo
 * checked and measured, the texts split, the sample answer rendered by
 * cmark; a request only hands it to the template. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "http.h"
#include "image.h"
#include "markdown.h"
#include "offer.h"
#include "tmpl.h"
#include "util.h"

/* A text split into parts (paragraphs, or list items). */
struct parts {
	char	**v;
	size_t	  n;
};

static struct {
	struct parts	 bio, credentials, question;
	char		*photo_url;	/* "/static/NAME", or NULL */
	char		 photo_w[12], photo_h[12];
	char		*answer_html;	/* cmark's HTML, or NULL */
} offer;

/* Adds the text of s[0..n), blanks trimmed, to p unless it is empty. */
static void
parts_add(struct parts *p, const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\n'))
		n--;
	if (n == 0)
		return;
	p->v = realloc(p->v, (p->n + 1) * sizeof(*p->v));
	if (p->v == NULL) {
		fprintf(stderr, "out of memory\n");
		abort();
	}
	p->v[p->n++] = xstrndup(s, n);
}

/* Returns the text of a one-line setting with each "\n" (backslash, n)
 * made a line break (to free): a paragraph break is "\n\n". */
static char *
unfold(const char *v)
{
	struct buf b;

	buf_init(&b);
	for (; *v != '\0'; v++) {
		if (v[0] == '\\' && v[1] == 'n') {
			buf_putc(&b, '\n');
			v++;
		} else
			buf_putc(&b, *v);
	}
	return buf_take(&b);
}

/* Splits setting v into paragraphs at blank lines ("\n\n"). */
static void
split_paragraphs(struct parts *p, const char *v)
{
	char		*text = unfold(v);
	const char	*s = text, *e;

	while ((e = strstr(s, "\n\n")) != NULL) {
		parts_add(p, s, (size_t)(e - s));
		s = e + 2;
	}
	parts_add(p, s, strlen(s));
	free(text);
}

/* Splits v into items at ";". */
static void
split_list(struct parts *p, const char *v)
{
	const char *e;

	while ((e = strchr(v, ';')) != NULL) {
		parts_add(p, v, (size_t)(e - v));
		v = e + 1;
	}
	parts_add(p, v, strlen(v));
}

static void
parts_free(struct parts *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	p->v = NULL;
	p->n = 0;
}

/* Returns the static folder's path to free: "static" beside
 * template_dir (www/templates: www/static; $(pkgdatadir)/templates:
 * $(pkgdatadir)/static, where make install puts both). */
static char *
static_dir(void)
{
	const char	*t = conf.template_dir;
	size_t		 n = strlen(t);
	struct buf	 b;

	while (n > 1 && t[n - 1] == '/')
		n--;
	while (n > 0 && t[n - 1] != '/')
		n--;
	buf_init(&b);
	if (n == 0)
		buf_puts(&b, "static");
	else {
		buf_append(&b, t, n);
		buf_puts(&b, "static");
	}
	return buf_take(&b);
}

/* Checks consultant_photo (if set): the file is there and is an image
 * whose size its header gives. Returns 1, or 0 with a message in err. */
static int
photo_load(char *err, size_t errsz)
{
	char		*dir, *path, *data;
	const char	*why;
	size_t		 len;
	int		 w, h;

	if (*conf.consultant_photo == '\0')
		return 1;
	dir = static_dir();
	path = xmalloc(strlen(dir) + strlen(conf.consultant_photo) + 2);
	sprintf(path, "%s/%s", dir, conf.consultant_photo);
	free(dir);
	if ((data = read_file(path, &len)) == NULL) {
		snprintf(err, errsz, "consultant_photo: cannot read %s (the "
		    "photo goes in the static folder, beside template_dir)",
		    path);
		free(path);
		return 0;
	}
	why = image_size((const unsigned char *)data, len, &w, &h);
	free(data);
	if (why != NULL) {
		snprintf(err, errsz, "consultant_photo: %s: %s", path, why);
		free(path);
		return 0;
	}
	free(path);
	snprintf(offer.photo_w, sizeof(offer.photo_w), "%d", w);
	snprintf(offer.photo_h, sizeof(offer.photo_h), "%d", h);
	offer.photo_url = xmalloc(strlen(conf.consultant_photo) + 9);
	sprintf(offer.photo_url, "/static/%s", conf.consultant_photo);
	return 1;
}

int
offer_load(char *err, size_t errsz)
{
	char *md;

	offer_free();
	if (!photo_load(err, errsz))
		return 0;
	split_paragraphs(&offer.bio, conf.consultant_bio);
	split_list(&offer.credentials, conf.consultant_credentials);
	/* Shown only when both are set. */
	if (*conf.sample_question != '\0' && *conf.sample_answer != '\0') {
		split_paragraphs(&offer.question, conf.sample_question);
		md = unfold(conf.sample_answer);
		offer.answer_html = md_render(md);
		free(md);
	}
	return 1;
}

static void	proof_clear(void);

void
offer_free(void)
{
	proof_clear();
	parts_free(&offer.bio);
	parts_free(&offer.credentials);
	parts_free(&offer.question);
	free(offer.photo_url);
	free(offer.answer_html);
	offer.photo_url = offer.answer_html = NULL;
}

/* Adds the parts of p to tv as list key, each row's "text". */
static void
parts_vars(struct tvars *tv, const char *key, const struct parts *p)
{
	for (size_t i = 0; i < p->n; i++)
		tv_set(tv_row(tv, key), "text", p->v[i]);
}

void
offer_vars(struct tvars *tv)
{
	parts_vars(tv, "bio", &offer.bio);
	parts_vars(tv, "credentials", &offer.credentials);
	tv_set(tv, "has_credentials", offer.credentials.n > 0 ? "1" : "");
	if (offer.photo_url != NULL) {
		tv_set(tv, "photo_url", offer.photo_url);
		tv_set(tv, "photo_width", offer.photo_w);
		tv_set(tv, "photo_height", offer.photo_h);
	}
	tv_set(tv, "has_about", offer.bio.n > 0 || offer.credentials.n > 0 ||
	    offer.photo_url != NULL ? "1" : "");
	if (offer.answer_html != NULL) {
		parts_vars(tv, "sample_question", &offer.question);
		tv_set(tv, "sample_answer_html", offer.answer_html);
		tv_set(tv, "has_sample", "1");
	}
}

/* The proof as a worker last read it (proof_read), kept for
 * proof_cache_seconds: GET / is the page most often asked for, and the
 * read transaction alone (its locks) was a third of its cost (bench/
 * README.md, fix 25). A quote approved or a rating given shows within
 * that time. */
static struct {
	double	 read_at;		/* now_ms() (monotonic, not the test
					 * clock); 0: never */
	int64_t	 yes, all;		/* the ratings */
	int	 n;			/* quotes */
	char	*name[OFFER_QUOTES], *business[OFFER_QUOTES],
		*sentence[OFFER_QUOTES];
} proof;

/* Forgets the quotes of the proof. */
static void
proof_clear(void)
{
	for (int i = 0; i < proof.n; i++) {
		free(proof.name[i]);
		free(proof.business[i]);
		free(proof.sentence[i]);
	}
	proof.n = 0;
	proof.read_at = 0;
}

/* Reads the proof into the cache: one statement, whose one snapshot is
 * its read transaction. Returns 1, or 0 without the store or on an
 * error (db_step logs it; the cache is then empty). */
static int
proof_read(void)
{
	sqlite3_stmt	*s;
	int		 rc;

	proof_clear();
	proof.yes = proof.all = 0;
	if (db_handle() == NULL || (s = db_stmt(ST_HOME_PROOF)) == NULL ||
	    !db_bind(s, "i", (int64_t)OFFER_QUOTES))
		return 0;
	if ((rc = db_step(ST_HOME_PROOF)) == DB_ROW) {
		proof.yes = sqlite3_column_int64(s, 0);
		proof.all = sqlite3_column_int64(s, 1);
	}
	while (rc == DB_ROW && (rc = db_step(ST_HOME_PROOF)) == DB_ROW &&
	    proof.n < OFFER_QUOTES) {
		proof.name[proof.n] = xstrdup(db_text(s, 0));
		proof.business[proof.n] = xstrdup(db_text(s, 1));
		proof.sentence[proof.n] = xstrdup(db_text(s, 2));
		proof.n++;
	}
	db_done(ST_HOME_PROOF);
	if (rc == DB_ERROR) {
		proof_clear();
		proof.yes = proof.all = 0;
		return 0;
	}
	proof.read_at = now_ms();
	return 1;
}

int
offer_proof_vars(struct request *r, struct tvars *tv)
{
	if ((proof.read_at == 0 || conf.proof_cache_seconds == 0 ||
	    now_ms() - proof.read_at >=
	    1000.0 * (double)conf.proof_cache_seconds)
	    && !proof_read())
		return 0;
	/* The share of "yes" among all, rounded down, once there are at
	 * least happy_min_ratings. */
	if (proof.all > 0 && proof.all >= conf.happy_min_ratings)
		tv_set(tv, "happy_share", req_printf(r, "%lld%% of clients "
		    "were happy with their answer", (long long)(proof.yes *
		    100 / proof.all)));
	for (int i = 0; i < proof.n; i++) {
		struct tvars *row = tv_row(tv, "quotes");

		/* The cache outlives the request: the template only reads. */
		tv_set(row, "name", proof.name[i]);
		tv_set(row, "business", proof.business[i]);
		tv_set(row, "sentence", proof.sentence[i]);
	}
	tv_set(tv, "has_proof", proof.n > 0 ||
	    tv_get(tv, "happy_share") != NULL ? "1" : "");
	return 1;
}
