/* driver.c - the example job's driver: calls the job's actors.
 *
 * spoke-launch starts it once the actors of examples/job.yaml are up
 * (hello-0, hello-1, ... and task-0), with $SPOKE_HUB and the job token
 * ($SPOKE_TOKEN_FILE) in its environment.  Started against a hub with no
 * such actors, it spawns one of each itself. */
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

/* Opens actor name, spawning it from type first if the job has none. */
static int open_or_spawn(spoke_client *c, const char *name, const char *type, spoke_actor **a)
{
	int rc = spoke_actor_open(c, name, a, 0);

	if (rc != SPOKE_ENOACTOR)
		return rc;
	rc = spoke_spawn(c, type, name, NULL, 0, NULL);
	return rc < 0 ? rc : spoke_actor_open(c, name, a, 0);
}

/* A packed string reply: a u32 length, then the bytes. */
static int reply_str(spoke_actor *a, uint32_t method, char *out, size_t cap)
{
	char buf[512];
	spoke_view v;
	size_t n;
	int rc = spoke_call(a, method, NULL, 0, buf, sizeof(buf), &n, 0);

	if (rc < 0)
		return rc;
	spoke_view_init(&v, buf, n);
	return spoke_view_get_str_copy(&v, out, cap);
}

static int call_hellos(spoke_client *c)
{
	char name[32], text[256], gpus[64], echo[8];
	const char *via;
	spoke_actor *a;
	size_t n;
	int rc, i;

	for (i = 0;; i++) {
		snprintf(name, sizeof(name), "hello-%d", i);
		rc = i == 0 ? open_or_spawn(c, name, "Hello", &a) : spoke_actor_open(c, name, &a, 0);
		if (rc == SPOKE_ENOACTOR)
			break;
		if (rc < 0)
			return fail(name, rc);
		rc = reply_str(a, HELLO_METHOD_HELLO, text, sizeof(text));
		if (rc == 0)
			rc = reply_str(a, HELLO_METHOD_GPUS, gpus, sizeof(gpus));
		if (rc == 0)
			rc = spoke_call(a, HELLO_METHOD_ECHO, "ping", 4, echo, sizeof(echo), &n, 0);
		/* RDMA where both ends have a device, else TCP ($SPOKE_TRANSPORT). */
		via = spoke_actor_transport(a);
		spoke_actor_close(a);
		if (rc < 0)
			return fail(name, rc);
		if (n != 4 || memcmp(echo, "ping", 4)) {
			fprintf(stderr, "driver: %s echoed the wrong bytes\n", name);
			return 1;
		}
		printf("%s: %s (CUDA_VISIBLE_DEVICES=%s, over %s)\n", name, text, gpus, via);
	}
	printf("driver: %d Hello actors answered\n", i);
	return 0;
}

static int run_task(spoke_client *c)
{
	complex_task task = { .id = 666, .name = "ZeroCopyCheck", .n_values = 2,
			      .values = { 1.0f, 2.0f } };
	complex_result result;
	spoke_actor *a;
	int rc;

	rc = open_or_spawn(c, "task-0", "TaskActor", &a);
	if (rc < 0)
		return fail("task-0", rc);
	/* Packed straight into the send buffer, unpacked straight from the
	 * receive buffer. */
	rc = spoke_call_obj(a, COMPLEX_TASK_METHOD_RUN, &complex_task_serializer, &task,
			    &complex_result_serializer, &result, 0);
	spoke_actor_close(a);
	if (rc < 0)
		return fail("task-0 run", rc);
	printf("task-0 result: id=%d name=%s values=%u sum=%.1f\n", result.task.id,
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
	rc = call_hellos(c);
	if (rc == 0)
		rc = run_task(c);
	spoke_client_close(c);
	if (rc == 0)
		printf("driver: all calls succeeded\n");
	return rc;
}
