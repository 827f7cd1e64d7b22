/* page_admin_dashboard.c: GET /admin/dashboard — the business at a
 * glance; GET /admin/dashboard.svg — its chart of the last 12 weeks,
 * drawn here (no script, no library). Money comes from the ledger only;
 * the statements read indexes (sql/004_dashboard.sql). */
#include <string.h>
#include <time.h>

#include "conf.h"
#include "db.h"
#include "order.h"
#include "page.h"

#define HOUR		3600
#define DAY		86400
#define WEEK		(7 * DAY)
#define WEEKS		12		/* weeks in the chart */
#define MONDAY0		(4 * DAY)	/* 1970-01-05 00:00 UTC, a Monday */

/* The chart's size and margins, in SVG user units. */
#define SVG_W		720
#define SVG_H		300
#define SVG_LEFT	44
#define SVG_RIGHT	12
#define SVG_TOP		40
#define SVG_BOTTOM	36
#define SVG_GRID	4		/* horizontal grid lines above zero */

/* Orders, first answers and refunds per week. */
struct weeks {
	int64_t	start;		/* Monday 00:00 UTC of the first week */
	int64_t	orders[WEEKS], answers[WEEKS], refunds[WEEKS];
};

/* The figures of the dashboard. */
struct stats {
	int64_t	orders, answered, waiting, overdue;
	int64_t	timed;		/* answered, with a payment time */
	int64_t	in_time;	/* of those, answered within the promise */
	int64_t	paid_orders;	/* orders with a payment in the ledger */
	int64_t	refunded_orders;/* orders with a refund in the ledger */
	int64_t	median, p90;	/* seconds from payment to first answer */
};

/* Reads the counts of week-bucketing statement st into v. Returns 1 or
 * 0. */
static int
week_counts(enum stmt st, int64_t start, int64_t v[WEEKS])
{
	sqlite3_stmt	*s = db_stmt(st);
	int		 rc;

	memset(v, 0, WEEKS * sizeof(*v));
	if (s == NULL || !db_bind(s, "iii", start, start + WEEKS * WEEK,
	    (int64_t)WEEK))
		return 0;
	while ((rc = db_step(st)) == DB_ROW) {
		int64_t w = sqlite3_column_int64(s, 0);

		if (w >= 0 && w < WEEKS)
			v[w] = sqlite3_column_int64(s, 1);
	}
	db_done(st);
	return rc == DB_DONE;
}

/* Loads the last WEEKS weeks up to the current one (Monday to Monday,
 * UTC). Returns 1 or 0. */
static int
weeks_load(struct weeks *w)
{
	int64_t now = now_unix();

	w->start = MONDAY0 + (now - MONDAY0) / WEEK * WEEK -
	    (WEEKS - 1) * WEEK;
	return week_counts(ST_DASH_WEEK_ORDERS, w->start, w->orders) &&
	    week_counts(ST_DASH_WEEK_ANSWERS, w->start, w->answers) &&
	    week_counts(ST_DASH_WEEK_REFUNDS, w->start, w->refunds);
}

/* Reads the p-th percentile (0 to 100) of the n times from payment to
 * first answer into *out, in whole seconds: linear between the two
 * nearest ranks, as numpy's default and Excel's PERCENTILE.INC (so the
 * median of an even count is the mean of the middle two). Walks the
 * expression index to the rank; no sort. Returns 1 or 0. */
static int
answer_time_pct(int64_t n, int p, int64_t *out)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_ANSWER_TIME);
	int64_t		 pos = p * (n - 1), v0, v1, x;
	int		 rc;

	if (s == NULL || !db_bind(s, "i", pos / 100))
		return 0;
	if (db_step(ST_DASH_ANSWER_TIME) != DB_ROW) {
		db_done(ST_DASH_ANSWER_TIME);
		return 0;
	}
	v0 = v1 = sqlite3_column_int64(s, 0);
	if ((rc = db_step(ST_DASH_ANSWER_TIME)) == DB_ROW)
		v1 = sqlite3_column_int64(s, 0);
	db_done(ST_DASH_ANSWER_TIME);
	if (rc == DB_ERROR)
		return 0;
	/* v0 + (v1 - v0) * frac, in hundredths, rounded half away. */
	x = v0 * 100 + (v1 - v0) * (pos % 100);
	*out = (x >= 0 ? x + 50 : x - 50) / 100;
	return 1;
}

