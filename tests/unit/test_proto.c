/* test_proto.c - unit tests of the control messages' codecs
 * (runtime/lib/proto.c): for each message, pack then unpack gives the message
 * back (packing what was decoded gives the same bytes, and the decoder
 * reads them all), every truncation is refused, and a bad name is refused
 * at decode.  The hub's ALLOC and NODES answers' decoders have their own
 * test (test_answers.c); their packers are checked here. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "proto.h"
#include "testutil.h"

#define WIRE_CAP (1 << 14)

/* One message's codec, through wrappers of the right type. */
struct codec {
	const char *name;
	size_t size;
	int (*pack)(spoke_buf *b, const void *m);
	int (*unpack)(spoke_view *v, void *m);
	void (*sample)(void *m);
	void (*spoil)(void *m); /* puts a bad name in; NULL: the message has none */
};

#define WRAP(msg, type)                                                                     \
	static int pack_##msg(spoke_buf *b, const void *m)                                  \
	{                                                                                   \
		return spk_##msg##_pack(b, (const type *)m);                               \
	}                                                                                   \
	static int unpack_##msg(spoke_view *v, void *m)                                     \
	{                                                                                   \
		return spk_##msg##_unpack(v, (type *)m);                                   \
	}

WRAP(spawn_spec, struct spk_spawn_spec)
WRAP(register, struct spk_register)
WRAP(endpoint, struct spk_endpoint)
WRAP(slot, spoke_slot)
WRAP(alloc, struct spk_alloc)
WRAP(launch, struct spk_launch)
WRAP(release, struct spk_release)
WRAP(actor_ref, struct spk_actor_ref)
WRAP(exited, struct spk_exited)
WRAP(spawn_info, struct spk_spawn_info)
WRAP(ready, struct spk_ready)

static void fill_spec(struct spk_spawn_spec *s)
{
	static const char args[] = "some\0args";

	snprintf(s->type, sizeof(s->type), "Echo");
	snprintf(s->name, sizeof(s->name), "echo-3");
	snprintf(s->module, sizeof(s->module), "/opt/actors/echo module.so");
	snprintf(s->program, sizeof(s->program), "./own_worker");
	s->args = args;
	s->args_len = sizeof(args);
	s->res = (spoke_resources){ 2, 8 };
	s->poll_us = -1;
	s->timeout_ms = 30000;
	s->max_restarts = 7;
	s->restart_backoff_ms = 250;
	s->n_gpus = 2;
	s->gpus[0] = 5;
	s->gpus[1] = 1;
}

static void sample_spawn_spec(void *m)
{
	fill_spec(m);
}

static void spoil_spawn_spec(void *m)
{
	snprintf(((struct spk_spawn_spec *)m)->name, SPOKE_ACTOR_NAME_MAX, "../x");
}

static void sample_register(void *m)
{
	struct spk_register *r = m;

	snprintf(r->node, sizeof(r->node), "node-7");
	snprintf(r->host, sizeof(r->host), "10.0.0.7");
	r->pid = 4321;
	r->cpus = 64;
	r->n_gpus = 3;
	r->gpus[0] = 0;
	r->gpus[1] = 2;
	r->gpus[2] = 9;
}

static void spoil_register(void *m)
{
	snprintf(((struct spk_register *)m)->node, SPOKE_NODE_NAME_MAX, "n1\nspoke-hub");
}

static void sample_endpoint(void *m)
{
	struct spk_endpoint *e = m;

	snprintf(e->addr, sizeof(e->addr), "[::1]:40123");
	snprintf(e->node, sizeof(e->node), "n2");
	e->pid = 77;
	e->incarnation = 0x0102030405060708ull;
}

static void spoil_endpoint(void *m)
{
	snprintf(((struct spk_endpoint *)m)->node, SPOKE_NODE_NAME_MAX, "..");
}

