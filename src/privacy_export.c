/* privacy_export.c: everything held about a client, as one JSON document
 * built with jansson (never by hand), for "pmbctl privacy export" and the
 * order page's "Export this client's data" (page_admin_export.c).
 *
 * One document holds every order of the address (any case) that is not
 * erased, each with what the client may see of it: the thread without
 * notes or the draft, the files of those messages as base64, ratings,
 * feedback, the testimonial, refund requests, the ledger's payments and
 * refunds, the emails sent to the client's address and those received
 * from it, the status history without its notes. The README ("Privacy:
 * export") describes it field by field.
 *
 * Why base64 in one document: one download, and no zip writer to carry.
 * The price is memory while it is built: the base64 text is held twice,
 * in jansson's tree and in the written document, each 4/3 of the bytes:
 * about 3 times the files' size, measured (bench/README.md, "The privacy
 * export's memory"). Everything is read in one read transaction,
 * so the document is one snapshot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "conf.h"
#include "currency.h"
#include "db.h"
#include "order.h"
#include "privacy_export.h"
#include "util.h"

#define EXPORT_FORMAT	"pmb-export"	/* the document's "format" */
#define EXPORT_VERSION	1		/* its "version": add fields freely,
					 * bump on a change of meaning */
#define EXPORT_INDENT	2		/* spaces: a person may read it */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */

/* The columns of PEX_ORDERS (src/db_stmts.h), in its order. */
enum order_col {
	OC_ID, OC_NUMBER, OC_STATUS,
	OC_TIMES,			/* created_at ... cancelled_at: 9 */
	OC_PRICE = OC_TIMES + 9, OC_CURRENCY, OC_TOPIC,
	OC_CLIENT,			/* name, email, company, website, ip */
	OC_EMAIL = OC_CLIENT + 1,
	OC_FOLLOWUPS = OC_CLIENT + 5, OC_RATING, OC_RATED_AT
};

/* How one column of a statement's row becomes members of its object. */
enum col_kind {
	J_TEXT,		/* a string */
	J_INT,		/* a number */
	J_TIME,		/* Unix seconds as ISO 8601 UTC; null when NULL or 0 */
	J_MONEY		/* minor units, the currency in the next column:
			 * KEY_minor (a number) and KEY (a decimal string) */
};

struct col {
	const char	*key;
	enum col_kind	 kind;
};

/* Returns the length of the UTF-8 sequence that lead byte c starts, 1
 * for a byte that starts none. */
static size_t
utf8_seq_len(unsigned char c)
{
	if (c >= 0xf0)
		return 4;
	if (c >= 0xe0)
		return 3;
	if (c >= 0xc0)
		return 2;
	return 1;
}

/* Returns s as a JSON string. Text that is not valid UTF-8 (which no
 * input check lets in, but an old row might hold) is exported with each
 * bad byte as U+FFFD rather than not at all. NULL on memory failure. */
static json_t *
jtext(const char *s)
{
	struct buf	 b;
	json_t		*j;

	if (utf8_valid(s, strlen(s)))
		return json_string(s);
	buf_init(&b);
	while (*s != '\0') {
		size_t n = utf8_seq_len((unsigned char)*s);

		if (strnlen(s, n) == n && utf8_valid(s, n))
			buf_append(&b, s, n);
		else {
			buf_puts(&b, UTF8_REPLACEMENT);
			n = 1;
		}
		s += n;
	}
	j = json_string(b.data != NULL ? b.data : "");
	buf_free(&b);
	return j;
}

/* Sets member k of o to v, taking v. Returns 1, or 0 when v is NULL (a
 * failed allocation) or it could not be set. */
static int
put(json_t *o, const char *k, json_t *v)
{
	return v != NULL && json_object_set_new(o, k, v) == 0;
}

/* Returns time t as ISO 8601 UTC, or null for 0 (never happened). NULL
 * on memory failure. */
static json_t *
jtime(int64_t t)
{
	struct buf	 b;
	json_t		*j;

	if (t == 0)
		return json_null();
	buf_init(&b);
	fmt_iso(&b, t);
	j = json_string(b.data);
	buf_free(&b);
	return j;
}

/* Sets KEY_minor and KEY of o to minor units of currency: the number and
 * the decimal string ("150.00" GBP, "1500" JPY). Returns 1 or 0. */
