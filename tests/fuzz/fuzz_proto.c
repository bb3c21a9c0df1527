/* fuzz_proto.c - the control messages' decoders (runtime/lib/proto.c, every
 * unpack there; runtime/lib/errmsg.c): the spawn spec (SPAWN, START), LAUNCH,
 * REGISTER, the endpoint (SPAWN, LAUNCH, START and LOOKUP answers), a gang
 * slot, ALLOC, RELEASE, an actor's name (LOOKUP, KILL, STOP), EXITED,
 * SPAWN_INFO, READY, a failure's text, an error REPLY's payload, a
 * worker's call figures (STATS), the STATUS answer, and the
 * option values the hub and agent parse (GPU lists, numbers, HOST:PORT).
 * The ALLOC and NODES answers have their own target (fuzz_answers.c).
 *
 * Input: a selector byte, then the payload.  Properties: whatever decodes
 * packs again and decodes to the same message (re-packing is the sender's
 * encoding of what the receiver understood), and a decoded count never
 * exceeds its array. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "fuzz.h"
#include "proto.h"

enum { SEL_SPEC, SEL_LAUNCH, SEL_REGISTER, SEL_ENDPOINT, SEL_SLOT, SEL_REPLY_ERROR, SEL_GPU_LIST,
       SEL_NUM, SEL_ADDR, SEL_ALLOC, SEL_RELEASE, SEL_ACTOR_REF, SEL_EXITED, SEL_SPAWN_INFO,
       SEL_READY, SEL_ERROR_TEXT, SEL_STATS, SEL_STATUS, SEL_COUNT_ };

static uint8_t repacked[1 << 17], repacked2[1 << 17];

/* What msg's unpack decoded packs again, decodes again in full, and packs
 * to the same bytes: the receiver understood what the sender meant. */
#define ROUND_TRIP(msg, type)                                                               	static void rt_##msg(spoke_view *v)                                                 	{                                                                                   		type m, again;                                                              		spoke_view v2;                                                              		spoke_buf b, b2;                                                                                                                                                        		if (spk_##msg##_unpack(v, &m) < 0)                                          			return;                                                             		spoke_buf_init(&b, repacked, sizeof(repacked));                             		FZ_CHECK(spk_##msg##_pack(&b, &m) == 0);                                    		spoke_view_init(&v2, b.data, b.len);                                        		FZ_CHECK(spk_##msg##_unpack(&v2, &again) == 0);                             		FZ_CHECK(spoke_view_remaining(&v2) == 0);                                   		spoke_buf_init(&b2, repacked2, sizeof(repacked2));                          		FZ_CHECK(spk_##msg##_pack(&b2, &again) == 0);                               		FZ_CHECK(b2.len == b.len && memcmp(repacked, repacked2, b.len) == 0);       	}

ROUND_TRIP(launch, struct spk_launch)
ROUND_TRIP(alloc, struct spk_alloc)
ROUND_TRIP(release, struct spk_release)
ROUND_TRIP(actor_ref, struct spk_actor_ref)
ROUND_TRIP(exited, struct spk_exited)
ROUND_TRIP(spawn_info, struct spk_spawn_info)
ROUND_TRIP(ready, struct spk_ready)

static struct spk_stats stats_a, stats_b;

/* STATS: what decodes keeps its promises (the buckets add up to the calls,
 * no more errors than calls) and packs again to the same bytes. */
static void stats_msg(spoke_view *v)
{
	size_t start = v->pos;
	spoke_buf b;

	if (spk_stats_unpack(v, &stats_a) < 0 || spoke_view_remaining(v))
		return;
	FZ_CHECK(stats_a.n <= SPK_STATS_METHODS);
	for (uint32_t i = 0; i < stats_a.n; i++) {
		uint64_t sum = 0;

		for (unsigned k = 0; k < SPK_LAT_BUCKETS; k++)
			sum += stats_a.m[i].lat[k];
		FZ_CHECK(sum == stats_a.m[i].calls && stats_a.m[i].errors <= sum);
	}
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_stats_pack(&b, &stats_a) == 0);
	FZ_CHECK(b.len == v->len - start && memcmp(repacked, v->data + start, b.len) == 0);
}

/* The STATUS answer: counts within the bytes, every actor's figures
 * decodable, and the whole packs again to the same bytes. */
