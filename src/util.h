/* util.h: memory, growable buffers, small string and time helpers. */
#ifndef PMB_UTIL_H
#define PMB_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocators that abort with a message on failure (as kcgi's kmalloc). */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};

void	 buf_init(struct buf *);
void	 buf_free(struct buf *);
void	 buf_reset(struct buf *);
/* Makes room for n more bytes plus the terminating NUL: one allocation
 * for a text whose size is known or guessed, not one per doubling. */
void	 buf_reserve(struct buf *, size_t);
void	 buf_append(struct buf *, const char *, size_t);
void	 buf_puts(struct buf *, const char *);
void	 buf_putc(struct buf *, char);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_vprintf(struct buf *, const char *, va_list);
/* Hand the buffer's string to the caller; the buffer is reset. */
char	*buf_take(struct buf *);
/* Appends s with every occurrence of from (not empty) replaced by to. */
void	 buf_replace(struct buf *, const char *s, const char *from,
	    const char *to);

/* Escapers: append s escaped for HTML text and attribute values, with
 * invisible and text-direction characters shown (show_invisible). */
void	 html_escape(struct buf *, const char *);
/* Append s percent-encoded for a URL query value. */
void	 url_escape(struct buf *, const char *);

/* Returns 1 if word is one of the words of list, words separated by
 * any run of the characters of seps ("pdf png jpeg"), else 0. */
int	 word_in_list(const char *list, const char *word, const char *seps);

/* Returns 1 if the n bytes at s are valid UTF-8 with no NUL, else 0. */
int	 utf8_valid(const char *, size_t);
/* Returns 1 if s holds a control character (C0 or DEL), else 0. */
int	 has_ctl(const char *);
/* Returns 1 if s holds a control character other than tab, CR, LF. */
int	 has_ctl_text(const char *);
/* Returns 1 if each of the n bytes at s is an ASCII letter, an ASCII
 * digit or one of the bytes of extra, else 0. */
int	 ascii_word(const char *s, size_t n, const char *extra);
/* Returns the length in bytes of the invisible or text-direction format
 * character that valid UTF-8 s starts with (U+061C, U+180E, U+200B-200F,
 * U+202A-202E, U+2060-2064, U+2066-206F, U+FEFF, U+FFF9-FFFB,
 * U+E0000-E007F), with its code point in *cp; 0 if it starts with none.
 * Such characters let a text pose as another ("Invoice U+202E gpj.exe"
 * shows as "Invoice exe.jpg"). */
size_t	 utf8_invisible(const char *s, uint32_t *cp);
/* Returns 1 if s holds such a character, else 0. */
int	 has_invisible(const char *);
/* Appends s with each such character shown visibly as its code point
 * between open and close: "[U+202E]" with "[" and "]". */
void	 show_invisible(struct buf *, const char *s, const char *open,
	    const char *close);
/* Number of Unicode code points in a valid UTF-8 string. */
size_t	 utf8_len(const char *);

/* Parses a decimal integer of the whole string into *out; 0 on error. */
int	 parse_int64(const char *, int64_t min, int64_t max, int64_t *out);
/* Parses "150" or "150.5" or "150.50" into minor units of a currency
 * whose minor unit has exponent decimals (2: "150.5" is 15050; 0: "150"
 * is 150 and "150.5" an error); 0 on error (more decimals than
 * exponent, a sign, anything but digits and one point, overflow). */
int	 parse_money(const char *, int exponent, int64_t *out);
/* Formats minor units with exponent decimals: 15000 as "150.00" (2),
 * "150" from 150 (0), "12.345" from 12345 (3); into buf. */
void	 fmt_money(struct buf *, int64_t minor, int exponent);
/* The longest text of money_text, with its NUL. */
#define MONEY_TEXT_MAX	24
/* Writes minor units as fmt_money does into out; returns out. */
char	*money_text(char out[MONEY_TEXT_MAX], int64_t minor, int exponent);
/* The longest text of int_text, with its NUL. */
#define INT_TEXT_MAX	24
/* Writes v in decimal into out, NUL-terminated; returns out. */
char	*int_text(char out[INT_TEXT_MAX], int64_t v);

