/* tz.h: the site's time zone (the time_zone setting): an IANA name
 * checked against the zoneinfo files, then handed to the C library once
 * at start, so that every time shown goes through localtime_r. */
#ifndef PMB_TZ_H
#define PMB_TZ_H

#include <stddef.h>

/* The zone that needs no zoneinfo file, and the formatters' fast path. */
#define TZ_UTC	"UTC"

/* Returns NULL when name is a zone of the zoneinfo files ($TZDIR, else
 * /usr/share/zoneinfo), or the reason it is not: an empty name, an
 * absolute path, a ".." part, a character no zone name has, no such
 * file, a directory ("Europe"), or a file that is not TZif. "UTC" is
 * always a zone. The reason lives until the next call. */
const char	*tz_check(const char *name);
/* Makes name (checked by tz_check) the zone of every time shown: sets TZ
 * and calls tzset, and tells util.c's formatters whether the zone is UTC
 * (their hand-written fast path). Returns 1, or 0 with the reason in err
 * if TZ cannot be set. */
int		 tz_use(const char *name, char *err, size_t errsz);

#endif
