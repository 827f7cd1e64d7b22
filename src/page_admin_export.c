/* page_admin_export.c: GET /admin/export.csv — every order with its
 * money, for the accountant — and GET /admin/export-ledger.csv, every
 * payment and refund. Money comes from the ledger only. And POST
 * /admin/orders/ID/export: everything held about that order's client,
 * as one JSON document (privacy_export.c), for the client who asks.
 *
 * Both files are built whole before the first byte is sent, so that a
 * database error answers 503 instead of a 200 file that silently lacks
 * rows (once headers are out, a stream cut short by an error looks like
 * a finished file to a spreadsheet). The cost, measured with 100,000
 * orders and 120,000 ledger rows (bench/README.md, "CSV exports"): a
 * 26 MB orders file in 0.7 s, 28 MB of memory above the process's own
 * 12 MB; a 12 MB ledger file in 0.4 s, 15 MB above; freed when the
 * request ends. It is the consultant's monthly download behind R_ADMIN,
 * so a worker or two at a time at most; streaming would save that memory
 * at the price of truncated files that look whole. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "currency.h"
#include "db.h"
#include "page.h"
#include "privacy_export.h"

/* What a spreadsheet may run as a formula when a cell starts with it:
 * = + - @ tab CR, and the full-width = + - @ (U+FF1D, U+FF0B, U+FF0D,
 * U+FF20), which some spreadsheets fold to their ASCII forms. Returns
 * 1 if v starts with one, after any spaces (which a spreadsheet may
 * trim). */
static int
csv_formula_start(const char *v)
{
	static const char *const wide[] = { "\xef\xbc\x9d", "\xef\xbc\x8b",
	    "\xef\xbc\x8d", "\xef\xbc\xa0" };

	v += strspn(v, " ");
	if (*v != '\0' && strchr("=+-@\t\r", *v) != NULL)
		return 1;
	for (size_t i = 0; i < ARRAY_LEN(wide); i++)
		if (strncmp(v, wide[i], strlen(wide[i])) == 0)
			return 1;
	return 0;
}

/* Returns 1 if text v could run as a formula in a spreadsheet: it starts
 * with a formula character, or has one after a separator (, ; tab or a
 * line break), where a spreadsheet splitting on that separator would
 * start a cell (OWASP, CSV injection). */
static int
csv_formula(const char *v)
{
	if (csv_formula_start(v))
		return 1;
	for (; *v != '\0'; v++)
		if (strchr(",;\t\n\r", *v) != NULL && csv_formula_start(v + 1))
			return 1;
	return 0;
}

/* Appends one CSV cell (RFC 4180), always quoted, its quotes doubled. A
 * text cell that could run as a formula (csv_formula) gets a leading '
 * so that a spreadsheet shows it as text, as OWASP's CSV-injection
 * guidance says. Amounts (text 0) are written as they are: the program
 * formatted them from integers, and "-12.00" must stay a number. */