static int
put_money(json_t *o, const char *key, int64_t minor, const char *currency)
{
	char	m[MONEY_TEXT_MAX], k[64];

	snprintf(k, sizeof(k), "%s_minor", key);
	return put(o, k, json_integer(minor)) && put(o, key,
	    json_string(money_text(m, minor, currency_exponent(currency))));
}

/* Sets the member of column i of the row in s as c says. Returns 1 or
 * 0. */
static int
put_col(json_t *o, const struct col *c, sqlite3_stmt *s, int i)
{
	switch (c->kind) {
	case J_INT:
		return put(o, c->key, json_integer(
		    sqlite3_column_int64(s, i)));
	case J_TIME:
		return put(o, c->key, jtime(sqlite3_column_int64(s, i)));
	case J_MONEY:
		return put_money(o, c->key, sqlite3_column_int64(s, i),
		    db_text(s, i + 1));
	default:
		return put(o, c->key, jtext(db_text(s, i)));
	}
}

/* Sets the n members cols of o from the columns of the row of s, the
 * first from column first. Returns 1 or 0. */
static int
put_cols(json_t *o, const struct col *cols, size_t n, sqlite3_stmt *s,
    int first)
{
	for (size_t i = 0; i < n; i++)
		if (!put_col(o, &cols[i], s, first + (int)i))
			return 0;
	return 1;
}

/* Makes one row's JSON from the row of statement s; ctx is the
 * caller's. Returns NULL on failure. */
typedef json_t *(*row_fn)(sqlite3_stmt *s, const void *ctx);

/* Returns the rows of statement st, bound to id (and, when email is not
 * NULL, to that address as its second parameter), each made by fn, as
 * an array. NULL on a database or memory failure. */
static json_t *
rows_array(enum stmt st, int64_t id, const char *email, row_fn fn,
    const void *ctx)
{
	sqlite3_stmt	*s = db_stmt(st);
	json_t		*arr = json_array();
	int		 ok, rc = DB_ERROR;

	ok = s != NULL && arr != NULL && (email == NULL ?
	    db_bind(s, "i", id) : db_bind(s, "it", id, email));
	while (ok && (rc = db_step(st)) == DB_ROW)
		ok = json_array_append_new(arr, fn(s, ctx)) == 0;
	if (s != NULL)
		db_done(st);
	if (ok && rc != DB_ERROR)
		return arr;
	json_decref(arr);
	return NULL;
}

/* The columns of a statement's rows, for cols_row. */
struct cols {
	const struct col	*col;
	size_t			 n;
};

/* A row_fn: the row of s as an object whose members are the columns of
 * ctx (a struct cols). NULL on failure. */
static json_t *
cols_row(sqlite3_stmt *s, const void *ctx)
{
	const struct cols	*c = ctx;
	json_t			*row = json_object();

	if (row != NULL && put_cols(row, c->col, c->n, s, 0))
		return row;
	json_decref(row);
	return NULL;
}

/* Returns the rows of st for order id (and address email, if not NULL)
 * as an array of objects whose members are the n columns cols. NULL on
 * failure. */
static json_t *
rows_json(enum stmt st, int64_t id, const char *email,
    const struct col *cols, size_t n)
{
	const struct cols c = { cols, n };

	return rows_array(st, id, email, cols_row, &c);
}

/* Sets member k of o to the rows of st for order id (rows_json).
 * Returns 1 or 0. */
static int
put_rows(json_t *o, const char *k, enum stmt st, int64_t id,
    const char *email, const struct col *cols, size_t n)
{
	return put(o, k, rows_json(st, id, email, cols, n));
}

/* Sets member k of o to the one row of st for order id, or null when it
 * has none. Returns 1 or 0. */
static int
put_row(json_t *o, const char *k, enum stmt st, int64_t id,
    const struct col *cols, size_t n)
{
	json_t	*arr = rows_json(st, id, NULL, cols, n), *v;

	if (arr == NULL)
		return 0;
	v = json_array_size(arr) > 0 ? json_incref(json_array_get(arr, 0)) :
	    json_null();
	json_decref(arr);
	return put(o, k, v);
}

/* A row_fn: the file in the row of s (PEX_FILES) as an object: name,
 * kind, size, sha256 in hex, created_at, and its bytes as data_base64
 * (libsodium's original variant, with padding). NULL on failure. */
