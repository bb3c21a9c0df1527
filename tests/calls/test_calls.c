/* test_calls.c - the semantics of calls, written once and run over every
 * transport: the one named by $SPOKE_TEST_TRANSPORT (tcp, shm or rdma; the
 * wrappers tests/calls/tcp.sh, shm.sh and rdma.sh set it), on a real
 * cluster of the harness (tests/harness) whose hub, agents, workers and
 * client all have SPOKE_TRANSPORT set to it.  Every handle is checked to be
 * on that transport: a silent fallback fails the test.  Exits 77 only where
 * the transport cannot be had here (rdma without a device, or a Spoke built
 * without it: spoke_actor_use_transport says "built without a transport").
 *
 * What is here: payloads of 0 B to 64 MiB byte for byte, spoke_call_obj,
 * spoke_call_mr, windows of asynchronous calls of any size (past RDMA's
 * credits and the sockets' buffers), sync and async calls mixed, many
 * threads on one handle, timeouts (a thread's own, a future given up,
 * reused, dropped), closing under calls, methods' errors and the runtime's,
 * the client's and the worker's maximum message size, a worker or a client
 * killed mid-call, an actor restarted under its name.  What belongs to one
 * transport stays with it: RDMA's memory protection, cookies and device
 * fallback (tests/rdma/test_rdma.c), TCP's accept path (test_accept).
 *
 * Timing: the bounds hold on 2 busy cores with sanitizers; $SPOKE_TEST_SLOW
 * (rdma.sh: rxe is software, in a VM under TCG) multiplies those that
 * measure throughput, CPU or how soon a failure shows, and the deadlines
 * of calls expected to succeed.  Every wait is bounded. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"
#if HAVE_RDMA
#include "../harness/rdmadev.h"
#include "transport/rdma/rdma_qp.h" /* the slot's edges, for the echo sizes */
#endif

#define MiB (1u << 20)

static const char *T; /* the transport under test */
static double slow = 1; /* $SPOKE_TEST_SLOW */

/* A bound of ms, stretched by $SPOKE_TEST_SLOW. */
static double bound(double ms)
{
	return ms * slow;
}

static int deadline_ms(int ms)
{
	return (int)(ms * slow);
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Asserts that a is on the transport under test. */
static spoke_actor *on_t(spoke_actor *a)
{
	ck_assert_msg(strcmp(spoke_actor_transport(a), T) == 0,
		      "the handle is on %s, not on %s (SPOKE_TRANSPORT=%s)", spoke_actor_transport(a),
		      T, T);
	return a;
}

/* Spawns a Probe called name and opens it, on the transport under test. */
static spoke_actor *spawn_t(const char *name)
{
	return on_t(spawn_open(name, NULL));
}

/* Opens actor name (already spawned), on the transport under test. */
static spoke_actor *open_t(const char *name)
{
	spoke_actor *a = NULL;
	int rc = spoke_actor_open(client, name, &a, 0);

	ck_assert_msg(rc == 0, "open %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
	return on_t(a);
}

static uint8_t *pattern(size_t n, uint8_t seed)
{
	uint8_t *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++)
		p[i] = probe_byte(seed, i);
	return p;
}

static void check_pattern(const uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != probe_byte(seed, i))
			ck_abort_msg("byte %zu of %zu is %u, not %u", i, n, p[i], probe_byte(seed, i));
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

/* The harness's client, its default timeout (5 s: the deadline of
 * asynchronous calls, which wait for room behind a window) stretched by
 * $SPOKE_TEST_SLOW. */
static void stretch_client(void)
{
	spoke_client_opts o = { .hub = cl.hub_addr, .timeout_ms = deadline_ms(5000), .poll_us = -1 };

	if (slow <= 1)
		return;
	spoke_client_close(client);
	client = NULL;
	ck_assert_msg(spoke_client_open(&client, &o) == 0, "client: %s", spoke_errmsg());
}

static void setup(void)
{
	fixture_setup();
	stretch_client();
}

/* ---- 1. payloads ---- */

/* The transport is logged once per handle (info level, set in main), not
 * per call. */
START_TEST(transport_logged_once)
{
	char path[] = "/tmp/spoke-calls-log.XXXXXX", line[512], want[64];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO), lines = 0;
	spoke_actor *a;
	uint8_t rep[8];
	size_t got;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	snprintf(want, sizeof(want), "transport %s (", T);
	ck_assert_int_eq(spoke_spawn(client, "Probe", "logged", NULL, 0, NULL), 0);
	dup2(fd, STDERR_FILENO);
	a = open_t("logged");
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, rep, sizeof(rep), &got, 0), 0);
	spoke_actor_close(a);
	dup2(saved, STDERR_FILENO);
	f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "transport")) {
			ck_assert_msg(strstr(line, "spoke-client[") && strstr(line, "actor logged at ") &&
					      strstr(line, want),
				      "%s", line);
			lines++;
		}
	fclose(f);
	unlink(path);
	ck_assert_int_eq(lines, 1);
}
END_TEST

/* Echo of every size from 0 B to 64 MiB, content checked both ways: small,
 * at the edges of the transports' slots, and large. */
static const size_t echo_sizes[] = {
	0, 1, 64, 4095, 4096, 4097, 8191, 8192, 8193,
#if HAVE_RDMA
	SPK_RDMA_CALL_INLINE - 1, SPK_RDMA_CALL_INLINE, SPK_RDMA_CALL_INLINE + 1,
	SPK_RDMA_REPLY_INLINE + 1,
#endif
	64 << 10, MiB, 8 * MiB, 16 * MiB, 64 * MiB,
};

START_TEST(echo_0B_to_64MiB)
{
	spoke_actor *a = spawn_t("e");
	size_t n = echo_sizes[_i], got = 0;
	uint8_t *req = pattern(n, (uint8_t)_i), *rep = malloc(n ? n : 1);

	ck_assert_msg(spoke_call(a, PROBE_ECHO, req, n, rep, n, &got, deadline_ms(30000)) == 0,
		      "%zu B: %s", n, spoke_errmsg());
	ck_assert_uint_eq(got, n);
	check_pattern(rep, n, (uint8_t)_i);
	/* Twice: the second call finds what the first set up in place. */
	memset(rep, 0, n);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, req, n, rep, n, &got, deadline_ms(30000)), 0);
	ck_assert_uint_eq(got, n);
	check_pattern(rep, n, (uint8_t)_i);
	free(req);
	free(rep);
	spoke_actor_close(a);
}
END_TEST

START_TEST(reply_too_big_for_buffer)
{
	spoke_actor *a = spawn_t("p1");
	char req[100] = "x", rep[10];
	size_t n = 0;

	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, req, sizeof(req), rep, sizeof(rep), &n, 0),
			 SPOKE_ENOSPC);
	ck_assert_uint_eq(n, sizeof(req));
	/* The connection is still in step: the next call works. */
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "ok", 2, rep, sizeof(rep), &n, 0), 0);
	ck_assert(n == 2 && !memcmp(rep, "ok", 2));
	spoke_actor_close(a);
}
END_TEST

