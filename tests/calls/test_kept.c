/* test_kept.c - calls answered after their method returned, over the
 * transport of $SPOKE_TEST_TRANSPORT (tcp.sh, shm.sh and rdma.sh run it
 * after test_calls, which checks that the transport can be had here):
 * deferred replies finished from another thread while the worker serves
 * others, finished twice (refused), failed, kept in order behind each
 * other on one connection, cancelled by a client's death (the actor sees
 * it), refused where they cannot be kept; an engine on the worker's timer
 * batching 16 callers; max_concurrency 4 running 4 blocking calls at once
 * and never 5.  The actors are in tests/harness/kept_actor.c. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../harness/fixture.h"
#include "../harness/kept.h"
#if HAVE_RDMA
#include "../harness/rdmadev.h"
#endif

static const char *T;
static double slow = 1;

static double bound(double ms)
{
	return ms * slow;
}

/* Spawns an actor of type and opens it, on the transport under test. */
static spoke_actor *spawn_type(const char *type, const char *name)
{
	spoke_actor *a = NULL;
	int rc = spoke_spawn(client, type, name, NULL, 0, NULL);

	ck_assert_msg(rc == 0, "spawn %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
	rc = spoke_actor_open(client, name, &a, 0);
	ck_assert_msg(rc == 0, "open %s: %s (%s)", name, spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(strcmp(spoke_actor_transport(a), T) == 0, "the handle is on %s, not %s",
		      spoke_actor_transport(a), T);
	return a;
}

static size_t later_req(uint8_t *b, uint32_t ms, const char *text)
{
	memcpy(b, &ms, 4);
	memcpy(b + 4, text, strlen(text));
	return 4 + strlen(text);
}

static uint32_t u32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* ---- deferred replies ---- */

struct slow_call {
	spoke_actor *a;
	double start, end;
	int rc;
	char rep[32];
	size_t n;
};

static void *call_later(void *arg)
{
	struct slow_call *s = arg;
	uint8_t req[32];
	size_t len = later_req(req, 400, "answered later");

	s->start = now_ms();
	s->rc = spoke_call(s->a, KEEP_ECHO_LATER, req, len, s->rep, sizeof(s->rep), &s->n,
			   (int)bound(10000));
	s->end = now_ms();
	return NULL;
}

/* A kept call answered 400 ms later by another thread of the actor's, with
 * the bytes of its kept request; meanwhile the worker answers another
 * caller's kept call (a connection of its own) at once. */
START_TEST(deferred_reply_from_another_thread)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	struct slow_call s = { .a = a };
	uint8_t req[16], rep[16];
	size_t n = 0, len = later_req(req, 0, "quick");
	pthread_t t;
	double t0;
	int rc;

	ck_assert_int_eq(pthread_create(&t, NULL, call_later, &s), 0);
	usleep(100 * 1000);
	t0 = now_ms();
	rc = spoke_call(a, KEEP_ECHO_LATER, req, len, rep, sizeof(rep), &n, (int)bound(5000));
	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_eq(n, 5);
	ck_assert(memcmp(rep, "quick", 5) == 0);
	pthread_join(t, NULL);
	ck_assert_msg(s.rc == 0, "%s", spoke_strerror(s.rc));
	ck_assert_uint_eq(s.n, strlen("answered later"));
	ck_assert(memcmp(s.rep, "answered later", s.n) == 0);
	ck_assert_msg(s.end - s.start >= 390, "answered after %.0f ms, before its 400",
		      s.end - s.start);
	ck_assert_msg(t0 < s.end, "the quick call started after the slow one ended");
	spoke_actor_close(a);
}
END_TEST

START_TEST(finish_twice_refused)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	char rep[8];
	int32_t second;
	size_t n = 0;
	int rc = spoke_call(a, KEEP_TWICE, NULL, 0, rep, sizeof(rep), &n, (int)bound(5000));

	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_eq(n, 3);
	ck_assert(memcmp(rep, "one", 3) == 0);
	rc = spoke_call(a, KEEP_LAST, NULL, 0, &second, sizeof(second), &n, (int)bound(5000));
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(second, SPOKE_EINVAL);
	spoke_actor_close(a);
}
END_TEST

