/* page_pay.c: paying an order by card through Stripe Checkout (a hosted
 * payment page: no card number reaches this server). POST /o/TOKEN/pay
 * opens a Checkout Session and sends the client there; the client comes
 * back to GET /o/TOKEN?checkout=done&session_id=cs_..., and the status
 * page offers the button (page_pay_vars). */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth.h"
#include "conf.h"
#include "currency.h"
#include "db.h"
#include "order.h"
#include "page.h"
#include "payment.h"
#include "rate.h"
#include "stripe.h"

#define HOUR		3600
#define CHECKOUT_ORIGIN	"https://checkout.stripe.com"
#define SESSION_ID_MAX	255	/* bytes of a cs_... id */
#define RETURN_LOOKUPS	12	/* Stripe asked per order and hour */
/* A session row that got no answer is asked for again (same
 * Idempotency-Key) for this long; Stripe keeps keys about 24 hours. */
#define CREATING_REUSE	3600

/* The fields of POST /o/TOKEN/pay (an interface). */
const struct field pay_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The origin (scheme://host[:port]) of url, owned by the request; NULL
 * if url has none. */
static const char *
url_origin(struct request *r, const char *url)
{
	const char	*host = strstr(url, "://");
	size_t		 n;

	if (host == NULL)
		return NULL;
	n = (size_t)(host + 3 - url) + strcspn(host + 3, "/?#");
	return req_keep(r, xstrndup(url, n));
}

/* Whether order oid has a card payment under way (CHECKOUT_UNDER_WAY).
 * Returns 1, 0, or -1 on a database error. */
static int
under_way(int64_t oid)
{
	sqlite3_stmt	*s = db_stmt(ST_CHECKOUT_UNDER_WAY);
	int		 rc;

	if (s == NULL || !db_bind(s, "i", oid))
		return -1;
	rc = db_step(ST_CHECKOUT_UNDER_WAY);
	db_done(ST_CHECKOUT_UNDER_WAY);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

void
page_pay_vars(struct request *r, struct tvars *tv, const struct order *o,
    const char *token)
{
	const char *api;

	if (strcmp(o->status, "awaiting_payment") != 0 ||
	    !payment_card_ok(o->price, o->currency))
		return;
	/* A payment under way (or unknown, the store failing): no second
	 * button, whatever Stripe's session expiry says. */
	if (under_way(o->id) != 0) {
		tv_set(tv, "pay_waiting", "1");
		return;
	}
	tv_set(tv, "pay_action", req_cat(r, "/o/", token, "/pay",
	    (char *)NULL));
	/* Browsers apply form-action to the redirect after the POST too:
	 * name Stripe's page, and the API's origin (the tests' stand-in
	 * serves its checkout page there). */
	api = url_origin(r, conf.stripe_api_url);
	r->form_action = api == NULL || !strcmp(api, "https://api.stripe.com") ?
	    CHECKOUT_ORIGIN : req_cat(r, CHECKOUT_ORIGIN, " ", api,
	    (char *)NULL);
}

/* Answers the page that says card payment did not work this time and
 * keeps the bank-transfer way to pay: 503 when Stripe could not be
 * reached (or failed), 502 when it refused. */
static void
pay_unavailable(struct request *r, const struct order *o, int status,
    const char *why)
{
	struct tvars tv = { .n = 0 };

	if (status == 503)
		http_header(r, "Retry-After", "60");
	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "amount", page_money(r, o->price, o->currency));
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "why", why);
	tv_set(&tv, "status_url", req_cat(r, "/o/", r->arg, (char *)NULL));
	page_render(r, status, "Card payment is not available right now",
	    "pay_unavailable.html", &tv);
}

/* Sends the client to Stripe's page at url (303). */
static void
go_to(struct request *r, const char *url)
{
	http_header(r, "Location", url);
	http_open(r, 303, "text/plain; charset=utf-8");
	http_puts(r, "See Other: ");
	http_puts(r, url);
	http_puts(r, "\n");
}

/* Finds the session a click of order o may reuse, or commits a new
 * row (creating) if o is still waiting for payment. Returns 1 with *id
 * and, for an open session, *url (request-owned; "" when Stripe is
 * still to be asked); 0 when o no longer waits for payment, 2 when a
 * payment of it is under way (rolled back); -1 on a database error. */
