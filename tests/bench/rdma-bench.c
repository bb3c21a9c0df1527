/* rdma-bench.c - Spoke's call figures over RDMA and over TCP, side by side,
 * against one Probe actor of a real cluster (tests/harness/cluster.c) on
 * the address of an RDMA device: rxe0 under `make bench-rxe`, which runs this
 * after perftest's ib_send_lat and ib_write_bw (tests/bench/rxe-bench.sh).
 *
 * Measured, for each transport (one handle each, same actor):
 *   - round trip of a 64-byte echo, client and worker spinning (polling):
 *     median and 99th percentile;
 *   - the same with client and worker blocking (a second actor, poll 0);
 *   - bandwidth of 1 MiB and 16 MiB requests from user-registered memory
 *     (spoke_call_mr) to a sink method with a 4-byte reply, in MiB/s
 *     (2^20 bytes, as perftest's MB/sec).
 *
 * Everything happens in this one process: librdmacm caches device file
 * descriptors, so nothing here forks after RDMA was touched (cluster.c's
 * fork + exec of the hub and agent come first, and exec drops the cache).
 *
 * Output: a header line, then one machine-readable line per figure:
 *   spoke rdma rtt64 median_us=12.3 p99_us=20.1
 *   spoke rdma rtt64_block median_us=... p99_us=...
 *   spoke rdma bw 1048576 mibps=55.2 us_per_call=18115.9
 * Exits 0, or 1 with the reason on any failure. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spoke/spoke.h>

#include "../harness/cluster.h"
#include "../harness/probe.h"

#define MiB (1u << 20)
#define SMALL 64           /* bytes of the round-trip echo */
#define SPIN_US 200000     /* polling: client and worker spin budget */
#define RTT_WARM 100       /* round trips not counted */
#define RTT_ITERS 1000     /* round trips counted */
#define CALL_TIMEOUT_MS 60000
#define MAX_BW (16 * MiB)  /* the largest request */

static const struct bw_size {
	size_t bytes;
	int calls;
} bw_sizes[] = {
	{ 1 * MiB, 30 },
	{ 16 * MiB, 5 },
};

struct handle {
	const char *transport; /* "rdma" or "tcp": what was asked, and got */
	spoke_actor *spin;     /* the polling actor */
	spoke_actor *block;    /* the blocking actor */
};

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

/* The q-quantile (0..1) of n sorted samples, nearest rank. */
static double quantile(const double *v, int n, double q)
{
	int i = (int)(q * n + 0.999999) - 1;

	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "rdma-bench: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return -1;
}

static int spawn(spoke_client *c, const char *name, int poll_us)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	int rc;

	o.poll_us = poll_us;
	o.timeout_ms = 30000;
	rc = spoke_spawn(c, "Probe", name, NULL, 0, &o);
	return rc < 0 ? fail("spawn", rc) : 0;
}

/* A handle to `name` on `transport`, which it must get. */
static int open_on(spoke_client *c, const char *name, const char *transport, int poll_us,
		   spoke_actor **out)
{
	const char *got;
	int rc;

	setenv("SPOKE_TRANSPORT", transport, 1);
	rc = spoke_actor_open(c, name, out, 30000);
	if (rc < 0) {
		fprintf(stderr, "rdma-bench: cannot open %s over %s: %s (%s)\n", name, transport,
			spoke_strerror(rc), spoke_errmsg());
		*out = NULL;
		return -1;
	}
	got = spoke_actor_transport(*out);
	if (strcmp(got, transport) != 0) {
		fprintf(stderr, "rdma-bench: %s: asked for %s, got %s (%s)\n", name, transport, got,
			spoke_errmsg());
		return -1;
	}
	spoke_actor_set_poll(*out, poll_us);
	return 0;
}

/* 64-byte echo round trips: prints median and p99. */
static int rtt(spoke_actor *a, const char *transport, const char *label)
{
	static double t[RTT_ITERS];
	uint8_t req[SMALL], rep[SMALL];
	size_t got;
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
		fprintf(stderr, "rdma-bench: echo over %s returned other bytes\n", transport);
		return -1;
	}
	qsort(t, RTT_ITERS, sizeof(t[0]), cmp_double);
	printf("spoke %s %s median_us=%.1f p99_us=%.1f\n", transport, label,
	       quantile(t, RTT_ITERS, 0.5), quantile(t, RTT_ITERS, 0.99));
	fflush(stdout);
	return 0;
}

/* calls x n-byte requests from registered memory to the sink (after one
 * not counted): prints MiB/s. */
