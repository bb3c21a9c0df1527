/* soak.c - many threads, many calls, for a long time: a hub, two agents
 * (n1 with GPUs 0-3, n2 with 4-7) and four Probe actors of two GPUs each
 * (two per node), then SPOKE_SOAK_THREADS client threads (64) of one client,
 * each making SPOKE_SOAK_CALLS calls (default 150; `make soak`: 10,000).
 *
 * Calls mix methods (echo: request and reply; fill: reply only; sum: request
 * only), sizes from 0 B to 1 MiB (most small, every size class, 1 MiB
 * exactly now and then), actors and handles: synchronous calls on four
 * handles shared by all threads, asynchronous windows of 2-16 calls (at most
 * 2 MiB of requests and 2 MiB of replies) on a handle of the thread's own,
 * and of 2-4 small calls on the shared handles.  Every reply is checked
 * byte for byte: an echo carries the thread and call number, a fill has a
 * seed per call, a sum is computed on both sides.
 *
 * Passes when no call failed, was lost or came back wrong, and the client's
 * resident memory (VmRSS, sampled after a warm-up of a tenth of the calls
 * and at the end) grew by at most SOAK_RSS_SLACK_MB + 5 %; under
 * AddressSanitizer, LeakSanitizer checks at exit that nothing leaked.
 * SPOKE_SOAK_LIMIT_S (default 300) bounds the whole run: past it, it fails. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../harness/cluster.h"
#include "../harness/probe.h"

#define N_ACTORS 4
#define MAX_SIZE (1u << 20)             /* the largest request or reply */
#define AREA (2u << 20)                 /* a thread's request (and reply) area */
#define OWN_MAX (256u << 10)            /* largest call in a window on the own handle */
#define SHARED_MAX (4u << 10)           /* ... on a shared handle */
#define WINDOW_MAX 16
#define HDR 16                          /* echo/sum header: thread, magic, call number */
#define PATTERN (MAX_SIZE + 4096)
#define SOAK_RSS_SLACK_MB 8
#define CALL_TIMEOUT_MS 60000

static struct cluster cl;
static spoke_client *client;
static const char *const names[N_ACTORS] = { "soak0", "soak1", "soak2", "soak3" };
static spoke_actor *shared[N_ACTORS];
static uint8_t pattern[PATTERN];          /* random bytes, read by every thread */
static uint8_t fill_base[MAX_SIZE];       /* probe_byte(0, i) */
static pthread_barrier_t round_barrier; /* the threads, each warm-up round */
static pthread_barrier_t warm_barrier;  /* the threads and main, after warm-up */
static long n_calls;

struct call {
	uint32_t method;
	uint8_t *req, *rep;
	size_t req_len, rep_len, cap;
	uint8_t seed;
	spoke_future f;
};

struct thread {
	pthread_t tid;
	uint32_t idx;
	uint64_t rng;
	uint64_t seq;
	spoke_actor *own;
	uint8_t *req_area, *rep_area;
	long ok, bad;
	unsigned long long bytes;
	char first_error[256];
};

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v <= 0) {
		fprintf(stderr, "soak: %s=%s: expected a positive number\n", name, s);
		exit(99);
	}
	return v;
}

/* Most calls small, every class present: 0 B, up to 64 B, 4 KiB, 64 KiB,
 * and up to `max`; exactly `max` every 97th call. */
static size_t pick_size(struct thread *t, size_t max)
{
	uint64_t r = next_rand(&t->rng);
	size_t lo, hi;

	if (t->seq % 97 == 0)
		return max;
	switch (r % 100) {
	case 0 ... 4: return 0;
	case 5 ... 49: lo = 1, hi = 64; break;
	case 50 ... 79: lo = 65, hi = 4096; break;
	case 80 ... 94: lo = 4097, hi = 65536; break;
	default: lo = 65537, hi = MAX_SIZE; break;
	}
	if (hi > max)
		hi = max;
	if (lo > hi)
		lo = hi;
	return lo + (r >> 8) % (hi - lo + 1);
}

/* Prepares one call of `size` bytes at req/rep (each with room for it):
 * method 0 picks one. */