static void sample_slot(void *m)
{
	spoke_slot *s = m;

	s->rank = 5;
	s->node_rank = 2;
	s->local_rank = 1;
	snprintf(s->node, sizeof(s->node), "n3");
	s->n_gpus = 2;
	s->gpus[0] = 6;
	s->gpus[1] = 7;
}

static void spoil_slot(void *m)
{
	((spoke_slot *)m)->node[0] = '\0';
}

static void sample_alloc(void *m)
{
	*(struct spk_alloc *)m = (struct spk_alloc){ .nodes = 3, .per_node = 4,
						     .res = { 1, 2 }, .strict_pack = true };
}

static void sample_launch(void *m)
{
	struct spk_launch *l = m;

	l->ticket = 0xfedcba9876543210ull;
	l->rank = 11;
	fill_spec(&l->spec);
}

static void spoil_launch(void *m)
{
	snprintf(((struct spk_launch *)m)->spec.type, SPOKE_TYPE_NAME_MAX, "a b");
}

static void sample_release(void *m)
{
	((struct spk_release *)m)->ticket = 42;
}

static void sample_actor_ref(void *m)
{
	snprintf(((struct spk_actor_ref *)m)->name, SPOKE_ACTOR_NAME_MAX, "llm.shard-0");
}

static void spoil_actor_ref(void *m)
{
	snprintf(((struct spk_actor_ref *)m)->name, SPOKE_ACTOR_NAME_MAX, "a/b");
}

static void sample_exited(void *m)
{
	struct spk_exited *e = m;

	snprintf(e->name, sizeof(e->name), "victim");
	/* Free text: a control character is the logger's to escape. */
	snprintf(e->why, sizeof(e->why), "was killed by signal 9\n(twice)");
}

static void spoil_exited(void *m)
{
	snprintf(((struct spk_exited *)m)->name, SPOKE_ACTOR_NAME_MAX, "tab\there");
}

static void sample_spawn_info(void *m)
{
	struct spk_spawn_info *s = m;

	snprintf(s->token, sizeof(s->token), "0123456789abcdef");
	snprintf(s->host, sizeof(s->host), "127.0.0.1");
	snprintf(s->modules, sizeof(s->modules), "/a/one.so:/b/two.so");
	s->incarnation = 99;
	fill_spec(&s->spec);
}

static void spoil_spawn_info(void *m)
{
	snprintf(((struct spk_spawn_info *)m)->host, SPK_ADDR_MAX, "evil/host");
}

static void sample_ready(void *m)
{
	((struct spk_ready *)m)->port = 65535;
}