/* Current time in Unix seconds; PMB_TEST_NOW overrides (tests only). */
int64_t	 now_unix(void);
/* The pause before try n + 1 after n failed tries (n >= 1) from a table
 * of npause growing pauses; past its end, the last. */
int64_t	 backoff_pick(const int64_t *pause, size_t npause, int64_t tries);
/* Monotonic milliseconds. */
double	 now_ms(void);
/* Formats Unix seconds as "26 Nov 2026, 05:02 UTC" ("7 Dec 2026, ...",
 * the day not padded) into buf: in UTC, or
 * after time_zone_local(1) in the zone TZ names, with its abbreviation
 * ("29 Mar 2026, 03:30 BST"). */
void	 fmt_time(struct buf *, int64_t);
/* Writes into *start and *next the first second of t's calendar day in
 * the zone times are shown in, and of the day after: 23 or 25 hours apart
 * across a DST change ("due today" is start <= due_at < next). Returns
 * 1, or 0 if the C library cannot tell. */
int	 time_day(int64_t t, int64_t *start, int64_t *next);
/* on = 1: fmt_time, time_text and fmt_date show times in the zone that
 * TZ names (tz_use sets both); 0: in UTC (the default). */
void	 time_zone_local(int on);
/* The longest text of time_text, with its NUL. */
#define TIME_TEXT_MAX	64
/* Writes t as fmt_time does into out, NUL-terminated; returns out. */
char	*time_text(char out[TIME_TEXT_MAX], int64_t);
/* Formats the year (UTC), and the date as "26 November 2026" (in the
 * zone, as fmt_time), into buf. */
void	 fmt_year(struct buf *, int64_t);
void	 fmt_date(struct buf *, int64_t);
/* Formats Unix seconds as ISO-8601 "2026-11-26T05:02:37Z" into buf. */
void	 fmt_iso(struct buf *, int64_t);
/* Returns the English abbreviation of month mon (tm_mon: 0 is "Jan"),
 * "???" outside 0 to 11: the one month-name table. */
const char *month_abbr(int mon);
/* How fmt_duration writes a span. */
enum duration_style {
	DURATION_SHORT,		/* "45 min", "10 h 5 min", "2 d 22 h" */
	DURATION_MINUTES,	/* whole minutes, rounded up: "1 minute",
				 * "5 minutes" (a wait) */
};
/* Formats a span of seconds (negative: with "-") into buf. */
void	 fmt_duration(struct buf *, int64_t seconds, enum duration_style);

/* Logging to stderr with a time stamp; never pass secrets. */
void	 log_msg(const char *, ...) __attribute__((format(printf, 1, 2)));
/* The same for a message made without a format. */
void	 log_text(const char *);

/* Reads a whole file into a NUL-terminated string; NULL on error. */
char	*read_file(const char *path, size_t *lenp);
/* Writes the n bytes of data to fd; returns 1, or 0 on error. */
int	 write_all(int fd, const char *data, size_t n);
/* Returns the folder of path (to free): "/" for "/x", "." for a bare
 * name. */
char	*path_folder(const char *path);
/* Makes a rename or a new file in the folder of path survive a crash
 * (fsync of the folder); a failure only loses durability, so it is not
 * reported. */
void	 sync_folder_of(const char *path);
/* Opens the folder of path and flock()s it with op (LOCK_SH, LOCK_EX,
 * | LOCK_NB): pmb.fcgi and the pmbctl daemons hold the database's folder
 * shared while they run, pmbctl restore exclusive. Returns the
 * descriptor that holds the lock (close it to let go), or -1 with
 * errno set. */
int	 folder_lock(const char *path, int op);

#endif
