/* test_answers.c - unit tests of the client's decoding of the hub's ALLOC
 * and NODES answers (runtime/lib/client.c): round trips, every truncation, and
 * counts that lie about what follows them.
 *
 * A lying count must be refused before it costs memory: this program is
 * linked with -Wl,--wrap=malloc,--wrap=calloc, so every allocation the
 * decoders (libspoke_core, linked statically) make goes through the
 * wrappers below, which remember the largest one. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/client.h>
#include <spoke/errors.h>

#include "client_priv.h"
#include "proto.h"
#include "testutil.h"

/* ---- allocation accounting ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

static size_t largest_alloc;

void *__wrap_malloc(size_t n)
{
	if (n > largest_alloc)
		largest_alloc = n;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	size_t total = n * size;

	if (size && total / size != n)
		total = SIZE_MAX;
	if (total > largest_alloc)
		largest_alloc = total;
	return __real_calloc(n, size);
}

/* ---- helpers ---- */

/* An ALLOC answer of n slots (ranks, a node name "nodeK", k GPUs each) in
 * mem; returns its length. */
static size_t pack_alloc(uint8_t *mem, size_t cap, uint64_t id, uint32_t n)
{
	spoke_buf b;

	spoke_buf_init(&b, mem, cap);
	spoke_buf_put_u64(&b, id);
	spoke_buf_put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		spoke_slot s = { .rank = i, .node_rank = i / 2, .local_rank = i % 2 };

		snprintf(s.node, sizeof(s.node), "node%u", i);
		s.n_gpus = i % (SPOKE_MAX_SLOT_GPUS + 1);
		for (uint32_t g = 0; g < s.n_gpus; g++)
			s.gpus[g] = (int32_t)(g * 3 + i);
		spk_slot_pack(&b, &s);
	}
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	return b.len;
}

static int decode_alloc(const uint8_t *p, size_t n, spoke_ticket **t)
{
	uint8_t *copy = dup_exact(p, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	largest_alloc = 0;
	rc = spk_alloc_answer_decode(&v, t);
	free(copy);
	return rc;
}

/* A NODES answer: n nodes "hostK" with K GPUs, K/2 free. */
static size_t pack_nodes(uint8_t *mem, size_t cap, uint32_t n)
{
	spoke_buf b;
	char name[32];

	spoke_buf_init(&b, mem, cap);
	spoke_buf_put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "host%u", i);
		spoke_buf_put_str(&b, name);
		spoke_buf_put_u32(&b, i);
		spoke_buf_put_u32(&b, i / 2);
	}
	ck_assert_int_eq(spoke_buf_error(&b), 0);
	return b.len;
}

static int decode_nodes(const uint8_t *p, size_t n, spoke_node_info *out, size_t cap)
{
	uint8_t *copy = dup_exact(p, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	largest_alloc = 0;
	rc = spk_nodes_answer_decode(&v, out, cap);
	free(copy);
	return rc;
}

/* ---- ALLOC ---- */

START_TEST(test_alloc_round_trip)
{
	uint8_t mem[4096];
	size_t len = pack_alloc(mem, sizeof(mem), 0x1122334455667788ull, 20);
	spoke_ticket *t = NULL;

	ck_assert_int_eq(decode_alloc(mem, len, &t), 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->id, 0x1122334455667788ull);
	ck_assert_uint_eq(t->n_slots, 20);
	for (uint32_t i = 0; i < 20; i++) {
		char node[32];

		snprintf(node, sizeof(node), "node%u", i);
		ck_assert_uint_eq(t->slots[i].rank, i);
		ck_assert_uint_eq(t->slots[i].node_rank, i / 2);
		ck_assert_uint_eq(t->slots[i].local_rank, i % 2);
		ck_assert_str_eq(t->slots[i].node, node);
		ck_assert_uint_eq(t->slots[i].n_gpus, i % (SPOKE_MAX_SLOT_GPUS + 1));
		for (uint32_t g = 0; g < t->slots[i].n_gpus; g++)
			ck_assert_int_eq(t->slots[i].gpus[g], (int32_t)(g * 3 + i));
	}
	free(t);
}
END_TEST

/* Every proper prefix of a valid answer is refused, with nothing left
 * allocated (ASan's leak check). */
START_TEST(test_alloc_truncated)
{
	uint8_t mem[4096];
	size_t len = pack_alloc(mem, sizeof(mem), 9, 7);

	for (size_t n = 0; n < len; n++) {
		spoke_ticket *t = (spoke_ticket *)mem;

		ck_assert_int_eq(decode_alloc(mem, n, &t), SPOKE_EPROTO);
		ck_assert_ptr_null(t);
	}
}
END_TEST

/* The finding: an answer claiming as many slots as it has bytes (which the
 * old check let through) made the client allocate 144 B per claimed slot
 * before reading one: 150 MB for this 1 MiB answer, 1.16 GiB for 8 MiB.
 * A slot takes 20 bytes at least, so the count is refused first. */
START_TEST(test_alloc_lying_count)
{
	const size_t size = 1u << 20;
	uint8_t *mem = calloc(1, size);
	spoke_ticket *t = (spoke_ticket *)mem;
	uint32_t counts[] = { (uint32_t)(size - 12), (size - 12) / 20 + 1, UINT32_MAX };
	spoke_buf b;

	ck_assert_ptr_nonnull(mem);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		spoke_buf_init(&b, mem, size);
		spoke_buf_put_u64(&b, 42);
		spoke_buf_put_u32(&b, counts[i]);
		ck_assert_int_eq(decode_alloc(mem, size, &t), SPOKE_EPROTO);
		ck_assert_ptr_null(t);
		ck_assert_msg(largest_alloc <= 4096,
			      "a count of %u in %zu bytes cost an allocation of %zu bytes", counts[i],
			      size, largest_alloc);
		ck_assert_ptr_nonnull(strstr(spoke_errmsg(), "slots in"));
	}
	free(mem);
}
END_TEST

