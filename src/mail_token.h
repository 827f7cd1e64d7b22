/* mail_token.h: the signed parts of the addresses and Message-IDs of
 * the mail we send (issue 18), so that a reply or a bounce names its
 * order or outbox row: short, lowercase base32 (RFC 4648's alphabet
 * lowercased, no padding), so they fit an address's local part (64
 * characters at most) and survive a mail system changing their case.
 *
 *   reply token   base32(key id, order id (5 bytes), MAC) = 26 chars,
 *                 in Reply-To: LOCAL+TOKEN@DOMAIN (purpose "reply")
 *   Message-ID    <pmb.OUTBOXID.SIG@DOMAIN>        (purpose "msgid")
 *   VERP sender   LOCAL+b-OUTBOXID-SIG@DOMAIN      (purpose "bounce")
 *
 * SIG is base32(key id, MAC) = 18 chars; every MAC is the first 10
 * bytes of token_short_mac(purpose, decimal id), so any loaded key
 * verifies what it signed (rotation). Checks are constant time; a NULL
 * string verifies as nothing (0). */
#ifndef PMB_MAIL_TOKEN_H
#define PMB_MAIL_TOKEN_H

#include <stdint.h>

#include "util.h"

/* Length of a reply token. */
#define MAIL_REPLY_TOKEN_LEN	26
/* Length of the SIG in a Message-ID or a VERP address. */
#define MAIL_SIG_LEN		18
/* The highest order id a reply token holds (5 bytes). */
#define MAIL_REPLY_ID_MAX	((INT64_C(1) << 40) - 1)

/* Writes the reply token of order_id into out. Returns 1, or 0 when no
 * key is loaded or the id is out of range (1 to MAIL_REPLY_ID_MAX). */
int	 mail_reply_token(char out[MAIL_REPLY_TOKEN_LEN + 1],
	    int64_t order_id);
/* Returns the order id of a reply token (any case), or of an address
 * LOCAL+TOKEN@DOMAIN, or 0 for anything we did not sign. */
int64_t	 mail_reply_verify(const char *s);
/* Appends "<pmb.ID.SIG@domain>" to b. Returns 1, or 0 when no key is
 * loaded or outbox_id < 1 (nothing appended). */
int	 mail_msgid_make(struct buf *b, int64_t outbox_id, const char *domain);
/* Returns the outbox id of one of our Message-IDs (with or without the
 * angle brackets, any case), or 0. */
int64_t	 mail_msgid_verify(const char *s);
/* Appends the VERP address "LOCAL+b-ID-SIG@DOMAIN" of addr
 * (LOCAL@DOMAIN) to b. Returns 1, or 0 (nothing appended). */
int	 mail_verp_make(struct buf *b, int64_t outbox_id, const char *addr);
/* Returns the outbox id of a VERP address (or of its tag "b-ID-SIG"),
 * any case, or 0. */
int64_t	 mail_verp_verify(const char *s);

#endif
