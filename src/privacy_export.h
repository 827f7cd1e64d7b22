/* privacy_export.h: everything held about a client, as one JSON document
 * (jansson), for pmbctl privacy export and the order page's "Export this
 * client's data". */
#ifndef PMB_PRIVACY_EXPORT_H
#define PMB_PRIVACY_EXPORT_H

#include <stddef.h>
#include <stdint.h>

/* Returns the export of every order whose client's address is email
 * (case-insensitive), as malloc'd NUL-terminated JSON text (free it) of
 * *len bytes, read in one read transaction; *n is how many orders it
 * holds (0: none; the document then lists none). NULL on a database or
 * memory failure. */
char	*privacy_export_email(const char *email, size_t *len, int64_t *n);

/* As privacy_export_email, for the client of order id: all that
 * person's orders. NULL with *n = 0 if there is no such order or it is
 * erased; NULL with *n = -1 on failure. */
char	*privacy_export_order(int64_t id, size_t *len, int64_t *n);

#endif