static int bw(spoke_actor *a, const char *transport, spoke_mr *req, spoke_mr *rep, size_t n,
	      int calls)
{
	double t0 = 0, s;
	size_t got = 0;
	uint32_t count;
	int rc;

	for (int i = -1; i < calls; i++) {
		if (i == 0)
			t0 = now_us();
		rc = spoke_call_mr(a, PROBE_SINK, req, 0, n, rep, 0, sizeof(count), &got,
				   CALL_TIMEOUT_MS);
		if (rc < 0)
			return fail("sink", rc);
	}
	s = (now_us() - t0) / 1e6;
	memcpy(&count, rep->addr, sizeof(count));
	if (got != sizeof(count) || count != n) {
		fprintf(stderr, "rdma-bench: sink over %s: reply of %zu B says %u, not %zu\n",
			transport, got, count, n);
		return -1;
	}
	printf("spoke %s bw %zu mibps=%.1f us_per_call=%.1f\n", transport, n,
	       (double)n * calls / MiB / s, s * 1e6 / calls);
	fflush(stdout);
	return 0;
}

static int bw_all(spoke_actor *a, const char *transport, uint8_t *buf, uint8_t *small)
{
	spoke_mr req, rep;
	int rc;

	rc = spoke_mr_register(a, buf, MAX_BW, &req);
	if (rc < 0)
		return fail("register the request memory", rc);
	rc = spoke_mr_register(a, small, 4096, &rep);
	if (rc < 0) {
		spoke_mr_deregister(&req);
		return fail("register the reply memory", rc);
	}
	for (size_t i = 0; i < sizeof(bw_sizes) / sizeof(bw_sizes[0]); i++) {
		rc = bw(a, transport, &req, &rep, bw_sizes[i].bytes, bw_sizes[i].calls);
		if (rc < 0)
			break;
	}
	spoke_mr_deregister(&rep);
	spoke_mr_deregister(&req);
	return rc;
}

static int measure(struct handle *h, uint8_t *buf, uint8_t *small)
{
	if (rtt(h->spin, h->transport, "rtt64") < 0 ||
	    rtt(h->block, h->transport, "rtt64_block") < 0 ||
	    bw_all(h->spin, h->transport, buf, small) < 0)
		return -1;
	return 0;
}

static int run(spoke_client *c, const char *addr)
{
	struct handle h[2] = { { "rdma", NULL, NULL }, { "tcp", NULL, NULL } };
	uint8_t *buf = NULL, *small = NULL;
	int rc = -1;

	if (spawn(c, "bench", SPIN_US) < 0 || spawn(c, "bench-block", 0) < 0)
		return -1;
	/* RDMA first: it must work, or there is nothing to compare. */
	for (int i = 0; i < 2; i++)
		if (open_on(c, "bench", h[i].transport, SPIN_US, &h[i].spin) < 0 ||
		    open_on(c, "bench-block", h[i].transport, 0, &h[i].block) < 0)
			goto out;
	buf = aligned_alloc(4096, MAX_BW);
	small = aligned_alloc(4096, 4096);
	if (!buf || !small) {
		fprintf(stderr, "rdma-bench: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < MAX_BW; i++)
		buf[i] = probe_byte(3, i);
	memset(small, 0, 4096);
	printf("rdma-bench: Spoke over rdma and tcp on %s: 64 B echo x %d (+%d warm-up), "
	       "sink 1 MiB x %d, 16 MiB x %d, spin %d us\n",
	       addr, RTT_ITERS, RTT_WARM, bw_sizes[0].calls, bw_sizes[1].calls, SPIN_US);
	fflush(stdout);
	rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = measure(&h[i], buf, small);
out:
	for (int i = 0; i < 2; i++) {
		spoke_actor_close(h[i].spin);
		spoke_actor_close(h[i].block);
	}
	free(buf);
	free(small);
	return rc;
}

int main(void)
{
	const char *addr = getenv("SPOKE_TEST_ADDR");
	spoke_client *c = NULL;
	struct cluster cl;
	int rc;

	if (!addr || !*addr)
		addr = getenv("RXE_ADDR");
	if (!addr || !*addr)
		addr = "127.0.0.1";
	setenv("SPOKE_TEST_ADDR", addr, 1);
	/* Under vm.sh, calls go through rxe0 and nothing else. */
	if (getenv("RXE_DEV") && !getenv("SPOKE_RDMA_DEVICE"))
		setenv("SPOKE_RDMA_DEVICE", getenv("RXE_DEV"), 1);
	rc = cluster_start(&cl);
	if (rc == 0)
		rc = cluster_add_agent(&cl, "n1", "0-3");
	if (rc < 0) {
		fprintf(stderr, "rdma-bench: cannot start the cluster on %s: %s\n", addr,
			strerror(-rc));
	} else if ((rc = cluster_client(&cl, &c)) < 0) {
		fail("client", rc);
	} else {
		rc = run(c, addr);
	}
	spoke_client_close(c);
	cluster_stop(&cl);
	return rc < 0;
}