static void status_answer(spoke_view *v)
{
	struct spk_status *s = NULL;
	size_t start = v->pos;
	spoke_buf b;
	int rc = spk_status_answer_decode(v, &s);

	FZ_CHECK((rc == 0) == (s != NULL));
	if (rc < 0) {
		FZ_CHECK(rc == SPOKE_EPROTO || rc == -ENOMEM);
		return;
	}
	FZ_CHECK((uint64_t)s->n_actors * SPK_STATUS_ACTOR_WIRE_MIN <= v->len);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	spk_status_begin_pack(&b, s->uptime_ms);
	spk_status_count_pack(&b, s->n_nodes);
	for (uint32_t i = 0; i < s->n_nodes; i++)
		spk_status_node_pack(&b, &s->nodes[i]);
	spk_status_count_pack(&b, s->n_actors);
	for (uint32_t i = 0; i < s->n_actors; i++) {
		spoke_view sv;

		spoke_view_init(&sv, s->actors[i].stats, s->actors[i].stats_len);
		FZ_CHECK(!s->actors[i].stats_len || spk_stats_unpack(&sv, &stats_b) == 0);
		spk_status_actor_pack(&b, &s->actors[i]);
	}
	spk_status_count_pack(&b, s->n_tickets);
	for (uint32_t i = 0; i < s->n_tickets; i++)
		spk_status_ticket_pack(&b, &s->tickets[i]);
	if (!spoke_buf_error(&b))
		FZ_CHECK(b.len == v->len - start && memcmp(repacked, v->data + start, b.len) == 0);
	spk_status_free(s);
}

static void same_spec(const struct spk_spawn_spec *a, const struct spk_spawn_spec *b)
{
	FZ_CHECK(strcmp(a->type, b->type) == 0 && strcmp(a->name, b->name) == 0);
	FZ_CHECK(strcmp(a->module, b->module) == 0 && strcmp(a->program, b->program) == 0);
	FZ_CHECK(a->args_len == b->args_len && memcmp(a->args, b->args, a->args_len) == 0);
	FZ_CHECK(a->res.gpus == b->res.gpus && a->res.cpus == b->res.cpus);
	FZ_CHECK(a->poll_us == b->poll_us && a->timeout_ms == b->timeout_ms);
	FZ_CHECK(a->max_restarts == b->max_restarts &&
		 a->restart_backoff_ms == b->restart_backoff_ms);
	FZ_CHECK(a->n_gpus == b->n_gpus && a->n_gpus <= SPOKE_MAX_SLOT_GPUS);
	FZ_CHECK(memcmp(a->gpus, b->gpus, a->n_gpus * sizeof(a->gpus[0])) == 0);
}

static void spec(spoke_view *v)
{
	struct spk_spawn_spec s, again;
	spoke_view v2;
	spoke_buf b;

	if (spk_spawn_spec_unpack(v, &s) < 0)
		return;
	spk_spawn_spec_check(&s);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_spawn_spec_pack(&b, &s) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_spawn_spec_unpack(&v2, &again) == 0 && spoke_view_remaining(&v2) == 0);
	same_spec(&s, &again);
}

static void reg(spoke_view *v)
{
	struct spk_register r, again;
	spoke_view v2;
	spoke_buf b;

	if (spk_register_unpack(v, &r) < 0)
		return;
	FZ_CHECK(r.n_gpus <= 64);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_register_pack(&b, &r) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_register_unpack(&v2, &again) == 0);
	FZ_CHECK(strcmp(r.node, again.node) == 0 && strcmp(r.host, again.host) == 0);
	FZ_CHECK(r.pid == again.pid && r.cpus == again.cpus && r.n_gpus == again.n_gpus);
	FZ_CHECK(memcmp(r.gpus, again.gpus, r.n_gpus * sizeof(r.gpus[0])) == 0);
}

static void endpoint(spoke_view *v)
{
	struct spk_endpoint e, again;
	spoke_view v2;
	spoke_buf b;

	if (spk_endpoint_unpack(v, &e) < 0)
		return;
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_endpoint_pack(&b, &e) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_endpoint_unpack(&v2, &again) == 0);
	FZ_CHECK(strcmp(e.addr, again.addr) == 0 && strcmp(e.node, again.node) == 0);
	FZ_CHECK(e.pid == again.pid);
}

static void slot(spoke_view *v)
{
	spoke_slot s, again;
	spoke_view v2;
	spoke_buf b;

	if (spk_slot_unpack(v, &s) < 0)
		return;
	FZ_CHECK(s.n_gpus <= SPOKE_MAX_SLOT_GPUS);
	spoke_buf_init(&b, repacked, sizeof(repacked));
	FZ_CHECK(spk_slot_pack(&b, &s) == 0);
	spoke_view_init(&v2, b.data, b.len);
	FZ_CHECK(spk_slot_unpack(&v2, &again) == 0);
	FZ_CHECK(s.rank == again.rank && s.node_rank == again.node_rank &&
		 s.local_rank == again.local_rank && s.n_gpus == again.n_gpus);
	FZ_CHECK(strcmp(s.node, again.node) == 0);
	FZ_CHECK(memcmp(s.gpus, again.gpus, s.n_gpus * sizeof(s.gpus[0])) == 0);
}

