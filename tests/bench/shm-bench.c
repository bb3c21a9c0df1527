/* shm-bench.c - Spoke's same-node figures over shared memory ("shm"), next
 * to their limits measured in the same run and to Spoke over TCP, against
 * Probe actors of a real one-node cluster (the test harness's cluster.c).
 *
 * Measured, in this order:
 *   - the limits: a 64-byte ping-pong of two processes of this bench over a
 *     shared page, spinning and sleeping on a futex (woken every message),
 *     64-byte messages echoed through two spinning rings with the window of
 *     the pipelined calls, and memcpy bandwidth at 1 MiB and 16 MiB;
 *   - per transport (shm, then tcp), one handle each, same actors:
 *     round trip of a 64-byte echo, polling (client and worker spin) and
 *     blocking, median and 99th percentile; pipelined 64-byte asynchronous
 *     echoes (a window of 64), calls per second; 1 MiB and 16 MiB requests
 *     to a sink (4-byte reply) packed by a serializer (spoke_call_obj) and
 *     from registered memory (spoke_call_mr), GB/s (10^9 bytes).
 * Unless --no-pin is given, this process runs on the first CPU it may use and
 * every server (the ping-pong's other end, the workers) on the second.
 *
 * The targets of issue 12 are printed as PASS or MISS: shm polling round
 * trip at most 2x the raw spin ping-pong, blocking at most 1.2x the raw
 * futex ping-pong, at least 5 M pipelined calls/s, spoke_call_obj at least
 * 0.7x memcpy at 1 MiB and 16 MiB.  Exits 0 unless something broke (1, and
 * why); a MISS is a figure, not a failure. */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "../harness/cluster.h"
#include "../harness/probe.h"

#define MiB (1u << 20)
#define SMALL 64
#define SPIN_US 200000 /* polling: client and worker spin budget */
#define RTT_WARM 2000
#define RTT_ITERS 20000
#define RAW_ITERS 200000 /* of which a tenth are timed */
#define WINDOW 64
#define PIPE_CALLS 400000
#define CALL_TIMEOUT_MS 60000
#define MAX_BULK (16 * MiB)

static const struct bulk_size {
	size_t bytes;
	int calls;
} bulk_sizes[] = {
	{ 1 * MiB, 400 },
	{ 16 * MiB, 30 },
};

static int cpu_client = -1, cpu_server = -1;
static const char *only; /* --only=rtt|pipelined|bulk: that part alone */

static bool part(const char *name)
{
	return !only || strcmp(only, name) == 0;
}

/* ---- helpers ------------------------------------------------------------- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(const double *v, int n, double q)
{
	int i = (int)(q * n + 0.999999) - 1;

	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "shm-bench: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return -1;
}

static void pin(pid_t pid, int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(pid, sizeof(set), &set) != 0)
		fprintf(stderr, "shm-bench: cannot pin pid %d to CPU %d: %s\n", (int)pid, cpu,
			strerror(errno));
}

static void pick_cpus(void)
{
	cpu_set_t set;
	int found = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, &set))
			*(found++ ? &cpu_server : &cpu_client) = c;
	if (found < 2)
		cpu_client = cpu_server = -1;
}

static void verdict(const char *what, double got, double limit, bool ok)
{
	printf("target %s: %.2f against %.2f: %s\n", what, got, limit, ok ? "PASS" : "MISS");
}

/* ---- the limits ------------------------------------------------------------ */

struct pingpong {
	_Alignas(64) _Atomic uint32_t ping;
	_Alignas(64) _Atomic uint32_t pong;
	_Alignas(64) uint8_t req[SMALL];
	_Alignas(64) uint8_t rep[SMALL];
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	return syscall(SYS_futex, (uint32_t *)word, op, val, NULL, NULL, 0);
}

/* Waits until *word is no longer old: spinning, or sleeping on the futex. */
static void wait_change(_Atomic uint32_t *word, uint32_t old, bool sleep)
{
	while (atomic_load_explicit(word, memory_order_acquire) == old)
		if (sleep)
			futex(word, FUTEX_WAIT, old);
}

static void post(_Atomic uint32_t *word, uint32_t v, bool sleep)
{
	atomic_store_explicit(word, v, memory_order_release);
	if (sleep)
		futex(word, FUTEX_WAKE, 1);
}

/* A 64-byte ping-pong between this process and a child over a shared page;
 * median and p99 of the round trip in *med, *p99 (microseconds). */
