/* test_cluster.c - integration tests on a real loopback cluster: a hub and
 * two agents (n1 with GPUs 0-3, n2 with GPUs 4-7), real workers, real TCP:
 * spawns, GPUs, gangs, deaths of agents and actors, garbage at the hub, the
 * transport's choice without RDMA.  The semantics of calls are
 * tests/calls/test_calls.c's, run per transport (its "threads" case runs
 * under ThreadSanitizer: make check-tsan). */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#include "frame.h"

START_TEST(spawn_and_call)
{
	spoke_actor *a = spawn_open("p1", NULL);
	size_t sizes[] = { 0, 1, 64, 4096, 1 << 20, 8 << 20 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], got = 0;
		uint8_t *req = malloc(n + 1), *rep = malloc(n + 1);

		for (size_t k = 0; k < n; k++)
			req[k] = (uint8_t)(k * 7 + i);
		ck_assert_int_eq(spoke_call(a, PROBE_ECHO, req, n, rep, n, &got, 0), 0);
		ck_assert_uint_eq(got, n);
		ck_assert(memcmp(req, rep, n) == 0);
		free(req);
		free(rep);
	}
	ck_assert(cluster_alive((pid_t)actor_pid(a)));
	spoke_actor_close(a);
}
END_TEST

START_TEST(unknown_type_says_what_exists)
{
	int rc = spoke_spawn(client, "Nope", "x", NULL, 0, NULL);

	ck_assert_int_eq(rc, SPOKE_ENOTYPE);
	ck_assert_msg(strstr(spoke_errmsg(), "'Nope'") && strstr(spoke_errmsg(), "Probe") &&
			      strstr(spoke_errmsg(), "Hello"),
		      "message: %s", spoke_errmsg());
	/* The name is free again after the failed spawn. */
	spoke_actor_close(spawn_open("x", NULL));
}
END_TEST

START_TEST(too_many_gpus_says_what_exists)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;

	o.res.gpus = 9;
	ck_assert_int_eq(spoke_spawn(client, "Probe", "big", NULL, 0, &o), SPOKE_ENORES);
	ck_assert_msg(strstr(spoke_errmsg(), "9 GPU") && strstr(spoke_errmsg(), "n1 4/4") &&
			      strstr(spoke_errmsg(), "n2 4/4"),
		      "message: %s", spoke_errmsg());
}
END_TEST

START_TEST(spawn_gets_its_gpus)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	char rep[64];
	size_t n;
	spoke_actor *a, *b;

	o.res.gpus = 3;
	a = spawn_open("g3", &o);
	o.res.gpus = 0;
	b = spawn_open("g0", &o);
	ck_assert_int_eq(spoke_call(a, PROBE_GPUS, NULL, 0, rep, sizeof(rep), &n, 0), 0);
	ck_assert_msg((n == 5 && (!memcmp(rep, "0,1,2", 5) || !memcmp(rep, "4,5,6", 5))),
		      "g3 sees %.*s", (int)n, rep);
	ck_assert_int_eq(spoke_call(b, PROBE_GPUS, NULL, 0, rep, sizeof(rep), &n, 0), 0);
	ck_assert_msg(n == 0, "g0 sees '%.*s', want none", (int)n, rep);
	spoke_actor_close(a);
	spoke_actor_close(b);
}
END_TEST

START_TEST(unknown_actor_method_and_errors)
{
	spoke_actor *a, *ghost = NULL;
	char rep[8];
	size_t n;
	double t0 = now_ms();

	ck_assert_int_eq(spoke_actor_open(client, "ghost", &ghost, 0), SPOKE_ENOACTOR);
	ck_assert_ptr_null(ghost);
	a = spawn_open("p1", NULL);
	ck_assert_int_eq(spoke_call(a, 99, NULL, 0, rep, sizeof(rep), &n, 0), SPOKE_ENOMETHOD);
	ck_assert_msg(strstr(spoke_errmsg(), "no method 99"), "message: %s", spoke_errmsg());
	ck_assert_int_eq(spoke_call(a, PROBE_FAIL, NULL, 0, rep, sizeof(rep), &n, 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "method fail of actor p1 failed"), "message: %s",
		      spoke_errmsg());
	ck_assert_int_eq(spoke_spawn(client, "Probe", "p1", NULL, 0, NULL), SPOKE_EEXIST);
	ck_assert_int_eq(spoke_spawn(client, "Probe", "bad name", NULL, 0, NULL), SPOKE_EINVAL);
	spoke_actor_close(a);
	ck_assert_msg(now_ms() - t0 < 2000, "errors took %.0f ms", now_ms() - t0);
}
END_TEST

