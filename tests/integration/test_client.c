/* test_client.c - the client's settings, its hub requests and its gang
 * tickets: bad settings refused naming them, a hub that is gone reported as
 * such, NULL arguments refused, tickets released once, a client closed
 * before its handles, and spoke_errmsg() after each call.
 *
 * The "settings" case needs no cluster (a bad setting is refused before
 * anything connects); the "hub" case runs on the loopback cluster of
 * fixture.c (a hub, n1 with GPUs 0-3, n2 with 4-7). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"

#define ck_msg_has(s) ck_assert_msg(strstr(spoke_errmsg(), (s)), "want '%s' in: '%s'", (s), \
				    spoke_errmsg())

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* Opens a client with opts NULL (the environment decides) and expects
 * `want`, a NULL client, a message holding `msg`, quickly, and no file
 * descriptor left behind. */
static void open_fails(int want, const char *msg)
{
	spoke_client *c = (spoke_client *)&c; /* not NULL: the failure must clear it */
	int fds = count_fds();
	double t0 = now_ms();
	int rc = spoke_client_open(&c, NULL);

	ck_assert_msg(rc == want, "want %s, got %s (%s)", spoke_strerror(want), spoke_strerror(rc),
		      spoke_errmsg());
	ck_assert_ptr_null(c);
	ck_msg_has(msg);
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_msg(now_ms() - t0 < 2000, "the refusal took %.0f ms", now_ms() - t0);
}

/* ---- settings: no cluster needed ---- */

static void settings_env(void)
{
	unsetenv("SPOKE_TIMEOUT_MS");
	unsetenv("SPOKE_POLL_US");
	unsetenv("SPOKE_MAX_MSG");
	unsetenv("SPOKE_LOG");
	unsetenv("SPOKE_TOKEN_FILE");
	setenv("SPOKE_TOKEN", "t", 1);
	setenv("SPOKE_HUB", "127.0.0.1:1", 1);
}

static const struct bad_setting {
	const char *var, *value, *msg;
} bad_settings[] = {
	{ "SPOKE_TIMEOUT_MS", "abc", "SPOKE_TIMEOUT_MS=abc: expected a positive number of milliseconds" },
	{ "SPOKE_TIMEOUT_MS", "-5", "SPOKE_TIMEOUT_MS=-5: expected a positive number of milliseconds" },
	{ "SPOKE_TIMEOUT_MS", "0", "SPOKE_TIMEOUT_MS=0: expected a positive" },
	{ "SPOKE_TIMEOUT_MS", "10s", "SPOKE_TIMEOUT_MS=10s: expected" },
	{ "SPOKE_TIMEOUT_MS", " 10", "SPOKE_TIMEOUT_MS= 10: expected" },
	{ "SPOKE_TIMEOUT_MS", "99999999999", "SPOKE_TIMEOUT_MS=99999999999: expected" },
	{ "SPOKE_POLL_US", "-1", "SPOKE_POLL_US=-1: expected a number of microseconds, 0 or more" },
	{ "SPOKE_POLL_US", "fast", "SPOKE_POLL_US=fast: expected" },
	{ "SPOKE_MAX_MSG", "abc", "SPOKE_MAX_MSG=abc: expected a size in bytes from 4k to 1g" },
	{ "SPOKE_MAX_MSG", "2G", "SPOKE_MAX_MSG=2G: expected" },
	{ "SPOKE_MAX_MSG", "0", "SPOKE_MAX_MSG=0: expected" },
	{ "SPOKE_LOG", "verbose", "SPOKE_LOG=verbose: expected error, warn, info or debug" },
	{ "SPOKE_HUB", "hub-without-port", "SPOKE_HUB=hub-without-port: expected host:port" },
	{ "SPOKE_HUB", "127.0.0.1:99999", "SPOKE_HUB=127.0.0.1:99999: expected host:port" },
};

/* Each bad value fails spoke_client_open at once with SPOKE_EINVAL naming
 * the variable and the value; nothing is connected (the hub address here
 * has nobody listening: a setting that slipped through would fail
 * otherwise). */
