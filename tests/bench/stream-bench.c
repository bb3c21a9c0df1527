/* stream-bench.c - the figures of calls answered later (issue 13), each
 * next to the unary call of the same transport in the same run, against
 * Probe and Keeper actors (tests/harness) of a real one-node cluster.
 *
 * Per transport (tcp, then shm where this Spoke streams over it), blocking
 * mode, one handle each:
 *   - unary: round trip of a 64-byte echo (median, p99), and pipelined
 *     16-byte asynchronous echoes (a window of 64), calls per second;
 *   - time to the first chunk of a stream (spoke_call_stream to the first
 *     spoke_stream_next), median and p99: target at most 1.2x the unary
 *     round trip;
 *   - a stream of 10,000 chunks of 16 B: chunks per second and the cost of
 *     one: target at least half the pipelined calls per second;
 *   - cancellation: from spoke_future_cancel to the actor's cancel
 *     callback (one clock: CLOCK_MONOTONIC of one node), median and max:
 *     target under 1 ms;
 *   - a batching actor (Keeper's engine: a 1 ms step whatever the batch)
 *     serving 64 callers, calls per second, next to a one-at-a-time actor
 *     taking 1 ms per call (Probe's nap) with the same 64 callers: target
 *     at least 10x.
 * Targets are printed PASS or MISS; the exit status is 0 unless something
 * broke (1, and why). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "../harness/cluster.h"
#include "../harness/kept.h"
#include "../harness/probe.h"

#define RTT_ITERS 3000
#define TTFC_ITERS 1000
#define WINDOW 64
#define PIPE_CALLS 100000
#define CHUNKS 10000
#define CANCELS 200
#define CALLERS 64
#define BATCH_SECONDS 2.0

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

static double quantile(double *v, int n, double q)
{
	int i = (int)(q * n + 0.999999) - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "stream-bench: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return -1;
}

static void verdict(const char *what, double value, bool pass)
{
	printf("  %-58s %10.2f  %s\n", what, value, pass ? "PASS" : "MISS");
}

/* ---- unary ---- */

static int unary(spoke_actor *probe, double *rtt_med, double *rtt_p99, double *calls_per_s)
{
	static double t[RTT_ITERS];
	static char rep[WINDOW][64];
	spoke_future f[WINDOW];
	uint8_t req[64] = { 1 };
	double t0;
	size_t n;
	int rc;

	for (int i = 0; i < RTT_ITERS; i++) {
		t0 = now_us();
		rc = spoke_call(probe, PROBE_ECHO, req, 64, rep[0], 64, &n, 10000);
		if (rc < 0)
			return fail("unary call", rc);
		t[i] = now_us() - t0;
	}
	*rtt_med = quantile(t, RTT_ITERS, 0.5);
	*rtt_p99 = quantile(t, RTT_ITERS, 0.99);
	t0 = now_us();
	for (int i = 0; i < PIPE_CALLS; i++) {
		spoke_future *g = &f[i % WINDOW];

		if (i >= WINDOW && (rc = spoke_future_wait(g, 10000)) < 0)
			return fail("pipelined call", rc);
		rc = spoke_call_async(probe, PROBE_ECHO, req, 16, rep[i % WINDOW], 64, g);
		if (rc < 0)
			return fail("pipelined call", rc);
	}
	for (int i = 0; i < WINDOW; i++)
		if ((rc = spoke_future_wait(&f[i], 10000)) < 0)
			return fail("pipelined call", rc);
	*calls_per_s = PIPE_CALLS / ((now_us() - t0) / 1e6);
	return 0;
}

/* ---- streams ---- */

static int read_stream(spoke_stream *s, uint32_t n, double *first_us, double t0)
{
	uint8_t buf[64];
	size_t len;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		rc = spoke_stream_next(s, buf, sizeof(buf), &len, 10000);
		if (rc < 0)
			return fail("stream chunk", rc);
		if (i == 0 && first_us)
			*first_us = now_us() - t0;
	}
	rc = spoke_stream_next(s, buf, sizeof(buf), &len, 10000);
	return rc == SPOKE_EOF ? 0 : fail("stream end", rc);
}

