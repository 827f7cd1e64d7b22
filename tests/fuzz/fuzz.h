/* fuzz.h: helpers shared by the libFuzzer harnesses of tests/fuzz/.
 * An input is split at NUL bytes into up to FUZZ_MAX_PARTS strings, so
 * one input can feed several arguments (a template and its values, a
 * subject and an address...). A failed check aborts: libFuzzer reports
 * it as a crash and keeps the input. */
#ifndef PMB_FUZZ_H
#define PMB_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_PARTS	16

struct parts {
	char	*copy;			/* the input, NUL-terminated */
	char	*s[FUZZ_MAX_PARTS];	/* each part; "" when missing */
	size_t	 len[FUZZ_MAX_PARTS];
	size_t	 n;			/* parts present */
};

/* Splits data at NUL bytes into p; free with parts_free. */
static inline void
parts_split(struct parts *p, const uint8_t *data, size_t size)
{
	char *c = malloc(size + 1), *s, *end;

	if (c == NULL)
		abort();
	memcpy(c, data, size);
	c[size] = '\0';
	p->copy = c;
	p->n = 0;
	for (s = c, end = c + size; p->n < FUZZ_MAX_PARTS; ) {
		size_t k = strlen(s);

		p->s[p->n] = s;
		p->len[p->n++] = k;
		if (s + k >= end)
			break;
		s += k + 1;
	}
	for (size_t i = p->n; i < FUZZ_MAX_PARTS; i++) {
		p->s[i] = c + size;	/* "" */
		p->len[i] = 0;
	}
}

static inline void
parts_free(struct parts *p)
{
	free(p->copy);
}

/* Aborts with a message when cond is false. */
#define FUZZ_CHECK(cond, what) do {					\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz check failed: %s (%s:%d)\n",	\
		    what, __FILE__, __LINE__);				\
		abort();						\
	}								\
} while (0)

#endif
