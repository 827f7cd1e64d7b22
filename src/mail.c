/* mail.c: emails are rendered from www/templates/mail/KIND.txt and written
 * to the outbox in the same transaction as the change that causes them,
 * so a committed change never loses its mail and a rolled-back one never
 * sends any. The HTML part is the same template rendered as Markdown. */
#include <string.h>
#include <stdlib.h>

#include "db.h"
#include "mail.h"
#include "markdown.h"
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

int
mail_queue(const char *kind, int64_t order_id, const char *to_addr,
    const char *to_name, const struct tvars *tv)
{
	struct buf	 name, text, md, html;
	struct tvars	 lv = *tv;
	char		*subject, *body, *msubject, *mbody, *inner = NULL;
	char		*name_flat = NULL;
	int		 ok = 0, rc;
	int64_t		 now = now_unix();

	buf_init(&name);
	buf_init(&text);
	buf_init(&md);
	buf_init(&html);
	buf_printf(&name, "mail/%s.txt", kind);
	if (!tmpl_render_esc(&text, name.data, tv, NULL) ||
	    !tmpl_render_esc(&md, name.data, tv, md_escape) ||
	    !split_subject(text.data, &subject, &body) ||
	    !split_subject(md.data, &msubject, &mbody)) {
		log_msg("mail: template %s is missing or has no Subject line",
		    name.data);
		goto out;
	}
	flatten(subject);
	inner = md_render(mbody);
	tv_set(&lv, "subject", subject);
	tv_set(&lv, "content", inner);
	if (!tmpl_render(&html, "mail/layout.html", &lv)) {
		log_msg("mail: no template mail/layout.html");
		goto out;
	}
	name_flat = xstrdup(to_name != NULL ? to_name : "");
	flatten(name_flat);
	if (has_ctl(to_addr)) {
		log_msg("mail: refused an address with a control character");
		goto out;
	}
	rc = order_id > 0 ?
	    db_run(ST_OUTBOX_INSERT, "titttttii", kind, order_id, to_addr,
	    name_flat, subject, body, html.data, now, now) :
	    db_run(ST_OUTBOX_INSERT, "tntttttii", kind, to_addr, name_flat,
	    subject, body, html.data, now, now);
	ok = rc == DB_DONE;
out:
	free(inner);
	free(name_flat);
	buf_free(&name);
	buf_free(&text);
	buf_free(&md);
	buf_free(&html);
	return ok;
}