static int streams(spoke_actor *keeper, double *ttfc_med, double *ttfc_p99, double *chunks_per_s)
{
	static double t[TTFC_ITERS];
	uint32_t req[2] = { 1, 16 };
	spoke_stream *s;
	double t0;
	int rc;

	for (int i = 0; i < TTFC_ITERS; i++) {
		t0 = now_us();
		rc = spoke_call_stream(keeper, KEEP_BURST, req, sizeof(req), &s, 10000);
		if (rc < 0)
			return fail("stream", rc);
		rc = read_stream(s, 1, &t[i], t0);
		spoke_stream_close(s);
		if (rc < 0)
			return -1;
	}
	*ttfc_med = quantile(t, TTFC_ITERS, 0.5);
	*ttfc_p99 = quantile(t, TTFC_ITERS, 0.99);
	req[0] = CHUNKS;
	t0 = now_us();
	rc = spoke_call_stream(keeper, KEEP_BURST, req, sizeof(req), &s, 10000);
	if (rc < 0)
		return fail("stream", rc);
	rc = read_stream(s, CHUNKS, NULL, t0);
	spoke_stream_close(s);
	*chunks_per_s = CHUNKS / ((now_us() - t0) / 1e6);
	return rc;
}

/* ---- cancellation ---- */

static int cancels(spoke_actor *keeper, double *med, double *max)
{
	static double t[CANCELS];
	char out[16];
	spoke_future f;
	uint64_t seen = 0, before = 0;
	size_t n;
	int rc;

	/* The actor's last cancel so far (an earlier transport's run). */
	rc = spoke_call(keeper, KEEP_CANCEL_AT, NULL, 0, &before, sizeof(before), &n, 10000);
	if (rc < 0)
		return fail("cancel_at", rc);
	seen = before;
	for (int i = 0; i < CANCELS; i++) {
		struct timespec ts;
		double at;

		rc = spoke_call_async(keeper, KEEP_FOREVER, NULL, 0, out, sizeof(out), &f);
		if (rc < 0)
			return fail("kept call", rc);
		usleep(2000); /* it is in, and kept */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		at = ts.tv_sec * 1e9 + ts.tv_nsec;
		spoke_future_cancel(&f);
		for (int k = 0; k < 1000 && seen == before; k++) {
			rc = spoke_call(keeper, KEEP_CANCEL_AT, NULL, 0, &seen, sizeof(seen), &n,
					10000);
			if (rc < 0)
				return fail("cancel_at", rc);
		}
		if (seen == before)
			return fail("cancel never seen", SPOKE_ETIMEDOUT);
		before = seen;
		t[i] = ((double)seen - at) / 1e3;
	}
	*max = quantile(t, CANCELS, 1.0);
	*med = quantile(t, CANCELS, 0.5);
	return 0;
}

/* ---- batching ---- */

struct caller {
	spoke_actor *a;
	bool batch;
	atomic_bool *stop;
	long calls;
	int rc;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	uint32_t one = 1;
	uint8_t rep[8];
	size_t n;

	while (!atomic_load(c->stop)) {
		c->rc = c->batch
				? spoke_call(c->a, KEEP_GENERATE, &one, 4, rep, sizeof(rep), &n, 60000)
				: spoke_call(c->a, PROBE_NAP, &one, 4, rep, sizeof(rep), &n, 60000);
		if (c->rc < 0)
			break;
		c->calls++;
	}
	return NULL;
}

