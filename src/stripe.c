/* stripe.c: the Stripe API client. One call is one HTTPS request with
 * libcurl: form-encoded parameters, the secret key as a Bearer token
 * (curl writes the header; the key sits in no buffer of ours), a JSON
 * answer parsed with jansson, and an outcome of three: done, refused,
 * or worth trying again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "conf.h"
#include "db.h"
#include "stripe.h"
#include "util.h"

#define STRIPE_VERSION	"2024-06-20"	/* the API version pmb is written
					 * for: the answers' shape is fixed */
#define CONNECT_TIMEOUT	5		/* seconds to connect, at most */
#define KEY_SHOWN	"sk_..."	/* what stands for a leaked key */

void
stripe_params_init(struct stripe_params *p)
{
	memset(p, 0, sizeof(*p));
}

void
stripe_params_free(struct stripe_params *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

void
stripe_param(struct stripe_params *p, const char *name, const char *value)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
	}
	p->v[p->n].name = xstrdup(name);
	p->v[p->n].value = xstrdup(value);
	p->n++;
}

void
stripe_param_int(struct stripe_params *p, const char *name, int64_t v)
{
	char num[INT_TEXT_MAX];

	stripe_param(p, name, int_text(num, v));
}

void
stripe_params_encode(const struct stripe_params *p, struct buf *b)
{
	for (size_t i = 0; p != NULL && i < p->n; i++) {
		if (i > 0)
			buf_putc(b, '&');
		url_escape(b, p->v[i].name);
		buf_putc(b, '=');
		url_escape(b, p->v[i].value);
	}
}

/* Copies s into dst (size bytes) on one line, every copy of the secret
 * key replaced by KEY_SHOWN, shortened to fit. */