static int raw_pingpong(bool sleep, double *med, double *p99)
{
	static double t[RAW_ITERS / 10];
	struct pingpong *pp = mmap(NULL, sizeof(*pp), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int n = RAW_ITERS / 10, status;
	pid_t pid;

	if (pp == MAP_FAILED)
		return -1;
	memset(pp, 0, sizeof(*pp));
	pid = fork();
	if (pid < 0) {
		munmap(pp, sizeof(*pp));
		return -1;
	}
	if (pid == 0) { /* the echo: copies each request into the reply */
		pin(0, cpu_server);
		for (uint32_t i = 1; i <= (uint32_t)(n + 100); i++) {
			wait_change(&pp->ping, i - 1, sleep);
			memcpy(pp->rep, pp->req, SMALL);
			post(&pp->pong, i, sleep);
		}
		_exit(0);
	}
	for (uint32_t i = 1; i <= (uint32_t)(n + 100); i++) {
		double t0 = now_us();

		memset(pp->req, (int)i, SMALL);
		post(&pp->ping, i, sleep);
		wait_change(&pp->pong, i - 1, sleep);
		if (i > 100)
			t[i - 101] = now_us() - t0;
	}
	waitpid(pid, &status, 0);
	munmap(pp, sizeof(*pp));
	qsort(t, (size_t)n, sizeof(t[0]), cmp_double);
	*med = quantile(t, n, 0.5);
	*p99 = quantile(t, n, 0.99);
	printf("raw shm pingpong_%s median_us=%.2f p99_us=%.2f\n", sleep ? "futex" : "spin", *med,
	       *p99);
	return 0;
}

/* Rings of 64-byte slots for the pipelined limit. */
#define RAW_SLOTS 256
struct rawpipe {
	_Alignas(64) _Atomic uint64_t req_head; /* client */
	_Alignas(64) _Atomic uint64_t req_tail; /* server */
	_Alignas(64) _Atomic uint64_t rep_head; /* server */
	_Alignas(64) _Atomic uint64_t rep_tail; /* client */
	_Alignas(64) uint8_t req[RAW_SLOTS][SMALL];
	uint8_t rep[RAW_SLOTS][SMALL];
};

/* n 64-byte messages echoed by a child through two spinning rings, at most
 * WINDOW in flight, as the pipelined calls are: messages per second. */
static int raw_pipeline(double *per_s)
{
	struct rawpipe *rp = mmap(NULL, sizeof(*rp), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	uint64_t n = PIPE_CALLS, sent = 0, got = 0;
	uint8_t msg[SMALL];
	double t0;
	int status;
	pid_t pid;

	if (rp == MAP_FAILED)
		return -1;
	memset(rp, 0, sizeof(*rp));
	pid = fork();
	if (pid < 0) {
		munmap(rp, sizeof(*rp));
		return -1;
	}
	if (pid == 0) { /* the echo */
		pin(0, cpu_server);
		for (uint64_t i = 0; i < n; i++) {
			while (atomic_load_explicit(&rp->req_head, memory_order_acquire) == i ||
			       i - atomic_load_explicit(&rp->rep_tail, memory_order_acquire) >=
				       RAW_SLOTS)
				;
			memcpy(rp->rep[i % RAW_SLOTS], rp->req[i % RAW_SLOTS], SMALL);
			atomic_store_explicit(&rp->req_tail, i + 1, memory_order_release);
			atomic_store_explicit(&rp->rep_head, i + 1, memory_order_release);
		}
		_exit(0);
	}
	memset(msg, 7, sizeof(msg));
	t0 = now_us();
	while (got < n) {
		if (sent < n && sent - got < WINDOW &&
		    sent - atomic_load_explicit(&rp->req_tail, memory_order_acquire) < RAW_SLOTS) {
			memcpy(rp->req[sent % RAW_SLOTS], msg, SMALL);
			atomic_store_explicit(&rp->req_head, ++sent, memory_order_release);
		}
		if (atomic_load_explicit(&rp->rep_head, memory_order_acquire) > got) {
			memcpy(msg, rp->rep[got % RAW_SLOTS], SMALL);
			atomic_store_explicit(&rp->rep_tail, ++got, memory_order_release);
		}
	}
	*per_s = n / ((now_us() - t0) / 1e6);
	waitpid(pid, &status, 0);
	munmap(rp, sizeof(*rp));
	printf("raw shm pipelined64 window=%d msgs_per_s=%.0f\n", WINDOW, *per_s);
	return 0;
}

/* memcpy of n bytes between two buffers, GB/s (best of a few rounds). */
static double memcpy_gbps(uint8_t *dst, const uint8_t *src, size_t n)
{
	int reps = (int)((256 * MiB) / n);
	double best = 0;

	for (int round = 0; round < 5; round++) {
		double t0 = now_us(), s;

		for (int i = 0; i < reps; i++) {
			memcpy(dst, src, n);
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		s = (now_us() - t0) / 1e6;
		if ((double)n * reps / s / 1e9 > best)
			best = (double)n * reps / s / 1e9;
	}
	printf("raw memcpy %zu gbps=%.2f\n", n, best);
	return best;
}

/* ---- Spoke ------------------------------------------------------------------ */

struct side {
	const char *transport;
	spoke_actor *spin, *block;
	double rtt_spin, rtt_block, calls_per_s;
	double obj_gbps[2], mr_gbps[2];
};

static int spawn(spoke_client *c, const char *name, int poll_us)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	int rc;

	o.poll_us = poll_us;
	o.timeout_ms = 30000;
	rc = spoke_spawn(c, "Probe", name, NULL, 0, &o);
	return rc < 0 ? fail("spawn", rc) : 0;
}

/* Pins the worker behind a to the server's CPU. */
static int pin_worker(spoke_actor *a)
{
	uint8_t r[4];
	size_t n;
	int rc = spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, CALL_TIMEOUT_MS);

	if (rc < 0)
		return fail("pid", rc);
	pin((pid_t)(r[0] | r[1] << 8 | r[2] << 16 | (uint32_t)r[3] << 24), cpu_server);
	return 0;
}

static int open_on(spoke_client *c, const char *name, const char *transport, int poll_us,
		   spoke_actor **out)
{
	int rc;

	setenv("SPOKE_TRANSPORT", transport, 1);
	rc = spoke_actor_open(c, name, out, 30000);
	if (rc < 0) {
		fprintf(stderr, "shm-bench: cannot open %s over %s: %s (%s)\n", name, transport,
			spoke_strerror(rc), spoke_errmsg());
		*out = NULL;
		return -1;
	}
	if (strcmp(spoke_actor_transport(*out), transport) != 0) {
		fprintf(stderr, "shm-bench: %s: asked for %s, got %s\n", name, transport,
			spoke_actor_transport(*out));
		return -1;
	}
	spoke_actor_set_poll(*out, poll_us);
	return pin_worker(*out);
}

static int rtt(spoke_actor *a, const char *transport, const char *label, double *med)
{
	static double t[RTT_ITERS];
	uint8_t req[SMALL], rep[SMALL];
	size_t got = 0;
	int rc;

	for (int i = 0; i < SMALL; i++)
		req[i] = probe_byte(1, i);
	for (int i = 0; i < RTT_WARM + RTT_ITERS; i++) {
		double t0 = now_us();

		rc = spoke_call(a, PROBE_ECHO, req, SMALL, rep, SMALL, &got, CALL_TIMEOUT_MS);
		if (rc < 0)
			return fail("echo", rc);
		if (i >= RTT_WARM)
			t[i - RTT_WARM] = now_us() - t0;
	}
	if (got != SMALL || memcmp(req, rep, SMALL) != 0) {
		fprintf(stderr, "shm-bench: echo over %s returned other bytes\n", transport);
		return -1;
	}
	qsort(t, RTT_ITERS, sizeof(t[0]), cmp_double);
	*med = quantile(t, RTT_ITERS, 0.5);
	printf("spoke %s %s median_us=%.2f p99_us=%.2f\n", transport, label, *med,
	       quantile(t, RTT_ITERS, 0.99));
	fflush(stdout);
	return 0;
}

/* Futures outlive a failed run: the handle may still point at them. */
static spoke_future pipe_futures[WINDOW];
static uint8_t pipe_replies[WINDOW][SMALL];

static int pipeline(spoke_actor *a, const char *transport, double *per_s)
{
	uint8_t req[SMALL];
	double t0 = 0;
	int rc;

	memset(req, 7, sizeof(req));
	for (int i = 0; i < PIPE_CALLS + WINDOW; i++) {
		int slot = i % WINDOW;

		if (i == WINDOW)
			t0 = now_us(); /* the first window fills the pipe */
		if (i >= WINDOW) {
			rc = spoke_future_wait(&pipe_futures[slot], CALL_TIMEOUT_MS);
			if (rc < 0 || pipe_futures[slot].reply_len != SMALL)
				return fail("pipelined echo", rc < 0 ? rc : SPOKE_EPROTO);
		}
		if (i < PIPE_CALLS) {
			rc = spoke_call_async(a, PROBE_ECHO, req, SMALL, pipe_replies[slot], SMALL,
					      &pipe_futures[slot]);
			if (rc < 0)
				return fail("pipelined echo", rc);
		}
	}
	*per_s = (PIPE_CALLS - WINDOW) / ((now_us() - t0) / 1e6);
	printf("spoke %s pipelined64 window=%d calls_per_s=%.0f\n", transport, WINDOW, *per_s);
	fflush(stdout);
	return 0;
}

struct bulk_req {
	const uint8_t *p;
	size_t n;
};

static int pack_bulk(spoke_buf *out, const void *obj)
{
	const struct bulk_req *r = obj;

	return spoke_buf_put_raw(out, r->p, r->n);
}

static int unpack_count(spoke_view *in, void *obj)
{
	return spoke_view_get_u32(in, obj);
}

static const spoke_serializer bulk_ser = { pack_bulk, NULL };
static const spoke_serializer count_ser = { NULL, unpack_count };

/* calls x n-byte requests to the sink, packed by a serializer (obj) or from
 * registered memory (mr); GB/s. */
static int bulk(spoke_actor *a, const char *transport, bool obj, spoke_mr *req, spoke_mr *rep,
		size_t n, int calls, double *gbps)
{
	struct bulk_req r = { req->addr, n };
	uint32_t count = 0;
	double t0 = 0, s;
	size_t got = 0;
	int rc;

	for (int i = -2; i < calls; i++) {
		if (i == 0)
			t0 = now_us();
		rc = obj ? spoke_call_obj(a, PROBE_SINK, &bulk_ser, &r, &count_ser, &count,
					  CALL_TIMEOUT_MS)
			 : spoke_call_mr(a, PROBE_SINK, req, 0, n, rep, 0, sizeof(count), &got,
					 CALL_TIMEOUT_MS);
		if (rc < 0)
			return fail("sink", rc);
	}
	s = (now_us() - t0) / 1e6;
	if (!obj)
		memcpy(&count, rep->addr, sizeof(count));
	if (count != n) {
		fprintf(stderr, "shm-bench: sink over %s says %u bytes, not %zu\n", transport, count,
			n);
		return -1;
	}
	*gbps = (double)n * calls / s / 1e9;
	printf("spoke %s %s %zu gbps=%.2f us_per_call=%.1f\n", transport, obj ? "call_obj" : "call_mr",
	       n, *gbps, s * 1e6 / calls);
	fflush(stdout);
	return 0;
}

static int bulk_all(struct side *s, uint8_t *buf, uint8_t *small)
{
	spoke_mr req, rep;
	int rc;

	rc = spoke_mr_register(s->spin, buf, MAX_BULK, &req);
	if (rc < 0)
		return fail("register the request memory", rc);
	rc = spoke_mr_register(s->spin, small, 4096, &rep);
	if (rc < 0) {
		spoke_mr_deregister(&req);
		return fail("register the reply memory", rc);
	}
	for (size_t i = 0; i < 2 && rc == 0; i++) {
		rc = bulk(s->spin, s->transport, true, &req, &rep, bulk_sizes[i].bytes,
			  bulk_sizes[i].calls, &s->obj_gbps[i]);
		if (rc == 0)
			rc = bulk(s->spin, s->transport, false, &req, &rep, bulk_sizes[i].bytes,
				  bulk_sizes[i].calls, &s->mr_gbps[i]);
	}
	spoke_mr_deregister(&rep);
	spoke_mr_deregister(&req);
	return rc;
}

static int measure(spoke_client *c, struct side *s, uint8_t *buf, uint8_t *small)
{
	if (open_on(c, "bench", s->transport, SPIN_US, &s->spin) < 0 ||
	    open_on(c, "bench-block", s->transport, 0, &s->block) < 0)
		return -1;
	if ((part("rtt") && (rtt(s->spin, s->transport, "rtt64", &s->rtt_spin) < 0 ||
			     rtt(s->block, s->transport, "rtt64_block", &s->rtt_block) < 0)) ||
	    (part("pipelined") && pipeline(s->spin, s->transport, &s->calls_per_s) < 0) ||
	    (part("bulk") && bulk_all(s, buf, small) < 0))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct side sides[2] = { { .transport = "shm" }, { .transport = "tcp" } };
	double spin_med = 0, spin_p99, futex_med = 0, futex_p99, mc[2] = { 0, 0 }, raw_pipe = 0;
	uint8_t *buf = NULL, *dst = NULL, *small = NULL;
	spoke_client *c = NULL;
	bool pinning = true, tcp_only = false;
	struct cluster cl;
	int rc = -1;

	memset(&cl, 0, sizeof(cl));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-pin") == 0) {
			pinning = false;
		} else if (strcmp(argv[i], "--tcp-only") == 0) {
			tcp_only = true; /* TCP's figures alone (a build without shm) */
		} else if (strcmp(argv[i], "--only=rtt") == 0 ||
			   strcmp(argv[i], "--only=pipelined") == 0 ||
			   strcmp(argv[i], "--only=bulk") == 0) {
			only = argv[i] + 7;
		} else {
			fprintf(stderr, "usage: %s [--no-pin] [--tcp-only] "
				"[--only=rtt|pipelined|bulk]\n", argv[0]);
			return 2;
		}
	}
	if (pinning)
		pick_cpus();
	pin(0, cpu_client);
	buf = aligned_alloc(4096, MAX_BULK);
	dst = aligned_alloc(4096, MAX_BULK);
	small = aligned_alloc(4096, 4096);
	if (!buf || !dst || !small) {
		fprintf(stderr, "shm-bench: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < MAX_BULK; i++)
		buf[i] = probe_byte(3, i);
	memset(small, 0, 4096);
	memset(dst, 0, MAX_BULK);
	printf("shm-bench: Spoke over shm and tcp on this node (client on CPU %d, servers on CPU "
	       "%d); 64 B echo x %d, %d pipelined calls (window %d), sink 1 MiB x %d, 16 MiB x %d\n",
	       cpu_client, cpu_server, RTT_ITERS, PIPE_CALLS, WINDOW, bulk_sizes[0].calls,
	       bulk_sizes[1].calls);
	/* The limits first, before any worker runs. */
	if (part("rtt") && (raw_pingpong(false, &spin_med, &spin_p99) < 0 ||
			    raw_pingpong(true, &futex_med, &futex_p99) < 0)) {
		fprintf(stderr, "shm-bench: the raw ping-pong failed: %s\n", strerror(errno));
		goto out;
	}
	if (part("pipelined") && raw_pipeline(&raw_pipe) < 0) {
		fprintf(stderr, "shm-bench: the raw pipeline failed: %s\n", strerror(errno));
		goto out;
	}
	if (part("bulk")) {
		mc[0] = memcpy_gbps(dst, buf, bulk_sizes[0].bytes);
		mc[1] = memcpy_gbps(dst, buf, bulk_sizes[1].bytes);
	}
	fflush(stdout);
	if (cluster_start(&cl) < 0 || cluster_add_agent(&cl, "n1", "0-3") < 0) {
		fprintf(stderr, "shm-bench: cannot start the cluster\n");
		goto out_stop;
	}
	if ((rc = cluster_client(&cl, &c)) < 0) {
		fail("client", rc);
		goto out_stop;
	}
	rc = -1;
	if (spawn(c, "bench", SPIN_US) < 0 || spawn(c, "bench-block", 0) < 0)
		goto out_stop;
	for (int i = tcp_only; i < 2; i++)
		if (measure(c, &sides[i], buf, small) < 0)
			goto out_stop;
	if (tcp_only)
		only = "none"; /* no shm figure to hold to a target */
	if (part("rtt")) {
		verdict("shm polling rtt64 / raw spin ping-pong (<= 2)",
			sides[0].rtt_spin / spin_med, 2, sides[0].rtt_spin <= 2 * spin_med);
		verdict("shm blocking rtt64 / raw futex ping-pong (<= 1.2)",
			sides[0].rtt_block / futex_med, 1.2, sides[0].rtt_block <= 1.2 * futex_med);
	}
	if (part("pipelined")) {
		verdict("shm pipelined 64 B, M calls/s (>= 5)", sides[0].calls_per_s / 1e6, 5,
			sides[0].calls_per_s >= 5e6);
		printf("shm pipelined 64 B: %.2f of the raw pipelined rings' rate\n",
		       sides[0].calls_per_s / raw_pipe);
	}
	for (int i = 0; i < 2 && part("bulk"); i++) {
		char what[96];

		snprintf(what, sizeof(what), "shm call_obj %s / memcpy (>= 0.7)",
			 i ? "16 MiB" : "1 MiB");
		verdict(what, sides[0].obj_gbps[i] / mc[i], 0.7, sides[0].obj_gbps[i] >= 0.7 * mc[i]);
	}
	rc = 0;
out_stop:
	for (int i = 0; i < 2; i++) {
		spoke_actor_close(sides[i].spin);
		spoke_actor_close(sides[i].block);
	}
	spoke_client_close(c);
	cluster_stop(&cl);
out:
	free(buf);
	free(dst);
	free(small);
	return rc < 0;
}
