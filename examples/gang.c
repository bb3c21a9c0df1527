/* gang.c - two-phase gang launch: reserve NODES x PER_NODE slots of one GPU
 * each, launch a Hello actor in every slot, and have each report the GPUs
 * it sees (CUDA_VISIBLE_DEVICES).  Usage: gang [NODES [PER_NODE]]
 * (default 1 x 8). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/spoke.h>

#include "hello.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "gang: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return 1;
}

/* Launches slot s's actor and checks it sees exactly the slot's GPUs. */
static int launch_and_check(spoke_client *c, const spoke_ticket *t, const spoke_slot *s)
{
	char name[64], want[128] = "", reply[256];
	spoke_actor *a;
	size_t n, len = 0;
	int rc;

	snprintf(name, sizeof(name), "gang-%u", s->rank);
	rc = spoke_gang_launch(c, t, s->rank, "Hello", name, NULL, 0, NULL);
	if (rc < 0)
		return fail("launch", rc);
	rc = spoke_actor_open(c, name, &a, 0);
	if (rc < 0)
		return fail("open", rc);
	rc = spoke_call(a, HELLO_METHOD_GPUS, NULL, 0, reply, sizeof(reply) - 1, &n, 0);
	spoke_actor_close(a);
	if (rc < 0)
		return fail("call gpus", rc);
	for (uint32_t i = 0; i < s->n_gpus; i++)
		len += (size_t)snprintf(want + len, sizeof(want) - len, "%s%d", i ? "," : "",
					s->gpus[i]);
	printf("rank %u on %s (local rank %u): CUDA_VISIBLE_DEVICES=%.*s\n", s->rank, s->node,
	       s->local_rank, (int)(n - 4), reply + 4);
	if (n - 4 != strlen(want) || memcmp(reply + 4, want, n - 4) != 0) {
		fprintf(stderr, "gang: rank %u should see GPUs %s\n", s->rank, want);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t nodes = argc > 1 ? (uint32_t)atoi(argv[1]) : 1;
	uint32_t per_node = argc > 2 ? (uint32_t)atoi(argv[2]) : 8;
	spoke_resources res = { .gpus = 1 };
	spoke_ticket *t;
	spoke_client *c;
	int rc;

	rc = spoke_client_open(&c, NULL);
	if (rc < 0)
		return fail("connect to the hub", rc);
	/* Phase one: reserve every slot at once, or nothing. */
	rc = spoke_gang_allocate(c, nodes, per_node, &res, 1, &t, 0);
	if (rc < 0) {
		spoke_client_close(c);
		return fail("allocate", rc);
	}
	printf("ticket %llu: %u slots\n", (unsigned long long)t->id, t->n_slots);
	/* Phase two: one actor per slot, pinned to the slot's GPUs. */
	for (uint32_t i = 0; i < t->n_slots && rc == 0; i++)
		rc = launch_and_check(c, t, &t->slots[i]);
	spoke_gang_release(c, t, 0);
	spoke_client_close(c);
	if (rc == 0)
		printf("gang: every actor sees its own GPUs\n");
	return rc;
}
