/* driver.c - a driver program: spawns two actors and calls them.
 *
 * Reads the hub's address from $SPOKE_HUB and the job token from
 * $SPOKE_TOKEN or $SPOKE_TOKEN_FILE (spoke-launch sets both).  The agent must
 * offer the Hello and TaskActor modules (examples/run-local.sh does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/spoke.h>

#include "complex_task.h"
#include "hello.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "driver: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return 1;
}

static int say_hello(spoke_client *c)
{
	char args[64], reply[256], echo[64];
	spoke_actor *a;
	spoke_buf b;
	size_t n;
	int rc;

	/* The spawn argument is packed like any message: a string here. */
	spoke_buf_init(&b, args, sizeof(args));
	spoke_buf_put_str(&b, "Hello");
	rc = spoke_spawn(c, "Hello", "hello-1", args, b.len, NULL);
	if (rc < 0)
		return fail("spawn Hello", rc);
	rc = spoke_actor_open(c, "hello-1", &a, 0);
	if (rc < 0)
		return fail("open hello-1", rc);
	rc = spoke_call(a, HELLO_METHOD_HELLO, NULL, 0, reply, sizeof(reply), &n, 0);
	if (rc < 0) {
		spoke_actor_close(a);
		return fail("call hello", rc);
	}
	/* The reply is a packed string: a u32 length, then the bytes. */
	printf("hello-1 says: %.*s\n", (int)(n - 4), reply + 4);
	rc = spoke_call(a, HELLO_METHOD_ECHO, "ping", 4, echo, sizeof(echo), &n, 0);
	spoke_actor_close(a);
	if (rc < 0)
		return fail("call echo", rc);
	if (n != 4 || memcmp(echo, "ping", 4) != 0) {
		fprintf(stderr, "driver: echo came back wrong\n");
		return 1;
	}
	printf("hello-1 echoed: %.*s\n", (int)n, echo);
	return 0;
}

static int run_task(spoke_client *c)
{
	complex_task task = { .id = 666, .name = "ZeroCopyCheck", .n_values = 2,
			      .values = { 1.0f, 2.0f } };
	complex_result result;
	spoke_actor *a;
	int rc;

	rc = spoke_spawn(c, "TaskActor", "task-1", NULL, 0, NULL);
	if (rc < 0)
		return fail("spawn TaskActor", rc);
	rc = spoke_actor_open(c, "task-1", &a, 0);
	if (rc < 0)
		return fail("open task-1", rc);
	/* Packed straight into the send buffer, unpacked straight from the
	 * receive buffer. */
	rc = spoke_call_obj(a, COMPLEX_TASK_METHOD_RUN, &complex_task_serializer, &task,
			    &complex_result_serializer, &result, 0);
	spoke_actor_close(a);
	if (rc < 0)
		return fail("call run", rc);
	printf("task-1 result: id=%d name=%s values=%u sum=%.1f\n", result.task.id,
	       result.task.name, result.task.n_values, result.sum);
	return result.task.id == 666 && result.sum == 3.0 ? 0 : 1;
}

int main(void)
{
	spoke_client *c;
	int rc;

	rc = spoke_client_open(&c, NULL);
	if (rc < 0)
		return fail("connect to the hub", rc);
	rc = say_hello(c);
	if (rc == 0)
		rc = run_task(c);
	spoke_kill(c, "hello-1", 0);
	spoke_kill(c, "task-1", 0);
	spoke_client_close(c);
	if (rc == 0)
		printf("driver: all calls succeeded\n");
	return rc;
}
