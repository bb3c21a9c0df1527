/* hooks.c - an engine's own work on the worker's loop: a periodic step
 * (spoke_worker_timer) and a descriptor to watch (spoke_worker_watch), so
 * that a step-driven engine runs beside the calls it serves without a
 * thread of its own.  Callbacks run on the loop's thread between calls. */
#include <errno.h>
#include <stdlib.h>

#include <ev.h>

#include <spoke/actor.h>
#include <spoke/errors.h>

#include "errmsg.h"
#include "worker.h"

struct spoke_worker_hook {
	ev_timer timer;
	ev_io io;
	bool is_io;
	void (*tick)(void *arg);
	void (*ready)(void *arg, int revents);
	void *arg;
};

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	spoke_worker_hook *h = w->data;

	(void)loop;
	(void)revents;
	h->tick(h->arg);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	spoke_worker_hook *h = w->data;

	(void)loop;
	h->ready(h->arg, ((revents & EV_READ) ? SPOKE_READ : 0) |
				 ((revents & EV_WRITE) ? SPOKE_WRITE : 0));
}

/* A new hook, or NULL saying why (off the loop's thread, out of memory). */
static spoke_worker_hook *new_hook(const char *what)
{
	spoke_worker_hook *h;

	if (!spk_worker_loop() || !spk_worker_on_loop()) {
		spk_fail(SPOKE_EINVAL, "%s: only in an actor's init or methods (the worker's loop "
			 "thread)", what);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		spk_fail(-ENOMEM, "%s: out of memory", what);
	return h;
}

spoke_worker_hook *spoke_worker_timer(unsigned period_us, void (*fn)(void *arg), void *arg)
{
	spoke_worker_hook *h;

	spk_errmsg_clear();
	if (!period_us || !fn) {
		spk_fail(SPOKE_EINVAL, "spoke_worker_timer: %s", !fn ? "NULL callback"
								     : "a period of 0 us");
		return NULL;
	}
	h = new_hook("spoke_worker_timer");
	if (!h)
		return NULL;
	h->tick = fn;
	h->arg = arg;
	ev_timer_init(&h->timer, timer_cb, period_us / 1e6, period_us / 1e6);
	h->timer.data = h;
	ev_timer_start(spk_worker_loop(), &h->timer);
	return h;
}

spoke_worker_hook *spoke_worker_watch(int fd, int events, void (*fn)(void *arg, int revents),
				      void *arg)
{
	spoke_worker_hook *h;

	spk_errmsg_clear();
	if (fd < 0 || !fn || !(events & (SPOKE_READ | SPOKE_WRITE)) ||
	    (events & ~(SPOKE_READ | SPOKE_WRITE))) {
		spk_fail(SPOKE_EINVAL, "spoke_worker_watch: %s (fd %d, events %d)",
			 !fn ? "NULL callback" : fd < 0 ? "a negative descriptor"
							: "events must be SPOKE_READ, SPOKE_WRITE or both",
			 fd, events);
		return NULL;
	}
	h = new_hook("spoke_worker_watch");
	if (!h)
		return NULL;
	h->is_io = true;
	h->ready = fn;
	h->arg = arg;
	ev_io_init(&h->io, io_cb, fd, ((events & SPOKE_READ) ? EV_READ : 0) |
				      ((events & SPOKE_WRITE) ? EV_WRITE : 0));
	h->io.data = h;
	ev_io_start(spk_worker_loop(), &h->io);
	return h;
}

void spoke_worker_hook_stop(spoke_worker_hook *h)
{
	if (!h || !spk_worker_loop())
		return;
	if (h->is_io)
		ev_io_stop(spk_worker_loop(), &h->io);
	else
		ev_timer_stop(spk_worker_loop(), &h->timer);
	free(h);
}
