/* kept_actor.c - actors whose calls outlive their methods, for
 * tests/calls/test_kept.c: "Keeper" (deferred replies, finished from other
 * threads, twice, failed, cancelled, and a step engine on the worker's
 * timer that batches its callers) and "Conc4" (max_concurrency 4). */
#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "kept.h"

/* ---- Keeper ---- */

static atomic_int last_second_finish = 1; /* 1: none yet */
static atomic_int stream_eagains, stream_cancels, stream_refused = 1;
static atomic_int cancels;
static _Atomic uint64_t cancel_at_ns;
static atomic_int cancel_finish_rc = 1;

struct later {
	spoke_call_ctx *ctx;
	uint32_t ms;
	int status;
};

static void *finish_later(void *arg)
{
	struct later *l = arg;
	spoke_view req = spoke_call_request(l->ctx);

	usleep(l->ms * 1000);
	if (l->status < 0)
		spoke_call_finish(l->ctx, l->status, "disk on fire", 12);
	else /* the request after its u32: echoed, read from the kept copy */
		spoke_call_finish(l->ctx, 0, req.data + 4, req.len - 4);
	free(l);
	return NULL;
}

/* Keeps the call; a thread of its own answers it later. */
static int keep_later(spoke_view *req, spoke_buf *reply, int status)
{
	struct later *l = malloc(sizeof(*l));
	pthread_t t;

	if (!l || spoke_view_get_u32(req, &l->ms) < 0) {
		free(l);
		return -EINVAL;
	}
	l->status = status;
	l->ctx = spoke_call_defer(reply);
	if (!l->ctx) {
		free(l);
		return spoke_method_fail(reply, -EIO, "defer: %s", spoke_errmsg());
	}
	spoke_buf_put_raw(reply, "dropped", 7); /* never sent: the call is kept */
	if (pthread_create(&t, NULL, finish_later, l) != 0) {
		spoke_call_finish(l->ctx, -EAGAIN, NULL, 0);
		free(l);
		return 0;
	}
	pthread_detach(t);
	return 0;
}

static int echo_later(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	return keep_later(req, reply, 0);
}

static int fail_later(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	return keep_later(req, reply, -EIO);
}

static int twice(void *state, spoke_view *req, spoke_buf *reply)
{
	spoke_call_ctx *ctx = spoke_call_defer(reply);

	(void)state;
	(void)req;
	if (!ctx || spoke_call_defer(reply) != ctx)
		return -EIO;
	spoke_call_finish(ctx, 0, "one", 3);
	atomic_store(&last_second_finish, spoke_call_finish(ctx, 0, "two", 3));
	return 0;
}

static int last(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_i32(reply, atomic_load(&last_second_finish));
}

