/* page_home.c: GET / — the offer, in the consultant's voice — and GET
 * /terms, its terms in full. */
#include <string.h>

#include "conf.h"
#include "db.h"
#include "offer.h"
#include "page.h"
#include "pay_method.h"

/* Answers the landing page: the offer from the settings, "About me" and
 * the sample answer as offer_load made them at start, and the proof
 * (approved quotes, the share of happy ratings) read by one statement.
 * Without the store the page still answers, without the proof. */
void
page_home(struct request *r)
{
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	offer_vars(&tv);
	/* Without them (no store, or an error db_step logged) the page
	 * still shows the offer. */
	(void)offer_proof_vars(r, &tv);
	page_render(r, 200, tv_get(&tv, "offer_title"), "home.html", &tv);
}

/* GET /terms: the terms of the offer, from the settings: the price, what
 * it includes, the guarantee and its window, how a refund comes back by
 * each way of paying, and who the client deals with. */
void
page_terms(struct request *r)
{
	static const char *const ways[] = { "card", "bank_transfer", "paypal",
	    "cash" };
	struct tvars tv = { .n = 0 };

	page_vars(r, &tv);
	tv_set(&tv, "price_text", req_cat(r, page_money(r, conf.price,
	    conf.currency), " ", conf.currency, (char *)NULL));
	tv_set(&tv, "followups", conf.followups_included == 0 ? "" :
	    req_printf(r, "%lld", (long long)conf.followups_included));
	tv_set(&tv, "one_followup", conf.followups_included == 1 ? "1" : "");
	tv_set(&tv, "refund_if_late", conf.refund_if_late ? "1" : "");
	tv_set(&tv, "refund_days", req_printf(r, "%lld",
	    (long long)conf.refund_days));
	for (size_t i = 0; i < ARRAY_LEN(ways); i++) {
		struct tvars *row = tv_row(&tv, "refund_ways");

		tv_set(row, "label", pay_method_label(ways[i]));
		tv_set(row, "way", pay_method_refund_way(r, ways[i]));
	}
	page_render(r, 200, "Terms of the offer", "terms.html", &tv);
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
