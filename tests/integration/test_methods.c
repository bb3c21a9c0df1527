/* test_methods.c - registering actor types, and the worker's settings, on a
 * real loopback cluster (a hub and one agent, n1 with GPUs 0-3, whose
 * environment its workers inherit).  A method's failures against the
 * runtime's and the maximum message sizes are call semantics:
 * tests/calls/test_calls.c, run per transport. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"

static void setup_plain(void)
{
	fixture_start_with(NULL, NULL);
}

static void echo_ok(spoke_actor *a)
{
	char rep[8];
	size_t n = 0;

	ck_assert_msg(spoke_call(a, PROBE_ECHO, "ping", 4, rep, sizeof(rep), &n, 0) == 0, "%s",
		      spoke_errmsg());
	ck_assert_uint_eq(n, 4);
	ck_assert(memcmp(rep, "ping", 4) == 0);
}

/* Registering a type: a refusal says why, and a success leaves no message. */
static int noop(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	(void)reply;
	return 0;
}

START_TEST(type_registration_says_why)
{
	static const spoke_method no_fn[] = { { 1, "none", NULL } }, one[] = { { 1, "x", noop } };
	static const spoke_actor_type nameless = { .name = "" };
	static const spoke_actor_type broken = { .name = "Broken", .methods = no_fn, .n_methods = 1 };
	static const spoke_actor_type fine = { .name = "Fine", .methods = one, .n_methods = 1 };

	ck_assert_int_eq(spoke_actor_type_register(NULL), SPOKE_EINVAL);
	ck_assert_str_eq(spoke_errmsg(), "spoke_actor_type_register: type is NULL");
	ck_assert_int_eq(spoke_actor_type_register(&nameless), SPOKE_EINVAL);
	ck_assert_ptr_nonnull(strstr(spoke_errmsg(), "name missing"));
	ck_assert_int_eq(spoke_actor_type_register(&broken), SPOKE_EINVAL);
	ck_assert_str_eq(spoke_errmsg(), "actor type Broken: method 1 has no function");
	ck_assert_ptr_null(spoke_actor_type_find("Broken"));
	ck_assert_int_eq(spoke_actor_type_register(&fine), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_actor_type_register(&fine), SPOKE_EEXIST);
	ck_assert_str_eq(spoke_errmsg(), "actor type Fine is registered already");
	ck_assert_ptr_null(spoke_actor_type_find(NULL));
}
END_TEST

/* A bad setting in the worker's environment fails the spawn with a message
 * naming it and its value, and leaves nothing behind. */
static const struct {
	const char *var, *value, *says;
} bad_settings[] = {
	{ "SPOKE_POLL_US", "abc", "SPOKE_POLL_US=abc: expected a number of microseconds to spin from 0 to" },
	{ "SPOKE_POLL_US", "-5", "SPOKE_POLL_US=-5: expected" },
	{ "SPOKE_POLL_US", "10x", "SPOKE_POLL_US=10x: expected" },
	{ "SPOKE_POLL_US", "99999999999", "SPOKE_POLL_US=99999999999: expected" },
	{ "SPOKE_TRANSPORT", "infiniband", "SPOKE_TRANSPORT=infiniband: expected auto, " },
	{ "SPOKE_RDMA_DEVICE", "", "SPOKE_RDMA_DEVICE is empty" },
};

START_TEST(bad_worker_settings_fail_the_spawn)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_node_info node;
	spoke_actor *a = NULL;
	int rc;

	fixture_start_with(bad_settings[_i].var, bad_settings[_i].value);
	o.res.gpus = 1;
	rc = spoke_spawn(client, "Probe", "w", NULL, 0, &o);
	ck_assert_msg(rc == SPOKE_EINVAL, "%s=%s: %s (%s)", bad_settings[_i].var,
		      bad_settings[_i].value, spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), bad_settings[_i].says), "%s", spoke_errmsg());
	/* No actor to call (the hub may remember the failed one: SPOKE_EDEAD). */
	rc = spoke_actor_open(client, "w", &a, 0);
	ck_assert_msg(rc == SPOKE_ENOACTOR || rc == SPOKE_EDEAD, "open: %s", spoke_strerror(rc));
	ck_assert_ptr_null(a);
	ck_assert_int_eq(spoke_nodes(client, &node, 1, 0), 1);
	ck_assert_uint_eq(node.free_gpus, 4);
	for (int i = 0; i < 200 && cluster_children(cl.agents[0]); i++)
		usleep(10000);
	ck_assert_int_eq(cluster_children(cl.agents[0]), 0);
}
END_TEST

/* A good one works; a spawn's own budget is not the environment's. */
START_TEST(good_poll_setting_spawns)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_actor *a;

	fixture_start_with("SPOKE_POLL_US", "50");
	a = spawn_open("p50", NULL);
	echo_ok(a);
	spoke_actor_close(a);
	o.poll_us = 0;
	a = spawn_open("p0", &o);
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

/* spoke-worker started by anything but the agent says what is wrong. */
START_TEST(worker_fd_setting_is_checked)
{
	static const struct {
		const char *env, *says;
	} cases[] = {
		{ "SPOKE_WORKER_FD=abc", "SPOKE_WORKER_FD=abc: expected 3; only spoke-agent" },
		{ "SPOKE_WORKER_FD=3", "SPOKE_WORKER_FD=3: descriptor 3 is not open" },
	};
	char worker[512], cmd[1024], out[512];

	cluster_path(worker, sizeof(worker), "spoke-worker");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *p;
		size_t n;

		snprintf(cmd, sizeof(cmd), "%s timeout 10 '%s' 3<&- 2>&1", cases[i].env, worker);
		p = popen(cmd, "r");
		ck_assert_ptr_nonnull(p);
		n = fread(out, 1, sizeof(out) - 1, p);
		out[n] = '\0';
		ck_assert_int_eq(WEXITSTATUS(pclose(p)), 1);
		ck_assert_msg(strstr(out, cases[i].says), "%s: %s", cases[i].env, out);
	}
}
END_TEST

static Suite *methods_suite(void)
{
	Suite *s = suite_create("methods");
	TCase *tc = tcase_create("methods");
	TCase *tm = tcase_create("settings");

	tcase_add_checked_fixture(tc, setup_plain, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, type_registration_says_why);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tm, NULL, fixture_teardown);
	tcase_set_timeout(tm, 60);
	tcase_add_loop_test(tm, bad_worker_settings_fail_the_spawn, 0,
			    sizeof(bad_settings) / sizeof(bad_settings[0]));
	tcase_add_test(tm, good_poll_setting_spawns);
	tcase_add_test(tm, worker_fd_setting_is_checked);
	suite_add_tcase(s, tm);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(methods_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
