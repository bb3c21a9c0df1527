/* test_async.c - asynchronous calls, futures and handle lifecycles on a real
 * loopback cluster (fixture.h): windows of any size complete, a future
 * given up after a timeout can be reused or dropped, closing a handle or
 * its client leaves nothing dangling, NULL arguments are refused by name,
 * errors carry their own message, and an actor calling itself fails at
 * once.  Every wait is bounded: a hang shows as a failure, not a stall. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/probe.h"

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- 1. windows larger than the socket buffers and the worker's ---- */

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
	ck_assert_msg(now_ms() - t0 < 4000, "%zu x %zu B took %.0f ms", n, size, now_ms() - t0);
	free(f);
	free(req);
	free(rep);
}

START_TEST(large_windows_complete)
{
	spoke_actor *a = spawn_open("w1", NULL);

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

/* A window that deadlocks whatever the machine's socket buffers: 64 MiB of
 * replies (more than the client's receive buffer, the worker's send buffer
 * and its 8 MiB of queued output together) ask for only 5 bytes each, then
 * 64 MiB of requests (more than the worker's receive buffer and the
 * client's send buffer) need the worker to read again. */
START_TEST(replies_fill_the_pipe)
{
	enum { FILLS = 16, SINKS = 64 };
	const uint32_t n = 4u << 20, big = 1u << 20;
	spoke_actor *a = spawn_open("w2", NULL);
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
	ck_assert_msg(now_ms() - t0 < 4000, "took %.0f ms", now_ms() - t0);
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
	spoke_actor *a = spawn_open("w3", NULL);
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
	ck_assert_int_eq(spoke_future_wait(&fb, 5000), 0);
	for (size_t k = 0; k < n; k += 4093)
		if (big[k] != probe_byte(7, k))
			ck_abort_msg("byte %zu differs", k);
	ck_assert_int_eq(spoke_future_wait(&fs[1], 5000), 0);
	ck_assert_uint_eq(got[1], 2);
	free(big);
	spoke_actor_close(a);
}
END_TEST

/* ---- 2. futures given up after a timeout ---- */

START_TEST(reuse_after_timeout)
{
	spoke_actor *a = spawn_open("r1", NULL);
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
	ck_assert_int_eq(spoke_future_wait(&f, 3000), 0);
	fprintf(stderr, "reuse: waited %.0f ms, %.1f ms of CPU\n", now_ms() - t0, cpu_ms() - c0);
	ck_assert_uint_eq(f.reply_len, 4);
	ck_assert_uint_eq(got, echo);
	ck_assert_msg(cpu_ms() - c0 < 100, "the wait burnt %.0f ms of CPU in %.0f ms",
		      cpu_ms() - c0, now_ms() - t0);
	spoke_actor_close(a);
}
END_TEST

START_TEST(in_flight_future_refused)
{
	spoke_actor *a = spawn_open("r2", NULL);
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
	spoke_actor *a = spawn_open("r3", NULL);
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
			ck_assert_int_eq(spoke_future_wait(&f[done], 3000), 0);
			done++;
		}
		ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &req[i], 4, &rep[i], 4, &f[i]), 0);
	}
	for (; done < N; done++)
		ck_assert_int_eq(spoke_future_wait(&f[done], 3000), 0);
	for (size_t i = 0; i < N; i++)
		ck_assert_msg(f[i].reply_len == 4 && rep[i] == req[i], "call %zu: got %u, sent %u",
			      i, rep[i], req[i]);
	fprintf(stderr, "drop: %d calls behind 2 dropped futures in %.0f ms, %.1f ms of CPU\n", N,
		now_ms() - t0, cpu_ms() - c0);
	ck_assert_msg(cpu_ms() - c0 < 0.8 * (now_ms() - t0) + 50, "spinning: %.0f ms CPU in %.0f ms",
		      cpu_ms() - c0, now_ms() - t0);
	v = 5;
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, &v, 4, &rep[0], 4, &n, 0), 0);
	ck_assert_uint_eq(rep[0], 5);
	spoke_actor_close(a);
}
END_TEST

/* ---- 3. lifecycles ---- */

