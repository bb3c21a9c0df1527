/* complex_task.c - packing ComplexTask as a nested record. */
#include "complex_task.h"

int complex_task_pack(spoke_buf *out, const void *obj)
{
	const complex_task *t = obj;
	size_t mark = spoke_buf_record_begin(out);

	spoke_buf_put_i32(out, t->id);
	spoke_buf_put_str(out, t->name);
	spoke_buf_put_f32_array(out, t->values, t->n_values);
	return spoke_buf_record_end(out, mark);
}

int complex_task_unpack(spoke_view *in, void *obj)
{
	complex_task *t = obj;
	spoke_view rec;
	size_t n = 0;

	spoke_view_get_record(in, &rec);
	spoke_view_get_i32(&rec, &t->id);
	spoke_view_get_str_copy(&rec, t->name, sizeof(t->name));
	spoke_view_get_f32_array(&rec, t->values, COMPLEX_TASK_VALUES_MAX, &n);
	t->n_values = (uint32_t)n;
	return spoke_view_error(&rec) ? spoke_view_error(&rec) : spoke_view_error(in);
}

int complex_result_pack(spoke_buf *out, const void *obj)
{
	const complex_result *r = obj;

	complex_task_pack(out, &r->task);
	return spoke_buf_put_f64(out, r->sum);
}

int complex_result_unpack(spoke_view *in, void *obj)
{
	complex_result *r = obj;

	complex_task_unpack(in, &r->task);
	return spoke_view_get_f64(in, &r->sum);
}

const spoke_serializer complex_task_serializer = { complex_task_pack, complex_task_unpack };
const spoke_serializer complex_result_serializer = { complex_result_pack, complex_result_unpack };
