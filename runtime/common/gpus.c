/* gpus.c - the node's GPUs from /dev (gpus.h). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "gpus.h"

static int by_id(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* N of "nvidiaN", or -1. */
static long device_id(const char *name)
{
	long id = 0;

	if (strncmp(name, "nvidia", 6) || !name[6])
		return -1;
	for (name += 6; *name; name++) {
		if (*name < '0' || *name > '9' || id > 100000000)
			return -1;
		id = id * 10 + (*name - '0');
	}
	return id;
}

unsigned spk_gpu_scan(int32_t *ids, unsigned cap)
{
	unsigned n = 0, have = 64;
	int32_t *all = malloc(have * sizeof(*all)), *more;
	struct dirent *de;
	DIR *d;
	long id;

	if (!all)
		return 0;
	d = opendir("/dev");
	if (!d)
		goto out;
	/* All of them first: readdir's order is not the devices'. */
	while ((de = readdir(d))) {
		if ((id = device_id(de->d_name)) < 0)
			continue;
		if (n == have) {
			more = realloc(all, 2 * have * sizeof(*all));
			if (!more)
				break;
			all = more;
			have *= 2;
		}
		all[n++] = (int32_t)id;
	}
	closedir(d);
	qsort(all, n, sizeof(*all), by_id);
	if (n > cap)
		n = cap;
	if (n)
		memcpy(ids, all, n * sizeof(*all));
out:
	free(all);
	return n;
}