START_TEST(bad_setting_refused)
{
	const struct bad_setting *b = &bad_settings[_i];

	settings_env();
	setenv(b->var, b->value, 1);
	open_fails(SPOKE_EINVAL, b->msg);
}
END_TEST

START_TEST(bad_options_refused)
{
	spoke_client_opts o = { .hub = "127.0.0.1:1", .token = "t", .timeout_ms = -5, .poll_us = -1 };
	spoke_client *c = NULL;

	settings_env();
	ck_assert_int_eq(spoke_client_open(&c, &o), SPOKE_EINVAL);
	ck_msg_has("spoke_client_opts.timeout_ms=-5");
	o.timeout_ms = 0;
	o.poll_us = -2;
	ck_assert_int_eq(spoke_client_open(&c, &o), SPOKE_EINVAL);
	ck_msg_has("spoke_client_opts.poll_us=-2");
	o.poll_us = -1;
	o.hub = "nowhere";
	ck_assert_int_eq(spoke_client_open(&c, &o), SPOKE_EINVAL);
	ck_msg_has("spoke_client_opts.hub=nowhere: expected host:port");
	/* Given in the options, the environment's value is not read. */
	o.hub = "127.0.0.1:1";
	o.timeout_ms = 500;
	setenv("SPOKE_TIMEOUT_MS", "abc", 1);
	ck_assert_int_eq(spoke_client_open(&c, &o), SPOKE_EHUB);
	ck_assert_ptr_null(c);
}
END_TEST

/* Each token problem names the file (or variable) and says what is wrong. */
START_TEST(token_problems_named)
{
	char dir[] = "/tmp/spoke-test-token.XXXXXX", path[128];
	FILE *f;

	settings_env();
	unsetenv("SPOKE_TOKEN");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	open_fails(SPOKE_EAUTH, "no job token: set SPOKE_TOKEN or SPOKE_TOKEN_FILE");

	snprintf(path, sizeof(path), "%s/missing", dir);
	setenv("SPOKE_TOKEN_FILE", path, 1);
	open_fails(-ENOENT, path);
	ck_msg_has("SPOKE_TOKEN_FILE=");
	ck_msg_has("cannot open it: No such file or directory");

	snprintf(path, sizeof(path), "%s/open", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("secret\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0640), 0);
	setenv("SPOKE_TOKEN_FILE", path, 1);
	open_fails(SPOKE_EAUTH, path);
	ck_msg_has("by group or others (mode 640): chmod 600 it");
	unlink(path);

	snprintf(path, sizeof(path), "%s/empty", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0600), 0);
	setenv("SPOKE_TOKEN_FILE", path, 1);
	open_fails(SPOKE_EAUTH, path);
	ck_msg_has("is empty");
	unlink(path);
	rmdir(dir);
}
END_TEST

/* A hub name that does not resolve, and a hub address where nothing
 * listens: SPOKE_EHUB, saying which. */
START_TEST(hub_not_there)
{
	char addr[64];

	settings_env();
	setenv("SPOKE_HUB", "no-such-hub.invalid:4000", 1);
	open_fails(SPOKE_EHUB, "cannot resolve host 'no-such-hub.invalid'");
	ck_assert_msg(!strstr(spoke_errmsg(), "No route to host"), "%s", spoke_errmsg());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port());
	setenv("SPOKE_HUB", addr, 1);
	open_fails(SPOKE_EHUB, addr);
	ck_msg_has("Connection refused");
}
END_TEST

/* ---- the hub: on the loopback cluster ---- */

/* Valid values of every setting are taken. */
START_TEST(good_settings_accepted)
{
	spoke_client *c = NULL;

	setenv("SPOKE_TIMEOUT_MS", "1500", 1);
	setenv("SPOKE_POLL_US", "0", 1);
	setenv("SPOKE_MAX_MSG", "1m", 1);
	setenv("SPOKE_LOG", "ERROR", 1);
	ck_assert_msg(spoke_client_open(&c, NULL) == 0, "%s", spoke_errmsg());
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_uint_eq(free_gpus(c, 2), 8);
	spoke_client_close(c);
}
END_TEST

/* The hub dies: every request says so (SPOKE_EHUB), none says an actor
 * died, and each comes back at once. */