static json_t *
file_json(sqlite3_stmt *s, const void *ctx)
{
	const unsigned char	*sum = sqlite3_column_blob(s, 3);
	const unsigned char	*data = sqlite3_column_blob(s, 5);
	size_t			 n = (size_t)sqlite3_column_bytes(s, 5);
	size_t			 b64len = sodium_base64_ENCODED_LEN(n,
				    sodium_base64_VARIANT_ORIGINAL);
	char			 hex[crypto_hash_sha256_BYTES * 2 + 1];
	char			*b64;
	json_t			*f = json_object();
	int			 ok;

	(void)ctx;
	if (f == NULL || (data == NULL && n > 0) ||
	    sqlite3_column_bytes(s, 3) != crypto_hash_sha256_BYTES ||
	    (b64 = malloc(b64len)) == NULL) {
		json_decref(f);
		return NULL;
	}
	sodium_bin2hex(hex, sizeof(hex), sum, crypto_hash_sha256_BYTES);
	sodium_bin2base64(b64, b64len, data, n,
	    sodium_base64_VARIANT_ORIGINAL);
	ok = put(f, "name", jtext(db_text(s, 0))) &&
	    put(f, "kind", jtext(db_text(s, 1))) &&
	    put(f, "size", json_integer(sqlite3_column_int64(s, 2))) &&
	    put(f, "sha256", json_string(hex)) &&
	    put(f, "created_at", jtime(sqlite3_column_int64(s, 4))) &&
	    put(f, "data_base64", json_stringn_nocheck(b64, b64len - 1));
	free(b64);
	if (ok)
		return f;
	json_decref(f);
	return NULL;
}

/* A row_fn: the message in the row of s (PEX_MESSAGES) as an object:
 * kind, from ("consultant" for a reply, else "client"), created_at, text
 * (a reply's Markdown as written) and files. NULL on failure. */
static json_t *
message_json(sqlite3_stmt *s, const void *ctx)
{
	const char	*kind = db_text(s, 1);
	json_t		*m = json_object();

	(void)ctx;
	if (m != NULL && put(m, "kind", json_string(kind)) &&
	    put(m, "from", json_string(strcmp(kind, "reply") == 0 ?
	    "consultant" : "client")) &&
	    put(m, "created_at", jtime(sqlite3_column_int64(s, 2))) &&
	    put(m, "text", jtext(db_text(s, 3))) &&
	    put(m, "files", rows_array(ST_PEX_FILES, sqlite3_column_int64(s,
	    0), NULL, file_json, NULL)))
		return m;
	json_decref(m);
	return NULL;
}

/* Sets "question" (the text of the order's first question; null if it
 * has none) and "messages" of order o, id oid. Returns 1 or 0. */
static int
put_messages(json_t *o, int64_t oid)
{
	json_t	*arr = rows_array(ST_PEX_MESSAGES, oid, NULL, message_json,
		    NULL), *m, *question = NULL;
	size_t	 i;

	if (arr == NULL)
		return 0;
	json_array_foreach(arr, i, m)
		if (question == NULL && strcmp(json_string_value(
		    json_object_get(m, "kind")), "question") == 0)
			question = json_object_get(m, "text");
	if (!put(o, "question", question != NULL ? json_incref(question) :
	    json_null())) {
		json_decref(arr);
		return 0;
	}
	return put(o, "messages", arr);
}

/* Sets the client's details of the row of s (PEX_ORDERS) as "client".
 * Returns 1 or 0. */
static int
put_client(json_t *o, sqlite3_stmt *s)
{
	static const struct col cols[] = { { "name", J_TEXT },
	    { "email", J_TEXT }, { "company", J_TEXT }, { "website", J_TEXT },
	    { "ip", J_TEXT } };
	json_t *c = json_object();

	if (c != NULL && put_cols(c, cols, ARRAY_LEN(cols), s, OC_CLIENT))
		return put(o, "client", c);
	json_decref(c);
	return 0;
}

/* Sets the order's own columns of the row of s (PEX_ORDERS) on o: its
 * number, status, times, price, topic and client. Returns 1 or 0. */