START_TEST(init_failure_fails_spawn)
{
	uint8_t fail = 1;

	ck_assert_int_eq(spoke_spawn(client, "Probe", "f", &fail, 1, NULL), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "init of f"), "message: %s", spoke_errmsg());
	/* Its own words (spoke_method_fail(NULL, ...) in init), else the code's. */
	ck_assert_msg(strstr(spoke_errmsg(), spoke_strerror(SPOKE_EINVAL)), "message: %s",
		      spoke_errmsg());
	fail = 2;
	ck_assert_int_eq(spoke_spawn(client, "Probe", "f2", &fail, 1, NULL), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "init of f2 (Probe) failed: no model at /nowhere"),
		      "message: %s", spoke_errmsg());
}
END_TEST

START_TEST(own_binary_worker)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	char prog[512], rep[32];
	spoke_actor *a;
	size_t n;

	o.program = cluster_path(prog, sizeof(prog), "tests/integration/own_worker");
	ck_assert_msg(spoke_spawn(client, "Own", "own", NULL, 0, &o) == 0, "%s", spoke_errmsg());
	ck_assert_int_eq(spoke_actor_open(client, "own", &a, 0), 0);
	ck_assert_int_eq(spoke_call(a, 1, NULL, 0, rep, sizeof(rep), &n, 0), 0);
	ck_assert(n == 10 && !memcmp(rep, "own-binary", 10));
	spoke_actor_close(a);
	/* A missing program is a clear spawn error. */
	o.program = "/nonexistent/prog";
	ck_assert_int_eq(spoke_spawn(client, "Own", "own2", NULL, 0, &o), SPOKE_ESPAWN);
	ck_assert_msg(strstr(spoke_errmsg(), "/nonexistent/prog"), "%s", spoke_errmsg());
}
END_TEST

/* A 2x4 gang over n1 (0-3) and n2 (4-7): each actor sees exactly its slot's
 * GPU, and the GPUs are disjoint. */