static void
err_copy(char *dst, size_t size, const char *s)
{
	const char	*key = conf.stripe_secret_key;
	size_t		 keylen = key != NULL ? strlen(key) : 0, n = 0;

	while (*s != '\0' && n + 1 < size) {
		if (keylen > 0 && strncmp(s, key, keylen) == 0) {
			for (const char *k = KEY_SHOWN; *k != '\0' &&
			    n + 1 < size; k++)
				dst[n++] = *k;
			s += keylen;
			continue;
		}
		dst[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
		s++;
	}
	dst[n] = '\0';
}

/* Fills err with status and a message of ours. */
static void
err_set(struct stripe_error *err, long status, const char *message)
{
	memset(err, 0, sizeof(*err));
	err->status = status;
	err_copy(err->message, sizeof(err->message), message);
}

/* Whether a status, with Stripe's Stripe-Should-Retry header, is worth
 * another try: Stripe's libraries retry 409 (a request with the same
 * Idempotency-Key still running), 429 (rate limited) and 5xx, and obey
 * the header when Stripe sends it. */
static int
status_retryable(long status, int should_retry)
{
	if (should_retry >= 0)
		return should_retry;
	return status == 409 || status == 429 || status >= 500 ||
	    status < 400;
}

enum stripe_result
stripe_answer(long status, int should_retry, const char *body, size_t len,
    json_t **out, struct stripe_error *err)
{
	json_t		*j, *e;
	json_error_t	 jerr;
	char		 what[80];

	*out = NULL;
	memset(err, 0, sizeof(*err));
	err->status = status;
	j = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (status >= 200 && status < 300) {
		if (j != NULL && json_is_object(j)) {
			*out = j;
			return STRIPE_OK;
		}
		json_decref(j);
		snprintf(what, sizeof(what), "HTTP %ld: the answer is not a "
		    "JSON object", status);
		err_copy(err->message, sizeof(err->message), what);
		return STRIPE_RETRY;
	}
	e = j != NULL ? json_object_get(j, "error") : NULL;
	if (json_is_object(e)) {
		const char *s;

		if ((s = json_string_value(json_object_get(e, "type"))))
			err_copy(err->type, sizeof(err->type), s);
		if ((s = json_string_value(json_object_get(e, "code"))))
			err_copy(err->code, sizeof(err->code), s);
		if ((s = json_string_value(json_object_get(e, "message"))))
			err_copy(err->message, sizeof(err->message), s);
	}
	json_decref(j);
	if (err->message[0] == '\0') {
		snprintf(what, sizeof(what), "HTTP %ld from Stripe", status);
		err_copy(err->message, sizeof(err->message), what);
	}
	return status_retryable(status, should_retry) ? STRIPE_RETRY :
	    STRIPE_REFUSED;
}

json_t *
stripe_get(json_t *obj, const char *path)
{
	char key[128];

	while (obj != NULL && *path != '\0') {
		const char	*dot = strchr(path, '.');
		size_t		 n = dot ? (size_t)(dot - path) : strlen(path);

		if (!json_is_object(obj) || n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		obj = json_object_get(obj, key);
		path += n + (dot != NULL);
	}
	return obj;
}

const char *
stripe_str(json_t *obj, const char *path)
{
	return json_string_value(stripe_get(obj, path));
}

int
stripe_int(json_t *obj, const char *path, int64_t *v)
{
	json_t *j = stripe_get(obj, path);

	if (!json_is_integer(j))
		return 0;
	*v = (int64_t)json_integer_value(j);
	return 1;
}

int
stripe_start(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void
stripe_stop(void)
{
	curl_global_cleanup();
}

/* What one transfer collects. */
struct transfer {
	struct buf	 body;
	int		 too_large;	/* the answer passed STRIPE_ANSWER_MAX */
	int		 should_retry;	/* Stripe-Should-Retry: -1, 0, 1 */
};

/* CURLOPT_WRITEFUNCTION: keeps the answer, up to STRIPE_ANSWER_MAX. */
static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer	*t = arg;
	size_t		 len = size * n;	/* curl: size is always 1 */

	if (len > STRIPE_ANSWER_MAX - t->body.len) {
		t->too_large = 1;
		return 0;
	}
	buf_append(&t->body, data, len);
	return len;
}

/* CURLOPT_HEADERFUNCTION: notes Stripe-Should-Retry. */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	static const char	 name[] = "stripe-should-retry:";
	struct transfer		*t = arg;
	size_t			 len = sizeof(name) - 1;

	if (n > len && strncasecmp(data, name, len) == 0) {
		while (len < n && (data[len] == ' ' || data[len] == '\t'))
			len++;
		if (n - len >= 4 && strncmp(data + len, "true", 4) == 0)
			t->should_retry = 1;
		else if (n - len >= 5 && strncmp(data + len, "false", 5) == 0)
			t->should_retry = 0;
	}
	return size * n;
}

/* The process's kept handle (its connection to Stripe is reused) and
 * the lock that lends it to one call at a time; a call that finds it
 * lent makes a handle of its own. */
static CURL		*kept;
static pthread_mutex_t	 kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* Lends a handle, reset to no options: the kept one when it is free
 * (*mine = 0), else a new one (*mine = 1). NULL if libcurl fails. */
static CURL *
handle_borrow(int *mine)
{
	if (pthread_mutex_trylock(&kept_lock) == 0) {
		if (kept == NULL)
			kept = curl_easy_init();
		if (kept != NULL) {
			curl_easy_reset(kept);
			*mine = 0;
			return kept;
		}
		pthread_mutex_unlock(&kept_lock);
	}
	*mine = 1;
	return curl_easy_init();
}

/* Gives a handle back (or cleans up one that was made for the call). */
static void
handle_return(CURL *c, int mine)
{
	if (mine)
		curl_easy_cleanup(c);
	else
		pthread_mutex_unlock(&kept_lock);
}

/* Adds the request's headers to *h; returns 0 if curl ran out of
 * memory or idem_key would break a header line. */
static int
headers_make(struct curl_slist **h, int post, const char *idem_key)
{
	static const char *fixed[] = {
		"Accept: application/json",
		"Stripe-Version: " STRIPE_VERSION,
		"Expect:",	/* no 100-continue round trip */
	};
	struct curl_slist	*n;
	struct buf		 line;
	int			 ok = 1;

	for (size_t i = 0; i < ARRAY_LEN(fixed); i++) {
		if ((n = curl_slist_append(*h, fixed[i])) == NULL)
			return 0;
		*h = n;
	}
	if (post && (n = curl_slist_append(*h, "Content-Type: "
	    "application/x-www-form-urlencoded")) != NULL)
		*h = n;
	else if (post)
		return 0;
	if (idem_key == NULL)
		return 1;
	if (has_ctl(idem_key) || strlen(idem_key) > 255)
		return 0;
	buf_init(&line);
	buf_printf(&line, "Idempotency-Key: %s", idem_key);
	if ((n = curl_slist_append(*h, line.data)) == NULL)
		ok = 0;
	else
		*h = n;
	buf_free(&line);
	return ok;
}

/* Sets every option of one call on c. Returns CURLE_OK or the first
 * option curl refused. */
static CURLcode
options_set(CURL *c, const char *method, const char *url,
    const struct buf *form, struct curl_slist *h, struct transfer *t,
    char *errbuf)
{
	CURLcode rc = CURLE_OK;

#define SETOPT(opt, val) do {						\
	if (rc == CURLE_OK)						\
		rc = curl_easy_setopt(c, opt, val);			\
} while (0)
	SETOPT(CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "https,http");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTPS | CURLPROTO_HTTP));
