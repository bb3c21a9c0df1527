/* rdma_qp.h - what both ends of an RDMA connection share: the queue pair
 * in a protection domain of its own, with its completion queues and
 * registered slots, growing registered areas, and posting and waiting on
 * work requests with a deadline. */
#ifndef SPOKE_RDMA_QP_H
#define SPOKE_RDMA_QP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "rdma.h"

/* Fixed places in a slot: a CALL's two descriptors, then its payload; a
 * REPLY's one descriptor (PULL), then its payload. */
#define SPK_RDMA_CALL_DATA (SPK_HDR_SIZE + 2 * SPK_RDMA_EXT)
#define SPK_RDMA_REPLY_DATA (SPK_HDR_SIZE + SPK_RDMA_EXT)
#define SPK_RDMA_CALL_INLINE (SPK_RDMA_SLOT - SPK_RDMA_CALL_DATA)
#define SPK_RDMA_REPLY_INLINE (SPK_RDMA_SLOT - SPK_RDMA_REPLY_DATA)

struct spk_rqp {
	struct rdma_cm_id *id;            /* owns the queue pair */
	struct rdma_event_channel *ec;    /* watched while waiting (client), or NULL */
	struct ibv_pd *pd;                /* this connection's alone (rdma.h) */
	struct ibv_comp_channel *scc, *rcc;
	struct ibv_cq *scq, *rcq;
	uint8_t *mem; /* n_send send slots, then n_recv receive slots */
	size_t mem_len;
	struct ibv_mr *mr;
	uint64_t *slot_wr; /* per send slot: the work request that last used it */
	unsigned n_send, n_recv, next_slot;
	/* Send-queue work requests: numbered 1, 2...; every RDMA READ/WRITE and
	 * every SPK_RDMA_SIGNAL_EVERY-th SEND is signaled, and its completion
	 * means all before it completed too (one queue completes in order). */
	uint64_t posted, reaped, last_signaled;
	uint32_t sq_depth, max_inline;
	int poll_us;
	bool gone; /* the peer disconnected (seen on ec) */
};

/* A registered buffer that grows on first need and is kept. */
struct spk_rarea {
	uint8_t *p;
	size_t cap;
	struct ibv_mr *mr;
};

/* Sets up id's queue pair in a protection domain of its own (q->pd): CQs,
 * slots registered, every receive posted. */
int spk_rqp_create(struct spk_rqp *q, struct rdma_cm_id *id, unsigned n_send, unsigned n_recv,
		   int poll_us);
/* Destroys what spk_rqp_create made (not the id), the protection domain
 * last: the caller deregisters what it registered in q->pd first. */
void spk_rqp_destroy(struct spk_rqp *q);
/* ibv_reg_mr, or SPOKE_ERDMA saying why. */
int spk_rdma_reg(struct ibv_pd *pd, void *p, size_t len, int access, struct ibv_mr **out);
/* Connection parameters for rdma_connect/rdma_accept. */
void spk_rqp_conn_param(const struct spk_rqp *q, struct rdma_conn_param *p, const void *priv,
			uint8_t priv_len);

uint8_t *spk_rqp_recv_slot(struct spk_rqp *q, unsigned i);
int spk_rqp_post_recv(struct spk_rqp *q, unsigned i);
/* The next send slot, once the work request that used it last completed.
 * A slot taken must be posted, or given back with spk_rqp_unget_slot (so
 * that a slot comes round again only after n_send posts, a signaled one
 * among them). */
int spk_rqp_send_slot(struct spk_rqp *q, unsigned *k, uint8_t **p, int64_t deadline);
void spk_rqp_unget_slot(struct spk_rqp *q, unsigned k);
int spk_rqp_post_send(struct spk_rqp *q, unsigned k, size_t len, int64_t deadline);
/* RDMA READ (IBV_WR_RDMA_READ) or WRITE between local and remote memory;
 * *seq (optional) identifies it for spk_rqp_wait_sq. */
int spk_rqp_post_rdma(struct spk_rqp *q, enum ibv_wr_opcode op, void *local, uint32_t lkey,
		      size_t len, uint64_t raddr, uint32_t rkey, uint64_t *seq, int64_t deadline);
/* Waits until the send-queue work request seq (0: the last signaled one)
 * completed. */
int spk_rqp_wait_sq(struct spk_rqp *q, uint64_t seq, int64_t deadline);
/* The next receive completion: spins poll_us, then sleeps, until deadline
 * (SPOKE_ETIMEDOUT, nothing consumed).  SPOKE_EDEAD when the peer
 * disconnects (seen on q->ec) or a completion failed. */
int spk_rqp_wait_recv(struct spk_rqp *q, struct ibv_wc *wc, int64_t deadline);

/* Makes area a at least need bytes (at most max), keeping its first keep
 * bytes; registers (with access, e.g. IBV_ACCESS_REMOTE_READ: only what
 * the peer needs) on growth only. */
int spk_rarea_reserve(struct ibv_pd *pd, struct spk_rarea *a, size_t need, size_t max,
		      size_t keep, int access);
void spk_rarea_free(struct spk_rarea *a);
/* Moves what is packed in b (a send slot, or a) into area a grown to need
 * bytes, and points b there: the core of a spoke_buf grow hook.  The caller
 * makes sure first that the peer is done with a. */
int spk_rarea_take_buf(struct ibv_pd *pd, struct spk_rarea *a, spoke_buf *b, size_t need,
		       size_t max, int access);

/* {addr, rkey, len} descriptors in a message. */
void spk_rdma_put_ext(uint8_t *p, uint64_t addr, uint32_t rkey, uint32_t len);
void spk_rdma_get_ext(const uint8_t *p, uint64_t *addr, uint32_t *rkey, uint32_t *len);

#endif
