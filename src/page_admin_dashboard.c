/* page_admin_dashboard.c: GET /admin/dashboard — the business at a
 * glance; GET /admin/dashboard.svg — its chart of the last 12 weeks,
 * drawn by the server (dashboard_chart.c, admin_dashboard.svg; no script,
 * no library). Money comes from the ledger only; the statements read
 * indexes (sql/004_dashboard.sql). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "dashboard_chart.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "pay_method.h"

#define HOUR		3600
#define MONTHS		12	/* months of revenue shown, this one included */

/* The figures of the dashboard. */
struct stats {
	int64_t	orders, answered, waiting, overdue;
	int64_t	timed;		/* answered, with a payment time */
	int64_t	in_time;	/* of those, answered within the promise */
	int64_t	paid_orders;	/* orders with a payment in the ledger */
	int64_t	refunded_orders;/* orders with a refund in the ledger */
	int64_t	median, p90;	/* seconds from payment to first answer */
};

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

/* The money of one currency, or of one method within it. */
struct revenue {
	char	currency[4];
	int	methods;		/* rows of the currency so far */
	int64_t	in, out;		/* payments, refunds (minor units) */
};

/* Adds one row to tv's list revenue (currency, method, payments,
 * refunds, net); total marks a currency's all-methods row. */
static void
revenue_row(struct request *r, struct tvars *tv, const char *currency,
    const char *method, int64_t in, int64_t out, int total)
{
	struct tvars *row = tv_row(tv, "revenue");

	tv_set(row, "currency", req_strdup(r, currency));
	tv_set(row, "method", total ? "All methods" :
	    req_strdup(r, pay_method_label(method)));
	tv_set(row, "total", total ? "1" : "");
	tv_set(row, "in", page_money(r, in, currency));
	tv_set(row, "out", page_money(r, out, currency));
	tv_set(row, "net", page_money(r, in - out, currency));
}

/* Adds the revenue per currency and method (card, bank transfer...) to
 * tv as the list revenue, with an all-methods row after a currency that
 * has more than one; returns how many rows, or -1 on a database error. */
static int
revenue_rows(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_REVENUE);
	struct revenue	 cur = { .methods = 0 };
	int		 rc, n = 0;

	if (s == NULL)
		return -1;
	while ((rc = db_step(ST_DASH_REVENUE)) == DB_ROW) {
		const char	*currency = db_text(s, 0);
		int64_t		 in = sqlite3_column_int64(s, 2);
		int64_t		 out = sqlite3_column_int64(s, 3);

		if (cur.methods > 0 && strcmp(cur.currency, currency) != 0) {
			if (cur.methods > 1)
				revenue_row(r, tv, cur.currency, "", cur.in,
				    cur.out, 1), n++;
			cur.methods = 0;
		}
		if (cur.methods++ == 0) {
			snprintf(cur.currency, sizeof(cur.currency), "%s",
			    currency);
			cur.in = cur.out = 0;
		}
		cur.in += in;
		cur.out += out;
		revenue_row(r, tv, currency, db_text(s, 1), in, out, 0);
		n++;
	}
	db_done(ST_DASH_REVENUE);
	if (rc != DB_ERROR && cur.methods > 1)
		revenue_row(r, tv, cur.currency, "", cur.in, cur.out, 1), n++;
	return rc == DB_ERROR ? -1 : n;
}

/* Adds the orders awaiting payment to tv as the list unpaid (currency,
 * how many, their value); returns how many rows, or -1 on a database
 * error. */
static int
unpaid_rows(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_UNPAID);
	int		 rc, n = 0;

	if (s == NULL)
		return -1;
	while ((rc = db_step(ST_DASH_UNPAID)) == DB_ROW) {
		struct tvars	*row = tv_row(tv, "unpaid");
		const char	*currency = db_text(s, 0);

		tv_set(row, "u_currency", req_strdup(r, currency));
		tv_set(row, "u_count", req_printf(r, "%lld",
		    (long long)sqlite3_column_int64(s, 1)));
		tv_set(row, "u_value", page_money(r,
		    sqlite3_column_int64(s, 2), currency));
		n++;
	}
	db_done(ST_DASH_UNPAID);
	return rc == DB_ERROR ? -1 : n;
}

/* Returns the second at which month key (year * 12 + month - 1) starts,
 * UTC. */
static int64_t
month_start(int64_t key)
{
	struct tm tm = { .tm_mday = 1 };

	tm.tm_year = (int)(key / 12 - 1900);
	tm.tm_mon = (int)(key % 12);
	return (int64_t)timegm(&tm);
}

/* The money of one currency in each of the months shown. */
struct months {
	char	currency[4];		/* "": none yet */
	int64_t	first;			/* the oldest month's key */
	int64_t	in[MONTHS], out[MONTHS];
};

/* Adds m's months to tv's list months, newest first. */
static void
month_rows_add(struct request *r, struct tvars *tv, const struct months *m)
{
	for (int i = MONTHS - 1; i >= 0; i--) {
		struct tvars	*row = tv_row(tv, "months");
		int64_t		 key = m->first + i;

		tv_set(row, "m_month", req_printf(r, "%s %lld",
		    month_abbr((int)(key % 12)), (long long)(key / 12)));
		tv_set(row, "m_currency", req_strdup(r, m->currency));
		tv_set(row, "m_in", page_money(r, m->in[i], m->currency));
		tv_set(row, "m_out", page_money(r, m->out[i], m->currency));
		tv_set(row, "m_net", page_money(r, m->in[i] - m->out[i],
		    m->currency));
	}
}