START_TEST(deferred_failure_is_the_methods)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	uint8_t req[8];
	char rep[64];
	size_t n = 0, len = later_req(req, 50, "");
	int rc = spoke_call(a, KEEP_FAIL_LATER, req, len, rep, sizeof(rep), &n, (int)bound(5000));

	ck_assert_msg(rc == SPOKE_EMETHOD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_int_eq(spoke_method_status(), -EIO);
	ck_assert_msg(strstr(spoke_errmsg(), "method fail_later of actor k failed: disk on fire"),
		      "%s", spoke_errmsg());
	spoke_actor_close(a);
}
END_TEST

/* Two asynchronous calls on one connection: the second, answered at once
 * by its method, comes after the first, kept for 300 ms (replies go in the
 * order of their calls). */
START_TEST(kept_calls_keep_their_order)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	uint8_t r1[16], r2[16];
	char rep1[16], rep2[16];
	size_t l1 = later_req(r1, 300, "first"), l2 = later_req(r2, 0, "second");
	spoke_future f1, f2;
	double t0 = now_ms(), t2;
	int rc;

	ck_assert_int_eq(spoke_call_async(a, KEEP_ECHO_LATER, r1, l1, rep1, sizeof(rep1), &f1), 0);
	ck_assert_int_eq(spoke_call_async(a, KEEP_ECHO_LATER, r2, l2, rep2, sizeof(rep2), &f2), 0);
	rc = spoke_future_wait(&f2, (int)bound(5000));
	t2 = now_ms() - t0;
	ck_assert_msg(rc == 0, "second: %s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_int_eq(spoke_future_wait(&f1, (int)bound(5000)), 0);
	ck_assert_uint_eq(f1.reply_len, 5);
	ck_assert(memcmp(rep1, "first", 5) == 0);
	ck_assert_uint_eq(f2.reply_len, 6);
	ck_assert(memcmp(rep2, "second", 6) == 0);
	ck_assert_msg(t2 >= 290, "the second reply came after %.0f ms, before the first's 300", t2);
	spoke_actor_close(a);
}
END_TEST

START_TEST(defer_refused_where_it_cannot_be)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	char rep[256];
	size_t n = 0;
	int rc = spoke_call(a, KEEP_DEFER_WRONG, NULL, 0, rep, sizeof(rep) - 1, &n, (int)bound(5000));

	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	rep[n] = '\0'; /* a packed string: u32 length, then its bytes */
	ck_assert_msg(n > 5 && strstr(rep + 4, "spoke_call_finish: NULL context"), "%.*s", (int)n,
		      rep);
	rc = spoke_call(a, KEEP_HOOKS_REFUSED, NULL, 0, rep, sizeof(rep) - 1, &n, (int)bound(5000));
	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	rep[n] = '\0';
	ck_assert_msg(strstr(rep + 4, "spoke_worker_watch"), "%.*s", (int)n, rep);
	spoke_actor_close(a);
}
END_TEST

/* A kept call that is never answered: at its caller's deadline (the
 * call's timeout, carried by its CALL) the runtime answers it
 * SPOKE_ETIMEDOUT and the actor sees it cancelled; the connection goes on
 * with the next call.  A method reads the time its caller has left. */
START_TEST(deadline_of_a_kept_call)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	uint8_t rep[16];
	char out[16];
	spoke_future f;
	int64_t left = 0;
	size_t n = 0;
	double t0 = now_ms();
	int rc;

	ck_assert_int_eq(spoke_call_async(a, KEEP_FOREVER, NULL, 0, out, sizeof(out), &f), 0);
	rc = spoke_future_wait(&f, 10000);
	ck_assert_msg(rc == SPOKE_ETIMEDOUT || rc == SPOKE_EMETHOD, "%s (%s)", spoke_strerror(rc),
		      spoke_errmsg());
	(void)t0;
	ck_assert_int_eq(spoke_call(a, KEEP_CANCELLED, NULL, 0, rep, sizeof(rep), &n, 5000), 0);
	ck_assert_uint_eq(u32_at(rep), 1);
	ck_assert_int_eq((int32_t)u32_at(rep + 4), SPOKE_ETIMEDOUT);
	rc = spoke_call(a, KEEP_TIME_LEFT, NULL, 0, &left, sizeof(left), &n, 4000);
	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(left > 3000 && left <= 4000, "the method saw %lld ms left of 4000",
		      (long long)left);
	spoke_actor_close(a);
}
END_TEST