/* Loads the figures. Returns 1 or 0. */
static int
stats_load(struct stats *st)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_COUNTS);
	int		 ok;

	memset(st, 0, sizeof(*st));
	if (s == NULL || !db_bind(s, "ii", now_unix(),
	    conf.answer_hours * HOUR))
		return 0;
	if ((ok = db_step(ST_DASH_COUNTS) == DB_ROW)) {
		st->orders = sqlite3_column_int64(s, 0);
		st->answered = sqlite3_column_int64(s, 1);
		st->waiting = sqlite3_column_int64(s, 2);
		st->overdue = sqlite3_column_int64(s, 3);
		st->timed = sqlite3_column_int64(s, 4);
		st->in_time = sqlite3_column_int64(s, 5);
		st->paid_orders = sqlite3_column_int64(s, 6);
		st->refunded_orders = sqlite3_column_int64(s, 7);
	}
	db_done(ST_DASH_COUNTS);
	if (!ok)
		return 0;
	if (st->timed == 0)
		return 1;
	return answer_time_pct(st->timed, 50, &st->median) &&
	    answer_time_pct(st->timed, 90, &st->p90);
}

/* Returns a span of seconds as "45 min", "10 h 5 min" or "2 d 22 h",
 * owned by the request. */
static const char *
duration(struct request *r, int64_t s)
{
	const char *sign = s < 0 ? "-" : "";

	if (s < 0)
		s = -s;
	if (s < HOUR)
		return req_printf(r, "%s%lld min", sign, (long long)(s / 60));
	if (s < 2 * DAY)
		return req_printf(r, "%s%lld h %lld min", sign,
		    (long long)(s / HOUR), (long long)(s % HOUR / 60));
	return req_printf(r, "%s%lld d %lld h", sign, (long long)(s / DAY),
	    (long long)(s % DAY / HOUR));
}

/* Returns k of n as a percentage with one decimal ("71.4%", rounded
 * half up), or "no data" when n is 0; owned by the request. */
static const char *
percent(struct request *r, int64_t k, int64_t n)
{
	int64_t tenths;

	if (n <= 0)
		return "no data";
	tenths = (1000 * k + n / 2) / n;
	return req_printf(r, "%lld.%lld%%", (long long)(tenths / 10),
	    (long long)(tenths % 10));
}

/* Returns minor units as "150.00", owned by the request. */
static const char *
money(struct request *r, int64_t v)
{
	struct buf b;

	buf_init(&b);
	fmt_money(&b, v);
	return req_keep(r, buf_take(&b));
}

/* Appends the date of t as "3 Mar" (year too: "3 Mar 2025"). */
static void
short_date(struct buf *b, int64_t t, int year)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_mon < 0 || tm.tm_mon > 11) {
		buf_puts(b, "?");
		return;
	}
	buf_printf(b, "%d %s", tm.tm_mday, mon[tm.tm_mon]);
	if (year)
		buf_printf(b, " %d", tm.tm_year + 1900);
}

/* Appends the chart of w as a standalone SVG document. Only presentation
 * attributes (fill=, stroke=): the CSP forbids inline style. Each bar
 * carries its number in a <title>, and the page repeats them in a table. */
