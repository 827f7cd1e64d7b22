/* mail_send.c: delivering the outbox that mail.c fills.
 *
 * A sender claims one due message at a time in a BEGIN IMMEDIATE
 * transaction (status 'sending', claimed_until = now + the longest a
 * try may take), sends it, then marks it sent, or counts the failure
 * and schedules the next try with a growing pause, until
 * mail_max_attempts, when it is marked failed. Two senders never hold
 * the same message; a claim left by a sender that died expires and the
 * message is taken again: a crash may resend a message, never lose it.
 *
 * Messages are RFC 5322 + MIME, built here from the outbox row alone
 * (Date is when it was queued, Message-ID and boundary are derived from
 * the row), so every try of one message sends the same bytes. The
 * encoders (quoted-printable, RFC 2047 Q words) are small and written
 * out here: curl's MIME API cannot hand back the bytes that the dir and
 * sendmail transports need, nor encode headers, and GMime would bring
 * GLib along for two hundred lines of code.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "email_addr.h"
#include "mail.h"
#include "mail_send.h"
#include "util.h"

#define HDR_FOLD	76	/* fold header lines at this column (RFC
				 * 2047 caps lines with encoded words) */
#define EW_PAYLOAD	45	/* encoded bytes in one RFC 2047 word */
#define PLAIN_WORD_MAX	60	/* longer words go RFC 2047-encoded */
#define PLAIN_NAME_MAX	60	/* longer display names go encoded */
#define QP_LINE		76	/* quoted-printable line length */
#define CLAIM_MARGIN	60	/* seconds a claim outlasts a try's timeout */
#define ERROR_MAX	300	/* bytes of an error kept in last_error */
#define OUTPUT_MAX	2048	/* bytes of a sendmail command's output kept */
#define SENDMAIL_ARGS	32	/* words of sendmail_command */
#define KIND_MAX	40	/* bytes of the kind in a file name */

/* ------------------------------------------------------------------ */
/* Backoff */

int64_t
mail_backoff(int64_t failed_tries)
{
	static const int64_t pause[] = { 60, 5 * 60, 30 * 60, 2 * 3600,
	    6 * 3600, 12 * 3600, 24 * 3600 };

	if (failed_tries < 1)
		failed_tries = 1;
	if (failed_tries > (int64_t)ARRAY_LEN(pause))
		failed_tries = (int64_t)ARRAY_LEN(pause);
	return pause[failed_tries - 1];
}

/* ------------------------------------------------------------------ */
/* Encoders */

static const char hexdig[] = "0123456789ABCDEF";

/* Appends one quoted-printable line (no line end) of n bytes. */
static void
qp_line(struct buf *b, const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char	 c = (unsigned char)s[i];
		int		 last = i + 1 == n, enc;
		char		 tok[3];
		size_t		 len;

		for (;;) {
			/* Whitespace is encoded only at the end of a line;
			 * a dot or "From " starting a line is encoded too,
			 * so no transport can mangle it. */
			if (c == ' ' || c == '\t')
				enc = last;
			else
				enc = c < 33 || c > 126 || c == '=' ||
				    (col == 0 && c == '.') || (col == 0 &&
				    n - i >= 5 && memcmp(s + i, "From ", 5) ==
				    0);
			len = enc ? 3 : 1;
			/* A soft break "=" ends every line but the last. */
			if (col + len <= QP_LINE - 1 ||
			    (last && col + len <= QP_LINE))
				break;
			buf_puts(b, "=\r\n");
			col = 0;
		}
		if (enc) {
			tok[0] = '=';
			tok[1] = hexdig[c >> 4];
			tok[2] = hexdig[c & 15];
			buf_append(b, tok, 3);
		} else
			buf_putc(b, (char)c);
		col += len;
	}
}

void
mime_qp(struct buf *b, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, "\r\n");

		qp_line(b, p, n);
		p += n;
		if (*p == '\0')
			break;
		buf_puts(b, "\r\n");
		if (p[0] == '\r' && p[1] == '\n')
			p += 2;
		else
			p++;
	}
}

/* A header being written: folds before a token that would pass
 * HDR_FOLD, never before the first token of a line. */
struct hdr {
	struct buf	*b;
	size_t		 col;
	int		 fresh;		/* no token on this line yet */
};

/* Starts the header "field:". */
static void
hdr_start(struct hdr *h, struct buf *b, const char *field)
{
	h->b = b;
	buf_puts(b, field);
	buf_putc(b, ':');
	h->col = strlen(field) + 1;
	h->fresh = 1;
}

/* Appends a token of n bytes after one space, or after a fold. */
static void
hdr_token(struct hdr *h, const char *tok, size_t n)
{
	if (!h->fresh && h->col + 1 + n > HDR_FOLD) {
		buf_puts(h->b, "\r\n");
		h->col = 0;
	}
	buf_putc(h->b, ' ');
	buf_append(h->b, tok, n);
	h->col += 1 + n;
	h->fresh = 0;
}

/* Ends the header line. */
static void
hdr_end(struct hdr *h)
{
	buf_puts(h->b, "\r\n");
}

