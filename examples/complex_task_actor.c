/* complex_task_actor.c - the "TaskActor" type: receives a ComplexTask,
 * answers with the task (name tagged as processed) and its values' sum. */
#include <stdio.h>

#include <spoke/spoke.h>

#include "complex_task.h"

static int run(void *state, spoke_view *req, spoke_buf *reply)
{
	complex_result r = { .sum = 0 };
	int rc;

	(void)state;
	rc = complex_task_unpack(req, &r.task);
	if (rc < 0) /* the caller gets SPOKE_EMETHOD, this message and rc */
		return spoke_method_fail(reply, rc, "malformed ComplexTask (%s)",
					 spoke_strerror(rc));
	for (uint32_t i = 0; i < r.task.n_values; i++)
		r.sum += r.task.values[i];
	return complex_result_pack(reply, &r);
}

static const spoke_method task_methods[] = {
	{ COMPLEX_TASK_METHOD_RUN, "run", run },
};

static const spoke_actor_type task_type = {
	.name = "TaskActor",
	.methods = task_methods,
	.n_methods = 1,
};

SPOKE_REGISTER_ACTOR(task_type)
