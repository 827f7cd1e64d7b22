/* batch.c: the group commit of src/batch.c, with real processes sharing
 * the area as pmb.fcgi's workers do, on a real SQLite file. Prints TAP.
 *
 * Each worker process queues jobs that insert one row and writes every
 * result to a file; the parent then checks the results against the
 * database: a job answered with its number has its row, a job answered
 * -1 has none. A job may fail (its savepoint is rolled back, the other
 * jobs of its batch commit), be slow (so that others queue behind it and
 * share its commit), or kill the worker that leads its batch. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "conf.h"
#include "db.h"
#include "util.h"
#include "tap.h"

#define NWORKERS	4
#define NJOBS		40	/* per worker and round */

static char dbfile[64], resfile[64];

/* Runs one SQL statement; returns 1 or 0. */
static int
sql(const char *q)
{
	return sqlite3_exec(db_handle(), q, NULL, NULL, NULL) == SQLITE_OK;
}

/* A job "KN:PID" (PID: its owner's): inserts N. Kind f writes a row of
 * -1 and then fails, s takes 5 ms, k kills the process that runs it if
 * that is another worker, leading the batch, and no k job has killed
 * before (else it is an s job). Returns N, or -1. */
static int64_t
job_insert(const void *job, size_t len, int64_t *aux)
{
	const char	*j = job;
	long long	 n = strtoll(j + 1, NULL, 10);
	struct timespec	 ts = { 0, 5 * 1000000L };
	char		 q[64];

	(void)len;
	*aux = getpid();
	if (j[0] == 'f')
		return sql("INSERT INTO t(n) VALUES (-1)") ? -1 : -1;
	if (j[0] == 's')
		nanosleep(&ts, NULL);
	if (j[0] == 'k' && strtol(strchr(j, ':') + 1, NULL, 10) != getpid()) {
		char	 mark[80];
		FILE	*f;

		snprintf(mark, sizeof(mark), "%s.killed", resfile);
		if ((f = fopen(mark, "wx")) != NULL) {
			fclose(f);
			raise(SIGKILL);
		}
	}
	snprintf(q, sizeof(q), "INSERT INTO t(n) VALUES (%lld)", n);
	return sql(q) ? n : -1;
}

/* Worker w: runs NJOBS jobs numbered base + w * 1000 + i, of the kind
 * kinds[i % strlen(kinds)], writing "N RESULT" lines to its result file.
 * Exits 0, or 2 if it cannot start. */
static void
worker(int w, int base, const char *kinds)
{
	char	 job[32], f[80];
	FILE	*out;

	batch_worker(w);
	snprintf(f, sizeof(f), "%s.%d", resfile, w);
	if ((out = fopen(f, "w")) == NULL || !db_open(dbfile, 0, f, 80))
		_exit(2);
	for (int i = 1; i <= NJOBS; i++) {
		long long	 n = base + w * 1000 + i;
		int64_t		 aux;
		int		 len = snprintf(job, sizeof(job), "%c%lld:%d",
		    kinds[i % strlen(kinds)], n, (int)getpid());

		fprintf(out, "%c %lld %lld\n", job[0], n,
		    (long long)batch_run(job_insert, job, (size_t)len + 1,
		    &aux));
		fflush(out);
	}
	db_close();
	_exit(0);
}