/* Adds the revenue of the last MONTHS calendar months (UTC, this one
 * included) to tv as the list months, MONTHS rows per currency that had
 * money in them; returns how many currencies, or -1 on an error. */
static int
month_rows(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_MONTHS);
	struct months	 m = { .currency = "" };
	time_t		 now = (time_t)now_unix();
	struct tm	 tm;
	int64_t		 first;
	int		 rc, n = 0;

	if (s == NULL || gmtime_r(&now, &tm) == NULL)
		return -1;
	first = (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon - (MONTHS - 1);
	if (!db_bind(s, "ii", month_start(first), month_start(first +
	    MONTHS)))
		return -1;
	while ((rc = db_step(ST_DASH_MONTHS)) == DB_ROW) {
		const char	*currency = db_text(s, 0);
		int64_t		 i = sqlite3_column_int64(s, 1) - first;

		if (strcmp(m.currency, currency) != 0) {
			if (*m.currency != '\0')
				month_rows_add(r, tv, &m), n++;
			memset(&m, 0, sizeof(m));
			snprintf(m.currency, sizeof(m.currency), "%s",
			    currency);
			m.first = first;
		}
		if (i >= 0 && i < MONTHS) {
			m.in[i] = sqlite3_column_int64(s, 2);
			m.out[i] = sqlite3_column_int64(s, 3);
		}
	}
	db_done(ST_DASH_MONTHS);
	if (rc != DB_ERROR && *m.currency != '\0')
		month_rows_add(r, tv, &m), n++;
	return rc == DB_ERROR ? -1 : n;
}

/* Adds the weeks to tv as the list weeks (week of, orders, answers,
 * refunds), newest first. */
static void
week_rows(struct request *r, struct tvars *tv, const struct weeks *w)
{
	for (int i = WEEKS - 1; i >= 0; i--) {
		struct tvars *row = tv_row(tv, "weeks");

		tv_set(row, "c1", week_date_text(r, w->start +
		    (int64_t)i * WEEK, 1));
		tv_set(row, "c2", req_printf(r, "%lld",
		    (long long)w->orders[i]));
		tv_set(row, "c3", req_printf(r, "%lld",
		    (long long)w->answers[i]));
		tv_set(row, "c4", req_printf(r, "%lld",
		    (long long)w->refunds[i]));
	}
}

/* Sets files and files_size: what the stored files take (files_usage,
 * one row). Returns 1 or 0. */
static int
files_vars(struct request *r, struct tvars *tv)
{
	sqlite3_stmt	*s = db_stmt(ST_DASH_FILES);
	int64_t		 n = 0, bytes = 0;
	int		 rc;

	if (s == NULL)
		return 0;
	if ((rc = db_step(ST_DASH_FILES)) == DB_ROW) {
		n = sqlite3_column_int64(s, 0);
		bytes = sqlite3_column_int64(s, 1);
	}
	db_done(ST_DASH_FILES);
	tv_set(tv, "files", req_printf(r, "%lld", (long long)n));
	tv_set(tv, "files_size", req_printf(r, "%.1f MB",
	    (double)bytes / 1048576.0));
	return rc == DB_ROW;
}

/* GET /admin/dashboard */
void
page_admin_dashboard(struct request *r)
{
	struct tvars	 tv = { .n = 0 };
	struct stats	 st;
	struct weeks	 w;
	int		 revenue, unpaid, months;

	if (!stats_load(&st) || !weeks_load(&w) ||
	    (revenue = revenue_rows(r, &tv)) < 0 ||
	    (unpaid = unpaid_rows(r, &tv)) < 0 ||
	    (months = month_rows(r, &tv)) < 0 || !files_vars(r, &tv)) {
		tv_free(&tv);
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
	tv_set(&tv, "median", page_duration(r, st.median, DURATION_SHORT));
	tv_set(&tv, "median_s", req_printf(r, "%lld", (long long)st.median));
	tv_set(&tv, "p90", page_duration(r, st.p90, DURATION_SHORT));
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
	tv_set(&tv, "no_revenue", revenue == 0 ? "1" : "");
	tv_set(&tv, "no_unpaid", unpaid == 0 ? "1" : "");
	tv_set(&tv, "no_months", months == 0 ? "1" : "");
	tv_set(&tv, "conversion_pct", percent(r, st.paid_orders, st.orders));
	week_rows(r, &tv, &w);
	page_render(r, 200, "Dashboard", "admin_dashboard.html", &tv);
}

/* GET /admin/dashboard.svg */
void
page_admin_dashboard_svg(struct request *r)
{
	struct tvars	tv = { .n = 0 };
	struct weeks	w;
	struct buf	b;

	if (!weeks_load(&w)) {
		page_unavailable(r);
		return;
	}
	chart_vars(r, &tv, &w);
	buf_init(&b);
	if (!tmpl_render(&b, "admin_dashboard.svg", &tv))
		page_fail(r);
	else {
		http_open(r, 200, "image/svg+xml; charset=utf-8");
		http_write(r, b.data, b.len);
	}
	buf_free(&b);
	tv_free(&tv);
}