START_TEST(close_completes_pending_futures)
{
	spoke_actor *a = spawn_open("c1", NULL);
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
	ck_assert_msg(now_ms() - t0 < 500, "closing took %.0f ms", now_ms() - t0);
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
	struct napper p = { .a = spawn_open("c2", NULL) };
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

START_TEST(client_close_keeps_handles)
{
	spoke_actor *a = spawn_open("k1", NULL), *b = NULL;
	uint32_t v = 42, got = 0;
	spoke_future f;
	size_t n;

	spoke_client_close(client);
	ck_assert_int_eq(spoke_call(a, PROBE_ECHO, &v, 4, &got, 4, &n, 0), 0);
	ck_assert_uint_eq(got, 42);
	v = 43;
	ck_assert_int_eq(spoke_call_async(a, PROBE_ECHO, &v, 4, &got, 4, &f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_uint_eq(got, 43);
	/* What needs the hub is refused. */
	ck_assert_int_eq(spoke_actor_open(client, "k1", &b, 0), SPOKE_ECLOSED);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(spoke_errmsg(), "closed"), "message: %s", spoke_errmsg());
	spoke_actor_close(a); /* the last reference: frees the client */
	client = NULL;
}
END_TEST

/* ---- 4. NULL arguments ---- */

static spoke_actor *h; /* a live handle for the table */
static uint8_t buf[16];
static size_t len;
static spoke_future fut;

static int n_open_c(void) { spoke_actor *x; return spoke_actor_open(NULL, "n1", &x, 0); }
static int n_open_name(void) { spoke_actor *x; return spoke_actor_open(client, NULL, &x, 0); }
static int n_open_out(void) { return spoke_actor_open(client, "n1", NULL, 0); }
static int n_call_a(void) { return spoke_call(NULL, PROBE_ECHO, "x", 1, buf, 16, &len, 0); }
static int n_call_req(void) { return spoke_call(h, PROBE_ECHO, NULL, 5, buf, 16, &len, 0); }
static int n_call_reply(void) { return spoke_call(h, PROBE_ECHO, "x", 1, NULL, 16, &len, 0); }
static int n_obj_a(void) { return spoke_call_obj(NULL, PROBE_ECHO, NULL, NULL, NULL, NULL, 0); }
static int n_async_a(void) { return spoke_call_async(NULL, PROBE_ECHO, "x", 1, buf, 16, &fut); }
static int n_async_f(void) { return spoke_call_async(h, PROBE_ECHO, "x", 1, buf, 16, NULL); }
static int n_async_req(void) { return spoke_call_async(h, PROBE_ECHO, NULL, 5, buf, 16, &fut); }
static int n_async_reply(void) { return spoke_call_async(h, PROBE_ECHO, "x", 1, NULL, 16, &fut); }
static int n_wait_f(void) { return spoke_future_wait(NULL, 0); }
static int n_mr_a(void) { spoke_mr m; return spoke_mr_register(NULL, buf, 16, &m); }
static int n_mr_mr(void) { return spoke_mr_register(h, buf, 16, NULL); }
static int n_mr_addr(void) { spoke_mr m; return spoke_mr_register(h, NULL, 16, &m); }
static int n_callmr_a(void)
{
	return spoke_call_mr(NULL, PROBE_ECHO, NULL, 0, 0, NULL, 0, 0, &len, 0);
}
static int n_rdma_a(void) { return spoke_actor_init_rdma(NULL, 0); }
static const spoke_serializer no_fns = { NULL, NULL };
static int n_obj_pack(void) { return spoke_call_obj(h, PROBE_ECHO, &no_fns, buf, NULL, NULL, 0); }
static int n_obj_unpack(void) { return spoke_call_obj(h, PROBE_ECHO, NULL, NULL, &no_fns, buf, 0); }

START_TEST(null_arguments_refused_by_name)
{
	static const struct {
		const char *what, *arg;
		int (*fn)(void);
	} cases[] = {
		{ "spoke_actor_open(NULL client)", "c", n_open_c },
		{ "spoke_actor_open(NULL name)", "name", n_open_name },
		{ "spoke_actor_open(NULL out)", "out", n_open_out },
		{ "spoke_call(NULL handle)", "a", n_call_a },
		{ "spoke_call(NULL request of 5 B)", "req", n_call_req },
		{ "spoke_call(NULL reply, capacity 16)", "reply", n_call_reply },
		{ "spoke_call_obj(NULL handle)", "a", n_obj_a },
		{ "spoke_call_async(NULL handle)", "a", n_async_a },
		{ "spoke_call_async(NULL future)", "f", n_async_f },
		{ "spoke_call_async(NULL request of 5 B)", "req", n_async_req },
		{ "spoke_call_async(NULL reply, capacity 16)", "reply", n_async_reply },
		{ "spoke_future_wait(NULL)", "f", n_wait_f },
		{ "spoke_mr_register(NULL handle)", "a", n_mr_a },
		{ "spoke_mr_register(NULL mr)", "mr", n_mr_mr },
		{ "spoke_mr_register(NULL addr)", "addr", n_mr_addr },
		{ "spoke_call_mr(NULL handle)", "a", n_callmr_a },
		{ "spoke_actor_init_rdma(NULL)", "a", n_rdma_a },
		{ "spoke_call_obj(serializer without pack)", "req_ser->pack", n_obj_pack },
		{ "spoke_call_obj(serializer without unpack)", "rep_ser->unpack", n_obj_unpack },
	};
	uint32_t v = 11, got = 0;
	char want[64];
	size_t n;

	h = spawn_open("n1", NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = cases[i].fn();

		snprintf(want, sizeof(want), " %s is NULL", cases[i].arg);
		ck_assert_msg(rc == SPOKE_EINVAL, "%s: %s (%s)", cases[i].what, spoke_strerror(rc),
			      spoke_errmsg());
		ck_assert_msg(strstr(spoke_errmsg(), want), "%s: message '%s' does not say '%s'",
			      cases[i].what, spoke_errmsg(), want);
	}
	/* A future refused for a bad argument is complete with that error. */
	ck_assert_int_eq(spoke_future_wait(&fut, 0), SPOKE_EINVAL);
	/* The functions that return nothing take NULL quietly. */
	spoke_actor_close(NULL);
	spoke_actor_set_poll(NULL, 10);
	spoke_mr_deregister(NULL);
	ck_assert_ptr_nonnull(spoke_actor_transport(NULL));
	/* Nothing was sent: the handle is in step, on both paths. */
	ck_assert_int_eq(spoke_call(h, PROBE_ECHO, &v, 4, &got, 4, &n, 0), 0);
	ck_assert_uint_eq(got, 11);
	v = 12;
	ck_assert_int_eq(spoke_call_async(h, PROBE_ECHO, &v, 4, &got, 4, &fut), 0);
	ck_assert_int_eq(spoke_future_wait(&fut, 0), 0);
	ck_assert_uint_eq(got, 12);
	ck_assert_str_eq(spoke_errmsg(), "");
	spoke_actor_close(h);
}
END_TEST

/* ---- 5. messages ---- */

START_TEST(async_enospc_has_its_message)
{
	spoke_actor *a = spawn_open("m1", NULL);
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
	spoke_actor *a = spawn_open("m2", NULL);
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

/* ---- 6. an actor calling itself ---- */

START_TEST(self_call_fails_at_once)
{
	spoke_actor *a = spawn_open("selfish", NULL);
	char token[128] = "", req[512], rep[512];
	FILE *tf = fopen(cl.token_file, "r");
	int32_t rc = 0;
	uint32_t ms = 0;
	spoke_view v;
	const char *msg;
	size_t n = 0, mlen = 0;

	ck_assert_ptr_nonnull(tf);
	ck_assert_ptr_nonnull(fgets(token, sizeof(token), tf));
	fclose(tf);
	token[strcspn(token, "\n")] = '\0';
	n = (size_t)snprintf(req, sizeof(req), "%s", cl.hub_addr) + 1;
	n += (size_t)snprintf(req + n, sizeof(req) - n, "%s", token) + 1;
	ck_assert_int_eq(spoke_call(a, PROBE_SELF, req, n, rep, sizeof(rep), &n, 10000), 0);
	spoke_view_init(&v, rep, n);
	spoke_view_get_i32(&v, &rc);
	spoke_view_get_u32(&v, &ms);
	spoke_view_get_str(&v, &msg, &mlen);
	ck_assert_int_eq(spoke_view_error(&v), 0);
	ck_assert_msg(rc == SPOKE_ESELF, "self open: %s (%.*s) after %u ms", spoke_strerror(rc),
		      (int)mlen, msg, ms);
	ck_assert_msg(ms < 1000, "failing took %u ms", ms);
	ck_assert_msg(memmem(msg, mlen, "selfish", 7), "message: %.*s", (int)mlen, msg);
	/* The actor goes on serving. */
	ck_assert(cluster_alive((pid_t)actor_pid(a)));
	spoke_actor_close(a);
}
END_TEST

static Suite *async_suite(void)
{
	Suite *s = suite_create("async");
	TCase *tc = tcase_create("loopback");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, large_windows_complete);
	tcase_add_test(tc, replies_fill_the_pipe);
	tcase_add_test(tc, short_wait_spares_the_window);
	tcase_add_test(tc, reuse_after_timeout);
	tcase_add_test(tc, in_flight_future_refused);
	tcase_add_test(tc, drop_after_timeout);
	tcase_add_test(tc, close_completes_pending_futures);
	tcase_add_test(tc, close_waits_for_running_calls);
	tcase_add_test(tc, client_close_keeps_handles);
	tcase_add_test(tc, null_arguments_refused_by_name);
	tcase_add_test(tc, async_enospc_has_its_message);
	tcase_add_test(tc, call_obj_keeps_serializer_codes);
	tcase_add_test(tc, self_call_fails_at_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(async_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
