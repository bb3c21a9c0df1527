/* test_methods.c - a method's own failures against the runtime's, requests
 * over the worker's SPOKE_MAX_MSG, and the worker's settings, on a real
 * loopback cluster (a hub and one agent, n1 with GPUs 0-3, whose
 * environment its workers inherit). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
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

/* Calls PROBE_FAIL_WITH: the method fails with code, and text if not NULL. */
static int fail_with(spoke_actor *a, int32_t code, const char *text, size_t *n)
{
	uint8_t req[256], rep[64];
	size_t len = text ? strlen(text) : 0;

	for (int i = 0; i < 4; i++)
		req[i] = (uint8_t)((uint32_t)code >> (8 * i));
	memcpy(req + 4, text ? text : "", len);
	return spoke_call(a, PROBE_FAIL_WITH, req, 4 + len, rep, sizeof(rep), n, 0);
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

/* Whatever a method returns, even a runtime code, the caller sees
 * SPOKE_EMETHOD, the method's name and the code's text; the method's code
 * is spoke_method_status(); the handle goes on. */
START_TEST(method_codes_come_back_as_emethod)
{
	const int32_t codes[] = { -1, -EINVAL, SPOKE_EDEAD, SPOKE_ETIMEDOUT, SPOKE_ENOMETHOD,
				  SPOKE_EMETHOD, INT32_MIN };
	spoke_actor *a = spawn_open("m1", NULL);
	char want[512];
	size_t n = 99;

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		ck_assert_int_eq(fail_with(a, codes[i], NULL, &n), SPOKE_EMETHOD);
		ck_assert_int_eq(spoke_method_status(), codes[i]);
		snprintf(want, sizeof(want), "method fail_with of actor m1 failed: %s",
			 spoke_strerror(codes[i]));
		ck_assert_str_eq(spoke_errmsg(), want);
		echo_ok(a); /* not a dead actor: the same handle works */
		ck_assert_int_eq(spoke_method_status(), 0);
	}
	spoke_actor_close(a);
}
END_TEST

/* spoke_method_fail: the method's own message, after the runtime's prefix;
 * what the method packed before failing does not come back. */
START_TEST(method_fail_gives_its_own_message)
{
	spoke_actor *a = spawn_open("m2", NULL);
	size_t n = 99;

	ck_assert_int_eq(fail_with(a, -EINVAL, "prompt of 9000 tokens is over 4096", &n),
			 SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -EINVAL);
	ck_assert_str_eq(spoke_errmsg(),
			 "method fail_with of actor m2 failed: prompt of 9000 tokens is over 4096");
	ck_assert_int_eq(fail_with(a, SPOKE_EDEAD, "the engine is gone", &n), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), SPOKE_EDEAD);
	ck_assert_str_eq(spoke_errmsg(), "method fail_with of actor m2 failed: the engine is gone");
	/* A code >= 0 is no failure: the reply is what the method packed. */
	ck_assert_int_eq(fail_with(a, 0, "ignored", &n), 0);
	ck_assert_uint_eq(n, 7);
	ck_assert_int_eq(spoke_method_status(), 0);
	spoke_actor_close(a);
}
END_TEST

/* The runtime's failures keep their codes, and spoke_method_status() is 0
 * after them. */
START_TEST(no_such_method_is_the_runtimes)
{
	spoke_actor *a = spawn_open("m3", NULL);
	uint8_t rep[8];
	size_t n;

	ck_assert_int_eq(fail_with(a, -1, NULL, &n), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_call(a, 99, NULL, 0, rep, sizeof(rep), &n, 0), SPOKE_ENOMETHOD);
	ck_assert_int_eq(spoke_method_status(), 0);
	ck_assert_str_eq(spoke_errmsg(), "actor m3 (Probe) has no method 99");
	spoke_actor_close(a);
}
END_TEST

/* A reply over the worker's maximum: SPOKE_ETOOBIG naming the method,
 * whatever the method returned. */
START_TEST(reply_over_workers_maximum)
{
	uint8_t req[5] = { 0, 0, 0x50, 0, 1 }; /* PROBE_FILL of 5 MiB, over 4 MiB */
	uint8_t max[5] = { 0, 0, 0x40, 0, 1 }; /* 4 MiB: the most it takes */
	uint8_t *rep = malloc(4u << 20);
	spoke_actor *a;
	size_t n;

	ck_assert_ptr_nonnull(rep);
	fixture_start_with("SPOKE_MAX_MSG", "4M");
	a = spawn_open("m4", NULL);
	ck_assert_int_eq(fail_with(a, -1, NULL, &n), SPOKE_EMETHOD);
	/* A reply of the maximum grows the worker's buffer past it: the next,
	 * larger one fits that room and is still refused. */
	ck_assert_int_eq(spoke_call(a, PROBE_FILL, max, sizeof(max), rep, 4u << 20, &n, 0), 0);
	ck_assert_uint_eq(n, 4u << 20);
	ck_assert_int_eq(spoke_call(a, PROBE_FILL, req, sizeof(req), rep, 8, &n, 0),
			 SPOKE_ETOOBIG);
	ck_assert_int_eq(spoke_method_status(), 0);
	ck_assert_str_eq(spoke_errmsg(), "the reply of method fill of actor m4 is over this "
					 "actor's maximum of 4194304 bytes (SPOKE_MAX_MSG)");
	echo_ok(a);
	spoke_actor_close(a);
	free(rep);
}
END_TEST