#define CODEC(msg, type, spoil)                                                             \
	{ #msg, sizeof(type), pack_##msg, unpack_##msg, sample_##msg, spoil }

static const struct codec codecs[] = {
	CODEC(spawn_spec, struct spk_spawn_spec, spoil_spawn_spec),
	CODEC(register, struct spk_register, spoil_register),
	CODEC(endpoint, struct spk_endpoint, spoil_endpoint),
	CODEC(slot, spoke_slot, spoil_slot),
	CODEC(alloc, struct spk_alloc, NULL),
	CODEC(launch, struct spk_launch, spoil_launch),
	CODEC(release, struct spk_release, NULL),
	CODEC(actor_ref, struct spk_actor_ref, spoil_actor_ref),
	CODEC(exited, struct spk_exited, spoil_exited),
	CODEC(spawn_info, struct spk_spawn_info, spoil_spawn_info),
	CODEC(ready, struct spk_ready, NULL),
};
#define N_CODECS (sizeof(codecs) / sizeof(codecs[0]))

/* Packs c's sample (or, with spoil, a spoiled one) into wire; its length. */
static size_t pack_sample(const struct codec *c, uint8_t *wire, bool spoil)
{
	void *m = calloc(1, c->size);
	spoke_buf b;

	ck_assert_ptr_nonnull(m);
	c->sample(m);
	if (spoil)
		c->spoil(m);
	spoke_buf_init(&b, wire, WIRE_CAP);
	ck_assert_msg(c->pack(&b, m) == 0, "%s: pack failed", c->name);
	free(m);
	return b.len;
}

/* Decodes exactly n bytes of p (an exact heap copy: ASan sees a read past
 * the end) into m. */
static int decode(const struct codec *c, const uint8_t *p, size_t n, void *m, size_t *left)
{
	uint8_t *copy = dup_exact(p, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	rc = c->unpack(&v, m);
	if (left)
		*left = spoke_view_remaining(&v);
	free(copy);
	return rc;
}

START_TEST(test_round_trip)
{
	const struct codec *c = &codecs[_i];
	static uint8_t wire[WIRE_CAP], again[WIRE_CAP];
	void *m = calloc(1, c->size);
	size_t n = pack_sample(c, wire, false), left = 1;
	spoke_buf b;
	uint8_t *copy = dup_exact(wire, n);
	spoke_view v;

	ck_assert_ptr_nonnull(m);
	/* Decoded from the copy, which stays alive while the message (args
	 * are a view of it) is packed again. */
	spoke_view_init(&v, copy, n);
	ck_assert_msg(c->unpack(&v, m) == 0, "%s: unpack failed: %s", c->name, spoke_errmsg());
	left = spoke_view_remaining(&v);
	ck_assert_msg(left == 0, "%s: %zu bytes left unread", c->name, left);
	spoke_buf_init(&b, again, sizeof(again));
	ck_assert_int_eq(c->pack(&b, m), 0);
	ck_assert_msg(b.len == n && memcmp(again, wire, n) == 0,
		      "%s: the decoded message packs to other bytes", c->name);
	free(copy);
	free(m);
}
END_TEST

START_TEST(test_truncated)
{
	const struct codec *c = &codecs[_i];
	static uint8_t wire[WIRE_CAP];
	size_t n = pack_sample(c, wire, false);
	void *m = calloc(1, c->size);

	ck_assert_ptr_nonnull(m);
	for (size_t k = 0; k < n; k++)
		ck_assert_msg(decode(c, wire, k, m, NULL) < 0, "%s: %zu of %zu bytes decoded",
			      c->name, k, n);
	free(m);
}
END_TEST

START_TEST(test_bad_name)
{
	const struct codec *c = &codecs[_i];
	static uint8_t wire[WIRE_CAP];
	void *m;
	size_t n;

	if (!c->spoil)
		return;
	n = pack_sample(c, wire, true);
	m = calloc(1, c->size);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(decode(c, wire, n, m, NULL) == SPOKE_EINVAL, "%s: a bad name decoded",
		      c->name);
	ck_assert_msg(strlen(spoke_errmsg()) > 0, "%s: no reason given", c->name);
	free(m);
}
END_TEST

/* A NUL inside a name never cuts it short: refused. */
START_TEST(test_nul_in_name)
{
	struct spk_actor_ref r;
	uint8_t wire[64];
	spoke_buf b;
	spoke_view v;

	spoke_buf_init(&b, wire, sizeof(wire));
	spoke_buf_put_bytes(&b, "ok\0evil", 7);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_actor_ref_unpack(&v, &r), SPOKE_EINVAL);
	ck_assert_ptr_nonnull(strstr(spoke_errmsg(), "control character"));
}
END_TEST

START_TEST(test_values_refused)
{
	struct spk_alloc a;
	struct spk_ready r;
	uint8_t wire[64];
	uint32_t ports[] = { 0, 65536, 0xffffffffu };
	spoke_buf b;
	spoke_view v;

	/* strict_pack is 0 or 1. */
	spoke_buf_init(&b, wire, sizeof(wire));
	for (int i = 0; i < 4; i++)
		spoke_buf_put_u32(&b, 1);
	spoke_buf_put_u8(&b, 2);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_alloc_unpack(&v, &a), SPOKE_EPROTO);
	/* A port is 1 to 65535. */
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		spoke_buf_init(&b, wire, sizeof(wire));
		spoke_buf_put_u32(&b, ports[i]);
		spoke_view_init(&v, wire, b.len);
		ck_assert_int_eq(spk_ready_unpack(&v, &r), SPOKE_EPROTO);
	}
}
END_TEST