static int
session_take(struct request *r, const struct order *o, int64_t *id,
    const char **url)
{
	sqlite3_stmt	*s;
	int64_t		 now = now_unix();
	int		 rc;

	*url = "";
	if (!db_begin())
		return -1;
	if ((rc = under_way(o->id)) != 0) {
		db_rollback();
		return rc < 0 ? -1 : 2;
	}
	if ((s = db_stmt(ST_CHECKOUT_CURRENT)) == NULL ||
	    !db_bind(s, "iii", o->id, now, now - CREATING_REUSE))
		goto fail;
	if ((rc = db_step(ST_CHECKOUT_CURRENT)) == DB_ROW) {
		*id = sqlite3_column_int64(s, 0);
		if (strcmp(db_text(s, 1), "open") == 0)
			*url = req_strdup(r, db_text(s, 2));
	}
	db_done(ST_CHECKOUT_CURRENT);
	if (rc == DB_ERROR)
		goto fail;
	if (rc == DB_DONE) {
		/* The price and currency are the order's as the transaction
		 * reads them, and the status check that page_pay made on its
		 * read is made again here, where it holds. */
		if ((rc = db_update(ST_CHECKOUT_INSERT, "ii", o->id, now)) < 0)
			goto fail;
		if (rc == 0) {
			db_rollback();
			return 0;
		}
		*id = db_last_id();
	}
	return db_commit() ? 1 : -1;
fail:
	db_rollback();
	return -1;
}

/* The parameters of POST /v1/checkout/sessions for order o (issue 15,
 * "The client's side"), into p. */
static void
session_params(struct request *r, const struct order *o,
    struct stripe_params *p)
{
	char		 cur[4] = "", id[INT_TEXT_MAX];
	int64_t		 unit = o->price;
	const char	*base = req_cat(r, conf.base_url, "/o/", r->arg,
			    (char *)NULL);

	for (size_t i = 0; i < 3 && o->currency[i] != '\0'; i++)
		cur[i] = (char)(o->currency[i] | 0x20);	/* ASCII lower */
	int_text(id, o->id);
	stripe_param(p, "mode", "payment");
	stripe_param(p, "line_items[0][price_data][currency]", cur);
	/* payment_card_ok let only a price Stripe can take this far. */
	(void)currency_stripe_amount(o->currency, o->price, &unit);
	stripe_param_int(p, "line_items[0][price_data][unit_amount]", unit);
	stripe_param(p, "line_items[0][price_data][product_data][name]",
	    req_cat(r, o->number, " \xe2\x80\x94 ", conf.offer_title,
	    (char *)NULL));
	stripe_param(p, "line_items[0][quantity]", "1");
	stripe_param(p, "customer_email", o->email);
	stripe_param(p, "client_reference_id", id);
	stripe_param(p, "metadata[order_id]", id);
	stripe_param(p, "payment_intent_data[metadata][order_id]", id);
	stripe_param(p, "success_url", req_cat(r, base, "?checkout=done"
	    "&session_id={CHECKOUT_SESSION_ID}", (char *)NULL));
	stripe_param(p, "cancel_url", req_cat(r, base, "?checkout=cancelled",
	    (char *)NULL));
}

/* Records Stripe's answer for session row id in its own transaction:
 * open with its id, url and expiry, or (fail) failed with why.
 * Returns 1, 0 when the row was no longer waiting (the order was
 * cancelled meanwhile), -1 on a database error. */
static int
session_answered(int64_t id, json_t *s, const char *fail)
{
	int64_t	expires = 0;
	int	rc;

	if (!db_begin())
		return -1;
	if (fail != NULL)
		rc = db_update(ST_CHECKOUT_FAILED, "ti", fail, id);
	else {
		stripe_int(s, "expires_at", &expires);
		rc = db_update(ST_CHECKOUT_OPENED, "ttii", stripe_str(s, "id"),
		    stripe_str(s, "url"), expires, id);
	}
	if (rc < 0 || !db_commit()) {
		db_rollback();
		return -1;
	}
	return rc;
}

/* Whether url is a page the client may be sent to. */
static int
url_ok(const char *url)
{
	return url != NULL && (strncmp(url, "https://", 8) == 0 ||
	    strncmp(url, "http://", 7) == 0) && !has_ctl(url);
}

/* Asks Stripe for the session of row id and sends the client there, or
 * answers why not. */
static void
session_open(struct request *r, const struct order *o, int64_t id)
{
	struct stripe_params	 p;
	struct stripe_error	 err;
	enum stripe_result	 res;
	json_t			*s = NULL;
	const char		*url, *cs;
	int			 rc;
	char			 key[STRIPE_KEY_MAX];

	/* The row stays creating: the next click asks with the same key. */
	if (stripe_idem_key(key, "checkout", id) == NULL) {
		page_unavailable(r);
		return;
	}
	stripe_params_init(&p);
	session_params(r, o, &p);
	res = stripe_call("POST", "/v1/checkout/sessions", &p, key, &s, &err);
	stripe_params_free(&p);
	url = stripe_str(s, "url");
	cs = stripe_str(s, "id");
	if (res == STRIPE_OK && (!url_ok(url) || cs == NULL ||
	    strncmp(cs, "cs_", 3) != 0)) {
		res = STRIPE_REFUSED;
		snprintf(err.message, sizeof(err.message), "Stripe's answer "
		    "has no session id or page address");
	}
	/* No answer, or one Stripe does not save under the key (409: the
	 * same key in flight, a parallel click; 429): the row stays
	 * creating and the next click asks again with the same key. Any
	 * other answer, even a 5xx, is what Stripe replays for that key:
	 * the row failed, the next click makes another. */
	if (res == STRIPE_OK)
		rc = session_answered(id, s, NULL);
	else
		rc = err.status == 0 || err.status == 409 ||
		    err.status == 429 ? 1 : session_answered(id, NULL,
		    err.message);
	url = res == STRIPE_OK ? req_strdup(r, url) : NULL;
	json_decref(s);
	if (rc < 0)
		page_unavailable(r);
	else if (res == STRIPE_OK && rc == 0)
		page_error(r, 409, "Nothing to pay", "This order is no longer "
		    "waiting for payment.");
	else if (res == STRIPE_OK)
		go_to(r, url);
	else
		pay_unavailable(r, o, res == STRIPE_REFUSED ? 502 : 503,
		    res == STRIPE_REFUSED ? "The card payment service "
		    "refused to open a payment page for this order." :
		    "The card payment service could not be reached.");
}

