/* fixture.h - the Check fixture that the cluster tests (test_cluster,
 * test_rdma, test_calls, ...) share: a hub, two agents (n1 with GPUs 0-3,
 * n2 with 4-7) and a client, fresh for each test (tests/harness/fixture.c). */
#ifndef TESTS_FIXTURE_H
#define TESTS_FIXTURE_H

#include <stdint.h>

#include "cluster.h"

extern struct cluster cl;
extern spoke_client *client;

void fixture_setup(void);
void fixture_teardown(void);
/* Instead of fixture_setup: a hub, one agent (n1, GPUs 0-3) whose
 * environment, and so every worker's, has var=value (if var is not NULL),
 * and a client.  fixture_teardown ends it. */
void fixture_start_with(const char *var, const char *value);
/* Spawns a Probe actor (opts may be NULL) and opens a handle to it. */
spoke_actor *spawn_open(const char *name, const spoke_spawn_opts *opts);
/* The free GPUs of the job's live nodes as client c (NULL: the fixture's)
 * sees them; there must be `nodes` of them (0: any number but none). */
unsigned free_gpus(spoke_client *c, int nodes);
/* Every GPU of the fixture's agents' nodes is free (and they all live). */
void assert_all_gpus_free(void);
/* The actor's worker's pid, from its PROBE_PID method. */
uint32_t actor_pid(spoke_actor *a);
double now_ms(void);

#endif
