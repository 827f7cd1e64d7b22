/* tz.c: the site's time zone. glibc takes any TZ it cannot find as UTC
 * without a word, so a name is checked against the zoneinfo files here
 * before it is used, and a bad one stops start-up. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tz.h"
#include "util.h"

/* Where glibc looks for zones when TZDIR is not set. */
#define TZ_DEFAULT_DIR	"/usr/share/zoneinfo"
/* Every zoneinfo file starts with these four bytes (RFC 8536). */
#define TZIF_MAGIC	"TZif"
/* The longest path of a zone file, and room for a reason with it. */
#define PATH_TEXT_MAX	4096
#define TZ_WHY_MAX	(PATH_TEXT_MAX + 128)

static char why[TZ_WHY_MAX];

/* Returns the folder of the zoneinfo files. */
static const char *
tz_dir(void)
{
	const char *d = getenv("TZDIR");

	return d != NULL && *d != '\0' ? d : TZ_DEFAULT_DIR;
}

/* Returns NULL if name has the shape of an IANA zone name (letters,
 * digits, "/", "_", "-", "+", "." in parts that are not "." or ".."),
 * else the reason. */
static const char *
tz_name_shape(const char *name)
{
	const char *p;

	if (*name == '\0')
		return "the value may not be empty";
	if (*name == '/')
		return "expected a zone name such as Europe/London, "
		    "not a path";
	if (strlen(name) > 255)
		return "the value is too long";
	for (p = name; *p != '\0'; p++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789/_-+.", *p) == NULL)
			return "expected a zone name such as Europe/London";
	for (p = name; p != NULL; p = strchr(p, '/')) {
		size_t n;

		if (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return "expected a zone name such as Europe/London, "
			    "without \".\" or \"..\" parts";
	}
	return NULL;
}

const char *
tz_check(const char *name)
{
	const char	*bad, *dir = tz_dir();
	char		 path[PATH_TEXT_MAX], magic[4];
	struct stat	 st;
	int		 fd, n;
	ssize_t		 got;

	if (strcmp(name, TZ_UTC) == 0)
		return NULL;
	if ((bad = tz_name_shape(name)) != NULL)
		return bad;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return "the value is too long";
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, sizeof(why), "no time zone \"%s\" in %s (an "
		    "IANA name such as Europe/London; is tzdata installed?)",
		    name, dir);
		return why;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(why, sizeof(why), "\"%s\" is a group of zones in "
		    "%s, not a zone (such as Europe/London)", name, dir);
		return why;
	}
	got = read(fd, magic, sizeof(magic));
	close(fd);
	if (got != (ssize_t)sizeof(magic) ||
	    memcmp(magic, TZIF_MAGIC, sizeof(magic)) != 0) {
		snprintf(why, sizeof(why), "%s/%s is not a zoneinfo (TZif) "
		    "file", dir, name);
		return why;
	}
	return NULL;
}

int
tz_use(const char *name, char *err, size_t errsz)
{
	char spec[300];
	int  n;

	/* ":" makes glibc read the file and never take the name for a
	 * POSIX rule ("EST5EDT"); UTC needs no file. */
	n = snprintf(spec, sizeof(spec), ":%s", name);
	if (n < 0 || (size_t)n >= sizeof(spec) || setenv("TZ", spec, 1) != 0) {
		snprintf(err, errsz, "time_zone %.64s: cannot set TZ", name);
		return 0;
	}
	tzset();
	time_zone_local(strcmp(name, TZ_UTC) != 0);
	return 1;
}