/* The failure's text: the rest of the payload, cut to the room there is
 * and at a NUL; it never fails. */
START_TEST(test_error_text)
{
	char text[8];
	uint8_t wire[64];
	spoke_buf b;
	spoke_view v;

	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_error_text_pack(&b, "no GPU"), 0);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_error_text_unpack(&v, text, sizeof(text)), 0);
	ck_assert_str_eq(text, "no GPU");
	spoke_buf_init(&b, wire, sizeof(wire));
	spk_error_text_pack(&b, "far too long for it");
	spoke_view_init(&v, wire, b.len);
	spk_error_text_unpack(&v, text, sizeof(text));
	ck_assert_str_eq(text, "far too");
	spoke_view_init(&v, "a\0b", 3);
	spk_error_text_unpack(&v, text, sizeof(text));
	ck_assert_str_eq(text, "a");
	spoke_view_init(&v, "", 0);
	spk_error_text_unpack(&v, text, sizeof(text));
	ck_assert_str_eq(text, "");
}
END_TEST

/* The hub's answers: what it packs, the client decodes to the same. */
START_TEST(test_answers_round_trip)
{
	spoke_node_info nodes[2] = { { "n1", 8, 6 }, { "n2", 0, 0 } }, out[2];
	spoke_ticket *t = calloc(1, sizeof(*t) + 2 * sizeof(t->slots[0])), *back = NULL;
	static uint8_t wire[WIRE_CAP];
	spoke_buf b;
	spoke_view v;

	ck_assert_ptr_nonnull(t);
	t->id = 9;
	t->n_slots = 2;
	for (uint32_t i = 0; i < 2; i++) {
		sample_slot(&t->slots[i]);
		t->slots[i].rank = i;
	}
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_alloc_answer_pack(&b, t), 0);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_alloc_answer_decode(&v, &back), 0);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_uint_eq(back->id, 9);
	ck_assert_uint_eq(back->n_slots, 2);
	for (uint32_t i = 0; i < 2; i++) {
		ck_assert_uint_eq(back->slots[i].rank, i);
		ck_assert_str_eq(back->slots[i].node, "n3");
		ck_assert_uint_eq(back->slots[i].n_gpus, 2);
		ck_assert_int_eq(back->slots[i].gpus[1], 7);
	}
	free(back);
	free(t);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_nodes_answer_pack(&b, nodes, 2), 0);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_nodes_answer_decode(&v, out, 2), 2);
	ck_assert_str_eq(out[0].name, "n1");
	ck_assert_uint_eq(out[0].n_gpus, 8);
	ck_assert_uint_eq(out[0].free_gpus, 6);
	ck_assert_str_eq(out[1].name, "n2");
	/* A node name is a name there too. */
	snprintf(nodes[1].name, sizeof(nodes[1].name), "n2\nforged");
	spoke_buf_init(&b, wire, sizeof(wire));
	spk_nodes_answer_pack(&b, nodes, 2);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_nodes_answer_decode(&v, out, 2), SPOKE_EPROTO);
}
END_TEST


/* STATS and the STATUS answer: what a worker and the hub pack, the hub and
 * spoke-status decode to the same; what breaks their promises is refused. */