static void
csv_cell(struct buf *b, const char *v, int text)
{
	buf_putc(b, '"');
	if (text && csv_formula(v))
		buf_putc(b, '\'');
	for (; *v != '\0'; v++) {
		if (*v == '"')
			buf_putc(b, '"');
		buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

/* Appends minor units of currency as one CSV cell with the currency's
 * decimals ("1500" JPY, "150.00" GBP), quoted like every other. */
static void
csv_money(struct buf *b, int64_t minor, const char *currency)
{
	char m[MONEY_TEXT_MAX];

	csv_cell(b, money_text(m, minor, currency_exponent(currency)), 0);
}

/* Appends a separator and text cell v. */
static void
csv_next(struct buf *b, const char *v)
{
	buf_putc(b, ',');
	csv_cell(b, v, 1);
}

/* Appends a separator and the time t as an ISO 8601 UTC cell, or an
 * empty cell when t is 0 (never happened). */
static void
csv_time(struct buf *b, int64_t t)
{
	struct buf	s;

	buf_init(&s);
	if (t != 0)
		fmt_iso(&s, t);
	csv_next(b, t != 0 ? s.data : "");
	buf_free(&s);
}

/* Appends v to a "; "-separated list holding n entries already. */
static void
list_add(struct buf *list, int n, const char *v)
{
	if (n > 0)
		buf_puts(list, "; ");
	buf_puts(list, v);
}

/* One order of the export while its ledger rows are read: its own cells
 * (number to currency, and topic) already written, its money summed. */
struct export_order {
	int64_t		id;		/* 0: none yet */
	char		currency[8];
	struct buf	front;		/* number ... currency, as cells */
	struct buf	topic;		/* the topic's text */
	int64_t		paid, refunded, paid_card, refunded_card;
	int64_t		paid_at;	/* first payment, 0 if none */
	int64_t		refunded_at;	/* latest refund, 0 if none */
	int		payments, refunds;
	struct buf	pay_methods, pay_refs, refund_methods, refund_refs;
};

/* Calls fn (buf_init, buf_reset or buf_free) on each buffer of o. */
static void
export_order_bufs(struct export_order *o, void (*fn)(struct buf *))
{
	struct buf *all[] = { &o->front, &o->topic, &o->pay_methods,
	    &o->pay_refs, &o->refund_methods, &o->refund_refs };

	for (size_t i = 0; i < ARRAY_LEN(all); i++)
		fn(all[i]);
}

/* Starts order o afresh from the order columns of the row in s. */
static void
export_order_start(struct export_order *o, sqlite3_stmt *s)
{
	const char	*cur = db_text(s, 7);
	struct buf	 t;

	o->id = sqlite3_column_int64(s, 0);
	snprintf(o->currency, sizeof(o->currency), "%s", cur);
	export_order_bufs(o, buf_reset);
	o->paid = o->refunded = o->paid_card = o->refunded_card = 0;
	o->paid_at = o->refunded_at = 0;
	o->payments = o->refunds = 0;
	buf_init(&t);
	fmt_iso(&t, sqlite3_column_int64(s, 2));
	csv_cell(&o->front, db_text(s, 1), 1);
	csv_next(&o->front, t.data);
	for (int c = 3; c <= 5; c++)
		csv_next(&o->front, db_text(s, c));
	buf_putc(&o->front, ',');
	csv_money(&o->front, sqlite3_column_int64(s, 6), cur);
	csv_next(&o->front, cur);
	buf_puts(&o->topic, db_text(s, 8));
	buf_free(&t);
}

/* Adds the ledger row in s (if the order has one) to order o. */
static void
export_order_add(struct export_order *o, sqlite3_stmt *s)
{
	int64_t		 amount = sqlite3_column_int64(s, 10);
	int64_t		 at = sqlite3_column_int64(s, 13);
	const char	*method = db_text(s, 11), *ref = db_text(s, 12);
	int		 card = strcmp(method, "card") == 0;

	if (sqlite3_column_type(s, 9) == SQLITE_NULL)
		return;
	if (strcmp(db_text(s, 9), "payment") == 0) {
		o->paid += amount;
		o->paid_card += card ? amount : 0;
		if (o->payments == 0)
			o->paid_at = at;
		list_add(&o->pay_methods, o->payments, method);
		list_add(&o->pay_refs, o->payments++, ref);
	} else {
		o->refunded += amount;
		o->refunded_card += card ? amount : 0;
		o->refunded_at = at;
		list_add(&o->refund_methods, o->refunds, method);
		list_add(&o->refund_refs, o->refunds++, ref);
	}
}

/* Returns the text of list, "" when nothing was ever put in it (its
 * data is NULL until then). */
static const char *
list_text(const struct buf *list)
{
	return list->data != NULL ? list->data : "";
}

/* Appends order o's row to b. */
static void
export_order_row(struct buf *b, const struct export_order *o)
{
	const char *cur = o->currency;
	const int64_t money[] = { o->paid, o->refunded, o->paid - o->refunded,
	    /* The same money by the way it moved: card (Stripe), or any
	     * other method recorded by hand. */
	    o->paid_card, o->paid - o->paid_card, o->refunded_card,
	    o->refunded - o->refunded_card };

	buf_append(b, o->front.data, o->front.len);
	for (size_t i = 0; i < ARRAY_LEN(money); i++) {
		buf_putc(b, ',');
		csv_money(b, money[i], cur);
	}
	csv_next(b, list_text(&o->topic));
	csv_time(b, o->paid_at);
	csv_time(b, o->refunded_at);
	csv_next(b, list_text(&o->pay_methods));
	csv_next(b, list_text(&o->pay_refs));
	csv_next(b, list_text(&o->refund_methods));
	csv_next(b, list_text(&o->refund_refs));
	buf_puts(b, "\r\n");
}

/* Appends the header row of names to b. */
static void
csv_head(struct buf *b, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ',');
		csv_cell(b, names[i], 1);
	}
	buf_puts(b, "\r\n");
}

