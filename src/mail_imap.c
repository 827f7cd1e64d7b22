/* mail_imap.c: the IMAP intake, one pass over imap_url's mailbox.
 *
 * libcurl makes the connection (CURLOPT_CONNECT_ONLY): TLS for imaps://,
 * STARTTLS for imap:// (required before a password goes to another
 * machine), the certificate's check, the greeting and the login with the
 * best mechanism the server offers. Then this file speaks IMAP over that
 * connection (curl_easy_send and curl_easy_recv), by UID only:
 *   SELECT, UID SEARCH UNKEYWORD PmbStored (ALL with imap_done_folder),
 *   then for each UID, oldest first: UID FETCH N BODY.PEEK[] (the .PEEK
 *   leaves \Seen alone), mail_intake, and only after its COMMIT (or a
 *   deliberate drop) UID STORE N +FLAGS.SILENT (PmbStored) or UID MOVE.
 * Why not libcurl's own requests (measured with libcurl 7.88.1 and
 * Dovecot 2.3.19; bench/README.md): its ;UID=N URL fetches BODY[], which
 * sets \Seen; and a custom request "UID FETCH N BODY.PEEK[]" hands the
 * message to the header callback line by line, as if each were a
 * response line: a line of the message that starts with the command's
 * tag ("A005 OK") ends the command there and the rest of the message is
 * read as answers, lines over 16 KiB are cut, and a message over 300 KiB
 * fails the transfer. Here a literal {N} is read as exactly N bytes. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "conf.h"
#include "mail_imap.h"
#include "mail_intake.h"
#include "util.h"

#define IMAP_TIMEOUT	30	/* seconds: to connect and log in; the
				 * longest silence while an answer is due */
/* A response without its literals, at most (a SEARCH of many UIDs). */
#define IMAP_TEXT_MAX	(8 * 1024 * 1024)
#define IMAP_LITERAL_MAX	((uint64_t)1 << 40)
#define IMAP_KEYWORD	"PmbStored"
#define IMAP_ERR_MAX	300	/* bytes of a reason */
#define IMAP_CHUNK	16384	/* bytes asked of curl_easy_recv at once */

/* One connection and the response at hand. */
struct imap {
	CURL		*c;
	curl_socket_t	 sock;
	struct buf	 in;	/* received; from off on, not yet read */
	size_t		 off;
	unsigned	 tag;	/* the last command's number */
	struct buf	 text;	/* the response, each literal as {N} */
	struct buf	 lit;	/* the literal that followed "BODY[] " */
	uint64_t	 lit_size;	/* its size (lit may keep less) */
	int		 has_lit;
	const char	*host;	/* imap_url's host, for reasons */
	struct buf	*err;
	/* The transport: conn_recv and conn_send over the connection, or
	 * mem_recv and mem_send for mail_imap_read (tests/fuzz). recv
	 * appends more of the server's bytes to in; send sends len bytes
	 * of s. Each returns 1, or 0 after an error (its reason in err). */
	int		(*recv)(struct imap *);
	int		(*send)(struct imap *, const char *s, size_t len);
	const char	*mem;	/* mem_recv's bytes not yet given */
	size_t		 mem_len;
	size_t		 mem_step;	/* given at most at once (0: all) */
};

/* UIDs found by SEARCH. */
struct uids {
	uint32_t	*v;
	size_t		 n, cap;
};

/* Puts "imap: HOST: " and the reason into im->err (the first reason
 * wins), on one line and shortened. Returns 0. */
static int
imap_fail(struct imap *im, const char *fmt, ...)
{
	struct buf	b;
	va_list		ap;

	if (im->err->len > 0)
		return 0;
	buf_init(&b);
	buf_printf(&b, "imap: %s: ", im->host != NULL ? im->host : "?");
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < b.len && im->err->len < IMAP_ERR_MAX; i++)
		buf_putc(im->err, (unsigned char)b.data[i] < 0x20 ? ' ' :
		    b.data[i]);
	buf_free(&b);
	return 0;
}

