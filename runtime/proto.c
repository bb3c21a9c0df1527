/* proto.c - packing the control messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "proto.h"

static int put_gpus(spoke_buf *b, const int32_t *gpus, uint32_t n)
{
	spoke_buf_put_u32(b, n);
	for (uint32_t i = 0; i < n; i++)
		spoke_buf_put_i32(b, gpus[i]);
	return spoke_buf_error(b);
}

static int get_gpus(spoke_view *v, int32_t *gpus, uint32_t cap, uint32_t *n)
{
	int rc = spoke_view_get_u32(v, n);

	if (rc < 0)
		return rc;
	if (*n > cap)
		return v->err = SPOKE_EPROTO;
	for (uint32_t i = 0; i < *n; i++)
		spoke_view_get_i32(v, &gpus[i]);
	return spoke_view_error(v);
}

int spk_spawn_spec_pack(spoke_buf *b, const struct spk_spawn_spec *s)
{
	spoke_buf_put_str(b, s->type);
	spoke_buf_put_str(b, s->name);
	spoke_buf_put_str(b, s->module);
	spoke_buf_put_str(b, s->program);
	spoke_buf_put_bytes(b, s->args, s->args_len);
	spoke_buf_put_u32(b, s->res.gpus);
	spoke_buf_put_u32(b, s->res.cpus);
	spoke_buf_put_i32(b, s->poll_us);
	spoke_buf_put_u32(b, s->timeout_ms);
	return put_gpus(b, s->gpus, s->n_gpus);
}

int spk_spawn_spec_unpack(spoke_view *v, struct spk_spawn_spec *s)
{
	size_t n;

	spoke_view_get_str_copy(v, s->type, sizeof(s->type));
	spoke_view_get_str_copy(v, s->name, sizeof(s->name));
	spoke_view_get_str_copy(v, s->module, sizeof(s->module));
	spoke_view_get_str_copy(v, s->program, sizeof(s->program));
	spoke_view_get_bytes(v, &s->args, &n);
	s->args_len = (uint32_t)n;
	spoke_view_get_u32(v, &s->res.gpus);
	spoke_view_get_u32(v, &s->res.cpus);
	spoke_view_get_i32(v, &s->poll_us);
	spoke_view_get_u32(v, &s->timeout_ms);
	return get_gpus(v, s->gpus, SPOKE_MAX_SLOT_GPUS, &s->n_gpus);
}

static int name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == '/' || *s == 0x7f)
			return 0;
	return 1;
}

int spk_spawn_spec_check(const struct spk_spawn_spec *s)
{
	if (!name_ok(s->type))
		return spk_fail(SPOKE_EINVAL, "actor type '%s' is empty or has spaces or '/'", s->type);
	if (!name_ok(s->name))
		return spk_fail(SPOKE_EINVAL, "actor name '%s' is empty or has spaces or '/'", s->name);
	if (s->res.gpus > SPOKE_MAX_SLOT_GPUS)
		return spk_fail(SPOKE_EINVAL, "%u GPUs per actor asked; at most %d", s->res.gpus,
				SPOKE_MAX_SLOT_GPUS);
	return 0;
}

void spk_gpu_list_format(char *out, size_t cap, const int32_t *gpus, uint32_t n)
{
	size_t len = 0;

	if (cap)
		out[0] = '\0';
	for (uint32_t i = 0; i < n && len < cap; i++) {
		int w = snprintf(out + len, cap - len, "%s%d", i ? "," : "", gpus[i]);

		if (w < 0)
			break;
		len += (size_t)w;
	}
}

int spk_gpu_list_parse(const char *s, int32_t *gpus, uint32_t cap, uint32_t *n)
{
	const char *p = s;
	char *end;
	long a, b;

	*n = 0;
	while (*p) {
		a = strtol(p, &end, 10);
		if (end == p || a < 0 || a > 1000000)
			return SPOKE_EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a || b > 1000000)
				return SPOKE_EINVAL;
			p = end;
		}
		for (long i = a; i <= b; i++) {
			if (*n >= cap)
				return SPOKE_EINVAL;
			gpus[(*n)++] = (int32_t)i;
		}
		if (*p == ',')
			p++;
		else if (*p)
			return SPOKE_EINVAL;
	}
	return 0;
}

int spk_register_pack(spoke_buf *b, const struct spk_register *r)
{
	spoke_buf_put_str(b, r->node);
	spoke_buf_put_str(b, r->host);
	spoke_buf_put_u32(b, r->pid);
	spoke_buf_put_u32(b, r->cpus);
	return put_gpus(b, r->gpus, r->n_gpus);
}

int spk_register_unpack(spoke_view *v, struct spk_register *r)
{
	spoke_view_get_str_copy(v, r->node, sizeof(r->node));
	spoke_view_get_str_copy(v, r->host, sizeof(r->host));
	spoke_view_get_u32(v, &r->pid);
	spoke_view_get_u32(v, &r->cpus);
	return get_gpus(v, r->gpus, 64, &r->n_gpus);
}

int spk_endpoint_pack(spoke_buf *b, const struct spk_endpoint *e)
{
	spoke_buf_put_str(b, e->addr);
	spoke_buf_put_str(b, e->node);
	spoke_buf_put_u32(b, e->pid);
	return spoke_buf_error(b);
}

int spk_endpoint_unpack(spoke_view *v, struct spk_endpoint *e)
{
	spoke_view_get_str_copy(v, e->addr, sizeof(e->addr));
	spoke_view_get_str_copy(v, e->node, sizeof(e->node));
	spoke_view_get_u32(v, &e->pid);
	return spoke_view_error(v);
}

int spk_slot_pack(spoke_buf *b, const spoke_slot *s)
{
	spoke_buf_put_u32(b, s->rank);
	spoke_buf_put_u32(b, s->node_rank);
	spoke_buf_put_u32(b, s->local_rank);
	spoke_buf_put_str(b, s->node);
	return put_gpus(b, s->gpus, s->n_gpus);
}

int spk_slot_unpack(spoke_view *v, spoke_slot *s)
{
	spoke_view_get_u32(v, &s->rank);
	spoke_view_get_u32(v, &s->node_rank);
	spoke_view_get_u32(v, &s->local_rank);
	spoke_view_get_str_copy(v, s->node, sizeof(s->node));
	return get_gpus(v, s->gpus, SPOKE_MAX_SLOT_GPUS, &s->n_gpus);
}
