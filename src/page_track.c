/* page_track.c: GET /o/TOKEN — an order's status page, the client's key
 * to their order — and POST /o/TOKEN/messages, a follow-up question. */
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "audit.h"
#include "files.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "mail.h"
#include "markdown.h"
#include "order.h"
#include "page.h"
#include "page_privacy.h"
#include "pay_method.h"
#include "router.h"
#include "token.h"

#define HOUR 3600
/* How long after the order new=1 still shows where its link was emailed:
 * the 303 after the ask form is followed at once; a copied or bookmarked
 * new=1 link shows the address no longer. */
#define NEW_ORDER_WINDOW	(10 * 60)

/* Returns NULL if v is yes or no. */
static const char *
check_yes_no(const char *v)
{
	return !strcmp(v, "yes") || !strcmp(v, "no") ? NULL :
	    "The rating is yes or no.";
}

/* The query fields of GET /o/TOKEN (an interface: the answer email's
 * "happy with the answer?" links). */
const struct field track_view_fields[] = {
#define VF_RATING	0
	{ "rating", "the rating", 0, 3, 0, check_yes_no },
	/* Back from Stripe Checkout (page_pay.c): checkout=done with
	 * session_id=cs_..., or checkout=cancelled; any other value, or a
	 * session id that is not one of the order's, is passed over. */
#define VF_CHECKOUT	1
	{ "checkout", "checkout", 0, 20, 0, NULL },
#define VF_SESSION	2
	{ "session_id", "the session id", 0, 1000, 0, NULL },
	/* new=1: the 303 after the ask form (page_ask.c), which says once
	 * where the page's link was emailed; followup=sent: the 303 after a
	 * follow-up, which confirms it at the top. Other values are passed
	 * over. */
#define VF_NEW		3
	{ "new", "new", 0, 1, 0, NULL },
#define VF_FOLLOWUP	4
	{ "followup", "followup", 0, 10, 0, NULL },
	/* quote=sent: the 303 after "May I quote you?" (page_testimonial.c),
	 * which thanks the client on the rating page; quote=withdrawn: the
	 * 303 after the box was unticked, which says it was taken back. */
#define VF_QUOTE	5
	{ "quote", "quote", 0, 10, 0, NULL },
	FIELDS_END
};

