/* conf.h: the settings file shared by pmb.fcgi and pmbctl. */
#ifndef PMB_CONF_H
#define PMB_CONF_H

#include <stdint.h>

/* The settings file read without --config or $PMB_CONFIG, when it
 * exists: configure --with-config (SYSCONFDIR/pmb/pmb.conf). */
#ifndef PMB_DEFAULT_CONFIG
#define PMB_DEFAULT_CONFIG "/etc/pmb/pmb.conf"
#endif

struct conf {
	char	*database;		/* SQLite file */
	char	*key_file;		/* 32-byte secret key(s) */
	char	*backup_dir;		/* "": "backups" beside the database */
	int64_t	 backup_keep;		/* pairs kept in a backup folder */
	char	*template_dir;		/* www/templates */
	char	*base_url;		/* e.g. https://example.com */
	char	*site_name;
	char	*consultant_name;
	char	*offer_title;
	char	*offer_intro;
	int64_t	 price;			/* minor units */
	char	*currency;		/* ISO 4217 */
	int64_t	 answer_hours;
	int64_t	 guarantee_days;
	char	*payment_instructions;
	char	*consultant_bio;	/* plain text; "\n\n" between paragraphs */
	char	*consultant_photo;	/* a file in the static folder, or "" */
	char	*consultant_credentials; /* ";"-separated list */
	char	*sample_question;	/* plain text */
	char	*sample_answer;		/* Markdown, rendered once at start */
	int64_t	 happy_min_ratings;	/* fewer ratings: no happy share */
	int64_t	 proof_cache_seconds;	/* a worker keeps GET /'s proof */
	char	*topics;		/* comma-separated list */
	int64_t	 followups_included;
	int64_t	 attachment_max_mb;	/* 0: no files */
	int64_t	 attachments_per_message;
	char	*attachment_types;	/* kinds (filekind.c), words
					 * separated by ATTACHMENT_SEPS:
					 * "pdf png jpeg ..." */
	int64_t	 body_limit;		/* bytes */
	int64_t	 rate_limit_email_per_hour;
	int64_t	 rate_limit_ip_per_hour;
	char	*trusted_proxies;	/* space/comma separated IPs */
	int64_t	 session_idle_minutes;
	int64_t	 session_max_hours;
	int	 refund_if_late;
	int	 refund_auto_approve;
	int64_t	 refund_days;		/* a refund by hand: sent within */
	char	*hsts;			/* off | on | include-subdomains */
	char	*stripe_secret_key;	/* "": card payment off; never shown */
	char	*stripe_webhook_secret;	/* whsec_..., up to two, comma-separated */
	char	*stripe_api_url;	/* https://api.stripe.com */
	int64_t	 stripe_timeout;	/* seconds for one call to Stripe */
	char	*mail_transport;	/* dir | smtp | sendmail */
	char	*mail_dir;
	char	*smtp_url;
	char	*smtp_user;
	char	*smtp_password;
	int64_t	 smtp_timeout;
	char	*smtp_ca_file;		/* "": the system's CAs */
	char	*sendmail_command;
	char	*mail_from;
	char	*admin_email;
	char	*reply_address;	/* "": replies go to admin_email */
	char	*imap_url;		/* "": no IMAP intake (mail_imap.c) */
	char	*imap_user;
	char	*imap_password;		/* never logged or shown */
	int64_t	 imap_poll_seconds;	/* mail run's fetch interval */
	char	*imap_done_folder;	/* "": mark with PmbStored instead */
	int64_t	 inbound_hourly_limit; /* mails kept per sender per hour */
	int	 alert_new_orders;	/* a new order's alert to admin_email */
	int64_t	 mail_max_attempts;
	int64_t	 busy_timeout_ms;
	int	 log_requests;
	char	*time_zone;		/* IANA name: every time shown */
	int64_t	 unpaid_reminder_hours;	/* 0: no payment reminder */
	int64_t	 unpaid_cancel_days;	/* 0: unpaid orders stay open */
	int64_t	 digest_hour;		/* 0-23 in time_zone; -1: no digest */
	char	*privacy_controller;	/* legal name and address; "": the
					 * consultant_name */
	char	*privacy_contact;	/* "": admin_email */
	int64_t	 retention_days;	/* 0: personal data kept */
	/* Derived at load time. */
	int	 https;			/* base_url starts with https:// */
};

extern struct conf conf;

/* Loads defaults, then the file at path (NULL: $PMB_CONFIG, else the
 * configured default file, PMB_DEFAULT_CONFIG, when it exists, else
 * none). Returns 1 on success; 0 with a "file:line: reason" message in
 * err. */
int	conf_load(const char *path, char *err, size_t errsz);
/* The settings file conf_load read, or NULL if it read none (defaults). */
const char *conf_file(void);
/* Reads the file conf_load read again (the mail daemon's SIGHUP); on a
 * bad file keeps the settings as they were. Returns 1, or 0 with the
 * reason in err. */
int	conf_reload(char *err, size_t errsz);
/* Parses settings from a string (for tests and fuzzing); as conf_load. */
int	conf_parse(const char *text, const char *name, char *err, size_t errsz);
/* Frees the strings that conf_load allocated. */
void	conf_free(void);

/* What separates the words of attachment_types. */
#define ATTACHMENT_SEPS	" ,\t"

#endif
