/* fuzz_answers.c - the client's decoding of the hub's ALLOC and NODES
 * answers (runtime/lib/client.c: spk_alloc_answer_decode,
 * spk_nodes_answer_decode).
 *
 * Input: a selector byte (bit 0: ALLOC or NODES; the others: how many
 * places the NODES caller has), then the answer.  Properties: a count is
 * never more than the bytes could hold (20 per slot, 12 per node), so a
 * lying count costs neither memory nor time; a decoded slot's GPUs fit its
 * array; a failure leaves nothing allocated (ASan's leak check); and the
 * memory a decode asks for is in proportion to the answer (at most one
 * slot's 144 B per 20 bytes: ASan's allocation hook measures it). */
#include <stdlib.h>
#include <string.h>

#include <sanitizer/allocator_interface.h>

#include <spoke/errors.h>

#include "client_priv.h"
#include "fuzz.h"
#include "proto.h"

static size_t largest_alloc;

static void on_malloc(const volatile void *p, size_t n)
{
	(void)p;
	if (n > largest_alloc)
		largest_alloc = n;
}

static void on_free(const volatile void *p)
{
	(void)p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	spoke_node_info *out;
	spoke_ticket *t;
	spoke_view v;
	size_t cap;
	int rc;

	if (size < 1)
		return 0;
	spoke_view_init(&v, data + 1, size - 1);
	if ((data[0] & 1) == 0) {
		largest_alloc = 0;
		rc = spk_alloc_answer_decode(&v, &t);
		FZ_CHECK(largest_alloc <= sizeof(*t) + size / 20 * sizeof(t->slots[0]));
		FZ_CHECK(rc == 0 || rc == SPOKE_EPROTO);
		FZ_CHECK((rc == 0) == (t != NULL));
		if (rc < 0)
			return 0;
		FZ_CHECK(12 + (size_t)t->n_slots * 20 <= size - 1);
		for (uint32_t i = 0; i < t->n_slots; i++)
			FZ_CHECK(t->slots[i].n_gpus <= SPOKE_MAX_SLOT_GPUS &&
				 strlen(t->slots[i].node) < sizeof(t->slots[i].node));
		free(t);
		return 0;
	}
	cap = data[0] >> 1;
	out = malloc((cap ? cap : 1) * sizeof(*out)); /* exactly cap places: ASan */
	FZ_CHECK(out);
	rc = spk_nodes_answer_decode(&v, out, cap);
	FZ_CHECK(rc >= 0 || rc == SPOKE_EPROTO);
	if (rc >= 0)
		FZ_CHECK(4 + (size_t)rc * 12 <= size - 1);
	free(out);
	return 0;
}

static void seeds(void)
{
	spoke_buf b;

	/* A 2x2 gang: one slot per GPU, two nodes. */
	fz_buf(&b);
	spoke_buf_put_u64(&b, 5);
	spoke_buf_put_u32(&b, 4);
	for (uint32_t i = 0; i < 4; i++) {
		spoke_slot s = { .rank = i, .node_rank = i / 2, .local_rank = i % 2, .n_gpus = 1 };

		strcpy(s.node, i < 2 ? "n1" : "n2");
		s.gpus[0] = (int32_t)(i % 2);
		spk_slot_pack(&b, &s);
	}
	fz_seed_sel("alloc-2x2", 0, &b);
	/* Two nodes, for a caller with room for 4. */
	fz_buf(&b);
	spoke_buf_put_u32(&b, 2);
	spoke_buf_put_str(&b, "n1");
	spoke_buf_put_u32(&b, 8);
	spoke_buf_put_u32(&b, 6);
	spoke_buf_put_str(&b, "n2");
	spoke_buf_put_u32(&b, 4);
	spoke_buf_put_u32(&b, 4);
	fz_seed_sel("nodes-2", 1 | 4 << 1, &b);
	/* Counts that lie. */
	fz_buf(&b);
	spoke_buf_put_u64(&b, 6);
	spoke_buf_put_u32(&b, 0xffffffff);
	spoke_buf_put_u32(&b, 0);
	fz_seed_sel("alloc-lie", 0, &b);
	fz_buf(&b);
	spoke_buf_put_u32(&b, 0xffffffff);
	spoke_buf_put_str(&b, "n1");
	fz_seed_sel("nodes-lie", 1, &b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_init("fuzz-answers", seeds);
	__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
	return 0;
}
