/* batch.c: group commit of the workers' writes (see batch.h).
 *
 * The area is one process-shared, robust mutex, a futex word that is
 * bumped (and its waiters woken) at every change, and one slot per
 * worker. (Not a pthread condition variable: a process killed while
 * waiting on one leaves it owing a wake-up, and the next broadcast then
 * waits for the dead forever. A futex keeps no such state.) A slot goes
 * FREE -> QUEUED (its owner filled it) -> TAKEN (a leader runs it) ->
 * DONE (result written) -> FREE (its owner read the result). Only the owner writes a FREE or DONE slot; only
 * the leader writes a TAKEN one; every change is made holding the mutex.
 *
 * Failures: a job that fails makes its batch roll back whole; each job
 * of it then runs alone. A leader that dies mid-batch leaves its
 * transaction to SQLite, which rolls it back unless COMMIT had finished; the workers
 * waiting on it notice within WAIT_TICK_MS (the leader's pid is gone) and
 * report their jobs as not stored. That is safe for POST /ask: its form
 * token stays valid and names the order, so sending again lands on the
 * order if it was stored after all. A worker that dies with its job
 * queued leaves it to be run (as if its client had gone away); its
 * replacement waits for that job to finish before queuing its own. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "conf.h"
#include "db.h"
#include "util.h"

#define WAIT_TICK_MS	20	/* how often a waiting worker looks up */

enum { S_FREE, S_QUEUED, S_TAKEN, S_DONE };

struct slot {
	int		 state;
	batch_fn	 fn;
	int64_t		 result, aux;
	size_t		 len;
	char		 job[BATCH_JOB_MAX];
};

struct area {
	pthread_mutex_t	 mu;
	uint32_t	 wake;		/* a futex: bumped at every change */
	pid_t		 leader;	/* 0 when no commit is under way */
	int		 n;		/* slots */
	uint64_t	 commits, jobs;	/* commits made, jobs they stored */
	struct slot	 slot[];
};

static struct area	*area;
static int		 myslot = -1;

int
batch_init(int n)
{
	pthread_mutexattr_t	ma;
	size_t			size = sizeof(struct area) +
	    (size_t)n * sizeof(struct slot);
	void			*p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		log_msg("batch: cannot map %zu bytes: %s; committing one "
		    "order at a time", size, strerror(errno));
		return 0;
	}
	area = p;
	area->n = n;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&area->mu, &ma) != 0) {
		log_msg("batch: cannot make a shared lock; committing one "
		    "order at a time");
		munmap(p, size);
		area = NULL;
	}
	pthread_mutexattr_destroy(&ma);
	return area != NULL;
}

void
batch_worker(int slot)
{
	myslot = area != NULL && slot >= 0 && slot < area->n ? slot : -1;
}

/* Runs fn on job alone in a transaction of its own. Returns its result
 * once committed, else -1 (rolled back). */
static int64_t
run_alone(batch_fn fn, const void *job, size_t len, int64_t *aux)
{
	int64_t res;

	if (!db_begin())
		return -1;
	if ((res = fn(job, len, aux)) < 0) {
		db_rollback();
		return -1;
	}
	return db_commit() ? res : -1;
}

