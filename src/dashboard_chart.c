/* dashboard_chart.c: the dashboard's weeks (orders, first answers and
 * refunds per week, from indexes: sql/004_dashboard.sql), and where each
 * line, bar and label of their chart goes. The drawing itself is the
 * template admin_dashboard.svg. */
#include <string.h>
#include <time.h>

#include "dashboard_chart.h"
#include "db.h"

#define DAY		86400
#define MONDAY0		(4 * DAY)	/* 1970-01-05 00:00 UTC, a Monday */

/* The chart's size and margins, in SVG user units. */
#define SVG_W		720
#define SVG_H		300
#define SVG_LEFT	44
#define SVG_RIGHT	12
#define SVG_TOP		40
#define SVG_BOTTOM	36
#define SVG_GRID	4		/* horizontal grid lines above zero */
#define SVG_LEGEND_STEP	110		/* from one legend entry to the next */
#define PLOT_W		(SVG_W - SVG_LEFT - SVG_RIGHT)	/* the bars' area */
#define PLOT_H		(SVG_H - SVG_TOP - SVG_BOTTOM)
#define PLOT_BASE	(SVG_TOP + PLOT_H)		/* the axis's y */

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

int
weeks_load(struct weeks *w)
{
	int64_t now = now_unix();

	w->start = MONDAY0 + (now - MONDAY0) / WEEK * WEEK -
	    (WEEKS - 1) * WEEK;
	return week_counts(ST_DASH_WEEK_ORDERS, w->start, w->orders) &&
	    week_counts(ST_DASH_WEEK_ANSWERS, w->start, w->answers) &&
	    week_counts(ST_DASH_WEEK_REFUNDS, w->start, w->refunds);
}

/* Appends the date of t as "3 Mar" (year too: "3 Mar 2025"). */
static void
week_date(struct buf *b, int64_t t, int year)
{
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL) {
		buf_puts(b, "?");
		return;
	}
	buf_printf(b, "%d %s", tm.tm_mday, month_abbr(tm.tm_mon));
	if (year)
		buf_printf(b, " %d", tm.tm_year + 1900);
}

const char *
week_date_text(struct request *r, int64_t t, int year)
{
	struct buf b;

	buf_init(&b);
	week_date(&b, t, year);
	return req_keep(r, buf_take(&b));
}

/* Returns x with one decimal, owned by the request. */
static const char *
coord(struct request *r, double x)
{
	return req_printf(r, "%.1f", x);
}

/* The chart's series, in the order of their bars in a week. */
static const struct {
	const char *label, *one, *many, *fill;
} series[] = {
	{ "Orders", "order", "orders", "#1f5f99" },
	{ "Answers", "answer", "answers", "#2e7d4f" },
	{ "Refunds", "refund", "refunds", "#b3261e" },
};

/* Sets the grid lines (the scale's numbers up to top; the first line is
 * the axis) and the legend. */
static void
chart_scale(struct request *r, struct tvars *tv, int64_t top)
{
	const double ph = PLOT_H;

	for (int g = 0; g <= SVG_GRID; g++) {
		struct tvars	*row = tv_row(tv, "grid");
		double		 y = PLOT_BASE - ph * g / SVG_GRID;

		tv_set(row, "y", coord(r, y));
		tv_set(row, "label_x", req_printf(r, "%d", SVG_LEFT - 6));
		tv_set(row, "label_y", coord(r, y + 4));
		tv_set(row, "axis", g == 0 ? "1" : "");
		tv_set(row, "value", req_printf(r, "%lld",
		    (long long)(top * g / SVG_GRID)));
	}
	for (size_t j = 0; j < ARRAY_LEN(series); j++) {
		struct tvars	*row = tv_row(tv, "legend");
		int		 x = SVG_LEFT + (int)j * SVG_LEGEND_STEP;

		tv_set(row, "x", req_printf(r, "%d", x));
		tv_set(row, "label_x", req_printf(r, "%d", x + 17));
		tv_set(row, "fill", series[j].fill);
		tv_set(row, "label", series[j].label);
	}
}

void
chart_vars(struct request *r, struct tvars *tv, const struct weeks *w)
{
	const int64_t	*vals[] = { w->orders, w->answers, w->refunds };
	const double	 ph = PLOT_H, gw = (double)PLOT_W / WEEKS, bw = gw / 4;
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

	tv_set(tv, "width", req_printf(r, "%d", SVG_W));
	tv_set(tv, "height", req_printf(r, "%d", SVG_H));
	tv_set(tv, "left", req_printf(r, "%d", SVG_LEFT));
	tv_set(tv, "right", req_printf(r, "%d", SVG_W - SVG_RIGHT));
	tv_set(tv, "first_week", week_date_text(r, w->start, 1));
	tv_set(tv, "last_week", week_date_text(r, w->start +
	    (WEEKS - 1) * WEEK, 1));
	chart_scale(r, tv, top);

	/* The bars, three per week, and the weeks' dates. */
	for (int i = 0; i < WEEKS; i++) {
		struct tvars	*week = tv_row(tv, "weeks");
		int64_t		 wk = w->start + (int64_t)i * WEEK;
		double		 gx = SVG_LEFT + gw * i;

		tv_set(week, "date", week_date_text(r, wk, 1));
		tv_set(week, "short_date", week_date_text(r, wk, 0));
		tv_set(week, "label_x", coord(r, gx + gw / 2));
		tv_set(week, "label_y", req_printf(r, "%d",
		    SVG_H - SVG_BOTTOM + 16));
		for (size_t j = 0; j < ARRAY_LEN(series); j++) {
			struct tvars	*bar = tv_row(week, "bars");
			int64_t		 v = vals[j][i];
			double		 h = ph * (double)v / (double)top;

			tv_set(bar, "x", coord(r, gx + bw * (0.5 + (double)j)));
			tv_set(bar, "y", coord(r, PLOT_BASE - h));
			tv_set(bar, "bar_width", coord(r, bw));
			tv_set(bar, "bar_height", coord(r, h));
			tv_set(bar, "fill", series[j].fill);
			tv_set(bar, "value", req_printf(r, "%lld", (long long)v));
			tv_set(bar, "unit", v == 1 ? series[j].one :
			    series[j].many);
		}
	}
}