/* ---- cancellation by the client's death ---- */

static void kept_then_wait(int ready)
{
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	char rep[8];
	size_t n;

	if (cluster_client(&cl, &c) < 0 || spoke_actor_open(c, "k", &a, 0) != 0)
		_exit(1);
	if (write(ready, "r", 1) != 1)
		_exit(1);
	spoke_call(a, KEEP_FOREVER, NULL, 0, rep, sizeof(rep), &n, 60000);
	_exit(2);
}

/* A client killed while its call is kept: the actor's cancel callback runs
 * (and its finish says SPOKE_ECANCELED), within a second. */
START_TEST(client_death_cancels_kept_calls)
{
	spoke_actor *a;
	uint8_t rep[8];
	int p[2], status;
	size_t n = 0;
	pid_t kid;
	char r;
	double t0;

	/* The child opens the first handle: a process must not use RDMA
	 * devices its parent opened (librdmacm keeps them open). */
	ck_assert_int_eq(spoke_spawn(client, "Keeper", "k", NULL, 0, NULL), 0);
	ck_assert_int_eq(pipe(p), 0);
	fflush(stdout);
	kid = fork();
	ck_assert_int_ge(kid, 0);
	if (kid == 0) {
		close(p[0]);
		kept_then_wait(p[1]);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &r, 1), 1);
	close(p[0]);
	ck_assert_int_eq(spoke_actor_open(client, "k", &a, 0), 0);
	ck_assert_str_eq(spoke_actor_transport(a), T);
	usleep(300 * 1000); /* its call is in */
	ck_assert_int_eq(spoke_call(a, KEEP_CANCELLED, NULL, 0, rep, sizeof(rep), &n, 5000), 0);
	ck_assert_uint_eq(u32_at(rep), 0);
	kill(kid, SIGKILL);
	waitpid(kid, &status, 0);
	t0 = now_ms();
	do {
		ck_assert_int_eq(spoke_call(a, KEEP_CANCELLED, NULL, 0, rep, sizeof(rep), &n, 5000),
				 0);
		if (u32_at(rep))
			break;
		usleep(10 * 1000);
	} while (now_ms() - t0 < bound(3000));
	ck_assert_msg(u32_at(rep) == 1, "%u cancels seen %.0f ms after the kill", u32_at(rep),
		      now_ms() - t0);
	ck_assert_int_eq((int32_t)u32_at(rep + 4), SPOKE_ECANCELED);
	ck_assert_msg(now_ms() - t0 < bound(1000), "the cancel came %.0f ms after the kill",
		      now_ms() - t0);
	spoke_actor_close(a);
}
END_TEST

/* A kept call given up by its caller (spoke_future_cancel): the future
 * completes SPOKE_ECANCELED at once, the actor's cancel callback runs
 * within a second, and the handle's pipelined connection serves the next
 * call (the future reused). */
START_TEST(future_cancel_reaches_the_actor)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	uint8_t rep[16], req[16];
	char out[16];
	spoke_future f;
	size_t n = 0, len;
	double t0;
	int rc;

	ck_assert_int_eq(spoke_call_async(a, KEEP_FOREVER, NULL, 0, out, sizeof(out), &f), 0);
	usleep(200 * 1000); /* its call is in, and kept */
	t0 = now_ms();
	ck_assert_int_eq(spoke_future_cancel(&f), 0);
	ck_assert_msg(now_ms() - t0 < 50, "cancel took %.1f ms", now_ms() - t0);
	rc = spoke_future_wait(&f, 0);
	ck_assert_msg(rc == SPOKE_ECANCELED, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	do {
		ck_assert_int_eq(spoke_call(a, KEEP_CANCELLED, NULL, 0, rep, sizeof(rep), &n, 5000),
				 0);
		if (u32_at(rep))
			break;
		usleep(1000);
	} while (now_ms() - t0 < bound(3000));
	ck_assert_msg(u32_at(rep) == 1, "the actor never saw the cancel");
	ck_assert_msg(now_ms() - t0 < bound(1000), "the actor saw the cancel after %.0f ms",
		      now_ms() - t0);
	ck_assert_int_eq((int32_t)u32_at(rep + 4), SPOKE_ECANCELED);
	len = later_req(req, 0, "again");
	ck_assert_int_eq(spoke_call_async(a, KEEP_ECHO_LATER, req, len, out, sizeof(out), &f), 0);
	rc = spoke_future_wait(&f, (int)bound(5000));
	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_uint_eq(f.reply_len, 5);
	/* Cancelling a complete future changes nothing. */
	ck_assert_int_eq(spoke_future_cancel(&f), 0);
	ck_assert_int_eq(spoke_future_wait(&f, 0), 0);
	ck_assert_int_eq(spoke_future_cancel(NULL), SPOKE_EINVAL);
	spoke_actor_close(a);
}
END_TEST

