/* env.h - reading the SPOKE_* settings from the environment.
 *
 * Each setting is checked where it is read: unset or empty gives the
 * default; a value that does not fit is SPOKE_EINVAL, with spoke_errmsg()
 * naming the variable, the value and what was expected, for example
 * "SPOKE_TIMEOUT_MS=abc: expected a positive number of milliseconds".
 * *out is left alone on failure. */
#ifndef SPOKE_ENV_H
#define SPOKE_ENV_H

#include <stdint.h>

/* A whole number in [min, max]; unit says what it counts ("milliseconds"). */
int spk_env_int(const char *name, int min, int max, int dflt, const char *unit, int *out);
/* A size in bytes in [min, max], with an optional k, m or g suffix (KiB,
 * MiB, GiB, either case). */
int spk_env_size(const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out);
/* One of choices[0..n), case-insensitive: its index. */
int spk_env_choice(const char *name, const char *const *choices, int n, int dflt, int *out);

#endif
