/* proto.c - packing the control messages, and parsing the values of the
 * hub's and agent's options. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "log.h"
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
	spoke_buf_put_u32(b, s->max_restarts);
	spoke_buf_put_u32(b, s->restart_backoff_ms);
	return put_gpus(b, s->gpus, s->n_gpus);
}

int spk_spawn_spec_unpack(spoke_view *v, struct spk_spawn_spec *s)
{
	size_t n;

	spk_view_get_name(v, "actor type", s->type, sizeof(s->type));
	spk_view_get_name(v, "actor name", s->name, sizeof(s->name));
	spk_view_get_path(v, "module", s->module, sizeof(s->module));
	spk_view_get_path(v, "program", s->program, sizeof(s->program));
	spoke_view_get_bytes(v, &s->args, &n);
	s->args_len = (uint32_t)n;
	spoke_view_get_u32(v, &s->res.gpus);
	spoke_view_get_u32(v, &s->res.cpus);
	spoke_view_get_i32(v, &s->poll_us);
	spoke_view_get_u32(v, &s->timeout_ms);
	spoke_view_get_u32(v, &s->max_restarts);
	spoke_view_get_u32(v, &s->restart_backoff_ms);
	return get_gpus(v, s->gpus, SPOKE_MAX_SLOT_GPUS, &s->n_gpus);
}

static int text_check(const char *what, const void *s, size_t n, size_t cap, bool name)
{
	const unsigned char *p = s;
	char e[SPK_ESC_CAP(40)];

	if (n >= cap)
		return spk_fail(SPOKE_EINVAL, "%s '%s' is longer than %zu bytes", what,
				spk_log_escape(e, sizeof(e), s, n), cap - 1);
	if (name && n == 0)
		return spk_fail(SPOKE_EINVAL, "%s is empty", what);
	if (name && p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))
		return spk_fail(SPOKE_EINVAL, "%s '%.*s' is not a name", what, (int)n,
				(const char *)s);
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return spk_fail(SPOKE_EINVAL, "%s '%s' has a control character", what,
					spk_log_escape(e, sizeof(e), s, n));
		if (name && (p[i] == ' ' || p[i] == '/'))
			return spk_fail(SPOKE_EINVAL, "%s '%s' has a %s", what,
					spk_log_escape(e, sizeof(e), s, n),
					p[i] == ' ' ? "space" : "'/'");
	}
	return 0;
}

int spk_name_check(const char *what, const void *s, size_t n, size_t cap)
{
	return text_check(what, s, n, cap, true);
}

int spk_path_check(const char *what, const void *s, size_t n, size_t cap)
{
	return text_check(what, s, n, cap, false);
}

static int get_text(spoke_view *v, const char *what, char *dst, size_t cap, bool name)
{
	const void *p;
	size_t n;
	int rc;

	if (cap)
		dst[0] = '\0';
	rc = spoke_view_get_bytes(v, &p, &n);
	if (rc == 0)
		rc = text_check(what, p, n, cap, name);
	if (rc < 0)
		return v->err ? v->err : (v->err = rc);
	memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}

int spk_view_get_name(spoke_view *v, const char *what, char *dst, size_t cap)
{
	return get_text(v, what, dst, cap, true);
}

int spk_view_get_path(spoke_view *v, const char *what, char *dst, size_t cap)
{
	return get_text(v, what, dst, cap, false);
}

int spk_spawn_spec_check(const struct spk_spawn_spec *s)
{
	int rc = spk_name_check("actor type", s->type, strlen(s->type), sizeof(s->type));

	if (rc == 0)
		rc = spk_name_check("actor name", s->name, strlen(s->name), sizeof(s->name));
	if (rc < 0)
		return rc;
	if (s->res.gpus > SPOKE_MAX_SLOT_GPUS)
		return spk_fail(SPOKE_EINVAL, "%u GPUs per actor asked; at most %d", s->res.gpus,
				SPOKE_MAX_SLOT_GPUS);
	if (s->max_restarts > SPOKE_MAX_RESTARTS ||
	    s->restart_backoff_ms > SPOKE_MAX_RESTART_BACKOFF_MS)
		return spk_fail(SPOKE_EINVAL, "%u restarts after %u ms asked; at most %u after %u ms",
				s->max_restarts, s->restart_backoff_ms, SPOKE_MAX_RESTARTS,
				SPOKE_MAX_RESTART_BACKOFF_MS);
	return 0;
}

/* One GPU id (0 to 1000000) at *p; moves *p past it. */
static int parse_gpu_id(const char **p, long *id)
{
	char *end;

	if (!isdigit((unsigned char)**p))
		return spk_fail(SPOKE_EINVAL, "'%.20s' is not a GPU id (want ids like 0,1,2 or 0-3)",
				*p);
	errno = 0;
	*id = strtol(*p, &end, 10);
	if (errno || *id > 1000000)
		return spk_fail(SPOKE_EINVAL, "GPU id %.20s is too large", *p);
	*p = end;
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
	long a, b;

	*n = 0;
	while (*p) {
		if (parse_gpu_id(&p, &a) < 0)
			return SPOKE_EINVAL;
		b = a;
		if (*p == '-') {
			p++;
			if (parse_gpu_id(&p, &b) < 0)
				return SPOKE_EINVAL;
			if (b < a)
				return spk_fail(SPOKE_EINVAL, "range %ld-%ld runs backwards", a, b);
		}
		for (long i = a; i <= b; i++) {
			if (*n >= cap)
				return spk_fail(SPOKE_EINVAL, "more than %u GPUs", cap);
			for (uint32_t k = 0; k < *n; k++)
				if (gpus[k] == i)
					return spk_fail(SPOKE_EINVAL, "GPU %ld is listed twice", i);
			gpus[(*n)++] = (int32_t)i;
		}
		if (*p == ',' && p[1])
			p++;
		else if (*p)
			return spk_fail(SPOKE_EINVAL, "unexpected '%c' (want ids like 0,1,2 or 0-3)",
					*p);
	}
	return 0;
}