START_TEST(gang_2x4_disjoint_gpus)
{
	spoke_resources res = { .gpus = 1 };
	spoke_ticket *t, *t2 = NULL;
	int seen[8] = { 0 };
	int per_node[2] = { 0 };

	ck_assert_msg(spoke_gang_allocate(client, 2, 4, &res, 1, &t, 0) == 0, "%s", spoke_errmsg());
	ck_assert_uint_eq(t->n_slots, 8);
	ck_assert_int_eq(spoke_gang_launch(client, t, 0, "Probe", "first", NULL, 0, NULL), 0);
	ck_assert_int_eq(spoke_gang_launch(client, t, 0, "Probe", "second", NULL, 0, NULL),
			 SPOKE_EEXIST);
	ck_assert_msg(strstr(spoke_errmsg(), "already runs actor 'first'"), "%s", spoke_errmsg());
	ck_assert_int_eq(spoke_kill(client, "first", 0), 0);
	for (uint32_t i = 0; i < t->n_slots; i++) {
		const spoke_slot *s = &t->slots[i];
		char name[16], rep[32], want[16];
		spoke_actor *a;
		size_t n;

		ck_assert_uint_eq(s->rank, i);
		ck_assert_uint_eq(s->n_gpus, 1);
		snprintf(name, sizeof(name), "g%u", i);
		ck_assert_msg(spoke_gang_launch(client, t, i, "Probe", name, NULL, 0, NULL) == 0,
			      "%s", spoke_errmsg());
		ck_assert_int_eq(spoke_actor_open(client, name, &a, 0), 0);
		ck_assert_int_eq(spoke_call(a, PROBE_GPUS, NULL, 0, rep, sizeof(rep), &n, 0), 0);
		spoke_actor_close(a);
		snprintf(want, sizeof(want), "%d", s->gpus[0]);
		ck_assert_msg(n == strlen(want) && !memcmp(rep, want, n), "rank %u sees %.*s want %s",
			      i, (int)n, rep, want);
		ck_assert(s->gpus[0] >= 0 && s->gpus[0] < 8);
		ck_assert_msg(!seen[s->gpus[0]]++, "GPU %d given twice", s->gpus[0]);
		/* n1 owns GPUs 0-3, n2 owns 4-7. */
		ck_assert_str_eq(s->node, s->gpus[0] < 4 ? "n1" : "n2");
		per_node[s->node_rank]++;
		ck_assert_uint_lt(s->local_rank, 4);
	}
	ck_assert_int_eq(per_node[0], 4);
	ck_assert_int_eq(per_node[1], 4);
	/* Everything is taken: nothing more fits, all or nothing. */
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &res, 0, &t2, 0), SPOKE_ENORES);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 4, &res, 1, &t2, 0), 0);
	ck_assert_int_eq(spoke_gang_release(client, t2, 0), 0);
	/* Released actors are stopped. */
	spoke_actor *gone = NULL;
	ck_assert_int_eq(spoke_actor_open(client, "g0", &gone, 0), SPOKE_EDEAD);
}
END_TEST

START_TEST(dead_client_releases_its_tickets)
{
	spoke_resources res = { .gpus = 4 };
	spoke_client *other;
	spoke_ticket *t;
	int rc = SPOKE_ENORES;

	ck_assert_int_eq(cluster_client(&cl, &other), 0);
	ck_assert_int_eq(spoke_gang_allocate(other, 2, 1, &res, 1, &t, 0), 0);
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &res, 1, &t, 0), SPOKE_ENORES);
	spoke_client_close(other); /* it "dies" without releasing (and frees t) */
	for (int i = 0; i < 100 && rc == SPOKE_ENORES; i++) {
		rc = spoke_gang_allocate(client, 2, 1, &res, 1, &t, 0);
		if (rc == SPOKE_ENORES)
			usleep(10000);
	}
	ck_assert_int_eq(rc, 0);
	spoke_gang_release(client, t, 0);
}
END_TEST

/* kill -9 of an agent: its workers die within a second, calls to them fail
 * promptly, the other node's actors go on. */
START_TEST(agent_kill9_takes_workers_down)
{
	spoke_resources res = { .gpus = 1 };
	spoke_actor *a[2];
	uint32_t pid[2];
	spoke_ticket *t;
	int victim = -1;
	char rep[16];
	size_t n;
	double t0;

	ck_assert_int_eq(spoke_gang_allocate(client, 2, 1, &res, 1, &t, 0), 0);
	for (int i = 0; i < 2; i++) {
		char name[8];

		snprintf(name, sizeof(name), "k%d", i);
		ck_assert_int_eq(spoke_gang_launch(client, t, (uint32_t)i, "Probe", name, NULL, 0, NULL), 0);
		ck_assert_int_eq(spoke_actor_open(client, name, &a[i], 0), 0);
		pid[i] = actor_pid(a[i]);
		if (!strcmp(t->slots[i].node, "n1"))
			victim = i;
	}
	ck_assert_int_ge(victim, 0);
	t0 = now_ms();
	kill(cl.agents[0], SIGKILL); /* n1's agent */
	while (cluster_alive((pid_t)pid[victim]) && now_ms() - t0 < 1000)
		usleep(5000);
	ck_assert_msg(!cluster_alive((pid_t)pid[victim]), "worker outlived its agent by 1 s");
	t0 = now_ms();
	ck_assert_int_eq(spoke_call(a[victim], PROBE_ECHO, "x", 1, rep, sizeof(rep), &n, 0),
			 SPOKE_EDEAD);
	ck_assert_msg(now_ms() - t0 < 500, "failing took %.0f ms", now_ms() - t0);
	ck_assert_int_eq(spoke_call(a[1 - victim], PROBE_ECHO, "y", 1, rep, sizeof(rep), &n, 0), 0);
	spoke_actor_close(a[0]);
	spoke_actor_close(a[1]);
	spoke_gang_release(client, t, 0);
}
END_TEST

