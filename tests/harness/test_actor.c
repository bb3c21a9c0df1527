/* test_actor.c - the "Probe" actor type used by the integration tests. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "probe.h"

static int probe_init(void *state, spoke_view *args)
{
	uint8_t fail = 0;

	(void)state;
	/* A first argument byte of 1 makes init fail: a refused spawn; 2: with
	 * words of its own (spoke_method_fail in init). */
	if (spoke_view_remaining(args) && spoke_view_get_u8(args, &fail) == 0 && fail == 1)
		return SPOKE_EINVAL;
	if (fail == 2)
		return spoke_method_fail(NULL, SPOKE_EINVAL, "no model at %s", "/nowhere");
	return 0;
}

static int echo(void *state, spoke_view *req, spoke_buf *reply)
{
	const void *p;
	size_t n = spoke_view_remaining(req);

	(void)state;
	spoke_view_get_raw(req, &p, n);
	return spoke_buf_put_raw(reply, p, n);
}

static int gpus(void *state, spoke_view *req, spoke_buf *reply)
{
	const char *cvd = getenv("CUDA_VISIBLE_DEVICES");

	(void)state;
	(void)req;
	return spoke_buf_put_raw(reply, cvd ? cvd : "(unset)", strlen(cvd ? cvd : "(unset)"));
}

static int pid(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_u32(reply, (uint32_t)getpid());
}

static int crash(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	(void)reply;
	raise(SIGKILL);
	return 0;
}

static int nap(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t ms = 0;

	(void)state;
	spoke_view_get_u32(req, &ms);
	usleep(ms * 1000);
	return spoke_buf_put_u32(reply, ms);
}

static int fail(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	(void)reply;
	return SPOKE_EINVAL;
}

static int fill(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t n = 0;
	uint8_t seed = 0, *p;

	(void)state;
	spoke_view_get_u32(req, &n);
	spoke_view_get_u8(req, &seed);
	if (spoke_view_error(req))
		return spoke_view_error(req);
	p = spoke_buf_reserve(reply, n);
	if (!p)
		return spoke_buf_error(reply);
	for (size_t i = 0; i < n; i++)
		p[i] = probe_byte(seed, i);
	return 0;
}

static int sum(void *state, spoke_view *req, spoke_buf *reply)
{
	const void *p;
	size_t n = spoke_view_remaining(req);

	(void)state;
	spoke_view_get_raw(req, &p, n);
	return spoke_buf_put_u64(reply, probe_sum(p, n));
}

static int sink(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	return spoke_buf_put_u32(reply, (uint32_t)spoke_view_remaining(req));
}

static int fail_with(void *state, spoke_view *req, spoke_buf *reply)
{
	int32_t code = 0;
	const void *text;
	size_t n;

	(void)state;
	spoke_view_get_i32(req, &code);
	n = spoke_view_remaining(req);
	spoke_view_get_raw(req, &text, n);
	spoke_buf_put_raw(reply, "partial", 7); /* dropped: the call fails */
	if (n)
		return spoke_method_fail(reply, code, "%.*s", (int)n, (const char *)text);
	return code;
}

/* Opens a client to the job (hub and token in the request) and a handle to
 * this very actor: says how that went and how long it took. */
static int self_call(void *state, spoke_view *req, spoke_buf *reply)
{
	spoke_client_opts o = { .timeout_ms = 3000, .poll_us = -1 };
	const char *name = spoke_self_name();
	struct timespec t0, t1;
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	uint8_t r[8];
	size_t n = 0;
	int rc;

	(void)state;
	if (req->len < 2 || req->data[req->len - 1] != '\0')
		return SPOKE_EINVAL;
	o.hub = (const char *)req->data;
	o.token = o.hub + strlen(o.hub) + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = spoke_client_open(&c, &o);
	if (rc == 0)
		rc = spoke_actor_open(c, name ? name : "?", &a, 3000);
	if (rc == 0) /* without the check: a call that waits for itself */
		rc = spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, 3000);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	spoke_buf_put_i32(reply, rc);
	spoke_buf_put_u32(reply, (uint32_t)((t1.tv_sec - t0.tv_sec) * 1000 +
					    (t1.tv_nsec - t0.tv_nsec) / 1000000));
	spoke_buf_put_str(reply, spoke_errmsg());
	spoke_actor_close(a);
	spoke_client_close(c);
	return spoke_buf_error(reply);
}

