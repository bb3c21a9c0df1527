/* loop_conn.h - a framed connection driven by a libev loop: the server side of
 * the hub, the agent and the worker, and the agent's link to the hub.
 *
 * Reads go into a growing input buffer (never past one frame of the
 * maximum size); every complete frame is handed to on_frame as a view that
 * is valid during the callback.  Replies are packed straight into the output
 * buffer (spk_loop_begin / spk_loop_finish) and flushed with one send()
 * after all frames of one read were handled.  A connection that misbehaves
 * (bad magic, wrong version, oversize frame, wrong token) is closed with a
 * logged reason; nothing else is affected.  Before the handshake a peer
 * may send only the AUTH frame (SPK_AUTH_MAX bytes at most), within
 * SPK_AUTH_TIMEOUT_S: an unauthenticated peer can neither make us allocate
 * nor hold a connection.  A peer whose AUTH names another server than this
 * one (ident) is refused, even with a good proof (auth.h).
 * Connections waiting for their handshake are also capped, in all and per
 * peer address (SPK_PREAUTH_MAX, SPK_PREAUTH_PER_HOST): a new one over a
 * cap closes the oldest waiting one (of its address when that is the cap
 * reached), so that a flood of idle connections costs a few hundred small
 * buffers, never the descriptors, and a client that answers at once still
 * gets in.
 * After it, a frame with a valid header but a payload over this process's
 * maximum ($SPOKE_MAX_MSG) gets one REPLY SPOKE_ETOOBIG ("request of N bytes
 * is over this actor's maximum of M (SPOKE_MAX_MSG)"); its payload is read
 * and dropped as it comes, never buffered, and the connection goes on (an
 * oversize REPLY, which cannot be answered, closes it).
 * Once closed, sends fail with SPOKE_EDEAD. */
#ifndef SPOKE_LOOP_CONN_H
#define SPOKE_LOOP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include <spoke/serializer.h>

#include "auth.h"
#include "frame.h"
#include "net.h"

#define SPK_AUTH_TIMEOUT_S 2.0 /* a peer proves the token within this (seconds) */
/* At most this many connections wait for their handshake at once (a
 * quarter of the descriptor limit where that is less)... */
#define SPK_PREAUTH_MAX 256
/* ...and at most this many from one peer address. */
#define SPK_PREAUTH_PER_HOST 64
#define SPK_REPLY_ERROR_MAX 512 /* bytes of an error reply's text */
/* The refusal of a request over the maximum, on TCP and RDMA alike:
 * its length, this process's role ("actor"), the maximum. */
#define SPK_OVERSIZE_FMT "request of %u bytes is over this %s's maximum of %u (SPOKE_MAX_MSG)"

struct spk_loop_conn;

typedef void (*spk_frame_cb)(struct spk_loop_conn *c, const struct spk_hdr *h, spoke_view *payload);
/* Called once when the connection is closed (reason: 0 for a local close,
 * else the error); the callee may free the struct. */
typedef void (*spk_close_cb)(struct spk_loop_conn *c, int reason);

struct spk_loop_conn {
	struct ev_loop *loop;
	ev_io rio, wio;
	ev_timer auth_w; /* a peer has this long to prove the token */
	int fd;
	uint8_t *in;
	size_t in_cap, in_len;
	uint8_t *out;
	size_t out_cap, out_len, out_sent;
	uint32_t max_payload;
	size_t skip;       /* bytes of a refused frame's payload still to drop */
	const char *role;  /* what this process is, for messages ("actor"); "process" if NULL */
	const char *token; /* NULL: no handshake (already trusted) */
	const char *ident; /* who this server is: SPK_IDENT_HUB, "actor:NAME:N" */
	bool authed;
	bool held; /* spk_loop_hold: no frame goes to on_frame until released */
	bool dispatching;
	bool finalized;
	int closing; /* reason, or 1 for a pending local close */
	uint8_t nonce[SPK_NONCE_SIZE];
	char peer[SPK_ADDR_MAX];
	size_t peer_host_len; /* peer[0..peer_host_len): its address without the port */
	struct spk_loop_conn *wait_prev, *wait_next; /* in the list of those waiting to authenticate */
	spk_frame_cb on_frame;
	spk_close_cb on_close;
	void *data;
	uint64_t serial; /* unique per process, for owner bookkeeping */
};

/* A listening socket on the loop: each new connection (non-blocking,
 * TCP_NODELAY) goes to on_accept with its peer's address.  When descriptors
 * run out it stops accepting for a second (SPK_ACCEPT_PAUSE_S) instead of
 * spinning on the ready socket, and says so once per pause. */
#define SPK_ACCEPT_PAUSE_S 1.0
struct spk_acceptor;
typedef void (*spk_accept_cb)(struct spk_acceptor *a, int fd, const char *peer);

struct spk_acceptor {
	struct ev_loop *loop;
	ev_io io;
	ev_timer pause;
	spk_accept_cb on_accept;
	void *data;
};

void spk_acceptor_start(struct spk_acceptor *a, struct ev_loop *loop, int listen_fd,
			spk_accept_cb on_accept, void *data);
void spk_acceptor_stop(struct spk_acceptor *a);

/* Takes fd (any socket).  With a token it greets with HELLO and handles the
 * handshake as the server `ident` (kept, not copied) before any frame
 * reaches on_frame; without, it trusts the peer.  A connection with a token
 * may close the oldest unauthenticated one (its on_close runs from here) to
 * stay within the caps above.  The caps and their list are per process:
 * loop_conns live on one thread's loop. */
int spk_loop_start(struct spk_loop_conn *c, struct ev_loop *loop, int fd, const char *token,
		     const char *ident, const char *peer, spk_frame_cb on_frame,
		     spk_close_cb on_close, void *data);
/* Starts a reply or message: a buffer over the output area after room for
 * the header. */
void spk_loop_begin(struct spk_loop_conn *c, spoke_buf *b);
/* Frames what was packed into b; a pack error sends a REPLY with that error
 * instead when type is SPK_REPLY. */
int spk_loop_finish(struct spk_loop_conn *c, spoke_buf *b, uint8_t type, uint64_t id, int32_t aux);
int spk_loop_send(struct spk_loop_conn *c, uint8_t type, uint64_t id, int32_t aux, const void *p,
		    size_t n);
/* Sends a REPLY with a negative status and a message as its payload. */
int spk_loop_reply_error(struct spk_loop_conn *c, uint64_t id, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Bytes a previous owner of the socket (a blocking spk_sync_conn, say) read
 * past its last frame: handled from the loop before anything read later. */
int spk_loop_preload(struct spk_loop_conn *c, const void *p, size_t n);
/* From on_frame: the frames after this one wait (read, as far as the
 * input buffer goes, so that a peer's end is seen) until spk_loop_release();
 * a worker holds a connection whose call it keeps, so that its replies go
 * in the order of its calls. */
void spk_loop_hold(struct spk_loop_conn *c);
void spk_loop_release(struct spk_loop_conn *c);
/* Writes out what is queued (called after each batch of frames). */
void spk_loop_flush(struct spk_loop_conn *c);
/* Closes (deferred while dispatching); on_close runs once. */
void spk_loop_close(struct spk_loop_conn *c, int reason);

#endif