START_TEST(kill_stops_actor)
{
	spoke_actor *a = spawn_open("victim", NULL);
	uint32_t pid = actor_pid(a);
	double t0 = now_ms();
	uint8_t rep[8];
	size_t n;

	ck_assert_int_eq(spoke_kill(client, "victim", 0), 0);
	while (cluster_alive((pid_t)pid) && now_ms() - t0 < 3000)
		usleep(5000);
	ck_assert(!cluster_alive((pid_t)pid));
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, rep, sizeof(rep), &n, 0), SPOKE_EDEAD);
	spoke_actor_close(a);
}
END_TEST

static int raw_connect(const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	inet_pton(AF_INET, host, &sa.sin_addr);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads until the peer closes; returns 1 if it closed within ms. */
static int closed_within(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	char buf[256];
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	do
		n = recv(fd, buf, sizeof(buf), 0);
	while (n > 0);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

START_TEST(wrong_token_and_garbage_refused)
{
	spoke_client_opts o = { .hub = cl.hub_addr, .token = "not-the-token", .timeout_ms = 2000 };
	spoke_client *bad = NULL;
	spoke_actor *a;
	char rep[8];
	size_t n;
	int fd;

	ck_assert_int_eq(spoke_client_open(&bad, &o), SPOKE_EAUTH);
	ck_assert_ptr_null(bad);
	/* Garbage, an oversized frame and a wrong version, each on its own
	 * connection to the hub: each is closed, the hub goes on. */
	fd = raw_connect(cl.hub_addr);
	ck_assert_int_eq(send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
	ck_assert(closed_within(fd, 2000));
	close(fd);
	for (int k = 0; k < 3; k++) {
		/* magic "SPK1", version, type AUTH, flags, id, aux, len, ttl, 0 */
		uint8_t hdr[SPK_HDR_SIZE] = { 'S', 'P', 'K', '1', SPOKE_PROTOCOL_VERSION, 2 };

		if (k == 0)
			hdr[4] = 9; /* a version from the future */
		else if (k == 1)
			memset(hdr + 20, 0xff, 4); /* a 4 GiB frame */
		else
			hdr[22] = 0x10; /* a 1 MiB AUTH: more than a handshake needs */
		fd = raw_connect(cl.hub_addr);
		ck_assert_int_eq(send(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
		ck_assert(closed_within(fd, 2000));
		close(fd);
	}
	a = spawn_open("still", NULL);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "ok", 2, rep, sizeof(rep), &n, 0), 0);
	spoke_actor_close(a);
}
END_TEST

/* Where RDMA cannot work (here: no device of the name asked for, on either
 * side), auto takes shared memory on one node, rdma says why, and the
 * RDMA-shaped calls still work. */
START_TEST(transport_choice_without_rdma)
{
	spoke_actor *a;
	uint8_t block[4096], out[4096], small[8];
	spoke_mr req, rep;
	size_t n;

	setenv("SPOKE_RDMA_DEVICE", "nosuchdev0", 1);
	a = spawn_open("t1", NULL);
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	ck_assert_int_eq(spoke_actor_init_rdma(a, 0), SPOKE_ERDMA);
	ck_assert_str_eq(spoke_actor_transport(a), "shm"); /* a refusal changes nothing */
	ck_assert_msg(strstr(spoke_errmsg(), "nosuchdev0") || strstr(spoke_errmsg(), "no RDMA device") ||
			      strstr(spoke_errmsg(), "built without a transport 'rdma'"),
		      "%s", spoke_errmsg());
	for (size_t i = 0; i < sizeof(block); i++)
		block[i] = (uint8_t)(i * 13);
	ck_assert_int_eq(spoke_mr_register(a, block, sizeof(block), &req), 0);
	ck_assert_int_eq(spoke_mr_register(a, out, sizeof(out), &rep), 0);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 96, 1000, &rep, 8, 1000, &n, 0), 0);
	ck_assert_uint_eq(n, 1000);
	ck_assert(memcmp(out + 8, block + 96, 1000) == 0);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, 4096, &rep, 0, 100, &n, 0),
			 SPOKE_ENOSPC);
	ck_assert_uint_eq(n, 4096);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 4000, 97, &rep, 0, 100, &n, 0),
			 SPOKE_EINVAL);
	spoke_mr_deregister(&req);
	spoke_mr_deregister(&rep);
	spoke_actor_close(a);

	setenv("SPOKE_TRANSPORT", "rdma", 1);
	ck_assert_int_eq(spoke_actor_open(client, "t1", &a, 0), SPOKE_ERDMA);
	ck_assert_msg(strstr(spoke_errmsg(), "SPOKE_TRANSPORT=rdma"), "%s", spoke_errmsg());
	setenv("SPOKE_TRANSPORT", "infiniband", 1);
	ck_assert_int_eq(spoke_actor_open(client, "t1", &a, 0), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "expected auto, "), "%s", spoke_errmsg());
	setenv("SPOKE_TRANSPORT", "tcp", 1);
	ck_assert_int_eq(spoke_actor_open(client, "t1", &a, 0), 0);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, small, sizeof(small), &n, 0), 0);
	spoke_actor_close(a);

	/* A list is tried in its order, like auto's; what cannot come up is
	 * passed over, a name given twice or unknown is refused. */
	setenv("SPOKE_TRANSPORT", "rdma,tcp,shm", 1);
	ck_assert_msg(spoke_actor_open(client, "t1", &a, 0) == 0, "%s", spoke_errmsg());
	ck_assert_str_eq(spoke_actor_transport(a), "tcp");
	spoke_actor_close(a);
	setenv("SPOKE_TRANSPORT", "rdma,shm", 1);
	ck_assert_msg(spoke_actor_open(client, "t1", &a, 0) == 0, "%s", spoke_errmsg());
	ck_assert_str_eq(spoke_actor_transport(a), "shm");
	spoke_actor_close(a);
	setenv("SPOKE_TRANSPORT", "tcp,tcp", 1);
	ck_assert_int_eq(spoke_actor_open(client, "t1", &a, 0), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "tcp is named twice"), "%s", spoke_errmsg());
	setenv("SPOKE_TRANSPORT", "tcp,carrier-pigeon", 1);
	ck_assert_int_eq(spoke_actor_open(client, "t1", &a, 0), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "SPOKE_TRANSPORT=tcp,carrier-pigeon: expected"), "%s",
		      spoke_errmsg());
	unsetenv("SPOKE_TRANSPORT");
}
END_TEST

static Suite *cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("loopback");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spawn_and_call);
	tcase_add_test(tc, unknown_type_says_what_exists);
	tcase_add_test(tc, too_many_gpus_says_what_exists);
	tcase_add_test(tc, spawn_gets_its_gpus);
	tcase_add_test(tc, unknown_actor_method_and_errors);
	tcase_add_test(tc, init_failure_fails_spawn);
	tcase_add_test(tc, own_binary_worker);
	tcase_add_test(tc, gang_2x4_disjoint_gpus);
	tcase_add_test(tc, dead_client_releases_its_tickets);
	tcase_add_test(tc, agent_kill9_takes_workers_down);
	tcase_add_test(tc, kill_stops_actor);
	tcase_add_test(tc, wrong_token_and_garbage_refused);
	tcase_add_test(tc, transport_choice_without_rdma);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cluster_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
