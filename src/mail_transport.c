/* mail_transport.c: the dir, sendmail and smtp transports. Each returns
 * 1 when the message was handed over, else 0 with a one-line reason in
 * err (never a password or the message). */
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "conf.h"
#include "mail_token.h"
#include "mail_transport.h"
#include "util.h"

#define ERROR_MAX	300	/* bytes of an error kept in last_error */
#define OUTPUT_MAX	2048	/* bytes of a sendmail command's output kept */
#define SENDMAIL_ARGS	32	/* words of sendmail_command */
/* reply_address's local part: with "+b-", 18 digits, "-" and a
 * signature of 18 it fills the 64 characters an address allows. */
#define REPLY_LOCAL_MAX	24
#define KIND_MAX	40	/* bytes of the kind in a file name */

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

/* A sendmail command at work: what it is fed and what it writes. */
struct child {
	pid_t		 pid;
	int		 to, from;	/* its stdin and output; -1 closed */
	int		 broken;	/* its stdin takes no more */
	const struct buf *lf;		/* the message it is fed */
	size_t		 off;		/* how much of it went in */
	struct buf	*out;		/* the start of what it wrote */
	int		 status;	/* its wait status once it exited */
};

/* Feeds c its message and drains its output together, so neither side
 * can block the other, until it exits. At the deadline (now_ms) it is
 * killed. Returns 1 if it exited, else 0 with the reason in e (it is
 * then still to be waited for). */
static int
child_talk(struct child *c, double deadline, const char *name,
    struct buf *e)
{
	for (;;) {
		struct pollfd	pf[2];
		nfds_t		n = 0;
		double		left = deadline - now_ms();
		char		chunk[512];
		ssize_t		r = -1;

		if (left <= 0) {
			kill(c->pid, SIGKILL);
			buf_printf(e, "sendmail: %s did not finish within "
			    "%lld s", name, (long long)conf.smtp_timeout);
			return 0;
		}
		if (c->to >= 0 && !c->broken) {
			pf[n].fd = c->to;
			pf[n++].events = POLLOUT;
		}
		if (c->from >= 0) {
			pf[n].fd = c->from;
			pf[n++].events = POLLIN;
		}
		if (n > 0 && poll(pf, n, left < 100 ? (int)left + 1 : 100) <
		    0 && errno != EINTR) {
			buf_printf(e, "sendmail: poll: %s", strerror(errno));
			kill(c->pid, SIGKILL);
			return 0;
		}
		if (n == 0)
			usleep(20000);
		if (c->to >= 0 && !c->broken && c->off < c->lf->len) {
			r = write(c->to, c->lf->data + c->off,
			    c->lf->len - c->off);
			if (r > 0)
				c->off += (size_t)r;
			else if (r < 0 && errno != EAGAIN && errno != EINTR)
				c->broken = 1;	/* EPIPE: it stopped reading */
		}
		if (c->to >= 0 && (c->off == c->lf->len || c->broken)) {
			close(c->to);
			c->to = -1;
		}
		while (c->from >= 0 &&
		    (r = read(c->from, chunk, sizeof(chunk))) != 0) {
			if (r < 0) {
				if (errno != EAGAIN && errno != EINTR) {
					close(c->from);
					c->from = -1;
				}
				break;
			}
			if (c->out->len < OUTPUT_MAX)
				buf_append(c->out, chunk, (size_t)r);
		}
		if (c->from >= 0 && r == 0) {
			close(c->from);
			c->from = -1;
		}
		/* A child that left a daemon holding its output is done
		 * when it exits. */
		if (c->to < 0) {
			pid_t w = waitpid(c->pid, &c->status, WNOHANG);

			if (w == c->pid) {
				/* What it wrote before exiting is all in
				 * the pipe now: read the rest (its last
				 * words, the error, may have come after
				 * the read above). */
				while (c->from >= 0 && c->out->len <
				    OUTPUT_MAX && (r = read(c->from, chunk,
				    sizeof(chunk))) > 0)
					buf_append(c->out, chunk, (size_t)r);
				return 1;
			}
			if (w < 0 && errno != EINTR) {
				buf_printf(e, "sendmail: waitpid: %s",
				    strerror(errno));
				return 0;
			}
		}
	}
}