struct blob {
	uint32_t n;
	uint8_t seed;
	const uint8_t *data; /* unpack: in place */
};

static int blob_pack(spoke_buf *b, const void *obj)
{
	const struct blob *x = obj;
	uint8_t *p;

	spoke_buf_put_u32(b, x->n);
	spoke_buf_put_u8(b, x->seed);
	p = spoke_buf_reserve(b, x->n);
	if (p)
		for (size_t i = 0; i < x->n; i++)
			p[i] = probe_byte(x->seed, i);
	return spoke_buf_error(b);
}

static int bytes_unpack(spoke_view *v, void *obj)
{
	struct blob *x = obj;
	const void *p;

	x->n = (uint32_t)spoke_view_remaining(v);
	spoke_view_get_raw(v, &p, x->n);
	x->data = p;
	return spoke_view_error(v);
}

START_TEST(call_obj_packs_and_unpacks_in_place)
{
	static const spoke_serializer fill_req = { blob_pack, NULL };
	static const spoke_serializer raw = { NULL, bytes_unpack };
	spoke_actor *a = spawn_t("o");
	const uint32_t sizes[] = { 10, 3 * MiB, 3 * MiB, 100, 5 * MiB };

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		/* FILL ignores the bytes after n and seed: the request is large too. */
		struct blob req = { sizes[k], (uint8_t)k, NULL }, rep = { 0 };

		ck_assert_msg(spoke_call_obj(a, PROBE_FILL, &fill_req, &req, &raw, &rep,
					     deadline_ms(30000)) == 0,
			      "%u B: %s", sizes[k], spoke_errmsg());
		ck_assert_uint_eq(rep.n, sizes[k]);
		check_pattern(rep.data, rep.n, (uint8_t)k);
	}
	spoke_actor_close(a);
}
END_TEST

START_TEST(user_registered_buffers)
{
	spoke_actor *a = spawn_t("kv");
	size_t n = 8 * MiB, got = 0;
	uint8_t *block = pattern(n, 7), *out = calloc(1, n);
	uint8_t small[64], fill_req[5];
	spoke_mr req, rep;

	ck_assert_int_eq(spoke_mr_register(a, block, n, &req), 0);
	ck_assert_int_eq(spoke_mr_register(a, out, n, &rep), 0);
	/* The whole block as the request, the reply written into the other. */
	ck_assert_msg(spoke_call_mr(a, PROBE_ECHO, &req, 0, n, &rep, 0, n, &got,
				    deadline_ms(30000)) == 0,
		      "%s", spoke_errmsg());
	ck_assert_uint_eq(got, n);
	check_pattern(out, n, 7);
	/* A slice at an offset, checked by the actor's checksum. */
	ck_assert_int_eq(spoke_call_mr(a, PROBE_SUM, &req, 4096, 1 * MiB, &rep, 0, 8, &got, 0), 0);
	ck_assert_uint_eq(got, 8);
	uint64_t h = 0;
	for (int i = 7; i >= 0; i--)
		h = h << 8 | out[i];
	ck_assert(h == probe_sum(block + 4096, 1 * MiB));
	/* Into the reply region at an offset. */
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 96, 1000, &rep, 8, 1000, &got, 0), 0);
	ck_assert_uint_eq(got, 1000);
	ck_assert(memcmp(out + 8, block + 96, 1000) == 0);
	/* A reply larger than the region: SPOKE_ENOSPC with its size, and the
	 * connection goes on. */
	fill_req[0] = 0, fill_req[1] = 0, fill_req[2] = 0x20, fill_req[3] = 0, fill_req[4] = 3;
	ck_assert_int_eq(spoke_call(a, PROBE_FILL, fill_req, 5, small, sizeof(small), &got, 0),
			 SPOKE_ENOSPC);
	ck_assert_uint_eq(got, 0x200000);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, 2 * MiB, &rep, 0, MiB, &got, 0),
			 SPOKE_ENOSPC);
	ck_assert_uint_eq(got, 2 * MiB);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, MiB, &rep, 0, MiB, &got, 0), 0);
	check_pattern(out, MiB, 7);
	/* Ranges outside the registered memory are refused before anything moves. */
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 1, n, &rep, 0, n, &got, 0),
			 SPOKE_EINVAL);
	ck_assert_int_eq(spoke_call_mr(a, PROBE_ECHO, &req, 0, 100, &rep, n - 10, 100, &got, 0),
			 SPOKE_EINVAL);
	echo_ok(a);
	spoke_mr_deregister(&req);
	spoke_mr_deregister(&rep);
	free(block);
	free(out);
	spoke_actor_close(a);
}
END_TEST

/* ---- 2. windows of asynchronous calls ---- */

/* n async echoes of `size` bytes each, all in flight before the first wait;
 * every reply checked byte for byte. */
static void echo_window(spoke_actor *a, size_t n, size_t size)
{
	spoke_future *f = calloc(n, sizeof(*f));
	uint8_t *req = malloc(n * size), *rep = malloc(n * size);
	double t0 = now_ms();
	int rc;

	ck_assert(f && req && rep);
	for (size_t i = 0; i < n * size; i++)
		req[i] = probe_byte((uint8_t)(i / size), i % size);
	memset(rep, 0, n * size);
	for (size_t i = 0; i < n; i++) {
		rc = spoke_call_async(a, PROBE_ECHO, req + i * size, size, rep + i * size, size,
				      &f[i]);
		ck_assert_msg(rc == 0, "%zu x %zu B: call %zu: %s (%s)", n, size, i,
			      spoke_strerror(rc), spoke_errmsg());
	}
	for (size_t i = 0; i < n; i++) {
		rc = spoke_future_wait(&f[i], 0);
		ck_assert_msg(rc == 0, "%zu x %zu B: wait %zu: %s (%s)", n, size, i,
			      spoke_strerror(rc), spoke_errmsg());
		ck_assert_uint_eq(f[i].reply_len, size);
	}
	ck_assert_msg(memcmp(req, rep, n * size) == 0, "%zu x %zu B: replies differ", n, size);
	fprintf(stderr, "window %zu x %zu B: %.0f ms\n", n, size, now_ms() - t0);
	/* A crawl guard, not a speed test: a window that stalls until some
	 * timeout would take seconds more (4.5 s was seen under ASan on a
	 * 2-core machine at load 7, where 1 s is usual). */
	ck_assert_msg(now_ms() - t0 < bound(15000), "%zu x %zu B took %.0f ms", n, size,
		      now_ms() - t0);
	free(f);
	free(req);
	free(rep);
}

START_TEST(large_windows_complete)
{
	spoke_actor *a = spawn_t("w1");

	echo_window(a, 6, 4u << 20);
	echo_window(a, 24, 1u << 20);
	echo_window(a, 256, 64u << 10);
	echo_window(a, 64, 1u << 20);
	/* Small ones behind large ones, and the handle still in step after. */
	echo_window(a, 2000, 100);
	echo_window(a, 3, 8u << 20);
	spoke_actor_close(a);
}
END_TEST

