/* outbox.c: the outbox's state machine, queued -> sending -> sent, or
 * back to queued after a failed try, or failed.
 *
 * A sender claims one due message at a time in a BEGIN IMMEDIATE
 * transaction (status 'sending', claimed_until = now + the longest a
 * try may take), sends it, then marks it sent, or counts the failure
 * and schedules the next try with a growing pause, until
 * mail_max_attempts, when it is marked failed. Two senders never hold
 * the same message; a claim left by a sender that died expires and the
 * message is taken again: a crash may resend a message, never lose it.
 */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "mail.h"
#include "mail_transport.h"
#include "outbox.h"
#include "util.h"

#define CLAIM_MARGIN	60	/* seconds a claim outlasts a try's timeout */

int64_t
mail_backoff(int64_t failed_tries)
{
	static const int64_t pause[] = { 60, 5 * 60, 30 * 60, 2 * 3600,
	    6 * 3600, 12 * 3600, 24 * 3600 };

	return backoff_pick(pause, ARRAY_LEN(pause), failed_tries);
}

/* A message claimed from the outbox, with copies of its strings. */
struct claimed {
	struct mail_msg	 m;
	int64_t		 attempts;	/* tries before this one */
	int64_t		 claim;		/* our claimed_until */
	char		*str[6];
	char		*html;		/* str[5] in its frame (mail_frame) */
};

/* Frees the strings of a claimed message. */
static void
claimed_free(struct claimed *c)
{
	for (size_t i = 0; i < ARRAY_LEN(c->str); i++)
		free(c->str[i]);
	free(c->html);
	memset(c, 0, sizeof(*c));
}

/* Seconds a claim lasts: longer than any one try may take. */
static int64_t
claim_seconds(void)
{
	return conf.smtp_timeout + CLAIM_MARGIN;
}

/* Claims the next due message (or one whose claim expired) in one
 * transaction. Returns 1 with it in c, 0 if none is due, -1 on error. */
static int
claim_next(struct claimed *c)
{
	sqlite3_stmt	*s;
	int64_t		 now = now_unix();
	int		 rc;

	memset(c, 0, sizeof(*c));
	c->claim = now + claim_seconds();
	if (!db_begin())
		return -1;
	if ((s = db_stmt(ST_OUTBOX_CLAIM)) == NULL ||
	    !db_bind(s, "iii", c->claim, now, now)) {
		db_rollback();
		return -1;
	}
	rc = db_step(ST_OUTBOX_CLAIM);
	if (rc == DB_ROW) {
		c->m.id = sqlite3_column_int64(s, 0);
		for (int i = 0; i < 6; i++)
			c->str[i] = xstrdup(db_text(s, i + 1));
		c->m.kind = c->str[0];
		c->m.to_addr = c->str[1];
		c->m.to_name = c->str[2];
		c->m.subject = c->str[3];
		c->m.body_text = c->str[4];
		c->m.created_at = sqlite3_column_int64(s, 7);
		c->attempts = sqlite3_column_int64(s, 8);
		c->m.order_id = sqlite3_column_int64(s, 9);
	}
	db_done(ST_OUTBOX_CLAIM);
	if (rc == DB_ERROR || rc == DB_CONSTRAINT || !db_commit()) {
		db_rollback();
		claimed_free(c);
		return -1;
	}
	/* Framed after the commit: on failure the claim runs out and the
	 * message is tried again, as after any failed try. */
	if (rc == DB_ROW) {
		struct buf	b;

		buf_init(&b);
		if (!mail_frame(&b, c->m.subject, c->str[5],
		    mail_marked(c->m.order_id, c->m.to_addr))) {
			buf_free(&b);
			claimed_free(c);
			return -1;
		}
		c->m.body_html = c->html = buf_take(&b);
	}
	return rc == DB_ROW;
}

/* Marks a claimed message sent. Returns 1, or 0 on error (then it is
 * sent again once the claim expires). */
static int
mark_sent(const struct claimed *c)
{
	int wiped;

	if (!db_begin())
		return 0;
	if (db_run(ST_OUTBOX_SENT, "ii", now_unix(), c->m.id) != DB_DONE ||
	    (wiped = db_update(ST_PRIVACY_MAIL_WIPE_DONE, "i", c->m.id)) < 0 ||
	    !db_commit()) {
		db_rollback();
		return 0;
	}
	if (wiped > 0)
		(void)db_wal_truncate(1);	/* the -wal too; best effort */
	return 1;
}

/* Counts a failed try of a claimed message: queued again after the
 * backoff, or failed for good after mail_max_attempts tries (at once
 * if permanent). Returns 1, or 0 on error. */
static int
mark_failed(const struct claimed *c, const char *error, int permanent,
    int64_t *next_at, int *gave_up)
{
	int64_t tries = c->attempts + 1;
	int64_t max = permanent ? 1 : conf.mail_max_attempts;
	int	wiped;

	*next_at = now_unix() + mail_backoff(tries);
	*gave_up = tries >= max;
	if (!db_begin())
		return 0;
	if (db_run(ST_OUTBOX_FAILED, "tiiii", error, *next_at, max,
	    c->m.id, c->claim) != DB_DONE ||
	    (wiped = db_update(ST_PRIVACY_MAIL_WIPE_DONE, "i", c->m.id)) < 0 ||
	    !db_commit()) {
		db_rollback();
		return 0;
	}
	if (wiped > 0)
		(void)db_wal_truncate(1);	/* the -wal too; best effort */
	return 1;
}

int
mail_deliver_due(int (*stop)(void), int *sent, int *failed)
{
	struct claimed	c;
	struct buf	err, when;
	int		rc, permanent, gave_up, ok = 1;
	int64_t		next_at;

	buf_init(&err);
	buf_init(&when);
	while (stop == NULL || !stop()) {
		if ((rc = claim_next(&c)) <= 0) {
			ok = rc == 0;
			break;
		}
		buf_reset(&err);
		if (mail_transport_send(&c.m, &err, &permanent)) {
			if (!mark_sent(&c)) {
				log_msg("mail: #%lld %s was sent but cannot "
				    "be marked sent; it will be sent again",
				    (long long)c.m.id, c.m.kind);
				ok = 0;
			} else
				log_msg("mail: #%lld %s sent (%s, try %lld)",
				    (long long)c.m.id, c.m.kind,
				    conf.mail_transport,
				    (long long)c.attempts + 1);
			if (sent != NULL)
				(*sent)++;
		} else {
			if (err.len == 0)
				buf_puts(&err, "unknown error");
			if (!mark_failed(&c, err.data, permanent, &next_at,
			    &gave_up)) {
				log_msg("mail: #%lld %s failed and cannot be "
				    "rescheduled", (long long)c.m.id,
				    c.m.kind);
				ok = 0;
			} else if (gave_up)
				log_msg("mail: #%lld %s failed (try %lld), "
				    "giving up: %s", (long long)c.m.id,
				    c.m.kind, (long long)c.attempts + 1,
				    err.data);
			else {
				buf_reset(&when);
				fmt_iso(&when, next_at);
				log_msg("mail: #%lld %s failed (try %lld of "
				    "%lld), next try %s: %s",
				    (long long)c.m.id, c.m.kind,
				    (long long)c.attempts + 1,
				    (long long)conf.mail_max_attempts,
				    when.data, err.data);
			}
			if (failed != NULL)
				(*failed)++;
		}
		claimed_free(&c);
		if (!ok)
			break;
	}
	buf_free(&err);
	buf_free(&when);
	return ok;
}