static void
svg_chart(struct buf *b, const struct weeks *w)
{
	static const struct {
		const char *label, *one, *many, *fill;
	} series[] = {
		{ "Orders", "order", "orders", "#1f5f99" },
		{ "Answers", "answer", "answers", "#2e7d4f" },
		{ "Refunds", "refund", "refunds", "#b3261e" },
	};
	const int64_t	*vals[] = { w->orders, w->answers, w->refunds };
	const double	 pw = SVG_W - SVG_LEFT - SVG_RIGHT;
	const double	 ph = SVG_H - SVG_TOP - SVG_BOTTOM;
	const double	 gw = pw / WEEKS, bw = gw / 4;
	const double	 base = SVG_TOP + ph;
	int64_t		 max = 0, top;

	for (size_t j = 0; j < ARRAY_LEN(series); j++)
		for (int i = 0; i < WEEKS; i++)
			if (vals[j][i] > max)
				max = vals[j][i];
	/* The top of the scale: a multiple of the grid, so every line
	 * has a whole number. */
	top = (max + SVG_GRID - 1) / SVG_GRID * SVG_GRID;
	if (top == 0)
		top = SVG_GRID;

	buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
	    "aria-labelledby=\"chart-title chart-desc\" "
	    "font-family=\"sans-serif\" font-size=\"11\">\n",
	    SVG_W, SVG_H, SVG_W, SVG_H);
	buf_puts(b, "<title id=\"chart-title\">Orders, answers and refunds "
	    "per week</title>\n<desc id=\"chart-desc\">The last 12 weeks, "
	    "from the week of ");
	short_date(b, w->start, 1);
	buf_puts(b, " to the week of ");
	short_date(b, w->start + (WEEKS - 1) * WEEK, 1);
	buf_puts(b, "; weeks start on Monday (UTC).</desc>\n");
	buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" "
	    "fill=\"#ffffff\"/>\n", SVG_W, SVG_H);

	/* Grid lines with their numbers. */
	for (int g = 0; g <= SVG_GRID; g++) {
		double y = base - ph * g / SVG_GRID;

		buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
		    "y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
		    SVG_LEFT, y, SVG_W - SVG_RIGHT, y,
		    g == 0 ? "#5c6670" : "#dde3ea");
		buf_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
		    "fill=\"#5c6670\">%lld</text>\n", SVG_LEFT - 6, y + 4,
		    (long long)(top * g / SVG_GRID));
	}

	/* The legend. */
	for (size_t j = 0; j < ARRAY_LEN(series); j++) {
		int x = SVG_LEFT + (int)j * 110;

		buf_printf(b, "<rect x=\"%d\" y=\"12\" width=\"12\" "
		    "height=\"12\" fill=\"%s\"/>\n<text x=\"%d\" y=\"22\" "
		    "fill=\"#1d2630\">%s</text>\n", x, series[j].fill,
		    x + 17, series[j].label);
	}

	/* The bars, three per week, and the weeks' dates. */
	for (int i = 0; i < WEEKS; i++) {
		int64_t	wk = w->start + (int64_t)i * WEEK;
		double	gx = SVG_LEFT + gw * i;

		for (size_t j = 0; j < ARRAY_LEN(series); j++) {
			int64_t	v = vals[j][i];
			double	h = ph * (double)v / (double)top;

			buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" "
			    "width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			    "<title>Week of ", gx + bw * (0.5 + (double)j),
			    base - h, bw, h, series[j].fill);
			short_date(b, wk, 1);
			buf_printf(b, ": %lld %s</title></rect>\n",
			    (long long)v, v == 1 ? series[j].one :
			    series[j].many);
		}
		buf_printf(b, "<text x=\"%.1f\" y=\"%d\" "
		    "text-anchor=\"middle\" fill=\"#5c6670\">",
		    gx + gw / 2, SVG_H - SVG_BOTTOM + 16);
		short_date(b, wk, 0);
		buf_puts(b, "</text>\n");
	}
	buf_puts(b, "</svg>\n");
}

/* Returns the revenue per currency as table rows (currency, payments,
 * refunds, net), owned by the request; NULL on a database error. */
