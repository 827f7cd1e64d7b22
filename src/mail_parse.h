/* mail_parse.h: reading a received message (issue 18). mail_parse fills
 * a struct inbound from one RFC 5322 message with GMime 3 (pmbctl and the
 * tests only: pmb.fcgi links neither GLib nor libxml2); mail_reply_text
 * cuts a reply's text down to what the client wrote. Nothing here routes
 * or stores a message. Every string is UTF-8, NUL-terminated and owned by
 * the struct (inbound_free frees them); a missing header is NULL. */
#ifndef PMB_MAIL_PARSE_H
#define PMB_MAIL_PARSE_H

#include <stddef.h>

#include "mail_text.h"	/* mail_reply_text, MAIL_REPLY_MARKER */

/* An attachment: listed, and its bytes for the store to check and keep
 * (mail_intake.c), only when files are on and it is within
 * attachment_max_mb. */
struct inbound_attachment {
	char	*name;		/* its file name; "" when it has none */
	char	*type;		/* "image/png" (as the sender said: never
				 * trusted) */
	size_t	 size;		/* decoded bytes */
	char	*data;		/* those bytes (size of them), or NULL: over
				 * the limit, files off, or an attached email */
};

struct inbound {
	char	*from_addr;	/* From's address, domain lowercased */
	char	*from_name;	/* From's display name, decoded; "" if none */
	char	*to;		/* To's addresses, ", " between, as given */
	char	*delivered_to;	/* the first Delivered-To, as given */
	char	*envelope_from;	/* Return-Path, without its "<>" */
	char	*subject;	/* decoded (RFC 2047) */
	char	*message_id;	/* without "<>" */
	char	*in_reply_to;	/* without "<>" */
	char	**references;	/* Message-IDs without "<>", oldest first */
	size_t	 nreferences;
	char	*auto_submitted; /* as given: "auto-replied" */
	char	*precedence;	/* as given: "bulk" */
	int	 list;		/* has List-Id or List-Unsubscribe */
	int	 dsn;		/* multipart/report; report-type=delivery-status */
	char	*dsn_message_id; /* a DSN's returned message's Message-ID */
	char	*dsn_status;	/* its first recipient's Status: "5.1.1" */
	char	*dsn_diagnostic; /* its Diagnostic-Code: "smtp; 550 ..." */
	char	*text;		/* the text (never NULL after mail_parse) */
	int	 text_from_html; /* text was made from the text/html part */
	struct inbound_attachment *att;
	size_t	 natt;
};

/* Parses len bytes of raw (need not be NUL-terminated) into m, zeroed
 * first. Needs mime_start() once. Returns 0, or -1 when GMime finds no
 * message at all (m is then empty and safe to free). */
int	 mail_parse(const char *raw, size_t len, struct inbound *m);
/* Frees what mail_parse put in m and zeroes it. */
void	 inbound_free(struct inbound *m);
#endif