/* A window that deadlocks whatever the machine's buffers: 64 MiB of
 * replies (more than the client's receive buffer, the worker's send buffer
 * and its 8 MiB of queued output together, over TCP) ask for only 5 bytes
 * each, then 64 MiB of requests (more than the worker's receive buffer and
 * the client's send buffer) need the worker to read again. */
START_TEST(replies_fill_the_pipe)
{
	enum { FILLS = 16, SINKS = 64 };
	const uint32_t n = 4u << 20, big = 1u << 20;
	spoke_actor *a = spawn_t("w2");
	spoke_future *f = calloc(FILLS + SINKS, sizeof(*f));
	uint8_t *rep = malloc((size_t)FILLS * n), *req = calloc(1, big), fill_req[5];
	uint32_t counts[SINKS];
	double t0 = now_ms();
	int rc;

	ck_assert(f && rep && req);
	for (int k = 0; k < 4; k++) /* u32 n, little-endian */
		fill_req[k] = (uint8_t)(n >> (8 * k));
	for (int i = 0; i < FILLS; i++) {
		fill_req[4] = (uint8_t)i;
		rc = spoke_call_async(a, PROBE_FILL, fill_req, 5, rep + (size_t)i * n, n, &f[i]);
		ck_assert_msg(rc == 0, "fill %d: %s (%s)", i, spoke_strerror(rc), spoke_errmsg());
	}
	for (int i = 0; i < SINKS; i++) {
		rc = spoke_call_async(a, PROBE_SINK, req, big, &counts[i], 4, &f[FILLS + i]);
		ck_assert_msg(rc == 0, "sink %d: %s (%s)", i, spoke_strerror(rc), spoke_errmsg());
	}
	for (int i = 0; i < FILLS + SINKS; i++) {
		rc = spoke_future_wait(&f[i], 0);
		ck_assert_msg(rc == 0, "wait %d: %s (%s)", i, spoke_strerror(rc), spoke_errmsg());
	}
	for (int i = 0; i < FILLS; i++)
		for (size_t k = 0; k < n; k++)
			if (rep[(size_t)i * n + k] != probe_byte((uint8_t)i, k))
				ck_abort_msg("fill %d: byte %zu differs", i, k);
	for (int i = 0; i < SINKS; i++)
		ck_assert_uint_eq(counts[i], big);
	fprintf(stderr, "window of %d x 4 MiB replies then %d x 1 MiB requests: %.0f ms\n", FILLS,
		SINKS, now_ms() - t0);
	ck_assert_msg(now_ms() - t0 < bound(15000), "took %.0f ms", now_ms() - t0); /* a crawl guard */
	free(f);
	free(rep);
	free(req);
	spoke_actor_close(a);
}
END_TEST

/* A wait that times out on one future gives up that one only, even when
 * its deadline passes while another call's large reply is half received. */
START_TEST(short_wait_spares_the_window)
{
	const uint32_t n = 60u << 20;
	spoke_actor *a = spawn_t("w3");
	uint8_t *big = malloc(n), fill_req[5] = { 0, 0, 0xc0, 0x03, 7 }; /* u32 60 MiB, seed 7 */
	uint32_t v[2] = { 1, 2 }, got[2] = { 0, 0 };
	spoke_future fb, fs[2];
	int rc;

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(spoke_call_async(a, PROBE_FILL, fill_req, 5, big, n, &fb), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v[i], 4, &got[i], 4, &fs[i]), 0);
	usleep(300000); /* the 60 MiB are on their way */
	rc = spoke_future_wait(&fs[0], 2);
	ck_assert_msg(rc == 0 || rc == SPOKE_ETIMEDOUT, "%s (%s)", spoke_strerror(rc),
		      spoke_errmsg());
	ck_assert_int_eq(spoke_future_wait(&fb, deadline_ms(5000)), 0);
	for (size_t k = 0; k < n; k += 4093)
		if (big[k] != probe_byte(7, k))
			ck_abort_msg("byte %zu differs", k);
	ck_assert_int_eq(spoke_future_wait(&fs[1], deadline_ms(5000)), 0);
	ck_assert_uint_eq(got[1], 2);
	free(big);
	spoke_actor_close(a);
}
END_TEST

/* Sync calls, async calls and their errors share the handle in order: a
 * sync call behind async ones, an async reply too big for its buffer. */
START_TEST(sync_and_async_mixed)
{
	uint8_t fill_big[5] = { 0, 0, 0x10, 0, 4 }; /* 1 MiB of seed 4 */
	spoke_actor *a = spawn_t("mixed");
	static uint8_t rep[40][64], small[16], big[64];
	uint8_t req[64];
	spoke_future f[40], fb;
	size_t got;

	for (int i = 0; i < 40; i++) {
		memset(req, i, sizeof(req));
		ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, req, 1 + i, rep[i], 64, &f[i]), 0);
		if (i == 20) {
			ck_assert_int_eq(spoke_call_async(a, PROBE_FILL, fill_big, 5, small,
							  sizeof(small), &fb),
					 0);
			ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "sync", 4, big, sizeof(big), &got,
						    0),
					 0);
			ck_assert_uint_eq(got, 4);
			ck_assert(memcmp(big, "sync", 4) == 0);
		}
	}
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(spoke_future_wait(&f[i], 0), 0);
		ck_assert_uint_eq(f[i].reply_len, 1 + i);
		for (int k = 0; k <= i; k++)
			ck_assert_uint_eq(rep[i][k], i);
	}
	ck_assert_int_eq(spoke_future_wait(&fb, 0), SPOKE_ENOSPC);
	ck_assert_uint_eq(fb.reply_len, 1u << 20);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "after", 5, big, sizeof(big), &got, 0), 0);
	spoke_actor_close(a);
}
END_TEST

/* ---- 3. timeouts ---- */

START_TEST(timeout_then_recover)
{
	spoke_actor *a = spawn_t("slow");
	uint32_t ms = 1000;
	uint8_t rep[8];
	size_t n;
	double t0 = now_ms();

	ck_assert_int_eq(spoke_call(a, PROBE_NAP, &ms, sizeof(ms), rep, sizeof(rep), &n, 200),
			 SPOKE_ETIMEDOUT);
	ck_assert_msg(now_ms() - t0 < 600, "timeout took %.0f ms", now_ms() - t0);
	/* The next call connects afresh, even when its own first try times out
	 * too (the worker is still busy with the nap). */
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "soon", 4, rep, sizeof(rep), &n, 50),
			 SPOKE_ETIMEDOUT);
	ms = 1;
	ck_assert_int_eq(spoke_call(a, PROBE_NAP, &ms, sizeof(ms), rep, sizeof(rep), &n,
				    deadline_ms(5000)),
			 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(rep[0], 1);
	on_t(a);
	spoke_actor_close(a);
}
END_TEST

static void *long_nap(void *p)
{
	uint8_t ms[4] = { 0xe8, 0x03, 0, 0 }, rep[8]; /* 1000 ms */
	size_t got;

	return (void *)(intptr_t)spoke_call(p, PROBE_NAP, ms, 4, rep, sizeof(rep), &got, 10000);
}