START_TEST(hub_lost_is_ehub)
{
	spoke_actor *a = NULL;
	double t0;

	ck_assert_uint_eq(free_gpus(client, 2), 8);
	kill(cl.hub, SIGKILL);
	waitpid(cl.hub, NULL, 0);
	cl.hub = 0;
	t0 = now_ms();
	ck_assert_int_eq(spoke_spawn(client, "Probe", "p", NULL, 0, NULL), SPOKE_EHUB);
	ck_msg_has("hub");
	ck_msg_has(cl.hub_addr);
	ck_assert_int_eq(spoke_nodes(client, NULL, 0, 0), SPOKE_EHUB);
	ck_msg_has("the connection to the hub at");
	ck_assert_int_eq(spoke_kill(client, "p", 0), SPOKE_EHUB);
	ck_assert_int_eq(spoke_actor_open(client, "p", &a, 0), SPOKE_EHUB);
	ck_assert_ptr_null(a);
	ck_assert_msg(now_ms() - t0 < 1000, "took %.0f ms", now_ms() - t0);
}
END_TEST

/* The spawn's options are checked too; a refused spawn starts nothing. */
START_TEST(bad_spawn_options_refused)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_actor *a = NULL;
	char long_path[5000];

	o.timeout_ms = -1;
	ck_assert_int_eq(spoke_spawn(client, "Probe", "s", NULL, 0, &o), SPOKE_EINVAL);
	ck_msg_has("spoke_spawn_opts.timeout_ms=-1");
	o.timeout_ms = 0;
	o.poll_us = -7;
	ck_assert_int_eq(spoke_spawn(client, "Probe", "s", NULL, 0, &o), SPOKE_EINVAL);
	ck_msg_has("spoke_spawn_opts.poll_us=-7");
	o.poll_us = -1;
	memset(long_path, 'm', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	o.module = long_path;
	ck_assert_int_eq(spoke_spawn(client, "Probe", "s", NULL, 0, &o), SPOKE_EINVAL);
	ck_msg_has("module");
	ck_assert_int_eq(spoke_actor_open(client, "s", &a, 0), SPOKE_ENOACTOR);
	ck_assert_uint_eq(free_gpus(client, 2), 8);
}
END_TEST

/* A spawn refused because the name is taken leaves the running actor as it
 * was (still found, still called, still killable) and reserves nothing. */
START_TEST(refused_duplicate_spawn_leaves_nothing)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	spoke_actor *a, *again = NULL;
	char rep[8];
	size_t n;

	o.res.gpus = 2;
	a = spawn_open("dup", &o);
	ck_assert_uint_eq(free_gpus(client, 2), 6);
	ck_assert_int_eq(spoke_spawn(client, "Probe", "dup", NULL, 0, &o), SPOKE_EEXIST);
	ck_msg_has("exists already");
	ck_assert_uint_eq(free_gpus(client, 2), 6);
	ck_assert_msg(spoke_actor_open(client, "dup", &again, 0) == 0, "%s", spoke_errmsg());
	ck_assert_int_eq(spoke_call(again, PROBE_ECHO, "x", 1, rep, sizeof(rep), &n, 0), 0);
	ck_assert_msg(spoke_kill(client, "dup", 0) == 0, "kill: %s", spoke_errmsg());
	ck_assert_uint_eq(free_gpus(client, 2), 8);
	spoke_actor_close(again);
	spoke_actor_close(a);
}
END_TEST

/* ---- NULL arguments: one table ---- */

static spoke_ticket *null_ticket; /* a live ticket for the calls that need one */

enum null_call {
	OPEN_OUT, SPAWN_C, SPAWN_TYPE, SPAWN_NAME, SPAWN_ARGS, KILL_C, KILL_NAME, NODES_C,
	NODES_OUT, ALLOC_C, ALLOC_OUT, LAUNCH_C, LAUNCH_T, LAUNCH_TYPE, LAUNCH_NAME,
	RELEASE_C, RELEASE_T, N_NULL_CALLS
};

