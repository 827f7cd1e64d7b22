/* mime.h: building RFC 5322 + MIME messages from an outbox row with
 * GMime 3 (which brings GLib: only pmbctl links it; pmb.fcgi sends no
 * mail), and the addresses they carry. */
#ifndef PMB_MIME_H
#define PMB_MIME_H

#include <stdint.h>

#include "util.h"

/* One outbox message as it is sent. */
struct mail_msg {
	int64_t		 id;		/* the outbox row; 0: none */
	int64_t		 order_id;	/* 0: none */
	const char	*kind;		/* confirmation, lost, ... */
	const char	*to_addr;
	const char	*to_name;
	const char	*subject;
	const char	*body_text;
	const char	*body_html;	/* may be empty: text only */
	int64_t		 created_at;	/* the Date: header */
};

/* GMime, once per process before mail_build (pmbctl's main); mime_stop
 * at the end. */
void	 mime_start(void);
void	 mime_stop(void);
/* Returns 1 if addr is a plain ASCII addr-spec (local@domain) that is
 * safe in a header and an SMTP command, and that GMime writes as it is
 * (not a domain label "xn--" that is not valid punycode), else 0. */
int	 mime_addr_ok(const char *addr);
/* Splits "Name <addr>" or "addr" into name and addr (both allocated;
 * name "" if none). Returns 1, or 0 if addr is not acceptable. */
int	 mime_parse_mailbox(const char *s, char **name, char **addr);
/* Returns 1 if m goes to a client: it belongs to an order and is not
 * addressed to admin_email (the consultant's alerts are), else 0. */
int	 mime_to_client(const struct mail_msg *m);
/* Builds the whole message of m into b with CRLF line ends: headers
 * (Date, Message-ID, From, Reply-To, To, Subject, MIME-Version,
 * Auto-Submitted, Content-Type) and a multipart/alternative body of a
 * text and an HTML part (or the text part alone), both UTF-8 and
 * quoted-printable; names and subject with control characters made
 * spaces, invalid UTF-8 made '?', non-ASCII as RFC 2047 UTF-8 words.
 * Reply-To is admin_email, or with reply_address set and m to a client,
 * reply_address's LOCAL+TOKEN@DOMAIN naming the order; the Message-ID
 * is <pmb.OUTBOXID.SIG@DOMAIN of mail_from> (mail_token.h), or without a
 * key or a row <HASH.ID@DOMAIN>. The message depends on m, the
 * settings and the signing key only, so a resend is the same message.
 * Returns 1, or 0 with the reason in why (a bad address). */
int	 mail_build(struct buf *b, const struct mail_msg *m, const char **why);

#endif