/* Waits until the connection is ready for events (POLLIN, POLLOUT), at
 * most IMAP_TIMEOUT s. Returns 1, or 0 after an error. */
static int
imap_wait(struct imap *im, short events)
{
	struct pollfd	pf = { im->sock, events, 0 };
	int		n;

	do
		n = poll(&pf, 1, IMAP_TIMEOUT * 1000);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		return imap_fail(im, "no answer within %d s", IMAP_TIMEOUT);
	if (n < 0)
		return imap_fail(im, "poll: %s", strerror(errno));
	return 1;
}

/* Receives more of the server's bytes from the connection into im->in.
 * Returns 1, or 0 after an error. */
static int
conn_recv(struct imap *im)
{
	char	 chunk[IMAP_CHUNK];
	size_t	 n;

	for (;;) {
		CURLcode rc = curl_easy_recv(im->c, chunk, sizeof(chunk), &n);

		if (rc == CURLE_OK && n > 0) {
			buf_append(&im->in, chunk, n);
			return 1;
		}
		if (rc == CURLE_OK)
			return imap_fail(im, "the server closed the "
			    "connection");
		if (rc != CURLE_AGAIN)
			return imap_fail(im, "%s", curl_easy_strerror(rc));
		if (!imap_wait(im, POLLIN))
			return 0;
	}
}

/* Receives more of the server's bytes into im->in (first dropping what
 * was read), through im->recv. Returns 1, or 0 after an error. */
static int
imap_fill(struct imap *im)
{
	if (im->off > 0) {
		memmove(im->in.data, im->in.data + im->off,
		    im->in.len - im->off);
		im->in.len -= im->off;
		im->off = 0;
	}
	return im->recv(im);
}

/* Sends len bytes of s over the connection. Returns 1, or 0 after an
 * error. */
static int
conn_send(struct imap *im, const char *s, size_t len)
{
	while (len > 0) {
		size_t		n = 0;
		CURLcode	rc = curl_easy_send(im->c, s, len, &n);

		if (rc == CURLE_AGAIN) {
			if (!imap_wait(im, POLLOUT))
				return 0;
			continue;
		}
		if (rc != CURLE_OK)
			return imap_fail(im, "%s", curl_easy_strerror(rc));
		s += n;
		len -= n;
	}
	return 1;
}

/* Appends the next line of the response (to its LF) to im->text,
 * without its CRLF. Returns 1, or 0 after an error. */
static int
imap_line(struct imap *im)
{
	for (;;) {
		size_t	 avail = im->in.len - im->off;
		/* Before the first bytes, in.data is NULL: NULL + 0 is
		 * undefined behaviour (found by tests/fuzz/fuzz_imap.c). */
		char	*s = avail > 0 ? im->in.data + im->off : NULL;
		char	*lf = s != NULL ? memchr(s, '\n', avail) : NULL;

		if (lf != NULL) {
			size_t n = (size_t)(lf - s);
			size_t keep = n > 0 && s[n - 1] == '\r' ? n - 1 : n;

			if (im->text.len + keep > IMAP_TEXT_MAX)
				break;
			buf_append(&im->text, s, keep);
			im->off += n + 1;
			return 1;
		}
		if (im->text.len + avail > IMAP_TEXT_MAX)
			break;
		if (!imap_fill(im))
			return 0;
	}
	return imap_fail(im, "an answer over %d bytes", IMAP_TEXT_MAX);
}

/* Reads a literal's n bytes: kept in im->lit when keep (up to
 * INTAKE_MAX_BYTES of them: mail_intake_sized keeps a bigger message
 * cut), else passed over. Returns 1, or 0 after an error. */