/* A NUL-terminated copy of the payload, for the string parsers. */
static char *cstr(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	FZ_CHECK(s);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int32_t gpus[SPOKE_MAX_SLOT_GPUS];
	char text[64];
	spoke_view v;
	uint32_t n;
	char *s;
	int rc, status;
	long num;

	if (size < 1)
		return 0;
	spoke_view_init(&v, data + 1, size - 1);
	switch (data[0] % SEL_COUNT_) {
	case SEL_SPEC: spec(&v); break;
	case SEL_LAUNCH: rt_launch(&v); break;
	case SEL_REGISTER: reg(&v); break;
	case SEL_ENDPOINT: endpoint(&v); break;
	case SEL_SLOT: slot(&v); break;
	case SEL_REPLY_ERROR:
		/* The status: the payload's first byte picks one. */
		status = size > 1 && data[1] & 1 ? SPOKE_EMETHOD : SPOKE_EINVAL;
		rc = spk_reply_error_unpack(status, data + 1, size - 1);
		FZ_CHECK(rc == status || rc == SPOKE_EPROTO);
		FZ_CHECK(strlen(spoke_errmsg()) < 4096);
		break;
	case SEL_GPU_LIST:
		s = cstr(data + 1, size - 1);
		if (spk_gpu_list_parse(s, gpus, SPOKE_MAX_SLOT_GPUS, &n) == 0) {
			char out[SPK_GPU_LIST_MAX];
			int32_t again[SPOKE_MAX_SLOT_GPUS];
			uint32_t m;

			FZ_CHECK(n <= SPOKE_MAX_SLOT_GPUS);
			spk_gpu_list_format(out, sizeof(out), gpus, n);
			FZ_CHECK(spk_gpu_list_parse(out, again, SPOKE_MAX_SLOT_GPUS, &m) == 0);
			FZ_CHECK(m == n && memcmp(gpus, again, n * sizeof(gpus[0])) == 0);
		}
		free(s);
		break;
	case SEL_NUM:
		s = cstr(data + 1, size - 1);
		if (spk_parse_num(s, -1000, 1000000, &num) == 0)
			FZ_CHECK(num >= -1000 && num <= 1000000);
		free(s);
		break;
	case SEL_ADDR:
		s = cstr(data + 1, size - 1);
		spk_parse_addr(s, size & 1);
		free(s);
		break;
	case SEL_ALLOC: rt_alloc(&v); break;
	case SEL_RELEASE: rt_release(&v); break;
	case SEL_ACTOR_REF: rt_actor_ref(&v); break;
	case SEL_EXITED: rt_exited(&v); break;
	case SEL_SPAWN_INFO: rt_spawn_info(&v); break;
	case SEL_READY: rt_ready(&v); break;
	case SEL_STATS: stats_msg(&v); break;
	case SEL_STATUS: status_answer(&v); break;
	case SEL_ERROR_TEXT:
		FZ_CHECK(spk_error_text_unpack(&v, text, sizeof(text)) == 0);
		FZ_CHECK(strlen(text) < sizeof(text) && strlen(text) <= size - 1);
		break;
	}
	return 0;
}

static void status_seeds(void)
{
	static struct spk_stats st = { .n = 2, .m = {
		{ .name = "echo", .id = 1, .calls = 3, .errors = 1, .bytes_in = 192,
		  .bytes_out = 128, .lat_sum_us = 90, .lat = { [4] = 2, [6] = 1 } },
		{ .name = "nap", .id = 5, .calls = 1, .lat_sum_us = 20000, .lat = { [15] = 1 } } } };
	struct spk_status_node n = { .name = "n1", .n_gpus = 8, .free_gpus = 6 };
	struct spk_status_actor a = { .name = "hello-0", .type = "Hello", .node = "n1",
				      .addr = "127.0.0.1:4242", .state = SPK_ACTOR_RUNNING,
				      .pid = 99, .incarnation = 3, .n_gpus = 2, .gpus = { 0, 1 },
				      .stats_age_ms = 250 };
	struct spk_status_actor a2 = { .name = "hello-1", .type = "Hello", .node = "n1",
				       .stats_age_ms = -1 };
	struct spk_status_ticket t = { .id = 7, .slots = 2, .launched = 1, .gpus = 2 };
	static uint8_t figures[4096];
	spoke_buf b;

	spoke_buf_init(&b, figures, sizeof(figures));
	spk_stats_pack(&b, &st);
	fz_seed_sel("stats", SEL_STATS, &b);
	a.stats = figures;
	a.stats_len = (uint32_t)b.len;
	fz_buf(&b);
	spk_status_begin_pack(&b, 123456);
	spk_status_count_pack(&b, 1);
	spk_status_node_pack(&b, &n);
	spk_status_count_pack(&b, 2);
	spk_status_actor_pack(&b, &a);
	spk_status_actor_pack(&b, &a2);
	spk_status_count_pack(&b, 1);
	spk_status_ticket_pack(&b, &t);
	fz_seed_sel("status", SEL_STATUS, &b);
}