int spk_parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!isdigit((unsigned char)*s) && *s != '-')
		end = (char *)s;
	if (errno || end == s || *end || v < min || v > max)
		return spk_fail(SPOKE_EINVAL, "want a whole number from %ld to %ld", min, max);
	*out = v;
	return 0;
}

int spk_parse_addr(const char *s, bool any_port)
{
	char host[SPK_ADDR_MAX];
	uint16_t port;

	if (spk_parse_hostport(s, host, sizeof(host), &port) < 0 || (!any_port && !port))
		return spk_fail(SPOKE_EINVAL, "want HOST:PORT ([ADDR]:PORT for IPv6), port %d to 65535",
				any_port ? 0 : 1);
	return 0;
}

int spk_bad_option(char *const argv[], int opt)
{
	char shortopt[3] = { '-', (char)optopt, '\0' };
	/* A missing value is the last argument; an unknown short option may
	 * sit inside a group (-xy). */
	const char *name = opt != ':' && optopt ? shortopt : argv[optind - 1];

	if (opt == ':')
		fprintf(stderr, "%s: option '%s' needs a value\n", program_invocation_short_name,
			name);
	else
		fprintf(stderr, "%s: unknown option '%s' (see --help)\n",
			program_invocation_short_name, name);
	return 2;
}

int spk_usage_error(const char *what, const char *value)
{
	fprintf(stderr, "%s: %s '%s': %s\n", program_invocation_short_name, what, value,
		spoke_errmsg());
	return 2;
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
	spk_view_get_name(v, "node name", r->node, sizeof(r->node));
	spk_view_get_name(v, "host", r->host, sizeof(r->host));
	spoke_view_get_u32(v, &r->pid);
	spoke_view_get_u32(v, &r->cpus);
	return get_gpus(v, r->gpus, 64, &r->n_gpus);
}

int spk_endpoint_pack(spoke_buf *b, const struct spk_endpoint *e)
{
	spoke_buf_put_str(b, e->addr);
	spoke_buf_put_str(b, e->node);
	spoke_buf_put_u32(b, e->pid);
	spoke_buf_put_u64(b, e->incarnation);
	return spoke_buf_error(b);
}

int spk_endpoint_unpack(spoke_view *v, struct spk_endpoint *e)
{
	spk_view_get_name(v, "address", e->addr, sizeof(e->addr));
	spk_view_get_name(v, "node name", e->node, sizeof(e->node));
	spoke_view_get_u32(v, &e->pid);
	spoke_view_get_u64(v, &e->incarnation);
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
	spk_view_get_name(v, "node name", s->node, sizeof(s->node));
	return get_gpus(v, s->gpus, SPOKE_MAX_SLOT_GPUS, &s->n_gpus);
}