#endif
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	SETOPT(CURLOPT_TIMEOUT, (long)conf.stripe_timeout);
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)(conf.stripe_timeout <
	    CONNECT_TIMEOUT ? conf.stripe_timeout : CONNECT_TIMEOUT));
	SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	SETOPT(CURLOPT_XOAUTH2_BEARER, conf.stripe_secret_key);
	SETOPT(CURLOPT_USERAGENT, "pmb (Pick My Brain)");
	SETOPT(CURLOPT_HTTPHEADER, h);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, t);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, t);
	SETOPT(CURLOPT_MAXFILESIZE, (long)STRIPE_ANSWER_MAX);
	if (strcmp(method, "POST") == 0) {
		SETOPT(CURLOPT_POST, 1L);
		SETOPT(CURLOPT_POSTFIELDSIZE, (long)form->len);
		SETOPT(CURLOPT_POSTFIELDS, form->data ? form->data : "");
	} else
		SETOPT(CURLOPT_HTTPGET, 1L);
#undef SETOPT
	return rc;
}

/* Builds the URL: stripe_api_url (a trailing "/" dropped), path and,
 * for a GET with parameters, "?" and their encoding. */
static void
url_make(struct buf *url, const char *path, int post,
    const struct buf *form)
{
	size_t n = strlen(conf.stripe_api_url);

	while (n > 0 && conf.stripe_api_url[n - 1] == '/')
		n--;
	buf_append(url, conf.stripe_api_url, n);
	buf_puts(url, path);
	if (!post && form->len > 0) {
		buf_putc(url, '?');
		buf_append(url, form->data, form->len);
	}
}

/* Logs a call that did not succeed: method, path, status, Stripe's
 * code and message (never the key: err holds none). */
static void
log_failure(const char *method, const char *path, enum stripe_result r,
    const struct stripe_error *err)
{
	log_msg("stripe: %s %s: %s (HTTP %ld%s%s): %s", method, path,
	    r == STRIPE_REFUSED ? "refused" : "failed, may be retried",
	    err->status, err->code[0] ? ", " : "", err->code, err->message);
}

enum stripe_result
stripe_call(const char *method, const char *path,
    const struct stripe_params *params, const char *idem_key, json_t **out,
    struct stripe_error *err)
{
	struct transfer		 t = { .should_retry = -1 };
	struct curl_slist	*h = NULL;
	struct buf		 form, url;
	char			 errbuf[CURL_ERROR_SIZE] = "";
	enum stripe_result	 r = STRIPE_RETRY;
	int			 post = strcmp(method, "POST") == 0, mine;
	long			 status = 0;
	CURL			*c;
	CURLcode		 rc;

	*out = NULL;
	buf_init(&t.body);
	buf_init(&form);
	buf_init(&url);
	stripe_params_encode(params, &form);
	url_make(&url, path, post, &form);
	if ((c = handle_borrow(&mine)) == NULL) {
		err_set(err, 0, "cannot start libcurl");
		goto out;
	}
	if (!headers_make(&h, post, post ? idem_key : NULL)) {
		err_set(err, 0, "cannot make the request's headers");
		goto give_back;
	}
	if ((rc = options_set(c, method, url.data, &form, h, &t, errbuf)) !=
	    CURLE_OK) {
		err_set(err, 0, curl_easy_strerror(rc));
		goto give_back;
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (t.too_large || rc == CURLE_FILESIZE_EXCEEDED)
		err_set(err, status, "the answer is larger than pmb accepts");
	else if (rc != CURLE_OK)
		err_set(err, 0, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		r = stripe_answer(status, t.should_retry, t.body.data,
		    t.body.len, out, err);
give_back:
	handle_return(c, mine);
out:
	if (r != STRIPE_OK)
		log_failure(method, path, r, err);
	curl_slist_free_all(h);
	buf_free(&t.body);
	buf_free(&form);
	buf_free(&url);
	return r;
}

const char *
stripe_idem_key(char out[STRIPE_KEY_MAX], const char *what, int64_t id)
{
	static char	 name[16];	/* read once: a process has one store */
	sqlite3_stmt	*s;

	if (name[0] == '\0') {
		if ((s = db_stmt(ST_INSTALL_KEY)) == NULL)
			return NULL;
		if (db_step(ST_INSTALL_KEY) == DB_ROW)
			snprintf(name, sizeof(name), "%s", db_text(s, 0));
		db_done(ST_INSTALL_KEY);
		if (name[0] == '\0')
			return NULL;
	}
	snprintf(out, STRIPE_KEY_MAX, "pmb-%s-%s-%lld", name, what,
	    (long long)id);
	return out;
}

