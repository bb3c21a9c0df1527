/* call_driver.c - a driver for the spoke-launch fault tests: it makes calls
 * without pause, each with a deadline, and says how each of its threads
 * ended.
 *
 * Usage: call_driver [-t TIMEOUT_MS] [-r RUN_MS] ACTOR...
 *
 * Threads: one per ACTOR making synchronous calls ("Slow" actor: echo of
 * 1 B..4 KiB, content checked, and naps of 10 ms); one keeping a window of
 * four asynchronous echoes on the first actor; one asking the hub for its
 * nodes.  Each call waits TIMEOUT_MS at most (default 1500).  A thread
 * stops at its first failed call, and then every other thread stops too;
 * SIGTERM and SIGINT stop them after the call in flight, RUN_MS (default
 * 10000) after the start at the latest.  At the end each thread prints one
 * line:
 *
 *   thread NAME: ok=N end=stopped
 *   thread NAME: ok=N end=error rc=RC (CODE) ms=MS timeout=TIMEOUT_MS what=WHAT: MESSAGE
 *   thread NAME: ok=N end=corrupt ...
 *
 * MS is how long the failed call took.  Exit status: 0 when no call
 * failed, 3 when one did, 4 when a reply was wrong, 2 on bad usage. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <spoke/spoke.h>

#include "../harness/probe.h"

#define MAX_ACTORS 8
#define WINDOW 4

enum end { END_STOPPED, END_ERROR, END_CORRUPT };

struct thread {
	pthread_t tid;
	char name[64];
	const char *actor; /* NULL: the hub thread */
	bool async;
	unsigned long ok;
	enum end end;
	int rc;
	double ms;
	char what[32];
	char msg[256];
};

static spoke_client *client;
static int timeout_ms = 1500;
static int64_t stop_at_us;
static atomic_bool stop;
static volatile sig_atomic_t got_signal;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool stopping(void)
{
	return got_signal || atomic_load(&stop) || now_us() >= stop_at_us;
}

static void on_signal(int sig)
{
	got_signal = sig;
}

/* Records how a thread ended; a failure stops every thread.  Returns -1. */
static int finish(struct thread *t, enum end end, int rc, int64_t t0, const char *what)
{
	t->end = end;
	t->rc = rc;
	t->ms = (double)(now_us() - t0) / 1000.0;
	snprintf(t->what, sizeof(t->what), "%s", what);
	snprintf(t->msg, sizeof(t->msg), "%s", end == END_CORRUPT ? "wrong reply" : spoke_errmsg());
	atomic_store(&stop, true);
	return -1;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 131);
}

static int sync_calls(struct thread *t, spoke_actor *a, unsigned seed)
{
	static _Thread_local uint8_t req[4096], rep[4096];
	size_t n, got;
	int64_t t0;
	int rc;

	while (!stopping()) {
		seed = seed * 1103515245u + 12345u;
		t0 = now_us();
		if (t->ok % 2) {
			uint32_t ms = 10, back = 0;

			rc = spoke_call(a, PROBE_NAP, &ms, sizeof(ms), &back, sizeof(back), &got,
					timeout_ms);
			if (rc < 0)
				return finish(t, END_ERROR, rc, t0, "nap");
			if (got != sizeof(back) || back != ms)
				return finish(t, END_CORRUPT, 0, t0, "nap");
		} else {
			n = 1 + (seed >> 8) % sizeof(req);
			fill(req, n, seed);
			rc = spoke_call(a, PROBE_ECHO, req, n, rep, sizeof(rep), &got, timeout_ms);
			if (rc < 0)
				return finish(t, END_ERROR, rc, t0, "echo");
			if (got != n || memcmp(req, rep, n))
				return finish(t, END_CORRUPT, 0, t0, "echo");
		}
		t->ok++;
	}
	return 0;
}