static int
imap_literal(struct imap *im, uint64_t n, int keep)
{
	const size_t most = (size_t)INTAKE_MAX_BYTES;

	if (keep)
		buf_reserve(&im->lit, n < most ? (size_t)n : most);
	while (n > 0) {
		size_t avail = im->in.len - im->off, take;

		if (avail == 0) {
			if (!imap_fill(im))
				return 0;
			continue;
		}
		take = avail < n ? avail : (size_t)n;
		if (keep && im->lit.len < most)
			buf_append(&im->lit, im->in.data + im->off,
			    take < most - im->lit.len ? take :
			    most - im->lit.len);
		im->off += take;
		n -= take;
	}
	return 1;
}

/* If the line s (len bytes) ends with a literal's size "{N}", sets *n
 * and *brace (the offset of its "{") and returns 1; else 0. */
static int
literal_at_end(const char *s, size_t len, uint64_t *n, size_t *brace)
{
	size_t i;

	if (len < 3 || s[len - 1] != '}')
		return 0;
	for (i = len - 1; i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'; i--)
		;
	if (i == 0 || i == len - 1 || s[i - 1] != '{' || len - 1 - i > 13)
		return 0;
	*n = 0;
	for (size_t j = i; j < len - 1; j++)
		*n = *n * 10 + (uint64_t)(s[j] - '0');
	*brace = i - 1;
	return 1;
}

/* Reads one whole response into im->text, each literal in it replaced
 * by its "{N}" (so the text holds only the server's own words); the
 * literal that follows "BODY[] " goes to im->lit. Returns 1, or 0 after
 * an error. */
static int
imap_response(struct imap *im)
{
	buf_reset(&im->text);
	buf_reset(&im->lit);
	im->has_lit = 0;
	for (;;) {
		size_t		 start = im->text.len, brace;
		uint64_t	 n;
		int		 keep;

		if (!imap_line(im))
			return 0;
		if (!literal_at_end(im->text.data + start,
		    im->text.len - start, &n, &brace))
			return 1;
		if (n > IMAP_LITERAL_MAX)
			return imap_fail(im, "a literal of %llu bytes",
			    (unsigned long long)n);
		brace += start;
		keep = !im->has_lit && brace >= 7 &&
		    memcmp(im->text.data + brace - 7, "BODY[] ", 7) == 0;
		if (!imap_literal(im, n, keep))
			return 0;
		if (keep)
			im->lit_size = n;
		im->has_lit |= keep;
	}
}

/* Sends the command "TAG what", then reads its responses up to the
 * tagged one, giving each untagged one to untagged(im, arg) if not NULL
 * (which returns 1, or 0 after an error). Returns 1 when the server
 * said OK (its words are then in im->text); else 0 with them in err. */
static int
imap_command(struct imap *im, const char *what,
    int (*untagged)(struct imap *, void *), void *arg)
{
	struct buf	 line;
	char		 tag[32];
	size_t		 tlen;
	int		 ok;

	tlen = (size_t)snprintf(tag, sizeof(tag), "p%u ", ++im->tag);
	buf_init(&line);
	buf_printf(&line, "%s%s\r\n", tag, what);
	ok = im->send(im, line.data, line.len);
	buf_free(&line);
	while (ok && (ok = imap_response(im))) {
		const char *t = im->text.data != NULL ? im->text.data : "";

		if (strncmp(t, tag, tlen) == 0) {
			if (strncmp(t + tlen, "OK", 2) != 0)
				ok = imap_fail(im, "%s: the server said: %s",
				    what, t + tlen);
			break;
		}
		if (strncmp(t, "* BYE", 5) == 0)
			ok = imap_fail(im, "%s: the server ended the "
			    "session: %s", what, t + 2);
		else if (t[0] == '+')
			ok = imap_fail(im, "%s: an unexpected \"+\"", what);
		else if (t[0] == '*' && untagged != NULL)
			ok = untagged(im, arg);
	}
	return ok;
}

/* Returns 1 if host is this machine (loopback). */
static int
host_is_local(const char *host)
{
	return strcmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "[::1]") == 0;
}

/* Puts mailbox, IMAP-quoted ("INBOX" when the URL names none), into
 * out. Returns 1, or 0 after an error: only printable ASCII is taken
 * (a name with other letters is written as the server lists it, in
 * IMAP's modified UTF-7). what names the setting. */
