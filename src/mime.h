/* mime.h: building RFC 5322 + MIME messages from an outbox row: the
 * encoders (quoted-printable, RFC 2047 words), the addresses, and the
 * whole message. */
#ifndef PMB_MIME_H
#define PMB_MIME_H

#include <stdint.h>

#include "util.h"

/* One outbox message as it is sent. */
struct mail_msg {
	int64_t		 id;
	const char	*kind;		/* confirmation, lost, ... */
	const char	*to_addr;
	const char	*to_name;
	const char	*subject;
	const char	*body_text;
	const char	*body_html;	/* may be empty: text only */
	int64_t		 created_at;	/* the Date: header */
};

/* Appends text as quoted-printable (RFC 2045) with CRLF line ends: its
 * lines (LF, CRLF or CR) become CRLF lines of at most 76 characters. */
void	 mime_qp(struct buf *, const char *text);
/* Appends "Name: value" CRLF, folded at 76 columns; the value is sent
 * as is when it is plain printable ASCII, else as RFC 2047 encoded-words
 * (UTF-8, Q). Control characters become spaces: no CR or LF of value
 * ever reaches the header. */
void	 mime_header_text(struct buf *, const char *field, const char *value);
/* Appends "Name: display name <addr>" CRLF, the display name quoted or
 * encoded as RFC 2047 words, folded. addr must be checked first with
 * mime_addr_ok. */
void	 mime_header_mailbox(struct buf *, const char *field,
	    const char *name, const char *addr);
/* Returns 1 if addr is a plain ASCII addr-spec (local@domain) that is
 * safe in a header and an SMTP command, else 0. */
int	 mime_addr_ok(const char *addr);
/* Splits "Name <addr>" or "addr" into name and addr (both allocated;
 * name "" if none). Returns 1, or 0 if addr is not acceptable. */
int	 mime_parse_mailbox(const char *s, char **name, char **addr);
/* Builds the whole message of m into b with CRLF line ends: headers
 * (Date, Message-ID, From, Reply-To, To, Subject, MIME) and a
 * multipart/alternative body of a text and an HTML part. The message
 * depends on m and the settings only, so a resend is the same message.
 * Returns 1, or 0 with the reason in why (a bad address). */
int	 mail_build(struct buf *b, const struct mail_msg *m, const char **why);

#endif
