/* test_restart.c - actor restarts (spoke_spawn_opts.max_restarts): a
 * crashed worker comes back on its GPUs under its name, a handle's next
 * call reaches it, calls in flight fail SPOKE_EDEAD, the limit holds, and a
 * kill during the backoff ends it for good.  A real hub, two agents, real
 * workers (tests/harness/fixture.h). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#include "client_priv.h"
#include "proto.h"

/* The hub's view of actor `name` (spoke-status' STATUS): its state and
 * restarts; false if the hub has no such actor. */
static bool hub_actor(const char *name, uint8_t *state, uint32_t *restarts)
{
	struct spk_status *st;
	uint8_t *raw;
	bool found = false;

	ck_assert_msg(spk_client_status(client, &st, &raw, 0) == 0, "%s", spoke_errmsg());
	for (uint32_t i = 0; i < st->n_actors; i++)
		if (!strcmp(st->actors[i].name, name)) {
			*state = st->actors[i].state;
			*restarts = st->actors[i].restarts;
			found = true;
		}
	spk_status_free(st);
	free(raw);
	return found;
}

/* Waits up to ms until the hub says that actor name restarts, restart
 * `restarts` of its maximum, and asserts it. */
static void wait_restarting(const char *name, uint32_t restarts, int ms)
{
	uint32_t n = 0;
	uint8_t state = 0;

	for (int i = 0; i < ms / 10 && !(hub_actor(name, &state, &n) &&
					 state == SPK_ACTOR_RESTARTING && n == restarts); i++)
		usleep(10000);
	ck_assert_msg(state == SPK_ACTOR_RESTARTING && n == restarts,
		      "%s: state %u, restarts %u; expected restarting, %u", name, state, n, restarts);
}

/* Waits up to 3 s until the hub no longer lists actor name, and asserts it. */
static void wait_gone(const char *name)
{
	uint32_t n;
	uint8_t state;

	for (int i = 0; i < 300 && hub_actor(name, &state, &n); i++)
		usleep(10000);
	ck_assert_msg(!hub_actor(name, &state, &n), "%s: still listed", name);
}

static void gpus_of(spoke_actor *a, char *out, size_t cap)
{
	size_t n;

	ck_assert_int_eq(spoke_call(a, PROBE_GPUS, NULL, 0, out, cap - 1, &n, 0), 0);
	out[n] = '\0';
}

static spoke_spawn_opts restarts(uint32_t max, uint32_t backoff_ms)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;

	o.res.gpus = 1;
	o.max_restarts = max;
	o.restart_backoff_ms = backoff_ms;
	return o;
}

/* Killed twice, it comes back twice on the same GPU, each time a new pid
 * that the same handle reaches (synchronous and asynchronous calls) after
 * the backoff; killed a third time, past its max of 2, it stays dead and
 * its GPU is free. */
START_TEST(crashed_actor_restarts_and_handle_follows)
{
	spoke_spawn_opts o = restarts(2, 300);
	char gpus0[64], gpus[64];
	uint32_t pid, newpid, n_restarts = 9;
	uint8_t state = 9, reply[4];
	spoke_future f;
	spoke_actor *a = spawn_open("phoenix", &o);
	double t0, took;
	int rc;

	gpus_of(a, gpus0, sizeof(gpus0));
	pid = actor_pid(a);
	ck_assert(hub_actor("phoenix", &state, &n_restarts));
	ck_assert_uint_eq(n_restarts, 0);
	for (uint32_t r = 1; r <= 2; r++) {
		ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
		t0 = now_ms();
		/* The call that finds the connection broken fails, unless the
		 * transport saw the worker go first; the next one waits while
		 * the actor restarts, and reaches the new worker. */
		rc = spoke_call(a, PROBE_PID, NULL, 0, reply, sizeof(reply), NULL, 0);
		if (rc != 0)
			ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc),
				      spoke_errmsg());
		newpid = actor_pid(a);
		took = now_ms() - t0;
		ck_assert_uint_ne(newpid, pid);
		ck_assert_msg(took >= 300, "restart %u reached after %.0f ms, before its backoff",
			      r, took);
		ck_assert_msg(took < 5000, "restart %u took %.0f ms", r, took);
		gpus_of(a, gpus, sizeof(gpus));
		ck_assert_str_eq(gpus, gpus0);
		ck_assert_uint_eq(free_gpus(NULL, 2), 7); /* its GPU stayed reserved */
		ck_assert(hub_actor("phoenix", &state, &n_restarts));
		ck_assert_uint_eq(state, SPK_ACTOR_RUNNING);
		ck_assert_uint_eq(n_restarts, r);
		pid = newpid;
	}
	/* The pipelined connection follows too. */
	ck_assert_int_eq(spoke_call_async(a, PROBE_PID, NULL, 0, reply, sizeof(reply), &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_uint_eq((uint32_t)reply[0] | (uint32_t)reply[1] << 8 |
				  (uint32_t)reply[2] << 16 | (uint32_t)reply[3] << 24,
			  pid);

	/* Past the limit: dead for good, and said so. */
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	wait_gone("phoenix");
	/* The first call may find the connection broken; the hub's answer
	 * says why. */
	rc = spoke_call(a, PROBE_PID, NULL, 0, reply, sizeof(reply), NULL, 0);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	rc = spoke_call(a, PROBE_PID, NULL, 0, reply, sizeof(reply), NULL, 0);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "after 2 restarts"), "%s", spoke_errmsg());
	assert_all_gpus_free();
	ck_assert_int_eq(cluster_workers(&cl), 0);
	spoke_actor_close(a);
}
END_TEST

