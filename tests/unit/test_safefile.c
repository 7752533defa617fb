/*
 * test_safefile.c - cmocka tests for safefile.c: which directories and
 * files sendwrap accepts, that it never follows a link or blocks on a
 * FIFO, and that what it makes is a private regular file.
 *
 * Ownership cases need root (files handed to "nobody"); run as another
 * user they check what they can and skip the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safefile.h"
#include "testlib.h"

#define NOBODY 65534

static char why[512];

/* A fresh directory under the scratch directory, mode 0700. */
static void
fresh_dir(char *buf, size_t size, const char *name)
{
	static unsigned serial;

	if ((size_t)snprintf(buf, size, "%s/%u-%s", scratch_dir, ++serial,
	    name) >= size)
		fail_msg("path too long");
	assert_int_equal(mkdir(buf, 0700), 0);
}

static void
join(char *buf, size_t size, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		fail_msg("path too long");
}

static void
write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void
expect_fail(int r, int want_errno, const char *want_text)
{
	assert_int_equal(r, -1);
	if (errno != want_errno)
		fail_msg("errno %d, want %d (%s)", errno, want_errno, why);
	if (want_text && strstr(why, want_text) == NULL)
		fail_msg("'%s' lacks '%s'", why, want_text);
}

/* ------------------------------------------------------ directories */

static void
test_dir_modes(void **state)
{
	char dir[PATH_MAX], file[PATH_MAX];

	(void)state;
	fresh_dir(dir, sizeof dir, "modes");
	assert_int_equal(safe_dir(dir, why, sizeof why), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(safe_dir(dir, why, sizeof why), 0);
	assert_int_equal(chmod(dir, 0775), 0);
	expect_fail(safe_dir(dir, why, sizeof why), EACCES, "group or others");
	assert_int_equal(chmod(dir, 0757), 0);
	expect_fail(safe_dir(dir, why, sizeof why), EACCES, dir);
	/* /tmp-like: the sticky bit does not stop a new name being made. */
	assert_int_equal(chmod(dir, 01777), 0);
	expect_fail(safe_dir(dir, why, sizeof why), EACCES, "Permission "
	    "denied");
	assert_int_equal(chmod(dir, 0700), 0);
	join(file, sizeof file, dir, "missing");
	expect_fail(safe_dir(file, why, sizeof why), ENOENT, file);
	write_file(file, "x");
	expect_fail(safe_dir(file, why, sizeof why), ENOTDIR, file);
}

static void
test_dir_owner(void **state)
{
	char dir[PATH_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	fresh_dir(dir, sizeof dir, "theirs");
	assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
	expect_fail(safe_dir(dir, why, sizeof why), EACCES, "uid 65534");
	/* Root's directories are fine for any user: nobody else writes them. */
	assert_int_equal(chown(dir, 0, 0), 0);
	assert_int_equal(safe_dir(dir, why, sizeof why), 0);
}

/* A directory sendwrap writes itself must be the effective user's own:
 * root's will not do for another user. */
static void
test_dir_mine(void **state)
{
	char dir[] = "/tmp/sendwrap-mine-XXXXXX";	/* nobody may stat it */

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	assert_int_equal(safe_dir_mine(dir, why, sizeof why), 0);
	assert_int_equal(seteuid(NOBODY), 0);
	assert_int_equal(safe_dir(dir, why, sizeof why), 0);
	expect_fail(safe_dir_mine(dir, why, sizeof why), EACCES,
	    "owned by uid 0, not by uid 65534");
	assert_int_equal(seteuid(0), 0);
	assert_int_equal(chown(dir, NOBODY, NOBODY), 0);
	expect_fail(safe_dir_mine(dir, why, sizeof why), EACCES,
	    "owned by uid 65534, not by uid 0");
	assert_int_equal(rmdir(dir), 0);
}

static void
test_dir_of(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], cwd[PATH_MAX];

	(void)state;
	fresh_dir(dir, sizeof dir, "of");
	join(path, sizeof path, dir, "cache.mdb");
	assert_int_equal(safe_dir_of(path, why, sizeof why), 0);
	assert_int_equal(chmod(dir, 0770), 0);
	expect_fail(safe_dir_of(path, why, sizeof why), EACCES, dir);
	/* A bare name is in the working directory. */
	assert_non_null(getcwd(cwd, sizeof cwd));
	assert_int_equal(chdir(dir), 0);
	expect_fail(safe_dir_of("cache.mdb", why, sizeof why), EACCES, ".");
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(safe_dir_of("cache.mdb", why, sizeof why), 0);
	assert_int_equal(chdir(cwd), 0);
	/* "/name" is in "/". */
	assert_int_equal(safe_dir_of("/cache.mdb", why, sizeof why), 0);
}

/* ------------------------------------------------------------ files */

static void
test_file_missing_and_made(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;

	(void)state;
	fresh_dir(dir, sizeof dir, "made");
	join(path, sizeof path, dir, "f");
	expect_fail(safe_file(path, 0, NULL, why, sizeof why), ENOENT, path);
	assert_int_equal(lstat(path, &st), -1);		/* nothing made */
	umask(0);
	assert_int_equal(safe_file(path, 1, NULL, why, sizeof why), 0);
	umask(022);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(st.st_size, 0);
	/* Existing and fine: left as it is. */
	write_file(path, "data");
	assert_int_equal(safe_file(path, 1, NULL, why, sizeof why), 0);
	assert_int_equal(safe_file(path, 0, NULL, why, sizeof why), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_size, 4);
}

/* A file outside the directory, standing for /etc/shadow. */
static void
victim(char *buf, size_t size)
{
	char dir[PATH_MAX];

	fresh_dir(dir, sizeof dir, "victim");
	join(buf, size, dir, "shadow");
	write_file(buf, "root:secret\n");
}

static void
expect_victim_unchanged(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof buf);
	close(fd);
	assert_int_equal(n, 12);
	assert_memory_equal(buf, "root:secret\n", 12);
}