/* Sends the finished file b as an attachment named pmb-WHAT-DATE.csv. */
static void
csv_send(struct request *r, const char *what, const struct buf *b)
{
	struct buf t;

	buf_init(&t);
	fmt_iso(&t, now_unix());
	http_header(r, "Content-Disposition", req_printf(r,
	    "attachment; filename=\"pmb-%s-%.10s.csv\"", what, t.data));
	http_open(r, 200, "text/csv; charset=utf-8; header=present");
	http_write(r, b->data, b->len);
	buf_free(&t);
}

/* Appends every order's row to b, one per order, oldest first. Returns 1,
 * or 0 on a database error. */
static int
export_orders(struct buf *b)
{
	sqlite3_stmt		*s = db_stmt(ST_EXPORT_ORDERS);
	struct export_order	 o = { .id = 0 };
	int			 rc;

	if (s == NULL)
		return 0;
	export_order_bufs(&o, buf_init);
	while ((rc = db_step(ST_EXPORT_ORDERS)) == DB_ROW) {
		if (sqlite3_column_int64(s, 0) != o.id) {
			if (o.id != 0)
				export_order_row(b, &o);
			export_order_start(&o, s);
		}
		export_order_add(&o, s);
	}
	db_done(ST_EXPORT_ORDERS);
	if (o.id != 0)
		export_order_row(b, &o);
	export_order_bufs(&o, buf_free);
	return rc != DB_ERROR;
}

/* GET /admin/export.csv: one row per order, oldest first; the columns up
 * to refunded_otherwise are an interface older than the ones after. */
void
page_admin_export_csv(struct request *r)
{
	static const char *const head[] = { "number", "created", "status",
	    "name", "email", "price", "currency", "paid", "refunded", "net",
	    "paid_by_card", "paid_otherwise", "refunded_to_card",
	    "refunded_otherwise", "topic", "paid_at", "refunded_at",
	    "payment_methods", "payment_references", "refund_methods",
	    "refund_references" };
	struct buf b;

	buf_init(&b);
	csv_head(&b, head, ARRAY_LEN(head));
	if (!export_orders(&b))
		page_unavailable(r);
	else
		csv_send(r, "orders", &b);
	buf_free(&b);
}

/* GET /admin/export-ledger.csv: one row per payment or refund, in ledger
 * order, with the staff member who recorded it ("stripe" or "system"
 * when none did: EXPORT_LEDGER). */