static void sample_stats(struct spk_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->n = 2;
	snprintf(st->m[0].name, sizeof(st->m[0].name), "echo");
	st->m[0] = (struct spk_method_stats){ .name = "echo", .id = 2, .calls = 5, .errors = 1,
					      .bytes_in = 320, .bytes_out = 256, .lat_sum_us = 77,
					      .lat = { [3] = 4, [5] = 1 } };
	st->m[1] = (struct spk_method_stats){ .name = "nap", .id = 5, .calls = 1,
					      .lat_sum_us = 20100, .lat = { [15] = 1 } };
}

START_TEST(test_stats_round_trip)
{
	static struct spk_stats st, back;
	static uint8_t wire[WIRE_CAP];
	spoke_buf b;
	spoke_view v;

	sample_stats(&st);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_stats_pack(&b, &st), 0);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_stats_unpack(&v, &back), 0);
	ck_assert_uint_eq(spoke_view_remaining(&v), 0);
	ck_assert_uint_eq(back.n, 2);
	ck_assert_mem_eq(&back.m[0], &st.m[0], sizeof(st.m[0]));
	ck_assert_mem_eq(&back.m[1], &st.m[1], sizeof(st.m[1]));
	/* Buckets that do not add up to the calls, more errors than calls. */
	st.m[1].calls = 2;
	spoke_buf_init(&b, wire, sizeof(wire));
	spk_stats_pack(&b, &st);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_stats_unpack(&v, &back), SPOKE_EPROTO);
	sample_stats(&st);
	st.m[0].errors = 6;
	spoke_buf_init(&b, wire, sizeof(wire));
	spk_stats_pack(&b, &st);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_stats_unpack(&v, &back), SPOKE_EPROTO);
	/* More methods than counted. */
	spoke_buf_init(&b, wire, sizeof(wire));
	spoke_buf_put_u32(&b, SPK_STATS_METHODS + 1);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_stats_unpack(&v, &back), SPOKE_EPROTO);
	/* Buckets. */
	ck_assert_uint_eq(spk_lat_bucket(0), 0);
	ck_assert_uint_eq(spk_lat_bucket(1), 0);
	ck_assert_uint_eq(spk_lat_bucket(2), 1);
	ck_assert_uint_eq(spk_lat_bucket(3), 2);
	ck_assert_uint_eq(spk_lat_bucket(64), 6);
	ck_assert_uint_eq(spk_lat_bucket(65), 7);
	ck_assert_uint_eq(spk_lat_bucket(1u << 22), 22);
	ck_assert_uint_eq(spk_lat_bucket((1u << 22) + 1), SPK_LAT_BUCKETS - 1);
	ck_assert_uint_eq(spk_lat_bucket(UINT64_MAX), SPK_LAT_BUCKETS - 1);
}
END_TEST

/* n actors, the first with figures (figures[len]). */
static size_t pack_status(uint8_t *wire, size_t cap, uint32_t n_actors, const char *name0)
{
	static struct spk_stats st;
	static uint8_t figures[4096];
	struct spk_status_node node = { .name = "n1", .n_gpus = 8, .free_gpus = 5 };
	struct spk_status_ticket t = { .id = 4, .slots = 2, .launched = 2, .gpus = 2 };
	spoke_buf b, f;

	sample_stats(&st);
	spoke_buf_init(&f, figures, sizeof(figures));
	spk_stats_pack(&f, &st);
	spoke_buf_init(&b, wire, cap);
	spk_status_begin_pack(&b, 65432);
	spk_status_count_pack(&b, 1);
	spk_status_node_pack(&b, &node);
	spk_status_count_pack(&b, n_actors);
	for (uint32_t i = 0; i < n_actors; i++) {
		struct spk_status_actor a = { .type = "Probe", .node = "n1", .state = SPK_ACTOR_RUNNING,
					      .addr = "127.0.0.1:5555", .pid = 100 + i,
					      .incarnation = 10 + i, .n_gpus = 1, .gpus = { (int32_t)i },
					      .stats_age_ms = -1 };

		if (i)
			snprintf(a.name, sizeof(a.name), "p-%u", i);
		else
			snprintf(a.name, sizeof(a.name), "%s", name0);
		if (i == 0) {
			a.stats = figures;
			a.stats_len = (uint32_t)f.len;
			a.stats_age_ms = 120;
		}
		spk_status_actor_pack(&b, &a);
	}
	spk_status_count_pack(&b, 1);
	spk_status_ticket_pack(&b, &t);
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	return b.len;
}

