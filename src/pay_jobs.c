/* pay_jobs.c: the payment jobs' state machine, queued -> sending ->
 * done, or back to queued after a try that got no answer (Stripe down,
 * a timeout, a 5xx), or failed when Stripe refused (its message in
 * last_error; a refused refund shows on /admin/refunds with Retry).
 *
 * A runner claims one due job at a time in a BEGIN IMMEDIATE
 * transaction (status 'sending', claimed_until = now + the longest a
 * call may take). Two runners never hold the same job; a claim left by
 * a runner that died expires and the job is taken again. The call it
 * then repeats carries the same Idempotency-Key, taken from the
 * committed row, so Stripe answers it with the first call's result: a
 * crash may call twice, never refund twice. After PAY_ADOPT_AFTER the
 * refund's refunds are listed first (card_refund.h). */
#include <stdlib.h>
#include <string.h>

#include "card_refund.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "pay_jobs.h"
#include "stripe.h"
#include "util.h"

#define CLAIM_MARGIN	30	/* seconds a claim outlasts a call's timeout */
#define LIST_LIMIT	100	/* refunds of one PaymentIntent listed */

int64_t
pay_backoff(int64_t failed_tries)
{
	static const int64_t pause[] = { 10, 60, 5 * 60, 30 * 60, 2 * 3600,
	    6 * 3600, 12 * 3600, 24 * 3600 };

	return backoff_pick(pause, ARRAY_LEN(pause), failed_tries);
}

/* A claimed job. */
struct job {
	int64_t	 id, order_id, card_refund_id, session_id, attempts;
	int64_t	 created_at, claim;
	char	 kind[16];
};

/* How a job's try ended. */
enum job_end {
	JOB_DONE,		/* carried out: done */
	JOB_REFUSED,		/* Stripe said no: failed, with why */
	JOB_AGAIN,		/* no answer: queued again after a pause */
	JOB_IDLE,		/* nothing left to do: done, no call made */
	JOB_DB_ERROR,		/* the store failed: the claim expires */
};

/* Claims the next due job (or one whose claim expired) in one
 * transaction. Returns 1 with it in j, 0 if none is due, -1 on error. */
static int
claim_next(struct job *j)
{
	sqlite3_stmt	*s;
	int64_t		 now = now_unix();
	int		 rc;

	memset(j, 0, sizeof(*j));
	j->claim = now + conf.stripe_timeout + CLAIM_MARGIN;
	if (!db_begin())
		return -1;
	if ((s = db_stmt(ST_PAY_JOB_CLAIM)) == NULL ||
	    !db_bind(s, "iii", j->claim, now, now)) {
		db_rollback();
		return -1;
	}
	if ((rc = db_step(ST_PAY_JOB_CLAIM)) == DB_ROW) {
		j->id = sqlite3_column_int64(s, 0);
		snprintf(j->kind, sizeof(j->kind), "%s", db_text(s, 1));
		j->order_id = sqlite3_column_int64(s, 2);
		j->card_refund_id = sqlite3_column_int64(s, 3);
		j->session_id = sqlite3_column_int64(s, 4);
		j->attempts = sqlite3_column_int64(s, 5);
		j->created_at = sqlite3_column_int64(s, 6);
	}
	db_done(ST_PAY_JOB_CLAIM);
	if (rc == DB_ERROR || rc == DB_CONSTRAINT || !db_commit()) {
		db_rollback();
		return -1;
	}
	return rc == DB_ROW;
}

/* Ends job j's claim inside the caller's transaction: done or failed
 * (with error), or queued again after the pause. A claim that expired
 * meanwhile (another runner took the job) changes nothing: what the
 * call did is settled idempotently either way. Returns 1 or 0. */
static int
job_end(const struct job *j, enum job_end end, const char *error)
{
	if (error == NULL)	/* an empty buf's data */
		error = "";
	if (end == JOB_AGAIN)
		return db_run(ST_PAY_JOB_RETRY_LATER, "tiii", error,
		    now_unix() + pay_backoff(j->attempts + 1), j->id,
		    j->claim) == DB_DONE;
	return db_run(ST_PAY_JOB_DONE, "titii", end == JOB_DONE ? "done" :
	    "failed", now_unix(), error, j->id, j->claim) == DB_DONE;
}

/* Looks in the refunds of PaymentIntent pi for the one Stripe made for
 * card refund id (metadata.card_refund_id). Returns STRIPE_OK with it
 * in *found (NULL: none; the caller json_decref's it), or why not. */