/* Returns a copy of s fit for a header: each run of spaces and control
 * characters becomes one space and, if s is not valid UTF-8, every
 * non-ASCII byte becomes '?'. The caller frees it. */
static char *
header_clean(const char *s)
{
	char		*t = xstrdup(s != NULL ? s : "");
	unsigned char	*p, *q;
	int		 valid = utf8_valid(t, strlen(t));

	for (p = q = (unsigned char *)t; *p != '\0'; p++)
		if (*p <= 0x20 || *p == 0x7f) {
			if (q == (unsigned char *)t || q[-1] != ' ')
				*q++ = ' ';
		} else
			*q++ = *p >= 0x80 && !valid ? '?' : *p;
	*q = '\0';
	return t;
}

/* Returns 1 if s (cleaned) may go into a header as it is: printable
 * ASCII, nothing that looks like an encoded word, no over-long word. */
static int
header_plain(const char *s)
{
	size_t word = 0;

	if (strstr(s, "=?") != NULL)
		return 0;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return 0;
		word = *s == ' ' ? 0 : word + 1;
		if (word > PLAIN_WORD_MAX)
			return 0;
	}
	return 1;
}

/* Appends s (cleaned UTF-8) as RFC 2047 Q encoded-words, each a token
 * of h, splitting only between characters. Only the characters that
 * RFC 2047 allows in a phrase go unencoded, so the words are valid in a
 * display name as well as in a Subject. */
static void
hdr_words(struct hdr *h, const char *s)
{
	struct buf	w;
	size_t		payload = 0;

	buf_init(&w);
	while (*s != '\0') {
		unsigned char	c = (unsigned char)*s;
		size_t		clen = 1, elen = 0;

		if (c >= 0xf0)
			clen = 4;
		else if (c >= 0xe0)
			clen = 3;
		else if (c >= 0xc0)
			clen = 2;
		for (size_t i = 0; i < clen; i++) {
			unsigned char d = (unsigned char)s[i];

			elen += (d >= 'A' && d <= 'Z') || (d >= 'a' &&
			    d <= 'z') || (d >= '0' && d <= '9') ||
			    strchr("!*+-/ ", d) != NULL ? 1 : 3;
		}
		if (payload > 0 && payload + elen > EW_PAYLOAD) {
			buf_puts(&w, "?=");
			hdr_token(h, w.data, w.len);
			buf_reset(&w);
			payload = 0;
		}
		if (payload == 0)
			buf_puts(&w, "=?UTF-8?Q?");
		for (size_t i = 0; i < clen; i++) {
			unsigned char d = (unsigned char)s[i];

			if (d == ' ')
				buf_putc(&w, '_');
			else if ((d >= 'A' && d <= 'Z') || (d >= 'a' &&
			    d <= 'z') || (d >= '0' && d <= '9') ||
			    strchr("!*+-/", d) != NULL)
				buf_putc(&w, (char)d);
			else {
				buf_putc(&w, '=');
				buf_putc(&w, hexdig[d >> 4]);
				buf_putc(&w, hexdig[d & 15]);
			}
		}
		payload += elen;
		s += clen;
	}
	if (payload > 0) {
		buf_puts(&w, "?=");
		hdr_token(h, w.data, w.len);
	}
	buf_free(&w);
}

void
mime_header_text(struct buf *b, const char *field, const char *value)
{
	struct hdr	 h;
	char		*v = header_clean(value);

	hdr_start(&h, b, field);
	if (header_plain(v)) {
		/* Words split at single spaces: a fold keeps the space. */
		const char *p = v;

		for (;;) {
			size_t n = strcspn(p, " ");

			hdr_token(&h, p, n);
			if (p[n] == '\0')
				break;
			p += n + 1;
		}
	} else
		hdr_words(&h, v);
	hdr_end(&h);
	free(v);
}

void
mime_header_mailbox(struct buf *b, const char *field, const char *name,
    const char *addr)
{
	struct hdr	 h;
	struct buf	 q;
	char		*n = header_clean(name);

	hdr_start(&h, b, field);
	if (*n == '\0') {
		hdr_token(&h, addr, strlen(addr));
		hdr_end(&h);
		free(n);
		return;
	}
	if (header_plain(n) && strlen(n) <= PLAIN_NAME_MAX) {
		buf_init(&q);
		buf_putc(&q, '"');
		for (const char *p = n; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&q, '\\');
			buf_putc(&q, *p);
		}
		buf_putc(&q, '"');
		hdr_token(&h, q.data, q.len);
		buf_free(&q);
	} else
		hdr_words(&h, n);
	buf_init(&q);
	buf_printf(&q, "<%s>", addr);
	hdr_token(&h, q.data, q.len);
	buf_free(&q);
	hdr_end(&h);
	free(n);
}

int
mime_addr_ok(const char *addr)
{
	return email_addr_check(addr) == NULL;
}

/* Returns a copy of the n bytes at s without spaces at either end. */
static char *
trimmed(const char *s, size_t n)
{
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return xstrndup(s, n);
}