void
page_admin_export_ledger_csv(struct request *r)
{
	static const char *const head[] = { "number", "at", "kind", "amount",
	    "currency", "method", "reference", "recorded_by" };
	sqlite3_stmt	*s = db_stmt(ST_EXPORT_LEDGER);
	struct buf	 b;
	int		 rc = DB_ERROR;

	buf_init(&b);
	csv_head(&b, head, ARRAY_LEN(head));
	while (s != NULL && (rc = db_step(ST_EXPORT_LEDGER)) == DB_ROW) {
		csv_cell(&b, db_text(s, 0), 1);
		csv_time(&b, sqlite3_column_int64(s, 1));
		csv_next(&b, db_text(s, 2));
		buf_putc(&b, ',');
		csv_money(&b, sqlite3_column_int64(s, 3), db_text(s, 4));
		for (int c = 4; c <= 7; c++)
			csv_next(&b, db_text(s, c));
		buf_puts(&b, "\r\n");
	}
	if (s != NULL)
		db_done(ST_EXPORT_LEDGER);
	if (rc == DB_ERROR)
		page_unavailable(r);
	else
		csv_send(r, "ledger", &b);
	buf_free(&b);
}

/* POST /admin/orders/ID/export takes the CSRF token only. */
const struct field privacy_export_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Reads order id's number and erasure time (0: not erased) into *number
 * (owned by the request) and *erased. Returns 1, 0 when there is no such
 * order, -1 on a database error. */
static int
export_order_state(struct request *r, int64_t id, const char **number,
    int64_t *erased)
{
	sqlite3_stmt	*s = db_stmt(ST_PEX_ORDER_CLIENT);
	int		 rc;

	if (s == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_PEX_ORDER_CLIENT)) == DB_ROW) {
		*number = req_strdup(r, db_text(s, 2));
		*erased = sqlite3_column_int64(s, 3);
	}
	db_done(ST_PEX_ORDER_CLIENT);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

/* Answers 409 for order number, whose personal data was erased at
 * erased: there is nothing to export. */
static void
export_erased(struct request *r, const char *number, int64_t erased)
{
	page_error(r, 409, "Nothing to export", req_printf(r, "The personal "
	    "data of order %s was erased on %s: nothing about its client is "
	    "left to export.", number, page_date(r, erased)));
}

/* Records that staff exported the data of order id's client ("n orders";
 * never the address or the data). Returns 1, or 0 (rolled back). */
static int
export_audit(struct request *r, int64_t id, int64_t n)
{
	if (!db_begin())
		return 0;
	if (!audit_log(r, r->session->user_id, "privacy_export", id,
	    req_printf(r, "%lld order%s", (long long)n, n == 1 ? "" : "s")) ||
	    !db_commit()) {
		db_rollback();
		return 0;
	}
	return 1;
}

/* POST /admin/orders/ID/export: the order's client's data, every order
 * of their address, as a JSON attachment named for the order; built
 * whole and audited before the first byte goes. 404 without such an
 * order, 409 when it was erased. */
void
page_admin_privacy_export(struct request *r)
{
	const char	*number = NULL;
	char		*doc;
	int64_t		 id, erased = 0, n;
	size_t		 len = 0;
	int		 rc = 0;

	if (r->arg != NULL && parse_int64(r->arg, 1, INT64_MAX, &id))
		rc = export_order_state(r, id, &number, &erased);
	if (!page_found(r, rc, "No such order", "There is no order with "
	    "this number."))
		return;
	if (erased != 0) {
		export_erased(r, number, erased);
		return;
	}
	if ((doc = privacy_export_order(id, &len, &n)) == NULL) {
		if (n == 0)	/* erased since */
			export_erased(r, number, now_unix());
		else
			page_unavailable(r);
		return;
	}
	if (!export_audit(r, id, n)) {
		free(doc);
		page_unavailable(r);
		return;
	}
	r->download = 1;
	http_header(r, "Content-Disposition", req_printf(r,
	    "attachment; filename=\"pmb-export-%s.json\"", number));
	http_open(r, 200, "application/json; charset=utf-8");
	http_write(r, doc, len);
	free(doc);
}
