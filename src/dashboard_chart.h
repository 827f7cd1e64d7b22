/* dashboard_chart.h: the dashboard's weeks, and the numbers of their
 * chart (www/templates/admin_dashboard.svg draws it). */
#ifndef PMB_DASHBOARD_CHART_H
#define PMB_DASHBOARD_CHART_H

#include "http.h"
#include "tmpl.h"

#define WEEKS		12		/* weeks in the chart */
#define WEEK		(7 * 86400)	/* seconds in a week */

/* Orders, first answers and refunds per week. */
struct weeks {
	int64_t	start;		/* Monday 00:00 UTC of the first week */
	int64_t	orders[WEEKS], answers[WEEKS], refunds[WEEKS];
};

/* Loads the last WEEKS weeks up to the current one (Monday to Monday,
 * UTC). Returns 1, or 0 on a database error. */
int	 weeks_load(struct weeks *);
/* Returns the date of t as "3 Mar" (year too: "3 Mar 2025"), owned by
 * the request. */
const char *week_date_text(struct request *, int64_t t, int year);
/* Sets the variables of admin_dashboard.svg for w: sizes, the grid, the
 * legend, and each week's bars (text owned by the request). */
void	 chart_vars(struct request *, struct tvars *, const struct weeks *w);

#endif
