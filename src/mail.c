/* mail.c: emails are rendered from www/templates/mail/KIND.txt and written
 * to the outbox in the same transaction as the change that causes them,
 * so a committed change never loses its mail and a rolled-back one never
 * sends any. The plain-text part is mail/KIND.txt, the HTML part
 * mail/KIND.html (HTML-escaped by default), stored without the frame
 * every email shares, mail/layout.html, which mail_frame puts around it
 * when it is sent or shown; the consultant's Markdown comes to them
 * rendered (md_plain, md_render_mail). */
#include <string.h>
#include <strings.h>
#include <stdlib.h>

#include "conf.h"
#include "db.h"
#include "mail.h"
#include "mail_text.h"
#include "util.h"

/* Splits rendered text into its subject (first line "Subject: ") and
 * body; returns 1, or 0 if the first line is not a subject. */
static int
split_subject(char *text, char **subject, char **body)
{
	char *nl;

	if (strncmp(text, "Subject:", 8) != 0 ||
	    (nl = strchr(text, '\n')) == NULL)
		return 0;
	*nl = '\0';
	*subject = text + 8;
	while (**subject == ' ')
		(*subject)++;
	*body = nl + 1;
	while (**body == '\n')
		(*body)++;
	return 1;
}

/* Replaces every control character of s with a space, in place: a
 * header value never carries CR or LF. */
