/* fuzz.h - what the libFuzzer targets in tests/fuzz/ share (fuzz.c).
 *
 * Each target is one file with LLVMFuzzerTestOneInput and a function that
 * writes its seed inputs: with $SPOKE_FUZZ_SEEDS=DIR a target writes them
 * into DIR and exits (make fuzz-seeds: the corpus kept in the tree,
 * tests/fuzz/corpus/TARGET/, is made that way, from the real pack
 * functions).  A broken property is an abort(): libFuzzer keeps the input
 * as a crash. */
#ifndef SPOKE_FUZZ_H
#define SPOKE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include <spoke/serializer.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Logs quiet (errors only, unless $SPOKE_LOG says otherwise); with
 * $SPOKE_FUZZ_SEEDS set, calls seeds() and exits. */
void fz_init(const char *name, void (*seeds)(void));
/* One seed file, DIR/name. */
void fz_seed(const char *name, const void *p, size_t n);
/* The same, the first byte a selector, then what b packed. */
void fz_seed_sel(const char *name, uint8_t sel, const spoke_buf *b);
/* A buffer over a static area, for packing a seed. */
void fz_buf(spoke_buf *b);

/* A property of the code under test broke: say which, and abort. */
#define FZ_CHECK(cond)                                                                    \
	do {                                                                              \
		if (!(cond))                                                              \
			fz_fail(__FILE__, __LINE__, #cond);                               \
	} while (0)
void fz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

#endif