static double callers(spoke_actor *a, bool batch)
{
	static struct caller c[CALLERS];
	pthread_t t[CALLERS];
	atomic_bool stop = false;
	long calls = 0;
	double t0 = now_us();

	for (int i = 0; i < CALLERS; i++) {
		c[i] = (struct caller){ .a = a, .batch = batch, .stop = &stop };
		if (pthread_create(&t[i], NULL, caller_main, &c[i]) != 0)
			return fail("thread", -1);
	}
	usleep((useconds_t)(BATCH_SECONDS * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < CALLERS; i++) {
		pthread_join(t[i], NULL);
		if (c[i].rc < 0)
			return fail("caller", c[i].rc);
		calls += c[i].calls;
	}
	return calls / ((now_us() - t0) / 1e6);
}

static int open_on(spoke_client *c, const char *name, const char *t, spoke_actor **a)
{
	int rc = spoke_actor_open(c, name, a, 10000);

	if (rc == 0)
		rc = spoke_actor_use_transport(*a, t, 10000);
	return rc < 0 ? fail(name, rc) : 0;
}

static int run(spoke_client *c, const char *t)
{
	double rtt, rtt99, pipe, ttfc, ttfc99, cps, cmed, cmax, batch, single;
	spoke_actor *probe = NULL, *keeper = NULL;
	int rc = -1;

	if (open_on(c, "probe", t, &probe) < 0 || open_on(c, "keeper", t, &keeper) < 0)
		goto out;
	if (unary(probe, &rtt, &rtt99, &pipe) < 0)
		goto out;
	rc = streams(keeper, &ttfc, &ttfc99, &cps);
	if (rc == -1 && strstr(spoke_errmsg(), "has no streams")) {
		printf("%s: no streams over this transport yet\n", t);
		rc = 0;
		goto out;
	}
	if (rc < 0 || cancels(keeper, &cmed, &cmax) < 0)
		goto out;
	batch = callers(keeper, true);
	single = callers(probe, false);
	if (batch < 0 || single < 0)
		goto out;
	printf("%s (blocking):\n", t);
	printf("  unary 64 B round trip: median %.1f us, p99 %.1f us; pipelined 16 B: %.0f "
	       "calls/s\n", rtt, rtt99, pipe);
	printf("  first chunk: median %.1f us, p99 %.1f us; 10,000 x 16 B: %.0f chunks/s "
	       "(%.2f us each)\n", ttfc, ttfc99, cps, 1e6 / cps);
	printf("  cancel to the actor's callback: median %.1f us, max %.1f us\n", cmed, cmax);
	printf("  64 callers: batching actor %.0f calls/s, one-at-a-time 1 ms actor %.0f "
	       "calls/s\n", batch, single);
	verdict("first chunk / unary round trip (<= 1.2)", ttfc / rtt, ttfc <= 1.2 * rtt);
	verdict("stream chunks/s / pipelined calls/s (>= 0.5)", cps / pipe, cps >= 0.5 * pipe);
	verdict("cancel to the actor, median us (< 1000)", cmed, cmed < 1000);
	verdict("batching / one-at-a-time calls/s (>= 10)", batch / single, batch >= 10 * single);
	rc = 0;
out:
	spoke_actor_close(probe);
	spoke_actor_close(keeper);
	return rc;
}

int main(void)
{
	const char *ts[] = { "tcp", "shm" };
	struct cluster cl;
	spoke_client *c = NULL;
	int rc = 1;

	if (cluster_start(&cl) < 0 || cluster_add_agent(&cl, "n1", "0-3") < 0) {
		fprintf(stderr, "stream-bench: cannot start the cluster\n");
		goto out;
	}
	if (cluster_client(&cl, &c) < 0 || spoke_spawn(c, "Probe", "probe", NULL, 0, NULL) < 0 ||
	    spoke_spawn(c, "Keeper", "keeper", NULL, 0, NULL) < 0) {
		fail("cluster", -1);
		goto out;
	}
	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
		if (run(c, ts[i]) < 0)
			goto out;
	rc = 0;
out:
	spoke_client_close(c);
	cluster_stop(&cl);
	return rc;
}
