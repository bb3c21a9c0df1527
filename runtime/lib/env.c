/* env.c - reading the SPOKE_* settings, each checked where it is read. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spoke/errors.h>

#include "env.h"
#include "errmsg.h"

/* $name, or NULL when it is unset or empty. */
static const char *value_of(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

int spk_env_int(const char *name, int min, int max, int dflt, const char *unit, int *out)
{
	const char *v = value_of(name);
	char *end;
	long n;

	if (!v) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if ((is_digit(*v) || (*v == '-' && is_digit(v[1]))) && errno == 0 && *end == '\0' &&
	    n >= min && n <= max) {
		*out = (int)n;
		return 0;
	}
	if (min == 1 && max == INT_MAX)
		return spk_fail(SPOKE_EINVAL, "%s=%s: expected a positive number of %s", name, v,
				unit);
	if (max == INT_MAX)
		return spk_fail(SPOKE_EINVAL, "%s=%s: expected a number of %s, %d or more", name, v,
				unit, min);
	return spk_fail(SPOKE_EINVAL, "%s=%s: expected a number of %s from %d to %d", name, v,
			unit, min, max);
}

/* 4096 as "4k", 1073741824 as "1g", 12345 as "12345". */
static void format_size(char *out, size_t cap, uint64_t v)
{
	static const char suffix[] = "gmk";

	for (int i = 0; i < 3; i++) {
		unsigned shift = (unsigned)(30 - 10 * i);

		if (v && v % (1ull << shift) == 0) {
			snprintf(out, cap, "%llu%c", (unsigned long long)(v >> shift), suffix[i]);
			return;
		}
	}
	snprintf(out, cap, "%llu", (unsigned long long)v);
}

int spk_env_size(const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out)
{
	const char *v = value_of(name);
	unsigned long long n;
	char lo[32], hi[32];
	unsigned shift = 0;
	char *end;

	if (!v) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (is_digit(*v) && errno == 0 && *end == '\0' && n <= (max >> shift) &&
	    (uint64_t)n << shift >= min) {
		*out = (uint64_t)n << shift;
		return 0;
	}
	format_size(lo, sizeof(lo), min);
	format_size(hi, sizeof(hi), max);
	return spk_fail(SPOKE_EINVAL,
			"%s=%s: expected a size in bytes from %s to %s (suffix k, m or g: KiB, MiB, GiB)",
			name, v, lo, hi);
}

int spk_env_choice(const char *name, const char *const *choices, int n, int dflt, int *out)
{
	const char *v = value_of(name);
	char list[256] = "";
	size_t len = 0;

	if (!v) {
		*out = dflt;
		return 0;
	}
	for (int i = 0; i < n; i++)
		if (strcasecmp(v, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	for (int i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					i == 0 ? "" : i == n - 1 ? " or " : ", ", choices[i]);
	return spk_fail(SPOKE_EINVAL, "%s=%s: expected %s", name, v, list);
}
