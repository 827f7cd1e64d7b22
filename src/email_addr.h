/* email_addr.h: the one email address validator, used wherever an address
 * enters (forms, settings, mail sending), and the key addresses are
 * compared by. */
#ifndef PMB_EMAIL_ADDR_H
#define PMB_EMAIL_ADDR_H

#include <stddef.h>

/* The longest address (RFC 5321's path limit less the angle brackets). */
#define EMAIL_ADDR_MAX	254

/* Returns NULL if addr is a plain address (local@domain, no name, no
 * comments) that every transport here can deliver to, else a sentence
 * for the user saying why not. The local part is dot-atoms of RFC 5322's
 * atext, the domain dot-separated labels of letters, digits and inner
 * hyphens, at least two of them. */
const char *email_addr_check(const char *addr);

/* Returns addr's comparison key, a new string: the address with ASCII
 * letters lowered, as every mail provider a client uses treats both its
 * parts, and as SQLite's lower() does (so that the key matches the index
 * on lower(email), sql/009_email_nocase.sql). */
char	*email_addr_key(const char *addr);

#endif
