/* testutil.h - helpers the unit tests share (tests/unit/testutil.c). */
#ifndef SPOKE_TESTUTIL_H
#define SPOKE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A heap copy of exactly n bytes (one byte for n == 0, never read), so that
 * ASan catches a read one past the end.  Fails the test if out of memory. */
uint8_t *dup_exact(const void *src, size_t n);

#endif
