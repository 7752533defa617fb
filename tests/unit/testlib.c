/* testlib.c - shared scaffolding of the cmocka suites; see testlib.h. */
#include "testlib.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char scratch_dir[PATH_MAX];

int
remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[PATH_MAX];

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			remove_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	return rmdir(dir);
}

int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* not the one reading the directory */
}

char *
scratch_file(const char *name)
{
	size_t len = strlen(scratch_dir) + strlen(name) + 2;
	char *p = malloc(len);

	if (p == NULL)
		abort();
	snprintf(p, len, "%s/%s", scratch_dir, name);
	return p;
}

int
scratch_setup(void **state)
{
	const char *t = getenv("TMPDIR");

	(void)state;
	if (t == NULL || *t == '\0')
		t = "/tmp";
	snprintf(scratch_dir, sizeof scratch_dir, "%s/sendwrap-test-XXXXXX", t);
	if (mkdtemp(scratch_dir) == NULL) {
		perror("mkdtemp");
		return -1;
	}
	chmod(scratch_dir, 0755);
	return 0;
}

int
scratch_teardown(void **state)
{
	(void)state;
	return remove_tree(scratch_dir);
}