/* Returns the value of one counting query, or -1. */
static int64_t
count(const char *q)
{
	sqlite3_stmt	*s;
	int64_t		 n = -1;

	if (sqlite3_prepare_v2(db_handle(), q, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

struct round {
	int	exited0, killed;	/* workers */
	int	jobs, stored, failed;	/* results read */
	int	wrong;			/* results that disagree */
};

/* Runs NWORKERS workers with kinds[w], SIGKILLs worker 1 after
 * kill_ms milliseconds if kill_ms > 0 (waiting, queued or leading:
 * wherever it is), and checks every result line against the database.
 * Returns the tally in *r. */
static void
run_round(int base, const char *const kinds[NWORKERS], int kill_ms,
    struct round *r)
{
	pid_t	 pids[NWORKERS];
	int	 st;
	char	 f[80], kind;
	long long n, res;
	FILE	*in;

	memset(r, 0, sizeof(*r));
	for (int w = 0; w < NWORKERS; w++)
		if ((pids[w] = fork()) == 0)
			worker(w, base, kinds[w]);
	if (kill_ms > 0) {
		struct timespec ts = { 0, kill_ms * 1000000L };

		nanosleep(&ts, NULL);
		kill(pids[1], SIGKILL);
	}
	/* Reap each as it ends: a dead leader must not linger as a zombie
	 * (pmb.fcgi's supervisor reaps its workers the same way). */
	for (int left = NWORKERS; left > 0; left--) {
		if (waitpid(-1, &st, 0) < 0)
			break;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			r->exited0++;
		else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			r->killed++;
	}
	db_open(dbfile, 0, f, sizeof(f));
	for (int w = 0; w < NWORKERS; w++) {
		snprintf(f, sizeof(f), "%s.%d", resfile, w);
		if ((in = fopen(f, "r")) == NULL)
			continue;
		while (fscanf(in, " %c %lld %lld", &kind, &n, &res) == 3) {
			char q[80];

			snprintf(q, sizeof(q), "SELECT count(*) FROM t "
			    "WHERE n = %lld", n);
			r->jobs++;
			if (res == n)
				r->stored++;
			else
				r->failed++;
			if ((res == n) != (count(q) == 1) ||
			    (res != n && res != -1) ||
			    (kind == 'f' && res != -1))
				r->wrong++;
		}
		fclose(in);
		unlink(f);
	}
	if (count("SELECT count(*) FROM t WHERE n = -1") != 0)
		r->wrong++;
	db_close();
}

int
main(void)
{
	static const char *const slow[NWORKERS] = { "s", "s", "s", "s" };
	static const char *const mixed[NWORKERS] = { "sssf", "ssf", "sf",
	    "sssss" };
	static const char *const kill[NWORKERS] = { "s", "s", "s", "k" };
	char		 err[256], path[] = "/tmp/pmb-batch-XXXXXX";
	uint64_t	 commits = 0, jobs = 0, c0, j0;
	int		 fd = mkstemp(path);
	int64_t		 aux;
	struct round	 r;

	if (fd >= 0)
		close(fd);
	unlink(path);
	snprintf(dbfile, sizeof(dbfile), "%s.db", path);
	snprintf(resfile, sizeof(resfile), "%s.res", path);
	alarm(120);	/* a worker that hangs fails the test, not CI */
	conf_parse("busy_timeout_ms = 5000\n", "t", err, sizeof(err));
	if (!db_open(dbfile, DB_CREATE, err, sizeof(err)) ||
	    !sql("CREATE TABLE t(n INTEGER UNIQUE)")) {
		ok(0, "test database: %s", err);
		return tap_done();
	}

	/* Without the shared area (CGI, pmbctl): one job, one commit. */
	ok(batch_run(job_insert, "a7", 3, &aux) == 7 && aux == getpid() &&
	    count("SELECT count(*) FROM t WHERE n = 7") == 1,
	    "without a shared area a job runs alone and commits");
	ok(batch_run(job_insert, "f8", 3, &aux) == -1 &&
	    count("SELECT count(*) FROM t WHERE n = -1") == 0,
	    "without a shared area a failed job is rolled back");
	ok(!batch_stats(&commits, &jobs), "no statistics without the area");
	db_close();

	ok(batch_init(NWORKERS), "the shared area is made for %d workers",
	    NWORKERS);

	run_round(10000, slow, 0, &r);
	ok(r.exited0 == NWORKERS && r.jobs == NWORKERS * NJOBS &&
	    r.stored == r.jobs, "%d workers x %d slow jobs at once: %d of %d "
	    "answered with their own result", NWORKERS, NJOBS, r.stored,
	    r.jobs);
	ok(r.wrong == 0, "every job answered as stored is in the database, "
	    "and nothing else (%d wrong)", r.wrong);
	fd = batch_stats(&commits, &jobs);
	ok(fd && jobs == (uint64_t)r.jobs, "the area counted %llu jobs",
	    (unsigned long long)jobs);
	ok(commits < jobs, "the workers' jobs shared commits: %llu "
	    "jobs in %llu commits", (unsigned long long)jobs,
	    (unsigned long long)commits);

	c0 = commits;
	j0 = jobs;
	run_round(20000, mixed, 0, &r);
	ok(r.exited0 == NWORKERS && r.failed > 0 && r.stored > 0 &&
	    r.wrong == 0, "failing jobs among others: %d stored, %d failed "
	    "(their own writes rolled back), %d wrong", r.stored, r.failed,
	    r.wrong);
	fd = batch_stats(&commits, &jobs);
	ok(fd && commits - c0 < jobs - j0,
	    "failures did not stop the others sharing commits (%llu jobs in "
	    "%llu commits)", (unsigned long long)(jobs - j0),
	    (unsigned long long)(commits - c0));

	run_round(30000, kill, 0, &r);
	ok(r.killed == 1, "a job killed the worker leading its batch");
	ok(r.exited0 == NWORKERS - 1, "the other %d workers finished (no "
	    "one waited forever on the dead leader)", r.exited0);
	ok(r.wrong == 0 && r.failed > 0, "after the kill: %d stored, %d "
	    "reported not stored, %d wrong", r.stored, r.failed, r.wrong);

	for (int i = 0; i < 5; i++) {
		run_round(40000 + i * 10000, slow, 20 + 15 * i, &r);
		ok(r.killed == 1 && r.exited0 == NWORKERS - 1 && r.wrong == 0,
		    "a worker SIGKILLed after %d ms, wherever it was: the "
		    "other %d finished, %d stored, %d not, %d wrong",
		    20 + 15 * i, r.exited0, r.stored, r.failed, r.wrong);
	}

	snprintf(err, sizeof(err), "%s.killed", resfile);
	unlink(err);
	unlink(dbfile);
	snprintf(err, sizeof(err), "%s-wal", dbfile);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", dbfile);
	unlink(err);
	return tap_done();
}
