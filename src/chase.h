/* chase.h: the mail daemon's pass over unpaid orders (a reminder, then
 * cancellation) and the consultant's daily digest. */
#ifndef PMB_CHASE_H
#define PMB_CHASE_H

/* Reminds the unpaid orders due a reminder, cancels those unpaid for
 * unpaid_cancel_days, and queues the day's digest when it is due, each
 * in its own transaction (the mail it queues is delivered by the
 * outbox). Returns 1, or 0 after a logged database error. */
int	 chase_pass(void);

#endif