/* With the area locked: tells every waiting worker that it changed. */
static void
area_wake(void)
{
	__atomic_add_fetch(&area->wake, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &area->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* With the area locked: if the leader is dead, marks the jobs it had
 * taken as not stored and frees the lead. */
static void
area_repair(void)
{
	pid_t l = area->leader;

	if (l == 0 || l == getpid() || kill(l, 0) == 0 || errno != ESRCH)
		return;
	log_msg("batch: worker %d died while committing; its batch is "
	    "reported as not stored", (int)l);
	for (int i = 0; i < area->n; i++)
		if (area->slot[i].state == S_TAKEN) {
			area->slot[i].result = -1;
			area->slot[i].state = S_DONE;
		}
	area->leader = 0;
	area_wake();
}

/* Locks the area, making it consistent again if its last holder died
 * holding it. Returns 1, or 0 if it cannot be locked. */
static int
area_lock(void)
{
	int rc = pthread_mutex_lock(&area->mu);

	if (rc == EOWNERDEAD && (rc = pthread_mutex_consistent(&area->mu))
	    == 0)
		area_repair();
	return rc == 0;
}

/* With the area locked: unlocks it, waits for a change or WAIT_TICK_MS,
 * and locks it again (0 if that failed). */
static int
area_wait(void)
{
	uint32_t	 seen = __atomic_load_n(&area->wake, __ATOMIC_SEQ_CST);
	struct timespec	 ts = { 0, WAIT_TICK_MS * 1000000L };

	pthread_mutex_unlock(&area->mu);
	/* Returns at once if a change came since seen was read. */
	syscall(SYS_futex, &area->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
	if (!area_lock())
		return 0;
	area_repair();
	return 1;
}

/* Runs the k jobs of slots taken[] in one transaction and writes their
 * results to res[] and aux[]. Returns 1 if they committed together; -1
 * if a job failed, 0 if the transaction could not begin or commit (in
 * both cases everything is rolled back). No
 * savepoint per job: FTS5 writes its pending index data out at every
 * savepoint, so a savepoint per order cost more than the rest of the
 * order; a failure is rare, and is handled by running each job alone. */
static int
run_together(const int *taken, int k, int64_t *res, int64_t *aux)
{
	if (!db_begin())
		return 0;
	for (int j = 0; j < k; j++) {
		struct slot *s = &area->slot[taken[j]];

		aux[j] = 0;
		/* An error that ended the transaction (SQLite rolls back on
		 * some) ends the batch: what follows would run outside it. */
		if (sqlite3_get_autocommit(db_handle()) ||
		    (res[j] = s->fn(s->job, s->len, &aux[j])) < 0) {
			db_rollback();
			return -1;
		}
	}
	return db_commit();
}

/* With the area locked and no leader: takes every queued job and stores
 * them (together, or each alone after a failure); writes their results.
 * Returns with the area locked. */
static void
lead(void)
{
	int	 taken[area->n], k = 0, together, commits = 0;
	int64_t	 res[area->n], aux[area->n];

	area->leader = getpid();
	for (int i = 0; i < area->n; i++)
		if (area->slot[i].state == S_QUEUED) {
			area->slot[i].state = S_TAKEN;
			taken[k++] = i;
		}
	pthread_mutex_unlock(&area->mu);

	if ((together = run_together(taken, k, res, aux)) == 1)
		commits = 1;
	for (int j = 0; j < k && together != 1; j++) {
		struct slot *s = &area->slot[taken[j]];

		/* A job failed: each again alone, so that one bad job
		 * costs the others nothing but time. */
		if (together < 0 && k > 1 &&
		    (res[j] = run_alone(s->fn, s->job, s->len, &aux[j])) >= 0)
			commits++;
		else
			res[j] = -1;
	}

	if (!area_lock())
		log_msg("batch: cannot lock the shared area");
	for (int j = 0; j < k; j++) {
		struct slot *s = &area->slot[taken[j]];

		s->result = res[j];
		s->aux = aux[j];
		s->state = S_DONE;
	}
	area->commits += (uint64_t)commits;
	for (int j = 0; j < k; j++)
		area->jobs += res[j] >= 0;
	area->leader = 0;
	area_wake();
}

int
batch_stats(uint64_t *commits, uint64_t *jobs)
{
	if (area == NULL || !area_lock())
		return 0;
	*commits = area->commits;
	*jobs = area->jobs;
	pthread_mutex_unlock(&area->mu);
	return 1;
}

int64_t
batch_run(batch_fn fn, const void *job, size_t len, int64_t *aux)
{
	struct slot	*s;
	double		 give_up;
	int64_t		 res;

	*aux = 0;
	if (area == NULL || myslot < 0 || len > BATCH_JOB_MAX)
		return run_alone(fn, job, len, aux);
	if (!area_lock())
		return -1;
	s = &area->slot[myslot];
	/* The job of this slot's last owner, killed, may still be running. */
	while (s->state == S_TAKEN || s->state == S_QUEUED) {
		if (area->leader == 0)
			lead();
		else if (!area_wait())
			return -1;
	}
	s->fn = fn;
	s->len = len;
	memcpy(s->job, job, len);
	s->state = S_QUEUED;
	give_up = now_ms() + 2.0 * (double)conf.busy_timeout_ms;
	for (;;) {
		if (s->state == S_DONE) {
			res = s->result;
			*aux = s->aux;
			s->state = S_FREE;
			break;
		}
		if (area->leader == 0) {
			lead();
			continue;
		}
		/* Not taken yet, and too long: nothing of it was written. */
		if (s->state == S_QUEUED && now_ms() > give_up) {
			s->state = S_FREE;
			res = -1;
			break;
		}
		if (!area_wait())
			return -1;	/* unknown: as if its leader died */
	}
	pthread_mutex_unlock(&area->mu);
	return res;
}