static int
imap_quote(struct imap *im, struct buf *out, const char *mailbox,
    const char *what)
{
	if (*mailbox == '\0')
		mailbox = "INBOX";
	if (strlen(mailbox) > 200)
		return imap_fail(im, "%s: the mailbox name is too long", what);
	buf_putc(out, '"');
	for (const char *p = mailbox; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return imap_fail(im, "%s: the mailbox name holds a "
			    "character IMAP does not take as is (write it "
			    "as the server lists it, in modified UTF-7)",
			    what);
		if (*p == '"' || *p == '\\')
			buf_putc(out, '\\');
		buf_putc(out, *p);
	}
	buf_putc(out, '"');
	return 1;
}

/* Reads imap_url's host (into *host, for curl_free) and its mailbox,
 * quoted, into mailbox. Returns 1, or 0 after an error. */
static int
imap_url_parts(struct imap *im, char **host, struct buf *mailbox)
{
	CURLU	*u = curl_url();
	char	*path = NULL, *name;
	int	 ok = 0, len;

	*host = NULL;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, conf.imap_url, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_HOST, host, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_PATH, &path, 0) !=
	    CURLUE_OK) {
		imap_fail(im, "imap_url: not a URL that libcurl takes");
		goto out;
	}
	im->host = *host;
	/* ";UIDVALIDITY=..." and such are libcurl's, not the name's. */
	path[strcspn(path, ";")] = '\0';
	if ((name = curl_easy_unescape(im->c, path[0] == '/' ? path + 1 :
	    path, 0, &len)) == NULL) {
		imap_fail(im, "imap_url: cannot decode the mailbox name");
		goto out;
	}
	ok = (size_t)len == strlen(name) &&
	    imap_quote(im, mailbox, name, "imap_url");
	if (!ok)
		imap_fail(im, "imap_url: the mailbox name holds a NUL");
	curl_free(name);
out:
	curl_free(path);
	curl_url_cleanup(u);
	return ok;
}

/* Connects to imap_url's server and logs in with imap_user and
 * imap_password (libcurl: TLS, greeting, login). Returns 1, or 0 after
 * an error (its reason never holds the password). */
static int
imap_open(struct imap *im)
{
	char		errbuf[CURL_ERROR_SIZE] = "";
	CURLcode	rc = CURLE_OK;
	long		tls = CURLUSESSL_TRY;

	if (strncmp(conf.imap_url, "imap://", 7) == 0 &&
	    !host_is_local(im->host))
		tls = CURLUSESSL_ALL;
#define SETOPT(opt, val) do {						\
		if (rc == CURLE_OK)					\
			rc = curl_easy_setopt(im->c, opt, val);		\
	} while (0)
	SETOPT(CURLOPT_URL, conf.imap_url);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(CURLOPT_PROTOCOLS_STR, "imap,imaps");
#else
	SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_IMAP | CURLPROTO_IMAPS));
#endif
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(CURLOPT_CONNECT_ONLY, 1L);
	SETOPT(CURLOPT_USE_SSL, tls);
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)IMAP_TIMEOUT);
	SETOPT(CURLOPT_TIMEOUT, (long)IMAP_TIMEOUT);
	if (*conf.imap_user != '\0') {
		SETOPT(CURLOPT_USERNAME, conf.imap_user);
		SETOPT(CURLOPT_PASSWORD, conf.imap_password);
	}
#undef SETOPT
	if (rc != CURLE_OK)
		return imap_fail(im, "setting up libcurl: %s",
		    curl_easy_strerror(rc));
	if ((rc = curl_easy_perform(im->c)) != CURLE_OK) {
		int more = *errbuf != '\0' &&
		    strcmp(errbuf, curl_easy_strerror(rc)) != 0;

		return imap_fail(im, "%s%s%s%s", curl_easy_strerror(rc),
		    more ? ": " : "", more ? errbuf : "",
		    rc == CURLE_LOGIN_DENIED ? " (check imap_user and "
		    "imap_password)" : "");
	}
	if (curl_easy_getinfo(im->c, CURLINFO_ACTIVESOCKET, &im->sock) !=
	    CURLE_OK || im->sock == CURL_SOCKET_BAD)
		return imap_fail(im, "libcurl gave no connection");
	return 1;
}