static int
put_order_columns(json_t *o, sqlite3_stmt *s)
{
	static const struct col times[] = { { "created_at", J_TIME },
	    { "due_at", J_TIME }, { "paid_at", J_TIME },
	    { "answered_at", J_TIME }, { "last_answered_at", J_TIME },
	    { "answer_viewed_at", J_TIME }, { "refund_requested_at", J_TIME },
	    { "refunded_at", J_TIME }, { "cancelled_at", J_TIME } };
	static const struct col price[] = { { "price", J_MONEY },
	    { "currency", J_TEXT }, { "topic", J_TEXT } };
	const char *status = db_text(s, OC_STATUS);

	return put(o, "number", jtext(db_text(s, OC_NUMBER))) &&
	    put(o, "status", json_string(status)) &&
	    put(o, "status_label", json_string(order_status_label(status))) &&
	    put_cols(o, times, ARRAY_LEN(times), s, OC_TIMES) &&
	    put_cols(o, price, ARRAY_LEN(price), s, OC_PRICE) &&
	    put_client(o, s) && put(o, "followups_used",
	    json_integer(sqlite3_column_int64(s, OC_FOLLOWUPS))) &&
	    put(o, "rating", sqlite3_column_type(s, OC_RATING) ==
	    SQLITE_NULL ? json_null() : json_string(db_text(s, OC_RATING))) &&
	    put(o, "rated_at", jtime(sqlite3_column_int64(s, OC_RATED_AT)));
}

/* Sets what the client said and was told about order oid (address
 * email): feedback, testimonial, refund requests, payments and refunds,
 * card refunds, emails either way, status history. Returns 1 or 0. */
static int
put_order_records(json_t *o, int64_t oid, const char *email)
{
	static const struct col feedback[] = { { "text", J_TEXT },
	    { "created_at", J_TIME } };
	static const struct col testimonial[] = { { "sentence", J_TEXT },
	    { "name_shown", J_TEXT }, { "status", J_TEXT },
	    { "created_at", J_TIME }, { "updated_at", J_TIME } };
	static const struct col refund[] = { { "reason", J_TEXT },
	    { "status", J_TEXT }, { "requested_at", J_TIME },
	    { "resolved_at", J_TIME }, { "decline_reason", J_TEXT } };
	static const struct col ledger[] = { { "kind", J_TEXT },
	    { "amount", J_MONEY }, { "currency", J_TEXT },
	    { "method", J_TEXT }, { "reference", J_TEXT }, { "at", J_TIME } };
	static const struct col card[] = { { "amount", J_MONEY },
	    { "currency", J_TEXT }, { "status", J_TEXT },
	    { "created_at", J_TIME }, { "settled_at", J_TIME } };
	static const struct col sent[] = { { "kind", J_TEXT },
	    { "subject", J_TEXT }, { "status", J_TEXT },
	    { "created_at", J_TIME }, { "sent_at", J_TIME },
	    { "body_text", J_TEXT } };
	static const struct col received[] = { { "from", J_TEXT },
	    { "from_name", J_TEXT }, { "subject", J_TEXT },
	    { "received_at", J_TIME }, { "body", J_TEXT } };
	static const struct col history[] = { { "status", J_TEXT },
	    { "at", J_TIME } };

	return put_rows(o, "feedback", ST_PEX_FEEDBACK, oid, NULL, feedback,
	    ARRAY_LEN(feedback)) &&
	    put_row(o, "testimonial", ST_PEX_TESTIMONIAL, oid, testimonial,
	    ARRAY_LEN(testimonial)) &&
	    put_rows(o, "refund_requests", ST_PEX_REFUND_REQUESTS, oid, NULL,
	    refund, ARRAY_LEN(refund)) &&
	    put_rows(o, "payments", ST_PEX_LEDGER, oid, NULL, ledger,
	    ARRAY_LEN(ledger)) &&
	    put_rows(o, "card_refunds", ST_PEX_CARD_REFUNDS, oid, NULL, card,
	    ARRAY_LEN(card)) &&
	    put_rows(o, "emails_sent", ST_PEX_OUTBOX, oid, email, sent,
	    ARRAY_LEN(sent)) &&
	    put_rows(o, "emails_received", ST_PEX_INBOUND, oid, email,
	    received, ARRAY_LEN(received)) &&
	    put_rows(o, "status_history", ST_PEX_HISTORY, oid, NULL, history,
	    ARRAY_LEN(history));
}

/* Returns the order in the row of s (PEX_ORDERS) with all it holds, as
 * an object. NULL on a database or memory failure. */
