/* clock.h - monotonic time and deadlines. */
#ifndef SPOKE_CLOCK_H
#define SPOKE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t spk_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds left until deadline_us, at least 0. */
static inline int spk_ms_left(int64_t deadline_us)
{
	int64_t left = deadline_us - spk_now_us();

	return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

#endif
