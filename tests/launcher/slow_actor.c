/* slow_actor.c - the "Slow" actor type of the spoke-launch tests: an init
 * that takes as long as a model load, and methods for a driver to call.
 *
 *   init:   its argument (a packed string, the job file's args:) is a
 *           number of milliseconds to sleep first, "0" or none for no wait
 *   method 1 echo: the request bytes, unchanged
 *   method 2 nap:  a u32 of milliseconds to sleep, echoed back */
#include <stdlib.h>
#include <time.h>

#include <spoke/spoke.h>

#include "slow.h"

static int slow_init(void *state, spoke_view *args)
{
	char text[32] = "0";
	long ms;

	(void)state;
	if (spoke_view_remaining(args) && spoke_view_get_str_copy(args, text, sizeof(text)) < 0)
		return SPOKE_EINVAL;
	ms = strtol(text, NULL, 10);
	if (ms > 0) {
		struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

		/* Like a model load: it does not look at signals. */
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return 0;
}

static int echo(void *state, spoke_view *req, spoke_buf *reply)
{
	const void *p;
	size_t n = spoke_view_remaining(req);

	(void)state;
	spoke_view_get_raw(req, &p, n);
	return spoke_buf_put_raw(reply, p, n);
}

static int nap(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t ms = 0;
	struct timespec ts;

	(void)state;
	if (spoke_view_get_u32(req, &ms) < 0)
		return spoke_view_error(req);
	ts = (struct timespec){ ms / 1000, ms % 1000 * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
	return spoke_buf_put_u32(reply, ms);
}

static const spoke_method slow_methods[] = {
	{ SLOW_ECHO, "echo", echo },
	{ SLOW_NAP, "nap", nap },
};

static const spoke_actor_type slow_type = {
	.name = "Slow",
	.init = slow_init,
	.methods = slow_methods,
	.n_methods = sizeof(slow_methods) / sizeof(slow_methods[0]),
};

SPOKE_REGISTER_ACTOR(slow_type)
