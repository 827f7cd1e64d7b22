/* page_admin_login.c: GET|POST /admin/login and POST /admin/logout. */
#include <string.h>

#include "auth.h"
#include "conf.h"
#include "page.h"

/* The fields of POST /admin/login (an interface). */
const struct field login_fields[] = {
#define LG_USER		0
	{ "username", "your username", 1, 64, F_REQUIRED, NULL },
#define LG_PASS		1
	{ "password", "your password", 1, 1024, F_REQUIRED, NULL },
#define LG_CSRF		2
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* Renders the sign-in form (never with the password). */
static void
login_form(struct request *r, int status, const char *message)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	tv_set(&tv, "username", r->fields ? r->fields[LG_USER].value : "");
	tv_set(&tv, "form_message", message);
	page_render(r, status, "Sign in", "admin_login.html", &tv);
}

/* GET /admin/login */
void
page_admin_login(struct request *r)
{
	if (session_load(r) == 1) {
		http_redirect(r, "/admin");
		return;
	}
	login_form(r, 200, NULL);
}

/* POST /admin/login */
void
page_admin_login_submit(struct request *r)
{
	int64_t retry = 0;

	if (!r->csrf_ok) {
		login_form(r, 403, "The page had expired. Please sign in "
		    "again.");
		return;
	}
	if (r->nerrors > 0) {
		login_form(r, 400, "Please enter your username and password.");
		return;
	}
	switch (auth_login(r, r->fields[LG_USER].value,
	    r->fields[LG_PASS].value, &retry)) {
	case AUTH_OK:
		http_redirect(r, "/admin");
		return;
	case AUTH_DENIED:
		login_form(r, 401, "Wrong username or password.");
		return;
	case AUTH_LIMITED:
		http_header(r, "Retry-After", req_printf(r, "%lld",
		    (long long)retry));
		login_form(r, 429, req_printf(r, "Too many failed attempts. "
		    "Please wait %s and try again.", page_duration(r, retry, DURATION_MINUTES)));
		return;
	default:
		page_unavailable(r);
		return;
	}
}

/* POST /admin/logout */
void
page_admin_logout(struct request *r)
{
	if (!auth_logout(r)) {
		page_unavailable(r);
		return;
	}
	r->session = NULL;
	http_redirect(r, "/admin/login");
}

void
admin_signed_out(struct request *r)
{
	struct tvars	tv = { .n = 0 };
	const char	*text = req_param(r, "body");

	if (strcmp(r->method, "POST") != 0) {
		http_redirect(r, "/admin/login");
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "kept", text != NULL && utf8_valid(text, strlen(text)) ?
	    text : "");
	page_render(r, 403, "You are signed out", "admin_signed_out.html",
	    &tv);
}
