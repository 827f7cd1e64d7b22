/* page_home.c: GET / — the offer, in the consultant's voice. */
#include "db.h"
#include "page.h"

/* Answers the landing page. */
void
page_home(struct request *r)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	page_render(r, 200, tv_get(&tv, "offer_title"), "home.html", &tv);
}

/* GET /healthz: "ok" when the store answers; 503 otherwise (the gate
 * answers 503 when the database cannot be opened). */
void
page_healthz(struct request *r)
{
	if (db_version() != db_known_version()) {
		page_unavailable(r);
		return;
	}
	http_open(r, 200, "text/plain; charset=utf-8");
	http_puts(r, "ok\n");
}