static void prepare(struct thread *t, struct call *c, uint32_t method, uint8_t *req,
		    uint8_t *rep, size_t size)
{
	uint64_t r = next_rand(&t->rng);
	uint64_t seq = ++t->seq;

	c->req = req;
	c->rep = rep;
	c->cap = size < 8 ? 8 : size;
	c->seed = (uint8_t)seq;
	if (!method)
		method = r % 100 < 20 ? PROBE_FILL : r % 100 < 40 ? PROBE_SUM : PROBE_ECHO;
	c->method = method;
	if (method == PROBE_FILL) {
		put_u32(req, (uint32_t)size);
		req[4] = c->seed;
		c->req_len = 5;
		c->rep_len = size;
		return;
	}
	c->req_len = size;
	c->rep_len = method == PROBE_SUM ? 8 : size;
	memcpy(req, pattern + (r >> 32) % (PATTERN - size), size);
	if (size >= HDR) { /* no two calls alike: a reply for another is caught */
		put_u32(req, t->idx);
		put_u32(req + 4, 0x50414b53); /* "SKAP" */
		memcpy(req + 8, &seq, 8);
	}
}

/* 0 if the call's reply (len bytes at c->rep) is what it asked for. */
static int verify(const struct call *c, size_t len, char *why, size_t cap)
{
	if (len != c->rep_len) {
		snprintf(why, cap, "method %u: reply of %zu bytes, expected %zu", c->method, len,
			 c->rep_len);
		return -1;
	}
	switch (c->method) {
	case PROBE_ECHO:
		if (memcmp(c->rep, c->req, len) != 0) {
			snprintf(why, cap, "echo of %zu bytes came back different", len);
			return -1;
		}
		return 0;
	case PROBE_SUM:
		if (get_u64(c->rep) != probe_sum(c->req, c->req_len)) {
			snprintf(why, cap, "sum of %zu bytes differs", c->req_len);
			return -1;
		}
		return 0;
	default:
		for (size_t i = 0; i < len; i++)
			if ((uint8_t)(c->rep[i] - c->seed) != fill_base[i]) {
				snprintf(why, cap, "fill of %zu bytes: byte %zu differs", len, i);
				return -1;
			}
		return 0;
	}
}

static void account(struct thread *t, const struct call *c, int rc, size_t len)
{
	char why[200];

	if (rc == 0 && verify(c, len, why, sizeof(why)) == 0) {
		t->ok++;
		t->bytes += c->req_len + len;
		return;
	}
	if (rc != 0)
		snprintf(why, sizeof(why), "method %u: %s (%s)", c->method, spoke_strerror(rc),
			 spoke_errmsg());
	if (!t->bad++)
		snprintf(t->first_error, sizeof(t->first_error), "call %llu: %s",
			 (unsigned long long)t->seq, why);
}

static void sync_call(struct thread *t, spoke_actor *a, uint32_t method, size_t size)
{
	struct call c;
	size_t len = 0;
	int rc;

	prepare(t, &c, method, t->req_area, t->rep_area, size);
	rc = spoke_call(a, c.method, c.req, c.req_len, c.rep, c.cap, &len, 0);
	account(t, &c, rc, len);
}

/* Up to `n` calls in flight on a, carved out of the thread's areas (at most
 * AREA bytes of requests and AREA of replies); returns how many it made. */
static long async_window(struct thread *t, spoke_actor *a, long n, size_t max)
{
	struct call c[WINDOW_MAX];
	size_t req_off = 0, rep_off = 0;
	long started = 0, made = 0;

	while (made < n) {
		struct call *k = &c[made];
		size_t size = pick_size(t, max);
		int rc;

		if (req_off + size + 8 > AREA || rep_off + size + 8 > AREA)
			break;
		prepare(t, k, 0, t->req_area + req_off, t->rep_area + rep_off, size);
		req_off += k->req_len;
		rep_off += k->cap;
		made++;
		rc = spoke_call_async(a, k->method, k->req, k->req_len, k->rep, k->cap, &k->f);
		if (rc < 0) {
			account(t, k, rc, 0);
			break;
		}
		started++;
	}
	for (long i = 0; i < started; i++) {
		int rc = spoke_future_wait(&c[i].f, 0);

		account(t, &c[i], rc, c[i].f.reply_len);
	}
	return made;
}