int spk_alloc_pack(spoke_buf *b, const struct spk_alloc *a)
{
	spoke_buf_put_u32(b, a->nodes);
	spoke_buf_put_u32(b, a->per_node);
	spoke_buf_put_u32(b, a->res.gpus);
	spoke_buf_put_u32(b, a->res.cpus);
	return spoke_buf_put_u8(b, a->strict_pack ? 1 : 0);
}

int spk_alloc_unpack(spoke_view *v, struct spk_alloc *a)
{
	uint8_t strict = 0;

	spoke_view_get_u32(v, &a->nodes);
	spoke_view_get_u32(v, &a->per_node);
	spoke_view_get_u32(v, &a->res.gpus);
	spoke_view_get_u32(v, &a->res.cpus);
	if (spoke_view_get_u8(v, &strict) == 0 && strict > 1)
		v->err = SPOKE_EPROTO;
	a->strict_pack = strict == 1;
	return spoke_view_error(v);
}

int spk_alloc_answer_pack(spoke_buf *b, const spoke_ticket *t)
{
	spoke_buf_put_u64(b, t->id);
	spoke_buf_put_u32(b, t->n_slots);
	for (uint32_t i = 0; i < t->n_slots; i++)
		spk_slot_pack(b, &t->slots[i]);
	return spoke_buf_error(b);
}

/* Every count from a peer is checked against the bytes left after it
 * before anything is allocated or looped over: a count they cannot hold is
 * a lie. */
int spk_alloc_answer_decode(spoke_view *v, spoke_ticket **out)
{
	spoke_ticket *t;
	uint32_t n = 0;
	uint64_t id = 0;

	*out = NULL;
	spoke_view_get_u64(v, &id);
	spoke_view_get_u32(v, &n);
	if (spoke_view_error(v))
		return spk_fail(SPOKE_EPROTO, "malformed ALLOC answer");
	if (n > spoke_view_remaining(v) / SPK_SLOT_WIRE_MIN)
		return spk_fail(SPOKE_EPROTO, "malformed ALLOC answer: %u slots in %zu bytes", n,
				spoke_view_remaining(v));
	t = calloc(1, sizeof(*t) + n * sizeof(t->slots[0]));
	if (!t)
		return -ENOMEM;
	t->id = id;
	t->n_slots = n;
	for (uint32_t i = 0; i < n; i++)
		spk_slot_unpack(v, &t->slots[i]);
	if (spoke_view_error(v)) {
		free(t);
		return spk_fail(SPOKE_EPROTO, "malformed ALLOC answer");
	}
	*out = t;
	return 0;
}

int spk_nodes_answer_pack(spoke_buf *b, const spoke_node_info *nodes, uint32_t n)
{
	spoke_buf_put_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		spoke_buf_put_str(b, nodes[i].name);
		spoke_buf_put_u32(b, nodes[i].n_gpus);
		spoke_buf_put_u32(b, nodes[i].free_gpus);
	}
	return spoke_buf_error(b);
}

int spk_nodes_answer_decode(spoke_view *v, spoke_node_info *out, size_t cap)
{
	uint32_t n = 0;

	spoke_view_get_u32(v, &n);
	if (!spoke_view_error(v) && n > spoke_view_remaining(v) / SPK_NODE_WIRE_MIN)
		return spk_fail(SPOKE_EPROTO, "malformed NODES answer: %u nodes in %zu bytes", n,
				spoke_view_remaining(v));
	for (uint32_t i = 0; i < n && !spoke_view_error(v); i++) {
		spoke_node_info info;

		spk_view_get_name(v, "node name", info.name, sizeof(info.name));
		spoke_view_get_u32(v, &info.n_gpus);
		spoke_view_get_u32(v, &info.free_gpus);
		if (i < cap)
			out[i] = info;
	}
	if (spoke_view_error(v) == SPOKE_EINVAL)
		return spk_fail(SPOKE_EPROTO, "malformed NODES answer: %s", spoke_errmsg());
	if (spoke_view_error(v) || n > INT_MAX)
		return spk_fail(SPOKE_EPROTO, "malformed NODES answer");
	return (int)n;
}

int spk_launch_pack(spoke_buf *b, const struct spk_launch *l)
{
	spoke_buf_put_u64(b, l->ticket);
	spoke_buf_put_u32(b, l->rank);
	return spk_spawn_spec_pack(b, &l->spec);
}

int spk_launch_unpack(spoke_view *v, struct spk_launch *l)
{
	spoke_view_get_u64(v, &l->ticket);
	spoke_view_get_u32(v, &l->rank);
	return spk_spawn_spec_unpack(v, &l->spec);
}