/* The same for spoke_call_obj and for futures. */
static int pack_fail(spoke_buf *b, const void *obj)
{
	spoke_buf_put_i32(b, *(const int32_t *)obj);
	return spoke_buf_put_raw(b, "obj says no", 11);
}

static const spoke_serializer fail_ser = { pack_fail, NULL };

START_TEST(call_obj_and_futures_see_emethod)
{
	spoke_actor *a = spawn_open("m5", NULL);
	int32_t code = -ENOENT;
	uint8_t req[4] = { 0xfe, 0xff, 0xff, 0xff }, rep[16]; /* -2 */
	spoke_future f;

	ck_assert_int_eq(spoke_call_obj(a, PROBE_FAIL_WITH, &fail_ser, &code, NULL, NULL, 0),
			 SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -ENOENT);
	ck_assert_str_eq(spoke_errmsg(), "method fail_with of actor m5 failed: obj says no");
	ck_assert_int_eq(spoke_call_async(a, PROBE_FAIL_WITH, req, sizeof(req), rep, sizeof(rep), &f),
			 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), SPOKE_EMETHOD);
	ck_assert_int_eq(f.status, SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -2);
	ck_assert_msg(strstr(spoke_errmsg(), "method fail_with of actor m5 failed: "),
		      "%s", spoke_errmsg());
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

/* A future whose reply another wait received keeps its method's code and
 * message: waited on later, it reports its own, not the last one seen. */