/* Threads on one handle keep their own timeouts: a call while the worker
 * is busy with another thread's (its own connection from the handle's pool
 * is still being set up), and a wait on the pipelined connection behind a
 * long call. */
START_TEST(timeouts_of_threads_on_one_handle)
{
	uint8_t ms[4] = { 0xe8, 0x03, 0, 0 }, rep[8], rep2[8]; /* 1000 ms */
	spoke_actor *a = spawn_t("turns"), *b = spawn_t("other");
	spoke_future f, g;
	pthread_t th;
	void *rc;
	size_t got;
	double t0;

	pthread_create(&th, NULL, long_nap, b);
	usleep(200 * 1000);
	t0 = now_ms();
	ck_assert_int_eq(spoke_call(b, PROBE_ECHO, "x", 1, rep, sizeof(rep), &got, 100),
			 SPOKE_ETIMEDOUT);
	ck_assert_msg(now_ms() - t0 < 600, "waited %.0f ms", now_ms() - t0);
	pthread_join(th, &rc);
	ck_assert_int_eq((int)(intptr_t)rc, 0);
	ck_assert_int_eq(spoke_call(b, PROBE_ECHO, "x", 1, rep, sizeof(rep), &got,
				    deadline_ms(5000)),
			 0);
	/* A future behind a long one: the wait times out and gives it up (its
	 * reply is dropped); the future may be reused at once, and one still
	 * in flight may not. */
	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, ms, 4, rep, sizeof(rep), &f), 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, "y", 1, rep2, sizeof(rep2), &g), 0);
	t0 = now_ms();
	ck_assert_int_eq(spoke_future_wait(&g, 100), SPOKE_ETIMEDOUT);
	ck_assert_msg(now_ms() - t0 < 600, "waited %.0f ms", now_ms() - t0);
	ck_assert_int_eq(spoke_future_wait(&g, 5000), SPOKE_ETIMEDOUT);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, "x", 1, rep2, sizeof(rep2), &f),
			 SPOKE_EINVAL);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, "z", 1, rep2, sizeof(rep2), &g), 0);
	ck_assert_int_eq(spoke_future_wait(&g, deadline_ms(5000)), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_uint_eq(g.reply_len, 1);
	ck_assert_int_eq(rep2[0], 'z');
	spoke_actor_close(a);
	spoke_actor_close(b);
}
END_TEST

START_TEST(reuse_after_timeout)
{
	spoke_actor *a = spawn_t("r1");
	uint32_t ms = 600, echo = 0xabcd1234, got = 0;
	uint8_t rep[8];
	spoke_future f;
	double t0, c0;

	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, &ms, sizeof(ms), rep, sizeof(rep), &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 50), SPOKE_ETIMEDOUT);
	ck_assert_msg(strstr(spoke_errmsg(), "time"), "message: %s", spoke_errmsg());
	/* The timed-out future is complete: waiting again says the same. */
	ck_assert_int_eq(spoke_future_wait(&f, 50), SPOKE_ETIMEDOUT);
	ck_assert_int_eq(f.status, SPOKE_ETIMEDOUT);
	/* Reused at once, while the nap's reply is still to come. */
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &echo, 4, &got, 4, &f), 0);
	t0 = now_ms();
	c0 = cpu_ms();
	ck_assert_int_eq(spoke_future_wait(&f, deadline_ms(3000)), 0);
	fprintf(stderr, "reuse: waited %.0f ms, %.1f ms of CPU\n", now_ms() - t0, cpu_ms() - c0);
	ck_assert_uint_eq(f.reply_len, 4);
	ck_assert_uint_eq(got, echo);
	ck_assert_msg(cpu_ms() - c0 < bound(100), "the wait burnt %.0f ms of CPU in %.0f ms",
		      cpu_ms() - c0, now_ms() - t0);
	spoke_actor_close(a);
}
END_TEST

START_TEST(in_flight_future_refused)
{
	spoke_actor *a = spawn_t("r2");
	uint32_t ms = 200, rep = 0, echo = 77, got = 0;
	spoke_future f, g;

	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, &ms, sizeof(ms), &rep, 4, &f), 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &echo, 4, &got, 4, &f), SPOKE_EINVAL);
	ck_assert_msg(strstr(spoke_errmsg(), "in flight"), "message: %s", spoke_errmsg());
	/* f is still the nap's, and exactly one reply came for it. */
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_uint_eq(rep, 200);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &echo, 4, &got, 4, &g), 0);
	ck_assert_int_eq(spoke_future_wait(&g, 0), 0);
	ck_assert_uint_eq(got, 77);
	spoke_actor_close(a);
}
END_TEST

/* Starts a slow call on a future in this frame, gives up on it, returns. */
static __attribute__((noinline)) void abandon(spoke_actor *a, uint32_t ms)
{
	uint8_t rep[64];
	spoke_future f;

	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, &ms, sizeof(ms), rep, sizeof(rep), &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 20), SPOKE_ETIMEDOUT);
}

/* Overwrites the stack where abandon()'s frame was. */
static __attribute__((noinline)) void scribble(void)
{
	volatile uint8_t junk[8192];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = 0xa5;
}

START_TEST(drop_after_timeout)
{
	enum { N = 300, WINDOW = 16 };
	spoke_actor *a = spawn_t("r3");
	static spoke_future f[N];
	static uint32_t req[N], rep[N];
	size_t done = 0, n;
	double t0, c0;
	uint32_t v;

	abandon(a, 300);
	scribble();
	abandon(a, 100);
	scribble();
	t0 = now_ms();
	c0 = cpu_ms();
	for (size_t i = 0; i < N; i++) {
		req[i] = (uint32_t)(i * 2654435761u);
		if (i >= WINDOW) {
			ck_assert_int_eq(spoke_future_wait(&f[done], deadline_ms(3000)), 0);
			done++;
		}
		ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &req[i], 4, &rep[i], 4, &f[i]), 0);
	}
	for (; done < N; done++)
		ck_assert_int_eq(spoke_future_wait(&f[done], deadline_ms(3000)), 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_msg(f[i].reply_len == 4 && rep[i] == req[i], "call %zu: got %u, sent %u",
			      i, rep[i], req[i]);
	fprintf(stderr, "drop: %d calls behind 2 dropped futures in %.0f ms, %.1f ms of CPU\n", N,
		now_ms() - t0, cpu_ms() - c0);
	ck_assert_msg(cpu_ms() - c0 < 0.8 * (now_ms() - t0) + bound(50),
		      "spinning: %.0f ms CPU in %.0f ms", cpu_ms() - c0, now_ms() - t0);
	v = 5;
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, &v, 4, &rep[0], 4, &n, 0), 0);
	ck_assert_uint_eq(rep[0], 5);
	spoke_actor_close(a);
}
END_TEST

/* ---- 4. closing, and deaths ---- */

