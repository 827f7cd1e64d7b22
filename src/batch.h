/* batch.h: group commit. The workers of one supervisor (pmb.fcgi
 * --listen ADDR --workers N) share a small memory area made before they
 * are forked, one slot per worker. A worker with a write to make (a new
 * order) puts it in its slot; whichever worker finds no commit under way
 * becomes the leader: it takes every queued job, runs them all inside one
 * BEGIN IMMEDIATE ... COMMIT, so that they share one fsync, and hands
 * each job its result. If a job fails, that transaction is rolled back
 * whole and each job runs again alone, in a transaction of its own. A
 * job's owner answers its client only after the COMMIT that stored it
 * returned, so a 303 still means "on disk".
 *
 * Without the shared area (CGI, spawn-fcgi, systemd socket activation,
 * pmbctl) batch_run runs the job alone in its own transaction: the same
 * code, one job per commit. */
#ifndef PMB_BATCH_H
#define PMB_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* The most a job may hold, in bytes. */
#define BATCH_JOB_MAX	(48 * 1024)

/* Runs one job inside the leader's open transaction; job and len as
 * queued. Returns the job's result (>= 0), and may set *aux; a negative
 * result rolls back its writes (see above). A job may be run twice (once
 * with others, rolled back, then alone): it must keep no state outside
 * the database. Every worker
 * runs the same program image (forked from the supervisor), so the
 * pointer is valid in the leader as in the job's owner. */
typedef int64_t (*batch_fn)(const void *job, size_t len, int64_t *aux);

/* In the supervisor, before forking: makes the shared area for n
 * workers. Returns 1, or 0 (with a message logged) if it cannot. */
int	 batch_init(int n);
/* In a worker just forked: the slot it owns (0 .. n - 1). */
void	 batch_worker(int slot);
/* Runs fn on job (len bytes, at most BATCH_JOB_MAX) in a transaction,
 * shared with other workers' jobs when the area exists. Returns fn's
 * result once committed, or -1 if the job was not committed (the
 * transaction failed, or its leader died before it could say). */
int64_t	 batch_run(batch_fn fn, const void *job, size_t len, int64_t *aux);
/* The commits made so far and the jobs stored by them (the supervisor
 * logs them when it stops). Returns 1, or 0 without a shared area. */
int	 batch_stats(uint64_t *commits, uint64_t *jobs);

#endif