START_TEST(futures_keep_their_method_errors)
{
	spoke_actor *a = spawn_open("m7", NULL);
	uint8_t req[2][16], rep[2][64], tiny[4];
	spoke_future f[3];
	size_t n;

	for (int i = 0; i < 2; i++) {
		int32_t code = i ? -EIO : -ENOENT;

		memcpy(req[i], &code, 4); /* little-endian on every host Spoke runs on */
		n = 4 + (size_t)snprintf((char *)req[i] + 4, sizeof(req[i]) - 4, "no %d", i);
		ck_assert_int_eq(spoke_call_async(a, PROBE_FAIL_WITH, req[i], n, rep[i],
						  sizeof(rep[i]), &f[i]), 0);
	}
	ck_assert_int_eq(spoke_call_async(a, PROBE_FAIL_WITH, req[0], 8, tiny, sizeof(tiny),
					  &f[2]), 0);
	/* The last wait receives all three replies. */
	ck_assert_int_eq(spoke_future_wait(&f[2], 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -ENOENT);
	/* A message that does not fit its buffer is not kept cut short. */
	ck_assert_uint_eq(f[2].reply_len, 0);
	ck_assert_int_eq(spoke_future_wait(&f[1], 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -EIO);
	ck_assert_str_eq(spoke_errmsg(), "method fail_with of actor m7 failed: no 1");
	ck_assert_str_eq((char *)rep[1], spoke_errmsg());
	ck_assert_uint_eq(f[1].reply_len, strlen(spoke_errmsg()));
	ck_assert_int_eq(spoke_future_wait(&f[0], 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -ENOENT);
	ck_assert_str_eq(spoke_errmsg(), "method fail_with of actor m7 failed: no 0");
	/* The runtime's own failures too: no such method. */
	ck_assert_int_eq(spoke_call_async(a, 99, NULL, 0, rep[0], sizeof(rep[0]), &f[0]), 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_FAIL_WITH, req[1], 8, rep[1], sizeof(rep[1]),
					  &f[1]), 0);
	ck_assert_int_eq(spoke_future_wait(&f[1], 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_future_wait(&f[0], 0), SPOKE_ENOMETHOD);
	ck_assert_int_eq(spoke_method_status(), 0);
	ck_assert_str_eq(spoke_errmsg(), "actor m7 (Probe) has no method 99");
	/* Waited on again, the one whose message did not fit says so. */
	ck_assert_int_eq(spoke_future_wait(&f[2], 0), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_method_status(), -ENOENT);
	ck_assert_str_eq(spoke_errmsg(), "the method failed: No such file or directory (code -2) "
					 "(its message did not fit the reply buffer of 4 bytes)");
	echo_ok(a);
	spoke_actor_close(a);
}
END_TEST

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

/* spoke_method_status() is per thread. */
struct other {
	spoke_actor *a;
	int status;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;
	size_t n;

	o->status = fail_with(o->a, -EIO, NULL, &n) == SPOKE_EMETHOD ? spoke_method_status() : 1;
	return NULL;
}

START_TEST(method_status_is_per_thread)
{
	struct other o = { .a = spawn_open("m6", NULL) };
	pthread_t t;
	size_t n;

	ck_assert_int_eq(fail_with(o.a, -EPERM, NULL, &n), SPOKE_EMETHOD);
	ck_assert_int_eq(pthread_create(&t, NULL, other_thread, &o), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(o.status, -EIO);
	ck_assert_int_eq(spoke_method_status(), -EPERM);
	spoke_actor_close(o.a);
}
END_TEST

/* A request over the worker's SPOKE_MAX_MSG (but not the client's) gets
 * SPOKE_ETOOBIG with the sizes; its payload is dropped unbuffered, and the
 * next calls on the same handle (the same connection) work. */
START_TEST(request_over_workers_maximum)
{
	const size_t sizes[] = { 64 * 1024 + 1, 100 * 1024, 48u << 20 };
	uint8_t *big = malloc(48u << 20), rep[8];
	spoke_actor *a;
	char want[256];
	long before, after;
	pid_t pid;
	size_t n;

	fixture_start_with("SPOKE_MAX_MSG", "64K");
	a = spawn_open("small", NULL);
	pid = (pid_t)actor_pid(a);
	before = cluster_proc_kib(pid, "VmHWM");
	ck_assert_int_gt(before, 0);
	memset(big, 7, 48u << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(spoke_call(a, PROBE_SINK, big, sizes[i], rep, sizeof(rep), &n, 0),
				 SPOKE_ETOOBIG);
		snprintf(want, sizeof(want), "request of %zu bytes is over this actor's maximum of "
			 "65536 (SPOKE_MAX_MSG)", sizes[i]);
		ck_assert_str_eq(spoke_errmsg(), want);
		/* Exactly one reply: the next two calls get their own answers. */
		ck_assert_int_eq(spoke_call(a, PROBE_SINK, big, 65536, rep, sizeof(rep), &n, 0), 0);
		ck_assert_uint_eq(n, 4);
		ck_assert_uint_eq(rep[0] | rep[1] << 8 | rep[2] << 16, 65536);
		echo_ok(a);
	}
	/* The same refusal in an asynchronous window: it may come while the
	 * request is still being sent; the calls around it go on. */
	for (int round = 0; round < 20; round++) {
		uint32_t v[4], got[4];
		char why[128]; /* the refusal's message is kept there */
		spoke_future f[5];

		for (int i = 0; i < 4; i++) {
			v[i] = (uint32_t)(round * 4 + i);
			ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v[i], 4, &got[i], 4, &f[i]), 0);
		}
		ck_assert_int_eq(spoke_call_async(a, PROBE_SINK, big, 48u << 20, why, sizeof(why),
						  &f[4]), 0);
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(spoke_future_wait(&f[i], 0), 0);
			ck_assert_uint_eq(got[i], v[i]);
		}
		ck_assert_int_eq(spoke_future_wait(&f[4], 0), SPOKE_ETOOBIG);
		ck_assert_msg(strstr(spoke_errmsg(), "is over this actor's maximum of 65536"), "%s",
			      spoke_errmsg());
		ck_assert_str_eq(why, spoke_errmsg());
	}
	echo_ok(a);
	ck_assert_int_eq(actor_pid(a), pid); /* the same worker */
	after = cluster_proc_kib(pid, "VmHWM");
	ck_assert_msg(after - before < 16 * 1024, "the worker grew from %ld to %ld KiB", before,
		      after);
	spoke_actor_close(a);
	free(big);
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
	tcase_add_test(tc, method_codes_come_back_as_emethod);
	tcase_add_test(tc, method_fail_gives_its_own_message);
	tcase_add_test(tc, no_such_method_is_the_runtimes);
	tcase_add_test(tc, call_obj_and_futures_see_emethod);
	tcase_add_test(tc, method_status_is_per_thread);
	tcase_add_test(tc, futures_keep_their_method_errors);
	tcase_add_test(tc, type_registration_says_why);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tm, NULL, fixture_teardown);
	tcase_set_timeout(tm, 60);
	tcase_add_test(tm, reply_over_workers_maximum);
	tcase_add_test(tm, request_over_workers_maximum);
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