/* SELECT's untagged responses: *arg (int) becomes 0 when the server's
 * PERMANENTFLAGS allow neither new keywords (\*) nor PmbStored. */
static int
select_seen(struct imap *im, void *arg)
{
	const char *p = strstr(im->text.data, "[PERMANENTFLAGS (");

	if (p != NULL && strstr(p, "\\*") == NULL &&
	    strstr(p, " " IMAP_KEYWORD) == NULL &&
	    strstr(p, "(" IMAP_KEYWORD) == NULL)
		*(int *)arg = 0;
	return 1;
}

/* Selects the mailbox (quoted), read-write, and checks that messages
 * can be marked. Returns 1, or 0 after an error. */
static int
imap_select(struct imap *im, const char *mailbox)
{
	struct buf	cmd;
	int		keywords = 1, ok;

	buf_init(&cmd);
	buf_printf(&cmd, "SELECT %s", mailbox);
	ok = imap_command(im, cmd.data, select_seen, &keywords);
	buf_free(&cmd);
	if (ok && strstr(im->text.data, "[READ-ONLY]") != NULL)
		return imap_fail(im, "the mailbox %s is read-only: taken "
		    "messages could not be marked", mailbox);
	if (ok && !keywords && *conf.imap_done_folder == '\0')
		return imap_fail(im, "the mailbox %s does not keep keywords "
		    "such as %s: set imap_done_folder", mailbox,
		    IMAP_KEYWORD);
	return ok;
}

/* SEARCH's untagged responses: the UIDs of "* SEARCH 3 4 9" into arg
 * (struct uids). */
static int
search_seen(struct imap *im, void *arg)
{
	struct uids	*u = arg;
	const char	*p = im->text.data;

	if (strncmp(p, "* SEARCH", 8) != 0)
		return 1;
	for (p += 8; *p == ' '; ) {
		char		*end;
		unsigned long	 v = strtoul(p + 1, &end, 10);

		if (end == p + 1 || v == 0 || v > UINT32_MAX)
			break;
		if (u->n == u->cap) {
			u->cap = u->cap ? u->cap * 2 : 64;
			u->v = xrealloc(u->v, u->cap * sizeof(*u->v));
		}
		u->v[u->n++] = (uint32_t)v;
		p = end;
	}
	return 1;
}

/* Orders two UIDs for qsort. */
static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Searches the selected mailbox for the messages not yet taken: their
 * UIDs into u, in order (a UID the server said twice is there twice,
 * side by side). Returns 1, or 0 after an error. */
static int
imap_search(struct imap *im, struct uids *u)
{
	int ok;

	ok = imap_command(im, *conf.imap_done_folder != '\0' ?
	    "UID SEARCH ALL" : "UID SEARCH UNKEYWORD " IMAP_KEYWORD,
	    search_seen, u);
	if (ok && u->n > 1)
		qsort(u->v, u->n, sizeof(*u->v), uid_cmp);
	return ok;
}

/* What is wanted of a FETCH: the message of one UID. */
struct fetch {
	uint32_t	 uid;
	struct buf	*msg;	/* gets the message (INTAKE_MAX_BYTES at most) */
	uint64_t	 size;	/* its size on the server */
	int		 got;
};

/* FETCH's untagged responses: the BODY[] literal of "* SEQ FETCH (UID N
 * BODY[] {LEN}...)" into f->msg when N is f->uid; other FETCH responses
 * (flags another client changed) are passed over. */
