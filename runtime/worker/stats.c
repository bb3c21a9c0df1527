/* stats.c - a worker's call figures: per method of its actor, calls,
 * errors, request and reply bytes, and a latency histogram (proto.h
 * spk_stats), reported to its agent every $SPOKE_STATS_MS (default 1000;
 * 0: nothing is counted nor reported), when something changed.
 *
 * Every call of every transport is counted once, on the loop's thread,
 * where its REPLY goes: worker.c's run_method for a call answered at once,
 * kept.c's answer for a kept one (spoke_call_defer, max_concurrency).  A
 * count is a few increments of fixed counters: nothing is allocated, no
 * lock is taken.  The report is a STATS frame on the worker's socketpair to
 * its agent (fd 3), which forwards it to the hub; it is sent without
 * waiting: a report that finds no room waits for the next tick. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ev.h>

#include <spoke/errors.h>

#include "clock.h"
#include "env.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "worker.h"

#define PERIOD_DEFAULT_MS 1000
#define PERIOD_MAX_MS 3600000
#define SEND_WAIT_MS 100 /* to finish a report the socket took part of */
/* A report's payload at most: the count, then each method's entry. */
#define METHOD_WIRE_MAX (4 + SPK_METHOD_NAME_MAX + 4 + 5 * 8 + 4 + SPK_LAT_BUCKETS * 8)
#define REPORT_MAX (4 + SPK_STATS_METHODS * METHOD_WIRE_MAX)

static struct {
	const spoke_actor_type *type;
	struct spk_stats s;
	uint64_t total;    /* calls counted */
	uint64_t reported; /* total at the last report */
	bool any_report;   /* one went (the first goes even with no call) */
	int period_ms;     /* 0: off */
	int fd;
	bool broken;       /* a report was cut short: no more */
	ev_timer timer;
	uint8_t *frame;    /* header and payload of a report */
} S = { .fd = -1 };

int spk_stats_settings(void)
{
	return spk_env_int("SPOKE_STATS_MS", 0, PERIOD_MAX_MS, PERIOD_DEFAULT_MS,
			   "milliseconds between a worker's reports of its call figures (0: off)",
			   &S.period_ms);
}

void spk_stats_count(const spoke_method *m, int status, size_t in, size_t out, int64_t t0)
{
	struct spk_method_stats *ms;
	size_t i;
	int64_t us;

	if (!S.type || !m) /* off, or not started */
		return;
	i = (size_t)(m - S.type->methods);
	if (i >= S.s.n)
		return;
	ms = &S.s.m[i];
	us = spk_now_us() - t0;
	if (us < 0)
		us = 0;
	ms->calls++;
	ms->errors += status < 0;
	ms->bytes_in += in;
	ms->bytes_out += out;
	ms->lat_sum_us += (uint64_t)us;
	ms->lat[spk_lat_bucket((uint64_t)us)]++;
	S.total++;
}

bool spk_stats_on(void)
{
	return S.type != NULL;
}

/* Writes all of p[0..len) to the agent; a part that finds no room waits
 * SEND_WAIT_MS at most. */
static int send_all(const uint8_t *p, size_t len)
{
	int64_t deadline = spk_now_us() + SEND_WAIT_MS * 1000LL;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(S.fd, p + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (!done)
			return SPOKE_EAGAIN; /* nothing went: try at the next tick */
		if (spk_ms_left(deadline) <= 0 ||
		    poll(&(struct pollfd){ .fd = S.fd, .events = POLLOUT }, 1,
			 spk_ms_left(deadline)) < 0)
			return SPOKE_ETIMEDOUT;
	}
	return 0;
}

static void report(struct ev_loop *loop, ev_timer *t, int revents)
{
	spoke_buf b;
	int rc;

	(void)loop;
	(void)t;
	(void)revents;
	if (S.broken || (S.any_report && S.total == S.reported))
		return;
	spoke_buf_init(&b, S.frame + SPK_HDR_SIZE, REPORT_MAX);
	rc = spk_stats_pack(&b, &S.s);
	if (rc == 0) {
		spk_hdr_encode(S.frame, SPK_STATS, 0, 0, (uint32_t)b.len);
		rc = send_all(S.frame, SPK_HDR_SIZE + b.len);
	}
	if (rc == SPOKE_EAGAIN)
		return;
	if (rc < 0) {
		spk_warn("actor %s: stopped reporting its call figures: %s", spk_worker_name(),
			 spoke_strerror(rc));
		S.broken = true;
		return;
	}
	S.reported = S.total;
	S.any_report = true;
}

int spk_stats_start(struct ev_loop *loop, const spoke_actor_type *type, int agent_fd)
{
	if (!S.period_ms)
		return 0;
	S.frame = malloc(SPK_HDR_SIZE + REPORT_MAX);
	if (!S.frame)
		return -ENOMEM;
	S.type = type;
	S.fd = agent_fd;
	S.s.n = type->n_methods < SPK_STATS_METHODS ? (uint32_t)type->n_methods
						    : SPK_STATS_METHODS;
	for (uint32_t i = 0; i < S.s.n; i++) {
		const spoke_method *m = &type->methods[i];
		size_t k = 0;

		/* Method names are the module's: kept to what the wire takes. */
		for (const char *c = m->name ? m->name : ""; *c && k < SPK_METHOD_NAME_MAX - 1; c++)
			S.s.m[i].name[k++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
		S.s.m[i].name[k] = '\0';
		S.s.m[i].id = m->id;
	}
	if (type->n_methods > SPK_STATS_METHODS)
		spk_warn("actor %s: only its first %d methods are counted", spk_worker_name(),
			 SPK_STATS_METHODS);
	ev_timer_init(&S.timer, report, 0., S.period_ms / 1000.0);
	ev_timer_start(loop, &S.timer);
	return 0;
}

void spk_stats_stop(struct ev_loop *loop)
{
	if (S.frame)
		ev_timer_stop(loop, &S.timer);
	free(S.frame);
	S.frame = NULL;
}