static void
test_file_planted(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];
	int create;

	(void)state;
	victim(target, sizeof target);
	for (create = 0; create < 2; create++) {
		fresh_dir(dir, sizeof dir, "planted");
		join(path, sizeof path, dir, "link");
		assert_int_equal(symlink(target, path), 0);
		expect_fail(safe_file(path, create, NULL, why, sizeof why), ELOOP,
		    "symbolic link");
		join(path, sizeof path, dir, "dangling");
		assert_int_equal(symlink("/nonexistent/x", path), 0);
		expect_fail(safe_file(path, create, NULL, why, sizeof why), ELOOP,
		    path);
		join(path, sizeof path, dir, "hard");
		assert_int_equal(link(target, path), 0);
		expect_fail(safe_file(path, create, NULL, why, sizeof why), EINVAL,
		    "2 links");
		assert_int_equal(unlink(path), 0);
		join(path, sizeof path, dir, "fifo");
		assert_int_equal(mkfifo(path, 0600), 0);
		expect_fail(safe_file(path, create, NULL, why, sizeof why), EINVAL,
		    "not a regular file");
		join(path, sizeof path, dir, "subdir");
		assert_int_equal(mkdir(path, 0700), 0);
		expect_fail(safe_file(path, create, NULL, why, sizeof why), EINVAL,
		    path);
	}
	expect_victim_unchanged(target);
}

static void
test_file_owner(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];

	(void)state;
	if (geteuid() != 0)
		skip();
	fresh_dir(dir, sizeof dir, "owner");
	join(path, sizeof path, dir, "f");
	write_file(path, "x");
	assert_int_equal(chown(path, NOBODY, NOBODY), 0);
	expect_fail(safe_file(path, 1, NULL, why, sizeof why), EACCES,
	    "Permission denied (owned by uid 65534");
	expect_fail(safe_open_lock(path, why, sizeof why), EACCES, path);
}

/* ------------------------------------------------------ lock files */

static void
test_lock_made_and_held(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct stat st;
	int fd, fd2;

	(void)state;
	fresh_dir(dir, sizeof dir, "lock");
	join(path, sizeof path, dir, "slot.0");
	fd = safe_open_lock(path, why, sizeof why);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* flock works on a read-only descriptor. */
	assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
	fd2 = safe_open_lock(path, why, sizeof why);
	assert_true(fd2 >= 0);
	assert_int_equal(flock(fd2, LOCK_EX | LOCK_NB), -1);
	close(fd);
	assert_int_equal(flock(fd2, LOCK_EX | LOCK_NB), 0);
	close(fd2);
}

static void
test_lock_planted(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], target[PATH_MAX];

	(void)state;
	victim(target, sizeof target);
	fresh_dir(dir, sizeof dir, "lockplanted");
	join(path, sizeof path, dir, "slot.0");
	assert_int_equal(symlink(target, path), 0);
	expect_fail(safe_open_lock(path, why, sizeof why), ELOOP,
	    "symbolic link");
	join(path, sizeof path, dir, "slot.1");
	assert_int_equal(link(target, path), 0);
	expect_fail(safe_open_lock(path, why, sizeof why), EINVAL, "links");
	/* A FIFO with no writer: the open must not wait for one. */
	join(path, sizeof path, dir, "slot.2");
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_fail(safe_open_lock(path, why, sizeof why), EINVAL,
	    "not a regular file");
	expect_victim_unchanged(target);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_modes),
		cmocka_unit_test(test_dir_owner),
		cmocka_unit_test(test_dir_mine),
		cmocka_unit_test(test_dir_of),
		cmocka_unit_test(test_file_missing_and_made),
		cmocka_unit_test(test_file_planted),
		cmocka_unit_test(test_file_owner),
		cmocka_unit_test(test_lock_made_and_held),
		cmocka_unit_test(test_lock_planted),
	};

	return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