/* Cancelled before its method ran (it waited behind a kept call on its
 * connection): it never runs; the connection goes on. */
START_TEST(cancel_before_the_method_runs)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_future fa, fb;
	char ra[16], rb[16];
	uint32_t ran = 0;
	size_t n;

	ck_assert_int_eq(spoke_call_async(a, KEEP_FOREVER, NULL, 0, ra, sizeof(ra), &fa), 0);
	ck_assert_int_eq(spoke_call_async(a, KEEP_COUNT, NULL, 0, rb, sizeof(rb), &fb), 0);
	usleep(200 * 1000); /* both in: the first kept, the second behind it */
	ck_assert_int_eq(spoke_future_cancel(&fb), 0);
	ck_assert_int_eq(spoke_future_cancel(&fa), 0);
	ck_assert_int_eq(spoke_future_wait(&fb, 0), SPOKE_ECANCELED);
	ck_assert_int_eq(spoke_future_wait(&fa, 0), SPOKE_ECANCELED);
	/* The pipelined connection serves again: its next count is the first. */
	ck_assert_int_eq(spoke_call_async(a, KEEP_COUNT, NULL, 0, rb, sizeof(rb), &fb), 0);
	ck_assert_int_eq(spoke_future_wait(&fb, (int)bound(5000)), 0);
	memcpy(&ran, rb, 4);
	ck_assert_msg(ran == 1, "the count ran %u times, the cancelled call included", ran);
	ck_assert_int_eq(spoke_call(a, KEEP_COUNT, NULL, 0, &ran, 4, &n, 5000), 0);
	ck_assert_uint_eq(ran, 2);
	spoke_actor_close(a);
}
END_TEST

/* ---- an engine on the worker's loop ---- */

#define CALLERS 16

struct gen {
	spoke_actor *a;
	pthread_barrier_t *go;
	uint32_t want;
	int rc;
	uint8_t rep[8];
	size_t n;
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;

	pthread_barrier_wait(g->go);
	g->rc = spoke_call(g->a, KEEP_GENERATE, &g->want, 4, g->rep, sizeof(g->rep), &g->n,
			   (int)bound(20000));
	return NULL;
}

/* 16 callers, each asking for 200-215 tokens of a 1 ms step: each gets its
 * own count, the steps serve many of them at once, and the whole takes far
 * less than one after the other would (16 x 200 ms). */
START_TEST(engine_batches_its_callers)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	struct gen g[CALLERS];
	pthread_t t[CALLERS];
	pthread_barrier_t go;
	uint32_t peak = 0;
	double t0;

	pthread_barrier_init(&go, NULL, CALLERS + 1);
	for (int i = 0; i < CALLERS; i++) {
		g[i] = (struct gen){ .a = a, .go = &go, .want = 200 + i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, gen_main, &g[i]), 0);
	}
	t0 = now_ms();
	pthread_barrier_wait(&go);
	for (int i = 0; i < CALLERS; i++)
		pthread_join(t[i], NULL);
	t0 = now_ms() - t0;
	pthread_barrier_destroy(&go);
	for (int i = 0; i < CALLERS; i++) {
		ck_assert_msg(g[i].rc == 0, "caller %d: %s", i, spoke_strerror(g[i].rc));
		ck_assert_uint_eq(g[i].n, 8);
		ck_assert_uint_eq(u32_at(g[i].rep), g[i].want);
		if (u32_at(g[i].rep + 4) > peak)
			peak = u32_at(g[i].rep + 4);
	}
	ck_assert_msg(peak >= 8, "at most %u callers in one step", peak);
	ck_assert_msg(t0 < bound(CALLERS * 200 / 2), "16 callers took %.0f ms", t0);
	spoke_actor_close(a);
}
END_TEST

