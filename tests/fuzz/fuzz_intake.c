/* fuzz_intake: a received message through parse and routing
 * (src/mail_intake.c, the one code path of pmbctl mail receive and
 * fetch), into an in-memory database at the current schema with two
 * orders: PMB-000001 paid (client@example.com) and PMB-000002 answered
 * (other@example.com), their confirmation and answer as outbox rows 1
 * and 2. The key is fixed (32 bytes of 0x42, id 1), so the checked-in
 * seeds carry valid reply tokens, Message-IDs and VERP addresses
 * (tests/fuzz/corpus/intake). Checks, after each message: the intake
 * never fails for want of a database (no TEMPFAIL here); a message in an
 * order's thread came from that order's client's address (the "Ticket
 * Trick"); a stored message has its row and a dropped one none; at most
 * one message is added; the routed row and the message agree. The state
 * is put back after each input. */
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "mail_intake.h"
#include "mime.h"
#include "tmpl.h"
#include "token.h"
#include "util.h"
#include "fuzz.h"

static const char setup_sql[] =
    "INSERT INTO orders (id, form_token, name, email, price, currency, "
    " status, created_at, due_at, paid_at, updated_at) VALUES "
    " (1, 'f1', 'Cli Ent', 'client@example.com', 15000, 'GBP', 'paid', 1, 2,"
    " 1, 1);"
    "INSERT INTO orders (id, form_token, name, email, price, currency, "
    " status, created_at, due_at, paid_at, answered_at, last_answered_at, "
    " updated_at) VALUES (2, 'f2', 'Oth Er', 'other@example.com', 15000, "
    " 'GBP', 'answered', 1, 2, 1, 2, 2, 2);"
    "INSERT INTO messages (order_id, kind, body, created_at) VALUES "
    " (1, 'question', 'q1', 1), (2, 'question', 'q2', 1), "
    " (2, 'reply', 'a2', 2);"
    "INSERT INTO outbox (id, kind, order_id, to_addr, subject, body_text, "
    " status, next_at, created_at, sent_at) VALUES "
    " (1, 'confirmation', 1, 'client@example.com', 'S', 'B', 'sent', 0, 1, 1),"
    " (2, 'answer', 2, 'other@example.com', 'S', 'B', 'sent', 0, 2, 2);";

/* What every input leaves changed, put back. */
static const char reset_sql[] =
    "DELETE FROM messages WHERE id > 3;"
    "DELETE FROM inbound;"
    "DELETE FROM outbox WHERE id > 2;"
    "UPDATE outbox SET status = 'sent', bounced_at = NULL, bounce = '';"
    "DELETE FROM audit; DELETE FROM status_history; DELETE FROM "
    " search_pending;"
    "UPDATE inbound_drops SET n = 0, last_at = NULL;"
    "UPDATE orders SET status = 'paid', followups_used = 0, due_at = 2 "
    " WHERE id = 1;"
    "UPDATE orders SET status = 'answered', followups_used = 0, due_at = 2,"
    " answer_viewed_at = NULL WHERE id = 2;";

/* Runs sql on the database; aborts on an error. */
static void
exec_sql(const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db_handle(), sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "fuzz_intake: %s\n", err ? err : "?");
		abort();
	}
}

/* Returns the integer the query gives. */
static int64_t
count(const char *sql)
{
	sqlite3_stmt	*s;
	int64_t		 n = -1;

	if (sqlite3_prepare_v2(db_handle(), sql, -1, &s, NULL) != SQLITE_OK)
		abort();
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char	 here[] = __FILE__;
	unsigned char	 key[32];
	char		 err[512], settings[1024];

	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	mime_start();
	snprintf(settings, sizeof(settings), "template_dir = %s/../../www/"
	    "templates\nreply_address = answers@example.com\nadmin_email = "
	    "sam@example.com\nbase_url = https://ask.example.com\n"
	    "inbound_hourly_limit = 3\n", dirname(here));
	if (!conf_parse(settings, "fuzz.conf", err, sizeof(err)) ||
	    !tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !db_open(":memory:", DB_CREATE, err, sizeof(err)) ||
	    db_migrate(err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_intake: %s\n", err);
		abort();
	}
	memset(key, 0x42, sizeof(key));
	token_key_set(1, key);
	exec_sql(setup_sql);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct intake_result	res;
	int64_t			before, after, rows;

	before = count("SELECT count(*) FROM messages");
	mail_intake((const char *)data, size, "pipe", &res);
	after = count("SELECT count(*) FROM messages");
	rows = count("SELECT count(*) FROM inbound");
	FUZZ_CHECK(res.what != INTAKE_TEMPFAIL, "stored or dropped, never "
	    "failed");
	FUZZ_CHECK(count("SELECT count(*) FROM messages m JOIN inbound i ON "
	    "i.id = m.inbound_id JOIN orders o ON o.id = m.order_id WHERE "
	    "lower(i.from_addr) <> lower(o.email)") == 0,
	    "only the order's client reaches its thread");
	FUZZ_CHECK(res.what == INTAKE_STORED ? rows == 1 &&
	    res.inbound_id > 0 : rows == 0, "a row for what is stored only");
	FUZZ_CHECK(after - before == (res.what == INTAKE_STORED &&
	    count("SELECT count(*) FROM inbound WHERE status = 'routed'") ?
	    1 : 0), "one message for a routed email, none otherwise");
	FUZZ_CHECK(count("SELECT count(*) FROM inbound i WHERE status = "
	    "'routed' AND NOT EXISTS (SELECT 1 FROM messages m WHERE "
	    "m.inbound_id = i.id AND m.order_id = i.order_id)") == 0,
	    "a routed email is its order's message");
	exec_sql(reset_sql);
	return 0;
}