static const struct {
	const char *func, *arg;
} null_calls[N_NULL_CALLS] = {
	[OPEN_OUT] = { "spoke_client_open", "out" },
	[SPAWN_C] = { "spoke_spawn", "c is NULL" },
	[SPAWN_TYPE] = { "spoke_spawn", "type" },
	[SPAWN_NAME] = { "spoke_spawn", "name" },
	[SPAWN_ARGS] = { "spoke_spawn", "args" },
	[KILL_C] = { "spoke_kill", "c is NULL" },
	[KILL_NAME] = { "spoke_kill", "name" },
	[NODES_C] = { "spoke_nodes", "c is NULL" },
	[NODES_OUT] = { "spoke_nodes", "out" },
	[ALLOC_C] = { "spoke_gang_allocate", "c is NULL" },
	[ALLOC_OUT] = { "spoke_gang_allocate", "out" },
	[LAUNCH_C] = { "spoke_gang_launch", "c is NULL" },
	[LAUNCH_T] = { "spoke_gang_launch", "t is NULL" },
	[LAUNCH_TYPE] = { "spoke_gang_launch", "type" },
	[LAUNCH_NAME] = { "spoke_gang_launch", "name" },
	[RELEASE_C] = { "spoke_gang_release", "c is NULL" },
	[RELEASE_T] = { "spoke_gang_release", "t is NULL" },
};

static int null_call(enum null_call k)
{
	spoke_resources res = { .gpus = 1 };
	spoke_ticket *t = null_ticket;
	spoke_node_info info;

	switch (k) {
	case OPEN_OUT: return spoke_client_open(NULL, NULL);
	case SPAWN_C: return spoke_spawn(NULL, "Probe", "n", NULL, 0, NULL);
	case SPAWN_TYPE: return spoke_spawn(client, NULL, "n", NULL, 0, NULL);
	case SPAWN_NAME: return spoke_spawn(client, "Probe", NULL, NULL, 0, NULL);
	case SPAWN_ARGS: return spoke_spawn(client, "Probe", "n", NULL, 5, NULL);
	case KILL_C: return spoke_kill(NULL, "n", 0);
	case KILL_NAME: return spoke_kill(client, NULL, 0);
	case NODES_C: return spoke_nodes(NULL, &info, 1, 0);
	case NODES_OUT: return spoke_nodes(client, NULL, 4, 0);
	case ALLOC_C: return spoke_gang_allocate(NULL, 1, 1, &res, 0, &t, 0);
	case ALLOC_OUT: return spoke_gang_allocate(client, 1, 1, &res, 0, NULL, 0);
	case LAUNCH_C: return spoke_gang_launch(NULL, t, 0, "Probe", "n", NULL, 0, NULL);
	case LAUNCH_T: return spoke_gang_launch(client, NULL, 0, "Probe", "n", NULL, 0, NULL);
	case LAUNCH_TYPE: return spoke_gang_launch(client, t, 0, NULL, "n", NULL, 0, NULL);
	case LAUNCH_NAME: return spoke_gang_launch(client, t, 0, "Probe", NULL, NULL, 0, NULL);
	case RELEASE_C: return spoke_gang_release(NULL, t, 0);
	case RELEASE_T: return spoke_gang_release(client, NULL, 0);
	case N_NULL_CALLS: break;
	}
	return 0;
}

/* Each call is refused with SPOKE_EINVAL naming the function and the
 * argument, and leaves nothing behind: no actor started, no GPU reserved
 * beyond the one ticket the test holds. */
START_TEST(null_arguments_refused)
{
	spoke_resources res = { .gpus = 1 };
	spoke_actor *a = NULL;
	int rc;

	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &res, 0, &null_ticket, 0), 0);
	ck_assert_uint_eq(free_gpus(client, 2), 7);
	rc = null_call((enum null_call)_i);
	ck_assert_msg(rc == SPOKE_EINVAL, "%s (%s): %s", null_calls[_i].func, null_calls[_i].arg,
		      spoke_strerror(rc));
	ck_msg_has(null_calls[_i].func);
	ck_msg_has(null_calls[_i].arg);
	ck_assert_uint_eq(free_gpus(client, 2), 7);
	ck_assert_int_eq(spoke_actor_open(client, "n", &a, 0), SPOKE_ENOACTOR);
	/* And cap 0 with out NULL asks only how many nodes there are. */
	ck_assert_int_eq(spoke_nodes(client, NULL, 0, 0), 2);
	ck_assert_int_eq(spoke_gang_release(client, null_ticket, 0), 0);
}
END_TEST

