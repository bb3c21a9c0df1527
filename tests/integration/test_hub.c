/* test_hub.c - the hub and agents on a real loopback cluster (fixture.c):
 * dead actors forgotten, starts that time out, non-strict gangs, workers
 * that reach their own job, and the hub's and agent's option checks. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


#include "../harness/fixture.h"
#include "../harness/probe.h"

/* ---- helpers ------------------------------------------------------------ */

/* The hub's books, from the status line it logs on SIGUSR1. */
struct hub_status {
	unsigned actors, starting, kept, tickets, pending;
	unsigned long long deaths;
};

static int count_status_lines(const char *log, char *last, size_t cap)
{
	char line[512];
	int n = 0;
	FILE *f = fopen(log, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "status: ")) {
			n++;
			snprintf(last, cap, "%s", line);
		}
	fclose(f);
	return n;
}

static struct hub_status hub_status(void)
{
	struct hub_status st = { 0 };
	char log[128], line[512] = "";
	int before, i;

	snprintf(log, sizeof(log), "%s/hub.log", cl.dir);
	before = count_status_lines(log, line, sizeof(line));
	ck_assert_int_eq(kill(cl.hub, SIGUSR1), 0);
	for (i = 0; i < 300 && count_status_lines(log, line, sizeof(line)) == before; i++)
		usleep(10000);
	ck_assert_msg(i < 300, "the hub logged no status line");
	ck_assert_msg(sscanf(strstr(line, "status: "),
			     "status: %*u nodes (%*u live), %u actors (%u starting), %llu deaths "
			     "(last %u kept), %u tickets, %*u connections, %u starts pending",
			     &st.actors, &st.starting, &st.deaths, &st.kept, &st.tickets,
			     &st.pending) == 6,
		      "status line: %s", line);
	return st;
}

/* Waits until the hub knows that actor `name` died (its agent reports it).
 * Opening a handle fails as soon as the worker is gone, before the agent
 * has told the hub: only the hub's own answer ("actor 'NAME' on NODE
 * ...") says that the name is free again. */