static long run_calls(struct thread *t, long calls)
{
	long done = 0;

	while (done < calls) {
		uint64_t r = next_rand(&t->rng) % 100;
		spoke_actor *any = shared[next_rand(&t->rng) % N_ACTORS];
		long left = calls - done, w = 2 + (long)(next_rand(&t->rng) % (WINDOW_MAX - 1));

		if (r < 3 && left >= 2) {
			done += async_window(t, t->own, w < left ? w : left, OWN_MAX);
		} else if (r < 10 && left >= 2) {
			w = 2 + w % 3;
			done += async_window(t, any, w < left ? w : left, SHARED_MAX);
		} else {
			sync_call(t, any, 0, pick_size(t, MAX_SIZE));
			done++;
		}
	}
	return done;
}

static void *soak_thread(void *arg)
{
	struct thread *t = arg;
	long warm = n_calls / 10 - N_ACTORS;
	int rc = spoke_actor_open(client, names[t->idx % N_ACTORS], &t->own, 0);

	if (rc < 0) {
		t->bad = n_calls;
		snprintf(t->first_error, sizeof(t->first_error), "open: %s (%s)",
			 spoke_strerror(rc), spoke_errmsg());
	}
	/* Warm-up: all threads at once make the largest echo on each shared
	 * handle, so that its pool has grown to as many channels as calls can
	 * run at once, with their buffers at full size; then a tenth of the
	 * calls.  Memory is sampled after that. */
	for (int i = 0; i < N_ACTORS; i++) {
		pthread_barrier_wait(&round_barrier);
		if (rc == 0)
			sync_call(t, shared[i], PROBE_ECHO, MAX_SIZE);
	}
	if (rc == 0 && warm > 0)
		run_calls(t, warm);
	pthread_barrier_wait(&warm_barrier);
	pthread_barrier_wait(&warm_barrier);
	if (rc == 0) {
		run_calls(t, n_calls - N_ACTORS - (warm > 0 ? warm : 0));
		spoke_actor_close(t->own);
	}
	return NULL;
}

