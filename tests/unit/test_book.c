/* test_book.c - unit tests of the hub's placement book (runtime/hub/book.c). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "book.h"

static struct spk_book g;

static void setup(void)
{
	spk_book_init(&g);
}

static void teardown(void)
{
	spk_book_fini(&g);
}

/* Adds a node whose GPU ids are first, first+1, ... */
static int add(const char *name, int32_t first, uint32_t n_gpus, uint32_t cpus)
{
	int32_t ids[SPK_MAX_NODE_GPUS + 1];
	uint32_t i;

	for (i = 0; i < n_gpus && i < SPK_MAX_NODE_GPUS + 1; i++)
		ids[i] = first + (int32_t)i;
	return spk_book_add_node(&g, name, ids, n_gpus, cpus);
}

static uint32_t used_count(uint32_t node)
{
	return (uint32_t)__builtin_popcountll(g.nodes[node].gpu_used);
}

static uint32_t n_tickets(void)
{
	uint32_t n = 0;

	for (struct spk_ticket *t = g.tickets; t; t = t->next)
		n++;
	return n;
}

static int alloc(uint64_t owner, uint32_t nodes, uint32_t per_node, uint32_t gpus,
		 uint32_t cpus, bool strict, struct spk_ticket **t, char *why, size_t cap)
{
	spoke_resources res = { .gpus = gpus, .cpus = cpus };

	return spk_book_allocate(&g, owner, nodes, per_node, &res, strict, t, why, cap);
}

static void assert_one_line(const char *why)
{
	ck_assert_msg(why[0] != '\0', "why is empty");
	ck_assert_msg(!strchr(why, '\n'), "why has a newline: %s", why);
}

/* The GPU ids of t's grants are distinct and each belongs to its node, at
 * a bit marked used. */
static void assert_grants_consistent(const struct spk_ticket *t)
{
	for (uint32_t k = 0; k < t->n; k++) {
		const struct spk_grant *a = &t->grants[k];
		const struct spk_node *nd = &g.nodes[a->node];

		ck_assert_uint_eq(a->rank, k);
		for (uint32_t j = 0; j < a->n_gpus; j++) {
			uint32_t i;

			for (i = 0; i < nd->n_gpus; i++)
				if (nd->gpus[i] == a->gpus[j])
					break;
			ck_assert_msg(i < nd->n_gpus, "GPU %d not on node %u", a->gpus[j], a->node);
			ck_assert_msg(nd->gpu_used & (1ULL << i), "GPU %d not marked used",
				      a->gpus[j]);
			for (uint32_t l = 0; l < t->n; l++) {
				const struct spk_grant *b = &t->grants[l];

				if (b->node != a->node)
					continue;
				for (uint32_t m = 0; m < b->n_gpus; m++) {
					if (l == k && m == j)
						continue;
					ck_assert_msg(b->gpus[m] != a->gpus[j],
						      "GPU %d given twice", a->gpus[j]);
				}
			}
		}
	}
}

