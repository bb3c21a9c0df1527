/* own_worker.c - a user program that links its own actor type ("Own") and
 * hands control to the runtime when the agent starts it as a worker. */
#include <stdio.h>
#include <string.h>

#include <spoke/spoke.h>

static int whoami(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_raw(reply, "own-binary", 10);
}

static const spoke_method own_methods[] = { { 1, "whoami", whoami } };
static const spoke_actor_type own_type = { .name = "Own", .methods = own_methods, .n_methods = 1 };
SPOKE_REGISTER_ACTOR(own_type)

int main(int argc, char **argv)
{
	spoke_worker_maybe_run(argc, argv); /* never returns when started as a worker */
	printf("own_worker: run by hand; spoke-agent starts it as a worker\n");
	return 0;
}
