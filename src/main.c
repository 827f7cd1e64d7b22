/* main.c: pmb.fcgi. One program serves every page:
 *  - as plain CGI when a CGI server starts it (environment and stdin);
 *  - as FastCGI on the socket a spawner hands it on descriptor 0
 *    (spawn-fcgi, lighttpd, mod_fcgid) or by systemd socket activation;
 *  - with --listen ADDR --workers N: opens the socket itself, pre-forks
 *    N workers, replaces any that die, and on SIGTERM lets requests in
 *    flight finish before it exits 0. */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>
#include <sodium.h>

#include "batch.h"
#include "conf.h"
#include "db.h"
#include "filekind.h"
#include "offer.h"
#include "router.h"
#include "search_rank.h"
#include "stripe.h"
#include "tmpl.h"
#include "token.h"
#include "tz.h"

#define MAX_WORKERS	256
#define STOP_GRACE_SEC	30	/* SIGKILL workers still busy after this */

static volatile sig_atomic_t stopping;

/* The CGI io: environment, stdin, stdout. */
static long
cgi_read(void *ctx, char *p, size_t n)
{
	(void)ctx;
	for (;;) {
		ssize_t k = read(STDIN_FILENO, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		return (long)k;
	}
}

static int
cgi_write(void *ctx, const char *p, size_t n)
{
	(void)ctx;
	return fwrite(p, 1, n, stdout) == n ? 0 : -1;
}

static const char *
cgi_env(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

/* The FastCGI io, over one FCGX_Request. */
static long
fcgi_read(void *ctx, char *p, size_t n)
{
	FCGX_Request *fr = ctx;

	if (n > 1 << 30)
		n = 1 << 30;
	return FCGX_GetStr(p, (int)n, fr->in);
}

static int
fcgi_write(void *ctx, const char *p, size_t n)
{
	FCGX_Request *fr = ctx;

	while (n > 0) {
		int chunk = n > 1 << 30 ? 1 << 30 : (int)n;

		if (FCGX_PutStr(p, chunk, fr->out) != chunk)
			return -1;
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

/* Returns the FastCGI parameter name, or NULL, as FCGX_GetParam does.
 * By hand: it is on every request's path (bench/README.md, 21). */
static const char *
fcgi_env(void *ctx, const char *name)
{
	FCGX_Request *fr = ctx;

	if (fr->envp == NULL)
		return NULL;
	for (char **p = fr->envp; *p != NULL; p++) {
		const char *e = *p, *n = name;

		while (*n != '\0' && *e == *n) {
			e++;
			n++;
		}
		if (*n == '\0' && *e == '=')
			return e + 1;
	}
	return NULL;
}

/* Serves one request over io, then logs it. */
static void
serve(struct io *io)
{
	struct request r;

	req_init(&r, io);
	router_dispatch(&r);
	router_log(&r);
	req_free(&r);
	/* SQLite opens a file it cannot write read-only, and the connection
	 * stays so: close it, and the next request opens the file afresh
	 * (the site recovers once the file can be written again). */
	if (db_handle() != NULL &&
	    sqlite3_db_readonly(db_handle(), "main") == 1)
		db_close();
}

/* Sets flags when a worker is asked to stop; the accept in progress
 * (if any) is interrupted. */
static void
on_worker_term(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

/* Installs handler for sig without SA_RESTART. */
static void
set_signal(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* The FastCGI loop of one process on listening socket fd; returns the
 * exit status. */
static int
fcgi_loop(int fd)
{
	FCGX_Request	fr;
	sigset_t	term;
	struct io	io = { fcgi_read, fcgi_write, fcgi_env, &fr };

	set_signal(SIGTERM, on_worker_term);
	set_signal(SIGINT, on_worker_term);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	if (FCGX_Init() != 0) {
		log_msg("FCGX_Init failed");
		return 1;
	}
	if (FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_msg("FCGX_InitRequest failed");
		return 1;
	}
	while (!stopping) {
		if (FCGX_Accept_r(&fr) < 0)
			break;
		/* A stop asked for now waits until this request is done. */
		sigprocmask(SIG_BLOCK, &term, NULL);
		serve(&io);
		FCGX_Finish_r(&fr);
		sigprocmask(SIG_UNBLOCK, &term, NULL);
	}
	FCGX_Free(&fr, 1);
	db_close();
	return 0;
}

/* Binds a Unix socket at path, mode 0660 (any old file there is
 * removed first). Returns the descriptor, or -1 after a message. */
static int
bind_unix(const char *path)
{
	struct sockaddr_un	sun;
	mode_t			old;
	int			fd;

	if (strlen(path) >= sizeof(sun.sun_path) || *path == '\0') {
		fprintf(stderr, "pmb.fcgi: bad socket path: %s\n", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0) {
		perror("pmb.fcgi: socket");
		return -1;
	}
	unlink(path);
	old = umask(0117);	/* the socket is made mode 0660 */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		fprintf(stderr, "pmb.fcgi: bind %s: %s\n", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	chmod(path, 0660);
	return fd;
}

/* Splits "HOST:PORT", "[V6]:PORT" or "PORT" into host (size hostsz; ""
 * when absent) and *port (pointing into spec). Returns 1, or 0 if
 * malformed. */
static int
split_host_port(const char *spec, char *host, size_t hostsz,
    const char **port)
{
	const char	*colon = strrchr(spec, ':');
	size_t		 hn, hl;

	if (colon == NULL) {
		*port = spec;
		host[0] = '\0';
		return 1;
	}
	if ((hn = (size_t)(colon - spec)) >= hostsz)
		return 0;
	memcpy(host, spec, hn);
	host[hn] = '\0';
	*port = colon + 1;
	if (host[0] != '[')
		return 1;
	if ((hl = strlen(host)) < 2 || host[hl - 1] != ']')
		return 0;
	memmove(host, host + 1, hl - 2);	/* [::1]:9000 */
	host[hl - 2] = '\0';
	return 1;
}

/* Binds a TCP socket for "HOST:PORT" (HOST empty: loopback). Returns
 * the descriptor, or -1 after a message. */
static int
bind_tcp(const char *spec)
{
	struct addrinfo	 hints, *res;
	char		 host[256];
	const char	*port;
	int		 fd, rc, one = 1;

	if (!split_host_port(spec, host, sizeof(host), &port)) {
		fprintf(stderr, "pmb.fcgi: bad address: %s\n", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "pmb.fcgi: %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
		fprintf(stderr, "pmb.fcgi: bind %s: %s\n", spec,
		    strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Opens the listening socket for "unix:PATH" or "HOST:PORT" (HOST may be
 * empty: loopback). Returns the descriptor, or -1 after a message. */
static int
open_listener(const char *spec)
{
	int fd;

	fd = strncmp(spec, "unix:", 5) == 0 ? bind_unix(spec + 5) :
	    bind_tcp(spec);
	if (fd < 0)
		return -1;
	if (listen(fd, 1024) < 0) {
		perror("pmb.fcgi: listen");
		close(fd);
		return -1;
	}
	return fd;
}

/* Forks worker number slot (its place in the group commit's shared
 * area) on fd; returns its pid, or -1. */
static pid_t
spawn_worker(int fd, int slot, const sigset_t *oldmask)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	batch_worker(slot);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	_exit(fcgi_loop(fd));
}

/* Runs the supervisor: keeps n workers alive on fd until SIGTERM or
 * SIGINT. Returns the exit status. */
static int
supervise(int fd, int n, const char *unix_path)
{
	pid_t		 pids[MAX_WORKERS];
	sigset_t	 set, old;
	uint64_t	 commits, jobs;
	int		 alive = 0;
	struct timespec	 tick = { 1, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, &old);
	batch_init(n);
	for (int i = 0; i < n; i++)
		if ((pids[i] = spawn_worker(fd, i, &old)) > 0)
			alive++;
	log_msg("pmb.fcgi: serving with %d workers", alive);

	while (!stopping) {
		int	sig = sigtimedwait(&set, NULL, &tick);
		pid_t	pid;
		int	status;

		if (sig == SIGTERM || sig == SIGINT) {
			stopping = 1;
			break;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (int i = 0; i < n; i++)
				if (pids[i] == pid) {
					log_msg("pmb.fcgi: worker %d ended "
					    "(%s %d); replacing it", (int)pid,
					    WIFSIGNALED(status) ? "signal" :
					    "status", WIFSIGNALED(status) ?
					    WTERMSIG(status) :
					    WEXITSTATUS(status));
					pids[i] = -1;
				}
		for (int i = 0; i < n; i++)
			if (pids[i] <= 0)
				pids[i] = spawn_worker(fd, i, &old);
	}

	log_msg("pmb.fcgi: stopping; letting requests in flight finish");
	close(fd);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int waited = 0; ; waited++) {
		int left = 0;

		for (int i = 0; i < n; i++) {
			if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) ==
			    pids[i])
				pids[i] = -1;
			if (pids[i] > 0)
				left++;
		}
		if (left == 0)
			break;
		if (waited == STOP_GRACE_SEC * 10) {
			log_msg("pmb.fcgi: %d workers still busy; killing",
			    left);
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
		}
		usleep(100000);
	}
	if (unix_path != NULL)
		unlink(unix_path);
	if (batch_stats(&commits, &jobs) && commits > 0)
		log_msg("pmb.fcgi: group commit: %llu orders in %llu commits",
		    (unsigned long long)jobs, (unsigned long long)commits);
	log_msg("pmb.fcgi: stopped");
	return 0;
}

/* The start-up log line that names the settings file in use (not in
 * plain CGI, where it would come with every request). */
static void
log_settings_file(void)
{
	if (conf_file() != NULL)
		log_msg("pmb.fcgi: settings from %s", conf_file());
	else
		log_msg("pmb.fcgi: no settings file: defaults");
}

/* Loads what every request needs: the settings, the time zone, the
 * templates, the keys; holds the store (pmbctl restore refuses to work
 * under it) and starts libcurl. Returns 1, or 0 after a message. */
static int
start(const char *config)
{
	char err[512];

	if (sodium_init() < 0) {
		fprintf(stderr, "pmb.fcgi: sodium_init failed\n");
		return 0;
	}
	if (!conf_load(config, err, sizeof(err)) ||
	    !tz_use(conf.time_zone, err, sizeof(err)) ||
	    !tmpl_load(conf.template_dir, err, sizeof(err)) ||
	    !offer_load(err, sizeof(err)) ||
	    !token_keys_load(conf.key_file, err, sizeof(err))) {
		fprintf(stderr, "pmb.fcgi: %s\n", err);
		return 0;
	}
	/* Held, shared with the workers, until the last of them ends. */
	(void)folder_lock(conf.database, LOCK_SH);
	db_set_hooks(search_rank_register, search_rank_reset);
	/* Before any worker forks: curl_global_init is not thread-safe. */
	if (!stripe_start()) {
		fprintf(stderr, "pmb.fcgi: cannot start libcurl\n");
		return 0;
	}
	return 1;
}

/* Loads libmagic's database (src/filekind.c). Without it the site still
 * runs, but uploads are refused until it loads: says so in the log. */
static void
load_magic(void)
{
	char err[256];

	if (!filekind_open(err, sizeof(err)))
		log_msg("%s; files cannot be checked until it loads", err);
}

static void
usage(FILE *f)
{
	fputs("usage: pmb.fcgi [--config FILE] [--listen unix:PATH|HOST:PORT "
	    "[--workers N]]\n"
	    "Serves Pick My Brain as CGI, as FastCGI on a spawner's socket, "
	    "or on its own\nsocket with pre-forked workers (--listen). "
	    "The settings file comes from\n--config, or $PMB_CONFIG, or else "
	    PMB_DEFAULT_CONFIG " if it exists.\n", f);
}

int
main(int argc, char *argv[])
{
	const char	*config = NULL, *listen_spec = NULL, *lfds;
	int		 workers = 2, workers_set = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config = argv[++i];
		else if (!strcmp(argv[i], "--listen") && i + 1 < argc)
			listen_spec = argv[++i];
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			int64_t w;

			if (!parse_int64(argv[++i], 1, MAX_WORKERS, &w)) {
				fprintf(stderr, "pmb.fcgi: --workers takes "
				    "1 to %d\n", MAX_WORKERS);
				return 2;
			}
			workers = (int)w;
			workers_set = 1;
		} else if (!strcmp(argv[i], "--help") ||
		    !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!start(config))
		return 1;
	/* libmagic (the kind of an upload, issue 19) once, before workers
	 * fork; a plain CGI request loads it only when it has files. */
	if (listen_spec != NULL || getenv("LISTEN_FDS") != NULL ||
	    !FCGX_IsCGI())
		load_magic();

	if (listen_spec != NULL) {
		int fd = open_listener(listen_spec);

		log_settings_file();
		if (fd < 0)
			return 1;
		return supervise(fd, workers, strncmp(listen_spec, "unix:",
		    5) == 0 ? listen_spec + 5 : NULL);
	}
	/* systemd socket activation: the socket is descriptor 3. */
	if ((lfds = getenv("LISTEN_FDS")) != NULL && atoi(lfds) >= 1) {
		const char *lpid = getenv("LISTEN_PID");

		if (lpid == NULL || atol(lpid) == (long)getpid()) {
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_PID");
			log_settings_file();
			if (workers_set)
				return supervise(3, workers, NULL);
			return fcgi_loop(3);
		}
	}
	if (!FCGX_IsCGI()) {
		log_settings_file();
		return fcgi_loop(0);
	}

	/* Plain CGI: one request. */
	{
		struct io io = { cgi_read, cgi_write, cgi_env, NULL };

		serve(&io);
		fflush(stdout);
		db_close();
	}
	return 0;
}
