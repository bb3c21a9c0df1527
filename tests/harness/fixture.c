/* fixture.c - the cluster tests' shared Check fixture (fixture.h). */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "fixture.h"
#include "probe.h"

struct cluster cl;
spoke_client *client;

void fixture_setup(void)
{
	ck_assert_int_eq(cluster_start(&cl), 0);
	ck_assert_int_eq(cluster_add_agent(&cl, "n1", "0-3"), 0);
	ck_assert_int_eq(cluster_add_agent(&cl, "n2", "4-7"), 0);
	ck_assert_msg(cluster_client(&cl, &client) == 0, "client: %s", spoke_errmsg());
}

void fixture_teardown(void)
{
	spoke_client_close(client);
	client = NULL;
	cluster_stop(&cl);
}

void fixture_start_with(const char *var, const char *value)
{
	ck_assert_int_eq(cluster_start(&cl), 0);
	if (var)
		setenv(var, value, 1);
	ck_assert_int_eq(cluster_add_agent(&cl, "n1", "0-3"), 0);
	if (var)
		unsetenv(var);
	ck_assert_msg(cluster_client(&cl, &client) == 0, "client: %s", spoke_errmsg());
}

spoke_actor *spawn_open(const char *name, const spoke_spawn_opts *opts)
{
	spoke_actor *a;
	int rc = spoke_spawn(client, "Probe", name, NULL, 0, opts);

	ck_assert_msg(rc == 0, "spawn %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
	rc = spoke_actor_open(client, name, &a, 0);
	ck_assert_msg(rc == 0, "open %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
	return a;
}

unsigned free_gpus(spoke_client *c, int nodes)
{
	spoke_node_info info[CLUSTER_MAX_AGENTS + 8];
	int n = spoke_nodes(c ? c : client, info, CLUSTER_MAX_AGENTS + 8, 0);
	unsigned free = 0;

	ck_assert_msg(nodes ? n == nodes : n > 0, "nodes: %d, expected %d (%s)", n, nodes,
		      spoke_errmsg());
	for (int i = 0; i < n; i++)
		free += info[i].free_gpus;
	return free;
}

void assert_all_gpus_free(void)
{
	spoke_node_info info[CLUSTER_MAX_AGENTS];
	int n = spoke_nodes(client, info, CLUSTER_MAX_AGENTS, 0);

	ck_assert_msg(n == cl.n_agents, "nodes: %d (%s)", n, spoke_errmsg());
	for (int i = 0; i < n; i++)
		ck_assert_msg(info[i].free_gpus == info[i].n_gpus, "%s: %u of %u GPUs free",
			      info[i].name, info[i].free_gpus, info[i].n_gpus);
}

uint32_t actor_pid(spoke_actor *a)
{
	uint8_t r[4];
	size_t n;

	ck_assert_int_eq(spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, 0), 0);
	ck_assert_uint_eq(n, 4);
	return (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24;
}

double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
