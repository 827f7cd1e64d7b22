/* currency.h: what pmb knows of each currency: how many decimals its
 * minor unit has (ISO 4217), and how Stripe takes it (its minimum charge,
 * and the unit_amount it expects). */
#ifndef PMB_CURRENCY_H
#define PMB_CURRENCY_H

#include <stdint.h>

/* The most decimals any currency has (CLF, UYW): a form field that does
 * not know its currency yet accepts this many. */
#define CURRENCY_EXPONENT_MAX	4

/* Returns the ISO 4217 exponent of code (case ignored): 0 for JPY, 3 for
 * BHD, 2 for any code it does not list. */
int	 currency_exponent(const char *code);
/* Returns Stripe's minimum charge in code in minor units (50 for USD and
 * JPY, 30 for GBP), or -1 when the table does not list code. */
int64_t	 currency_card_minimum(const char *code);
/* Returns 1 if Stripe can charge amount (minor units) in code: the
 * currency is in the minimum table, amount is at least its minimum and
 * at most Stripe's largest, and currency_stripe_amount can write it.
 * Else 0 (no card button). */
int	 currency_card_ok(const char *code, int64_t amount);
/* Writes into *out the unit_amount that Stripe expects for minor units
 * of code. Returns 1, or 0 when Stripe cannot take that amount as it is
 * (it would have to be rounded). */
int	 currency_stripe_amount(const char *code, int64_t minor, int64_t *out);
/* The reverse, for the amounts Stripe reports (events, refunds): writes
 * into *out the minor units of code that Stripe's amount stands for.
 * Returns 1, or 0 when it is no whole count of minor units. */
int	 currency_stripe_minor(const char *code, int64_t amount, int64_t *out);
/* The longest text of currency_decimals_error, with its NUL. */
#define CURRENCY_ERROR_MAX	96
/* Writes into out why an amount with too many decimals is no amount of
 * code ("JPY has no decimals: enter an amount such as 150."); returns
 * out. */
char	*currency_decimals_error(char out[CURRENCY_ERROR_MAX],
	    const char *code);

#endif