static int async_calls(struct thread *t, spoke_actor *a)
{
	static uint8_t req[WINDOW][256], rep[WINDOW][256];
	spoke_future f[WINDOW];
	int64_t t0;
	int rc;

	memset(f, 0, sizeof(f));
	while (!stopping()) {
		for (int i = 0; i < WINDOW; i++) {
			fill(req[i], sizeof(req[i]), (unsigned)(t->ok + (unsigned long)i));
			t0 = now_us();
			rc = spoke_call_async(a, PROBE_ECHO, req[i], sizeof(req[i]), rep[i],
					      sizeof(rep[i]), &f[i]);
			if (rc < 0)
				return finish(t, END_ERROR, rc, t0, "async send");
		}
		for (int i = 0; i < WINDOW; i++) {
			t0 = now_us();
			rc = spoke_future_wait(&f[i], timeout_ms);
			if (rc < 0) {
				/* The rest of the window fails the same way; wait
				 * for each, so that none is left pending. */
				for (int j = i + 1; j < WINDOW; j++)
					spoke_future_wait(&f[j], timeout_ms);
				return finish(t, END_ERROR, rc, t0, "async wait");
			}
			if (f[i].reply_len != sizeof(rep[i]) || memcmp(req[i], rep[i], sizeof(rep[i])))
				return finish(t, END_CORRUPT, 0, t0, "async wait");
			t->ok++;
		}
	}
	return 0;
}

static int hub_calls(struct thread *t)
{
	spoke_node_info nodes[4];
	struct timespec pause = { 0, 20 * 1000000 };
	int64_t t0;
	int rc;

	while (!stopping()) {
		t0 = now_us();
		rc = spoke_nodes(client, nodes, 4, timeout_ms);
		if (rc < 0)
			return finish(t, END_ERROR, rc, t0, "nodes");
		t->ok++; /* none is an answer too: the agent is gone */
		nanosleep(&pause, NULL);
	}
	return 0;
}

static void *run(void *arg)
{
	struct thread *t = arg;
	spoke_actor *a = NULL;
	int64_t t0 = now_us();
	int rc;

	if (!t->actor) {
		hub_calls(t);
		return NULL;
	}
	rc = spoke_actor_open(client, t->actor, &a, timeout_ms);
	if (rc < 0) {
		finish(t, END_ERROR, rc, t0, "open");
		return NULL;
	}
	if (t->async)
		async_calls(t, a);
	else
		sync_calls(t, a, (unsigned)(uintptr_t)t);
	spoke_actor_close(a);
	return NULL;
}

int main(int argc, char **argv)
{
	struct thread threads[MAX_ACTORS + 2];
	struct sigaction sa = { .sa_handler = on_signal };
	int run_ms = 10000, n = 0, opt, rc, status = 0;

	while ((opt = getopt(argc, argv, "t:r:")) != -1) {
		switch (opt) {
		case 't': timeout_ms = atoi(optarg); break;
		case 'r': run_ms = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind >= argc || argc - optind > MAX_ACTORS || timeout_ms <= 0 || run_ms <= 0)
		goto usage;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* From here on a signal makes us report: before, it just ends us. */
	printf("driver: started\n");
	fflush(stdout);
	stop_at_us = now_us() + (int64_t)run_ms * 1000;
	rc = spoke_client_open(&client, NULL);
	if (rc < 0) {
		printf("thread main: ok=0 end=error rc=%d (%s) ms=0 timeout=%d what=connect: %s\n",
		       rc, spoke_strerror(rc), timeout_ms, spoke_errmsg());
		return 3;
	}
	memset(threads, 0, sizeof(threads));
	for (int i = optind; i < argc; i++, n++) {
		threads[n].actor = argv[i];
		snprintf(threads[n].name, sizeof(threads[n].name), "sync-%s", argv[i]);
	}
	threads[n].actor = argv[optind];
	threads[n].async = true;
	snprintf(threads[n++].name, sizeof(threads[0].name), "async-%s", argv[optind]);
	snprintf(threads[n++].name, sizeof(threads[0].name), "hub");
	for (int i = 0; i < n; i++)
		pthread_create(&threads[i].tid, NULL, run, &threads[i]);
	for (int i = 0; i < n; i++) {
		struct thread *t = &threads[i];

		pthread_join(t->tid, NULL);
		if (t->end == END_STOPPED) {
			printf("thread %s: ok=%lu end=stopped\n", t->name, t->ok);
			continue;
		}
		printf("thread %s: ok=%lu end=%s rc=%d (%s) ms=%.1f timeout=%d what=%s: %s\n",
		       t->name, t->ok, t->end == END_ERROR ? "error" : "corrupt", t->rc,
		       spoke_strerror(t->rc), t->ms, timeout_ms, t->what, t->msg);
		if (t->end == END_CORRUPT)
			status = 4;
		else if (!status)
			status = 3;
	}
	spoke_client_close(client);
	fflush(stdout);
	return status;
usage:
	fprintf(stderr, "Usage: call_driver [-t TIMEOUT_MS] [-r RUN_MS] ACTOR...\n");
	return 2;
}