static int
fetch_seen(struct imap *im, void *arg)
{
	struct fetch	*f = arg;
	const char	*p = strstr(im->text.data, " FETCH (");
	const char	*u;
	struct buf	 swap;

	if (p == NULL || !im->has_lit)
		return 1;
	for (u = strstr(p, "UID "); u != NULL; u = strstr(u + 4, "UID "))
		if (u[-1] == '(' || u[-1] == ' ')
			break;
	if (u == NULL || strtoul(u + 4, NULL, 10) != f->uid)
		return 1;
	swap = *f->msg;
	*f->msg = im->lit;
	im->lit = swap;
	buf_reset(&im->lit);
	f->size = im->lit_size;
	f->got = 1;
	return 1;
}

/* Fetches the message f->uid without \Seen into f (f->got stays 0 if
 * the server no longer has it). Returns 1, or 0 after an error. */
static int
imap_fetch(struct imap *im, struct fetch *f)
{
	struct buf	cmd;
	int		ok;

	buf_init(&cmd);
	buf_printf(&cmd, "UID FETCH %u BODY.PEEK[]", f->uid);
	ok = imap_command(im, cmd.data, fetch_seen, f);
	buf_free(&cmd);
	return ok;
}

/* Marks the message uid as taken: PmbStored, or moved to
 * imap_done_folder. Returns 1, or 0 after an error. */
static int
imap_mark(struct imap *im, uint32_t uid)
{
	struct buf	cmd;
	int		ok = 1;

	buf_init(&cmd);
	if (*conf.imap_done_folder == '\0')
		buf_printf(&cmd, "UID STORE %u +FLAGS.SILENT (%s)", uid,
		    IMAP_KEYWORD);
	else {
		buf_printf(&cmd, "UID MOVE %u ", uid);
		ok = imap_quote(im, &cmd, conf.imap_done_folder,
		    "imap_done_folder");
	}
	if (ok)
		ok = imap_command(im, cmd.data, NULL, NULL);
	buf_free(&cmd);
	return ok;
}

/* Takes the message uid: fetched without \Seen, stored (mail_intake),
 * then marked. *gone is set if the server no longer has it. Returns
 * 1, or 0 after an error (a message the database could not store now
 * is left unmarked). */
static int
imap_take(struct imap *im, uint32_t uid, struct imap_counts *n, int *gone)
{
	struct intake_result	res;
	struct buf		msg;
	struct fetch		f = { uid, &msg, 0, 0 };
	int			ok;

	*gone = 0;
	buf_init(&msg);
	ok = imap_fetch(im, &f);
	if (ok && !f.got)
		*gone = 1;	/* expunged since the search */
	if (!ok || !f.got)
		goto out;
	switch (mail_intake_sized(msg.data != NULL ? msg.data : "", msg.len,
	    (size_t)f.size, "imap", &res)) {
	case INTAKE_STORED:
		n->stored++;
		break;
	case INTAKE_DUPLICATE:
		n->duplicate++;
		break;
	case INTAKE_DROPPED:
		n->dropped++;
		break;
	default:
		/* Not the server's fault: no "imap: HOST: " before it. */
		buf_printf(im->err, "the database could not store the message "
		    "of UID %u now (busy or failing); it stays in the mailbox, "
		    "unmarked, for the next pass", uid);
		ok = 0;
		goto out;
	}
	if (n->each != NULL)
		n->each(uid, &res);
	ok = imap_mark(im, uid);
out:
	buf_free(&msg);
	return ok;
}

/* Searches the selected mailbox for the messages not yet taken and
 * takes the oldest IMAP_PASS_MAX of them (stop() may end it sooner).
 * Returns 1, or 0 after an error. */
static int
imap_take_all(struct imap *im, struct imap_counts *n, int (*stop)(void))
{
	struct uids	u = { NULL, 0, 0 };
	size_t		i, gone = 0;
	int		ok, g;

	ok = imap_search(im, &u);
	for (i = 0; ok && i < u.n && i < IMAP_PASS_MAX; i++) {
		if (i > 0 && u.v[i] == u.v[i - 1]) {
			gone++;
			continue;
		}
		if (stop != NULL && stop())
			break;
		ok = imap_take(im, u.v[i], n, &g);
		gone += (size_t)g;
	}
	n->left = (int)(u.n - gone - (size_t)(n->stored + n->duplicate +
	    n->dropped));
	free(u.v);
	return ok;
}