static enum stripe_result
adopt(const char *pi, int64_t id, json_t **found, struct stripe_error *err)
{
	struct stripe_params	 p;
	enum stripe_result	 res;
	json_t			*list = NULL, *item;
	const char		*meta;
	char			 want[INT_TEXT_MAX];
	size_t			 i;

	*found = NULL;
	snprintf(want, sizeof(want), "%lld", (long long)id);
	stripe_params_init(&p);
	stripe_param(&p, "payment_intent", pi);
	stripe_param_int(&p, "limit", LIST_LIMIT);
	res = stripe_call("GET", "/v1/refunds", &p, NULL, &list, err);
	stripe_params_free(&p);
	if (res != STRIPE_OK)
		return res;
	json_array_foreach(stripe_get(list, "data"), i, item) {
		meta = stripe_str(item, "metadata.card_refund_id");
		if (meta != NULL && strcmp(meta, want) == 0) {
			*found = json_incref(item);
			break;
		}
	}
	json_decref(list);
	return STRIPE_OK;
}

/* Asks Stripe to pay card refund id back: amount of pi, for order oid.
 * amount goes as it is: in every currency pmb takes cards in
 * (currency_card_ok), Stripe counts in its minor unit (tests/unit.c).
 * Returns as stripe_call. */
static enum stripe_result
refund_call(int64_t id, int64_t oid, const char *pi, int64_t amount,
    json_t **out, struct stripe_error *err)
{
	struct stripe_params	 p;
	enum stripe_result	 res;
	char			 key[STRIPE_KEY_MAX];

	if (stripe_idem_key(key, "refund", id) == NULL) {
		memset(err, 0, sizeof(*err));
		snprintf(err->message, sizeof(err->message), "the store's "
		    "name for Stripe's Idempotency-Key could not be read");
		return STRIPE_RETRY;
	}
	stripe_params_init(&p);
	stripe_param(&p, "payment_intent", pi);
	stripe_param_int(&p, "amount", amount);
	stripe_param(&p, "reason", "requested_by_customer");
	stripe_param_int(&p, "metadata[order_id]", oid);
	stripe_param_int(&p, "metadata[card_refund_id]", id);
	res = stripe_call("POST", "/v1/refunds", &p, key, out, err);
	stripe_params_free(&p);
	return res;
}

/* Records what Stripe said about job j's refund (refund: its Refund
 * object, or NULL with err when it refused) and ends the job, in one
 * transaction. Returns the end, JOB_DB_ERROR if the store failed. */
static enum job_end
refund_record(struct request *r, const struct job *j, json_t *refund,
    const struct stripe_error *err, struct buf *why)
{
	const char	*text = "";
	enum job_end	 end = refund != NULL ? JOB_DONE : JOB_REFUSED;
	int		 rc;

	if (!db_begin())
		return JOB_DB_ERROR;
	if (refund != NULL)
		rc = card_refund_apply(r, j->card_refund_id, refund, &text);
	else {
		buf_printf(why, "Stripe refused the refund: %s", err->message);
		rc = card_refund_fail(r, j->card_refund_id, "", why->data);
	}
	if (refund != NULL)
		buf_puts(why, text);
	if (rc < 0 || !job_end(j, end, end == JOB_DONE ? "" : why->data) ||
	    !db_commit()) {
		db_rollback();
		return JOB_DB_ERROR;
	}
	return end;
}

/* Carries out refund job j. Returns how it ended; why says it. */
static enum job_end
run_refund(struct request *r, const struct job *j, struct buf *why)
{
	struct stripe_error	 err;
	enum stripe_result	 res = STRIPE_OK;
	struct card_row		 c;
	json_t			*refund = NULL;
	enum job_end		 end;
	int			 rc;

	if ((rc = card_row_load(j->card_refund_id, &c)) < 0)
		return JOB_DB_ERROR;
	if (rc == 0 || strcmp(c.status, "pending") != 0) {
		buf_puts(why, "nothing to do: the refund is settled");
		return JOB_IDLE;
	}
	if (now_unix() - c.created_at > PAY_ADOPT_AFTER)
		res = adopt(c.pi, j->card_refund_id, &refund, &err);
	if (res == STRIPE_OK && refund == NULL)
		res = refund_call(j->card_refund_id, j->order_id, c.pi,
		    c.amount, &refund, &err);
	if (res == STRIPE_RETRY) {
		buf_puts(why, err.message);
		return JOB_AGAIN;
	}
	end = refund_record(r, j, refund, &err, why);
	json_decref(refund);
	return end;
}

/* Carries out expire job j: Stripe expires the cancelled order's
 * session, then the session row is expired. Returns how it ended. */
