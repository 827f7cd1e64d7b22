/* pmbctl.h: what the files of the operator's tool share: the commands,
 * each in the one table of pmbctl.c with its words, arguments and help,
 * and the helpers they use. */
#ifndef PMB_PMBCTL_H
#define PMB_PMBCTL_H

/* Exit status for a command line that makes no sense. */
#define EXIT_USAGE	2

/* Prints "pmbctl: " and the message to stderr; returns the exit status
 * 1. */
int	 fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Opens the database (db_open flags); returns 1, or 0 after a message. */
int	 open_db(int flags);
/* open_db, then checks that the schema is the one this program knows;
 * returns 1, or 0 after a message (and closed). */
int	 open_db_current(int flags);

/* The mode of a folder pmbctl makes for backups: the owner's, and its
 * group may read (an operator in the service's group copies them off). */
#define BACKUP_FOLDER_MODE	0750

/* Run as root, finds the store's owner: the owner of the database's
 * folder. If that is root but the key file's owner or the user "pmb"
 * runs the service, refuses, printing the command line (argc, argv, as
 * typed) to run as that user instead. A missing folder is refused too,
 * unless missing_ok (the command only reports on the store: check).
 * Returns 1 (also when not root), or 0 after a message. */
int	 store_owner_find(int argc, char *argv[], int missing_ok);
/* Run as root, takes the groups and ids of the owner store_owner_find
 * found (nothing when not root, or when root owns the store). Returns 1,
 * or 0 after a message. */
int	 store_owner_become(void);
/* Makes the folder path and any missing parent, mode 0750, given to the
 * store's owner when pmbctl still runs as root. Returns 1 (also if it
 * exists), or 0 after a message. */
int	 make_folder(const char *path);

/* The loop of a daemon command ("mail run", "pay run"): round(stop)
 * every poll seconds, at once on SIGUSR1 or SIGHUP (after reload(), if
 * not NULL, on SIGHUP), until SIGTERM or SIGINT, which wait (blocked)
 * until the round's item in hand is done: round asks stop() between
 * items. what names it in the log. Holds the database's folder shared
 * (folder_lock) while it runs. Returns the exit status. */
int	 run_rounds(const char *what, int poll, int (*round)(int (*)(void)),
	    void (*reload)(void));

struct intake_result;
/* Prints "CMD: what became of it (message N, order N)" (pmbctl_mail.c). */
void	 intake_report(const char *cmd, const struct intake_result *res);

/* The commands. Each gets the arguments after its words, as many as its
 * table entry's args name (argv ends with NULL, so an optional one left
 * out is NULL), and returns the exit status. */
int	 cmd_init(char *argv[]);		/* pmbctl_store.c */
int	 cmd_migrate(char *argv[]);
int	 cmd_search_index(char *argv[]);
int	 cmd_search_optimize(char *argv[]);
int	 cmd_user_add(char *argv[]);		/* pmbctl_user.c */
int	 cmd_user_passwd(char *argv[]);
int	 cmd_user_list(char *argv[]);
int	 cmd_user_disable(char *argv[]);
int	 cmd_user_enable(char *argv[]);
int	 cmd_mail_send(char *argv[]);		/* pmbctl_mail.c */
int	 cmd_mail_receive(char *argv[]);
int	 cmd_mail_run(char *argv[]);
int	 cmd_mail_list(char *argv[]);
int	 cmd_mail_retry(char *argv[]);
int	 cmd_mail_test(char *argv[]);
int	 cmd_mail_fetch(char *argv[]);
int	 cmd_pay_send(char *argv[]);		/* pmbctl_pay.c */
int	 cmd_pay_run(char *argv[]);
int	 cmd_pay_reconcile(char *argv[]);
int	 cmd_check(char *argv[]);		/* pmbctl_check.c */
int	 cmd_backup(char *argv[]);		/* pmbctl_backup.c */
int	 cmd_restore(char *argv[]);
/* Run as root before the owner's ids are taken (struct command's
 * prepare): make the folder that "backup" and "migrate" write into. */
int	 backup_prepare(char *argv[]);
int	 backup_migrate_prepare(char *argv[]);
/* Makes a backup into backup_dir (the database must be open); returns
 * 1, or 0 after a message. */
int	 backup_before_migrate(void);
int	 cmd_privacy_erase(char *argv[]);	/* pmbctl_privacy.c */
int	 cmd_privacy_sweep(char *argv[]);
int	 cmd_privacy_columns(char *argv[]);
int	 cmd_key_list(char *argv[]);		/* pmbctl_key.c */
int	 cmd_key_rotate(char *argv[]);
int	 cmd_key_remove(char *argv[]);
int	 cmd_privacy_export(char *argv[]);	/* pmbctl_privacy_export.c */

#endif
