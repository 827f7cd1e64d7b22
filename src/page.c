/* page.c: the layout, the variables every page shares, error pages. */
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "currency.h"
#include "page.h"

/* Room made at once for a page's body, and for the layout around it (in
 * bytes; more is made if need be): one allocation for the page, instead
 * of one per doubling from a few hundred bytes. */
#define PAGE_BODY_GUESS	8192
#define LAYOUT_GUESS	2048

/* A figure as text, kept for the process and made again only when the
 * figure changes (the settings are read once, at start). */
struct figure {
	int		 made;
	int64_t		 v;
	struct buf	 text;
};

/* Returns the text of v in f: through fmt, or in decimal if fmt is
 * NULL. */
static const char *
figure_text(struct figure *f, int64_t v, void (*fmt)(struct buf *, int64_t))
{
	if (!f->made || f->v != v) {
		buf_reset(&f->text);
		if (fmt != NULL)
			fmt(&f->text, v);
		else
			buf_printf(&f->text, "%lld", (long long)v);
		f->made = 1;
		f->v = v;
	}
	return f->text.data;
}

/* Writes minor units of the settings' currency, with its decimals. */
static void
fmt_price(struct buf *b, int64_t v)
{
	fmt_money(b, v, currency_exponent(conf.currency));
}

/* Writes the year of day d (days since the epoch). */
static void
fmt_year_of_day(struct buf *b, int64_t d)
{
	fmt_year(b, d * 86400);
}

/* Returns the request's CSRF token: computed only for a page that has a
 * form (templates include csrf.html), so only such a page sets the
 * cookie. */
static const char *
page_csrf_token(void *r)
{
	return csrf_token(r);
}

void
page_vars(struct request *r, struct tvars *tv)
{
	static struct figure price, hours, days, year;

	tv_set(tv, "site_name", conf.site_name);
	tv_set(tv, "consultant_name", conf.consultant_name);
	tv_set(tv, "offer_title", conf.offer_title);
	tv_set(tv, "offer_intro", conf.offer_intro);
	tv_set(tv, "currency", conf.currency);
	tv_set(tv, "price", figure_text(&price, conf.price, fmt_price));
	tv_set(tv, "answer_hours", figure_text(&hours, conf.answer_hours,
	    NULL));
	tv_set(tv, "guarantee_days", figure_text(&days, conf.guarantee_days,
	    NULL));
	tv_set(tv, "admin_email", conf.admin_email);
	tv_set(tv, "base_url", conf.base_url);
	tv_set(tv, "payment_instructions", conf.payment_instructions);
	tv_set_fn(tv, CSRF_FIELD, page_csrf_token, r);
	if (r->session != NULL) {
		tv_set(tv, "admin_user", r->session->username);
		tv_set(tv, "body_class", "admin");
	}
	tv_set(tv, "year", figure_text(&year, now_unix() / 86400,
	    fmt_year_of_day));
}

/* Answers a plain-text page when templates cannot be used. */
static void
page_bare(struct request *r, int status, const char *msg)
{
	http_open(r, status, "text/plain; charset=utf-8");
	http_puts(r, msg);
	http_puts(r, "\n");
}

void
page_render(struct request *r, int status, const char *title,
    const char *body, struct tvars *tv)
{
	struct buf page;

	if (tv_get(tv, "site_name") == NULL)
		page_vars(r, tv);
	tv_set(tv, "title", title);
	tv_set(tv, "body_template", body);
	buf_init(&page);
	buf_reserve(&page, PAGE_BODY_GUESS + LAYOUT_GUESS);
	if (!tmpl_render(&page, "layout.html", tv))
		page_bare(r, 500, "This page cannot be shown right now.");
	else {
		http_open(r, status, "text/html; charset=utf-8");
		http_write(r, page.data, page.len);
	}
	buf_free(&page);
	tv_free(tv);
}