int spk_release_pack(spoke_buf *b, const struct spk_release *r)
{
	return spoke_buf_put_u64(b, r->ticket);
}

int spk_release_unpack(spoke_view *v, struct spk_release *r)
{
	return spoke_view_get_u64(v, &r->ticket);
}

int spk_actor_ref_pack(spoke_buf *b, const struct spk_actor_ref *r)
{
	return spoke_buf_put_str(b, r->name);
}

int spk_actor_ref_unpack(spoke_view *v, struct spk_actor_ref *r)
{
	return spk_view_get_name(v, "actor name", r->name, sizeof(r->name));
}

int spk_exited_pack(spoke_buf *b, const struct spk_exited *e)
{
	spoke_buf_put_str(b, e->name);
	return spoke_buf_put_str(b, e->why);
}

int spk_exited_unpack(spoke_view *v, struct spk_exited *e)
{
	spk_view_get_name(v, "actor name", e->name, sizeof(e->name));
	e->why[0] = '\0';
	if (!spoke_view_error(v))
		spoke_view_get_str_copy(v, e->why, sizeof(e->why));
	return spoke_view_error(v);
}

int spk_spawn_info_pack(spoke_buf *b, const struct spk_spawn_info *s)
{
	spoke_buf_put_str(b, s->token);
	spoke_buf_put_str(b, s->host);
	spoke_buf_put_str(b, s->modules);
	spoke_buf_put_u64(b, s->incarnation);
	return spk_spawn_spec_pack(b, &s->spec);
}

int spk_spawn_info_unpack(spoke_view *v, struct spk_spawn_info *s)
{
	s->token[0] = '\0';
	spoke_view_get_str_copy(v, s->token, sizeof(s->token));
	spk_view_get_name(v, "host", s->host, sizeof(s->host));
	spk_view_get_path(v, "modules", s->modules, sizeof(s->modules));
	spoke_view_get_u64(v, &s->incarnation);
	return spk_spawn_spec_unpack(v, &s->spec);
}

int spk_ready_pack(spoke_buf *b, const struct spk_ready *r)
{
	return spoke_buf_put_u32(b, r->port);
}

int spk_ready_unpack(spoke_view *v, struct spk_ready *r)
{
	uint32_t port = 0;

	if (spoke_view_get_u32(v, &port) == 0 && (port == 0 || port > 65535))
		v->err = SPOKE_EPROTO;
	r->port = (uint16_t)port;
	return spoke_view_error(v);
}

int spk_error_text_pack(spoke_buf *b, const char *text)
{
	return spoke_buf_put_raw(b, text, strlen(text));
}

int spk_error_text_unpack(spoke_view *v, char *dst, size_t cap)
{
	size_t n = spoke_view_remaining(v);
	const void *text = NULL;
	const char *nul;

	if (!cap)
		return 0;
	if (n > cap - 1)
		n = cap - 1;
	dst[0] = '\0';
	if (spoke_view_get_raw(v, &text, n) < 0 || !text)
		return 0;
	nul = memchr(text, '\0', n);
	if (nul)
		n = (size_t)(nul - (const char *)text);
	memcpy(dst, text, n);
	dst[n] = '\0';
	return 0;
}

int spk_stats_pack(spoke_buf *b, const struct spk_stats *s)
{
	spoke_buf_put_u32(b, s->n);
	for (uint32_t i = 0; i < s->n && i < SPK_STATS_METHODS; i++) {
		const struct spk_method_stats *m = &s->m[i];

		spoke_buf_put_str(b, m->name);
		spoke_buf_put_u32(b, m->id);
		spoke_buf_put_u64(b, m->calls);
		spoke_buf_put_u64(b, m->errors);
		spoke_buf_put_u64(b, m->bytes_in);
		spoke_buf_put_u64(b, m->bytes_out);
		spoke_buf_put_u64(b, m->lat_sum_us);
		spoke_buf_put_u32(b, SPK_LAT_BUCKETS);
		for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++)
			spoke_buf_put_u64(b, m->lat[k]);
	}
	return spoke_buf_error(b);
}