static void wait_dead(const char *name)
{
	char hub_says[96];
	spoke_actor *a;
	double t0 = now_ms();
	int rc;

	snprintf(hub_says, sizeof(hub_says), "actor '%s' on ", name);
	for (;;) {
		rc = spoke_actor_open(client, name, &a, 0);
		if (rc == 0)
			spoke_actor_close(a);
		else if (rc != SPOKE_EDEAD || strstr(spoke_errmsg(), hub_says))
			break;
		ck_assert_msg(now_ms() - t0 < 10000, "%s: the hub still lists it after 10 s (%s)",
			      name, rc ? spoke_errmsg() : "the handle opens");
		usleep(5000);
	}
	ck_assert_msg(rc == SPOKE_EDEAD, "%s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
}

static void spawn_ok(const char *name)
{
	int rc = spoke_spawn(client, "Probe", name, NULL, 0, NULL);

	ck_assert_msg(rc == 0, "spawn %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
}

/* ---- dead actors are forgotten ------------------------------------------- */

#define CYCLES 150
#define WARMUP 20

/* Kill and crash loops, the name reused every time, plus a fresh name each
 * time (a long-running server's pattern): the hub's records stay at the
 * live actors, its remembered deaths stay bounded, its memory flat. */
START_TEST(dead_actors_forgotten)
{
	long rss_warm = 0, rss_end;
	struct hub_status st;
	char name[32];
	spoke_actor *a;

	for (int i = 0; i < CYCLES; i++) {
		if (i == WARMUP)
			rss_warm = cluster_proc_kib(cl.hub, "VmRSS");
		/* Killed, and its name at once reusable. */
		spawn_ok("same");
		ck_assert_int_eq(spoke_kill(client, "same", 0), 0);
		/* Crashed: reusable once the hub knows. */
		a = spawn_open("same", NULL);
		ck_assert_int_eq(spoke_call(a, PROBE_CRASH, NULL, 0, NULL, 0, NULL, 0), SPOKE_EDEAD);
		spoke_actor_close(a);
		wait_dead("same");
		/* A new name every time. */
		snprintf(name, sizeof(name), "u%d", i);
		spawn_ok(name);
		ck_assert_int_eq(spoke_kill(client, name, 0), 0);
	}
	rss_end = cluster_proc_kib(cl.hub, "VmRSS");
	st = hub_status();
	fprintf(stderr, "hub after %d cycles: VmRSS %ld KiB after %d, %ld KiB at the end; "
			"%u actors, %llu deaths, %u kept\n",
		CYCLES, rss_warm, WARMUP, rss_end, st.actors, st.deaths, st.kept);
	ck_assert_uint_eq(st.actors, 0);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_uint_eq(st.tickets, 0);
	ck_assert(st.deaths == 3ull * CYCLES);
	ck_assert_uint_le(st.kept, 64);
	/* The record count above is the precise check; VmRSS is a coarse
	 * guard (under ASan, freed memory sits in quarantine for a while). */
	ck_assert_msg(rss_end - rss_warm < 2048, "hub VmRSS grew from %ld to %ld KiB", rss_warm,
		      rss_end);
	assert_all_gpus_free();

	/* Recent deaths still explain themselves; old ones are forgotten. */
	snprintf(name, sizeof(name), "u%d", CYCLES - 1);
	ck_assert_int_eq(spoke_actor_open(client, name, &a, 0), SPOKE_EDEAD);
	ck_assert_msg(strstr(spoke_errmsg(), "killed by a client"), "%s", spoke_errmsg());
	ck_assert_int_eq(spoke_actor_open(client, "same", &a, 0), SPOKE_EDEAD);
	ck_assert_msg(strstr(spoke_errmsg(), "signal 9"), "%s", spoke_errmsg());
	ck_assert_int_eq(spoke_actor_open(client, "u0", &a, 0), SPOKE_ENOACTOR);
	ck_assert_int_eq(spoke_actor_open(client, "never", &a, 0), SPOKE_ENOACTOR);
}
END_TEST

/* ---- a start its agent never answers ------------------------------------- */

START_TEST(start_times_out_when_agent_hangs)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	struct hub_status st;
	double t0, took;
	int rc, i;

	for (i = 0; i < cl.n_agents; i++)
		ck_assert_int_eq(kill(cl.agents[i], SIGSTOP), 0);
	o.timeout_ms = 500;
	o.res.gpus = 1;
	t0 = now_ms();
	rc = spoke_spawn(client, "Probe", "hung", NULL, 0, &o);
	took = now_ms() - t0;
	/* The hub's answer (the spawn's timeout plus its grace), before the
	 * client's own deadline (a second past the timeout) would expire. */
	ck_assert_msg(rc == SPOKE_ETIMEDOUT, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strstr(spoke_errmsg(), "did not answer its start within 500 ms"), "%s",
		      spoke_errmsg());
	ck_assert_msg(took >= 500 && took < 1400, "took %.0f ms", took);

	/* Nothing left reserved or pending, and the hub still answers. */
	assert_all_gpus_free();
	st = hub_status();
	ck_assert_uint_eq(st.actors, 0);
	ck_assert_uint_eq(st.pending, 0);
	ck_assert_int_eq(spoke_actor_open(client, "hung", &(spoke_actor *){ NULL }, 0),
			 SPOKE_EDEAD);

	/* The agents wake up: the late START is stopped at once, no worker
	 * stays, and the name works again. */
	for (i = 0; i < cl.n_agents; i++)
		ck_assert_int_eq(kill(cl.agents[i], SIGCONT), 0);
	for (i = 0; i < 1000 && cluster_workers(&cl); i++)
		usleep(10000);
	ck_assert_int_eq(cluster_workers(&cl), 0);
	ck_assert(cluster_alive(cl.agents[0]) && cluster_alive(cl.agents[1]));
	spoke_actor_close(spawn_open("hung", &o));
	ck_assert_int_eq(spoke_kill(client, "hung", 0), 0);
	assert_all_gpus_free();
}
END_TEST

/* A gang's client dies while its actor starts: the hub releases the ticket
 * and the agent STOPs the worker, whose init ignores SIGTERM for a second
 * and then is ready, so its READY crosses the STOP; the SIGKILL 2 s after
 * the STOP still ends it, and its GPU is free. */
START_TEST(stopped_while_starting_even_when_ready)
{
	spoke_resources res = { .gpus = 1 };
	spoke_actor *a = NULL;
	double t0;
	pid_t pid;
	int rc = SPOKE_ENOACTOR, status, i;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		spoke_ticket *t;
		spoke_client *c;
		uint8_t args[8];
		spoke_buf b;

		spoke_buf_init(&b, args, sizeof(args));
		spoke_buf_put_str(&b, "1000");
		if (cluster_client(&cl, &c) < 0 ||
		    spoke_gang_allocate(c, 1, 1, &res, 1, &t, 0) < 0)
			_exit(1);
		spoke_gang_launch(c, t, 0, "Stubborn", "stubborn", args, b.len, NULL);
		_exit(2); /* killed before */
	}
	/* The START went out; its init has begun ignoring SIGTERM. */
	for (i = 0; i < 500 && rc == SPOKE_ENOACTOR && !strstr(spoke_errmsg(), "starting"); i++) {
		usleep(10000);
		rc = spoke_actor_open(client, "stubborn", &a, 0);
	}
	ck_assert_msg(rc == SPOKE_ENOACTOR, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	usleep(500000);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	t0 = now_ms();
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	for (i = 0; i < 1000 && cluster_workers(&cl); i++)
		usleep(10000);
	ck_assert_msg(cluster_workers(&cl) == 0,
		      "a worker still runs %.0f ms after its STOP", now_ms() - t0);
	assert_all_gpus_free();
}
END_TEST

/* ---- non-strict gangs ---------------------------------------------------- */

/* 3 gang nodes x 1 slot on two nodes, not strictly packed: the gang nodes
 * spread over both nodes, each actor pinned to its slot's GPU. */
START_TEST(nonstrict_gang_spreads)
{
	spoke_resources res = { .gpus = 1 };
	bool on_n1 = false, on_n2 = false;
	spoke_ticket *t;

	ck_assert_msg(spoke_gang_allocate(client, 3, 1, &res, 0, &t, 0) == 0, "%s",
		      spoke_errmsg());
	ck_assert_uint_eq(t->n_slots, 3);
	for (uint32_t i = 0; i < 3; i++) {
		const spoke_slot *s = &t->slots[i];
		char name[16], want[16], got[32];
		spoke_actor *a;
		size_t n;

		ck_assert_uint_eq(s->rank, i);
		ck_assert_uint_eq(s->node_rank, i);
		ck_assert_uint_eq(s->local_rank, 0);
		on_n1 |= !strcmp(s->node, "n1");
		on_n2 |= !strcmp(s->node, "n2");
		ck_assert_uint_eq(s->n_gpus, 1);
		ck_assert_int_eq(s->gpus[0] / 4 + 1, s->node[1] - '0');
		snprintf(name, sizeof(name), "g%u", i);
		ck_assert_msg(spoke_gang_launch(client, t, i, "Probe", name, NULL, 0, NULL) == 0,
			      "%s", spoke_errmsg());
		ck_assert_int_eq(spoke_actor_open(client, name, &a, 0), 0);
		ck_assert_int_eq(spoke_call(a, PROBE_GPUS, NULL, 0, got, sizeof(got) - 1, &n, 0),
				 0);
		got[n] = '\0';
		snprintf(want, sizeof(want), "%d", s->gpus[0]);
		ck_assert_str_eq(got, want);
		spoke_actor_close(a);
	}
	ck_assert(on_n1 && on_n2);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	assert_all_gpus_free();
}
END_TEST

/* ---- workers reach their own job ------------------------------------------ */

/* Agents given only --hub and --token-file, with no SPOKE_* variable. */
static void bare_agents_setup(void)
{
	ck_assert_int_eq(cluster_start(&cl), 0);
	unsetenv("SPOKE_HUB");
	unsetenv("SPOKE_TOKEN_FILE");
	unsetenv("SPOKE_TOKEN");
	ck_assert_int_eq(cluster_add_agent(&cl, "n1", "0-3"), 0);
	ck_assert_int_eq(cluster_add_agent(&cl, "n2", "4-7"), 0);
	setenv("SPOKE_HUB", cl.hub_addr, 1);
	setenv("SPOKE_TOKEN_FILE", cl.token_file, 1);
	ck_assert_msg(cluster_client(&cl, &client) == 0, "client: %s", spoke_errmsg());
}

START_TEST(actor_opens_client_to_its_job)
{
	spoke_actor *a = spawn_open("inner", NULL);
	char reply[512], text[256], n1[64], n2[64];
	int32_t status = -1;
	spoke_view v;
	size_t n;

	ck_assert_int_eq(spoke_call(a, PROBE_NODES, NULL, 0, reply, sizeof(reply), &n, 0), 0);
	spoke_view_init(&v, reply, n);
	ck_assert_int_eq(spoke_view_get_i32(&v, &status), 0);
	if (status < 0) {
		spoke_view_get_str_copy(&v, text, sizeof(text));
		ck_abort_msg("the actor's client: %s (%s)", spoke_strerror(status), text);
	}
	ck_assert_int_eq(spoke_view_get_str_copy(&v, n1, sizeof(n1)), 0);
	ck_assert_int_eq(spoke_view_get_str_copy(&v, n2, sizeof(n2)), 0);
	ck_assert_msg((!strcmp(n1, "n1") && !strcmp(n2, "n2")) ||
			      (!strcmp(n1, "n2") && !strcmp(n2, "n1")),
		      "nodes %s, %s", n1, n2);
	spoke_actor_close(a);
}
END_TEST

/* ---- options and variables of spoke-hub and spoke-agent ------------------ */

/* Runs program with args and exactly the environment env; returns its
 * exit status and its output in out. */
static int run(const char *program, const char *const *args, char *const *env, char *out,
	       size_t cap)
{
	char path[512], *argv[16];
	int fds[2], status, i = 0;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	argv[i++] = (char *)cluster_path(path, sizeof(path), program);
	for (; *args && i < 15; args++)
		argv[i++] = (char *)*args;
	argv[i] = NULL;
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		close(fds[0]);
		alarm(5); /* never a hang */
		execve(argv[0], argv, env);
		_exit(127);
	}
	close(fds[1]);
	while (len + 1 < cap && (r = read(fds[0], out + len, cap - 1 - len)) > 0)
		len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct bad_usage {
	const char *program;
	const char *args[6];
	const char *env; /* one NAME=value, or NULL */
	const char *says[3];
};

static const struct bad_usage bad[] = {
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--gpus", "0,0,1" }, NULL,
	  { "--gpus '0,0,1'", "GPU 0 is listed twice" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--gpus", "-1" }, NULL, { "--gpus '-1'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--gpus", "0,x" }, NULL, { "--gpus '0,x'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--gpus", "3-1" }, NULL, { "--gpus '3-1'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--cpus", "-2" }, NULL, { "--cpus '-2'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--cpus", "four" }, NULL,
	  { "--cpus 'four'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--timeout", "0" }, NULL,
	  { "--timeout '0'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--timeout", "10s" }, NULL,
	  { "--timeout '10s'" } },
	{ "spoke-agent", { "--hub", "localhost" }, NULL, { "--hub 'localhost'", "HOST:PORT" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:70000" }, NULL, { "--hub '127.0.0.1:70000'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--worker", "/nonexistent" }, NULL,
	  { "--worker '/nonexistent'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "--bogus" }, NULL,
	  { "unknown option '--bogus'" } },
	{ "spoke-agent", { "--hub" }, NULL, { "option '--hub' needs a value" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1", "stray" }, NULL, { "'stray'" } },
	{ "spoke-agent", { NULL }, "SPOKE_HUB=nowhere", { "SPOKE_HUB 'nowhere'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1" }, "CUDA_VISIBLE_DEVICES=1,1",
	  { "CUDA_VISIBLE_DEVICES '1,1'", "GPU 1 is listed twice" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1" }, "SPOKE_WORKER=/nonexistent",
	  { "SPOKE_WORKER '/nonexistent'" } },
	{ "spoke-agent", { "--hub", "127.0.0.1:1" }, "SPOKE_NODE=a\tb", { "SPOKE_NODE 'a\tb'" } },
	{ "spoke-hub", { "--listen", "127.0.0.1" }, NULL, { "--listen '127.0.0.1'" } },
	{ "spoke-hub", { "--listen", "127.0.0.1:-1" }, NULL, { "--listen '127.0.0.1:-1'" } },
	{ "spoke-hub", { "--advertise", "" }, NULL, { "--advertise ''" } },
	{ "spoke-hub", { "--nope" }, NULL, { "unknown option '--nope'" } },
	{ "spoke-hub", { "-l" }, NULL, { "option '-l' needs a value" } },
	{ "spoke-hub", { "stray" }, NULL, { "'stray'" } },
};

/* Each mistake: exit status 2 at once, one line naming the option or
 * variable and its value, nothing started. */
START_TEST(bad_usage_named)
{
	const struct bad_usage *b = &bad[_i];
	char out[4096], *env[2] = { (char *)b->env, NULL };
	int rc = run(b->program, b->args, env, out, sizeof(out));

	ck_assert_msg(rc == 2, "%s %s: exit %d, said: %s", b->program,
		      b->args[0] ? b->args[0] : "", rc, out);
	ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "not one line: %s", out);
	for (int k = 0; k < 3 && b->says[k]; k++)
		ck_assert_msg(strstr(out, b->says[k]), "wanted \"%s\" in: %s", b->says[k], out);
}
END_TEST

static Suite *hub_suite(void)
{
	Suite *s = suite_create("hub");
	TCase *tc = tcase_create("cluster");
	TCase *bare = tcase_create("bare_agents");
	TCase *usage = tcase_create("usage");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, dead_actors_forgotten);
	tcase_add_test(tc, start_times_out_when_agent_hangs);
	tcase_add_test(tc, stopped_while_starting_even_when_ready);
	tcase_add_test(tc, nonstrict_gang_spreads);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(bare, bare_agents_setup, fixture_teardown);
	tcase_add_test(bare, actor_opens_client_to_its_job);
	suite_add_tcase(s, bare);

	tcase_add_loop_test(usage, bad_usage_named, 0, (int)(sizeof(bad) / sizeof(bad[0])));
	suite_add_tcase(s, usage);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hub_suite());
	int failed;

	/* The hub's status line is logged at info level. */
	setenv("SPOKE_LOG", "info", 1);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