/* POST /o/TOKEN/pay */
void
page_pay(struct request *r)
{
	struct order	 o;
	const char	*url;
	int64_t		 id = 0;
	int		 rc;

	if (!page_track_order(r, &o, 1))
		return;
	if (!payment_card_ok(o.price, o.currency)) {
		page_error(r, 404, "Card payment is not offered", "This order "
		    "can be paid by bank transfer: its page says how.");
		return;
	}
	if (strcmp(o.status, "awaiting_payment") != 0) {
		page_error(r, 409, "Nothing to pay", req_cat(r, "This order "
		    "is not waiting for payment. Its status: ",
		    order_status_label(o.status), ".", (char *)NULL));
		return;
	}
	if (!r->csrf_ok) {
		page_error(r, 403, "This page has expired", "Nothing was paid. "
		    "Go back to your order's page, reload it and press the "
		    "button again.");
		return;
	}
	if ((rc = session_take(r, &o, &id, &url)) != 1) {
		if (rc < 0)
			page_unavailable(r);
		else if (rc == 2)
			page_error(r, 409, "A payment is on its way", "We are "
			    "waiting for your bank to confirm the payment you "
			    "made: this order's page will say so as soon as it "
			    "does.");
		else
			page_error(r, 409, "Nothing to pay", "This order is no "
			    "longer waiting for payment.");
		return;
	}
	if (*url != '\0' && url_ok(url))
		go_to(r, url);		/* the open session, no new call */
	else
		session_open(r, &o, id);
}

/* Returns 1 if the status page of o may ask Stripe about its session
 * once more (RETURN_LOOKUPS an hour per order: a reloaded page, or a
 * link opened again and again, must not call Stripe each time; the
 * webhook pays the order anyway), 0 if not or on a database error. */
static int
return_allowed(struct request *r, const struct order *o)
{
	const char	*key = req_printf(r, "checkout-return:%lld",
			    (long long)o->id);
	int64_t		 retry;
	int		 rc;

	if (!db_begin())
		return 0;
	if ((rc = rate_allow(key, RETURN_LOOKUPS, HOUR, &retry)) != 1 ||
	    !rate_note(key, RETURN_LOOKUPS, HOUR) || !db_commit()) {
		db_rollback();
		return 0;
	}
	return 1;
}

int
page_pay_return(struct request *r, const struct order *o, const char *sid)
{
	struct stripe_error	 err;
	struct pay_outcome	 out;
	sqlite3_stmt		*s;
	json_t			*cs = NULL;
	int			 ours = 0, rc = -1;

	if (strcmp(o->status, "awaiting_payment") != 0 || sid == NULL ||
	    strncmp(sid, "cs_", 3) != 0 || strlen(sid) > SESSION_ID_MAX ||
	    !ascii_word(sid, strlen(sid), "_") || *conf.stripe_secret_key ==
	    '\0')
		return 0;
	/* Only a session pmb opened for this very order is looked up. */
	if ((s = db_stmt(ST_CHECKOUT_BY_STRIPE_ID)) != NULL &&
	    db_bind(s, "t", sid) && db_step(ST_CHECKOUT_BY_STRIPE_ID) ==
	    DB_ROW)
		ours = sqlite3_column_int64(s, 1) == o->id;
	db_done(ST_CHECKOUT_BY_STRIPE_ID);
	if (!ours || !return_allowed(r, o) || stripe_call("GET", req_cat(r,
	    "/v1/checkout/sessions/", sid, (char *)NULL), NULL, NULL, &cs,
	    &err) != STRIPE_OK)
		return 0;
	/* A GET that writes: only because fulfilling is idempotent and
	 * driven by what Stripe says of the session, whoever asks and
	 * however often (issue 15: the client may be back before the
	 * webhook). */
	if (db_begin()) {
		if ((rc = payment_fulfil(r, cs, 0, &out)) == 0 && db_commit())
			rc = out.paid_now;
		else {
			db_rollback();
			rc = -1;
		}
	}
	json_decref(cs);
	return rc;
}