static void
flatten(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* Returns the text part body made readable as plain text: no blank
 * line first or last, never two in a row, no blank at a line's end, one
 * space between words (a line's indentation kept), CR LF as LF. A
 * string to free. */
static char *
text_tidy(const char *body)
{
	struct buf	 out;
	const char	*line = body, *end;
	int		 blanks = 0;

	buf_init(&out);
	for (; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
		size_t	n, i = 0;

		end = line + strcspn(line, "\n");
		n = end - line;
		while (n > 0 && strchr(" \t\r", line[n - 1]) != NULL)
			n--;
		if (n == 0) {
			blanks++;
			continue;
		}
		if (out.len > 0)
			buf_puts(&out, blanks > 0 ? "\n\n" : "\n");
		blanks = 0;
		while (i < n && line[i] == ' ')
			buf_putc(&out, line[i++]);
		for (; i < n; i++)
			if (line[i] != ' ' || line[i - 1] != ' ')
				buf_putc(&out, line[i]);
	}
	buf_putc(&out, '\n');
	return buf_take(&out);
}

int
mail_render(const char *kind, const struct tvars *tv, struct mail_parts *m)
{
	struct buf	 name, hname, text, html, subj;
	char		*subject, *body;
	int		 ok = 0;

	memset(m, 0, sizeof(*m));
	buf_init(&name);
	buf_init(&hname);
	buf_init(&text);
	buf_init(&html);
	buf_init(&subj);
	buf_printf(&name, "mail/%s.txt", kind);
	buf_printf(&hname, "mail/%s.html", kind);
	if (!tmpl_render_esc(&text, name.data, tv, NULL) ||
	    !split_subject(text.data, &subject, &body) ||
	    !tmpl_exists(hname.data)) {
		log_msg("mail: template %s is missing or has no Subject line, "
		    "or there is no %s", name.data, hname.data);
		goto out;
	}
	if (!tmpl_render(&html, hname.data, tv)) {
		log_msg("mail: %s failed", hname.data);
		goto out;
	}
	/* A subject is one line, with its hidden characters shown. */
	flatten(subject);
	show_invisible(&subj, subject, "[", "]");
	m->subject = xstrdup(subj.data);
	m->text = text_tidy(body);
	m->html = buf_take(&html);
	ok = 1;
out:
	buf_free(&name);
	buf_free(&hname);
	buf_free(&text);
	buf_free(&html);
	buf_free(&subj);
	return ok;
}

int
mail_marked(int64_t order_id, const char *to_addr)
{
	return *conf.reply_address != '\0' && order_id > 0 &&
	    strcasecmp(to_addr, conf.admin_email) != 0;
}

int
mail_frame(struct buf *out, const char *subject, const char *body,
    int marked)
{
	struct tvars	 tv = { .n = 0 };
	char		*title;
	int		 ok;

	/* A whole document starts with a doctype, "<!"; mail/KIND.html never
	 * does. */
	if (*body == '\0' || (body[0] == '<' && body[1] == '!')) {
		buf_puts(out, body);
		return 1;
	}
	/* One line, as mail_render made it (a row may come from elsewhere). */
	title = xstrdup(subject);
	flatten(title);
	tv_set(&tv, "site_name", conf.site_name);
	tv_set(&tv, "consultant_name", conf.consultant_name);
	tv_set(&tv, "admin_email", conf.admin_email);
	tv_set(&tv, "subject", title);
	tv_set(&tv, "body_html", body);
	if (marked)
		tv_set(&tv, "reply_marker", MAIL_REPLY_MARKER);
	if (!(ok = tmpl_render(out, "mail/layout.html", &tv)))
		log_msg("mail: no template mail/layout.html");
	tv_free(&tv);
	free(title);
	return ok;
}

void
mail_parts_free(struct mail_parts *m)
{
	free(m->subject);
	free(m->text);
	free(m->html);
	memset(m, 0, sizeof(*m));
}

int
mail_store(const char *kind, int64_t order_id, const char *to_addr,
    const char *to_name, const struct mail_parts *m)
{
	char	*name_flat;
	int	 rc;
	int64_t	 now = now_unix();

	if (has_ctl(to_addr)) {
		log_msg("mail: refused an address with a control character");
		return 0;
	}
	name_flat = xstrdup(to_name != NULL ? to_name : "");
	flatten(name_flat);
	rc = order_id > 0 ?
	    db_run(ST_OUTBOX_INSERT, "titttttii", kind, order_id, to_addr,
	    name_flat, m->subject, m->text, m->html, now, now) :
	    db_run(ST_OUTBOX_INSERT, "tntttttii", kind, to_addr, name_flat,
	    m->subject, m->text, m->html, now, now);
	free(name_flat);
	return rc == DB_DONE;
}

int
mail_queue(const char *kind, int64_t order_id, const char *to_addr,
    const char *to_name, const struct tvars *tv)
{
	struct mail_parts	m;
	int			ok;

	if (!mail_render(kind, tv, &m))
		return 0;
	ok = mail_store(kind, order_id, to_addr, to_name, &m);
	mail_parts_free(&m);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Reading the outbox, for the admin outbox page */

const char *const mail_statuses[MAIL_STATUSES] = { "queued", "sending",
    "sent", "failed", "bounced" };

/* Fills mi from a row of OUTBOX_LIST, OUTBOX_LIST_STATUS or
 * OUTBOX_BY_ID (the same first 15 columns). */
static void
mail_info_row(sqlite3_stmt *s, struct mail_info *mi)
{
	mi->id = sqlite3_column_int64(s, 0);
	mi->kind = db_text(s, 1);
	mi->order_id = sqlite3_column_int64(s, 2);
	mi->to_addr = db_text(s, 3);
	mi->to_name = db_text(s, 4);
	mi->subject = db_text(s, 5);
	mi->status = db_text(s, 6);
	mi->attempts = sqlite3_column_int64(s, 7);
	mi->next_at = sqlite3_column_int64(s, 8);
	mi->claimed_until = sqlite3_column_int64(s, 9);
	mi->last_error = db_text(s, 10);
	mi->created_at = sqlite3_column_int64(s, 11);
	mi->sent_at = sqlite3_column_int64(s, 12);
	mi->bounced_at = sqlite3_column_int64(s, 13);
	mi->bounce = db_text(s, 14);
}

int
mail_list(const char *status, int limit, int64_t before,
    void (*fn)(const struct mail_info *, void *), void *arg)
{
	enum stmt	 st = status == NULL || *status == '\0' ?
			    ST_OUTBOX_LIST : ST_OUTBOX_LIST_STATUS;
	sqlite3_stmt	*s;
	struct mail_info mi;
	int		 rc, n = 0;

	if (before <= 0)
		before = INT64_MAX;
	if ((s = db_stmt(st)) == NULL || (st == ST_OUTBOX_LIST ?
	    !db_bind(s, "ii", before, (int64_t)limit) :
	    !db_bind(s, "iit", before, (int64_t)limit, status)))
		return -1;
	while ((rc = db_step(st)) == DB_ROW) {
		mail_info_row(s, &mi);
		fn(&mi, arg);
		n++;
	}
	db_done(st);
	return rc == DB_DONE ? n : -1;
}

int
mail_read(int64_t id, void (*fn)(const struct mail_info *,
    const char *text, const char *html, void *), void *arg)
{
	sqlite3_stmt	*s;
	struct mail_info mi;
	int		 rc;

	if ((s = db_stmt(ST_OUTBOX_BY_ID)) == NULL || !db_bind(s, "i", id))
		return -1;
	if ((rc = db_step(ST_OUTBOX_BY_ID)) == DB_ROW) {
		mail_info_row(s, &mi);
		fn(&mi, db_text(s, 15), db_text(s, 16), arg);
	}
	db_done(ST_OUTBOX_BY_ID);
	return rc == DB_ROW ? 1 : rc == DB_DONE ? 0 : -1;
}

int
mail_counts(int64_t counts[MAIL_STATUSES])
{
	sqlite3_stmt	*s;
	int		 rc;

	for (int i = 0; i < MAIL_STATUSES; i++)
		counts[i] = 0;
	if ((s = db_stmt(ST_OUTBOX_COUNTS)) == NULL)
		return 0;
	while ((rc = db_step(ST_OUTBOX_COUNTS)) == DB_ROW)
		for (int i = 0; i < MAIL_STATUSES; i++)
			if (strcmp(db_text(s, 0), mail_statuses[i]) == 0)
				counts[i] = sqlite3_column_int64(s, 1);
	db_done(ST_OUTBOX_COUNTS);
	return rc == DB_DONE;
}

int
mail_retry_now(int64_t id)
{
	if (db_run(ST_OUTBOX_RETRY_NOW, "ii", now_unix(), id) != DB_DONE)
		return -1;
	return sqlite3_changes(db_handle()) > 0;
}
