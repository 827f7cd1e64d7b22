/* pmbctl_privacy_export.c: pmbctl privacy export --email ADDRESS |
 * --order NUMBER [--out FILE]: everything held about a client, as the
 * JSON document of privacy_export.c, to standard output or to FILE
 * (mode 0600, written beside it and renamed into place, so a reader never
 * sees half of it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "order.h"
#include "pmbctl.h"
#include "privacy_export.h"
#include "util.h"

#define EXPORT_FILE_MODE	0600	/* a client's data: the owner's only */

/* What the command line asked for. */
struct export_args {
	const char	*email;		/* --email, or NULL */
	const char	*order;		/* --order, or NULL */
	const char	*out;		/* --out, or NULL: standard output */
};

/* Prints the command's usage to stderr; returns EXIT_USAGE. */
static int
export_usage(const char *why)
{
	fprintf(stderr, "pmbctl: %s\nusage: pmbctl privacy export "
	    "--email ADDRESS | --order NUMBER [--out FILE]\n", why);
	return EXIT_USAGE;
}

/* Reads argv (pairs of an option and its value) into *a. Returns NULL,
 * or why the line makes no sense. */
static const char *
export_args_read(char *argv[], struct export_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 0; argv[i] != NULL; i += 2) {
		const char **slot;

		if (strcmp(argv[i], "--email") == 0)
			slot = &a->email;
		else if (strcmp(argv[i], "--order") == 0)
			slot = &a->order;
		else if (strcmp(argv[i], "--out") == 0)
			slot = &a->out;
		else
			return "privacy export: unknown option";
		if (argv[i + 1] == NULL || *argv[i + 1] == '\0')
			return "privacy export: an option without its value";
		if (*slot != NULL)
			return "privacy export: an option given twice";
		*slot = argv[i + 1];
	}
	if ((a->email == NULL) == (a->order == NULL))
		return "privacy export: give either --email or --order";
	return NULL;
}

/* Writes doc (n bytes and a newline) to path.tmp, mode 0600, then
 * renames it to path. Returns 1, or 0 after a message (the temporary
 * file removed). */
static int
export_write_file(const char *path, const char *doc, size_t n)
{
	char	*tmp = xmalloc(strlen(path) + 5);
	int	 fd, ok;

	sprintf(tmp, "%s.tmp", path);
	if (unlink(tmp) != 0 && errno != ENOENT) {
		fail("%s: %s", tmp, strerror(errno));
		free(tmp);
		return 0;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    EXPORT_FILE_MODE);
	ok = fd >= 0 && write_all(fd, doc, n) &&
	    write_all(fd, "\n", 1) && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = 0;
	if (ok && rename(tmp, path) != 0)
		ok = 0;
	if (!ok) {
		fail("%s: %s", fd < 0 ? tmp : path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	} else
		sync_folder_of(path);
	free(tmp);
	return ok;
}

/* Returns the export that a asks for (privacy_export_email or _order),
 * with *n orders; NULL with *n 0 when there is none, -1 on failure. */
static char *
export_run(const struct export_args *a, int64_t id, size_t *len, int64_t *n)
{
	char *doc;

	if (a->order != NULL)
		return privacy_export_order(id, len, n);
	if ((doc = privacy_export_email(a->email, len, n)) == NULL)
		*n = -1;
	else if (*n == 0) {
		free(doc);
		doc = NULL;
	}
	return doc;
}

int
cmd_privacy_export(char *argv[])
{
	struct export_args	 a;
	const char		*why;
	char			*doc;
	int64_t			 id = 0, n;
	size_t			 len = 0;
	int			 ok;

	if ((why = export_args_read(argv, &a)) != NULL)
		return export_usage(why);
	if (a.order != NULL && (id = order_number_parse(a.order, NULL)) <= 0)
		return export_usage("privacy export: --order takes an order "
		    "number, PMB-000123 or 123");
	if (!open_db_current(DB_READONLY))
		return 1;
	doc = export_run(&a, id, &len, &n);
	db_close();
	if (doc == NULL)
		return n < 0 ? fail("privacy export: a database error stopped "
		    "it") : fail("privacy export: no order of that %s (erased "
		    "orders are not exported)", a.order ? "number" : "address");
	if (a.out != NULL)
		ok = export_write_file(a.out, doc, len);
	else
		ok = write_all(STDOUT_FILENO, doc, len) &&
		    write_all(STDOUT_FILENO, "\n", 1);
	free(doc);
	if (!ok)
		return a.out != NULL ? 1 : fail("privacy export: could not "
		    "write to standard output");
	fprintf(stderr, "privacy export: %lld order%s%s%s\n", (long long)n,
	    n == 1 ? "" : "s", a.out ? " written to " : "", a.out ? a.out :
	    "");
	return 0;
}