static void on_alarm(int sig)
{
	static const char msg[] = "soak: FAIL: still running at SPOKE_SOAK_LIMIT_S\n";

	(void)sig;
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Spawns the actors (two GPUs each: two per node) and checks that both
 * nodes run some. */
static int start_actors(void)
{
	spoke_spawn_opts o = SPOKE_SPAWN_OPTS_INIT;
	int on_n1 = 0, on_n2 = 0;

	o.res.gpus = 2;
	for (int i = 0; i < N_ACTORS; i++) {
		char gpus[32] = "";
		size_t n = 0;
		int rc = spoke_spawn(client, "Probe", names[i], NULL, 0, &o);

		if (rc == 0)
			rc = spoke_actor_open(client, names[i], &shared[i], 0);
		if (rc == 0)
			rc = spoke_call(shared[i], PROBE_GPUS, NULL, 0, gpus, sizeof(gpus) - 1, &n, 0);
		if (rc < 0) {
			fprintf(stderr, "soak: actor %s: %s (%s)\n", names[i], spoke_strerror(rc),
				spoke_errmsg());
			return rc;
		}
		if (gpus[0] >= '0' && gpus[0] <= '3')
			on_n1++;
		else
			on_n2++;
	}
	if (!on_n1 || !on_n2) {
		fprintf(stderr, "soak: all actors on one node (n1: %d, n2: %d)\n", on_n1, on_n2);
		return -1;
	}
	return 0;
}

int main(void)
{
	long n_threads = env_long("SPOKE_SOAK_THREADS", 64);
	long limit_s = env_long("SPOKE_SOAK_LIMIT_S", 300);
	spoke_client_opts co = { .timeout_ms = CALL_TIMEOUT_MS, .poll_us = -1 };
	struct thread *th = NULL;
	long rss_warm, rss_end, growth_kib, bound_kib, ok = 0, bad = 0;
	unsigned long long bytes = 0;
	double t0, t1;
	int status = 99;

	n_calls = env_long("SPOKE_SOAK_CALLS", 150);
	if (n_calls < 2 * N_ACTORS) {
		fprintf(stderr, "soak: SPOKE_SOAK_CALLS must be at least %d\n", 2 * N_ACTORS);
		return 99;
	}
	signal(SIGALRM, on_alarm);
	alarm((unsigned)limit_s);
	uint64_t s = 88172645463325252ull;
	for (size_t i = 0; i < PATTERN; i++)
		pattern[i] = (uint8_t)(next_rand(&s) >> 24);
	for (size_t i = 0; i < MAX_SIZE; i++)
		fill_base[i] = probe_byte(0, i);

	if (cluster_start(&cl) < 0 || cluster_add_agent(&cl, "n1", "0-3") < 0 ||
	    cluster_add_agent(&cl, "n2", "4-7") < 0)
		goto out_cluster;
	co.hub = cl.hub_addr;
	if (spoke_client_open(&client, &co) < 0) {
		fprintf(stderr, "soak: client: %s\n", spoke_errmsg());
		goto out_cluster;
	}
	if (start_actors() < 0)
		goto out_handles;
	th = calloc((size_t)n_threads, sizeof(*th));
	if (!th)
		goto out_handles;
	pthread_barrier_init(&round_barrier, NULL, (unsigned)n_threads);
	pthread_barrier_init(&warm_barrier, NULL, (unsigned)n_threads + 1);
	for (long i = 0; i < n_threads; i++) {
		th[i].idx = (uint32_t)i;
		th[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		th[i].req_area = malloc(AREA);
		th[i].rep_area = malloc(AREA);
		if (!th[i].req_area || !th[i].rep_area) {
			fprintf(stderr, "soak: out of memory\n");
			exit(99);
		}
	}
	t0 = now_s();
	for (long i = 0; i < n_threads; i++)
		pthread_create(&th[i].tid, NULL, soak_thread, &th[i]);
	pthread_barrier_wait(&warm_barrier);
	rss_warm = cluster_proc_kib(0, "VmRSS");
	pthread_barrier_wait(&warm_barrier);
	for (long i = 0; i < n_threads; i++) {
		pthread_join(th[i].tid, NULL);
		ok += th[i].ok;
		bad += th[i].bad;
		bytes += th[i].bytes;
		if (th[i].bad)
			fprintf(stderr, "soak: thread %ld: %ld bad, first: %s\n", i, th[i].bad,
				th[i].first_error);
	}
	t1 = now_s();
	rss_end = cluster_proc_kib(0, "VmRSS");
	growth_kib = rss_end - rss_warm;
	bound_kib = SOAK_RSS_SLACK_MB * 1024 + rss_warm / 20;
	printf("soak: %ld threads x %ld calls: %ld ok, %ld bad, %ld missing; %.2f GiB moved in "
	       "%.1f s (%.0f calls/s)\n",
	       n_threads, n_calls, ok, bad, n_threads * n_calls - ok - bad,
	       bytes / (double)(1u << 30), t1 - t0, ok / (t1 - t0));
	printf("soak: client VmRSS after warm-up %.1f MiB, at the end %.1f MiB (%+.1f MiB; "
	       "bound %+.1f MiB)\n",
	       rss_warm / 1024.0, rss_end / 1024.0, growth_kib / 1024.0, bound_kib / 1024.0);
	status = 0;
	if (ok != n_threads * n_calls) {
		printf("soak: FAIL: %ld of %ld calls did not come back right\n",
		       n_threads * n_calls - ok, n_threads * n_calls);
		status = 1;
	}
	if (rss_warm < 0 || growth_kib > bound_kib) {
		printf("soak: FAIL: memory grew after warm-up\n");
		status = 1;
	}
	pthread_barrier_destroy(&round_barrier);
	pthread_barrier_destroy(&warm_barrier);
	for (long i = 0; i < n_threads; i++) {
		free(th[i].req_area);
		free(th[i].rep_area);
	}
	free(th);
out_handles:
	for (int i = 0; i < N_ACTORS; i++)
		spoke_actor_close(shared[i]);
	spoke_client_close(client);
out_cluster:
	if (status == 99)
		fprintf(stderr, "soak: could not set up the cluster; logs in %s\n", cl.dir);
	cluster_stop(&cl);
	return status;
}