START_TEST(close_completes_pending_futures)
{
	spoke_actor *a = spawn_t("c1");
	uint32_t ms = 1000, echo = 9;
	spoke_future *f = malloc(2 * sizeof(*f));
	uint8_t rep[2][8];
	double t0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, &ms, 4, rep[0], sizeof(rep[0]), &f[0]), 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &echo, 4, rep[1], sizeof(rep[1]), &f[1]), 0);
	t0 = now_ms();
	spoke_actor_close(a);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(spoke_future_wait(&f[i], 0), SPOKE_ECLOSED);
		ck_assert_msg(strstr(spoke_errmsg(), "closed"), "message: %s", spoke_errmsg());
		ck_assert_int_eq(f[i].status, SPOKE_ECLOSED);
	}
	ck_assert_msg(now_ms() - t0 < bound(500), "closing took %.0f ms", now_ms() - t0);
	free(f);
}
END_TEST

struct napper {
	spoke_actor *a;
	int rc;
	uint32_t back;
};

static void *nap_500(void *arg)
{
	struct napper *p = arg;
	uint32_t ms = 500;
	size_t n;

	p->rc = spoke_call(p->a, PROBE_NAP, &ms, 4, &p->back, 4, &n, 0);
	return NULL;
}

/* Closing a handle while another thread's synchronous call runs on it
 * waits for that call to end (within its timeout), then frees. */
START_TEST(close_waits_for_running_calls)
{
	struct napper p = { .a = spawn_t("c2") };
	pthread_t t;
	double t0;

	ck_assert_int_eq(pthread_create(&t, NULL, nap_500, &p), 0);
	usleep(100000);
	t0 = now_ms();
	spoke_actor_close(p.a);
	ck_assert_msg(now_ms() - t0 > 250, "closed after %.0f ms, under the call", now_ms() - t0);
	pthread_join(t, NULL);
	ck_assert_int_eq(p.rc, 0);
	ck_assert_uint_eq(p.back, 500);
}
END_TEST

/* A worker that dies fails its calls in flight at once, and a crash inside
 * a synchronous call fails that call; the hub learns of the deaths, and
 * other workers' connections go on. */
START_TEST(worker_death_fails_calls_in_flight)
{
	spoke_actor *a = spawn_t("victim"), *b = spawn_t("bystander");
	uint32_t ms = 3000, pid = actor_pid(a);
	spoke_future f[3];
	uint8_t rep[16];
	size_t n;
	double t0;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(spoke_call_async(a, PROBE_NAP, &ms, sizeof(ms), rep, sizeof(rep),
						  &f[i]),
				 0);
	usleep(100000);
	t0 = now_ms();
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(spoke_future_wait(&f[i], 10000), SPOKE_EDEAD);
	printf("# a worker's death failed its calls %.1f ms after kill -9\n", now_ms() - t0);
	ck_assert_msg(now_ms() - t0 < bound(1500), "in-flight calls failed after %.0f ms",
		      now_ms() - t0);
	/* A crash inside a method fails that call too. */
	ck_assert_int_eq(spoke_call(b, PROBE_CRASH, NULL, 0, rep, sizeof(rep), &n, 10000),
			 SPOKE_EDEAD);
	/* The hub learns of the deaths. */
	spoke_actor *dead = NULL;
	int rc = 0;
	for (int i = 0; i < 100 && !(rc == SPOKE_EDEAD && strstr(spoke_errmsg(), "signal 9")); i++) {
		rc = spoke_actor_open(client, "bystander", &dead, 0);
		if (rc == 0)
			spoke_actor_close(dead);
		usleep(10000);
	}
	ck_assert_int_eq(rc, SPOKE_EDEAD);
	ck_assert_msg(strstr(spoke_errmsg(), "signal 9"), "message: %s", spoke_errmsg());
	spoke_actor_close(a);
	spoke_actor_close(b);
	/* Other connections go on. */
	a = spawn_t("survivor");
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "ok", 2, rep, sizeof(rep), &n, 0), 0);
	spoke_actor_close(a);
}
END_TEST

/* What a worker logs when a client's connection ends, where it logs it
 * (the agent's log): a check that it saw the dead client go. */
static const struct {
	const char *transport, *a, *b;
} conn_ended[] = {
	{ "rdma", "RDMA connection from", "ended" },
};

/* Whether an agent's log (its workers log there too) has a line with both
 * a and b. */
static bool logged(const struct cluster *c, const char *a, const char *b)
{
	char path[256], line[1024];
	bool found = false;

	for (int i = 0; i < c->n_agents && !found; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/agent-%s.log", c->dir, c->nodes[i]);
		f = fopen(path, "r");
		while (f && !found && fgets(line, sizeof(line), f))
			found = strstr(line, a) && strstr(line, b);
		if (f)
			fclose(f);
	}
	return found;
}

/* A client killed with calls in flight costs the worker that connection
 * only: it goes on serving. */
START_TEST(client_death_mid_call)
{
	uint8_t ms[4] = { 0x2c, 0x01, 0, 0 }, rep[8]; /* 300 ms */
	uint32_t pid = 0;
	spoke_actor *a;
	int status, fds[2];
	size_t got;
	pid_t kid;

	/* The child opens the first handle: a process must not use RDMA
	 * devices its parent opened (librdmacm keeps them open). */
	ck_assert_int_eq(spoke_spawn(client, "Probe", "server", NULL, 0, NULL), 0);
	ck_assert_int_eq(pipe(fds), 0);
	kid = fork();
	if (kid == 0) {
		spoke_client *c;
		spoke_future f[4];
		uint8_t r[4];
		size_t n;

		close(fds[0]);
		if (cluster_client(&cl, &c) < 0 || spoke_actor_open(c, "server", &a, 0) < 0 ||
		    strcmp(spoke_actor_transport(a), T) != 0)
			_exit(2);
		if (spoke_call(a, PROBE_PID, NULL, 0, r, sizeof(r), &n, 0) < 0 || n != 4 ||
		    write(fds[1], r, 4) != 4)
			_exit(3);
		for (int i = 0; i < 4; i++)
			if (spoke_call_async(a, PROBE_NAP, ms, 4, rep, sizeof(rep), &f[i]) < 0)
				_exit(4);
		usleep(50 * 1000);
		raise(SIGKILL);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], rep, 4), 4);
	close(fds[0]);
	pid = (uint32_t)rep[0] | (uint32_t)rep[1] << 8 | (uint32_t)rep[2] << 16 |
	      (uint32_t)rep[3] << 24;
	ck_assert_int_eq(waitpid(kid, &status, 0), kid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "client: %d", status);
	a = open_t("server");
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "alive", 5, rep, sizeof(rep), &got,
					    deadline_ms(5000)),
				 0);
	ck_assert_uint_eq(actor_pid(a), pid);
	spoke_actor_close(a);
	/* The worker logged the dead client's connection as ended. */
	for (size_t k = 0; k < sizeof(conn_ended) / sizeof(conn_ended[0]); k++) {
		const char *x = conn_ended[k].a, *y = conn_ended[k].b;

		if (strcmp(conn_ended[k].transport, T) != 0)
			continue;
		for (int tries = 0; tries < 40 && !logged(&cl, x, y); tries++)
			usleep(50 * 1000);
		ck_assert_msg(logged(&cl, x, y), "no line in %s", cl.dir);
	}
}
END_TEST

