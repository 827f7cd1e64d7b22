/* page_testimonial.c: "May I quote you?" — POST /o/TOKEN/testimonial,
 * the form on the thank-you page of a "yes" rating (page_rating.c shows
 * it): the client's consent and an optional sentence, kept as a pending
 * testimonial that the consultant approves or rejects
 * (page_admin_testimonials.c). One per order: posting again changes the
 * sentence while it is pending. */
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "router.h"

/* The longest name shown that a client's name gives by default. */
#define DEFAULT_NAME_MAX	60

/* Returns NULL if v is "yes" or "" (not ticked: the handler says so). */
static const char *
check_consent(const char *v)
{
	return *v == '\0' || !strcmp(v, "yes") ? NULL :
	    "The consent box is ticked or not.";
}

/* The fields of POST /o/TOKEN/testimonial (an interface). */
const struct field testimonial_fields[] = {
#define QF_SENTENCE	0
	{ "sentence", "your sentence", 0, 300, 0, NULL },
#define QF_CONSENT	1
	{ "consent", "your consent", 0, 3, 0, check_consent },
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

const char *
testimonial_default_name(struct request *r, const char *name)
{
	size_t n;

	while (*name == ' ')
		name++;
	n = strcspn(name, " ");
	if (n > DEFAULT_NAME_MAX)
		n = DEFAULT_NAME_MAX;
	while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
		n--;		/* never half a UTF-8 character */
	return req_keep(r, xstrndup(name, n));
}

/* Stores the client's consent and sentence for order o in one
 * transaction with its audit row. Returns 1, 0 when it can no longer be
 * changed (not rated "yes", or already approved or rejected: nothing
 * written), -1 on a database error (rolled back). */
static int
testimonial_store(struct request *r, const struct order *o)
{
	int rc;

	if (!db_begin())
		return -1;
	if ((rc = db_update(ST_TESTIMONIAL_UPSERT, "itti", o->id,
	    r->fields[QF_SENTENCE].value, testimonial_default_name(r,
	    o->name), now_unix())) < 0)
		goto fail;
	if (rc == 0) {
		db_rollback();
		return 0;
	}
	if (!audit_log(r, 0, "testimonial given", o->id, ""))
		goto fail;
	return db_commit() ? 1 : -1;
fail:
	db_rollback();
	return -1;
}

/* Takes back the client's pending testimonial of order o (the box
 * unticked), with its audit row. Returns 1, 0 when there is none
 * pending (nothing written), -1 on a database error (rolled back). */
static int
testimonial_withdraw(struct request *r, const struct order *o)
{
	int rc;

	if (!db_begin())
		return -1;
	if ((rc = db_update(ST_TESTIMONIAL_WITHDRAW_PENDING, "i", o->id)) <= 0) {
		db_rollback();
		return rc;
	}
	if (!audit_log(r, 0, "testimonial withdrawn", o->id, "")) {
		db_rollback();
		return -1;
	}
	return db_commit() ? 1 : -1;
}

/* POST /o/TOKEN/testimonial: 303 back to the thank-you page, which then
 * says "Thank you" (or, the box unticked on a pending one, that it was
 * taken back); the form again (400, 403) with what was typed when the
 * box is not ticked or the token is stale; 409 once decided. */
void
page_testimonial_submit(struct request *r)
{
	struct order	o;
	int		rc;

	if (!page_track_order(r, &o, 0))
		return;
	if (o.rating == NULL || strcmp(o.rating, "yes") != 0) {
		page_error(r, 409, "Not rated yet", "I ask to quote you only "
		    "once you have said you are happy with the answer.");
		return;
	}
	/* Unticked: a pending consent is taken back; none, the form asks. */
	if (r->csrf_ok && r->nerrors == 0 &&
	    *r->fields[QF_CONSENT].value == '\0' &&
	    (rc = testimonial_withdraw(r, &o)) != 0) {
		if (rc < 0)
			page_unavailable(r);
		else
			http_redirect(r, req_printf(r, "/o/%s?rating=yes&"
			    "quote=withdrawn#quote", r->arg));
		return;
	}
	if (!r->csrf_ok || r->nerrors > 0 ||
	    *r->fields[QF_CONSENT].value == '\0') {
		page_rating_status(r, !r->csrf_ok ? 403 : 400, &o, "yes",
		    r->arg, !r->csrf_ok ? "This form had expired, so nothing "
		    "was saved. Your words are below: please send them "
		    "again." : r->nerrors > 0 ? "Your sentence is too long "
		    "or holds characters it cannot: at most 300 characters, "
		    "on one line." : "Please tick \xe2\x80\x9cYou may quote "
		    "me\xe2\x80\x9d to let me quote you. Nothing was saved.");
		return;
	}
	if ((rc = testimonial_store(r, &o)) < 0) {
		page_unavailable(r);
		return;
	}
	if (rc == 0) {
		page_error(r, 409, "Already read", "I have already read "
		    "your words and decided whether to show them, so they "
		    "can no longer be changed here. Write to me if you want "
		    "them changed or taken down.");
		return;
	}
	http_redirect(r, req_printf(r, "/o/%s?rating=yes&quote=sent#quote",
	    r->arg));
}
