/* page_rating.c: "happy with the answer?" — the page that the answer
 * email's rating links open (GET /o/TOKEN?rating=yes|no, shown by
 * page_track.c, changes nothing) and its confirm button, POST
 * /o/TOKEN/rating, which stores the rating. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "router.h"

/* Returns NULL if v is yes or no. */
static const char *
check_rating(const char *v)
{
	return !strcmp(v, "yes") || !strcmp(v, "no") ? NULL :
	    "Choose yes or no.";
}

/* The fields of POST /o/TOKEN/rating (an interface). feedback: what was
 * missing, optional, sent with rating=no from the "no" page; stored for
 * the consultant (table feedback), never shown on the status page. */
const struct field rating_fields[] = {
#define RF_RATING	0
	{ "rating", "your rating", 2, 3, F_REQUIRED, check_rating },
#define RF_FEEDBACK	1
	{ "feedback", "what was missing", 0, 5000, F_MULTILINE, NULL },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Sets the "May I quote you?" form's variables of o, rated "yes": the
 * sentence (typed, when the form comes back with quote_error, else the
 * one stored), the name it would show, and whether the client may still
 * change it (none yet, or pending). Returns 1, or 0 on a database
 * error. */
static int
quote_vars(struct request *r, struct tvars *tv, const struct order *o,
    const char *quote_error)
{
	sqlite3_stmt	*s = db_stmt(ST_TESTIMONIAL_BY_ORDER);
	const char	*status = "", *sentence = "", *name = NULL, *sent;
	int		 rc;

	if (s == NULL || !db_bind(s, "i", o->id))
		return 0;
	if ((rc = db_step(ST_TESTIMONIAL_BY_ORDER)) == DB_ROW) {
		sentence = req_strdup(r, db_text(s, 0));
		name = req_strdup(r, db_text(s, 1));
		status = req_strdup(r, db_text(s, 2));
	}
	db_done(ST_TESTIMONIAL_BY_ORDER);
	if (rc == DB_ERROR)
		return 0;
	if (quote_error != NULL) {
		const char *typed = req_body_param(r, "sentence");
		const char *consent = req_body_param(r, "consent");

		sentence = typed != NULL ? typed : "";
		tv_set(tv, "quote_error", quote_error);
		tv_set(tv, "quote_consent_checked", consent != NULL &&
		    !strcmp(consent, "yes") ? "1" : "");
	} else if (*status != '\0')
		tv_set(tv, "quote_consent_checked", "1");
	tv_set(tv, "quote_sentence", sentence);
	tv_set(tv, "quote_name", name != NULL ? name :
	    testimonial_default_name(r, o->name));
	tv_set(tv, "quote_given", *status != '\0' ? "1" : "");
	tv_set(tv, "can_quote", *status == '\0' || !strcmp(status, "pending") ?
	    "1" : "");
	tv_set(tv, "quote_action", req_printf(r, "/o/%s/testimonial",
	    r->arg));
	if ((sent = req_param(r, "quote")) != NULL && !strcmp(sent, "sent") &&
	    *status != '\0')
		tv_set(tv, "quote_sent", "1");
	else if (sent != NULL && !strcmp(sent, "withdrawn") && *status == '\0')
		tv_set(tv, "quote_withdrawn", "1");
	return 1;
}

void
page_rating(struct request *r, const struct order *o, const char *rating,
    const char *track_token)
{
	page_rating_status(r, 200, o, rating, track_token, NULL);
}

/* Renders the "happy with the answer?" page of GET /o/TOKEN?rating=:
 * thanks once o holds that rating, and on a "yes" the "May I quote
 * you?" form (quote_vars); the "no" page gives the refund link while the
 * guarantee allows one, and a form to say what was missing. */
void
page_rating_status(struct request *r, int status, const struct order *o,
    const char *rating, const char *track_token, const char *quote_error)
{
	struct tvars	 tv = { .n = 0 };
	int64_t		 paid = 0, refunded = 0;
	char		*url;

	if (!order_balance(o->id, &paid, &refunded)) {
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	if (o->rating != NULL && !strcmp(o->rating, "yes") &&
	    !strcmp(rating, "yes") && !quote_vars(r, &tv, o, quote_error)) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "rating", rating);
	tv_set(&tv, "rated", o->rating != NULL && !strcmp(o->rating, rating) ?
	    "1" : "");
	tv_set(&tv, "is_yes", !strcmp(rating, "yes") ? "1" : "");
	tv_set(&tv, "action", req_printf(r, "/o/%s/rating", track_token));
	tv_set(&tv, "track", req_printf(r, "/o/%s", track_token));
	if (order_refundable(o, paid - refunded) &&
	    (url = order_refund_url(r, o)) != NULL)
		tv_set(&tv, "refund_url", url + strlen(conf.base_url));
	tv_set(&tv, "refund_asked", !strcmp(o->status, "refund_requested") ||
	    !strcmp(o->status, "refunded") ? "1" : "");
	page_render(r, status, "Happy with the answer?", "rating.html", &tv);
}

/* Stores r's rating of answered order o (unchanged when it is the one
 * given already) and its feedback, if any, in one transaction. Returns
 * 1, or 0 on a database error (rolled back). */
static int
rating_store(struct request *r, const struct order *o)
{
	const char	*rating = r->fields[RF_RATING].value;
	const char	*feedback = r->fields[RF_FEEDBACK].value;
	int64_t		 now = now_unix();
	int		 rc;

	if (!db_begin())
		return 0;
	/* Whoever rates the answer has seen it. */
	if ((rc = db_update(ST_ORDER_SET_RATING, "tii", rating, now,
	    o->id)) < 0 || (rc == 1 && (db_run(ST_ORDER_SET_VIEWED, "ii", now,
	    o->id) != DB_DONE || !audit_log(r, 0, "rated", o->id, rating))))
		goto fail;
	/* No longer happy: the client's consent to be quoted goes too. */
	if (rc == 1 && !strcmp(rating, "no") && ((rc = db_update(
	    ST_TESTIMONIAL_WITHDRAW, "i", o->id)) < 0 || (rc == 1 &&
	    !audit_log(r, 0, "testimonial withdrawn", o->id, ""))))
		goto fail;
	if (*feedback != '\0' && (db_run(ST_FEEDBACK_INSERT, "iti", o->id,
	    feedback, now) != DB_DONE || !audit_log(r, 0, "feedback given",
	    o->id, "")))
		goto fail;
	return db_commit();
fail:
	db_rollback();
	return 0;
}

/* POST /o/TOKEN/rating: stores the rating (never the GET) and answers
 * 303 to the thank-you page. */
void
page_rating_submit(struct request *r)
{
	struct order	o;

	/* The status link's check (404, 410 for an erased order, 503). */
	if (!page_track_order(r, &o, 1))
		return;
	if (!r->csrf_ok || r->nerrors > 0) {
		page_error(r, !r->csrf_ok ? 403 : 400, "Please try again",
		    "Your rating could not be saved. Go back, reload the "
		    "page and press the button again.");
		return;
	}
	if (o.answered_at == 0) {
		page_error(r, 409, "Not answered yet", "You can rate the "
		    "answer once it has arrived.");
		return;
	}
	if (!rating_store(r, &o))
		goto fail;
	/* A redirect to the thank-you page: a reload does not post again. */
	http_redirect(r, req_printf(r, "/o/%s?rating=%s", r->arg,
	    r->fields[RF_RATING].value));
	return;
fail:
	page_unavailable(r);
}
