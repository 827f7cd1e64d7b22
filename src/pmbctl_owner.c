/* pmbctl_owner.c: pmbctl run as root acts as the store's owner. The
 * store's owner is the owner of the database's folder: pmb.fcgi runs as
 * that user, and every file pmbctl makes must stay readable to it. Run
 * as root, pmbctl takes that user's groups and ids before it opens the
 * key file or the database, or refuses with the command to run instead
 * when the folder is root's own but the service is someone else. */
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "pmbctl.h"
#include "util.h"

/* The store's owner, once store_owner_find has looked: the ids new
 * folders are given when pmbctl still runs as root. */
static uid_t	owner_uid;
static gid_t	owner_gid;
static int	owner_known;

/* Prints the refusal with the command line to run instead: argv as it
 * was given, under "runuser -u USER --". Returns 0. */
static int
refuse(const char *dir, const char *user, int argc, char *argv[])
{
	struct buf cmd;

	buf_init(&cmd);
	buf_printf(&cmd, "runuser -u %s --", user);
	for (int i = 0; i < argc; i++)
		buf_printf(&cmd, " %s", argv[i]);
	fail("%s belongs to root, but the service runs as %s: as root, "
	    "pmbctl would leave files %s cannot use. Give the folder to "
	    "it (chown %s: %s) or run: %s", dir, user, user, user, dir,
	    cmd.data);
	buf_free(&cmd);
	return 0;
}

/* Copies into name (size n) the user whose own group is gid: the one
 * named as the group (adduser --system --group pmb), else the only one
 * with it as primary group. Returns 1, or 0 when there is no such user
 * or several (nogroup). */
static int
group_user(gid_t gid, char *name, size_t n)
{
	struct group	*gr = getgrgid(gid);
	struct passwd	*pw;
	int		 found = 0;

	if (gr != NULL && (pw = getpwnam(gr->gr_name)) != NULL &&
	    pw->pw_gid == gid) {
		snprintf(name, n, "%s", pw->pw_name);
		return 1;
	}
	setpwent();
	while ((pw = getpwent()) != NULL)
		if (pw->pw_gid == gid && pw->pw_uid != 0 && found++ == 0)
			snprintf(name, n, "%s", pw->pw_name);
	endpwent();
	return found == 1;
}

/* Returns the name of the user the service runs as when the store's
 * folder is root's: the key file's owner if it is not root, else the
 * user whose group the settings file is given to (the samples' root:pmb
 * 0640, which pmb.fcgi must read), else NULL (an install that is root's
 * alone). The name is in a static area. */
static const char *
service_user(void)
{
	static char	 name[256];
	struct passwd	*pw;
	struct stat	 st;
	const char	*file = conf_file();

	if (stat(conf.key_file, &st) == 0 && st.st_uid != 0 &&
	    (pw = getpwuid(st.st_uid)) != NULL) {
		snprintf(name, sizeof(name), "%s", pw->pw_name);
		return name;
	}
	if (file != NULL && stat(file, &st) == 0 && st.st_gid != 0 &&
	    group_user(st.st_gid, name, sizeof(name)))
		return name;
	return NULL;
}

int
store_owner_find(int argc, char *argv[], int missing_ok)
{
	struct passwd	*pw;
	struct stat	 st;
	const char	*user;
	char		*dir;
	int		 ok = 1;

	if (geteuid() != 0)
		return 1;
	dir = path_folder(conf.database);
	if (stat(dir, &st) != 0 && errno == ENOENT && missing_ok) {
		/* Nothing to act on: the command says the store is missing. */
	} else if (stat(dir, &st) != 0) {
		fail("%s: %s (make it for the user that runs pmb.fcgi: "
		    "install -d -o pmb -g pmb -m 0750 %s)", dir,
		    strerror(errno), dir);
		ok = 0;
	} else if (st.st_uid == 0) {
		if ((user = service_user()) != NULL)
			ok = refuse(dir, user, argc, argv);
		else {
			owner_uid = 0;
			owner_gid = 0;
			owner_known = 1;
		}
	} else if ((pw = getpwuid(st.st_uid)) == NULL) {
		fail("%s belongs to uid %ld, which names no user",
		    dir, (long)st.st_uid);
		ok = 0;
	} else {
		owner_uid = pw->pw_uid;
		owner_gid = pw->pw_gid;
		owner_known = 1;
	}
	free(dir);
	return ok;
}

int
store_owner_become(void)
{
	struct passwd *pw;

	if (geteuid() != 0 || !owner_known || owner_uid == 0)
		return 1;
	if ((pw = getpwuid(owner_uid)) == NULL)
		return fail("uid %ld names no user", (long)owner_uid), 0;
	/* Groups first: once the ids are the user's, they cannot change. */
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		return fail("cannot act as %s: %s", pw->pw_name,
		    strerror(errno)), 0;
	if (setuid(0) == 0)
		return fail("still root after acting as %s", pw->pw_name), 0;
	return 1;
}

int
make_folder(const char *path)
{
	struct stat	 st;
	char		*dir;
	int		 ok = 1;

	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return fail("%s is not a folder", path), 0;
		return 1;
	}
	if (errno != ENOENT)
		return fail("%s: %s", path, strerror(errno)), 0;
	dir = path_folder(path);
	if (strcmp(dir, path) != 0 && strcmp(dir, ".") != 0)
		ok = make_folder(dir);
	free(dir);
	if (!ok)
		return 0;
	if (mkdir(path, BACKUP_FOLDER_MODE) != 0 && errno != EEXIST)
		return fail("%s: %s", path, strerror(errno)), 0;
	/* umask 077 took the group's bits: give them back. */
	if (chmod(path, BACKUP_FOLDER_MODE) != 0)
		return fail("%s: %s", path, strerror(errno)), 0;
	if (geteuid() == 0 && owner_known && owner_uid != 0 &&
	    chown(path, owner_uid, owner_gid) != 0)
		return fail("%s: %s", path, strerror(errno)), 0;
	return 1;
}