static enum job_end
run_expire(const struct job *j, struct buf *why)
{
	struct stripe_error	 err;
	enum stripe_result	 res = STRIPE_OK;
	sqlite3_stmt		*s = db_stmt(ST_PAY_SESSION_FOR_EXPIRE);
	json_t			*out = NULL;
	char			 cs[PI_MAX] = "", st[16] = "", path[PI_MAX + 64];
	char			 key[STRIPE_KEY_MAX];
	int			 rc;

	if (s == NULL || !db_bind(s, "i", j->session_id))
		return JOB_DB_ERROR;
	if ((rc = db_step(ST_PAY_SESSION_FOR_EXPIRE)) == DB_ROW) {
		snprintf(cs, sizeof(cs), "%s", db_text(s, 0));
		snprintf(st, sizeof(st), "%s", db_text(s, 1));
	}
	db_done(ST_PAY_SESSION_FOR_EXPIRE);
	/* A failed read is no "nothing to do": the session would stay
	 * open at Stripe for a cancelled order. */
	if (rc == DB_ERROR)
		return JOB_DB_ERROR;
	if (strcmp(st, "open") != 0 && strcmp(st, "creating") != 0) {
		buf_puts(why, "nothing to do: the session is no longer open");
		return JOB_IDLE;
	}
	if (*cs != '\0') {
		snprintf(path, sizeof(path), "/v1/checkout/sessions/%s/expire",
		    cs);
		if (stripe_idem_key(key, "expire", j->session_id) == NULL)
			return JOB_DB_ERROR;
		res = stripe_call("POST", path, NULL, key, &out, &err);
		json_decref(out);
	}
	if (res != STRIPE_OK) {
		buf_printf(why, "%s%s", res == STRIPE_REFUSED ? "Stripe "
		    "refused to expire the session: " : "", err.message);
		if (res == STRIPE_RETRY)
			return JOB_AGAIN;
	}
	if (!db_begin())
		return JOB_DB_ERROR;
	if ((res == STRIPE_OK && db_update(ST_CHECKOUT_EXPIRED, "i",
	    j->session_id) < 0) || !job_end(j, res == STRIPE_OK ? JOB_DONE :
	    JOB_REFUSED, why->data) || !db_commit()) {
		db_rollback();
		return JOB_DB_ERROR;
	}
	return res == STRIPE_OK ? JOB_DONE : JOB_REFUSED;
}

/* Carries out claimed job j and ends its claim (but on a database
 * error: then the claim expires and the job is taken again). Logs one
 * line. Returns the end. */
static enum job_end
run_job(const struct job *j)
{
	struct request	 r;
	struct buf	 why;
	enum job_end	 end;

	req_init(&r, NULL);
	r.client_ip = "";	/* audit rows of the machine: no address */
	buf_init(&why);
	end = strcmp(j->kind, "refund") == 0 ? run_refund(&r, j, &why) :
	    run_expire(j, &why);
	/* JOB_AGAIN and JOB_IDLE end the claim here; the others ended it
	 * in the transaction that recorded what Stripe said. */
	if (end == JOB_AGAIN || end == JOB_IDLE) {
		if (end == JOB_IDLE)
			end = JOB_DONE;
		if (!db_begin() || !job_end(j, end, why.data) ||
		    !db_commit()) {
			db_rollback();
			end = JOB_DB_ERROR;
		}
	}
	if (end == JOB_DB_ERROR)
		log_msg("pay: job #%lld %s: a database error; it will be "
		    "taken again", (long long)j->id, j->kind);
	else
		log_msg("pay: job #%lld %s for order %lld (try %lld): %s%s%s",
		    (long long)j->id, j->kind, (long long)j->order_id,
		    (long long)j->attempts + 1, end == JOB_DONE ? "done" :
		    end == JOB_REFUSED ? "failed" : "no answer, tried again "
		    "later", why.len > 0 ? ": " : "", why.len > 0 ? why.data :
		    "");
	buf_free(&why);
	req_free(&r);
	return end;
}

int
pay_jobs_run_due(int (*stop)(void), int *done, int *failed)
{
	struct job	j;
	enum job_end	end;
	int		rc;

	while (stop == NULL || !stop()) {
		if ((rc = claim_next(&j)) <= 0)
			return rc == 0;
		if ((end = run_job(&j)) == JOB_DB_ERROR)
			return 0;
		if (end == JOB_DONE && done != NULL)
			(*done)++;
		if (end != JOB_DONE && failed != NULL)
			(*failed)++;
	}
	return 1;
}