int
mail_imap_pass(struct imap_counts *n, int (*stop)(void), struct buf *err)
{
	struct imap	 im;
	struct buf	 mailbox, bye;
	char		*host = NULL;
	int		 ok;

	n->stored = n->duplicate = n->dropped = n->left = 0;
	memset(&im, 0, sizeof(im));
	buf_init(&im.in);
	buf_init(&im.text);
	buf_init(&im.lit);
	buf_init(&mailbox);
	im.err = err;
	im.recv = conn_recv;
	im.send = conn_send;
	if ((im.c = curl_easy_init()) == NULL)
		ok = imap_fail(&im, "cannot start libcurl");
	else
		ok = imap_url_parts(&im, &host, &mailbox) && imap_open(&im) &&
		    imap_select(&im, mailbox.data) &&
		    imap_take_all(&im, n, stop);
	if (ok) {
		/* A failed LOGOUT loses nothing: everything is marked. */
		buf_init(&bye);
		im.err = &bye;
		imap_command(&im, "LOGOUT", NULL, NULL);
		buf_free(&bye);
	}
	if (im.c != NULL)
		curl_easy_cleanup(im.c);
	curl_free(host);
	buf_free(&im.in);
	buf_free(&im.text);
	buf_free(&im.lit);
	buf_free(&mailbox);
	return ok;
}

/* mail_imap.c's transport for mail_imap_read: gives im->in the next
 * im->mem_step bytes of im->mem (all that are left when 0), as a
 * connection gives what has come. im->in is then cut to its exact size,
 * so that AddressSanitizer catches a read past what was received.
 * Returns 1, or 0 when nothing is left (as when the server closes). */
static int
mem_recv(struct imap *im)
{
	size_t n = im->mem_step > 0 && im->mem_step < im->mem_len ?
	    im->mem_step : im->mem_len;

	if (n == 0)
		return imap_fail(im, "the server closed the connection");
	buf_append(&im->in, im->mem, n);
	im->mem += n;
	im->mem_len -= n;
	im->in.data = xrealloc(im->in.data, im->in.len + 1);
	im->in.cap = im->in.len + 1;
	return 1;
}

/* mail_imap_read's commands go nowhere. Returns 1. */
static int
mem_send(struct imap *im, const char *s, size_t len)
{
	(void)im;
	(void)s;
	(void)len;
	return 1;
}

int
mail_imap_read(enum imap_step step, uint32_t uid, const char *data,
    size_t len, size_t piece, struct imap_read *out, struct buf *err)
{
	struct imap	im;
	struct uids	u = { NULL, 0, 0 };
	struct fetch	f = { uid, &out->msg, 0, 0 };
	int		ok = 0;

	memset(&im, 0, sizeof(im));
	buf_init(&im.in);
	buf_init(&im.text);
	buf_init(&im.lit);
	im.err = err;
	im.host = "memory";
	im.recv = mem_recv;
	im.send = mem_send;
	im.mem = data;
	im.mem_len = len;
	im.mem_step = piece;
	im.tag = (unsigned)step;	/* the next is a real pass's: p1... */
	switch (step) {
	case IMAP_STEP_SELECT:
		ok = imap_select(&im, "\"INBOX\"");
		break;
	case IMAP_STEP_SEARCH:
		ok = imap_search(&im, &u);
		break;
	case IMAP_STEP_FETCH:
		ok = imap_fetch(&im, &f);
		break;
	case IMAP_STEP_MARK:
		ok = imap_mark(&im, uid);
		break;
	}
	out->uids = u.v;
	out->nuids = u.n;
	out->size = f.size;
	out->got = f.got;
	buf_free(&im.in);
	buf_free(&im.text);
	buf_free(&im.lit);
	return ok;
}