/* A call running when the worker dies fails SPOKE_EDEAD (it may have run);
 * the next call on the same handle reaches the new worker. */
START_TEST(call_in_flight_fails_dead)
{
	spoke_spawn_opts o = restarts(1, 0);
	spoke_actor *a = spawn_open("inflight", &o);
	uint32_t pid = actor_pid(a);
	uint8_t req[4] = { 0xb8, 0x0b, 0, 0 }; /* nap 3000 ms */
	uint8_t reply[4];
	spoke_future f;
	int rc;

	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, req, sizeof(req), reply, sizeof(reply),
					  &f), 0);
	usleep(200000);
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	rc = spoke_future_wait(&f, 0);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_ne(actor_pid(a), pid);
	spoke_actor_close(a);
}
END_TEST

/* A future sent before the restart, waited for after the handle moved on
 * (and made a pipelined connection to the new worker): SPOKE_EDEAD at once,
 * from the connection it went out on. */
START_TEST(old_future_fails_dead_after_restart)
{
	spoke_spawn_opts o = restarts(1, 0);
	spoke_actor *a = spawn_open("oldfuture", &o);
	uint32_t pid = actor_pid(a);
	uint8_t req[4] = { 0xd0, 0x07, 0, 0 }; /* nap 2000 ms */
	uint8_t reply[4], reply2[4];
	spoke_future f1, f2;
	double t0;
	int rc;

	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, req, sizeof(req), reply, sizeof(reply),
					  &f1), 0);
	usleep(100000);
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	rc = spoke_call(a, PROBE_ECHO, "x", 1, reply2, sizeof(reply2), NULL, 0);
	ck_assert_msg(rc == 0 || rc == SPOKE_EDEAD, "%s", spoke_strerror(rc));
	ck_assert_uint_ne(actor_pid(a), pid);
	ck_assert_int_eq(spoke_call_async(a, PROBE_PID, NULL, 0, reply2, sizeof(reply2), &f2), 0);
	ck_assert_int_eq(spoke_future_wait(&f2, 0), 0);
	t0 = now_ms();
	rc = spoke_future_wait(&f1, 5000);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(now_ms() - t0 < 1000, "took %.0f ms", now_ms() - t0);
	spoke_actor_close(a);
}
END_TEST

/* Killed while it waits out its backoff: no worker comes back, its GPU is
 * free at once, and its name says it was killed. */
START_TEST(kill_during_backoff_ends_it)
{
	spoke_spawn_opts o = restarts(3, 1500);
	spoke_actor *a = spawn_open("backoff", &o), *b = NULL;
	uint32_t pid = actor_pid(a);
	int rc;

	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	wait_restarting("backoff", 1, 3000);
	ck_assert_int_eq(spoke_kill(client, "backoff", 0), 0);
	assert_all_gpus_free();
	usleep(2000000); /* past the backoff: nothing restarts */
	ck_assert_int_eq(cluster_workers(&cl), 0);
	rc = spoke_actor_open(client, "backoff", &b, 0);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "killed by a client"), "%s", spoke_errmsg());
	spoke_actor_close(a);
}
END_TEST

/* While it restarts, a lookup waits for it, within its timeout: a short
 * one fails SPOKE_ETIMEDOUT saying so. */
