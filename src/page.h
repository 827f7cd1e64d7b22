/* page.h: rendering whole pages in the site's layout. */
#ifndef PMB_PAGE_H
#define PMB_PAGE_H

#include "http.h"
#include "tmpl.h"

/* Sets the variables every page may use (site name, price, ..., and
 * csrf_token, which csrf.html puts in every POST form). */
void	 page_vars(struct request *, struct tvars *);
/* Renders template body inside layout.html (which includes it as
 * {{>*body_template}}) and sends it with status; then frees the rows and
 * blocks of vars (tv_free). On a missing template, answers a plain-text
 * 500 page. */
void	 page_render(struct request *, int status, const char *title,
	    const char *body, struct tvars *);
/* Answers an error page that says what was wrong. */
void	 page_error(struct request *, int status, const char *title,
	    const char *message);
/* Answers the 500 page after an internal failure (already logged). */
void	 page_fail(struct request *);
/* Answers 403 for a form whose CSRF token or origin was refused. */
void	 page_csrf_failed(struct request *);
/* For a form whose write failed (rolled back): adds Retry-After and
 * returns the message to show above the form, which the caller renders
 * again with status 503 and everything typed kept. */
const char *page_not_saved(struct request *);
/* Answers 503: the store cannot be used right now. */
void	 page_unavailable(struct request *);
/* Answers what a page found of the thing its URL names, from a loader's
 * rc: 503 when the store failed (rc < 0), 404 with title and message
 * when there is none (rc is 0). Returns 1 when it was found (rc > 0),
 * else 0. */
int	 page_found(struct request *, int rc, const char *title,
	    const char *message);
/* Ends the rows of a list page: after a database error (n < 0) frees tv
 * and answers 503, returning 0; otherwise sets the page's variables and
 * "empty" (n is 0) and returns 1. */
int	 page_list_vars(struct request *, struct tvars *, int n);

/* Formatting for pages, owned by the request: a time ("" for 0), a
 * date, and minor units of currency with its decimals ("150.00" GBP,
 * "1500" JPY, "12.345" BHD). */
const char *page_time(struct request *, int64_t);
/* Returns the notice a page shows after a change (the POST's 303 names
 * it in ?done=): the text paired with done's value in notices, pairs of
 * value and text ending with NULL; NULL when there is no ?done= or its
 * value is not in notices. */
const char *page_done_notice(struct request *, const char *const notices[]);
const char *page_date(struct request *, int64_t);
const char *page_money(struct request *, int64_t, const char *currency);
/* Parses text, which a field's check already found to be an amount of
 * up to CURRENCY_EXPONENT_MAX decimals, into minor units of currency.
 * Returns NULL, or (owned by the request) why it has more decimals than
 * currency has ("JPY has no decimals: ..."). */
const char *page_parse_money(struct request *, const char *text,
	    const char *currency, int64_t *out);
/* A span of seconds as fmt_duration writes it, owned by the request. */
const char *page_duration(struct request *, int64_t seconds,
	    enum duration_style);
/* As page_time, into out instead of the request's memory (for a text
 * used before out goes): returns out, or "" for 0. */
const char *page_time_in(char out[TIME_TEXT_MAX], int64_t);

/* Puts each field's value into vars as NAME and its error as err_NAME,
 * for re-rendering a form (all but the CSRF token, which page_vars
 * sets). */
void	 page_form_vars(struct request *, struct tvars *,
	    const struct field *);

/* Pages, one function per route (see router.c). */
void	 page_home(struct request *);
void	 page_terms(struct request *);
void	 page_testimonial_submit(struct request *);
void	 page_admin_testimonials(struct request *);
void	 page_admin_testimonial_decide(struct request *);
void	 page_healthz(struct request *);
void	 page_ask(struct request *);
void	 page_ask_submit(struct request *);
void	 page_track(struct request *);
void	 page_track_message(struct request *);
void	 page_track_file(struct request *);		/* page_files.c */
void	 page_admin_file(struct request *);
void	 page_track_viewed(struct request *);
void	 page_lost(struct request *);
void	 page_lost_submit(struct request *);
void	 page_stripe_hook(struct request *);