static int method_stats_unpack(spoke_view *v, struct spk_method_stats *m)
{
	uint64_t sum = 0;
	uint32_t nb = 0;

	spk_view_get_path(v, "method name", m->name, sizeof(m->name));
	spoke_view_get_u32(v, &m->id);
	spoke_view_get_u64(v, &m->calls);
	spoke_view_get_u64(v, &m->errors);
	spoke_view_get_u64(v, &m->bytes_in);
	spoke_view_get_u64(v, &m->bytes_out);
	spoke_view_get_u64(v, &m->lat_sum_us);
	if (spoke_view_get_u32(v, &nb) == 0 && nb != SPK_LAT_BUCKETS)
		return v->err = SPOKE_EPROTO;
	for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++) {
		spoke_view_get_u64(v, &m->lat[k]);
		sum += m->lat[k];
	}
	if (!spoke_view_error(v) && (sum != m->calls || m->errors > m->calls))
		return v->err = SPOKE_EPROTO;
	return spoke_view_error(v);
}

int spk_stats_unpack(spoke_view *v, struct spk_stats *s)
{
	s->n = 0;
	if (spoke_view_get_u32(v, &s->n) < 0)
		return spoke_view_error(v);
	if (s->n > SPK_STATS_METHODS) {
		s->n = 0;
		return v->err = SPOKE_EPROTO;
	}
	for (uint32_t i = 0; i < s->n && !spoke_view_error(v); i++)
		method_stats_unpack(v, &s->m[i]);
	return spoke_view_error(v);
}

int spk_status_begin_pack(spoke_buf *b, uint64_t uptime_ms)
{
	return spoke_buf_put_u64(b, uptime_ms);
}

int spk_status_count_pack(spoke_buf *b, uint32_t n)
{
	return spoke_buf_put_u32(b, n);
}

int spk_status_node_pack(spoke_buf *b, const struct spk_status_node *n)
{
	spoke_buf_put_str(b, n->name);
	spoke_buf_put_u32(b, n->n_gpus);
	return spoke_buf_put_u32(b, n->free_gpus);
}

int spk_status_actor_pack(spoke_buf *b, const struct spk_status_actor *a)
{
	spoke_buf_put_str(b, a->name);
	spoke_buf_put_str(b, a->type);
	spoke_buf_put_str(b, a->node);
	spoke_buf_put_str(b, a->addr);
	spoke_buf_put_u8(b, a->state);
	spoke_buf_put_u32(b, a->pid);
	spoke_buf_put_u64(b, a->incarnation);
	spoke_buf_put_u32(b, a->restarts);
	put_gpus(b, a->gpus, a->n_gpus);
	spoke_buf_put_i64(b, a->stats_age_ms);
	return spoke_buf_put_bytes(b, a->stats, a->stats_len);
}

int spk_status_ticket_pack(spoke_buf *b, const struct spk_status_ticket *t)
{
	spoke_buf_put_u64(b, t->id);
	spoke_buf_put_u32(b, t->slots);
	spoke_buf_put_u32(b, t->launched);
	return spoke_buf_put_u32(b, t->gpus);
}

static int status_node_unpack(spoke_view *v, struct spk_status_node *n)
{
	spk_view_get_name(v, "node name", n->name, sizeof(n->name));
	spoke_view_get_u32(v, &n->n_gpus);
	spoke_view_get_u32(v, &n->free_gpus);
	if (!spoke_view_error(v) && n->free_gpus > n->n_gpus)
		v->err = SPOKE_EPROTO;
	return spoke_view_error(v);
}

/* tmp: room to check the actor's figures in. */
static int status_actor_unpack(spoke_view *v, struct spk_status_actor *a, struct spk_stats *tmp)
{
	spoke_view sv;
	size_t n = 0;

	spk_view_get_name(v, "actor name", a->name, sizeof(a->name));
	spk_view_get_name(v, "actor type", a->type, sizeof(a->type));
	spk_view_get_name(v, "node name", a->node, sizeof(a->node));
	spk_view_get_path(v, "address", a->addr, sizeof(a->addr));
	spoke_view_get_u8(v, &a->state);
	spoke_view_get_u32(v, &a->pid);
	spoke_view_get_u64(v, &a->incarnation);
	spoke_view_get_u32(v, &a->restarts);
	if (!spoke_view_error(v))
		get_gpus(v, a->gpus, SPOKE_MAX_SLOT_GPUS, &a->n_gpus);
	spoke_view_get_i64(v, &a->stats_age_ms);
	a->stats = NULL;
	spoke_view_get_bytes(v, &a->stats, &n);
	a->stats_len = (uint32_t)n;
	if (spoke_view_error(v))
		return spoke_view_error(v);
	if (a->state > SPK_ACTOR_RESTARTING || a->stats_age_ms < -1)
		return v->err = SPOKE_EPROTO;
	if ((a->stats_age_ms < 0) != (n == 0))
		return v->err = SPOKE_EPROTO;
	spoke_view_init(&sv, a->stats, n);
	if (n && (spk_stats_unpack(&sv, tmp) < 0 || spoke_view_remaining(&sv)))
		return v->err = SPOKE_EPROTO;
	return 0;
}