void
page_error(struct request *r, int status, const char *title,
    const char *message)
{
	struct tvars tv = { .n = 0 };

	if (r->opened)
		return;
	page_vars(r, &tv);
	tv_set(&tv, "status", req_printf(r, "%d", status));
	tv_set(&tv, "message", message);
	page_render(r, status, title, "error.html", &tv);
}

void
page_fail(struct request *r)
{
	page_error(r, 500, "Something went wrong on our side",
	    "Nothing was saved. Please try again in a minute; if it keeps "
	    "happening, write to us and we will sort it out.");
}

void
page_csrf_failed(struct request *r)
{
	page_error(r, 403, "Please reload the page", "This form could not be "
	    "accepted because its security token was missing or had expired, "
	    "or it came from another site. Nothing was changed. Go back, "
	    "reload the page and send it again.");
}

const char *
page_not_saved(struct request *r)
{
	http_header(r, "Retry-After", "30");
	return "This could not be saved just now, so nothing was saved. "
	    "Everything you typed is kept below: please send it again in a "
	    "minute.";
}

void
page_unavailable(struct request *r)
{
	http_header(r, "Retry-After", "30");
	page_error(r, 503, "We will be right back",
	    "The service cannot save or show orders right now. Nothing you "
	    "sent was half-saved: please try again in a minute.");
}

int
page_found(struct request *r, int rc, const char *title,
    const char *message)
{
	if (rc < 0)
		page_unavailable(r);
	else if (rc == 0)
		page_error(r, 404, title, message);
	return rc > 0;
}

int
page_list_vars(struct request *r, struct tvars *tv, int n)
{
	if (n < 0) {
		tv_free(tv);
		page_unavailable(r);
		return 0;
	}
	page_vars(r, tv);
	tv_set(tv, "empty", n == 0 ? "1" : "");
	return 1;
}

void
page_form_vars(struct request *r, struct tvars *tv, const struct field *f)
{
	for (size_t i = 0; f[i].name != NULL; i++) {
		const char *v = r->fields ? r->fields[i].value : "";
		const char *e = r->fields ? r->fields[i].error : NULL;

		if (strcmp(f[i].name, CSRF_FIELD) == 0)
			continue;	/* a new one, from page_vars */

		tv_set(tv, f[i].name, v);
		tv_set(tv, req_printf(r, "err_%s", f[i].name), e);
	}
}

const char *
page_done_notice(struct request *r, const char *const notices[])
{
	const char *done = req_param(r, "done");

	for (size_t i = 0; done != NULL && notices[i] != NULL; i += 2)
		if (strcmp(done, notices[i]) == 0)
			return notices[i + 1];
	return NULL;
}

const char *
page_time(struct request *r, int64_t t)
{
	char s[TIME_TEXT_MAX];

	return t == 0 ? "" : req_strdup(r, time_text(s, t));
}

const char *
page_time_in(char out[TIME_TEXT_MAX], int64_t t)
{
	return t == 0 ? "" : time_text(out, t);
}

const char *
page_date(struct request *r, int64_t t)
{
	struct buf b;

	buf_init(&b);
	fmt_date(&b, t);
	return req_keep(r, buf_take(&b));
}

const char *
page_money(struct request *r, int64_t v, const char *currency)
{
	char s[MONEY_TEXT_MAX];

	return req_strdup(r, money_text(s, v, currency_exponent(currency)));
}

const char *
page_parse_money(struct request *r, const char *text, const char *currency,
    int64_t *out)
{
	char why[CURRENCY_ERROR_MAX];

	if (parse_money(text, currency_exponent(currency), out))
		return NULL;
	return req_strdup(r, currency_decimals_error(why, currency));
}

const char *
page_duration(struct request *r, int64_t seconds, enum duration_style style)
{
	struct buf b;

	buf_init(&b);
	fmt_duration(&b, seconds, style);
	return req_keep(r, buf_take(&b));
}
