/* page_admin_export.c: GET /admin/export.csv — every order with its
 * money, for the accountant. Money comes from the ledger only. */
#include <string.h>

#include "db.h"
#include "page.h"

/* Appends one CSV cell (RFC 4180): quoted when it holds a quote, comma,
 * CR or LF, with its quotes doubled. A text cell that starts with = + -
 * @ (or a tab or CR) gets a leading ' so that a spreadsheet shows it
 * instead of running it as a formula; numbers the program formatted are
 * written as they are. */
static void
csv_cell(struct buf *b, const char *v, int text)
{
	int guard = text && *v != '\0' && strchr("=+-@\t\r", *v) != NULL;

	if (!guard && strpbrk(v, "\",\r\n") == NULL) {
		buf_puts(b, v);
		return;
	}
	buf_putc(b, '"');
	if (guard)
		buf_putc(b, '\'');
	for (; *v != '\0'; v++) {
		if (*v == '"')
			buf_putc(b, '"');
		buf_putc(b, *v);
	}
	buf_putc(b, '"');
}

/* GET /admin/export.csv: one row per order, oldest first. The whole file
 * is made before it is sent, so a database error answers 503 instead of
 * a file that silently lacks rows. */
void
page_admin_export_csv(struct request *r)
{
	static const char *const head[] = { "number", "created", "status",
	    "name", "email", "price", "currency", "paid", "refunded", "net" };
	sqlite3_stmt	*s = db_stmt(ST_EXPORT_ORDERS);
	struct buf	 b, t;
	int		 rc;

	if (s == NULL) {
		page_unavailable(r);
		return;
	}
	buf_init(&b);
	buf_init(&t);
	for (size_t i = 0; i < ARRAY_LEN(head); i++)
		buf_printf(&b, "%s%s", i ? "," : "", head[i]);
	buf_puts(&b, "\r\n");
	while ((rc = db_step(ST_EXPORT_ORDERS)) == DB_ROW) {
		int64_t paid = sqlite3_column_int64(s, 7);
		int64_t refunded = sqlite3_column_int64(s, 8);

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
		fmt_money(&b, sqlite3_column_int64(s, 5));
		buf_putc(&b, ',');
		csv_cell(&b, db_text(s, 6), 1);
		buf_putc(&b, ',');
		fmt_money(&b, paid);
		buf_putc(&b, ',');
		fmt_money(&b, refunded);
		buf_putc(&b, ',');
		fmt_money(&b, paid - refunded);
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