static void on_cancel(spoke_call_ctx *ctx, void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	atomic_store(&cancel_at_ns, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
	atomic_fetch_add(&cancels, 1);
	atomic_store(&cancel_finish_rc, spoke_call_finish(ctx, 0, "late", 4));
}

static int forever(void *state, spoke_view *req, spoke_buf *reply)
{
	spoke_call_ctx *ctx = spoke_call_defer(reply);

	(void)state;
	(void)req;
	if (!ctx)
		return -EIO;
	spoke_call_on_cancel(ctx, on_cancel, NULL);
	return 0;
}

static int cancelled(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	spoke_buf_put_u32(reply, (uint32_t)atomic_load(&cancels));
	return spoke_buf_put_i32(reply, atomic_load(&cancel_finish_rc));
}

/* Outside a method, with another buffer: refused, saying so. */
static int defer_wrong(void *state, spoke_view *req, spoke_buf *reply)
{
	uint8_t b[8];
	spoke_buf other;

	(void)state;
	(void)req;
	spoke_buf_init(&other, b, sizeof(b));
	if (spoke_call_defer(&other) || spoke_call_defer(NULL) ||
	    spoke_call_finish(NULL, 0, NULL, 0) != SPOKE_EINVAL)
		return -EIO;
	return spoke_buf_put_str(reply, spoke_errmsg());
}

struct producer {
	spoke_call_ctx *ctx;
	uint32_t n, size, wait_ms;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	uint8_t *chunk = calloc(1, p->size < 4 ? 4 : p->size);
	int rc = chunk ? 0 : -ENOMEM;

	for (uint32_t i = 0; i < p->n && rc == 0; i++) {
		memcpy(chunk, &i, 4);
		memset(chunk + 4, (int)(i & 0xff), p->size > 4 ? p->size - 4 : 0);
		while ((rc = spoke_stream_emit(p->ctx, chunk, p->size, (int)p->wait_ms)) ==
		       SPOKE_EAGAIN && p->wait_ms == 0) {
			atomic_fetch_add(&stream_eagains, 1);
			usleep(1000);
		}
	}
	if (rc == SPOKE_ECANCELED)
		atomic_fetch_add(&stream_cancels, 1);
	if (rc < 0) {
		atomic_store(&stream_refused, rc);
		spoke_call_finish(p->ctx, rc, spoke_errmsg(), strlen(spoke_errmsg()));
	} else {
		spoke_call_finish(p->ctx, 0, NULL, 0);
	}
	free(chunk);
	free(p);
	return NULL;
}

static int stream(void *state, spoke_view *req, spoke_buf *reply)
{
	struct producer *p = calloc(1, sizeof(*p));
	pthread_t t;

	(void)state;
	if (!p || spoke_view_get_u32(req, &p->n) < 0 || spoke_view_get_u32(req, &p->size) < 0 ||
	    spoke_view_get_u32(req, &p->wait_ms) < 0 || p->size < 4) {
		free(p);
		return -EINVAL;
	}
	p->ctx = spoke_call_defer(reply);
	if (!p->ctx) {
		free(p);
		return -EIO;
	}
	if (pthread_create(&t, NULL, produce, p) != 0) {
		spoke_call_finish(p->ctx, -EAGAIN, NULL, 0);
		free(p);
		return 0;
	}
	pthread_detach(t);
	return 0;
}

static int stream_stats(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	spoke_buf_put_u32(reply, (uint32_t)atomic_load(&stream_eagains));
	spoke_buf_put_u32(reply, (uint32_t)atomic_load(&stream_cancels));
	return spoke_buf_put_i32(reply, atomic_load(&stream_refused));
}

static int burst(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t n = 0, size = 0;
	uint8_t chunk[256] = { 0 };
	spoke_call_ctx *ctx;

	(void)state;
	if (spoke_view_get_u32(req, &n) < 0 || spoke_view_get_u32(req, &size) < 0 || size < 4 ||
	    size > sizeof(chunk))
		return -EINVAL;
	ctx = spoke_call_defer(reply);
	if (!ctx)
		return -EIO;
	for (uint32_t i = 0; i < n; i++) {
		int rc;

		memcpy(chunk, &i, 4);
		rc = spoke_stream_emit(ctx, chunk, size, 0);
		if (rc < 0) {
			spoke_call_finish(ctx, rc, spoke_errmsg(), strlen(spoke_errmsg()));
			return 0;
		}
	}
	spoke_call_finish(ctx, 0, NULL, 0);
	return 0;
}

static int cancel_at(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_u64(reply, atomic_load(&cancel_at_ns));
}

static atomic_uint counted;

static int count(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_u32(reply, atomic_fetch_add(&counted, 1) + 1);
}

static int time_left(void *state, spoke_view *req, spoke_buf *reply)
{
	int64_t d = spoke_call_deadline(NULL);
	struct timespec ts;

	(void)state;
	(void)req;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (!d)
		return spoke_buf_put_i64(reply, -1);
	return spoke_buf_put_i64(reply, (d - (ts.tv_sec * 1000000LL + ts.tv_nsec / 1000)) / 1000);
}

static int pid(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_u32(reply, (uint32_t)getpid());
}

/* The step engine: every millisecond, each admitted call gets one token;
 * one that has all it asked for is answered with u32 steps, u32 the
 * largest batch it was part of. */
#define ENGINE_MAX 256
static struct engine {
	spoke_worker_hook *timer;
	struct slot {
		spoke_call_ctx *ctx;
		uint32_t want, got, peak;
		bool stream;
	} s[ENGINE_MAX];
	unsigned n, steps;
} E;

static void step(void *arg)
{
	unsigned live = 0;

	(void)arg;
	E.steps++;
	for (unsigned i = 0; i < ENGINE_MAX; i++)
		live += E.s[i].ctx != NULL;
	for (unsigned i = 0; i < ENGINE_MAX; i++) {
		struct slot *s = &E.s[i];
		uint8_t out[8];

		if (!s->ctx)
			continue;
		if (live > s->peak)
			s->peak = live;
		if (s->stream && !spoke_call_cancelled(s->ctx)) {
			int rc = spoke_stream_emit(s->ctx, &s->got, 4, 0);

			if (rc == SPOKE_EAGAIN) /* the reader is behind: this token again next step */
				continue;
		}
		if (++s->got < s->want && !spoke_call_cancelled(s->ctx))
			continue;
		memcpy(out, &s->got, 4);
		memcpy(out + 4, &s->peak, 4);
		spoke_call_finish(s->ctx, 0, out, sizeof(out));
		s->ctx = NULL;
	}
}

static int keeper_init(void *state, spoke_view *args)
{
	(void)state;
	(void)args;
	E.timer = spoke_worker_timer(1000, step, NULL);
	return E.timer ? 0 : -EIO;
}

static int generate(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t want = 0;

	(void)state;
	if (spoke_view_get_u32(req, &want) < 0 || want == 0)
		return -EINVAL;
	for (unsigned i = 0; i < ENGINE_MAX; i++)
		if (!E.s[i].ctx) {
			E.s[i] = (struct slot){ .ctx = spoke_call_defer(reply), .want = want };
			if (!E.s[i].ctx)
				return -EIO;
			E.s[i].stream = spoke_call_is_stream(E.s[i].ctx);
			return 0;
		}
	return spoke_method_fail(reply, -EBUSY, "%s", "engine full");
}

/* A timer asked for off the loop's thread is refused. */
static void *timer_off_loop(void *arg)
{
	*(spoke_worker_hook **)arg = spoke_worker_timer(1000, step, NULL);
	return NULL;
}

static int hooks_refused(void *state, spoke_view *req, spoke_buf *reply)
{
	spoke_worker_hook *h = (spoke_worker_hook *)1;
	pthread_t t;

	(void)state;
	(void)req;
	if (pthread_create(&t, NULL, timer_off_loop, &h) != 0)
		return -EAGAIN;
	pthread_join(t, NULL);
	if (h)
		return spoke_method_fail(reply, -EIO, "%s", "a timer was made off the loop");
	if (spoke_worker_timer(0, step, NULL) || spoke_worker_watch(-1, SPOKE_READ, NULL, NULL))
		return spoke_method_fail(reply, -EIO, "%s", "a bad hook was made");
	return spoke_buf_put_str(reply, spoke_errmsg());
}

static const spoke_method keeper_methods[] = {
	{ KEEP_ECHO_LATER, "echo_later", echo_later },
	{ KEEP_FAIL_LATER, "fail_later", fail_later },
	{ KEEP_TWICE, "twice", twice },
	{ KEEP_LAST, "last", last },
	{ KEEP_FOREVER, "forever", forever },
	{ KEEP_CANCELLED, "cancelled", cancelled },
	{ KEEP_DEFER_WRONG, "defer_wrong", defer_wrong },
	{ KEEP_GENERATE, "generate", generate },
	{ KEEP_HOOKS_REFUSED, "hooks_refused", hooks_refused },
	{ KEEP_STREAM, "stream", stream },
	{ KEEP_STREAM_STATS, "stream_stats", stream_stats },
	{ KEEP_PID, "pid", pid },
	{ KEEP_BURST, "burst", burst },
	{ KEEP_CANCEL_AT, "cancel_at", cancel_at },
	{ KEEP_TIME_LEFT, "time_left", time_left },
	{ KEEP_COUNT, "count", count },
};

static const spoke_actor_type keeper_type = {
	.name = "Keeper",
	.init = keeper_init,
	.methods = keeper_methods,
	.n_methods = sizeof(keeper_methods) / sizeof(keeper_methods[0]),
};

SPOKE_REGISTER_ACTOR(keeper_type)

/* ---- Conc4: four calls at once ---- */

static atomic_int running, peak;

static int conc_nap(void *state, spoke_view *req, spoke_buf *reply)
{
	uint32_t ms = 0;
	int now = atomic_fetch_add(&running, 1) + 1, p = atomic_load(&peak);

	(void)state;
	while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
		;
	spoke_view_get_u32(req, &ms);
	usleep(ms * 1000);
	atomic_fetch_sub(&running, 1);
	return spoke_buf_put_u32(reply, (uint32_t)now);
}

static int conc_peak(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	(void)req;
	return spoke_buf_put_u32(reply, (uint32_t)atomic_load(&peak));
}

/* A kept call on a thread: answered by the method itself, after it
 * returned (a thread of ours). */
static int conc_later(void *state, spoke_view *req, spoke_buf *reply)
{
	(void)state;
	return keep_later(req, reply, 0);
}

static const spoke_method conc_methods[] = {
	{ CONC_NAP, "nap", conc_nap },
	{ CONC_PEAK, "peak", conc_peak },
	{ KEEP_ECHO_LATER, "echo_later", conc_later },
};

static const spoke_actor_type conc_type = {
	.name = "Conc4",
	.methods = conc_methods,
	.n_methods = sizeof(conc_methods) / sizeof(conc_methods[0]),
	.max_concurrency = 4,
};

SPOKE_REGISTER_ACTOR(conc_type)