/* Splits cmd (sendmail_command, changed) into argv (SENDMAIL_ARGS + 3
 * slots), with "-f envelope" added unless envelope is NULL. Returns 1,
 * or 0 if cmd is empty or has too many words. */
static int
sendmail_argv(char *cmd, char *argv[], const char *envelope)
{
	int argc = split_words(cmd, argv, SENDMAIL_ARGS + 1);

	if (argc <= 0)
		return 0;
	if (envelope != NULL) {
		argv[argc++] = "-f";
		argv[argc++] = (char *)envelope;
		argv[argc] = NULL;
	}
	return 1;
}

/* Pipes the message (with LF line ends, as local programs expect) to
 * sendmail_command, split at spaces and run without a shell, with
 * "-f envelope" added unless envelope is NULL; success is exit status 0.
 * The command is killed after smtp_timeout seconds. */
static int
send_sendmail(const struct buf *msg, const char *envelope, struct buf *err)
{
	char		*cmd = xstrdup(conf.sendmail_command);
	char		*argv[SENDMAIL_ARGS + 3];
	struct buf	 lf, out, e;
	struct child	 c = { .to = -1, .from = -1, .lf = &lf, .out = &out };
	int		 in[2] = { -1, -1 }, outp[2] = { -1, -1 };
	int		 ok = 0;
	double		 deadline = now_ms() + (double)conf.smtp_timeout * 1000;

	buf_init(&lf);
	buf_init(&out);
	buf_init(&e);
	for (size_t i = 0; i < msg->len; i++)
		if (!(msg->data[i] == '\r' && i + 1 < msg->len &&
		    msg->data[i + 1] == '\n'))
			buf_putc(&lf, msg->data[i]);
	if (!sendmail_argv(cmd, argv, envelope)) {
		buf_puts(&e, "sendmail: sendmail_command is empty or has "
		    "too many words");
		goto out;
	}
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
		buf_printf(&e, "sendmail: pipe: %s", strerror(errno));
		goto out;
	}
	if ((c.pid = fork()) < 0) {
		buf_printf(&e, "sendmail: fork: %s", strerror(errno));
		goto out;
	}
	if (c.pid == 0)
		sendmail_child(in[0], outp[1], argv);
	close(in[0]);
	close(outp[1]);
	c.to = in[1];
	c.from = outp[0];
	in[0] = in[1] = outp[0] = outp[1] = -1;
	if (fcntl(c.to, F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(c.from, F_SETFL, O_NONBLOCK) != 0)
		c.broken = 1;
	if (!child_talk(&c, deadline, argv[0], &e))
		while (waitpid(c.pid, &c.status, 0) < 0 && errno == EINTR)
			;
	if (e.len > 0)
		goto out;
	if (WIFSIGNALED(c.status))
		buf_printf(&e, "sendmail: %s was killed by signal %d",
		    argv[0], WTERMSIG(c.status));
	else if (WEXITSTATUS(c.status) != 0)
		buf_printf(&e, "sendmail: %s exited with status %d",
		    argv[0], WEXITSTATUS(c.status));
	else if (c.off < lf.len)
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
	if (c.to >= 0)
		close(c.to);
	if (c.from >= 0)
		close(c.from);
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

/* Where the SMTP server's answers go (mail_transport_answers), or NULL. */
static struct buf *answers;

void
mail_transport_answers(struct buf *b)
{
	answers = b;
}

/* CURLOPT_DEBUGFUNCTION: keeps the server's answers (what curl calls
 * incoming headers), nothing that the client sent. */
static int
smtp_answer(CURL *c, curl_infotype type, char *data, size_t n, void *arg)
{
	(void)c;
	if (type == CURLINFO_HEADER_IN) {
		buf_puts(arg, "< ");
		buf_append(arg, data, n);
	}
	return 0;
}

/* Has curl hand the server's answers to smtp_answer; returns a curl
 * code. */
static CURLcode
smtp_show_answers(CURL *c)
{
	CURLcode rc = curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, smtp_answer);

	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_DEBUGDATA, answers);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	return rc;
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
	if (rc == CURLE_OK && answers != NULL)
		rc = smtp_show_answers(c);
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