/* A handle whose actor was restarted under its name asks the hub before it
 * connects again: SPOKE_EDEAD, never a reconnect to the old address (nor
 * to the new incarnation, which it did not open). */
START_TEST(restarted_actor_is_dead_to_old_handle)
{
	spoke_actor *a = spawn_t("phoenix"), *b;
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	uint32_t old = actor_pid(a);
	uint8_t rep[8];
	size_t got;
	int rc = 0;

	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, "x", 1, rep, sizeof(rep), &got, 0), 0);
	ck_assert_int_eq(spoke_kill(client, "phoenix", 0), 0);
	for (int i = 0; i < 100; i++) { /* its name is free once its agent reported it */
		rc = spoke_spawn(client, "Probe", "phoenix", NULL, 0, &o);
		if (rc != SPOKE_EEXIST)
			break;
		usleep(20000);
	}
	ck_assert_msg(rc == 0, "respawn: %s (%s)", spoke_strerror(rc), spoke_errmsg());
	for (int i = 0; i < 3; i++) { /* the first may be the break itself */
		rc = spoke_call(a, PROBE_ECHO, "y", 1, rep, sizeof(rep), &got, 0);
		ck_assert_msg(rc == SPOKE_EDEAD, "call %d: %s (%s)", i, spoke_strerror(rc),
			      spoke_errmsg());
	}
	ck_assert_msg(strstr(spoke_errmsg(), "restarted") || strstr(spoke_errmsg(), "gone"), "%s",
		      spoke_errmsg());
	b = open_t("phoenix");
	ck_assert_int_eq(spoke_call(b, PROBE_ECHO, "z", 1, rep, sizeof(rep), &got, 0), 0);
	ck_assert_uint_ne(actor_pid(b), old);
	spoke_actor_close(b);
	spoke_actor_close(a);
}
END_TEST

/* ---- 5. errors: the caller's, the method's, the runtime's ---- */

START_TEST(async_enospc_has_its_message)
{
	spoke_actor *a = spawn_t("m1");
	uint32_t v = 1, ok = 0;
	uint8_t small[2];
	spoke_future f, g;
	size_t n;

	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v, 4, small, sizeof(small), &f), 0);
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v, 4, &ok, 4, &g), 0);
	ck_assert_int_eq(spoke_future_wait(&g, 0), 0); /* completes f on the way */
	/* Another failure in between leaves its own message... */
	ck_assert_int_eq(spoke_call(a, 999, NULL, 0, NULL, 0, &n, 0), SPOKE_ENOMETHOD);
	/* ...which the wait that reports f's failure replaces. */
	ck_assert_int_eq(spoke_future_wait(&f, 0), SPOKE_ENOSPC);
	ck_assert_uint_eq(f.reply_len, 4);
	ck_assert_msg(strstr(spoke_errmsg(), "4 bytes") && strstr(spoke_errmsg(), "2"),
		      "message: %s", spoke_errmsg());
	/* And when the wait itself receives the reply. */
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v, 4, small, sizeof(small), &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), SPOKE_ENOSPC);
	ck_assert_msg(strstr(spoke_errmsg(), "4 bytes"), "message: %s", spoke_errmsg());
	spoke_actor_close(a);
}
END_TEST

#define MY_PACK_ERROR (-4242)

static int pack_fails(spoke_buf *b, const void *obj)
{
	(void)b;
	(void)obj;
	return MY_PACK_ERROR;
}

static int pack_u32(spoke_buf *b, const void *obj)
{
	return spoke_buf_put_u32(b, *(const uint32_t *)obj);
}

static int unpack_u64(spoke_view *v, void *obj)
{
	return spoke_view_get_u64(v, obj);
}

static int pack_huge(spoke_buf *b, const void *obj)
{
	(void)obj;
	return spoke_buf_reserve(b, (size_t)1 << 31) ? 0 : spoke_buf_error(b);
}

START_TEST(call_obj_keeps_serializer_codes)
{
	spoke_actor *a = spawn_t("m2");
	const spoke_serializer fails = { pack_fails, NULL }, u32 = { pack_u32, NULL },
			       u64 = { NULL, unpack_u64 }, huge = { pack_huge, NULL };
	uint32_t v = 7;
	uint64_t out = 0;
	int rc;

	rc = spoke_call_obj(a, PROBE_ECHO, &fails, &v, NULL, NULL, 0);
	ck_assert_int_eq(rc, MY_PACK_ERROR);
	ck_assert_msg(strstr(spoke_errmsg(), "packing the request"), "message: %s", spoke_errmsg());
	rc = spoke_call_obj(a, PROBE_ECHO, &huge, &v, NULL, NULL, 0);
	ck_assert_int_eq(rc, SPOKE_ETOOBIG);
	ck_assert_msg(strstr(spoke_errmsg(), "packing the request"), "message: %s", spoke_errmsg());
	/* A 4-byte echo read as 8 bytes. */
	rc = spoke_call_obj(a, PROBE_ECHO, &u32, &v, &u64, &out, 0);
	ck_assert_int_eq(rc, SPOKE_ESHORT);
	ck_assert_msg(strstr(spoke_errmsg(), "unpacking the reply"), "message: %s", spoke_errmsg());
	/* Nothing was left behind: the handle is in step. */
	ck_assert_int_eq(spoke_call_obj(a, PROBE_ECHO, &u32, &v, NULL, NULL, 0), 0);
	ck_assert_str_eq(spoke_errmsg(), "");
	spoke_actor_close(a);
}
END_TEST

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

/* Whatever a method returns, even a runtime code, the caller sees
 * SPOKE_EMETHOD, the method's name and the code's text; the method's code
 * is spoke_method_status(); the handle goes on. */
START_TEST(method_codes_come_back_as_emethod)
{
	const int32_t codes[] = { -1, -EINVAL, SPOKE_EDEAD, SPOKE_ETIMEDOUT, SPOKE_ENOMETHOD,
				  SPOKE_EMETHOD, INT32_MIN };
	spoke_actor *a = spawn_t("m1");
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
	spoke_actor *a = spawn_t("m2");
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
	spoke_actor *a = spawn_t("m3");
	uint8_t rep[8];
	size_t n;

	ck_assert_int_eq(fail_with(a, -1, NULL, &n), SPOKE_EMETHOD);
	ck_assert_int_eq(spoke_call(a, 99, NULL, 0, rep, sizeof(rep), &n, 0), SPOKE_ENOMETHOD);
	ck_assert_int_eq(spoke_method_status(), 0);
	ck_assert_str_eq(spoke_errmsg(), "actor m3 (Probe) has no method 99");
	spoke_actor_close(a);
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
	spoke_actor *a = spawn_t("m5");
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
	spoke_actor *a = spawn_t("m7");
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
	struct other o = { .a = spawn_t("m6") };
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

/* ---- 6. the maximum message size, the client's and the worker's ---- */

/* A request larger than this client takes (64 MiB by default) is refused
 * before anything is sent; the connection goes on. */
START_TEST(request_over_the_clients_maximum)
{
	spoke_actor *a = spawn_t("lim");
	size_t n = 64 * MiB + 1, got = 0;
	uint8_t *big = calloc(1, n);

	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, big, n, big, n, &got, 0), SPOKE_ETOOBIG);
	echo_ok(a);
	free(big);
	spoke_actor_close(a);
}
END_TEST

