/* stripe.h: calling Stripe's API (https://stripe.com/docs/api): form-
 * encoded parameters with Stripe's nested names in, a JSON object out,
 * and every answer sorted into one of three outcomes. pmb.fcgi calls it
 * when a client presses "Pay by card"; pmbctl's payment jobs call it to
 * expire sessions and pay refunds back. */
#ifndef PMB_STRIPE_H
#define PMB_STRIPE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util.h"

/* The parameters of one call, in the order they are sent. Names are
 * Stripe's nested names as they go on the wire before encoding:
 * "mode", "metadata[order_id]",
 * "line_items[0][price_data][product_data][name]". */
struct stripe_param {
	char	*name;
	char	*value;
};
struct stripe_params {
	struct stripe_param *v;
	size_t	 n, cap;
};

void	 stripe_params_init(struct stripe_params *);
void	 stripe_params_free(struct stripe_params *);
/* Adds name=value (both copied). */
void	 stripe_param(struct stripe_params *, const char *name,
	    const char *value);
/* Adds name=v in decimal. */
void	 stripe_param_int(struct stripe_params *, const char *name,
	    int64_t v);
/* Appends the parameters as application/x-www-form-urlencoded (also
 * the query of a GET): name=value joined by "&", names and values
 * percent-encoded except for the unreserved characters A-Z a-z 0-9
 * - . _ ~ (so "[" is "%5B", a space "%20"). */
void	 stripe_params_encode(const struct stripe_params *, struct buf *);

/* What a call came to. */
enum stripe_result {
	STRIPE_OK,		/* 2xx with a JSON object: in *out */
	STRIPE_REFUSED,		/* Stripe answered and said no (4xx but
				 * 409/429): asking again the same way
				 * will not help; Stripe's reason in err */
	STRIPE_RETRY,		/* no answer (unreachable, timeout), a 5xx,
				 * 409/429, or an answer that is not what
				 * Stripe sends: the same call (same
				 * Idempotency-Key) may be tried again */
};

#define STRIPE_ERR_WORD	64	/* bytes of type and code, with the NUL */
#define STRIPE_ERR_TEXT	300	/* bytes of message, with the NUL */

/* Why a call did not succeed. Every text is on one line and never holds
 * the secret key (a key that Stripe echoes is replaced by "sk_..."). */
struct stripe_error {
	long	 status;		/* HTTP status; 0: no answer */
	char	 type[STRIPE_ERR_WORD];	/* Stripe's error.type, e.g.
					 * "card_error"; "" if none */
	char	 code[STRIPE_ERR_WORD];	/* Stripe's error.code, e.g.
					 * "resource_missing"; "" if none */
	char	 message[STRIPE_ERR_TEXT]; /* Stripe's error.message, or
					 * what went wrong in words */
};

/* Gets the process ready to call Stripe (curl_global_init). Call once,
 * before any thread or worker starts. Returns 1, or 0 if libcurl cannot
 * start. stripe_stop undoes it. */
int	 stripe_start(void);
void	 stripe_stop(void);

/* Calls Stripe: method "GET" or "POST", path such as
 * "/v1/checkout/sessions" (appended to stripe_api_url), params (NULL:
 * none) in the query of a GET or the form body of a POST, idem_key
 * (NULL: none; POST only) as the Idempotency-Key header, with the
 * Bearer stripe_secret_key, within stripe_timeout seconds, HTTPS
 * verified, no redirect followed, the answer capped at
 * STRIPE_ANSWER_MAX bytes. On STRIPE_OK, *out is the answer's JSON
 * object (the caller json_decref's it) and err is cleared; otherwise
 * *out is NULL, err says why, and one line is logged (never the key).
 * Safe to call from several threads; each process keeps one connection
 * to reuse (open it after fork, as the workers do). */
enum stripe_result stripe_call(const char *method, const char *path,
	    const struct stripe_params *params, const char *idem_key,
	    json_t **out, struct stripe_error *err);

/* The longest Idempotency-Key stripe_idem_key writes, with its NUL. */
#define STRIPE_KEY_MAX	64
/* Writes into out the Idempotency-Key of pmb's call `what` ("checkout",
 * "refund", "expire") about committed row id: "pmb-NAME-what-id", NAME
 * being this database's random name (table install), so the key is
 * unique in the Stripe account. Returns out, or NULL if the name could
 * not be read (the caller makes no call). */
const char *stripe_idem_key(char out[STRIPE_KEY_MAX], const char *what,
	    int64_t id);

#define STRIPE_ANSWER_MAX (1024 * 1024) /* bytes of one answer kept */

/* Sorts an answer of HTTP status with body (len bytes) as stripe_call
 * does (should_retry: the Stripe-Should-Retry header, -1 absent, 0
 * false, 1 true). The part of stripe_call that needs no network. */
enum stripe_result stripe_answer(long status, int should_retry,
	    const char *body, size_t len, json_t **out,
	    struct stripe_error *err);

/* Looks up a dotted path ("metadata.order_id", "data.object") in a JSON
 * object. stripe_str returns the string there or NULL (absent, null or
 * not a string); stripe_int stores the integer there in *v and returns
 * 1, or returns 0. */
json_t	*stripe_get(json_t *obj, const char *path);
const char *stripe_str(json_t *obj, const char *path);
int	 stripe_int(json_t *obj, const char *path, int64_t *v);

#endif