/* ---- gang tickets ---- */

/* A released ticket's GPUs are free again; releasing it twice, or a
 * ticket that never came from spoke_gang_allocate, is SPOKE_ENOTICKET
 * without touching it (ASan would see a double free or a bad read). */
START_TEST(release_twice)
{
	spoke_resources res = { .gpus = 1 };
	spoke_ticket *t, *t2;
	spoke_ticket bogus = { .id = 1, .n_slots = 0 };

	ck_assert_int_eq(spoke_gang_allocate(client, 2, 4, &res, 1, &t, 0), 0);
	ck_assert_uint_eq(free_gpus(client, 2), 0);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	ck_assert_uint_eq(free_gpus(client, 2), 8);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), SPOKE_ENOTICKET);
	ck_msg_has("holds no such ticket");
	ck_assert_int_eq(spoke_gang_launch(client, t, 0, "Probe", "late", NULL, 0, NULL),
			 SPOKE_ENOTICKET);
	ck_assert_int_eq(spoke_gang_release(client, &bogus, 0), SPOKE_ENOTICKET);
	/* The GPUs can be had again, and that ticket works. */
	ck_assert_int_eq(spoke_gang_allocate(client, 2, 4, &res, 1, &t2, 0), 0);
	ck_assert_int_eq(spoke_gang_launch(client, t2, 7, "Probe", "g7", NULL, 0, NULL), 0);
	ck_assert_int_eq(spoke_gang_release(client, t2, 0), 0);
	ck_assert_uint_eq(free_gpus(client, 2), 8);
}
END_TEST

/* A release that fails on the way (the hub is gone) keeps the ticket: it
 * can be read and released again, and spoke_client_close frees it (LSan
 * would see a leak otherwise). */
START_TEST(failed_release_keeps_ticket)
{
	spoke_resources res = { .gpus = 2 };
	spoke_ticket *t;

	ck_assert_int_eq(spoke_gang_allocate(client, 2, 1, &res, 1, &t, 0), 0);
	kill(cl.hub, SIGKILL);
	waitpid(cl.hub, NULL, 0);
	cl.hub = 0;
	ck_assert_int_eq(spoke_gang_release(client, t, 0), SPOKE_EHUB);
	ck_assert_uint_eq(t->n_slots, 2);
	ck_assert_uint_eq(t->slots[1].n_gpus, 2);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), SPOKE_EHUB);
	ck_assert_uint_eq(t->n_slots, 2);
}
END_TEST

/* ---- closing the client before its handles ---- */

/* The handle goes on calling its actor; whatever needs the hub says the
 * client was closed; the hub releases the tickets the client held at once
 * (not when the last handle goes); closing the handle last frees it all. */
START_TEST(close_client_before_handle)
{
	spoke_resources res = { .gpus = 4 };
	spoke_actor *a = spawn_open("a1", NULL), *b = NULL;
	spoke_client *other;
	spoke_ticket *t;
	char rep[8];
	size_t n;
	int left = -1;

	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &res, 1, &t, 0), 0);
	spoke_client_close(client);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "hi", 2, rep, sizeof(rep), &n, 0), 0);
	ck_assert(n == 2 && !memcmp(rep, "hi", 2));
	ck_assert_int_eq(spoke_actor_open(client, "a1", &b, 0), SPOKE_ECLOSED);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(spoke_spawn(client, "Probe", "a2", NULL, 0, NULL), SPOKE_ECLOSED);
	ck_msg_has("closed");
	ck_assert_int_eq(spoke_nodes(client, NULL, 0, 0), SPOKE_ECLOSED);
	ck_assert_int_eq(spoke_gang_release(client, t, 0), SPOKE_ECLOSED);
	ck_assert_int_eq(cluster_client(&cl, &other), 0);
	/* a1 has no GPU; t's 4 come back when the hub sees the client go. */
	for (int i = 0; i < 200 && left != 8; i++) {
		left = (int)free_gpus(other, 2);
		if (left != 8)
			usleep(10000);
	}
	ck_assert_int_eq(left, 8);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "ok", 2, rep, sizeof(rep), &n, 0), 0);
	spoke_actor_close(a);
	client = NULL;
	spoke_client_close(other);
}
END_TEST