static void seeds(void)
{
	struct spk_spawn_spec sp = { .type = "Hello", .name = "hello-0", .module = "./hello.so",
				     .args = "world", .args_len = 5, .res = { 2, 4 }, .poll_us = -1,
				     .timeout_ms = 30000, .max_restarts = 3, .restart_backoff_ms = 100,
				     .n_gpus = 2, .gpus = { 0, 3 } };
	struct spk_register r = { .node = "n1", .host = "127.0.0.1", .pid = 1234, .cpus = 8,
				  .n_gpus = 4, .gpus = { 0, 1, 2, 3 } };
	struct spk_endpoint e = { .addr = "127.0.0.1:4242", .node = "n1", .pid = 99 };
	spoke_slot sl = { .rank = 3, .node_rank = 1, .local_rank = 1, .node = "n2", .n_gpus = 2,
			  .gpus = { 4, 5 } };
	struct spk_launch la = { .ticket = 17, .rank = 2 };
	struct spk_alloc al = { .nodes = 2, .per_node = 4, .res = { 1, 2 }, .strict_pack = true };
	struct spk_release re = { .ticket = 17 };
	struct spk_actor_ref ar = { .name = "hello-0" };
	struct spk_exited ex = { .name = "hello-0", .why = "was killed by signal 9" };
	static struct spk_spawn_info si = { .token = "0123456789abcdef", .host = "127.0.0.1",
					    .modules = "./a.so:./b.so", .incarnation = 7 };
	struct spk_ready rd = { .port = 4242 };
	spoke_buf b;

	fz_buf(&b);
	spk_spawn_spec_pack(&b, &sp);
	fz_seed_sel("spawn", SEL_SPEC, &b);
	fz_buf(&b);
	la.spec = sp;
	spk_launch_pack(&b, &la);
	fz_seed_sel("launch", SEL_LAUNCH, &b);
	fz_buf(&b);
	spk_register_pack(&b, &r);
	fz_seed_sel("register", SEL_REGISTER, &b);
	fz_buf(&b);
	spk_endpoint_pack(&b, &e);
	fz_seed_sel("endpoint", SEL_ENDPOINT, &b);
	fz_buf(&b);
	spk_slot_pack(&b, &sl);
	fz_seed_sel("slot", SEL_SLOT, &b);
	fz_buf(&b);
	spk_reply_error_pack(&b, SPOKE_EMETHOD, -7, "the method failed");
	fz_seed_sel("method-error", SEL_REPLY_ERROR, &b);
	fz_buf(&b);
	spoke_buf_put_raw(&b, "0-3,6", 5);
	fz_seed_sel("gpu-list", SEL_GPU_LIST, &b);
	fz_buf(&b);
	spoke_buf_put_raw(&b, "30000", 5);
	fz_seed_sel("num", SEL_NUM, &b);
	fz_buf(&b);
	spoke_buf_put_raw(&b, "[::1]:8080", 10);
	fz_seed_sel("addr", SEL_ADDR, &b);
	fz_buf(&b);
	spk_alloc_pack(&b, &al);
	fz_seed_sel("alloc", SEL_ALLOC, &b);
	fz_buf(&b);
	spk_release_pack(&b, &re);
	fz_seed_sel("release", SEL_RELEASE, &b);
	fz_buf(&b);
	spk_actor_ref_pack(&b, &ar);
	fz_seed_sel("actor-ref", SEL_ACTOR_REF, &b);
	fz_buf(&b);
	spk_exited_pack(&b, &ex);
	fz_seed_sel("exited", SEL_EXITED, &b);
	fz_buf(&b);
	si.spec = sp;
	spk_spawn_info_pack(&b, &si);
	fz_seed_sel("spawn-info", SEL_SPAWN_INFO, &b);
	fz_buf(&b);
	spk_ready_pack(&b, &rd);
	fz_seed_sel("ready", SEL_READY, &b);
	fz_buf(&b);
	spk_error_text_pack(&b, "init of hello-0 (Hello) failed: no GPU");
	fz_seed_sel("error-text", SEL_ERROR_TEXT, &b);
	status_seeds();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-proto", seeds);
	return 0;
}
