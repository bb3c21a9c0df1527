/* complex_task.h - the ComplexTask record of the original Spoke's example:
 * an int, a string and a float vector, with its pack/unpack pair. */
#ifndef EXAMPLES_COMPLEX_TASK_H
#define EXAMPLES_COMPLEX_TASK_H

#include <stdint.h>

#include <spoke/serializer.h>

#define COMPLEX_TASK_NAME_MAX 64
#define COMPLEX_TASK_VALUES_MAX 64
#define COMPLEX_TASK_METHOD_RUN 0x60

typedef struct complex_task {
	int32_t id;
	char name[COMPLEX_TASK_NAME_MAX];
	uint32_t n_values;
	float values[COMPLEX_TASK_VALUES_MAX];
} complex_task;

/* The result the actor sends back: the task, and the sum of its values. */
typedef struct complex_result {
	complex_task task;
	double sum;
} complex_result;

int complex_task_pack(spoke_buf *out, const void *task);
int complex_task_unpack(spoke_view *in, void *task);
int complex_result_pack(spoke_buf *out, const void *result);
int complex_result_unpack(spoke_view *in, void *result);

extern const spoke_serializer complex_task_serializer;
extern const spoke_serializer complex_result_serializer;

#endif