/* ---- spoke_errmsg() after each call ---- */

/* Every function of the client: a failure leaves a message, a success
 * right after it leaves "", a failure right after a success leaves its own
 * message. */
START_TEST(errmsg_after_each_call)
{
	spoke_resources res = { .gpus = 1 }, lots = { .gpus = 9 };
	spoke_client_opts bad = { .hub = cl.hub_addr, .timeout_ms = -1, .poll_us = -1 };
	spoke_client *c = NULL;
	spoke_ticket *t = NULL;

	ck_assert_int_eq(spoke_client_open(&c, &bad), SPOKE_EINVAL);
	ck_msg_has("timeout_ms=-1");
	ck_assert_int_eq(cluster_client(&cl, &c), 0);
	ck_assert_str_eq(spoke_errmsg(), "");

	ck_assert_int_eq(spoke_spawn(client, "Nope", "e1", NULL, 0, NULL), SPOKE_ENOTYPE);
	ck_msg_has("'Nope'");
	ck_assert_int_eq(spoke_spawn(client, "Probe", "e1", NULL, 0, NULL), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_spawn(client, "Probe", "e1", NULL, 0, NULL), SPOKE_EEXIST);
	ck_assert_str_ne(spoke_errmsg(), "");

	ck_assert_int_eq(spoke_kill(client, "ghost", 0), SPOKE_ENOACTOR);
	ck_assert_str_ne(spoke_errmsg(), "");
	ck_assert_msg(spoke_kill(client, "e1", 0) == 0, "kill: %s", spoke_errmsg());
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_kill(client, NULL, 0), SPOKE_EINVAL);
	ck_msg_has("name");

	ck_assert_int_eq(spoke_nodes(client, NULL, 0, 0), 2);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_nodes(client, NULL, 3, 0), SPOKE_EINVAL);
	ck_msg_has("out");
	ck_assert_int_eq(spoke_nodes(c, NULL, 0, 0), 2);
	ck_assert_str_eq(spoke_errmsg(), "");

	ck_assert_int_eq(spoke_gang_allocate(client, 1, 1, &lots, 0, &t, 0), SPOKE_ENORES);
	ck_assert_ptr_null(t);
	ck_assert_str_ne(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_gang_allocate(client, 1, 2, &res, 1, &t, 0), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_gang_launch(client, t, 2, "Probe", "e2", NULL, 0, NULL), SPOKE_EINVAL);
	ck_msg_has("rank 2 is outside the ticket");
	ck_assert_int_eq(spoke_gang_launch(client, t, 1, "Probe", "e2", NULL, 0, NULL), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_gang_launch(client, t, 1, "Probe", "e3", NULL, 0, NULL), SPOKE_EEXIST);
	ck_assert_str_ne(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_gang_release(client, t, 0), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	ck_assert_int_eq(spoke_gang_release(client, t, 0), SPOKE_ENOTICKET);
	ck_assert_str_ne(spoke_errmsg(), "");
	spoke_client_close(c);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("settings");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, bad_setting_refused, 0,
			    (int)(sizeof(bad_settings) / sizeof(bad_settings[0])));
	tcase_add_test(tc, bad_options_refused);
	tcase_add_test(tc, token_problems_named);
	tcase_add_test(tc, hub_not_there);
	suite_add_tcase(s, tc);

	tc = tcase_create("hub");
	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, good_settings_accepted);
	tcase_add_test(tc, hub_lost_is_ehub);
	tcase_add_test(tc, bad_spawn_options_refused);
	tcase_add_test(tc, refused_duplicate_spawn_leaves_nothing);
	tcase_add_loop_test(tc, null_arguments_refused, 0, N_NULL_CALLS);
	tcase_add_test(tc, release_twice);
	tcase_add_test(tc, failed_release_keeps_ticket);
	tcase_add_test(tc, close_client_before_handle);
	tcase_add_test(tc, errmsg_after_each_call);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(client_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
