/* sync_conn.h - a connection used synchronously, on its caller's thread: a
 * blocking, authenticated frame channel, the client's side of a connection
 * to the hub or to a worker (loop_conn.h is the side a libev loop drives).
 *
 * Everything happens on the caller's thread: a send is one sendmsg() of the
 * header and the payload (packed in place, or the caller's own memory); a
 * receive spins on a non-blocking recv() for up to poll_us, then sleeps in
 * poll() until the deadline.  A channel is not itself thread-safe: its owner
 * (the client's hub lock, an actor's connection pool) makes sure one thread
 * uses it at a time.  Any I/O error, protocol error or timeout breaks the
 * channel (ch->broken): its stream can no longer be trusted.  A timeout
 * while waiting for a header, with nothing consumed, leaves it usable. */
#ifndef SPOKE_SYNC_CONN_H
#define SPOKE_SYNC_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <spoke/serializer.h>

#include "frame.h"
#include "net.h"

struct spk_sync_conn {
	int fd;
	uint8_t *rbuf; /* received bytes rbuf[rpos..rlen) not yet consumed */
	size_t rcap, rpos, rlen;
	uint8_t *wbuf; /* header room + packed payload */
	size_t wcap;
	uint32_t max_payload;
	int poll_us;
	int broken; /* the error that broke it, 0 while usable */
	char peer[SPK_ADDR_MAX];
	/* For a pipelined owner (asynchronous calls), set while it sends: a
	 * send that cannot go on (the socket is full) calls drain whenever a
	 * reply is coming in, to receive the replies that are due, instead of
	 * only waiting for room.  A peer that stops reading until its replies
	 * are read then reads again, so no window of calls can deadlock.  drain
	 * receives (never sends) on this channel and returns 0 or an error,
	 * which ends the send. */
	int (*drain)(void *arg, int64_t deadline_us);
	void *drain_arg;
};

/* Connects to hostport and runs the handshake (auth.h), all before
 * deadline_us.  ident names the server meant (SPK_IDENT_HUB, or a worker's
 * spk_ident_actor): a server that is anything else, or cannot prove the
 * token as that identity, is refused with SPOKE_EAUTH ("HOST:PORT answered
 * as hub, expected actor:NAME:N", "... does not prove the job token as
 * ..."); a server that refuses us says SPOKE_EAUTH too. */
int spk_sync_open(struct spk_sync_conn *ch, const char *hostport, const char *token,
		  const char *ident, int poll_us, int64_t deadline_us);
/* Wraps an already trusted socket (the agent-worker pair): no handshake. */
int spk_sync_attach(struct spk_sync_conn *ch, int fd, const char *peer, int poll_us);
void spk_sync_close(struct spk_sync_conn *ch);
/* Marks the channel unusable (after a timeout mid-request, say); returns rc. */
int spk_sync_break(struct spk_sync_conn *ch, int rc);

/* A buffer over the send area, after room for the header. */
void spk_sync_begin(struct spk_sync_conn *ch, spoke_buf *b);
/* Sends what was packed into b (from spk_sync_begin) as one frame. */
int spk_sync_send_buf(struct spk_sync_conn *ch, spoke_buf *b, uint8_t type, uint64_t id, int32_t aux,
		      int64_t deadline_us);
/* Queues a frame in the send area, behind what is queued there already
 * (*queued bytes), to go out with spk_sync_flush. */
int spk_sync_queue(struct spk_sync_conn *ch, size_t *queued, uint8_t type, uint64_t id, int32_t aux,
		   const void *p, size_t n);
/* Sends the *queued bytes of the send area; *queued is 0 afterwards. */
int spk_sync_flush(struct spk_sync_conn *ch, size_t *queued, int64_t deadline_us);
/* Sends payload p (caller's memory, not copied) as one frame. */
int spk_sync_send(struct spk_sync_conn *ch, uint8_t type, uint64_t id, int32_t aux, const void *p,
		  size_t n, int64_t deadline_us);
/* The same, with header flags (a CALL's SPK_CF_*). */
int spk_sync_send_flags(struct spk_sync_conn *ch, uint8_t type, uint16_t flags, uint64_t id,
			int32_t aux, const void *p, size_t n, int64_t deadline_us);
int spk_sync_recv_hdr(struct spk_sync_conn *ch, struct spk_hdr *h, int64_t deadline_us);
/* The next n payload bytes, in place; valid until the next receive. */
int spk_sync_recv_view(struct spk_sync_conn *ch, size_t n, const uint8_t **p, int64_t deadline_us);
/* The next n payload bytes, received straight into dst where they are not
 * buffered yet. */
int spk_sync_recv_copy(struct spk_sync_conn *ch, void *dst, size_t n, int64_t deadline_us);
int spk_sync_skip(struct spk_sync_conn *ch, size_t n, int64_t deadline_us);

#endif
