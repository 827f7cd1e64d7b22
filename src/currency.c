/* currency.c: what pmb knows of each currency. An amount is an integer
 * count of the currency's minor unit, whose size is the currency's ISO
 * 4217 exponent: a yen is 1 (no decimals), a pound is 100 pence, a
 * Bahraini dinar is 1000 fils. Stripe mostly agrees, with a few
 * documented exceptions (currency_stripe_amount). */
#include <stdio.h>
#include <strings.h>

#include "currency.h"
#include "util.h"

/* A currency code with a number. */
struct code_value {
	char	code[4];
	int64_t	value;
};

/* ISO 4217's list (the "minor unit" column), every code whose exponent
 * is not 2. Codes it gives no minor unit at all ("N.A.": the metals XAU,
 * XAG, XPD, XPT, the units XDR, XBA to XBD, XSU, XUA, and XTS, XXX) are
 * nothing a client pays in; pmb treats them as any code it does not list,
 * with two decimals. */
static const struct code_value iso_exponents[] = {
	{ "BIF", 0 }, { "CLP", 0 }, { "DJF", 0 }, { "GNF", 0 },
	{ "ISK", 0 }, { "JPY", 0 }, { "KMF", 0 }, { "KRW", 0 },
	{ "PYG", 0 }, { "RWF", 0 }, { "UGX", 0 }, { "UYI", 0 },
	{ "VND", 0 }, { "VUV", 0 }, { "XAF", 0 }, { "XOF", 0 },
	{ "XPF", 0 },
	{ "BHD", 3 }, { "IQD", 3 }, { "JOD", 3 }, { "KWD", 3 },
	{ "LYD", 3 }, { "OMR", 3 }, { "TND", 3 },
	{ "CLF", 4 }, { "UYW", 4 },
};

/* Stripe's minimum charge per currency ("Minimum and maximum charge
 * amounts", docs.stripe.com/currencies), in minor units: USD 0.50 is 50,
 * JPY 50 is 50. Stripe's own rule for any other currency is "the
 * equivalent of 0.50 USD in the account's settlement currency", which
 * depends on the day's rate and the account: pmb offers no card there. */
static const struct code_value card_minimums[] = {
	{ "USD", 50 }, { "AED", 200 }, { "AUD", 50 }, { "BGN", 100 },
	{ "BRL", 50 }, { "CAD", 50 }, { "CHF", 50 }, { "CZK", 1500 },
	{ "DKK", 250 }, { "EUR", 50 }, { "GBP", 30 }, { "HKD", 400 },
	{ "HUF", 17500 }, { "INR", 50 }, { "JPY", 50 }, { "MXN", 1000 },
	{ "MYR", 200 }, { "NOK", 300 }, { "NZD", 50 }, { "PLN", 200 },
	{ "RON", 200 }, { "SEK", 300 }, { "SGD", 50 }, { "THB", 1000 },
};

/* Stripe's zero-decimal currencies (docs.stripe.com/currencies,
 * "Zero-decimal currencies"): unit_amount counts whole units. Stripe's
 * list has UGX too, but its special case wins (stripe_whole). */
static const char *const stripe_zero[] = {
	"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
	"VND", "VUV", "XAF", "XOF", "XPF",
};

/* Stripe's three-decimal currencies ("Three-decimal currencies"). */
static const char *const stripe_three[] = {
	"BHD", "JOD", "KWD", "OMR", "TND",
};

/* Stripe's special cases ISK and UGX (see stripe_form). */
static const char *const stripe_whole[] = { "ISK", "UGX" };

/* The largest unit_amount Stripe takes: eight digits ("99999999 for a
 * USD charge of $999,999.99"). */
#define STRIPE_AMOUNT_MAX	99999999

/* Returns the value of code in table t of n rows, or def if it has none. */
static int64_t
lookup(const struct code_value *t, size_t n, const char *code, int64_t def)
{
	for (size_t i = 0; code != NULL && i < n; i++)
		if (strcasecmp(t[i].code, code) == 0)
			return t[i].value;
	return def;
}