/* A reply larger than this client takes ($SPOKE_MAX_MSG here) fails that
 * call with SPOKE_ETOOBIG; the handle goes on.  (The message differs: over
 * RDMA "reply of 2097152 bytes, room for ...", over TCP "bad frame from
 * ...: message larger than the allowed maximum", the connection made
 * again.) */
START_TEST(reply_over_the_clients_maximum)
{
	uint8_t req[5] = { 0, 0, 0x20, 0, 9 }, small[5] = { 0xe8, 0x03, 0, 0, 9 }; /* 2 MiB, 1000 B */
	uint8_t *rep = malloc(4 * MiB);
	spoke_actor *a;
	size_t got = 0;

	ck_assert_int_eq(spoke_spawn(client, "Probe", "max", NULL, 0, NULL), 0);
	setenv("SPOKE_MAX_MSG", "1M", 1);
	a = open_t("max");
	ck_assert_int_eq(spoke_call(a, PROBE_FILL, req, 5, rep, 4 * MiB, &got, 0), SPOKE_ETOOBIG);
	ck_assert_msg(spoke_errmsg()[0], "no message");
	printf("# a reply over the client's maximum: %s\n", spoke_errmsg());
	ck_assert_int_eq(spoke_call(a, PROBE_FILL, small, 5, rep, 4 * MiB, &got, 0), 0);
	ck_assert_uint_eq(got, 1000);
	check_pattern(rep, got, 9);
	spoke_actor_close(a);
	unsetenv("SPOKE_MAX_MSG");
	free(rep);
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
	stretch_client();
	a = spawn_t("m4");
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

/* A request over the worker's SPOKE_MAX_MSG (but not the client's) gets
 * SPOKE_ETOOBIG and the maximum; its payload is not buffered, and the next
 * calls on the same handle (the same connection) work.  (Over TCP the
 * worker refuses it: "request of N bytes is over this actor's maximum of M
 * (SPOKE_MAX_MSG)"; over RDMA the client knows the worker's maximum and
 * refuses it before sending.) */
START_TEST(request_over_workers_maximum)
{
	const size_t sizes[] = { 64 * 1024 + 1, 100 * 1024, 48u << 20 };
	uint8_t *big = malloc(48u << 20), rep[8];
	spoke_actor *a;
	long before, after;
	pid_t pid;
	size_t n;
	int rc;

	ck_assert_ptr_nonnull(big);
	fixture_start_with("SPOKE_MAX_MSG", "64K");
	stretch_client();
	a = spawn_t("small");
	pid = (pid_t)actor_pid(a);
	before = cluster_proc_kib(pid, "VmHWM");
	ck_assert_int_gt(before, 0);
	memset(big, 7, 48u << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		ck_assert_int_eq(spoke_call(a, PROBE_SINK, big, sizes[i], rep, sizeof(rep), &n, 0),
				 SPOKE_ETOOBIG);
		ck_assert_msg(strstr(spoke_errmsg(), "maximum of 65536"), "%zu B: %s", sizes[i],
			      spoke_errmsg());
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
		/* Refused at once (RDMA: the client knows the maximum) or by the
		 * worker: either way f[4] completes with it (client.h). */
		rc = spoke_call_async(a, PROBE_SINK, big, 48u << 20, why, sizeof(why), &f[4]);
		ck_assert_msg(rc == 0 || rc == SPOKE_ETOOBIG, "%s (%s)", spoke_strerror(rc),
			      spoke_errmsg());
		for (int i = 0; i < 4; i++) {
			ck_assert_int_eq(spoke_future_wait(&f[i], 0), 0);
			ck_assert_uint_eq(got[i], v[i]);
		}
		ck_assert_int_eq(spoke_future_wait(&f[4], 0), SPOKE_ETOOBIG);
		ck_assert_msg(strstr(spoke_errmsg(), "maximum of 65536"), "%s", spoke_errmsg());
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

/* ---- 7. threads (also run under ThreadSanitizer: make check-tsan) ---- */

/* Pipelined calls, many more than a window (RDMA's credits, the sockets'
 * buffers), small ones with a large one every 50th, each reply checked. */
START_TEST(many_async_calls_in_flight)
{
	enum { N = 2000, WINDOW = 200, BIG = 100 << 10 };
	spoke_actor *a = spawn_t("async");
	static spoke_future f[N];
	static uint8_t *req[N], *rep[N];
	size_t done = 0;

	for (size_t i = 0; i < N; i++) {
		size_t n = i % 50 == 0 ? BIG : 4 + i % 61;

		if (i >= WINDOW) {
			size_t j = i - WINDOW;

			ck_assert_msg(spoke_future_wait(&f[j], deadline_ms(30000)) == 0,
				      "call %zu: %s", j, spoke_errmsg());
			ck_assert_uint_eq(f[j].reply_len, j % 50 == 0 ? BIG : 4 + j % 61);
			check_pattern(rep[j], f[j].reply_len, (uint8_t)j);
			done++;
		}
		req[i] = pattern(n, (uint8_t)i);
		rep[i] = malloc(n);
		ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, req[i], n, rep[i], n, &f[i]), 0);
	}
	for (size_t j = N - WINDOW; j < N; j++) {
		ck_assert_int_eq(spoke_future_wait(&f[j], deadline_ms(30000)), 0);
		ck_assert_uint_eq(f[j].reply_len, j % 50 == 0 ? BIG : 4 + j % 61);
		check_pattern(rep[j], f[j].reply_len, (uint8_t)j);
		done++;
	}
	ck_assert_uint_eq(done, N);
	for (size_t i = 0; i < N; i++) {
		free(req[i]);
		free(rep[i]);
	}
	spoke_actor_close(a);
}
END_TEST

struct thread_arg {
	spoke_actor *a;
	uint8_t seed;
	int failures;
};

static void *caller(void *p)
{
	struct thread_arg *t = p;
	uint8_t req[256], rep[256];
	size_t got;

	for (int i = 0; i < 500; i++) {
		size_t n = 1 + (size_t)(i * 7 + t->seed) % sizeof(req);

		for (size_t k = 0; k < n; k++)
			req[k] = probe_byte(t->seed, k + (size_t)i);
		if (spoke_call(t->a, PROBE_ECHO, req, n, rep, sizeof(rep), &got,
			       deadline_ms(10000)) != 0 ||
		    got != n || memcmp(req, rep, n) != 0)
			t->failures++;
	}
	return NULL;
}

START_TEST(one_handle_many_threads)
{
	spoke_actor *a = spawn_t("mt");
	struct thread_arg args[8];
	pthread_t th[8];

	for (int i = 0; i < 8; i++) {
		args[i] = (struct thread_arg){ a, (uint8_t)(i * 31), 0 };
		pthread_create(&th[i], NULL, caller, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].failures, 0);
	}
	on_t(a);
	spoke_actor_close(a);
}
END_TEST