void	 page_admin_login(struct request *);
void	 page_admin_login_submit(struct request *);
void	 page_admin_logout(struct request *);
void	 page_admin_queue(struct request *);
void	 page_admin_order(struct request *);
void	 page_admin_paid(struct request *);
void	 page_admin_claim(struct request *);
void	 page_admin_release(struct request *);
void	 page_admin_draft(struct request *);
void	 page_admin_reply(struct request *);
void	 page_admin_note(struct request *);
void	 page_admin_draft_file_remove(struct request *);
void	 page_admin_cancel(struct request *);
void	 page_admin_snippets(struct request *);
void	 page_admin_snippet_create(struct request *);
void	 page_admin_snippet(struct request *);
void	 page_admin_snippet_update(struct request *);
void	 page_admin_snippet_delete(struct request *);
void	 page_admin_search(struct request *);
void	 page_admin_dashboard(struct request *);
void	 page_admin_dashboard_svg(struct request *);
void	 page_admin_export_csv(struct request *);
void	 page_admin_export_ledger_csv(struct request *);
void	 page_admin_privacy_export(struct request *);	/* privacy */
void	 page_admin_audit(struct request *);
void	 page_refund(struct request *);
void	 page_refund_submit(struct request *);
void	 page_rating_submit(struct request *);
void	 page_admin_refunds(struct request *);
void	 page_admin_refunded(struct request *);
void	 page_admin_decline(struct request *);
void	 page_admin_refund_retry(struct request *);
void	 page_admin_surplus_refund(struct request *);
/* Adds to tv the card refunds of order oid, newest first (list "cards",
 * "has_cards"; www/templates/admin_card_refunds.html shows them),
 * "card_paid" when the order was paid by card, "can_retry" when the
 * newest was refused and pending is set (the request waits for the
 * card), and with o (the order page) "card_surplus", what a card-paid
 * order holds beyond its price. Returns 1, or 0 on a database error. */
struct order;
int	 page_card_refunds(struct request *, struct tvars *, int64_t oid,
	    int pending, const struct order *o);
void	 page_admin_outbox(struct request *);
void	 page_admin_outbox_message(struct request *);
void	 page_admin_outbox_retry(struct request *);
void	 page_admin_inbox(struct request *);
void	 page_admin_inbox_message(struct request *);
void	 page_admin_inbox_raw(struct request *);
void	 page_admin_inbox_attach(struct request *);
void	 page_admin_inbox_discard(struct request *);
struct order;
/* Verifies the token of /o/TOKEN... and loads its order (with the
 * client's details when details is set). Returns 1; or answers (404,
 * 410 Gone for an erased order, 503) and returns 0. */
int	 page_track_order(struct request *, struct order *, int details);
/* Parses the order id of the path /admin/orders/ID... and loads it
 * (page_admin_order.c). Returns 1, or answers (404, 503) and returns
 * 0. */
int	 page_admin_order_load(struct request *, struct order *);
/* POST /o/TOKEN/pay: opens a Stripe Checkout Session (page_pay.c). */
void	 page_pay(struct request *);
/* For the status page of o (path token token): sets pay_action in tv
 * and the page's form-action when the order may be paid by card. */
void	 page_pay_vars(struct request *, struct tvars *, const struct order *,
	    const char *token);
/* GET /o/TOKEN?checkout=done&session_id=ID: when o waits for payment
 * and ID is a session pmb opened for o, asks Stripe how it stands and
 * fulfils it (its own transaction). Returns 1 if the order was paid
 * now, 0 if not (or nothing to do), -1 on an error (logged). */
int	 page_pay_return(struct request *, const struct order *,
	    const char *session_id);
/* Renders the "happy with the answer?" page for GET /o/TOKEN?rating=. */
void	 page_rating(struct request *, const struct order *,
	    const char *rating, const char *track_token);
/* As page_rating, with status; quote_error, if set, brings back the
 * "May I quote you?" form of a "yes" with what was posted and the
 * message on top. */
void	 page_rating_status(struct request *, int status,
	    const struct order *, const char *rating, const char *track_token,
	    const char *quote_error);
/* The name a client's quote shows until the consultant edits it: the
 * first word of name (request-owned). */
const char *testimonial_default_name(struct request *, const char *name);
/* Answers a staff page asked for without a session: GET goes to the
 * sign-in page; POST gets 403 with the text it carried, so none is lost. */
void	 admin_signed_out(struct request *);

/* Field tables (NULL-terminated), an interface: see router.c. */
extern const struct field ask_fields[];
extern const struct field track_message_fields[];
extern const struct field track_viewed_fields[];
extern const struct field lost_fields[];
extern const struct field login_fields[];
extern const struct field queue_fields[];
extern const struct field paid_fields[];
extern const struct field reply_fields[];
extern const struct field note_fields[];
extern const struct field cancel_fields[];
extern const struct field snippet_fields[];
extern const struct field search_fields[];
extern const struct field audit_fields[];
extern const struct field track_view_fields[];
extern const struct field rating_fields[];
extern const struct field testimonial_fields[];
extern const struct field testimonial_decide_fields[];
extern const struct field refund_fields[];
extern const struct field refunded_fields[];
extern const struct field decline_fields[];
extern const struct field retry_fields[];
extern const struct field surplus_fields[];
extern const struct field outbox_fields[];
extern const struct field inbox_fields[];
extern const struct field inbox_attach_fields[];
extern const struct field inbox_discard_fields[];
extern const struct field pay_fields[];
extern const struct field privacy_export_fields[];

#endif
