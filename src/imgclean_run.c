/* imgclean_run.c: starts pmb-imgclean (src/imgclean.c) on one image and
 * waits for it, with a timeout (issue 19). The helper gets no
 * descriptor of the worker but its stderr pipe (stdin and stdout are
 * /dev/null), default signals and an empty signal mask. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "imgclean_run.h"

#ifndef PMB_LIBEXEC_DIR
#define PMB_LIBEXEC_DIR "/usr/local/libexec/pmb"
#endif

/* The most of the helper's stderr that is kept (one line is expected). */
#define IMGCLEAN_ERR_MAX	512

static int timeout_s = IMGCLEAN_TIMEOUT;

void
imgclean_set_timeout(int seconds)
{
	if (seconds > 0)
		timeout_s = seconds;
}

/* Milliseconds on the monotonic clock. */
static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The child's side: stderr to errfd, stdin and stdout /dev/null, every
 * other descriptor closed, default signals, then the helper. Never
 * returns. */
static void
helper_child(const char *helper, const char *in, const char *out,
    int errfd)
{
	sigset_t	 none;
	int		 null = open("/dev/null", O_RDWR);
	char		*argv[] = { (char *)helper, "--", (char *)in,
			    (char *)out, NULL };

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(null, STDOUT_FILENO) < 0 || dup2(errfd, STDERR_FILENO) < 0)
		_exit(126);
	closefrom(STDERR_FILENO + 1);
	execv(helper, argv);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", helper,
	    strerror(errno));
	_exit(127);
}

/* Keeps what fits of the n bytes at p after the *len bytes of err
 * (errsz - 1 bytes at most: room for the NUL). */
static void
err_keep(char *err, size_t errsz, size_t *len, const char *p, size_t n)
{
	if (*len + 1 >= errsz)
		return;
	if (n > errsz - 1 - *len)
		n = errsz - 1 - *len;
	memcpy(err + *len, p, n);
	*len += n;
}

/* Reads the helper's stderr from fd into err (up to errsz - 1 bytes
 * kept) until it closes, then waits for pid; at the deadline (mono_ms)
 * the helper is killed. Returns its wait status, or -1 when it was
 * killed for taking too long. */
static int
helper_wait(pid_t pid, int fd, long long deadline, char *err, size_t errsz)
{
	size_t	len = 0;
	int	status, timed_out = 0;
	char	chunk[256];

	for (;;) {
		struct pollfd	pf = { fd, POLLIN, 0 };
		long long	left = deadline - mono_ms();
		ssize_t		r;
		pid_t		w;

		if (left <= 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (fd >= 0 && poll(&pf, 1, left > 100 ? 100 : (int)left) > 0) {
			r = read(fd, chunk, sizeof(chunk));
			if (r > 0)
				err_keep(err, errsz, &len, chunk, (size_t)r);
			else if (r == 0 || (r < 0 && errno != EINTR &&
			    errno != EAGAIN)) {
				close(fd);
				fd = -1;
			}
		} else if (fd < 0)
			usleep(5000);
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid && fd < 0)
			break;
		if (w == pid) {
			/* Its last words are in the pipe: read them next. */
			while (fd >= 0 && (r = read(fd, chunk,
			    sizeof(chunk))) > 0 && len + 1 < errsz)
				err_keep(err, errsz, &len, chunk, (size_t)r);
			break;
		}
	}
	if (fd >= 0)
		close(fd);
	if (timed_out)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	err[len] = '\0';
	err[strcspn(err, "\n")] = '\0';
	return timed_out ? -1 : status;
}

int
imgclean_run(const char *in, const char *out, char *err, size_t errsz)
{
	const char	*helper = getenv("PMB_IMGCLEAN");
	char		 said[IMGCLEAN_ERR_MAX];
	int		 p[2], status;
	pid_t		 pid;

	if (helper == NULL || *helper == '\0')
		helper = PMB_LIBEXEC_DIR "/pmb-imgclean";
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(err, errsz, "imgclean: pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, errsz, "imgclean: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0)
		helper_child(helper, in, out, p[1]);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	status = helper_wait(pid, p[0], mono_ms() + timeout_s * 1000LL, said,
	    sizeof(said));
	if (status == -1)
		snprintf(err, errsz, "imgclean: the image took more than %d s",
		    timeout_s);
	else if (WIFSIGNALED(status))
		snprintf(err, errsz, "imgclean: killed by signal %d",
		    WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		snprintf(err, errsz, "%s", said[0] ? said :
		    "imgclean: failed with no reason given");
	else
		return 0;
	if (status == -1 || WIFSIGNALED(status))
		unlink(out);
	return -1;
}
