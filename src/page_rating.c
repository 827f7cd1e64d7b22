/* page_rating.c: "happy with the answer?" — the page that the answer
 * email's rating links open (GET /o/TOKEN?rating=yes|no, shown by
 * page_track.c, changes nothing) and its confirm button, POST
 * /o/TOKEN/rating, which stores the rating. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "router.h"
#include "token.h"

/* Returns NULL if v is yes or no. */
static const char *
check_rating(const char *v)
{
	return !strcmp(v, "yes") || !strcmp(v, "no") ? NULL :
	    "Choose yes or no.";
}

/* The fields of POST /o/TOKEN/rating (an interface). */
const struct field rating_fields[] = {
	{ "rating", "your rating", 2, 3, F_REQUIRED, check_rating },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Renders the "happy with the answer?" page of GET /o/TOKEN?rating=. */
void
page_rating(struct request *r, const struct order *o, const char *rating,
    const char *track_token)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "rating", rating);
	tv_set(&tv, "rated", o->rating);
	tv_set(&tv, "is_yes", !strcmp(rating, "yes") ? "1" : "");
	tv_set(&tv, "action", req_printf(r, "/o/%s/rating", track_token));
	tv_set(&tv, "track", req_printf(r, "/o/%s", track_token));
	page_render(r, 200, "Happy with the answer?", "rating.html", &tv);
}

/* POST /o/TOKEN/rating: stores the rating (never the GET). */
void
page_rating_submit(struct request *r)
{
	struct token	t;
	struct order	o;
	int		rc;

	if (r->arg == NULL || token_check(r->arg, TOK_TRACK, NULL, &t) !=
	    TOKEN_OK || (rc = order_load(r, t.id, &o)) == 0) {
		page_error(r, 404, "This link does not work", "The link may "
		    "have been cut short or mistyped.");
		return;
	}
	if (rc < 0) {
		page_unavailable(r);
		return;
	}
	if (!r->csrf_ok || r->nerrors > 0) {
		page_error(r, !r->csrf_ok ? 403 : 400, "Please try again",
		    "Your answer could not be recorded. Go back, reload the "
		    "page and press the button again.");
		return;
	}
	if (!db_begin())
		goto fail;
	/* Whoever rates the answer has seen it. */
	if ((rc = db_update(ST_ORDER_SET_RATING, "tii", r->fields[0].value,
	    now_unix(), o.id)) < 0 || (rc == 1 &&
	    (db_run(ST_ORDER_SET_VIEWED, "ii", now_unix(), o.id) != DB_DONE ||
	    !audit_log(r, 0, "rated", o.id, r->fields[0].value)))) {
		db_rollback();
		goto fail;
	}
	if (rc == 0) {
		/* Not answered, or this rating was given already. */
		db_rollback();
		if (order_load(r, o.id, &o) != 1)
			goto fail;
		if (o.answered_at == 0) {
			page_error(r, 409, "Not answered yet", "You can rate "
			    "the answer once it has arrived.");
			return;
		}
	} else if (!db_commit())
		goto fail;
	o.rating = req_strdup(r, r->fields[0].value);
	page_rating(r, &o, o.rating, r->arg);
	return;
fail:
	page_unavailable(r);
}
