/* pay_jobs.h: carrying out the calls to Stripe that committed changes
 * owe (table pay_jobs), as outbox.c carries out mail: one claim at a
 * time, exactly once per claim, a growing pause after a failed try, and
 * the error visible. Kind refund: POST /v1/refunds for a card_refunds
 * row (Idempotency-Key "pmb-refund-<id>"); kind expire: POST
 * /v1/checkout/sessions/ID/expire for a cancelled order's session. */
#ifndef PMB_PAY_JOBS_H
#define PMB_PAY_JOBS_H

#include <stdint.h>

/* Seconds "pmbctl pay run" sleeps between rounds unless signalled. */
#define PAY_POLL_SECONDS	5

/* A refund job older than this lists the PaymentIntent's refunds before
 * calling, and adopts one made for it: Stripe keeps an Idempotency-Key
 * about 24 hours, so after that the key alone no longer guarantees
 * that a retry cannot refund twice. */
#define PAY_ADOPT_AFTER		(23 * 3600)

/* Carries out every due job, one claim at a time, until none is left or
 * stop() returns non-zero (asked between jobs; may be NULL). Adds what
 * happened to *done and *failed (failed tries, may be NULL). The
 * database must be open and stripe_start done; templates and keys
 * loaded (a settled refund mails the client). Returns 1, or 0 on a
 * database error. */
int	 pay_jobs_run_due(int (*stop)(void), int *done, int *failed);

/* The pause before try n + 1 after n failed tries (n >= 1): 10 s, 1 min,
 * 5 min, 30 min, 2 h, 6 h, 12 h, then a day: Stripe's outages are
 * short, and a refund waits for the runner. */
int64_t	 pay_backoff(int64_t failed_tries);

#endif
