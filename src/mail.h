/* mail.h: writing emails to the outbox (in the caller's transaction) and
 * reading it for the admin pages; delivery is outbox.c's (with
 * mail_transport.c, which alone needs libcurl: pmb.fcgi does not link
 * it). */
#ifndef PMB_MAIL_H
#define PMB_MAIL_H

#include <stdint.h>

#include "tmpl.h"

/* Renders www/templates/mail/KIND.txt (first line "Subject: ...") into a
 * plain-text part and mail/KIND.html into an HTML part's body, and
 * queues it for to_addr (mail_render,
 * then mail_store). Call inside the transaction of the change that causes
 * the mail. Returns 1, or 0 on a missing template or a failed write (the
 * caller rolls back). */
int	 mail_queue(const char *kind, int64_t order_id, const char *to_addr,
	    const char *to_name, const struct tvars *);

/* A rendered message, as the outbox stores it; the strings are the
 * caller's to free (mail_parts_free). */
struct mail_parts {
	char	*subject;	/* one line, control characters made spaces */
	char	*text;		/* the plain-text part */
	char	*html;		/* the HTML part's body: mail/KIND.html */
};

/* Appends to out the HTML part as it is sent: body (an outbox row's
 * body_html, mail/KIND.html as rendered when it was queued) inside
 * mail/layout.html, with subject and the live settings. The frame is the
 * same for every email, so the outbox does not store it (bench/
 * README.md, fix 26). A body_html stored whole before (a document: from
 * its doctype) and an empty one (text only) are copied as they are.
 * marked (mail_marked): the frame starts with the reply marker.
 * Returns 1, or 0 (logged) when the layout cannot be rendered. */
int	 mail_frame(struct buf *out, const char *subject, const char *body,
	    int marked);
/* Returns 1 if an email of order_id to to_addr carries the reply marker
 * (MAIL_REPLY_MARKER, above its text in both parts: a reply is cut
 * there): reply_address is set and the email goes to a client (it
 * belongs to an order and is not addressed to admin_email), else 0. */
int	 mail_marked(int64_t order_id, const char *to_addr);

/* Renders mail/KIND.txt and mail/KIND.html with tv into *m, touching
 * no database (a caller may render before its transaction). Returns 1,
 * or 0 (logged) when a template is missing or the text has no Subject
 * line. */
int	 mail_render(const char *kind, const struct tvars *, struct mail_parts *);
/* Frees m's strings. */
void	 mail_parts_free(struct mail_parts *m);
/* Queues m for to_addr (order_id 0: no order), inside the caller's
 * transaction. Returns 1, or 0 on a refused address or a failed write. */
int	 mail_store(const char *kind, int64_t order_id, const char *to_addr,
	    const char *to_name, const struct mail_parts *m);

/* One outbox row as the admin outbox page lists it. The strings belong
 * to SQLite and live only during the callback. */
struct mail_info {
	int64_t		 id;
	const char	*kind;
	int64_t		 order_id;	/* 0: none */
	const char	*to_addr;
	const char	*to_name;
	const char	*subject;
	const char	*status;	/* queued, sending, sent, failed,
					 * bounced */
	int64_t		 attempts;	/* tries made so far */
	int64_t		 next_at;	/* due for its next try (queued) */
	int64_t		 claimed_until;	/* 0 unless being sent */
	const char	*last_error;	/* "" if none */
	int64_t		 created_at;
	int64_t		 sent_at;	/* 0 unless sent */
	int64_t		 bounced_at;	/* 0 unless a bounce named it */
	const char	*bounce;	/* the bounce's diagnostic, or "" */
};

/* The outbox's statuses, in the order mail_counts counts them. */
#define MAIL_STATUSES	5
extern const char *const mail_statuses[MAIL_STATUSES];

/* For the admin outbox page. Calls fn for each message whose status is
 * status ("" or NULL: every status) and whose id is below before (0: no
 * bound), newest first, stopping after limit (keyset paging). Returns
 * the number listed, or -1 on error. */
int	 mail_list(const char *status, int limit, int64_t before,
	    void (*fn)(const struct mail_info *, void *), void *arg);
/* Calls fn with message id, its plain-text and HTML parts. Returns 1,
 * 0 when there is no such message, or -1 on error. */
int	 mail_read(int64_t id, void (*fn)(const struct mail_info *,
	    const char *text, const char *html, void *), void *arg);
/* Fills counts[] with the number of messages of each of mail_statuses
 * (queued, sending, sent, failed, bounced). Returns 1, or 0 on error. */
int	 mail_counts(int64_t counts[MAIL_STATUSES]);
/* "Retry now": makes a queued or failed message due at once (a failed
 * one gets one more try). Call inside the caller's transaction (with
 * its audit row), as for mail_queue. Returns 1 if the message was
 * rescheduled, 0 if there is no such queued or failed message, -1 on a
 * database error. A running "pmbctl mail run" picks it up within
 * MAIL_POLL_SECONDS (outbox.h). */
int	 mail_retry_now(int64_t id);

#endif
