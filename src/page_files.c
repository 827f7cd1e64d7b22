/* page_files.c: a file downloaded: by the client through their status
 * link, by staff from the order page (files.c serves both). */
#include <stdint.h>

#include "files.h"
#include "http.h"
#include "order.h"
#include "page.h"
#include "util.h"

/* Reads a file id from the path segment s. Returns it, or 0 after
 * answering 404. */
static int64_t
file_id(struct request *r, const char *s)
{
	int64_t id;

	if (s == NULL || !parse_int64(s, 1, INT64_MAX, &id)) {
		page_error(r, 404, "File not found", "There is no such file "
		    "here.");
		return 0;
	}
	return id;
}

/* GET /o/TOKEN/files/ID */
void
page_track_file(struct request *r)
{
	struct order	o;
	int64_t		id;

	if (!page_track_order(r, &o, 0) || (id = file_id(r, r->arg2)) == 0)
		return;
	file_serve(r, id, FILE_CLIENT, o.id);
}

/* GET /admin/files/ID */
void
page_admin_file(struct request *r)
{
	int64_t id;

	if ((id = file_id(r, r->arg)) != 0)
		file_serve(r, id, FILE_STAFF, 0);
}