static json_t *
order_json(sqlite3_stmt *s)
{
	int64_t	 oid = sqlite3_column_int64(s, OC_ID);
	char	*email = xstrdup(db_text(s, OC_EMAIL));
	json_t	*o = json_object();
	int	 ok;

	ok = o != NULL && put_order_columns(o, s) && put_messages(o, oid) &&
	    put_order_records(o, oid, email);
	free(email);
	if (ok)
		return o;
	json_decref(o);
	return NULL;
}

/* Returns the document's head: format, version, generated_at, site,
 * controller and the address asked for. NULL on memory failure. */
static json_t *
doc_head(const char *email)
{
	const char	*controller = conf.privacy_controller != NULL &&
			    *conf.privacy_controller != '\0' ?
			    conf.privacy_controller : conf.consultant_name;
	json_t		*d = json_object();

	if (d != NULL && put(d, "format", json_string(EXPORT_FORMAT)) &&
	    put(d, "version", json_integer(EXPORT_VERSION)) &&
	    put(d, "generated_at", jtime(now_unix())) &&
	    put(d, "site", jtext(conf.site_name ? conf.site_name : "")) &&
	    put(d, "controller", jtext(controller ? controller : "")) &&
	    put(d, "email", jtext(email)))
		return d;
	json_decref(d);
	return NULL;
}

/* Returns doc as JSON text (free it) of *len bytes, NUL-terminated.
 * Written twice, first only to learn its size, so that the buffer is
 * allocated once at its size: json_dumps grows its own by doubling,
 * which held up to twice the document (base64 files and all) at once.
 * NULL on memory failure. */
static char *
export_text(const json_t *doc, size_t *len)
{
	const size_t	 flags = JSON_INDENT(EXPORT_INDENT);
	size_t		 n = json_dumpb(doc, NULL, 0, flags);
	char		*out;

	if (n == 0 || (out = malloc(n + 1)) == NULL)
		return NULL;
	if (json_dumpb(doc, out, n, flags) != n) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	*len = n;
	return out;
}

/* Returns the document of the orders of email, inside the caller's read
 * transaction, as JSON text (free it) of *len bytes, with *n orders.
 * NULL on failure. */
static char *
export_build(const char *email, size_t *len, int64_t *n)
{
	sqlite3_stmt	*s = db_stmt(ST_PEX_ORDERS);
	json_t		*doc = doc_head(email), *orders = json_array();
	char		*out = NULL;
	int		 ok, rc = DB_ERROR;

	*n = 0;
	ok = s != NULL && doc != NULL && orders != NULL &&
	    db_bind(s, "t", email);
	while (ok && (rc = db_step(ST_PEX_ORDERS)) == DB_ROW) {
		ok = json_array_append_new(orders, order_json(s)) == 0;
		*n += ok;
	}
	if (s != NULL)
		db_done(ST_PEX_ORDERS);
	if (ok && rc != DB_ERROR) {
		/* put takes orders, set or not. */
		if (put(doc, "orders", orders))
			out = export_text(doc, len);
	} else
		json_decref(orders);
	json_decref(doc);
	if (out == NULL) {
		log_msg("privacy export: the document could not be built");
		*n = -1;
	}
	return out;
}

char *
privacy_export_email(const char *email, size_t *len, int64_t *n)
{
	char *out;

	*n = 0;
	if (!db_read_begin())
		return NULL;
	out = export_build(email, len, n);
	db_read_end();
	if (out == NULL)
		*n = 0;
	return out;
}

char *
privacy_export_order(int64_t id, size_t *len, int64_t *n)
{
	sqlite3_stmt	*s = db_stmt(ST_PEX_ORDER_CLIENT);
	char		*email = NULL, *out = NULL;
	int		 rc = DB_ERROR;

	*n = -1;
	if (s == NULL || !db_read_begin())
		return NULL;
	if (db_bind(s, "i", id) && (rc = db_step(ST_PEX_ORDER_CLIENT)) ==
	    DB_ROW && sqlite3_column_int(s, 1) == 0)
		email = xstrdup(db_text(s, 0));
	db_done(ST_PEX_ORDER_CLIENT);
	if (rc != DB_ERROR)
		*n = 0;
	if (email != NULL)
		out = export_build(email, len, n);
	db_read_end();
	free(email);
	return out;
}