/* ---- max_concurrency ---- */

struct nap {
	spoke_actor *a;
	pthread_barrier_t *go;
	int rc;
};

static void *nap_main(void *arg)
{
	struct nap *s = arg;
	uint32_t ms = 300, r;
	size_t n;

	pthread_barrier_wait(s->go);
	s->rc = spoke_call(s->a, CONC_NAP, &ms, 4, &r, sizeof(r), &n, (int)bound(10000));
	return NULL;
}

/* Runs k blocking calls of 300 ms at once; the time they took. */
static double naps(spoke_actor *a, int k)
{
	struct nap s[8];
	pthread_t t[8];
	pthread_barrier_t go;
	double t0;

	pthread_barrier_init(&go, NULL, (unsigned)k + 1);
	for (int i = 0; i < k; i++) {
		s[i] = (struct nap){ .a = a, .go = &go };
		ck_assert_int_eq(pthread_create(&t[i], NULL, nap_main, &s[i]), 0);
	}
	pthread_barrier_wait(&go);
	t0 = now_ms();
	for (int i = 0; i < k; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < k; i++)
		ck_assert_msg(s[i].rc == 0, "call %d: %s", i, spoke_strerror(s[i].rc));
	return now_ms() - t0;
}

START_TEST(max_concurrency_runs_four_at_once)
{
	spoke_actor *a = spawn_type("Conc4", "c4");
	uint32_t peak = 0;
	uint8_t req[16];
	char rep[16];
	size_t n = 0, len;
	double ms = naps(a, 4);

	ck_assert_int_eq(spoke_call(a, CONC_PEAK, NULL, 0, &peak, 4, &n, 5000), 0);
	ck_assert_msg(peak == 4, "%u calls ran at once, not 4", peak);
	ck_assert_msg(ms < bound(900), "4 calls of 300 ms at once took %.0f ms", ms);
	/* Eight: never more than four at once, so at least two rounds. */
	ms = naps(a, 8);
	ck_assert_int_eq(spoke_call(a, CONC_PEAK, NULL, 0, &peak, 4, &n, 5000), 0);
	ck_assert_msg(peak == 4, "%u calls ran at once, over max_concurrency 4", peak);
	ck_assert_msg(ms >= 590, "8 calls of 300 ms, 4 at a time, took only %.0f ms", ms);
	/* A thread's method that keeps its call and answers it later. */
	len = later_req(req, 50, "zz");
	ck_assert_int_eq(spoke_call(a, KEEP_ECHO_LATER, req, len, rep, sizeof(rep), &n, 5000), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(memcmp(rep, "zz", 2) == 0);
	spoke_actor_close(a);
}
END_TEST

/* ---- streams ---- */

static uint32_t stats(spoke_actor *a, int i)
{
	uint8_t r[12];
	size_t n = 0;

	ck_assert_int_eq(spoke_call(a, KEEP_STREAM_STATS, NULL, 0, r, sizeof(r), &n, 5000), 0);
	ck_assert_uint_eq(n, 12);
	return u32_at(r + 4 * i);
}

static spoke_stream *start_stream(spoke_actor *a, uint32_t n, uint32_t size, uint32_t wait_ms)
{
	uint32_t req[3] = { n, size, wait_ms };
	spoke_stream *s = NULL;
	int rc = spoke_call_stream(a, KEEP_STREAM, req, sizeof(req), &s, 5000);

	ck_assert_msg(rc == 0, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Reads chunks first..n-1 of a KEEP_STREAM of size-byte chunks, checking
 * each; sleeps nap_us after each. */
static void read_chunks(spoke_stream *s, uint32_t first, uint32_t n, uint32_t size, int nap_us)
{
	uint8_t buf[8192];

	for (uint32_t i = first; i < n; i++) {
		size_t len = 0;
		int rc = spoke_stream_next(s, buf, sizeof(buf), &len, (int)bound(5000));

		ck_assert_msg(rc == 0, "chunk %u: %s (%s)", i, spoke_strerror(rc), spoke_errmsg());
		ck_assert_uint_eq(len, size);
		ck_assert_msg(u32_at(buf) == i, "chunk %u came as chunk %u", u32_at(buf), i);
		for (size_t k = 4; k < size; k++)
			if (buf[k] != (uint8_t)(i & 0xff))
				ck_abort_msg("byte %zu of chunk %u", k, i);
		if (nap_us)
			usleep((useconds_t)nap_us);
	}
}

static void expect_end(spoke_stream *s, int want)
{
	uint8_t buf[16];
	size_t len = 1;

	for (int k = 0; k < 2; k++) { /* and the same again */
		int rc = spoke_stream_next(s, buf, sizeof(buf), &len, (int)bound(5000));

		ck_assert_msg(rc == want, "%s (%s), not %s", spoke_strerror(rc), spoke_errmsg(),
			      spoke_strerror(want));
		ck_assert_uint_eq(len, 0);
	}
}

/* 1000 chunks of 16 B in order, then SPOKE_EOF (twice); the handle's
 * connection serves a call afterwards. */
START_TEST(stream_in_order)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s = start_stream(a, 1000, 16, 5000);
	uint8_t r[12];
	size_t n;

	read_chunks(s, 0, 1000, 16, 0);
	expect_end(s, SPOKE_EOF);
	spoke_stream_close(s);
	ck_assert_int_eq(spoke_call(a, KEEP_STREAM_STATS, NULL, 0, r, sizeof(r), &n, 5000), 0);
	spoke_actor_close(a);
}
END_TEST

/* A chunk larger than the reader's buffer: SPOKE_ENOSPC with its size, kept
 * for the next read; a plain method read as a stream is one chunk (its
 * reply) and the end; a method's failure ends the stream with it. */
START_TEST(stream_edges)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s = start_stream(a, 2, 100, 5000);
	uint8_t buf[128], req[8];
	size_t len = 0;
	int rc;

	rc = spoke_stream_next(s, buf, 10, &len, 5000);
	ck_assert_msg(rc == SPOKE_ENOSPC, "%s", spoke_strerror(rc));
	ck_assert_uint_eq(len, 100);
	read_chunks(s, 0, 2, 100, 0);
	expect_end(s, SPOKE_EOF);
	spoke_stream_close(s);

	ck_assert_int_eq(spoke_call_stream(a, KEEP_PID, NULL, 0, &s, 5000), 0);
	ck_assert_int_eq(spoke_stream_next(s, buf, sizeof(buf), &len, 5000), 0);
	ck_assert_uint_eq(len, 4);
	expect_end(s, SPOKE_EOF);
	spoke_stream_close(s);

	ck_assert_int_eq(spoke_call_stream(a, KEEP_FAIL_LATER, req, later_req(req, 10, ""), &s,
					   5000), 0);
	rc = spoke_stream_next(s, buf, sizeof(buf), &len, 5000);
	ck_assert_msg(rc == SPOKE_EMETHOD, "%s", spoke_strerror(rc));
	ck_assert_int_eq(spoke_method_status(), -EIO);
	ck_assert_msg(strstr(spoke_errmsg(), "disk on fire"), "%s", spoke_errmsg());
	expect_end(s, SPOKE_EMETHOD);
	ck_assert_msg(strstr(spoke_errmsg(), "disk on fire"), "kept: %s", spoke_errmsg());
	spoke_stream_close(s);

	/* A stream method called plainly: its emit is refused, saying why. */
	{
		uint32_t sreq[3] = { 3, 8, 100 };
		char rep[64];

		rc = spoke_call(a, KEEP_STREAM, sreq, sizeof(sreq), rep, sizeof(rep), &len, 5000);
		ck_assert_msg(rc == SPOKE_EMETHOD, "%s", spoke_strerror(rc));
		ck_assert_msg(strstr(spoke_errmsg(), "is not a stream"), "%s", spoke_errmsg());
	}
	ck_assert_int_eq(spoke_call_stream(NULL, 1, NULL, 0, &s, 0), SPOKE_EINVAL);
	ck_assert_int_eq(spoke_stream_next(NULL, buf, 1, &len, 0), SPOKE_EINVAL);
	spoke_actor_close(a);
}
END_TEST

/* A reader that stops for a second: 16 MiB of chunks cannot all wait in
 * the worker: the producer's emits are refused (SPOKE_EAGAIN: throttled)
 * while nothing is read, and every chunk still comes, in order. */
START_TEST(stream_slow_reader_throttles_the_producer)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s = start_stream(a, 4096, 4096, 0);

	usleep(1000 * 1000);
	ck_assert_msg(stats(a, 0) > 0, "no emit was refused while nobody read");
	read_chunks(s, 0, 4096, 4096, 0);
	expect_end(s, SPOKE_EOF);
	spoke_stream_close(s);
	spoke_actor_close(a);
}
END_TEST

