/* email_addr.c: the one email address validator and comparison key. */
#include <string.h>

#include "email_addr.h"
#include "util.h"

#define LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */
#define LABEL_MAX	63	/* RFC 1035 2.3.4 */

/* Returns 1 if c may appear in a dot-atom of the local part. */
static int
atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* Returns 1 if c may appear in a domain label. */
static int
ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-';
}

/* Returns NULL if the n bytes at s are dot-atoms of atext (no dot first,
 * last or next to another), else why not. */
static const char *
local_check(const char *s, size_t n)
{
	if (n == 0 || n > LOCAL_MAX)
		return "The part before the @ does not look right.";
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (i == 0 || i == n - 1 || s[i + 1] == '.')
				return "The part before the @ cannot start or "
				    "end with a dot, or hold two dots in a row.";
		} else if (!atext(s[i]))
			return "The part before the @ holds a character an "
			    "email address cannot have.";
	}
	return NULL;
}

/* Returns NULL if s is two or more dot-separated labels of letters,
 * digits and inner hyphens, else why not. */
static const char *
domain_check(const char *s)
{
	const char	*bad = "The part after the @ should be a domain such "
			    "as example.com.";
	size_t		 labels = 0;

	for (;;) {
		size_t n = 0;

		while (ldh(s[n]))
			n++;
		if (s[n] != '\0' && s[n] != '.')
			return "The part after the @ holds a character a "
			    "domain cannot have.";
		if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
			return bad;
		labels++;
		if (s[n] == '\0')
			break;
		s += n + 1;
	}
	return labels >= 2 ? NULL : bad;
}

const char *
email_addr_check(const char *addr)
{
	const char *at = strchr(addr, '@'), *why;

	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "Please enter an email address such as "
		    "name@example.com.";
	if (strlen(addr) > EMAIL_ADDR_MAX)
		return "An email address has at most 254 characters.";
	if ((why = local_check(addr, (size_t)(at - addr))) != NULL)
		return why;
	return domain_check(at + 1);
}

char *
email_addr_key(const char *addr)
{
	char *key = xstrdup(addr);

	for (char *p = key; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return key;
}