static const char *
revenue_rows(struct request *r)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_REVENUE);
	struct buf	 b;
	int		 rc;

	if (s == NULL)
		return NULL;
	buf_init(&b);
	while ((rc = db_step(ST_DASH_REVENUE)) == DB_ROW) {
		struct tvars	tv = { .n = 0 };
		int64_t		in = sqlite3_column_int64(s, 1);
		int64_t		out = sqlite3_column_int64(s, 2);

		tv_set(&tv, "c1", req_strdup(r, db_text(s, 0)));
		tv_set(&tv, "c2", money(r, in));
		tv_set(&tv, "c3", money(r, out));
		tv_set(&tv, "c4", money(r, in - out));
		tmpl_render(&b, "admin_row4.html", &tv);
	}
	db_done(ST_DASH_REVENUE);
	if (rc == DB_ERROR) {
		buf_free(&b);
		return NULL;
	}
	return req_keep(r, buf_take(&b));
}

/* Returns the weeks as table rows (week of, orders, answers, refunds),
 * newest first, owned by the request. */
static const char *
week_rows(struct request *r, const struct weeks *w)
{
	struct buf b;

	buf_init(&b);
	for (int i = WEEKS - 1; i >= 0; i--) {
		struct tvars	tv = { .n = 0 };
		struct buf	d;

		buf_init(&d);
		short_date(&d, w->start + (int64_t)i * WEEK, 1);
		tv_set(&tv, "c1", req_keep(r, buf_take(&d)));
		tv_set(&tv, "c2", req_printf(r, "%lld",
		    (long long)w->orders[i]));
		tv_set(&tv, "c3", req_printf(r, "%lld",
		    (long long)w->answers[i]));
		tv_set(&tv, "c4", req_printf(r, "%lld",
		    (long long)w->refunds[i]));
		tmpl_render(&b, "admin_row4.html", &tv);
	}
	return req_keep(r, buf_take(&b));
}

/* GET /admin/dashboard */
void
page_admin_dashboard(struct request *r)
{
	struct tvars	 tv = { .n = 0 };
	struct stats	 st;
	struct weeks	 w;
	const char	*revenue;

	if (!stats_load(&st) || !weeks_load(&w) ||
	    (revenue = revenue_rows(r)) == NULL) {
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "orders", req_printf(r, "%lld", (long long)st.orders));
	tv_set(&tv, "answered", req_printf(r, "%lld",
	    (long long)st.answered));
	tv_set(&tv, "waiting", req_printf(r, "%lld", (long long)st.waiting));
	tv_set(&tv, "overdue", req_printf(r, "%lld", (long long)st.overdue));
	tv_set(&tv, "has_overdue", st.overdue > 0 ? "1" : "");
	tv_set(&tv, "timed", st.timed > 0 ? "1" : "");
	tv_set(&tv, "median", duration(r, st.median));
	tv_set(&tv, "median_s", req_printf(r, "%lld", (long long)st.median));
	tv_set(&tv, "p90", duration(r, st.p90));
	tv_set(&tv, "p90_s", req_printf(r, "%lld", (long long)st.p90));
	tv_set(&tv, "in_time_pct", percent(r, st.in_time, st.timed));
	tv_set(&tv, "in_time", req_printf(r, "%lld", (long long)st.in_time));
	tv_set(&tv, "timed_n", req_printf(r, "%lld", (long long)st.timed));
	tv_set(&tv, "refund_pct", percent(r, st.refunded_orders,
	    st.paid_orders));
	tv_set(&tv, "refunded_orders", req_printf(r, "%lld",
	    (long long)st.refunded_orders));
	tv_set(&tv, "paid_orders", req_printf(r, "%lld",
	    (long long)st.paid_orders));
	tv_set(&tv, "revenue", revenue);
	tv_set(&tv, "no_revenue", *revenue == '\0' ? "1" : "");
	tv_set(&tv, "weeks", week_rows(r, &w));
	page_render(r, 200, "Dashboard", "admin_dashboard.html", &tv);
}

/* GET /admin/dashboard.svg */
void
page_admin_dashboard_svg(struct request *r)
{
	struct weeks	w;
	struct buf	b;

	if (!weeks_load(&w)) {
		page_unavailable(r);
		return;
	}
	buf_init(&b);
	buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	svg_chart(&b, &w);
	http_open(r, 200, "image/svg+xml; charset=utf-8");
	http_write(r, b.data, b.len);
	buf_free(&b);
}