/* Returns 1 if code is one of the n codes of list, else 0. */
static int
listed(const char *const *list, size_t n, const char *code)
{
	for (size_t i = 0; code != NULL && i < n; i++)
		if (strcasecmp(list[i], code) == 0)
			return 1;
	return 0;
}

/* Returns 10 to the power e (0 to 8). */
static int64_t
pow10_of(int e)
{
	int64_t p = 1;

	while (e-- > 0)
		p *= 10;
	return p;
}

int
currency_exponent(const char *code)
{
	return (int)lookup(iso_exponents, ARRAY_LEN(iso_exponents), code, 2);
}

int64_t
currency_card_minimum(const char *code)
{
	return lookup(card_minimums, ARRAY_LEN(card_minimums), code, -1);
}

/* Stripe's form of an amount of code: writes into *decimals how many
 * decimals its unit_amount has and returns what that must be a multiple
 * of. Any currency Stripe does not list has two decimals. Stripe's
 * "Special cases" (docs.stripe.com/currencies#special-cases):
 * - ISK and UGX have become zero-decimal, but "to maintain backwards
 *   compatibility" Stripe still takes them with two decimals that must
 *   be 00: 5 ISK is 500. ISO gives them no decimals, so pmb's 5 is
 *   Stripe's 500.
 * - HUF and TWD are zero-decimal for payouts only; charges keep two
 *   decimals, so they are sent as they are.
 * - The three-decimal currencies must end in 0 ("round amounts to the
 *   nearest ten": 5.124 KWD cannot be charged). pmb never rounds what a
 *   client pays: such an amount gets no card button. */
static int64_t
stripe_form(const char *code, int *decimals)
{
	*decimals = 2;
	if (listed(stripe_whole, ARRAY_LEN(stripe_whole), code))
		return 100;
	if (listed(stripe_zero, ARRAY_LEN(stripe_zero), code))
		*decimals = 0;
	else if (listed(stripe_three, ARRAY_LEN(stripe_three), code)) {
		*decimals = 3;
		return 10;
	}
	return 1;
}

/* Writes into *out v minor units of from decimals as a count of to
 * decimals: 1500 of 0 is 150000 of 2. Returns 1, or 0 when that is no
 * whole count (150050 of 2 is no count of 0) or it overflows. */
static int
rescale(int64_t v, int from, int to, int64_t *out)
{
	int64_t p = pow10_of(from < to ? to - from : from - to);

	if (v < 0 || (from < to && v > INT64_MAX / p) ||
	    (from > to && v % p != 0))
		return 0;
	*out = from < to ? v * p : v / p;
	return 1;
}

int
currency_stripe_amount(const char *code, int64_t minor, int64_t *out)
{
	int	decimals;
	int64_t	step = stripe_form(code, &decimals), v;

	/* E.g. MGA: ISO gives it 2 decimals, Stripe none. */
	if (!rescale(minor, currency_exponent(code), decimals, &v) ||
	    v % step != 0)
		return 0;
	*out = v;
	return 1;
}

int
currency_stripe_minor(const char *code, int64_t amount, int64_t *out)
{
	int decimals;

	stripe_form(code, &decimals);
	return rescale(amount, decimals, currency_exponent(code), out);
}

int
currency_card_ok(const char *code, int64_t amount)
{
	int64_t min = currency_card_minimum(code), v;

	return min >= 0 && amount >= min &&
	    currency_stripe_amount(code, amount, &v) && v <= STRIPE_AMOUNT_MAX;
}

char *
currency_decimals_error(char out[CURRENCY_ERROR_MAX], const char *code)
{
	int	e = currency_exponent(code);
	char	example[MONEY_TEXT_MAX];

	money_text(example, 150 * pow10_of(e), e);
	if (e == 0)
		snprintf(out, CURRENCY_ERROR_MAX, "%.3s has no decimals: enter "
		    "an amount such as %s.", code, example);
	else
		snprintf(out, CURRENCY_ERROR_MAX, "%.3s has at most %d "
		    "decimals: enter an amount such as %s.", code, e, example);
	return out;
}