START_TEST(test_fit_1x8)
{
	struct spk_ticket *t = NULL;
	char why[256];
	int idx = add("a", 100, 8, 0);
	int32_t seen = 0;

	ck_assert_int_eq(idx, 0);
	ck_assert_int_eq(alloc(7, 1, 8, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->id, 1);
	ck_assert_uint_eq(t->owner, 7);
	ck_assert_uint_eq(t->n, 8);
	for (uint32_t k = 0; k < 8; k++) {
		const struct spk_grant *gr = &t->grants[k];

		ck_assert_uint_eq(gr->node, (uint32_t)idx);
		ck_assert_uint_eq(gr->rank, k);
		ck_assert_uint_eq(gr->node_rank, 0);
		ck_assert_uint_eq(gr->local_rank, k);
		ck_assert_uint_eq(gr->n_gpus, 1);
		ck_assert_int_ge(gr->gpus[0], 100);
		ck_assert_int_le(gr->gpus[0], 107);
		ck_assert_msg(!(seen & (1 << (gr->gpus[0] - 100))), "GPU %d twice", gr->gpus[0]);
		seen |= 1 << (gr->gpus[0] - 100);
	}
	ck_assert_int_eq(seen, 0xff);
	ck_assert_uint_eq(g.nodes[idx].gpu_used, 0xff);
	ck_assert_ptr_eq(g.tickets, t);
	assert_grants_consistent(t);
}
END_TEST

START_TEST(test_no_fit_all_or_nothing)
{
	struct spk_ticket *t = NULL, *t2 = (struct spk_ticket *)&g;
	char why[256];

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(add("n2", 4, 4, 0), 1);
	ck_assert_int_eq(alloc(1, 1, 2, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(used_count(0), 2);
	ck_assert_uint_eq(used_count(1), 0);

	ck_assert_int_eq(alloc(1, 2, 4, 1, 0, true, &t2, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 2 nodes x 4 slots x 1 GPU (strict pack); "
			      "free: n1 2/4 GPUs, n2 4/4 GPUs");
	ck_assert_ptr_eq(t2, (struct spk_ticket *)&g);
	ck_assert_uint_eq(used_count(0), 2);
	ck_assert_uint_eq(used_count(1), 0);
	ck_assert_uint_eq(n_tickets(), 1);

	/* Spread also fails: 6 free, 7 asked.  Nothing taken on either node. */
	ck_assert_int_eq(alloc(1, 1, 7, 1, 0, false, &t2, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 7 slots x 1 GPU; free: n1 2/4 GPUs, n2 4/4 GPUs");
	assert_one_line(why);
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0x3);
	ck_assert_uint_eq(g.nodes[1].gpu_used, 0);
	ck_assert_uint_eq(n_tickets(), 1);

	/* The failures used no ticket id. */
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, false, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(t2->id, 2);
}
END_TEST

START_TEST(test_strict_pack_2x4)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(add("n2", 4, 4, 0), 1);
	ck_assert_int_eq(alloc(1, 2, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->n, 8);
	for (uint32_t k = 0; k < 8; k++) {
		ck_assert_uint_eq(t->grants[k].node_rank, k / 4);
		ck_assert_uint_eq(t->grants[k].local_rank, k % 4);
		ck_assert_uint_eq(t->grants[k].node, t->grants[k / 4 * 4].node);
	}
	ck_assert_uint_ne(t->grants[0].node, t->grants[4].node);
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0xf);
	ck_assert_uint_eq(g.nodes[1].gpu_used, 0xf);
	assert_grants_consistent(t);
}
END_TEST

START_TEST(test_spread_1x8)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(add("n2", 4, 4, 0), 1);

	ck_assert_int_eq(alloc(1, 1, 8, 1, 0, true, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 8 slots x 1 GPU (strict pack); "
			      "free: n1 4/4 GPUs, n2 4/4 GPUs");
	ck_assert_uint_eq(g.nodes[0].gpu_used | g.nodes[1].gpu_used, 0);

	/* One gang node whose share spills onto a second node: node_rank
	 * says which gang node, `node` where the slot is. */
	ck_assert_int_eq(alloc(1, 1, 8, 1, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->n, 8);
	for (uint32_t k = 0; k < 8; k++) {
		const struct spk_grant *gr = &t->grants[k];

		ck_assert_uint_eq(gr->rank, k);
		ck_assert_uint_eq(gr->node, k / 4);
		ck_assert_uint_eq(gr->node_rank, 0);
		ck_assert_uint_eq(gr->local_rank, k);
		ck_assert_uint_eq(gr->n_gpus, 1);
		ck_assert_int_eq(gr->gpus[0] / 4, (int32_t)(k / 4));
	}
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0xf);
	ck_assert_uint_eq(g.nodes[1].gpu_used, 0xf);
	assert_grants_consistent(t);
}
END_TEST

/* Without strict_pack a share that fits on one node still goes there. */
START_TEST(test_spread_tries_strict_first)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("small", 0, 2, 0), 0);
	ck_assert_int_eq(add("big", 2, 4, 0), 1);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, false, &t, why, sizeof(why)), 0);
	for (uint32_t k = 0; k < 4; k++) {
		ck_assert_uint_eq(t->grants[k].node, 1);
		ck_assert_uint_eq(t->grants[k].node_rank, 0);
	}
	ck_assert_uint_eq(used_count(0), 0);
	ck_assert_uint_eq(used_count(1), 4);
}
END_TEST

/* Slot r belongs to gang node r / per_node as local rank r % per_node, and
 * returns where each slot is, as node indexes. */
static void assert_ranks(const struct spk_ticket *t, uint32_t per_node, uint32_t *where)
{
	for (uint32_t r = 0; r < t->n; r++) {
		ck_assert_uint_eq(t->grants[r].node_rank, r / per_node);
		ck_assert_uint_eq(t->grants[r].local_rank, r % per_node);
		where[r] = t->grants[r].node;
	}
	assert_grants_consistent(t);
}

/* 3 gang nodes x 1 slot, two free nodes: the gang nodes spread over both
 * (the third shares a node), not all on the first. */
