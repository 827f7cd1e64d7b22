/* pmbctl.h: what the files of the operator's tool share. */
#ifndef PMB_PMBCTL_H
#define PMB_PMBCTL_H

/* The whole "pmbctl mail ..." command; argv[0] is the word after "mail"
 * (send, run, list, retry). Returns the exit status, or -1 when the
 * arguments make no sense (pmbctl then prints its usage). */
int	 mail_command(int argc, char *argv[]);

#endif