/* Appends m's envelope sender to b: with reply_address set and m an
 * outbox row, its VERP address (mail_token.h), else mail_from's address.
 * Returns 1, or 0 if mail_from is not an address. */
static int
envelope_sender(struct buf *b, const struct mail_msg *m)
{
	char	*name, *addr;
	int	 ok;

	if (*conf.reply_address != '\0' && m->id > 0 &&
	    mime_parse_mailbox(conf.reply_address, &name, &addr)) {
		ok = mail_verp_make(b, m->id, addr);
		free(name);
		free(addr);
		if (ok)
			return 1;
	}
	if (!mime_parse_mailbox(conf.mail_from, &name, &addr))
		return 0;
	buf_puts(b, addr);
	free(name);
	free(addr);
	return 1;
}

int
mail_transport_send(const struct mail_msg *m, struct buf *err,
    int *permanent)
{
	struct buf	 msg, from;
	const char	*why = NULL;
	char		*to_name = NULL, *to_addr = NULL;
	int		 ok = 0;

	*permanent = 0;
	buf_init(&msg);
	buf_init(&from);
	/* Only a bad recipient is hopeless; the settings were checked at
	 * start and may be fixed. */
	if (!mime_parse_mailbox(m->to_addr, &to_name, &to_addr)) {
		err_put(err, "the recipient's address is not one that mail "
		    "can use");
		*permanent = 1;
		goto out;
	}
	if (!mail_build(&msg, m, &why) || !envelope_sender(&from, m)) {
		err_put(err, why != NULL ? why : "mail_from is not an address");
		goto out;
	}
	if (strcmp(conf.mail_transport, "smtp") == 0)
		ok = send_smtp(&msg, from.data, to_addr, err);
	else if (strcmp(conf.mail_transport, "sendmail") == 0)
		ok = send_sendmail(&msg, *conf.reply_address != '\0' ?
		    from.data : NULL, err);
	else
		ok = send_dir(&msg, m, err);
out:
	free(to_name);
	free(to_addr);
	buf_free(&from);
	buf_free(&msg);
	return ok;
}

/* Returns NULL if reply_address is empty or usable, else why not. */
static const char *
reply_address_problem(void)
{
	char		*name, *addr;
	const char	*why = NULL;
	size_t		 local;

	if (*conf.reply_address == '\0')
		return NULL;
	if (!mime_parse_mailbox(conf.reply_address, &name, &addr))
		return "reply_address: expected an address";
	local = (size_t)(strrchr(addr, '@') - addr);
	if (local > REPLY_LOCAL_MAX)
		why = "reply_address: its local part (before the @) may have "
		    "at most 24 characters";
	else if (memchr(addr, '+', local) != NULL)
		why = "reply_address: its local part may not have a \"+\"";
	free(name);
	free(addr);
	return why;
}

const char *
mail_transport_problem(void)
{
	char		*name, *addr;
	const char	*why;
	int		 from_ok, admin_ok;

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
	if ((why = reply_address_problem()) != NULL)
		return why;
	if (strcmp(conf.mail_transport, "smtp") == 0 &&
	    strncmp(conf.smtp_url, "smtp://", 7) != 0 &&
	    strncmp(conf.smtp_url, "smtps://", 8) != 0)
		return "smtp_url: expected smtp://HOST:PORT or "
		    "smtps://HOST:PORT";
	return NULL;
}

int
mail_transport_start(void)
{
	/* A sendmail command that stops reading must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

void
mail_transport_stop(void)
{
	curl_global_cleanup();
}