static int status_ticket_unpack(spoke_view *v, struct spk_status_ticket *t)
{
	spoke_view_get_u64(v, &t->id);
	spoke_view_get_u32(v, &t->slots);
	spoke_view_get_u32(v, &t->launched);
	spoke_view_get_u32(v, &t->gpus);
	if (!spoke_view_error(v) && t->launched > t->slots)
		v->err = SPOKE_EPROTO;
	return spoke_view_error(v);
}

/* A count from v, checked against the bytes left (min each), then room for
 * that many entries of size `size`: 0, SPOKE_EPROTO (why in spoke_errmsg())
 * or -ENOMEM. */
static int status_list(spoke_view *v, const char *what, size_t min, size_t size, uint32_t *n,
		       void **out)
{
	*n = 0;
	if (spoke_view_get_u32(v, n) < 0)
		return spk_fail(SPOKE_EPROTO, "malformed STATUS answer: no count of %s", what);
	if (*n > spoke_view_remaining(v) / min)
		return spk_fail(SPOKE_EPROTO, "malformed STATUS answer: %u %s in %zu bytes", *n,
				what, spoke_view_remaining(v));
	*out = calloc(*n ? *n : 1, size);
	return *out ? 0 : -ENOMEM;
}

/* An entry's decoding failed with rc (the view's error): SPOKE_EPROTO,
 * saying which entry (and why, for a bad name). */
static int status_bad(int rc, const char *what, uint32_t i)
{
	if (rc == SPOKE_EINVAL)
		return spk_fail(SPOKE_EPROTO, "malformed STATUS answer: %s %u: %s", what, i,
				spoke_errmsg());
	return spk_fail(SPOKE_EPROTO, "malformed STATUS answer: %s %u", what, i);
}

void spk_status_free(struct spk_status *s)
{
	if (!s)
		return;
	free(s->nodes);
	free(s->actors);
	free(s->tickets);
	free(s);
}

int spk_status_answer_decode(spoke_view *v, struct spk_status **out)
{
	struct spk_status *s = calloc(1, sizeof(*s));
	struct spk_stats *tmp = malloc(sizeof(*tmp));
	uint32_t i;
	int rc = -ENOMEM;

	*out = NULL;
	if (!s || !tmp)
		goto out_free;
	rc = spoke_view_get_u64(v, &s->uptime_ms) < 0
		     ? spk_fail(SPOKE_EPROTO, "malformed STATUS answer: no uptime")
		     : status_list(v, "nodes", SPK_STATUS_NODE_WIRE_MIN, sizeof(*s->nodes),
				   &s->n_nodes, (void **)&s->nodes);
	for (i = 0; rc == 0 && i < s->n_nodes; i++)
		if (status_node_unpack(v, &s->nodes[i]) < 0)
			rc = status_bad(spoke_view_error(v), "node", i);
	if (rc == 0)
		rc = status_list(v, "actors", SPK_STATUS_ACTOR_WIRE_MIN, sizeof(*s->actors),
				 &s->n_actors, (void **)&s->actors);
	for (i = 0; rc == 0 && i < s->n_actors; i++)
		if (status_actor_unpack(v, &s->actors[i], tmp) < 0)
			rc = status_bad(spoke_view_error(v), "actor", i);
	if (rc == 0)
		rc = status_list(v, "tickets", SPK_STATUS_TICKET_WIRE_MIN, sizeof(*s->tickets),
				 &s->n_tickets, (void **)&s->tickets);
	for (i = 0; rc == 0 && i < s->n_tickets; i++)
		if (status_ticket_unpack(v, &s->tickets[i]) < 0)
			rc = status_bad(spoke_view_error(v), "ticket", i);
	if (rc == 0 && spoke_view_remaining(v))
		rc = spk_fail(SPOKE_EPROTO, "malformed STATUS answer: %zu bytes after its end",
			      spoke_view_remaining(v));
out_free:
	free(tmp);
	if (rc < 0) {
		spk_status_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
