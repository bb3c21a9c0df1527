/* fuzz.c - what the libFuzzer targets share (fuzz.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "log.h"

static const char *seed_dir;
static uint8_t seed_mem[1 << 16];

void fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property broken: %s\n", file, line, what);
	abort();
}

void fz_init(const char *name, void (*seeds)(void))
{
	seed_dir = getenv("SPOKE_FUZZ_SEEDS");
	spk_log_init(name, SPK_LOG_ERROR);
	if (!seed_dir || !*seed_dir)
		return;
	seeds();
	exit(0);
}

void fz_seed(const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
}

void fz_seed_sel(const char *name, uint8_t sel, const spoke_buf *b)
{
	static uint8_t out[sizeof(seed_mem) + 1];

	if (spoke_buf_error(b)) {
		fprintf(stderr, "seed %s: packing failed\n", name);
		exit(1);
	}
	out[0] = sel;
	memcpy(out + 1, b->data, b->len);
	fz_seed(name, out, b->len + 1);
}

void fz_buf(spoke_buf *b)
{
	spoke_buf_init(b, seed_mem, sizeof(seed_mem));
}