/* Cancelled after 10 chunks: the reader gets SPOKE_ECANCELED at once, the
 * producer's next emit SPOKE_ECANCELED within a second; a stream cut by
 * the actor's death ends SPOKE_EDEAD. */
START_TEST(stream_cancel_and_death)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s = start_stream(a, 1000000, 16, 5000);
	uint8_t buf[16];
	uint32_t pid = 0;
	size_t len;
	double t0;
	int rc;

	read_chunks(s, 0, 10, 16, 0);
	t0 = now_ms();
	ck_assert_int_eq(spoke_stream_cancel(s), 0);
	ck_assert_msg(now_ms() - t0 < 50, "cancel took %.1f ms", now_ms() - t0);
	expect_end(s, SPOKE_ECANCELED);
	spoke_stream_close(s);
	while (stats(a, 1) == 0 && now_ms() - t0 < bound(3000))
		usleep(1000);
	ck_assert_msg(stats(a, 1) == 1, "the producer never saw its cancel");
	ck_assert_msg(now_ms() - t0 < bound(1000), "the producer saw its cancel after %.0f ms",
		      now_ms() - t0);

	ck_assert_int_eq(spoke_call(a, KEEP_PID, NULL, 0, &pid, 4, &len, 5000), 0);
	s = start_stream(a, 1000000, 16, 5000);
	read_chunks(s, 0, 5, 16, 0);
	kill((pid_t)pid, SIGKILL);
	t0 = now_ms();
	do
		rc = spoke_stream_next(s, buf, sizeof(buf), &len, (int)bound(5000));
	while (rc == 0);
	ck_assert_msg(rc == SPOKE_EDEAD, "%s (%s)", spoke_strerror(rc), spoke_errmsg());
	ck_assert_msg(now_ms() - t0 < bound(2000), "the end came %.0f ms after the kill",
		      now_ms() - t0);
	spoke_stream_close(s);
	spoke_actor_close(a);
}
END_TEST