/* The bound is exact: as many slots as the bytes can hold, each in its
 * smallest form (a one-byte node name, no GPU: 21 bytes), is a valid
 * answer. */
START_TEST(test_alloc_count_at_bound)
{
	const uint32_t n = 1000;
	size_t size = 12 + (size_t)n * 21;
	uint8_t *mem = calloc(1, size);
	spoke_ticket *t = NULL;
	spoke_buf b;

	ck_assert_ptr_nonnull(mem);
	spoke_buf_init(&b, mem, size);
	spoke_buf_put_u64(&b, 7);
	spoke_buf_put_u32(&b, n);
	for (uint32_t i = 0; i < n; i++) {
		spoke_buf_put_u32(&b, i); /* rank, node rank, local rank */
		spoke_buf_put_u32(&b, 0);
		spoke_buf_put_u32(&b, i);
		spoke_buf_put_str(&b, "n");
		spoke_buf_put_u32(&b, 0); /* no GPU */
	}
	ck_assert_uint_eq(b.len, size);
	ck_assert_int_eq(decode_alloc(mem, size, &t), 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->n_slots, n);
	ck_assert_str_eq(t->slots[n - 1].node, "n");
	free(t);
	free(mem);
}
END_TEST

/* ---- NODES ---- */

START_TEST(test_nodes_round_trip)
{
	uint8_t mem[4096];
	size_t len = pack_nodes(mem, sizeof(mem), 5);
	spoke_node_info out[3];

	/* Fewer places than nodes: the count says how many there are. */
	ck_assert_int_eq(decode_nodes(mem, len, out, 3), 5);
	for (uint32_t i = 0; i < 3; i++) {
		char name[32];

		snprintf(name, sizeof(name), "host%u", i);
		ck_assert_str_eq(out[i].name, name);
		ck_assert_uint_eq(out[i].n_gpus, i);
		ck_assert_uint_eq(out[i].free_gpus, i / 2);
	}
	ck_assert_int_eq(decode_nodes(mem, len, NULL, 0), 5);
	for (size_t n = 0; n < len; n++)
		ck_assert_int_eq(decode_nodes(mem, n, out, 3), SPOKE_EPROTO);
}
END_TEST

/* 0xffffffff nodes in a few bytes once looped 2^32 times (15.9 s of CPU,
 * past the call's timeout): refused at once now. */
START_TEST(test_nodes_lying_count)
{
	uint8_t mem[4096];
	size_t len = pack_nodes(mem, sizeof(mem), 3);
	spoke_node_info out[4];
	uint32_t counts[] = { UINT32_MAX, (uint32_t)(len - 4) / 12 + 1, 4 };

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		spoke_buf b;

		spoke_buf_init(&b, mem, 4);
		spoke_buf_put_u32(&b, counts[i]);
		ck_assert_int_eq(decode_nodes(mem, len, out, 4), SPOKE_EPROTO);
		ck_assert_uint_le(largest_alloc, 4096);
	}
}
END_TEST

static Suite *answers_suite(void)
{
	Suite *s = suite_create("answers");
	TCase *tc = tcase_create("alloc");

	tcase_add_test(tc, test_alloc_round_trip);
	tcase_add_test(tc, test_alloc_truncated);
	tcase_add_test(tc, test_alloc_lying_count);
	tcase_add_test(tc, test_alloc_count_at_bound);
	suite_add_tcase(s, tc);

	tc = tcase_create("nodes");
	tcase_add_test(tc, test_nodes_round_trip);
	tcase_add_test(tc, test_nodes_lying_count);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(answers_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