/* A cluster of the harness with one agent, no SPOKE_* changed. */
static void setup_plain(void)
{
	fixture_start_with(NULL, NULL);
	stretch_client();
}

static Suite *calls_suite(void)
{
	Suite *s = suite_create("calls");
	int timeout = (int)(60 * slow);
	TCase *tc = tcase_create("calls");

	tcase_add_checked_fixture(tc, setup, fixture_teardown);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, transport_logged_once);
	tcase_add_loop_test(tc, echo_0B_to_64MiB, 0, sizeof(echo_sizes) / sizeof(echo_sizes[0]));
	tcase_add_test(tc, reply_too_big_for_buffer);
	tcase_add_test(tc, call_obj_packs_and_unpacks_in_place);
	tcase_add_test(tc, user_registered_buffers);
	tcase_add_test(tc, large_windows_complete);
	tcase_add_test(tc, replies_fill_the_pipe);
	tcase_add_test(tc, short_wait_spares_the_window);
	tcase_add_test(tc, sync_and_async_mixed);
	tcase_add_test(tc, timeout_then_recover);
	tcase_add_test(tc, timeouts_of_threads_on_one_handle);
	tcase_add_test(tc, reuse_after_timeout);
	tcase_add_test(tc, in_flight_future_refused);
	tcase_add_test(tc, drop_after_timeout);
	tcase_add_test(tc, close_completes_pending_futures);
	tcase_add_test(tc, close_waits_for_running_calls);
	tcase_add_test(tc, worker_death_fails_calls_in_flight);
	tcase_add_test(tc, client_death_mid_call);
	tcase_add_test(tc, restarted_actor_is_dead_to_old_handle);
	tcase_add_test(tc, async_enospc_has_its_message);
	tcase_add_test(tc, call_obj_keeps_serializer_codes);
	tcase_add_test(tc, request_over_the_clients_maximum);
	tcase_add_test(tc, reply_over_the_clients_maximum);
	suite_add_tcase(s, tc);

	tc = tcase_create("methods");
	tcase_add_checked_fixture(tc, setup_plain, fixture_teardown);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, method_codes_come_back_as_emethod);
	tcase_add_test(tc, method_fail_gives_its_own_message);
	tcase_add_test(tc, no_such_method_is_the_runtimes);
	tcase_add_test(tc, call_obj_and_futures_see_emethod);
	tcase_add_test(tc, futures_keep_their_method_errors);
	tcase_add_test(tc, method_status_is_per_thread);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits"); /* each test starts the cluster it needs */
	tcase_add_checked_fixture(tc, NULL, fixture_teardown);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, reply_over_workers_maximum);
	tcase_add_test(tc, request_over_workers_maximum);
	suite_add_tcase(s, tc);

	/* The threaded cases, also run under ThreadSanitizer (make check-tsan:
	 * CK_RUN_CASE=threads, over TCP). */
	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup, fixture_teardown);
	tcase_set_timeout(tc, timeout);
	tcase_add_test(tc, many_async_calls_in_flight);
	tcase_add_test(tc, one_handle_many_threads);
	suite_add_tcase(s, tc);
	return s;
}

/* Whether transport T can be had here, asked of Spoke itself in a child
 * process (this one stays clean for the forked tests): a cluster of the
 * harness, a Probe, a handle over TCP moved to T.  0: yes; 77: not in this
 * Spoke (the reason printed); anything else: a failure. */
static int transport_here(void)
{
	pid_t kid;
	int status = 0;

	fflush(stdout);
	fflush(stderr);
	kid = fork();
	if (kid < 0)
		return 99;
	if (kid == 0) {
		struct cluster c;
		spoke_client *sc = NULL;
		spoke_actor *a = NULL;
		int rc, code = 1;

		unsetenv("SPOKE_TRANSPORT"); /* the workers: every transport they have */
		if (cluster_start(&c) < 0 || cluster_add_agent(&c, "n1", "0-3") < 0 ||
		    cluster_client(&c, &sc) < 0 ||
		    spoke_spawn(sc, "Probe", "probe", NULL, 0, NULL) < 0) {
			printf("test_calls: no cluster to ask (%s)\n", spoke_errmsg());
			goto out;
		}
		setenv("SPOKE_TRANSPORT", "tcp", 1);
		if (spoke_actor_open(sc, "probe", &a, 0) < 0) {
			printf("test_calls: cannot open the probe (%s)\n", spoke_errmsg());
			goto out;
		}
		rc = spoke_actor_use_transport(a, T, 10000);
		if (rc == 0 && strcmp(spoke_actor_transport(a), T) == 0) {
			code = 0;
		} else if ((rc == SPOKE_EINVAL || rc == SPOKE_ETRANSPORT || rc == SPOKE_ERDMA) &&
			   strstr(spoke_errmsg(), "built without a transport '")) {
			printf("SKIP: %s: this Spoke has no transport %s\n", spoke_errmsg(), T);
			code = 77;
		} else {
			printf("test_calls: spoke_actor_use_transport(%s): %s (%s), the handle on %s\n",
			       T, spoke_strerror(rc), spoke_errmsg(), spoke_actor_transport(a));
		}
out:
		fflush(stdout);
		spoke_actor_close(a);
		spoke_client_close(sc);
		cluster_stop(&c);
		_exit(code);
	}
	if (waitpid(kid, &status, 0) != kid)
		return 99;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(void)
{
	const char *s = getenv("SPOKE_TEST_SLOW");
	SRunner *sr;
	int rc, failed;

	T = getenv("SPOKE_TEST_TRANSPORT");
	if (!T || (strcmp(T, "tcp") != 0 && strcmp(T, "shm") != 0 && strcmp(T, "rdma") != 0)) {
		fprintf(stderr, "test_calls: SPOKE_TEST_TRANSPORT=%s: expected tcp, shm or rdma "
			"(tests/calls/tcp.sh, shm.sh and rdma.sh set it)\n", T ? T : "(unset)");
		return 99;
	}
	if (s && *s) {
		slow = strtod(s, NULL);
		if (slow < 1)
			slow = 1;
	}
	if (strcmp(T, "rdma") == 0) {
#if HAVE_RDMA
		char addr[64];

		rc = harness_rdma_probe(addr, sizeof(addr));
		if (rc)
			return rc;
		setenv("SPOKE_TEST_ADDR", addr, 1);
		printf("calls over RDMA on %s\n", addr);
#else
		printf("SKIP: this Spoke was built without RDMA\n");
		return 77;
#endif
	}
	setenv("SPOKE_LOG", "info", 0);
	rc = transport_here();
	if (rc)
		return rc;
	/* The whole cluster on T: the client, and the agents and workers the
	 * tests start, which inherit it. */
	setenv("SPOKE_TRANSPORT", T, 1);
	printf("calls over %s (SPOKE_TEST_SLOW=%g)\n", T, slow);
	fflush(stdout);
	sr = srunner_create(calls_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