/* Closing a handle under an open stream ends it SPOKE_ECLOSED; the stream
 * object stays usable until its own close. */
START_TEST(stream_outlives_its_handle)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s = start_stream(a, 1000000, 16, 5000);
	uint8_t buf[16];
	size_t len;

	read_chunks(s, 0, 3, 16, 0);
	spoke_actor_close(a);
	ck_assert_int_eq(spoke_stream_next(s, buf, sizeof(buf), &len, 1000), SPOKE_ECLOSED);
	ck_assert_int_eq(spoke_stream_cancel(s), 0);
	spoke_stream_close(s);
}
END_TEST

/* 16 streams from the engine's steps on the worker's loop, one token per
 * step each; 4 of them cancelled midway: the 12 others get every token in
 * order, then the end. */
START_TEST(engine_streams_with_cancels)
{
	spoke_actor *a = spawn_type("Keeper", "k");
	spoke_stream *s[16];
	uint8_t buf[16];
	size_t len;

	for (uint32_t i = 0; i < 16; i++) {
		uint32_t want = 100 + i;

		ck_assert_int_eq(spoke_call_stream(a, KEEP_GENERATE, &want, 4, &s[i], 5000), 0);
	}
	for (uint32_t tok = 0; tok < 116; tok++)
		for (uint32_t i = 0; i < 16; i++) {
			int rc;

			if (tok >= 100 + i || (i % 4 == 3 && tok > 50))
				continue;
			if (i % 4 == 3 && tok == 50) {
				ck_assert_int_eq(spoke_stream_cancel(s[i]), 0);
				continue;
			}
			rc = spoke_stream_next(s[i], buf, sizeof(buf), &len, (int)bound(5000));
			ck_assert_msg(rc == 0, "stream %u token %u: %s (%s)", i, tok,
				      spoke_strerror(rc), spoke_errmsg());
			ck_assert_uint_eq(len, 4);
			ck_assert_uint_eq(u32_at(buf), tok);
		}
	for (uint32_t i = 0; i < 16; i++) {
		int rc = spoke_stream_next(s[i], buf, sizeof(buf), &len, (int)bound(5000));

		/* the REPLY's body: u32 steps, u32 peak, as a last chunk */
		if (i % 4 == 3) {
			ck_assert_int_eq(rc, SPOKE_ECANCELED);
		} else {
			ck_assert_msg(rc == 0, "stream %u: %s (%s)", i, spoke_strerror(rc),
				      spoke_errmsg());
			ck_assert_uint_eq(len, 8);
			ck_assert_uint_eq(u32_at(buf), 100 + i);
			expect_end(s[i], SPOKE_EOF);
		}
		spoke_stream_close(s[i]);
	}
	spoke_actor_close(a);
}
END_TEST

