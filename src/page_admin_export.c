/* page_admin_export.c: GET /admin/export.csv — every order with its
 * money, for the accountant. Money comes from the ledger only. */
#include <string.h>

#include "currency.h"
#include "db.h"
#include "page.h"

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

/* GET /admin/export.csv: one row per order, oldest first. The whole file
 * is made before it is sent, so a database error answers 503 instead of
 * a file that silently lacks rows. */
void
page_admin_export_csv(struct request *r)
{
	static const char *const head[] = { "number", "created", "status",
	    "name", "email", "price", "currency", "paid", "refunded", "net",
	    "paid_by_card", "paid_otherwise", "refunded_to_card",
	    "refunded_otherwise" };
	sqlite3_stmt	*s = db_stmt(ST_EXPORT_ORDERS);
	struct buf	 b, t;
	int		 rc;

	if (s == NULL) {
		page_unavailable(r);
		return;
	}
	buf_init(&b);
	buf_init(&t);
	for (size_t i = 0; i < ARRAY_LEN(head); i++) {
		if (i > 0)
			buf_putc(&b, ',');
		csv_cell(&b, head[i], 1);
	}
	buf_puts(&b, "\r\n");
	while ((rc = db_step(ST_EXPORT_ORDERS)) == DB_ROW) {
		int64_t paid = sqlite3_column_int64(s, 7);
		int64_t refunded = sqlite3_column_int64(s, 8);
		int64_t paid_card = sqlite3_column_int64(s, 9);
		int64_t refunded_card = sqlite3_column_int64(s, 10);
		const char *cur = db_text(s, 6);

		buf_reset(&t);
		fmt_iso(&t, sqlite3_column_int64(s, 1));
		csv_cell(&b, db_text(s, 0), 1);
		buf_putc(&b, ',');
		csv_cell(&b, t.data, 1);
		for (int c = 2; c <= 4; c++) {
			buf_putc(&b, ',');
			csv_cell(&b, db_text(s, c), 1);
		}
		buf_putc(&b, ',');
		csv_money(&b, sqlite3_column_int64(s, 5), cur);
		buf_putc(&b, ',');
		csv_cell(&b, cur, 1);
		buf_putc(&b, ',');
		csv_money(&b, paid, cur);
		buf_putc(&b, ',');
		csv_money(&b, refunded, cur);
		buf_putc(&b, ',');
		csv_money(&b, paid - refunded, cur);
		/* The same money by the way it moved: card (Stripe), or
		 * any other method recorded by hand. */
		buf_putc(&b, ',');
		csv_money(&b, paid_card, cur);
		buf_putc(&b, ',');
		csv_money(&b, paid - paid_card, cur);
		buf_putc(&b, ',');
		csv_money(&b, refunded_card, cur);
		buf_putc(&b, ',');
		csv_money(&b, refunded - refunded_card, cur);
		buf_puts(&b, "\r\n");
	}
	db_done(ST_EXPORT_ORDERS);
	if (rc == DB_ERROR) {
		buf_free(&b);
		buf_free(&t);
		page_unavailable(r);
		return;
	}
	buf_reset(&t);
	fmt_iso(&t, now_unix());
	http_header(r, "Content-Disposition", req_printf(r,
	    "attachment; filename=\"pmb-orders-%.10s.csv\"", t.data));
	http_open(r, 200, "text/csv; charset=utf-8; header=present");
	http_write(r, b.data, b.len);
	buf_free(&b);
	buf_free(&t);
}
