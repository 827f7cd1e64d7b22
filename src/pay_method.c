/* pay_method.c: the fixed list of payment methods, its labels and the
 * options of the forms' selects. */
#include <stddef.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "http.h"
#include "order.h"
#include "page.h"
#include "pay_method.h"
#include "tmpl.h"

/* The list, in the order the selects show it. */
static const struct {
	const char	*value;
	const char	*label;
} methods[] = {
	{ "card",		"Card" },
	{ "bank_transfer",	"Bank transfer" },
	{ "paypal",		"PayPal" },
	{ "cash",		"Cash" },
	{ "other",		"Other" },
};
#define NMETHODS	(sizeof(methods) / sizeof(methods[0]))

const char *
pay_method_check(const char *v)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(methods[i].value, v) == 0)
			return NULL;
	return "Choose a method from the list: card, bank transfer, PayPal, "
	    "cash or other.";
}

const char *
pay_method_label(const char *v)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(methods[i].value, v) == 0)
			return methods[i].label;
	return *v == '\0' ? "Not given" : v;
}

void
pay_method_options(struct tvars *tv, const char *key, const char *selected,
    const char *skip)
{
	for (size_t i = 0; i < NMETHODS; i++) {
		struct tvars *row;

		if (skip != NULL && strcmp(methods[i].value, skip) == 0)
			continue;
		row = tv_row(tv, key);
		tv_set(row, "value", methods[i].value);
		tv_set(row, "label", methods[i].label);
		tv_set(row, "selected", selected != NULL &&
		    strcmp(methods[i].value, selected) == 0 ? "1" : "");
	}
}

const char *
pay_method_of_order(struct request *r, int64_t order_id)
{
	sqlite3_stmt	*s = db_stmt(ST_LEDGER_LAST_METHOD);
	const char	*m = "";
	int		 rc;

	if (s == NULL || !db_bind(s, "i", order_id))
		return NULL;
	if ((rc = db_step(ST_LEDGER_LAST_METHOD)) == DB_ROW)
		m = req_strdup(r, db_text(s, 0));
	db_done(ST_LEDGER_LAST_METHOD);
	return rc == DB_ERROR ? NULL : m;
}

/* "5 days", "1 day": the refund_days setting in words. */
static const char *
refund_days(struct request *r)
{
	return req_printf(r, "%lld day%s", (long long)conf.refund_days,
	    conf.refund_days == 1 ? "" : "s");
}

const char *
pay_method_refund_way(struct request *r, const char *method)
{
	if (strcmp(method, "card") == 0)
		return "to the card you paid with, in 5–10 days";
	if (strcmp(method, "bank_transfer") == 0)
		return req_printf(r, "by bank transfer within %s",
		    refund_days(r));
	if (strcmp(method, "paypal") == 0)
		return req_printf(r, "to your PayPal account within %s",
		    refund_days(r));
	if (strcmp(method, "cash") == 0)
		return req_printf(r, "in cash within %s", refund_days(r));
	return req_printf(r, "within %s", refund_days(r));
}

const char *
pay_method_refund_sent(const char *method)
{
	if (strcmp(method, "card") == 0)
		return "to the card you paid with: it shows on your statement "
		    "in 5–10 days";
	if (strcmp(method, "bank_transfer") == 0)
		return "by bank transfer: depending on your bank it can take a "
		    "day or two to show";
	if (strcmp(method, "paypal") == 0)
		return "to your PayPal account";
	if (strcmp(method, "cash") == 0)
		return "in cash";
	return "";
}

int
pay_method_refund_vars(struct request *r, struct tvars *tv,
    const struct order *o, int64_t refunded)
{
	const char *method;

	if ((method = pay_method_of_order(r, o->id)) == NULL)
		return 0;
	tv_set(tv, "refund_way", pay_method_refund_way(r, method));
	tv_set(tv, "refund_total", page_money(r, refunded, o->currency));
	tv_set(tv, "refunded_on", page_date(r, o->refunded_at));
	return 1;
}