static Suite *kept_suite(void)
{
	Suite *s = suite_create("kept");
	/* Every case here is threaded (the actors' threads answer calls): all
	 * of them run under ThreadSanitizer too (make check-tsan's
	 * CK_RUN_CASE=threads). */
	TCase *tc = tcase_create("threads");

	tcase_add_checked_fixture(tc, fixture_setup, fixture_teardown);
	tcase_set_timeout(tc, (int)(60 * slow));
	tcase_add_test(tc, deferred_reply_from_another_thread);
	tcase_add_test(tc, finish_twice_refused);
	tcase_add_test(tc, deferred_failure_is_the_methods);
	tcase_add_test(tc, kept_calls_keep_their_order);
	tcase_add_test(tc, defer_refused_where_it_cannot_be);
	tcase_add_test(tc, deadline_of_a_kept_call);
	tcase_add_test(tc, client_death_cancels_kept_calls);
	tcase_add_test(tc, future_cancel_reaches_the_actor);
	tcase_add_test(tc, cancel_before_the_method_runs);
	tcase_add_test(tc, engine_batches_its_callers);
	tcase_add_test(tc, max_concurrency_runs_four_at_once);
	tcase_add_test(tc, stream_in_order);
	tcase_add_test(tc, stream_edges);
	tcase_add_test(tc, stream_slow_reader_throttles_the_producer);
	tcase_add_test(tc, stream_cancel_and_death);
	tcase_add_test(tc, stream_outlives_its_handle);
	tcase_add_test(tc, engine_streams_with_cancels);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *s = getenv("SPOKE_TEST_SLOW");
	SRunner *sr;
	int failed;

	T = getenv("SPOKE_TEST_TRANSPORT");
	if (!T || (strcmp(T, "tcp") != 0 && strcmp(T, "shm") != 0 && strcmp(T, "rdma") != 0)) {
		fprintf(stderr, "test_kept: SPOKE_TEST_TRANSPORT=%s: expected tcp, shm or rdma\n",
			T ? T : "(unset)");
		return 99;
	}
	if (s && *s && strtod(s, NULL) > 1)
		slow = strtod(s, NULL);
	if (strcmp(T, "rdma") == 0) {
#if HAVE_RDMA
		char addr[64];
		int rc = harness_rdma_probe(addr, sizeof(addr));

		if (rc)
			return rc;
		setenv("SPOKE_TEST_ADDR", addr, 1);
#else
		printf("SKIP: this Spoke was built without RDMA\n");
		return 77;
#endif
	}
	setenv("SPOKE_TRANSPORT", T, 1);
	printf("kept calls over %s (SPOKE_TEST_SLOW=%g)\n", T, slow);
	fflush(stdout);
	sr = srunner_create(kept_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