/* The fields of POST /o/TOKEN/messages (an interface). */
const struct field track_message_fields[] = {
#define TF_MESSAGE	0
	{ "message", "your follow-up question", 1, 5000,
	    F_REQUIRED | F_MULTILINE, NULL },
#define TF_CSRF		1
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

/* The fields of POST /o/TOKEN/viewed (an interface): the status page's
 * script sends it when the page is shown. */
const struct field track_viewed_fields[] = {
	CSRF_FIELD_ENTRY,
	FIELDS_END
};

int
page_track_order(struct request *r, struct order *o, int details)
{
	struct token	t;
	int		rc;

	if (r->arg == NULL || token_check(r->arg, TOK_TRACK, NULL, &t) !=
	    TOKEN_OK) {
		page_error(r, 404, "This link does not work", "The link may "
		    "have been cut short or mistyped. Copy the whole link "
		    "from your email, or ask for your links again on the "
		    "\"Lost your link?\" page.");
		return 0;
	}
	rc = details ? order_load(r, t.id, o) : order_load_status(r, t.id, o);
	/* Every client link of an erased order answers 410 Gone. */
	return page_found(r, rc, "This link does not work", "There is no "
	    "order behind this link.") && !page_gone(r, o);
}

/* Adds one timeline step to tv's list steps. */
static void
step(struct request *r, struct tvars *tv, const char *label, int64_t at,
    int current)
{
	struct tvars	*row = tv_row(tv, "steps");
	int		 done = at != 0 || current;

	tv_set(row, "label", label);
	tv_set(row, "at", page_time(r, at));
	tv_set(row, "class", done ? (current ? "done current" : "done") : "");
}

/* Adds o's timeline to tv as the list steps. */
static void
timeline(struct request *r, struct tvars *tv, const struct order *o)
{
	const char *st = o->status;

	step(r, tv, "Received", o->created_at, !o->paid_at &&
	    !o->cancelled_at);
	if (o->cancelled_at && !o->paid_at) {
		step(r, tv, "Cancelled", o->cancelled_at, 1);
		return;
	}
	step(r, tv, "Paid", o->paid_at, o->paid_at && !o->answered_at);
	step(r, tv, "Answered", o->answered_at, !strcmp(st, "answered") &&
	    o->followups_used == 0);
	if (o->followups_used > 0)
		step(r, tv, !strcmp(st, "followup") ? "Follow-up received, "
		    "being answered" : "Follow-up answered",
		    !strcmp(st, "followup") ? 0 : o->last_answered_at,
		    !strcmp(st, "followup") || !strcmp(st, "answered"));
	if (o->refund_requested_at || o->refunded_at) {
		step(r, tv, "Refund requested", o->refund_requested_at,
		    !strcmp(st, "refund_requested"));
		step(r, tv, "Refunded", o->refunded_at, o->refunded_at != 0);
	}
}

/* Adds the thread to tv as the list messages: the question, answers
 * and follow-ups, each with its files; html is a reply's cmark output.
 * Returns 1, or 0 on a database error. */
static int
thread(struct request *r, struct tvars *tv, const struct order *o,
    int *has_answer)
{
	sqlite3_stmt		*s = db_stmt(ST_MESSAGES_PUBLIC);
	struct file_item	*files;
	const char		*url = req_cat(r, "/o/", r->arg, "/files/",
				    (char *)NULL);
	int64_t			 nfiles;

	*has_answer = 0;
	/* One statement for the files of every message: each message's
	 * are put under it; a note's, an extra's or the draft's never
	 * match a message shown here. */
	if ((nfiles = files_of_order(r, o->id, &files)) < 0)
		return 0;
	if (s == NULL || !db_bind(s, "i", o->id))
		return 0;
	while (db_step(ST_MESSAGES_PUBLIC) == DB_ROW) {
		struct tvars	*row = tv_row(tv, "messages");
		const char	*kind = db_text(s, 0);

		tv_set(row, "at", page_time(r, sqlite3_column_int64(s, 2)));
		if (files_tv(r, row, "files", files, nfiles,
		    sqlite3_column_int64(s, 4), url) > 0)
			tv_set(row, "has_files", "1");
		if (!strcmp(kind, "reply")) {
			*has_answer = 1;
			/* Rendered when the reply was sent (older rows: now). */
			tv_set(row, "html", sqlite3_column_type(s, 3) ==
			    SQLITE_NULL ? req_keep(r, md_render(db_text(s, 1))) :
			    req_strdup(r, db_text(s, 3)));
			tv_set(row, "text", "");
			tv_set(row, "who", conf.consultant_name);
			tv_set(row, "class", "reply");
		} else {
			tv_set(row, "html", "");
			tv_set(row, "text", req_strdup(r, db_text(s, 1)));
			tv_set(row, "who", !strcmp(kind, "question") ?
			    "Your question" : !strcmp(kind, "info") ?
			    "More information you sent" :
			    "Your follow-up question");
			tv_set(row, "class", req_strdup(r, kind));
		}
	}
	db_done(ST_MESSAGES_PUBLIC);
	return 1;
}

/* Whether the client of o has asked for the money back (the request
 * open, or refunded). */
static int
refund_asked(const struct order *o)
{
	return !strcmp(o->status, "refund_requested") ||
	    !strcmp(o->status, "refunded");
}

/* Renders the status page of o with status, an optional notice, and the
 * follow-up form's value and errors (files_error: its files'). */
static void
track_render_files(struct request *r, const struct order *o, int status,
    const char *notice, const char *files_error)
{
	struct tvars	 tv = { .n = 0 };
	int		 has_answer, can_follow;
	int64_t		 left = conf.followups_included - o->followups_used;
	int64_t		 paid, refunded;
	char		*url, created[TIME_TEXT_MAX], due[TIME_TEXT_MAX];
	char		 left_text[INT_TEXT_MAX];

	if (!thread(r, &tv, o, &has_answer) ||
	    !order_balance(o->id, &paid, &refunded) ||
	    !page_erasure_vars(r, &tv, o, r->arg) ||
	    (refund_asked(o) && !pay_method_refund_vars(r, &tv, o,
	    refunded))) {
		tv_free(&tv);
		page_unavailable(r);
		return;
	}
	page_vars(r, &tv);
	tv_set(&tv, "number", o->number);
	tv_set(&tv, "name", o->name);
	tv_set(&tv, "created", page_time_in(created, o->created_at));
	tv_set(&tv, "status_label", order_status_label(o->status));
	timeline(r, &tv, o);
	/* What the client reads is the order's: its price until it is
	 * paid, then what was paid net of refunds (the ledger). */
	tv_set(&tv, "amount", page_money(r, paid > 0 ? paid - refunded :
	    o->price, o->currency));
	tv_set(&tv, "paid_net", paid > 0 ? page_money(r, paid - refunded,
	    o->currency) : "");
	tv_set(&tv, "refunded", refunded > 0 ? page_money(r, refunded,
	    o->currency) : "");
	tv_set(&tv, "order_currency", o->currency);
	tv_set(&tv, "unpaid", !strcmp(o->status, "awaiting_payment") ?
	    "1" : "");
	page_pay_vars(r, &tv, o, r->arg);
	tv_set(&tv, "due", !o->answered_at && o->paid_at ?
	    page_time_in(due, o->due_at) : "");
	can_follow = !strcmp(o->status, "answered") && left > 0;
	tv_set(&tv, "can_follow", can_follow ? "1" : "");
	tv_set(&tv, "followups_left", int_text(left_text, left));
	tv_set(&tv, "no_follow", !strcmp(o->status, "answered") &&
	    left <= 0 ? "1" : "");
	tv_set(&tv, "followup_pending", !strcmp(o->status, "followup") ?
	    "1" : "");
	tv_set(&tv, "action", req_cat(r, "/o/", r->arg, "/messages",
	    (char *)NULL));
	/* The page's script records the first view of an answer
	 * (page_track_viewed); the GET itself never writes. */
	tv_set(&tv, "view_action", o->answered_at && !o->answer_viewed_at ?
	    req_cat(r, "/o/", r->arg, "/viewed", (char *)NULL) : "");
	if (r->fields != NULL && r->route != NULL &&
	    r->route->fields == track_message_fields) {
		tv_set(&tv, "message", r->fields[TF_MESSAGE].value);
		tv_set(&tv, "err_message", r->fields[TF_MESSAGE].error);
	}
	attach_form_vars(r, &tv, files_error);
	tv_set(&tv, "notice", notice);
	/* The first view after the ask form (its 303 adds new=1): o was
	 * loaded with the email address then only (see page_track). */
	if (*o->email != '\0')
		tv_set(&tv, "emailed_to", o->email);
	if (order_refundable(o, paid - refunded) &&
	    (url = order_refund_url(r, o)) != NULL)
		tv_set(&tv, "refund_url", url + strlen(conf.base_url));
	tv_set(&tv, "late", conf.refund_if_late && order_late(o) ? "1" : "");
	/* Once a refund is asked for, the guarantee says where it stands. */
	tv_set(&tv, "refund_open", !strcmp(o->status, "refund_requested") ?
	    "1" : "");
	tv_set(&tv, "refund_done", !strcmp(o->status, "refunded") ? "1" : "");
	tv_set(&tv, "refund_asked", refund_asked(o) ? "1" : "");
	page_render(r, status, req_cat(r, "Order ", o->number, (char *)NULL),
	    "track.html", &tv);
}

/* Renders the status page of o, as track_render_files without a files
 * error. */
static void
track_render(struct request *r, const struct order *o, int status,
    const char *notice)
{
	track_render_files(r, o, status, notice, NULL);
}

/* Back from Stripe Checkout: confirms the payment with Stripe when the
 * webhook has not yet (page_pay_return), before the page's reads.
 * Returns 1, or 0 after answering (bad link, store down). */
static int
checkout_return(struct request *r)
{
	struct order o;

	if (!page_track_order(r, &o, 0))
		return 0;
	page_pay_return(r, &o, r->fields[VF_SESSION].value);
	return 1;
}

/* GET /o/TOKEN. The page's reads share one read transaction, and it
 * writes nothing: mail scanners open links too. The first view of an
 * answer is recorded by the page's script (POST /o/TOKEN/viewed), or by
 * a rating or a follow-up. */
void
page_track(struct request *r)
{
	struct order	 o;
	const char	*checkout = r->fields[VF_CHECKOUT].value;
	const char	*notice = NULL;

	if (!strcmp(checkout, "done") && !checkout_return(r))
		return;
	if (!db_read_begin()) {
		page_unavailable(r);
		return;
	}
	/* Only the first view after the ask form reads the client's email
	 * address, to say where the link went. */
	if (!page_track_order(r, &o, !strcmp(r->fields[VF_NEW].value, "1"))) {
		db_read_end();
		return;
	}
	if (now_unix() - o.created_at > NEW_ORDER_WINDOW)
		o.email = "";
	if (!strcmp(r->fields[VF_FOLLOWUP].value, "sent") &&
	    o.followups_used > 0)
		notice = req_printf(r, "Your follow-up question was sent. "
		    "I will answer it within %lld hours, by email and on "
		    "this page.", (long long)conf.answer_hours);
	if (!strcmp(checkout, "done"))
		notice = strcmp(o.status, "awaiting_payment") != 0 ?
		    "Payment received \xe2\x80\x94 thank you." :
		    "We are waiting for your bank to confirm your payment. "
		    "This page will say so as soon as it does.";
	if (*r->fields[VF_RATING].value != '\0')
		page_rating(r, &o, r->fields[VF_RATING].value, r->arg);
	else
		track_render(r, &o, 200, notice);
	db_read_end();
}

/* POST /o/TOKEN/viewed: sent by www/static/viewed.js when a status page
 * with an answer not yet seen is shown. Records the first view for the
 * consultant (the order page and the refund list show it) and answers
 * 204; a later one changes nothing. */
void
page_track_viewed(struct request *r)
{
	struct order o;

	if (!page_track_order(r, &o, 0))
		return;
	if (!r->csrf_ok) {
		page_error(r, 403, "This page has expired", "Reload the status "
		    "page.");
		return;
	}
	if (o.answered_at && !o.answer_viewed_at &&
	    db_run(ST_ORDER_SET_VIEWED, "ii", now_unix(), o.id) != DB_DONE) {
		page_unavailable(r);
		return;
	}
	http_open(r, 204, NULL);
}

/* What followup_store returns when the order was erased since the
 * page loaded it (nothing written). */
#define FOLLOWUP_ERASED	2

/* Writes a follow-up (order_followup) with r's files (kinds from
 * attach_check) in a transaction of its own: the body was read whole
 * (its files spooled) before it begins. Returns 1, 0 if the allowance is
 * used up, FOLLOWUP_ERASED, -1 on failure. */
static int
followup_store(struct request *r, const struct order *o, const char *text,
    const char **kinds)
{
	char	idtext[INT_TEXT_MAX];
	int64_t	mid;
	int	rc;

	if (!db_begin())
		return -1;
	if ((rc = page_order_erased(o->id)) != 0) {
		db_rollback();
		return rc < 0 ? -1 : FOLLOWUP_ERASED;
	}
	if ((rc = order_followup(r, o, text, 0)) != 1) {
		db_rollback();
		return rc;
	}
	/* The files go with the message just written: the order's newest. */
	if (r->nfiles > 0 && ((mid = db_find_id(ST_MESSAGE_NEWEST,
	    int_text(idtext, o->id))) <= 0 ||
	    !attach_store(r, kinds, o->id, mid, 0))) {
		db_rollback();
		return -1;
	}
	return db_commit() ? 1 : -1;
}

/* POST /o/TOKEN/messages */
void
page_track_message(struct request *r)
{
	struct order	 o;
	const char	**kinds = req_alloc(r, (r->nfiles + 1) *
			    sizeof(*kinds)), *ferr;
	int		 rc;

	if (!page_track_order(r, &o, 0))
		return;
	if (!r->csrf_ok) {
		track_render(r, &o, 403, "Your follow-up could not be sent "
		    "because the page had expired. It is kept below: please "
		    "send it again.");
		return;
	}
	if (r->nerrors > 0) {
		track_render(r, &o, 400, "Please check your follow-up "
		    "question below.");
		return;
	}
	if (strcmp(o.status, "answered") != 0 ||
	    o.followups_used >= conf.followups_included) {
		track_render(r, &o, 409, !strcmp(o.status, "followup") ?
		    "Your follow-up question has been received and is being "
		    "answered." : strcmp(o.status, "answered") != 0 ?
		    "Follow-up questions can be sent once your question is "
		    "answered." : "You have used the follow-up questions "
		    "included with this order. For anything new, please ask "
		    "a new question.");
		return;
	}
	/* The files are checked (and images cleaned) before the store. */
	if ((ferr = attach_check(r, kinds)) != NULL) {
		track_render_files(r, &o, 400, "Your follow-up was not sent: "
		    "please check its files below.", ferr);
		return;
	}
	if ((rc = followup_store(r, &o, r->fields[TF_MESSAGE].value,
	    kinds)) < 0) {
		track_render(r, &o, 503, page_not_saved(r));
		return;
	}
	if (rc == 0 || rc == FOLLOWUP_ERASED) {
		if (order_load_status(r, o.id, &o) != 1) {
			page_unavailable(r);
			return;
		}
		if (page_gone(r, &o))
			return;
		track_render(r, &o, 409, "You have used the follow-up "
		    "questions included with this order.");
		return;
	}
	/* The confirmation goes on top of the page the 303 opens. */
	http_redirect(r, req_printf(r, "/o/%s?followup=sent#notice", r->arg));
}
