/* imgclean_run.c: tests of src/imgclean_run.c (issue 19): the real
 * pmb-imgclean of the build ($PMB_BUILDDIR) cleans a JPEG and refuses an
 * SVG and a bomb with its one line; stand-in helpers (shell scripts made
 * here) show the timeout's kill, a helper killed by a signal, a missing
 * helper, and that the helper gets none of the caller's descriptors.
 * Prints TAP. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "imgclean_run.h"
#include "util.h"
#include "tap.h"

static char dir[64];		/* a temporary folder for outputs */
static char samples[1024];	/* tests/files */

/* Writes a stand-in helper script called name into dir with body;
 * returns its path (static). */
static const char *
script(const char *name, const char *body)
{
	static char	 path[128];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return path;
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(path, 0755);
	return path;
}

/* Runs the helper on sample name into dir/out; returns imgclean_run's
 * result, with its reason in err. */
static int
run(const char *name, const char *out, char *err, size_t errsz)
{
	char in[1200], o[128];

	snprintf(in, sizeof(in), "%s/%s", samples, name);
	snprintf(o, sizeof(o), "%s/%s", dir, out);
	err[0] = '\0';
	return imgclean_run(in, o, err, errsz);
}

/* Returns 1 if dir/name exists. */
static int
exists(const char *name)
{
	char		path[128];
	struct stat	st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

/* The real helper: a JPEG cleaned, an SVG and a bomb refused. */
static void
test_real(const char *builddir)
{
	char	helper[1024], err[256];
	int	rc;

	snprintf(helper, sizeof(helper), "%s/pmb-imgclean", builddir);
	setenv("PMB_IMGCLEAN", helper, 1);
	rc = run("gps.jpeg", "clean.jpeg", err, sizeof(err));
	ok(rc == 0 && exists("clean.jpeg"), "a JPEG is cleaned (%s)", err);
	rc = run("image.svg", "svg.out", err, sizeof(err));
	ok(rc == -1 && strstr(err, "not a PNG, JPEG, GIF or WebP") &&
	    !exists("svg.out"), "an SVG is refused, nothing written: %s", err);
	rc = run("bomb.png", "bomb.out", err, sizeof(err));
	ok(rc == -1 && strstr(err, "too many pixels") && !exists("bomb.out"),
	    "a 60-megapixel PNG is refused: %s", err);
	ok(strchr(err, '\n') == NULL, "the reason is one line");
}

/* Stand-ins: a helper that never ends is killed at the timeout; one
 * killed by a signal; a missing one; the descriptors it gets. */
static void
test_standins(void)
{
	char		err[256], list[256];
	time_t		t0;
	int		rc, fd;
	FILE		*f;

	setenv("PMB_IMGCLEAN", script("sleeper", "echo started >&2\n"
	    "exec sleep 30"), 1);
	imgclean_set_timeout(1);
	t0 = time(NULL);
	rc = run("gps.jpeg", "slow.out", err, sizeof(err));
	ok(rc == -1 && strstr(err, "took more than 1 s") &&
	    time(NULL) - t0 <= 3, "a helper that hangs is killed at the "
	    "timeout: %s", err);
	imgclean_set_timeout(IMGCLEAN_TIMEOUT);
	setenv("PMB_IMGCLEAN", script("crasher", "kill -SEGV $$"), 1);
	rc = run("gps.jpeg", "crash.out", err, sizeof(err));
	ok(rc == -1 && strstr(err, "killed by signal 11"), "a helper that "
	    "crashes: %s", err);
	setenv("PMB_IMGCLEAN", "/nonexistent/pmb-imgclean", 1);
	rc = run("gps.jpeg", "none.out", err, sizeof(err));
	ok(rc == -1 && strstr(err, "cannot run"), "no helper: %s", err);
	/* A descriptor of the caller, not close-on-exec, at 57. */
	fd = open("/dev/null", O_RDONLY);
	ok(fd >= 0 && dup2(fd, 57) == 57, "descriptor 57 open here");
	setenv("PMB_IMGCLEAN", script("lister", "ls /proc/$$/fd > \"$3\"; "
	    "echo \"$1 $2\" >&2; exit 3"), 1);
	rc = run("gps.jpeg", "fds.out", err, sizeof(err));
	snprintf(list, sizeof(list), "%s/fds.out", dir);
	memset(list + 128, 0, 128);
	if ((f = fopen(list, "r")) != NULL) {
		size_t n = fread(list, 1, 127, f);

		list[n] = '\0';
		fclose(f);
	}
	ok(rc == -1 && strncmp(err, "-- ", 3) == 0, "the helper gets -- IN "
	    "OUT and its stderr is the reason: %s", err);
	ok(strncmp(list, "0\n1\n", 4) == 0 && strstr(list, "\n2\n") != NULL &&
	    strstr(list, "\n57\n") == NULL,
	    "the helper gets only stdin, stdout and stderr: %s", list);
	close(fd);
	close(57);
}

/* A helper that says far more than one line's worth: its reason is
 * kept whole up to IMGCLEAN_ERR_MAX - 1 bytes, cut there. */
static void
test_long_reason(void)
{
	char	err[2048];
	size_t	n;
	int	rc;

	setenv("PMB_IMGCLEAN", script("talker", "head -c 3000 /dev/zero | "
	    "tr '\\0' x >&2; exit 1"), 1);
	rc = run("gps.jpeg", "talk.out", err, sizeof(err));
	n = strspn(err, "x");
	ok(rc == -1 && n == strlen(err) && n == 511, "a 3000-byte reason is "
	    "cut to 511 bytes: %zu", strlen(err));
}

int
main(void)
{
	const char	*src = getenv("PMB_SRCDIR");
	const char	*build = getenv("PMB_BUILDDIR");
	pid_t		 pid;

	snprintf(samples, sizeof(samples), "%s/tests/files", src ? src : ".");
	snprintf(dir, sizeof(dir), "/tmp/pmb-imgclean-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		ok(0, "a temporary folder");
		return tap_done();
	}
	test_real(build ? build : ".");
	test_standins();
	test_long_reason();
	if ((pid = fork()) == 0) {
		execlp("rm", "rm", "-rf", dir, (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return tap_done();
}
