/* testutil.c - helpers the unit tests share. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Under UBSan, make undefined behaviour fail the test, not just print. */
const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

uint8_t *dup_exact(const void *src, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	if (n)
		memcpy(p, src, n);
	return p;
}