START_TEST(lookup_waits_while_restarting)
{
	spoke_spawn_opts o = restarts(1, 1500);
	spoke_actor *a = spawn_open("slowback", &o), *b = NULL;
	uint32_t pid = actor_pid(a);
	int rc;

	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	wait_restarting("slowback", 1, 3000);
	rc = spoke_actor_open(client, "slowback", &b, 200);
	ck_assert_msg(rc == SPOKE_ETIMEDOUT, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "is restarting (restart 1 of 1)"), "%s",
		      spoke_errmsg());
	ck_assert_int_eq(spoke_actor_open(client, "slowback", &b, 5000), 0);
	ck_assert_uint_ne(actor_pid(b), pid);
	spoke_actor_close(b);
	spoke_actor_close(a);
}
END_TEST

/* A restart whose init fails is one more death: it counts, and the next
 * restart (after the backoff) can succeed; the GPU stays reserved through
 * both. */
START_TEST(failed_restart_counts_and_next_one_serves)
{
	spoke_spawn_opts o = restarts(3, 300);
	char path[] = "/tmp/spoke-flaky.XXXXXX";
	uint32_t pid, n_restarts = 0;
	uint8_t args[64], state = 0;
	spoke_actor *a;
	spoke_buf b;
	int fd;

	/* A name for the marker file, which does not exist at the first start. */
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	unlink(path);
	spoke_buf_init(&b, args, sizeof(args));
	ck_assert_int_eq(spoke_buf_put_str(&b, path), 0);
	ck_assert_int_eq(spoke_spawn(client, "Flaky", "flaky", args, b.len, &o), 0);
	ck_assert_int_eq(spoke_actor_open(client, "flaky", &a, 0), 0);
	pid = actor_pid(a);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	/* Restart 1 fails its init: the hub hears of restart 2. */
	wait_restarting("flaky", 2, 5000);
	ck_assert_uint_eq(free_gpus(NULL, 2), 7);
	unlink(path);
	/* The first call finds the dead worker's connection broken. */
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, args, sizeof(args), NULL, 0),
			 SPOKE_EDEAD);
	ck_assert_uint_ne(actor_pid(a), pid);
	ck_assert(hub_actor("flaky", &state, &n_restarts));
	ck_assert_uint_eq(state, SPK_ACTOR_RUNNING);
	ck_assert_uint_eq(n_restarts, 2);
	ck_assert_uint_eq(free_gpus(NULL, 2), 7);
	spoke_actor_close(a);
	ck_assert_int_eq(spoke_kill(client, "flaky", 0), 0);
	assert_all_gpus_free();
}
END_TEST

/* Limits are checked before anything starts. */
START_TEST(bad_restart_options_refused)
{
	spoke_spawn_opts o = restarts(SPOKE_MAX_RESTARTS + 1, 0);
	int rc = spoke_spawn(client, "Probe", "toomany", NULL, 0, &o);

	ck_assert_int_eq(rc, SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "max_restarts=65536"), "%s", spoke_errmsg());
	o = restarts(1, SPOKE_MAX_RESTART_BACKOFF_MS + 1);
	rc = spoke_spawn(client, "Probe", "toolong", NULL, 0, &o);
	ck_assert_int_eq(rc, SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "restart_backoff_ms=600001"), "%s", spoke_errmsg());
	ck_assert_int_eq(cluster_workers(&cl), 0);
	assert_all_gpus_free();
}
END_TEST

/* Without restarts (the default), a crash is the end, as it always was. */
START_TEST(no_restarts_by_default)
{
	spoke_actor *a = spawn_open("once", &(spoke_spawn_opts)SPOKE_SPAWN_OPTS_INIT);
	uint32_t pid = actor_pid(a);
	uint8_t reply[4];
	int rc;

	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	wait_gone("once");
	rc = spoke_call(a, PROBE_PID, NULL, 0, reply, sizeof(reply), NULL, 0);
	ck_assert_int_eq(rc, SPOKE_EDEAD);
	ck_assert_int_eq(cluster_workers(&cl), 0);
	spoke_actor_close(a);
}
END_TEST

static Suite *restart_suite(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("cluster");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, crashed_actor_restarts_and_handle_follows);
	tcase_add_test(tc, call_in_flight_fails_dead);
	tcase_add_test(tc, old_future_fails_dead_after_restart);
	tcase_add_test(tc, kill_during_backoff_ends_it);
	tcase_add_test(tc, lookup_waits_while_restarting);
	tcase_add_test(tc, failed_restart_counts_and_next_one_serves);
	tcase_add_test(tc, bad_restart_options_refused);
	tcase_add_test(tc, no_restarts_by_default);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(restart_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