static int nodes(void *state, spoke_view *req, spoke_buf *reply)
{
	spoke_node_info info[8];
	spoke_client *c;
	int n = spoke_client_open(&c, NULL);

	(void)state;
	(void)req;
	if (n == 0) {
		n = spoke_nodes(c, info, 8, 0);
		spoke_client_close(c);
	}
	spoke_buf_put_i32(reply, n < 0 ? n : 0);
	if (n < 0)
		return spoke_buf_put_str(reply, spoke_errmsg());
	for (int i = 0; i < n && i < 8; i++)
		spoke_buf_put_str(reply, info[i].name);
	return spoke_buf_error(reply);
}

static int where(void *state, spoke_view *req, spoke_buf *reply)
{
	uint64_t at = (uint64_t)(uintptr_t)(reply->data + reply->len);

	(void)state;
	spoke_buf_put_u64(reply, (uint64_t)(uintptr_t)req->data);
	spoke_buf_put_u64(reply, at);
	return spoke_buf_put_u64(reply, probe_sum(req->data, req->len));
}

static const spoke_method probe_methods[] = {
	{ PROBE_ECHO, "echo", echo },
	{ PROBE_GPUS, "gpus", gpus },
	{ PROBE_PID, "pid", pid },
	{ PROBE_CRASH, "crash", crash },
	{ PROBE_NAP, "nap", nap },
	{ PROBE_FAIL, "fail", fail },
	{ PROBE_FILL, "fill", fill },
	{ PROBE_SUM, "sum", sum },
	{ PROBE_SINK, "sink", sink },
	{ PROBE_FAIL_WITH, "fail_with", fail_with },
	{ PROBE_SELF, "self_call", self_call },
	{ PROBE_NODES, "nodes", nodes },
	{ PROBE_WHERE, "where", where },
};

static const spoke_actor_type probe_type = {
	.name = "Probe",
	.init = probe_init,
	.methods = probe_methods,
	.n_methods = sizeof(probe_methods) / sizeof(probe_methods[0]),
};

SPOKE_REGISTER_ACTOR(probe_type)

/* "Slow", for the spoke-launch tests: an init that takes as long as a model
 * load, its argument (a packed string, the job file's args:) the
 * milliseconds to sleep first ("0" or none: no wait), and the Probe's echo
 * and nap for a driver to call. */
static int slow_init(void *state, spoke_view *args)
{
	char text[32] = "0";
	long ms;

	(void)state;
	if (spoke_view_remaining(args) && spoke_view_get_str_copy(args, text, sizeof(text)) < 0)
		return SPOKE_EINVAL;
	ms = strtol(text, NULL, 10);
	if (ms > 0) {
		struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };

		/* Like a model load: it does not look at signals. */
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return 0;
}

static const spoke_method slow_methods[] = {
	{ PROBE_ECHO, "echo", echo },
	{ PROBE_NAP, "nap", nap },
};

static const spoke_actor_type slow_type = {
	.name = "Slow",
	.init = slow_init,
	.methods = slow_methods,
	.n_methods = sizeof(slow_methods) / sizeof(slow_methods[0]),
};

SPOKE_REGISTER_ACTOR(slow_type)

/* "Stubborn": an init that ignores SIGTERM for the milliseconds of its
 * argument (a packed string) and then comes up: a worker told to stop while
 * it started, and ready after all, that only SIGKILL ends. */
static int stubborn_init(void *state, spoke_view *args)
{
	signal(SIGTERM, SIG_IGN);
	return slow_init(state, args);
}

static const spoke_actor_type stubborn_type = {
	.name = "Stubborn",
	.init = stubborn_init,
	.methods = slow_methods,
	.n_methods = sizeof(slow_methods) / sizeof(slow_methods[0]),
};

SPOKE_REGISTER_ACTOR(stubborn_type)

/* "Flaky": the Probe's methods, and an init that fails while the file its
 * argument (a packed string) names exists: a restart whose init fails. */
static int flaky_init(void *state, spoke_view *args)
{
	char path[256] = "";

	(void)state;
	if (spoke_view_get_str_copy(args, path, sizeof(path)) < 0)
		return SPOKE_EINVAL;
	if (access(path, F_OK) == 0)
		return spoke_method_fail(NULL, SPOKE_EINVAL, "%s exists", path);
	return 0;
}

static const spoke_actor_type flaky_type = {
	.name = "Flaky",
	.init = flaky_init,
	.methods = probe_methods,
	.n_methods = sizeof(probe_methods) / sizeof(probe_methods[0]),
};

SPOKE_REGISTER_ACTOR(flaky_type)