START_TEST(test_status_round_trip)
{
	static uint8_t wire[WIRE_CAP];
	struct spk_status *s = NULL;
	static struct spk_stats st;
	spoke_view v, sv;
	size_t len = pack_status(wire, sizeof(wire), 3, "p-0");

	spoke_view_init(&v, wire, len);
	ck_assert_int_eq(spk_status_answer_decode(&v, &s), 0);
	ck_assert_uint_eq(s->uptime_ms, 65432);
	ck_assert_uint_eq(s->n_nodes, 1);
	ck_assert_str_eq(s->nodes[0].name, "n1");
	ck_assert_uint_eq(s->nodes[0].free_gpus, 5);
	ck_assert_uint_eq(s->n_actors, 3);
	ck_assert_str_eq(s->actors[0].name, "p-0");
	ck_assert_str_eq(s->actors[2].name, "p-2");
	ck_assert_uint_eq(s->actors[2].incarnation, 12);
	ck_assert_int_eq(s->actors[2].gpus[0], 2);
	ck_assert_int_eq(s->actors[0].stats_age_ms, 120);
	ck_assert_int_eq(s->actors[1].stats_age_ms, -1);
	ck_assert_uint_eq(s->actors[1].stats_len, 0);
	spoke_view_init(&sv, s->actors[0].stats, s->actors[0].stats_len);
	ck_assert_int_eq(spk_stats_unpack(&sv, &st), 0);
	ck_assert_uint_eq(st.m[0].calls, 5);
	ck_assert_uint_eq(s->n_tickets, 1);
	ck_assert_uint_eq(s->tickets[0].launched, 2);
	spk_status_free(s);
	/* Every cut is refused, with nothing handed out. */
	for (size_t cut = 0; cut < len; cut++) {
		spoke_view_init(&v, wire, cut);
		s = (struct spk_status *)1;
		ck_assert_int_eq(spk_status_answer_decode(&v, &s), SPOKE_EPROTO);
		ck_assert_ptr_null(s);
	}
	/* A count the bytes cannot hold is refused before anything is allocated. */
	len = pack_status(wire, sizeof(wire), 1, "p-0");
	memset(wire + 8 + 4 + 14, 0xff, 4); /* the actors' count, after one node "n1" */
	spoke_view_init(&v, wire, len);
	ck_assert_int_eq(spk_status_answer_decode(&v, &s), SPOKE_EPROTO);
	ck_assert_msg(strstr(spoke_errmsg(), "4294967295 actors"), "%s", spoke_errmsg());
	/* A name with a newline. */
	len = pack_status(wire, sizeof(wire), 2, "p\nforged");
	spoke_view_init(&v, wire, len);
	ck_assert_int_eq(spk_status_answer_decode(&v, &s), SPOKE_EPROTO);
	ck_assert_ptr_null(s);
}
END_TEST

static Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codecs");

	tcase_add_loop_test(tc, test_round_trip, 0, (int)N_CODECS);
	tcase_add_loop_test(tc, test_truncated, 0, (int)N_CODECS);
	tcase_add_loop_test(tc, test_bad_name, 0, (int)N_CODECS);
	suite_add_tcase(s, tc);
	tc = tcase_create("values");
	tcase_add_test(tc, test_nul_in_name);
	tcase_add_test(tc, test_values_refused);
	tcase_add_test(tc, test_error_text);
	tcase_add_test(tc, test_answers_round_trip);
	tcase_add_test(tc, test_stats_round_trip);
	tcase_add_test(tc, test_status_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