START_TEST(test_spread_3x1_two_nodes)
{
	struct spk_ticket *t = NULL;
	uint32_t where[3];
	char why[256];

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(add("n2", 4, 4, 0), 1);
	ck_assert_int_eq(alloc(1, 3, 1, 1, 0, true, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_int_eq(alloc(1, 3, 1, 1, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->n, 3);
	assert_ranks(t, 1, where);
	ck_assert_uint_eq(where[0], 0);
	ck_assert_uint_eq(where[1], 1);
	ck_assert_uint_eq(where[2], 0);
	ck_assert_uint_eq(used_count(0), 2);
	ck_assert_uint_eq(used_count(1), 1);
}
END_TEST

/* Homes go to the nodes with the most room, distinct ones first; what does
 * not fit at home spills onto nodes with room left. */
START_TEST(test_spread_homes_and_spill)
{
	struct spk_ticket *t = NULL, *hold = NULL;
	uint32_t where[6];
	char why[256];

	ck_assert_int_eq(add("a", 0, 2, 0), 0);
	ck_assert_int_eq(add("b", 10, 4, 0), 1);
	ck_assert_int_eq(add("c", 20, 2, 0), 2);
	/* Leave a with one free GPU. */
	ck_assert_int_eq(alloc(9, 1, 1, 1, 0, true, &hold, why, sizeof(why)), 0);
	ck_assert_uint_eq(hold->grants[0].node, 0);

	/* 3 x 2 does not pack (a has room for 1): b and c are homes of gang
	 * nodes 0 and 1, a of gang node 2, whose second slot spills onto b. */
	ck_assert_int_eq(alloc(1, 3, 2, 1, 0, false, &t, why, sizeof(why)), 0);
	assert_ranks(t, 2, where);
	ck_assert_uint_eq(where[0], 1);
	ck_assert_uint_eq(where[1], 1);
	ck_assert_uint_eq(where[2], 2);
	ck_assert_uint_eq(where[3], 2);
	ck_assert_uint_eq(where[4], 0);
	ck_assert_uint_eq(where[5], 1);
	ck_assert_uint_eq(used_count(0), 2);
	ck_assert_uint_eq(used_count(1), 3);
	ck_assert_uint_eq(used_count(2), 2);

	/* One more slot than the room left: refused, nothing taken. */
	ck_assert_int_eq(alloc(1, 2, 1, 1, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 2 nodes x 1 slot x 1 GPU; free: a 0/2 GPUs, b 1/4 GPUs, "
			      "c 0/2 GPUs");
	ck_assert_uint_eq(used_count(1), 3);
	ck_assert_uint_eq(n_tickets(), 2);
}
END_TEST

/* A share that does not fit its home spills, and the other gang nodes keep
 * their own homes. */
START_TEST(test_spread_share_spills)
{
	struct spk_ticket *t = NULL;
	uint32_t where[6];
	char why[256];

	ck_assert_int_eq(add("big", 0, 4, 0), 0);
	ck_assert_int_eq(add("small", 4, 2, 0), 1);
	ck_assert_int_eq(alloc(1, 2, 3, 1, 0, false, &t, why, sizeof(why)), 0);
	assert_ranks(t, 3, where);
	ck_assert_uint_eq(where[0], 0);
	ck_assert_uint_eq(where[1], 0);
	ck_assert_uint_eq(where[2], 0);
	ck_assert_uint_eq(where[3], 1);
	ck_assert_uint_eq(where[4], 1);
	ck_assert_uint_eq(where[5], 0);
}
END_TEST

START_TEST(test_multi_gpu_slots)
{
	struct spk_ticket *t = NULL, *t2 = NULL;
	char why[256];

	ck_assert_int_eq(add("a", 20, 8, 0), 0);
	ck_assert_int_eq(alloc(1, 1, 3, 3, 0, true, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 3 slots x 3 GPUs (strict pack); free: a 8/8 GPUs");

	ck_assert_int_eq(alloc(1, 1, 2, 3, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(used_count(0), 6);
	ck_assert_int_eq(alloc(1, 1, 1, 2, 0, true, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(used_count(0), 8);
	spk_book_release(&g, t);
	spk_book_release(&g, t2);
	ck_assert_uint_eq(used_count(0), 0);

	ck_assert_int_eq(alloc(1, 1, 4, 2, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->n, 4);
	for (uint32_t k = 0; k < 4; k++) {
		ck_assert_uint_eq(t->grants[k].n_gpus, 2);
		ck_assert_uint_eq(t->grants[k].local_rank, k);
	}
	assert_grants_consistent(t);
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0xff);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, false, &t2, why, sizeof(why)), SPOKE_ENORES);
}
END_TEST

START_TEST(test_best_fit)
{
	struct spk_ticket *t = NULL;
	char why[256];
	uint32_t a, b;

	ck_assert_int_eq(add("n0", 0, 8, 0), 0);
	ck_assert_int_eq(add("n1", 10, 4, 0), 1);
	ck_assert_int_eq(add("n2", 20, 6, 0), 2);
	ck_assert_int_eq(add("n3", 30, 2, 0), 3);

	/* n3 has the fewest free but too few; n1 is the tightest that fits. */
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 1);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 2);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 0);
	/* Free now: n0 4, n1 0, n2 2, n3 2.  Two nodes x 2: n2 and n3. */
	ck_assert_int_eq(alloc(1, 2, 2, 1, 0, true, &t, why, sizeof(why)), 0);
	a = t->grants[0].node;
	b = t->grants[2].node;
	ck_assert_msg((a == 2 && b == 3) || (a == 3 && b == 2), "got nodes %u and %u", a, b);
	ck_assert_uint_eq(used_count(0), 4);
}
END_TEST

START_TEST(test_best_fit_tie_lowest_index)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("n0", 0, 4, 0), 0);
	ck_assert_int_eq(add("n1", 4, 4, 0), 1);
	ck_assert_int_eq(add("n2", 8, 4, 0), 2);
	spk_book_node_down(&g, 0);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 1);
	/* n1 now has 3 free: the tightest. */
	ck_assert_int_eq(alloc(1, 1, 3, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 1);
	ck_assert_int_eq(alloc(1, 1, 3, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 2);
}
END_TEST

START_TEST(test_cpus)
{
	struct spk_ticket *t = NULL, *t2 = NULL;
	char why[256];

	ck_assert_int_eq(add("c", 0, 4, 8), 0);
	/* 4 GPUs free but 4 x 3 CPUs > 8. */
	ck_assert_int_eq(alloc(1, 1, 4, 1, 3, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 4 slots x 1 GPU + 3 CPUs; free: c 4/4 GPUs 8/8 CPUs");
	ck_assert_uint_eq(g.nodes[0].cpus_used, 0);

	ck_assert_int_eq(alloc(1, 1, 2, 1, 3, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 6);
	ck_assert_uint_eq(t->grants[0].cpus, 3);
	ck_assert_uint_eq(t->grants[1].cpus, 3);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 3, false, &t2, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 1 slot x 1 GPU + 3 CPUs; free: c 2/4 GPUs 2/8 CPUs");
	ck_assert_int_eq(alloc(1, 1, 1, 1, 2, false, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 8);
	/* CPU-only slots. */
	ck_assert_int_eq(alloc(1, 1, 1, 0, 1, false, &t2, why, sizeof(why)), SPOKE_ENORES);
	spk_book_release(&g, t);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 2);
	ck_assert_int_eq(alloc(1, 1, 4, 0, 1, false, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(t2->grants[3].n_gpus, 0);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 6);
	ck_assert_uint_eq(used_count(0), 1);
}
END_TEST

START_TEST(test_cpus_not_counted)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("nc", 0, 4, 0), 0);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 1000, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].cpus, 1000);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 0);
	spk_book_release(&g, t);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 0);
	ck_assert_uint_eq(used_count(0), 0);
}
END_TEST

START_TEST(test_release)
{
	struct spk_ticket *t = NULL, *t2 = NULL;
	char why[256];
	uint64_t id;

	ck_assert_int_eq(add("n1", 0, 4, 16), 0);
	ck_assert_int_eq(add("n2", 4, 4, 16), 1);
	ck_assert_int_eq(alloc(1, 2, 4, 1, 2, true, &t, why, sizeof(why)), 0);
	id = t->id;
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, false, &t2, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_uint_eq(g.nodes[0].cpus_used, 8);

	spk_book_release(&g, t);
	ck_assert_ptr_null(spk_book_find(&g, id));
	ck_assert_ptr_null(g.tickets);
	ck_assert_uint_eq(g.nodes[0].gpu_used | g.nodes[1].gpu_used, 0);
	ck_assert_uint_eq(g.nodes[0].cpus_used + g.nodes[1].cpus_used, 0);

	ck_assert_int_eq(alloc(1, 2, 4, 1, 2, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_ne(t->id, id);
	assert_grants_consistent(t);
	spk_book_release(&g, NULL);
	ck_assert_uint_eq(n_tickets(), 1);
}
END_TEST

START_TEST(test_release_owner)
{
	struct spk_ticket *a1 = NULL, *a2 = NULL, *b = NULL;
	char why[256];
	uint64_t id1, id2;

	ck_assert_int_eq(add("n1", 0, 8, 0), 0);
	ck_assert_int_eq(alloc(1, 1, 2, 1, 0, true, &a1, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(2, 1, 3, 1, 0, true, &b, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, true, &a2, why, sizeof(why)), 0);
	id1 = a1->id;
	id2 = a2->id;
	ck_assert_uint_eq(used_count(0), 6);

	ck_assert_int_eq(spk_book_release_owner(&g, 1), 2);
	ck_assert_ptr_null(spk_book_find(&g, id1));
	ck_assert_ptr_null(spk_book_find(&g, id2));
	ck_assert_ptr_eq(spk_book_find(&g, b->id), b);
	ck_assert_uint_eq(used_count(0), 3);
	assert_grants_consistent(b);

	ck_assert_int_eq(spk_book_release_owner(&g, 1), 0);
	ck_assert_int_eq(spk_book_release_owner(&g, 3), 0);
	ck_assert_int_eq(spk_book_release_owner(&g, 2), 1);
	ck_assert_ptr_null(g.tickets);
	ck_assert_uint_eq(used_count(0), 0);
}
END_TEST

START_TEST(test_node_down)
{
	struct spk_ticket *t = NULL, *t2 = NULL;
	char why[256];

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(add("n2", 4, 4, 0), 1);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 0);

	spk_book_node_down(&g, 0);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, false, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(t2->grants[0].node, 1);
	ck_assert_uint_eq(t2->grants[3].node, 1);
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, false, &t2, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 1 slot x 1 GPU; free: n2 0/4 GPUs");

	/* The ticket on the dead node keeps its slot until released. */
	ck_assert_uint_eq(used_count(0), 1);
	spk_book_release(&g, t);
	ck_assert_uint_eq(used_count(0), 0);

	spk_book_node_down(&g, 1);
	spk_book_node_down(&g, 99); /* out of range: ignored */
	ck_assert_int_eq(alloc(1, 1, 1, 0, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 1 slot x 0 GPUs; free: no live nodes");

	/* A dead node's name may come back, as a new node: in the entry of
	 * dead n1, which no ticket holds any more (t2 still holds n2's). */
	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_uint_eq(g.n_nodes, 2);
	ck_assert_uint_eq(used_count(0), 0);
	ck_assert_int_eq(alloc(1, 1, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].node, 0);
}
END_TEST

START_TEST(test_add_node_errors)
{
	int32_t dup[] = { 4, 5, 6, 5 };
	int32_t ok[] = { 4, 5, 6, 7 };
	char name[SPOKE_NODE_NAME_MAX + 1];
	uint32_t i;

	ck_assert_int_eq(spk_book_add_node(&g, "d", dup, 4, 0), SPOKE_EINVAL);
	ck_assert_int_eq(add("big", 0, SPK_MAX_NODE_GPUS + 1, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spk_book_add_node(&g, NULL, ok, 4, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spk_book_add_node(&g, "", ok, 4, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spk_book_add_node(&g, "a\nb", ok, 4, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spk_book_add_node(&g, "x", NULL, 4, 0), SPOKE_EINVAL);
	memset(name, 'x', SPOKE_NODE_NAME_MAX);
	name[SPOKE_NODE_NAME_MAX] = '\0';
	ck_assert_int_eq(spk_book_add_node(&g, name, ok, 4, 0), SPOKE_EINVAL);
	ck_assert_uint_eq(g.n_nodes, 0);

	name[SPOKE_NODE_NAME_MAX - 1] = '\0';
	ck_assert_int_eq(spk_book_add_node(&g, name, ok, 4, 0), 0);
	ck_assert_str_eq(g.nodes[0].name, name);
	ck_assert_int_eq(spk_book_add_node(&g, "d", ok, 4, 0), 1);
	ck_assert_int_eq(spk_book_add_node(&g, "d", ok, 4, 0), SPOKE_EEXIST);
	ck_assert_int_eq(add("max", 0, SPK_MAX_NODE_GPUS, 0), 2);
	ck_assert_int_eq(spk_book_add_node(&g, "cpu-only", NULL, 0, 4), 3);
	ck_assert_uint_eq(g.n_nodes, 4);
	ck_assert_uint_eq(g.nodes[1].n_gpus, 4);
	ck_assert_int_eq(g.nodes[1].gpus[3], 7);
	ck_assert(g.nodes[1].alive);

	ck_assert_int_eq(spk_book_add_node(&g, "a/b", ok, 4, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spk_book_add_node(&g, "..", ok, 4, 0), SPOKE_EINVAL);

	/* The table grows (it once stopped at 256 nodes), up to max_nodes. */
	for (i = g.n_nodes; i < 300; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		ck_assert_int_eq(add(name, 0, 1, 0), (int)i);
	}
	ck_assert_uint_eq(g.n_nodes, 300);
	ck_assert_str_eq(g.nodes[299].name, "f299");
	ck_assert_str_eq(g.nodes[1].name, "d");
	g.max_nodes = 300;
	ck_assert_int_eq(add("onemore", 0, 1, 0), SPOKE_ENOSPC);
	ck_assert_uint_eq(g.n_nodes, 300);
	/* A dead node's entry is reused even at the limit. */
	spk_book_node_down(&g, 150);
	ck_assert_int_eq(add("onemore", 0, 1, 0), 150);
}
END_TEST

/* Nodes that register and go away, hundreds of times: the table holds
 * the live ones only, and a dead node that a ticket still holds keeps its
 * entry (and its GPU ids) until the ticket is released. */
START_TEST(test_dead_nodes_reused)
{
	struct spk_ticket *t = NULL, *t2 = NULL;
	char name[16], why[256];
	int idx;

	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "flap%d", i);
		idx = add(name, 0, 2, 0);
		ck_assert_int_eq(idx, 0);
		spk_book_node_down(&g, (uint32_t)idx);
	}
	ck_assert_uint_eq(g.n_nodes, 1);

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	ck_assert_int_eq(alloc(1, 1, 2, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(g.nodes[0].held, 2);
	spk_book_node_down(&g, 0);
	ck_assert_int_eq(add("n2", 10, 4, 0), 1); /* n1's entry is held */
	ck_assert_int_eq(alloc(2, 1, 1, 0, 0, true, &t2, why, sizeof(why)), 0);
	ck_assert_uint_eq(t2->grants[0].node, 1);
	spk_book_release(&g, t);
	ck_assert_uint_eq(g.nodes[0].held, 0);
	ck_assert_int_eq(add("n3", 20, 4, 0), 0);
	ck_assert_uint_eq(used_count(0), 0);
	ck_assert_int_eq(g.nodes[0].gpus[0], 20);
	ck_assert_uint_eq(g.n_nodes, 2);
	/* n2's 0-GPU slot holds its entry too. */
	spk_book_node_down(&g, 1);
	ck_assert_int_eq(add("n4", 30, 4, 0), 2);
	spk_book_release(&g, t2);
	ck_assert_int_eq(add("n5", 40, 4, 0), 1);
}
END_TEST

/* Each client (owner) holds at most max_tickets tickets and max_slots
 * slots, 0-GPU slots included; a refusal changes nothing. */
START_TEST(test_owner_quota)
{
	struct spk_ticket *t = NULL, *mine[3];
	char why[256];

	ck_assert_uint_eq(g.max_tickets, SPK_BOOK_OWNER_TICKETS);
	ck_assert_uint_eq(g.max_slots, SPK_BOOK_OWNER_SLOTS);
	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	/* The flood: one ALLOC of 1 x 16384 slots of 0 GPUs. */
	ck_assert_int_eq(alloc(7, 1, 16384, 0, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	assert_one_line(why);
	ck_assert_str_eq(why, "asked for 1 node x 16384 slots x 0 GPUs: over this client's quota "
			      "of 4096 slots (it holds 0 slots in 0 tickets)");
	ck_assert_ptr_null(g.tickets);
	ck_assert_uint_eq(g.next_id, 1);
	ck_assert_int_eq(alloc(7, 1, 4096, 0, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(7, 1, 1, 0, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_ptr_nonnull(strstr(why, "quota of 4096 slots (it holds 4096 slots in 1 ticket)"));
	spk_book_release_owner(&g, 7);

	g.max_tickets = 3;
	g.max_slots = 10;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(alloc(7, 1, 3, 0, 0, false, &mine[i], why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(7, 1, 1, 1, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_ptr_nonnull(strstr(why, "quota of 3 tickets (it holds 9 slots in 3 tickets)"));
	ck_assert_uint_eq(n_tickets(), 3);
	ck_assert_uint_eq(used_count(0), 0);
	spk_book_release(&g, mine[1]);
	ck_assert_int_eq(alloc(7, 1, 2, 1, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(7, 1, 1, 0, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_ptr_nonnull(strstr(why, "quota of 3 tickets"));
	/* Other owners have their own; the hub's own spawns (0) have none. */
	ck_assert_int_eq(alloc(8, 1, 10, 0, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(8, 1, 1, 0, 0, false, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_ptr_nonnull(strstr(why, "quota of 10 slots (it holds 10 slots in 1 ticket)"));
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(alloc(0, 1, 20, 0, 0, false, &t, why, sizeof(why)), 0);
}
END_TEST

START_TEST(test_64_gpus)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("max", 1000, SPK_MAX_NODE_GPUS, 0), 0);
	ck_assert_int_eq(alloc(1, 1, 63, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_int_eq(alloc(1, 1, 2, 1, 0, true, &t, why, sizeof(why)), SPOKE_ENORES);
	ck_assert_str_eq(why, "asked for 1 node x 2 slots x 1 GPU (strict pack); free: max 1/64 GPUs");
	ck_assert_int_eq(alloc(1, 1, 1, 1, 0, true, &t, why, sizeof(why)), 0);
	ck_assert_int_eq(t->grants[0].gpus[0], 1063);
	ck_assert_uint_eq(g.nodes[0].gpu_used, ~0ULL);
	ck_assert_int_eq(spk_book_release_owner(&g, 1), 2);
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0);
}
END_TEST

START_TEST(test_invalid_args)
{
	struct spk_ticket *t = NULL;
	char why[256];

	ck_assert_int_eq(add("n1", 0, SPOKE_MAX_SLOT_GPUS, 0), 0);
	ck_assert_int_eq(alloc(1, 0, 4, 1, 0, true, &t, why, sizeof(why)), SPOKE_EINVAL);
	assert_one_line(why);
	ck_assert_ptr_nonnull(strstr(why, "zero nodes"));
	ck_assert_int_eq(alloc(1, 1, 0, 1, 0, true, &t, why, sizeof(why)), SPOKE_EINVAL);
	assert_one_line(why);
	ck_assert_int_eq(alloc(1, 1, 1, SPOKE_MAX_SLOT_GPUS + 1, 0, false, &t, why, sizeof(why)),
			 SPOKE_EINVAL);
	assert_one_line(why);
	ck_assert_int_eq(alloc(1, UINT32_MAX, UINT32_MAX, 0, 0, false, &t, why, sizeof(why)),
			 SPOKE_EINVAL);
	assert_one_line(why);
	ck_assert_int_eq(spk_book_allocate(&g, 1, 1, 1, NULL, false, &t, why, sizeof(why)),
			 SPOKE_EINVAL);
	assert_one_line(why);
	ck_assert_ptr_null(t);
	ck_assert_ptr_null(g.tickets);
	ck_assert_uint_eq(g.nodes[0].gpu_used, 0);
	ck_assert_uint_eq(g.next_id, 1);

	/* The largest slot there is still works. */
	ck_assert_int_eq(alloc(1, 1, 1, SPOKE_MAX_SLOT_GPUS, 0, false, &t, why, sizeof(why)), 0);
	ck_assert_uint_eq(t->grants[0].n_gpus, SPOKE_MAX_SLOT_GPUS);
}
END_TEST

START_TEST(test_find)
{
	struct spk_ticket *t[4];
	char why[256];
	uint32_t i;

	ck_assert_int_eq(add("n1", 0, 8, 0), 0);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(alloc(i, 1, 2, 1, 0, true, &t[i], why, sizeof(why)), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(t[i]->id, i + 1);
		ck_assert_ptr_eq(spk_book_find(&g, t[i]->id), t[i]);
	}
	ck_assert_ptr_null(spk_book_find(&g, 0));
	ck_assert_ptr_null(spk_book_find(&g, 5));
	spk_book_release(&g, t[2]);
	ck_assert_ptr_null(spk_book_find(&g, 3));
	ck_assert_ptr_eq(spk_book_find(&g, 4), t[3]);
	ck_assert_ptr_eq(spk_book_find(&g, 2), t[1]);
}
END_TEST

START_TEST(test_why_truncated)
{
	const char *full = "asked for 2 nodes x 4 slots x 1 GPU (strict pack); "
			   "free: n1 4/4 GPUs";
	struct spk_ticket *t = NULL;
	char why[128];
	size_t cap;

	ck_assert_int_eq(add("n1", 0, 4, 0), 0);
	for (cap = 1; cap <= strlen(full) + 2; cap++) {
		memset(why, '#', sizeof(why));
		ck_assert_int_eq(alloc(1, 2, 4, 1, 0, true, &t, why, cap), SPOKE_ENORES);
		ck_assert_uint_eq(strnlen(why, cap), cap - 1 < strlen(full) ? cap - 1 : strlen(full));
		ck_assert_int_eq(strncmp(why, full, cap - 1), 0);
		ck_assert_int_eq(why[cap], '#');
	}
	ck_assert_str_eq(why, full);
	memset(why, '#', sizeof(why));
	ck_assert_int_eq(alloc(1, 2, 4, 1, 0, true, &t, why, 0), SPOKE_ENORES);
	ck_assert_int_eq(why[0], '#');
	ck_assert_int_eq(alloc(1, 2, 4, 1, 0, true, &t, NULL, 0), SPOKE_ENORES);
	ck_assert_int_eq(alloc(1, 0, 4, 1, 0, true, &t, NULL, 0), SPOKE_EINVAL);
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_fini)
{
	struct spk_book *h = calloc(1, sizeof(*h));
	spoke_resources res = { .gpus = 1, .cpus = 0 };
	int32_t ids[] = { 0, 1, 2, 3 };
	struct spk_ticket *t;
	char why[128];

	ck_assert_ptr_nonnull(h);
	spk_book_init(h);
	ck_assert_uint_eq(h->next_id, 1);
	ck_assert_int_eq(spk_book_add_node(h, "n1", ids, 4, 0), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(spk_book_allocate(h, (uint64_t)i, 1, 1, &res, true, &t, why,
						   sizeof(why)), 0);
	spk_book_fini(h);
	ck_assert_ptr_null(h->tickets);
	spk_book_fini(h);
	free(h);
}
END_TEST

/* ---- at thousands of nodes --------------------------------------------- */

#define MANY 5000

/* A reference for the placement order: node indexes by key, ascending or
 * descending, ties by index (what book.c's sorts must give). */
static const uint32_t *ref_key;
static bool ref_desc;

static int ref_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	if (ref_key[a] != ref_key[b])
		return (ref_key[a] < ref_key[b]) == !ref_desc ? -1 : 1;
	return a < b ? -1 : 1;
}

/* Thousands of nodes: live names stay unique through the index as it
 * grows, dead entries are reused lowest first, a node marked down twice
 * frees its entry once. */
START_TEST(test_many_nodes_names)
{
	char name[32];
	uint32_t i;

	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "m%u", i);
		ck_assert_int_eq(add(name, 0, 8, 0), (int)i);
	}
	ck_assert_int_eq(add("m0", 0, 8, 0), SPOKE_EEXIST);
	ck_assert_int_eq(add("m2500", 0, 8, 0), SPOKE_EEXIST);
	ck_assert_int_eq(add("m4999", 0, 8, 0), SPOKE_EEXIST);
	for (i = 0; i < MANY; i += 10)
		spk_book_node_down(&g, i);
	spk_book_node_down(&g, 10); /* twice: still one free entry */
	/* The dead names may come back, into the dead entries, lowest first. */
	for (i = 0; i < MANY; i += 10) {
		snprintf(name, sizeof(name), "m%u", i);
		ck_assert_int_eq(add(name, 0, 8, 0), (int)i);
		ck_assert_int_eq(add(name, 0, 8, 0), SPOKE_EEXIST);
	}
	ck_assert_uint_eq(g.n_nodes, MANY);
	ck_assert_uint_eq(g.n_reusable, 0);
	ck_assert_int_eq(add("new", 0, 8, 0), MANY);
	ck_assert_int_eq(add("m4990", 0, 8, 0), SPOKE_EEXIST);
}
END_TEST

/* Best fit at thousands of nodes with every count of free GPUs (the
 * counting sort): the gang's nodes are the tightest that fit, ties by
 * index, as a plain sort orders them. */
START_TEST(test_many_nodes_best_fit)
{
	uint32_t *key = calloc(MANY, sizeof(*key)), *order = calloc(MANY, sizeof(*order));
	struct spk_ticket *t = NULL;
	uint32_t i, n = 0, want = 1000;
	char name[32], why[256];

	ck_assert(key && order);
	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "b%u", i);
		ck_assert_int_eq(add(name, 0, 64, 0), (int)i);
	}
	/* Node i keeps (i * 37) % 65 of its 64 GPUs free (0 to 64). */
	for (i = 0; i < MANY; i++) {
		uint32_t used = 64 - (i * 37) % 65;

		g.nodes[i].gpu_used = used == 64 ? ~0ULL : (1ULL << used) - 1;
	}
	for (i = 0; i < MANY; i++) {
		key[i] = 64 - (uint32_t)__builtin_popcountll(g.nodes[i].gpu_used);
		if (key[i] >= 4)
			order[n++] = i;
	}
	ref_key = key;
	ref_desc = false;
	qsort(order, n, sizeof(order[0]), ref_cmp);
	ck_assert_uint_ge(n, want);
	ck_assert_int_eq(alloc(1, want, 4, 1, 0, true, &t, why, sizeof(why)), 0);
	for (i = 0; i < want; i++)
		ck_assert_msg(t->grants[i * 4].node == order[i], "gang node %u on node %u, want %u",
			      i, t->grants[i * 4].node, order[i]);
	assert_grants_consistent(t);
	free(key);
	free(order);
}
END_TEST

/* Spread placement with more room than GPUs can say (0-GPU slots counted
 * by CPUs, rooms over 64: the merge sort): the home is the node with the
 * most room, the rest spills onto the next ones in that order. */
START_TEST(test_many_nodes_spread_order)
{
	uint32_t *room = calloc(MANY, sizeof(*room)), *order = calloc(MANY, sizeof(*order));
	struct spk_ticket *t = NULL;
	uint32_t i, per_node, r = 0;
	char name[32], why[256];

	ck_assert(room && order);
	for (i = 0; i < MANY; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		room[i] = 65 + (i * 7919) % 200;
		ck_assert_int_eq(spk_book_add_node(&g, name, NULL, 0, room[i]), (int)i);
		order[i] = i;
	}
	ref_key = room;
	ref_desc = true;
	qsort(order, MANY, sizeof(order[0]), ref_cmp);
	/* More than any one node holds: strict fails, the slots spread. */
	per_node = room[order[0]] + room[order[1]] + room[order[2]] / 2;
	ck_assert_int_eq(alloc(1, 1, per_node, 0, 1, false, &t, why, sizeof(why)), 0);
	for (uint32_t k = 0; k < 3; k++)
		for (uint32_t j = 0; j < room[order[k]] && r < per_node; j++, r++)
			ck_assert_msg(t->grants[r].node == order[k], "slot %u on node %u, want %u",
				      r, t->grants[r].node, order[k]);
	ck_assert_uint_eq(r, per_node);
	free(room);
	free(order);
}
END_TEST

/* Tickets leave the list in O(1) from anywhere in it: head, middle, tail. */
START_TEST(test_release_anywhere)
{
	struct spk_ticket *t[5];
	char why[256];

	ck_assert_int_eq(add("n0", 0, 8, 0), 0);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(alloc(1, 1, 1, 1, 0, false, &t[i], why, sizeof(why)), 0);
	spk_book_release(&g, t[2]);
	ck_assert_uint_eq(n_tickets(), 4);
	spk_book_release(&g, t[4]); /* the head: the newest */
	ck_assert_uint_eq(n_tickets(), 3);
	spk_book_release(&g, t[0]); /* the tail */
	ck_assert_uint_eq(n_tickets(), 2);
	ck_assert_ptr_eq(g.tickets, t[3]);
	ck_assert_ptr_eq(g.tickets->next, t[1]);
	ck_assert_ptr_null(t[1]->next);
	ck_assert_uint_eq(used_count(0), 2);
	ck_assert_int_eq(spk_book_release_owner(&g, 1), 2);
	ck_assert_ptr_null(g.tickets);
	ck_assert_uint_eq(used_count(0), 0);
}
END_TEST

static Suite *gang_suite(void)
{
	Suite *s = suite_create("gang");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_fit_1x8);
	tcase_add_test(tc, test_no_fit_all_or_nothing);
	tcase_add_test(tc, test_strict_pack_2x4);
	tcase_add_test(tc, test_spread_1x8);
	tcase_add_test(tc, test_spread_tries_strict_first);
	tcase_add_test(tc, test_spread_3x1_two_nodes);
	tcase_add_test(tc, test_spread_homes_and_spill);
	tcase_add_test(tc, test_spread_share_spills);
	tcase_add_test(tc, test_multi_gpu_slots);
	tcase_add_test(tc, test_best_fit);
	tcase_add_test(tc, test_best_fit_tie_lowest_index);
	tcase_add_test(tc, test_cpus);
	tcase_add_test(tc, test_cpus_not_counted);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_release_owner);
	tcase_add_test(tc, test_node_down);
	tcase_add_test(tc, test_add_node_errors);
	tcase_add_test(tc, test_dead_nodes_reused);
	tcase_add_test(tc, test_owner_quota);
	tcase_add_test(tc, test_64_gpus);
	tcase_add_test(tc, test_invalid_args);
	tcase_add_test(tc, test_find);
	tcase_add_test(tc, test_why_truncated);
	tcase_add_test(tc, test_fini);
	tcase_add_test(tc, test_many_nodes_names);
	tcase_add_test(tc, test_many_nodes_best_fit);
	tcase_add_test(tc, test_many_nodes_spread_order);
	tcase_add_test(tc, test_release_anywhere);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gang_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
