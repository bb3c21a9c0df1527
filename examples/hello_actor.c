/* hello_actor.c - the "Hello" actor type, built as an actor module
 * (examples/.libs/hello.so) that the stock spoke-worker loads.
 *
 *   method 1 hello: a greeting naming the actor, its node and its GPUs
 *   method 2 echo:  the request bytes, unchanged
 *   method 3 gpus:  the actor's CUDA_VISIBLE_DEVICES */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/spoke.h>

#include "hello.h"

struct hello {
	char greeting[64];
};

static int hello_init(void *state, spoke_view *args)
{
	struct hello *h = state;

	/* An optional greeting word as the spawn argument, "Hello" otherwise. */
	if (spoke_view_remaining(args) == 0) {
		snprintf(h->greeting, sizeof(h->greeting), "Hello");
		return 0;
	}
	return spoke_view_get_str_copy(args, h->greeting, sizeof(h->greeting));
}

static int hello(void *state, spoke_view *req, spoke_buf *reply)
{
	const struct hello *h = state;
	const char *node = getenv("SPOKE_NODE");
	char text[256];

	(void)req;
	snprintf(text, sizeof(text), "%s from Spoke! I am %s on %s, GPUs [%s]", h->greeting,
		 spoke_self_name(), node ? node : "?", spoke_self_gpus());
	return spoke_buf_put_str(reply, text);
}

static int echo(void *state, spoke_view *req, spoke_buf *reply)
{
	const void *p;
	size_t n = spoke_view_remaining(req);

	(void)state;
	spoke_view_get_raw(req, &p, n);
	return spoke_buf_put_raw(reply, p, n);
}

static int gpus(void *state, spoke_view *req, spoke_buf *reply)
{
	const char *cvd = getenv("CUDA_VISIBLE_DEVICES");

	(void)state;
	(void)req;
	return spoke_buf_put_str(reply, cvd ? cvd : "");
}

static const spoke_method hello_methods[] = {
	{ HELLO_METHOD_HELLO, "hello", hello },
	{ HELLO_METHOD_ECHO, "echo", echo },
	{ HELLO_METHOD_GPUS, "gpus", gpus },
};

static const spoke_actor_type hello_type = {
	.name = "Hello",
	.state_size = sizeof(struct hello),
	.init = hello_init,
	.methods = hello_methods,
	.n_methods = sizeof(hello_methods) / sizeof(hello_methods[0]),
};

SPOKE_REGISTER_ACTOR(hello_type)
