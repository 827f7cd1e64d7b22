/* hello.c: the cheapest libfcgi responder there is, one fixed page. It is
 * the limit of "nginx + FastCGI" on a machine: bench/run serves it and
 * pmb.fcgi with the same worker count behind the same nginx
 * configuration, and reports every page of pmb.fcgi as a fraction of it.
 *
 * Usage: hello --listen unix:PATH [--workers N]
 * Like pmb.fcgi --listen: opens the socket (backlog 1024, mode 0660),
 * pre-forks N workers on it, and on SIGTERM or SIGINT stops them and
 * removes the socket. Not part of the program: built by bench/run only. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#define MAX_WORKERS	256
#define BACKLOG		1024	/* as pmb.fcgi's listen() */

static const char page[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<!doctype html><title>Hello</title><p>Hello, world.</p>\n";

/* Answers every request on fd with the fixed page until the library's
 * accept fails (SIGTERM); returns the exit status. */
static int
serve(int fd)
{
	FCGX_Request r;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	if (FCGX_InitRequest(&r, fd, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		FCGX_PutStr(page, (int)sizeof(page) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	const char	*path = NULL;
	pid_t		 pids[MAX_WORKERS];
	int		 workers = 2, fd, sig;
	sigset_t	 set;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--listen") && i + 1 < argc &&
		    !strncmp(argv[i + 1], "unix:", 5))
			path = argv[++i] + 5;
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
			workers = atoi(argv[++i]);
		else
			path = NULL, i = argc;
	}
	if (path == NULL || *path == '\0' || workers < 1 ||
	    workers > MAX_WORKERS) {
		fputs("usage: hello --listen unix:PATH [--workers N]\n",
		    stderr);
		return 2;
	}
	if (FCGX_Init() != 0) {
		fputs("hello: FCGX_Init failed\n", stderr);
		return 1;
	}
	unlink(path);
	umask(0117);
	if ((fd = FCGX_OpenSocket(path, BACKLOG)) < 0) {
		perror("hello: cannot listen");
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int i = 0; i < workers; i++) {
		if ((pids[i] = fork()) == 0) {
			sigprocmask(SIG_UNBLOCK, &set, NULL);
			_exit(serve(fd));
		}
		if (pids[i] < 0) {
			perror("hello: fork");
			workers = i;
			break;
		}
	}
	sigwait(&set, &sig);
	for (int i = 0; i < workers; i++)
		kill(pids[i], SIGTERM);
	for (int i = 0; i < workers; i++)
		waitpid(pids[i], NULL, 0);
	unlink(path);
	return 0;
}
