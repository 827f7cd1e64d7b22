/* pmbctl_backup.c: backups that restore. A backup is a pair with one
 * name, NAME.db (the database, one consistent snapshot) and NAME.key
 * (the key file, without which every link already sent breaks), each
 * with its original's mode. Into a folder, the pairs are called
 * pmb-YYYYMMDD-HHMMSS (UTC) and the newest backup_keep are kept;
 * pmbctl migrate makes one in backup_dir before it changes anything;
 * pmbctl restore puts a pair back while nothing has the store open. */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "db.h"
#include "pmbctl.h"
#include "util.h"

/* The names of the pairs in a backup folder: PREFIX + 15 characters of
 * date and time (+ "-N" when two come in one second) + ".db". */
#define PAIR_PREFIX	"pmb-"

/* Returns 1 if path names the same file as the database or one of its
 * companion files (-wal, -shm), else 0. */
static int
is_database_file(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	struct stat	 a, b;
	struct buf	 name;
	int		 same = 0;

	if (stat(path, &a) != 0)
		return 0;
	buf_init(&name);
	for (size_t i = 0; i < ARRAY_LEN(sfx) && !same; i++) {
		buf_reset(&name);
		buf_printf(&name, "%s%s", conf.database, sfx[i]);
		same = stat(name.data, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino;
	}
	buf_free(&name);
	return same;
}

/* Returns 1 if path ends with ".db": a backup's FILE, not a folder. */
static int
is_pair_name(const char *path)
{
	size_t n = strlen(path);

	return n > 3 && strcmp(path + n - 3, ".db") == 0;
}

/* Puts the key file's name of the pair whose database is db_path
 * (NAME.db: NAME.key) in b. */
static void
pair_key(struct buf *b, const char *db_path)
{
	buf_reset(b);
	buf_append(b, db_path, strlen(db_path) - 3);
	buf_puts(b, ".key");
}

/* Puts the folder the backups go to without a FILE or DIR in b:
 * backup_dir, or "backups" beside the database. */
static void
backup_folder(struct buf *b)
{
	char *dir;

	buf_reset(b);
	if (*conf.backup_dir != '\0') {
		buf_puts(b, conf.backup_dir);
		return;
	}
	dir = path_folder(conf.database);
	buf_printf(b, "%s/backups", dir);
	free(dir);
}

/* Copies the open database into dest (through a temporary file that is
 * renamed), with the mode of the database file. Returns 1, or 0 after a
 * message. */
static int
copy_database(const char *dest)
{
	sqlite3		*out = NULL;
	sqlite3_backup	*bk;
	struct buf	 tmp;
	struct stat	 st;
	char		*msg = NULL;
	int		 rc, fd, ok = 0;

	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp-%ld", dest, (long)getpid());
	if (stat(conf.database, &st) != 0)
		st.st_mode = 0600;
	if ((fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		fail("%s: %s", tmp.data, strerror(errno));
		buf_free(&tmp);
		return 0;
	}
	/* Moded like the database: it holds password hashes. */
	rc = fchmod(fd, st.st_mode & 0777);
	close(fd);
	if (rc != 0) {
		fail("%s: %s", tmp.data, strerror(errno));
		goto done;
	}
	if (sqlite3_open(tmp.data, &out) != SQLITE_OK) {
		fail("%s: %s", tmp.data, out != NULL ? sqlite3_errmsg(out) :
		    "cannot open");
		goto done;
	}
	if ((bk = sqlite3_backup_init(out, "main", db_handle(), "main")) ==
	    NULL) {
		fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	/*
	 * Copies every page in one step, inside one read transaction: in
	 * WAL mode that holds no writer back, and the copy is one
	 * consistent snapshot. (Copying in small steps would restart each
	 * time a writer commits, and never end on a busy site.)
	 */
	do {
		rc = sqlite3_backup_step(bk, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		fail("backup: %s", sqlite3_errstr(rc));
		goto done;
	}
	/* A plain rollback-journal file, that copies and opens anywhere. */
	if (sqlite3_exec(out, "PRAGMA journal_mode = DELETE", NULL, NULL,
	    &msg) != SQLITE_OK) {
		fail("backup: %s", msg != NULL ? msg : sqlite3_errmsg(out));
		goto done;
	}
	if (sqlite3_close(out) != SQLITE_OK) {
		fail("backup: %s", sqlite3_errmsg(out));
		goto done;
	}
	out = NULL;
	if (rename(tmp.data, dest) != 0) {
		fail("%s: %s", dest, strerror(errno));
		goto done;
	}
	ok = 1;
done:
	sqlite3_free(msg);
	if (out != NULL)
		sqlite3_close(out);
	if (!ok)
		unlink(tmp.data);
	buf_free(&tmp);
	return ok;
}

/* Writes the file from to dest through dest.tmp-PID: the mode of like
 * (from's if like is missing), fsync, rename, fsync of the folder.
 * Returns 1, or 0 after a message. */
static int
copy_file(const char *from, const char *dest, const char *like)
{
	struct stat	 st;
	struct buf	 tmp;
	size_t		 len;
	char		*data;
	int		 fd, ok;

	if ((data = read_file(from, &len)) == NULL)
		return fail("%s: %s", from, strerror(errno)), 0;
	if (stat(like, &st) != 0 && stat(from, &st) != 0)
		st.st_mode = 0600;
	buf_init(&tmp);
	buf_printf(&tmp, "%s.tmp-%ld", dest, (long)getpid());
	fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ok = fd >= 0 && fchmod(fd, st.st_mode & 0777) == 0 &&
	    write_all(fd, data, len) && fsync(fd) == 0;
	if (fd >= 0 && close(fd) != 0)
		ok = 0;
	if (ok)
		ok = rename(tmp.data, dest) == 0;
	if (!ok) {
		fail("%s: %s", dest, strerror(errno));
		unlink(tmp.data);
	} else
		sync_folder_of(dest);
	sodium_memzero(data, len);
	free(data);
	buf_free(&tmp);
	return ok;
}

/* Writes the pair dest (NAME.db) and NAME.key from the open database and
 * the key file: the key first, so that every NAME.db has its key.
 * Returns 1, or 0 after a message. */
static int
write_pair(const char *dest)
{
	struct buf	key;
	int		ok;

	if (is_database_file(dest))
		return fail("%s: that is the database itself", dest), 0;
	buf_init(&key);
	pair_key(&key, dest);
	ok = copy_file(conf.key_file, key.data, conf.key_file) &&
	    copy_database(dest);
	if (ok) {
		sync_folder_of(dest);
		printf("backed up %s and %s to %s and %s\n", conf.database,
		    conf.key_file, dest, key.data);
	}
	buf_free(&key);
	return ok;
}

/* Orders names for qsort: oldest (smallest) first. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes the oldest pairs of folder dir beyond backup_keep; prints
 * each. Returns 1, or 0 after a message. */
static int
prune(const char *dir)
{
	DIR		*d;
	struct dirent	*e;
	struct buf	 path, key;
	char		**names = NULL;
	size_t		 n = 0, cap = 0;
	int		 ok = 1;

	if ((d = opendir(dir)) == NULL)
		return fail("%s: %s", dir, strerror(errno)), 0;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, PAIR_PREFIX, strlen(PAIR_PREFIX)) ||
		    !is_pair_name(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			names = xrealloc(names, cap * sizeof(*names));
		}
		/* Without ".db", so that NAME sorts before NAME-2. */
		names[n++] = xstrndup(e->d_name, strlen(e->d_name) - 3);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	buf_init(&path);
	buf_init(&key);
	for (size_t i = 0; i + (size_t)conf.backup_keep < n; i++) {
		buf_reset(&path);
		buf_printf(&path, "%s/%s.db", dir, names[i]);
		pair_key(&key, path.data);
		if ((unlink(path.data) != 0 && errno != ENOENT) ||
		    (unlink(key.data) != 0 && errno != ENOENT))
			ok = !fail("%s: %s", path.data, strerror(errno));
		else
			printf("removed the old backup %s\n", path.data);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	buf_free(&path);
	buf_free(&key);
	return ok;
}

/* Writes a new pair into folder dir (made if missing), named for the
 * time, then prunes the folder. Returns 1, or 0 after a message. */
static int
backup_into(const char *dir)
{
	struct buf	 name;
	struct tm	 tm;
	time_t		 now = (time_t)now_unix();
	char		 stamp[32];
	int		 ok;

	if (!make_folder(dir))
		return 0;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	buf_init(&name);
	buf_printf(&name, "%s/" PAIR_PREFIX "%s.db", dir, stamp);
	for (int i = 2; access(name.data, F_OK) == 0; i++) {
		buf_reset(&name);
		buf_printf(&name, "%s/" PAIR_PREFIX "%s-%d.db", dir, stamp, i);
	}
	ok = write_pair(name.data) && prune(dir);
	buf_free(&name);
	return ok;
}

/* Puts the folder that "backup [arg]" writes into in dir; *file is set
 * when arg names the pair's FILE.db. A name that is neither FILE.db nor
 * a folder (existing, or written with a trailing "/") is refused rather
 * than guessed at. Returns 1, or 0 after a message. */
static int
backup_target(const char *arg, struct buf *dir, int *file)
{
	struct stat	 st;
	char		*parent;

	buf_reset(dir);
	*file = arg != NULL && is_pair_name(arg);
	if (arg == NULL)
		backup_folder(dir);
	else if (*file) {
		parent = path_folder(arg);
		buf_puts(dir, parent);
		free(parent);
	} else if (arg[strlen(arg) - 1] == '/' ||
	    (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))) {
		buf_puts(dir, arg);
		while (dir->len > 1 && dir->data[dir->len - 1] == '/')
			dir->data[--dir->len] = '\0';
	} else
		return fail("%s: name a backup FILE.db, or a folder (with a "
		    "trailing / if it does not exist yet)", arg), 0;
	return 1;
}

int
backup_prepare(char *argv[])
{
	struct buf	dir;
	int		file, ok;

	buf_init(&dir);
	ok = backup_target(argv[0], &dir, &file) && make_folder(dir.data);
	buf_free(&dir);
	return ok;
}

/* pmbctl backup [FILE.db|DIR] */
int
cmd_backup(char *argv[])
{
	struct buf	dir;
	int		file, ok;

	buf_init(&dir);
	if (!backup_target(argv[0], &dir, &file) || !open_db(DB_READONLY)) {
		buf_free(&dir);
		return 1;
	}
	if (file)
		ok = make_folder(dir.data) && write_pair(argv[0]);
	else
		ok = backup_into(dir.data);
	buf_free(&dir);
	db_close();
	return ok ? 0 : 1;
}

int
backup_migrate_prepare(char *argv[])
{
	struct buf	dir;
	int		ok;

	(void)argv;
	buf_init(&dir);
	backup_folder(&dir);
	ok = make_folder(dir.data);
	buf_free(&dir);
	return ok;
}

int
backup_before_migrate(void)
{
	struct buf	dir;
	int		ok;

	buf_init(&dir);
	backup_folder(&dir);
	ok = backup_into(dir.data);
	buf_free(&dir);
	return ok;
}

/* Returns the pid of a process that has the database at path open (it
 * holds SQLite's shared lock on the "DMS" byte, offset 128, of the
 * -shm file, as every connection in WAL mode does), or 0 if none does.
 * Called with no connection open here: closing the -shm file would drop
 * this process's own SQLite locks on it. */
static long
database_user(const char *path)
{
	struct flock	 fl;
	struct buf	 shm;
	int		 fd;

	buf_init(&shm);
	buf_printf(&shm, "%s-shm", path);
	fd = open(shm.data, O_RDONLY | O_CLOEXEC);
	buf_free(&shm);
	if (fd < 0)
		return 0;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 128;
	fl.l_len = 1;
	if (fcntl(fd, F_GETLK, &fl) != 0)
		fl.l_type = F_UNLCK;
	close(fd);
	return fl.l_type == F_UNLCK ? 0 : (long)fl.l_pid;
}

/* Copies the database file from into the open database with SQLite's
 * backup API (its WAL and locks stay right). Returns 1, or 0 after a
 * message. */
static int
restore_database(const char *from)
{
	sqlite3		*src = NULL;
	sqlite3_backup	*bk;
	int		 rc;

	if (sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		fail("%s: %s", from, src != NULL ? sqlite3_errmsg(src) :
		    "cannot open");
		sqlite3_close(src);
		return 0;
	}
	if ((bk = sqlite3_backup_init(db_handle(), "main", src, "main")) ==
	    NULL) {
		fail("restore: %s", sqlite3_errmsg(db_handle()));
		sqlite3_close(src);
		return 0;
	}
	rc = sqlite3_backup_step(bk, -1);
	sqlite3_backup_finish(bk);
	sqlite3_close(src);
	if (rc != SQLITE_DONE)
		return fail("restore from %s: %s", from, sqlite3_errstr(rc)), 0;
	return 1;
}

/* Returns 1 if nothing runs on the store: no pmb.fcgi or pmbctl daemon
 * holds the database's folder (*lock: its exclusive lock, held until
 * the restore is done), no process has the database open; else 0 after
 * a message. */
static int
store_idle(int *lock)
{
	long pid;

	if ((*lock = folder_lock(conf.database, LOCK_EX | LOCK_NB)) < 0) {
		if (errno == EWOULDBLOCK)
			return fail("pmb.fcgi or a pmbctl daemon (mail run, "
			    "pay run) runs on %s: stop them first (systemctl "
			    "stop pmb pmb-mail pmb-pay); restore stops "
			    "nothing", conf.database), 0;
		return fail("%s: %s", conf.database, strerror(errno)), 0;
	}
	if ((pid = database_user(conf.database)) != 0) {
		close(*lock);
		return fail("process %ld has %s open: stop it first; restore "
		    "stops nothing", pid, conf.database), 0;
	}
	return 1;
}

/* pmbctl restore FROM.db */
int
cmd_restore(char *argv[])
{
	struct buf	 key;
	char		 err[512];
	int		 lock, ok = 0;

	if (!is_pair_name(argv[0]))
		return fail("%s: name the backup's .db file (its .key file "
		    "lies beside it)", argv[0]);
	buf_init(&key);
	pair_key(&key, argv[0]);
	if (access(argv[0], R_OK) != 0 || access(key.data, R_OK) != 0) {
		fail("%s: %s", access(argv[0], R_OK) != 0 ? argv[0] : key.data,
		    strerror(errno));
		buf_free(&key);
		return 1;
	}
	if (is_database_file(argv[0]) || !store_idle(&lock)) {
		if (is_database_file(argv[0]))
			fail("%s: that is the database itself", argv[0]);
		buf_free(&key);
		return 1;
	}
	if (open_db(DB_CREATE)) {
		ok = restore_database(argv[0]);
		if (ok && !db_check_version(err, sizeof(err)))
			ok = !fail("restored, but %s", err);
		db_close();
	}
	if (ok && (ok = copy_file(key.data, conf.key_file, conf.key_file)))
		printf("restored %s and %s from %s and %s\n", conf.database,
		    conf.key_file, argv[0], key.data);
	close(lock);
	buf_free(&key);
	return ok ? 0 : 1;
}