int
mime_parse_mailbox(const char *s, char **name, char **addr)
{
	const char *lt = strrchr(s, '<'), *gt;

	*name = *addr = NULL;
	if (lt == NULL) {
		*name = xstrdup("");
		*addr = trimmed(s, strlen(s));
	} else {
		if ((gt = strchr(lt, '>')) == NULL)
			return 0;
		for (const char *p = gt + 1; *p != '\0'; p++)
			if (*p != ' ' && *p != '\t')
				return 0;
		*addr = xstrndup(lt + 1, (size_t)(gt - lt - 1));
		*name = trimmed(s, (size_t)(lt - s));
		/* A quoted display name loses its quotes. */
		size_t n = strlen(*name);
		if (n >= 2 && (*name)[0] == '"' && (*name)[n - 1] == '"') {
			memmove(*name, *name + 1, n - 2);
			(*name)[n - 2] = '\0';
		}
	}
	return mime_addr_ok(*addr);
}

/* Appends Unix seconds t as an RFC 5322 date in UTC. */
static void
fmt_rfc5322(struct buf *b, int64_t t)
{
	static const char *const day[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t		tt = (time_t)t;
	struct tm	tm;

	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	buf_printf(b, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    day[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Appends one MIME part of the given type, quoted-printable, preceded
 * by its boundary line. */
static void
mime_part(struct buf *b, const char *boundary, const char *type,
    const char *body)
{
	buf_printf(b, "\r\n--%s\r\n", boundary);
	buf_printf(b, "Content-Type: %s; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n", type);
	mime_qp(b, body);
}

int
mail_build(struct buf *b, const struct mail_msg *m, const char **why)
{
	unsigned char	 hash[16];
	char		 hex[sizeof(hash) * 2 + 1], boundary[64];
	char		*from_name = NULL, *from_addr = NULL;
	char		*rt_name = NULL, *rt_addr = NULL;
	char		*to_name = NULL, *to_addr = NULL;
	const char	*domain;
	struct buf	 seed;
	int		 ok = 0;

	if (!mime_parse_mailbox(conf.mail_from, &from_name, &from_addr)) {
		*why = "mail_from is not an address that mail can use";
		goto out;
	}
	if (!mime_parse_mailbox(conf.admin_email, &rt_name, &rt_addr)) {
		*why = "admin_email is not an address that mail can use";
		goto out;
	}
	if (!mime_parse_mailbox(m->to_addr, &to_name, &to_addr)) {
		*why = "the recipient's address is not one that mail can use";
		goto out;
	}
	if (m->to_name != NULL && *m->to_name != '\0') {
		free(to_name);
		to_name = xstrdup(m->to_name);
	}
	domain = strchr(from_addr, '@') + 1;

	/* The same row always gives the same Message-ID and boundary. */
	buf_init(&seed);
	buf_printf(&seed, "pmb-mail:%lld:%lld:%s:%s", (long long)m->id,
	    (long long)m->created_at, m->kind, to_addr);
	crypto_generichash(hash, sizeof(hash), (unsigned char *)seed.data,
	    seed.len, NULL, 0);
	buf_free(&seed);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(boundary, sizeof(boundary), "=_pmb_%s", hex);

	buf_puts(b, "Date: ");
	fmt_rfc5322(b, m->created_at);
	buf_printf(b, "\r\nMessage-ID: <%s.%lld@%s>\r\n", hex,
	    (long long)m->id, domain);
	mime_header_mailbox(b, "From", from_name, from_addr);
	mime_header_mailbox(b, "Reply-To", rt_name, rt_addr);
	mime_header_mailbox(b, "To", to_name, to_addr);
	mime_header_text(b, "Subject", m->subject);
	buf_puts(b, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
	if (m->body_html == NULL || *m->body_html == '\0') {
		buf_puts(b, "Content-Type: text/plain; charset=UTF-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		mime_qp(b, m->body_text);
		buf_puts(b, "\r\n");
	} else {
		/* "=_" never occurs in quoted-printable text. */
		buf_printf(b, "Content-Type: multipart/alternative;\r\n"
		    " boundary=\"%s\"\r\n", boundary);
		mime_part(b, boundary, "text/plain", m->body_text);
		mime_part(b, boundary, "text/html", m->body_html);
		buf_printf(b, "\r\n--%s--\r\n", boundary);
	}
	ok = 1;
out:
	free(from_name);
	free(from_addr);
	free(rt_name);
	free(rt_addr);
	free(to_name);
	free(to_addr);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Transports. Each returns 1 when the message was handed over, else 0
 * with a one-line reason in err (never a password or the message). */

/* Appends s to err, on one line and shortened. */
static void
err_put(struct buf *err, const char *s)
{
	for (; *s != '\0' && err->len < ERROR_MAX; s++)
		buf_putc(err, (unsigned char)*s < 0x20 ? ' ' : *s);
	while (err->len > 0 && err->data[err->len - 1] == ' ')
		err->data[--err->len] = '\0';
}

/* Writes the message to mail_dir/ID-KIND.eml through a temporary file,
 * so a reader never sees half a message. */
static int
send_dir(const struct buf *msg, const struct mail_msg *m, struct buf *err)
{
	struct buf	 path, tmp, e;
	char		 kind[KIND_MAX + 1];
	size_t		 i, off = 0;
	int		 fd, ok = 0;

	for (i = 0; i < KIND_MAX && m->kind[i] != '\0'; i++) {
		char c = m->kind[i];

		kind[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ? c : '_';
	}
	kind[i] = '\0';
	buf_init(&path);
	buf_init(&tmp);
	buf_init(&e);
	buf_printf(&path, "%s/%lld-%s.eml", conf.mail_dir, (long long)m->id,
	    kind);
	buf_printf(&tmp, "%s/.%lld-%s.eml.tmp-%ld", conf.mail_dir,
	    (long long)m->id, kind, (long)getpid());
	if ((fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		buf_printf(&e, "dir: %s: %s", tmp.data, strerror(errno));
		goto out;
	}
	while (off < msg->len) {
		ssize_t n = write(fd, msg->data + off, msg->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf_printf(&e, "dir: %s: %s", tmp.data,
			    n < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(tmp.data);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0 || close(fd) != 0) {
		buf_printf(&e, "dir: %s: %s", tmp.data, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	if (rename(tmp.data, path.data) != 0) {
		buf_printf(&e, "dir: %s: %s", path.data, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	/* The rename itself survives a crash once the folder is synced. */
	if ((fd = open(conf.mail_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
	    0) {
		if (fsync(fd) != 0)
			log_msg("mail: fsync %s: %s", conf.mail_dir,
			    strerror(errno));
		close(fd);
	}
	ok = 1;
out:
	if (!ok)
		err_put(err, e.data);
	buf_free(&path);
	buf_free(&tmp);
	buf_free(&e);
	return ok;
}

/* Splits s at spaces and tabs into at most max - 1 words of argv (a
 * copy of s that the caller frees holds them). Returns the number of
 * words, or -1 if there are too many. */
static int
split_words(char *s, char *argv[], int max)
{
	int n = 0;

	for (char *p = strtok(s, " \t"); p != NULL; p = strtok(NULL, " \t")) {
		if (n == max - 1)
			return -1;
		argv[n++] = p;
	}
	argv[n] = NULL;
	return n;
}

/* The child side of send_sendmail: stdin from in, stdout and stderr to
 * out, default signals, then the command. Never returns. */
static void
sendmail_child(int in, int out, char *argv[])
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(out, STDERR_FILENO) < 0)
		_exit(126);
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0],
	    strerror(errno));
	_exit(127);
}

/* Pipes the message (with LF line ends, as local programs expect) to
 * sendmail_command, split at spaces and run without a shell; success is
 * exit status 0. The command is killed after smtp_timeout seconds. */
static int
send_sendmail(const struct buf *msg, struct buf *err)
{
	char		*cmd = xstrdup(conf.sendmail_command);
	char		*argv[SENDMAIL_ARGS + 1];
	struct buf	 lf, out, e;
	int		 in[2] = { -1, -1 }, outp[2] = { -1, -1 };
	int		 status = 0, ok = 0, exited = 0, broken = 0;
	size_t		 off = 0;
	double		 deadline = now_ms() + (double)conf.smtp_timeout * 1000;
	pid_t		 pid;

	buf_init(&lf);
	buf_init(&out);
	buf_init(&e);
	for (size_t i = 0; i < msg->len; i++)
		if (!(msg->data[i] == '\r' && i + 1 < msg->len &&
		    msg->data[i + 1] == '\n'))
			buf_putc(&lf, msg->data[i]);
	if (split_words(cmd, argv, SENDMAIL_ARGS + 1) <= 0) {
		buf_puts(&e, "sendmail: sendmail_command is empty or has "
		    "too many words");
		goto out;
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
		buf_printf(&e, "sendmail: pipe: %s", strerror(errno));
		goto out;
	}
	if ((pid = fork()) < 0) {
		buf_printf(&e, "sendmail: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		sendmail_child(in[0], outp[1], argv);
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(outp[0], F_SETFL, O_NONBLOCK) != 0)
		broken = 1;

	/* Feed stdin and drain the output together, so neither side can
	 * block the other; stop at the deadline. */
	while (!exited) {
		struct pollfd	pf[2];
		nfds_t		n = 0;
		double		left = deadline - now_ms();
		char		chunk[512];
		ssize_t		r = -1;

		if (left <= 0) {
			kill(pid, SIGKILL);
			buf_printf(&e, "sendmail: %s did not finish within "
			    "%lld s", argv[0], (long long)conf.smtp_timeout);
			break;
		}
		if (in[1] >= 0 && !broken) {
			pf[n].fd = in[1];
			pf[n++].events = POLLOUT;
		}
		if (outp[0] >= 0) {
			pf[n].fd = outp[0];
			pf[n++].events = POLLIN;
		}
		if (n > 0 && poll(pf, n, left < 100 ? (int)left + 1 : 100) <
		    0 && errno != EINTR) {
			buf_printf(&e, "sendmail: poll: %s", strerror(errno));
			kill(pid, SIGKILL);
			break;
		}
		if (n == 0)
			usleep(20000);
		if (in[1] >= 0 && !broken && off < lf.len) {
			r = write(in[1], lf.data + off, lf.len - off);
			if (r > 0)
				off += (size_t)r;
			else if (r < 0 && errno != EAGAIN && errno != EINTR)
				broken = 1;	/* EPIPE: it stopped reading */
		}
		if (in[1] >= 0 && (off == lf.len || broken)) {
			close(in[1]);
			in[1] = -1;
		}
		while (outp[0] >= 0 &&
		    (r = read(outp[0], chunk, sizeof(chunk))) != 0) {
			if (r < 0) {
				if (errno != EAGAIN && errno != EINTR) {
					close(outp[0]);
					outp[0] = -1;
				}
				break;
			}
			if (out.len < OUTPUT_MAX)
				buf_append(&out, chunk, (size_t)r);
		}
		if (outp[0] >= 0 && r == 0) {
			close(outp[0]);
			outp[0] = -1;
		}
		/* A child that left a daemon holding its output is done
		 * when it exits. */
		if (in[1] < 0) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid)
				exited = 1;
			else if (w < 0 && errno != EINTR) {
				buf_printf(&e, "sendmail: waitpid: %s",
				    strerror(errno));
				break;
			}
		}
	}
	if (!exited)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	if (e.len > 0)
		goto out;
	if (WIFSIGNALED(status))
		buf_printf(&e, "sendmail: %s was killed by signal %d",
		    argv[0], WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		buf_printf(&e, "sendmail: %s exited with status %d",
		    argv[0], WEXITSTATUS(status));
	else if (off < lf.len)
		buf_printf(&e, "sendmail: %s did not read the whole message",
		    argv[0]);
	else
		ok = 1;
	if (!ok && out.len > 0) {
		size_t nl = strcspn(out.data, "\n");

		out.data[nl] = '\0';
		buf_printf(&e, ": %s", out.data);
	}
out:
	if (!ok)
		err_put(err, e.data != NULL ? e.data : "sendmail: failed");
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	free(cmd);
	buf_free(&lf);
	buf_free(&out);
	buf_free(&e);
	return ok;
}

/* What curl reads the message from. */
struct upload {
	const char	*data;
	size_t		 len, off;
};

/* CURLOPT_READFUNCTION: hands curl the next part of the message. */
static size_t
upload_read(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct upload	*u = arg;
	size_t		 n = size * nmemb;

	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(ptr, u->data + u->off, n);
	u->off += n;
	return n;
}

/* Returns 1 if the host of smtp_url is this machine (loopback). */
static int
smtp_host_is_local(void)
{
	CURLU	*u = curl_url();
	char	*host = NULL;
	int	 local = 0;

	if (u != NULL && curl_url_set(u, CURLUPART_URL, conf.smtp_url,
	    CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		local = strcmp(host, "localhost") == 0 ||
		    strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0;
	curl_free(host);
	curl_url_cleanup(u);
	return local;
}

/* Sends the message through the SMTP server of smtp_url with libcurl:
 * smtp:// upgrades with STARTTLS when the server offers it (and insists
 * on it before sending a password to another machine), smtps:// is TLS
 * from the start. */
static int
send_smtp(const struct buf *msg, const char *from_addr, const char *to_addr,
    struct buf *err)
{
	CURL			*c;
	CURLcode		 rc = CURLE_OK;
	struct curl_slist	*rcpt = NULL;
	struct upload		 up = { msg->data, msg->len, 0 };
	struct buf		 from, to, e;
	char			 errbuf[CURL_ERROR_SIZE] = "";
	long			 tls = CURLUSESSL_TRY, code = 0;
	int			 login = *conf.smtp_user != '\0';

	buf_init(&from);
	buf_init(&to);
	buf_init(&e);
	buf_printf(&from, "<%s>", from_addr);
	buf_printf(&to, "<%s>", to_addr);
	if ((c = curl_easy_init()) == NULL ||
	    (rcpt = curl_slist_append(NULL, to.data)) == NULL) {
		err_put(err, "smtp: cannot start libcurl");
		goto out;
	}
	if (strncmp(conf.smtp_url, "smtps://", 8) == 0 ||
	    (login && !smtp_host_is_local()))
		tls = CURLUSESSL_ALL;
#define SETOPT(opt, val) do {						\
		if (rc == CURLE_OK)					\
			rc = curl_easy_setopt(c, opt, val);		\
	} while (0)
	SETOPT(CURLOPT_URL, conf.smtp_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_MAIL_FROM, from.data);
	SETOPT(CURLOPT_MAIL_RCPT, rcpt);
	SETOPT(CURLOPT_UPLOAD, 1L);
	SETOPT(CURLOPT_READFUNCTION, upload_read);
	SETOPT(CURLOPT_READDATA, &up);
	SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len);
	SETOPT(CURLOPT_USE_SSL, tls);
	SETOPT(CURLOPT_TIMEOUT, (long)conf.smtp_timeout);
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)(conf.smtp_timeout < 15 ?
	    conf.smtp_timeout : 15));
	if (*conf.smtp_ca_file != '\0')
		SETOPT(CURLOPT_CAINFO, conf.smtp_ca_file);
	if (login) {
		SETOPT(CURLOPT_USERNAME, conf.smtp_user);
		SETOPT(CURLOPT_PASSWORD, conf.smtp_password);
	}
#undef SETOPT
	if (rc != CURLE_OK) {
		buf_printf(&e, "smtp: setting up libcurl: %s",
		    curl_easy_strerror(rc));
		err_put(err, e.data);
		goto out;
	}
	if ((rc = curl_easy_perform(c)) != CURLE_OK) {
		if (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) !=
		    CURLE_OK)
			code = 0;
		buf_printf(&e, "smtp: %s", curl_easy_strerror(rc));
		if (*errbuf != '\0' && strcmp(errbuf, curl_easy_strerror(rc)))
			buf_printf(&e, ": %s", errbuf);
		if (code >= 400)
			buf_printf(&e, " (server said %ld)", code);
		err_put(err, e.data);
		goto out;
	}
out:
	curl_slist_free_all(rcpt);
	if (c != NULL)
		curl_easy_cleanup(c);
	buf_free(&from);
	buf_free(&to);
	buf_free(&e);
	return rc == CURLE_OK && err->len == 0;
}

/* ------------------------------------------------------------------ */
/* Claiming and marking */

/* A message claimed from the outbox, with copies of its strings. */
struct claimed {
	struct mail_msg	 m;
	int64_t		 attempts;	/* tries before this one */
	int64_t		 claim;		/* our claimed_until */
	char		*str[6];
};

/* Frees the strings of a claimed message. */
static void
claimed_free(struct claimed *c)
{
	for (size_t i = 0; i < ARRAY_LEN(c->str); i++)
		free(c->str[i]);
	memset(c, 0, sizeof(*c));
}

/* Seconds a claim lasts: longer than any one try may take. */
static int64_t
claim_seconds(void)
{
	return conf.smtp_timeout + CLAIM_MARGIN;
}

/* Claims the next due message (or one whose claim expired) in one
 * transaction. Returns 1 with it in c, 0 if none is due, -1 on error. */
static int
claim_next(struct claimed *c)
{
	sqlite3_stmt	*s;
	int64_t		 now = now_unix();
	int		 rc;

	memset(c, 0, sizeof(*c));
	c->claim = now + claim_seconds();
	if (!db_begin())
		return -1;
	if ((s = db_stmt(ST_OUTBOX_CLAIM)) == NULL ||
	    !db_bind(s, "iii", c->claim, now, now)) {
		db_rollback();
		return -1;
	}
	rc = db_step(ST_OUTBOX_CLAIM);
	if (rc == DB_ROW) {
		c->m.id = sqlite3_column_int64(s, 0);
		for (int i = 0; i < 6; i++)
			c->str[i] = xstrdup(db_text(s, i + 1));
		c->m.kind = c->str[0];
		c->m.to_addr = c->str[1];
		c->m.to_name = c->str[2];
		c->m.subject = c->str[3];
		c->m.body_text = c->str[4];
		c->m.body_html = c->str[5];
		c->m.created_at = sqlite3_column_int64(s, 7);
		c->attempts = sqlite3_column_int64(s, 8);
	}
	db_done(ST_OUTBOX_CLAIM);
	if (rc == DB_ERROR || rc == DB_CONSTRAINT || !db_commit()) {
		db_rollback();
		claimed_free(c);
		return -1;
	}
	return rc == DB_ROW;
}

/* Marks a claimed message sent. Returns 1, or 0 on error (then it is
 * sent again once the claim expires). */
static int
mark_sent(const struct claimed *c)
{
	if (!db_begin())
		return 0;
	if (db_run(ST_OUTBOX_SENT, "ii", now_unix(), c->m.id) != DB_DONE ||
	    !db_commit()) {
		db_rollback();
		return 0;
	}
	return 1;
}

/* Counts a failed try of a claimed message: queued again after the
 * backoff, or failed for good after mail_max_attempts tries (at once
 * if permanent). Returns 1, or 0 on error. */
static int
mark_failed(const struct claimed *c, const char *error, int permanent,
    int64_t *next_at, int *gave_up)
{
	int64_t tries = c->attempts + 1;
	int64_t max = permanent ? 1 : conf.mail_max_attempts;

	*next_at = now_unix() + mail_backoff(tries);
	*gave_up = tries >= max;
	if (!db_begin())
		return 0;
	if (db_run(ST_OUTBOX_FAILED, "tiiii", error, *next_at, max,
	    c->m.id, c->claim) != DB_DONE || !db_commit()) {
		db_rollback();
		return 0;
	}
	return 1;
}

/* Builds and sends one claimed message with the configured transport.
 * Returns 1 if sent, else 0 with the reason in err; *permanent is set
 * when trying again cannot help. */
static int
deliver(const struct claimed *c, struct buf *err, int *permanent)
{
	struct buf	 msg;
	const char	*why = NULL;
	char		*from_name = NULL, *from_addr = NULL;
	char		*to_name = NULL, *to_addr = NULL;
	int		 ok = 0;

	*permanent = 0;
	buf_init(&msg);
	/* Only a bad recipient is hopeless; the settings were checked at
	 * start and may be fixed. */
	if (!mime_parse_mailbox(c->m.to_addr, &to_name, &to_addr)) {
		err_put(err, "the recipient's address is not one that mail "
		    "can use");
		*permanent = 1;
		goto out;
	}
	if (!mail_build(&msg, &c->m, &why) ||
	    !mime_parse_mailbox(conf.mail_from, &from_name, &from_addr)) {
		err_put(err, why != NULL ? why : "mail_from is not an address");
		goto out;
	}
	if (strcmp(conf.mail_transport, "smtp") == 0)
		ok = send_smtp(&msg, from_addr, to_addr, err);
	else if (strcmp(conf.mail_transport, "sendmail") == 0)
		ok = send_sendmail(&msg, err);
	else
		ok = send_dir(&msg, &c->m, err);
out:
	free(from_name);
	free(from_addr);
	free(to_name);
	free(to_addr);
	buf_free(&msg);
	return ok;
}

int
mail_deliver_due(int (*stop)(void), int *sent, int *failed)
{
	struct claimed	c;
	struct buf	err, when;
	int		rc, permanent, gave_up, ok = 1;
	int64_t		next_at;

	buf_init(&err);
	buf_init(&when);
	while (stop == NULL || !stop()) {
		if ((rc = claim_next(&c)) <= 0) {
			ok = rc == 0;
			break;
		}
		buf_reset(&err);
		if (deliver(&c, &err, &permanent)) {
			if (!mark_sent(&c)) {
				log_msg("mail: #%lld %s was sent but cannot "
				    "be marked sent; it will be sent again",
				    (long long)c.m.id, c.m.kind);
				ok = 0;
			} else
				log_msg("mail: #%lld %s sent (%s, try %lld)",
				    (long long)c.m.id, c.m.kind,
				    conf.mail_transport,
				    (long long)c.attempts + 1);
			if (sent != NULL)
				(*sent)++;
		} else {
			if (err.len == 0)
				buf_puts(&err, "unknown error");
			if (!mark_failed(&c, err.data, permanent, &next_at,
			    &gave_up)) {
				log_msg("mail: #%lld %s failed and cannot be "
				    "rescheduled", (long long)c.m.id,
				    c.m.kind);
				ok = 0;
			} else if (gave_up)
				log_msg("mail: #%lld %s failed (try %lld), "
				    "giving up: %s", (long long)c.m.id,
				    c.m.kind, (long long)c.attempts + 1,
				    err.data);
			else {
				buf_reset(&when);
				fmt_iso(&when, next_at);
				log_msg("mail: #%lld %s failed (try %lld of "
				    "%lld), next try %s: %s",
				    (long long)c.m.id, c.m.kind,
				    (long long)c.attempts + 1,
				    (long long)conf.mail_max_attempts,
				    when.data, err.data);
			}
			if (failed != NULL)
				(*failed)++;
		}
		claimed_free(&c);
		if (!ok)
			break;
	}
	buf_free(&err);
	buf_free(&when);
	return ok;
}

/* ------------------------------------------------------------------ */
/* pmbctl mail */

/* The signals that "mail run" waits for; blocked while it works, so a
 * stop request waits until the message in hand is done. */
static sigset_t run_signals;

/* Returns 1 if SIGTERM or SIGINT is waiting, else 0. */
static int
stop_pending(void)
{
	sigset_t p;

	if (sigpending(&p) != 0)
		return 0;
	return sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1;
}

/* pmbctl mail send */
static int
cmd_send(void)
{
	int sent = 0, failed = 0, ok;

	ok = mail_deliver_due(NULL, &sent, &failed);
	printf("mail: %d sent, %d failed\n", sent, failed);
	if (!ok)
		fprintf(stderr, "pmbctl: mail: a database error stopped "
		    "delivery\n");
	return ok ? 0 : 1;
}

/* pmbctl mail run */
static int
cmd_run(void)
{
	sigset_t	old;
	int		sig;

	sigemptyset(&run_signals);
	sigaddset(&run_signals, SIGTERM);
	sigaddset(&run_signals, SIGINT);
	sigaddset(&run_signals, SIGHUP);
	sigaddset(&run_signals, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &run_signals, &old) != 0) {
		fprintf(stderr, "pmbctl: sigprocmask: %s\n", strerror(errno));
		return 1;
	}
	log_msg("mail: delivering with the %s transport (pid %ld)",
	    conf.mail_transport, (long)getpid());
	for (;;) {
		struct timespec	ts = { MAIL_POLL_SECONDS, 0 };
		int		sent = 0, failed = 0;

		if (!mail_deliver_due(stop_pending, &sent, &failed))
			log_msg("mail: a database error stopped this round");
		if (stop_pending())
			break;
		sig = sigtimedwait(&run_signals, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	log_msg("mail: stopped");
	/* Take the stop signal, so that unblocking does not deliver it. */
	{
		struct timespec zero = { 0, 0 };

		while (sigtimedwait(&run_signals, NULL, &zero) > 0)
			;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* Prints one outbox row for "mail list". */
static void
print_row(const struct mail_info *mi, void *arg)
{
	struct buf *b = arg;

	buf_reset(b);
	fmt_iso(b, mi->created_at);
	printf("%-6lld %-7s %2lld tries  %s  %-14s %s", (long long)mi->id,
	    mi->status, (long long)mi->attempts, b->data, mi->kind,
	    mi->to_addr);
	if (strcmp(mi->status, "queued") == 0) {
		buf_reset(b);
		fmt_iso(b, mi->next_at);
		printf("  next %s", b->data);
	}
	if (*mi->last_error != '\0')
		printf("  error: %s", mi->last_error);
	putchar('\n');
}

/* pmbctl mail list [STATUS] */
static int
cmd_list(const char *status)
{
	struct buf	b;
	int64_t		counts[4];
	int		n;

	if (status != NULL && strcmp(status, "queued") &&
	    strcmp(status, "sending") && strcmp(status, "sent") &&
	    strcmp(status, "failed")) {
		fprintf(stderr, "pmbctl: the status is one of queued, "
		    "sending, sent, failed\n");
		return 1;
	}
	buf_init(&b);
	n = mail_list(status, 1000, 0, print_row, &b);
	buf_free(&b);
	if (n < 0 || !mail_counts(counts)) {
		fprintf(stderr, "pmbctl: cannot read the outbox\n");
		return 1;
	}
	printf("outbox: %lld queued, %lld sending, %lld sent, %lld failed\n",
	    (long long)counts[0], (long long)counts[1], (long long)counts[2],
	    (long long)counts[3]);
	return 0;
}

/* pmbctl mail retry ID */
static int
cmd_retry(const char *arg)
{
	struct buf	detail;
	int64_t		id;
	int		rc;

	if (!parse_int64(arg, 1, INT64_MAX, &id)) {
		fprintf(stderr, "pmbctl: expected a message number\n");
		return 1;
	}
	if (!db_begin()) {
		fprintf(stderr, "pmbctl: cannot start a transaction\n");
		return 1;
	}
	buf_init(&detail);
	buf_printf(&detail, "outbox #%lld", (long long)id);
	rc = mail_retry_now(id);
	if (rc == 1 && db_run(ST_AUDIT_INSERT, "intntt", now_unix(),
	    "mail retry", "", detail.data) != DB_DONE)
		rc = -1;
	buf_free(&detail);
	if (rc != 1 || !db_commit()) {
		db_rollback();
		if (rc == 0)
			fprintf(stderr, "pmbctl: no queued or failed message "
			    "%lld\n", (long long)id);
		else
			fprintf(stderr, "pmbctl: cannot change the outbox\n");
		return 1;
	}
	printf("message %lld is due now\n", (long long)id);
	return 0;
}

/* Checks the settings that delivery needs; returns NULL or a reason. */
static const char *
settings_problem(void)
{
	char	*name, *addr;
	int	 from_ok, admin_ok;

	from_ok = mime_parse_mailbox(conf.mail_from, &name, &addr);
	free(name);
	free(addr);
	admin_ok = mime_parse_mailbox(conf.admin_email, &name, &addr);
	free(name);
	free(addr);
	if (!from_ok)
		return "mail_from: expected \"Name <address>\" or an address";
	if (!admin_ok)
		return "admin_email: expected an address";
	if (strcmp(conf.mail_transport, "smtp") == 0 &&
	    strncmp(conf.smtp_url, "smtp://", 7) != 0 &&
	    strncmp(conf.smtp_url, "smtps://", 8) != 0)
		return "smtp_url: expected smtp://HOST:PORT or "
		    "smtps://HOST:PORT";
	return NULL;
}

int
mail_command(int argc, char *argv[])
{
	const char	*why;
	char		 err[512];
	int		 rc, ro = 0;

	if (argc < 1)
		return -1;
	if (argc == 1 && (strcmp(argv[0], "send") == 0 ||
	    strcmp(argv[0], "run") == 0))
		;
	else if (strcmp(argv[0], "list") == 0 && argc <= 2)
		ro = 1;
	else if (!(strcmp(argv[0], "retry") == 0 && argc == 2))
		return -1;
	if (!ro && (why = settings_problem()) != NULL) {
		fprintf(stderr, "pmbctl: %s\n", why);
		return 1;
	}
	if (access(conf.database, F_OK) != 0) {
		fprintf(stderr, "pmbctl: %s: no database (run \"pmbctl "
		    "init\")\n", conf.database);
		return 1;
	}
	if (!db_open(conf.database, ro ? DB_READONLY : 0, err, sizeof(err)) ||
	    !db_check_version(err, sizeof(err))) {
		db_close();
		fprintf(stderr, "pmbctl: %s\n", err);
		return 1;
	}
	/* A sendmail command that stops reading must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		db_close();
		fprintf(stderr, "pmbctl: cannot start libcurl\n");
		return 1;
	}
	if (strcmp(argv[0], "send") == 0)
		rc = cmd_send();
	else if (strcmp(argv[0], "run") == 0)
		rc = cmd_run();
	else if (strcmp(argv[0], "list") == 0)
		rc = cmd_list(argc == 2 ? argv[1] : NULL);
	else
		rc = cmd_retry(argv[1]);
	curl_global_cleanup();
	db_close();
	return rc;
}
