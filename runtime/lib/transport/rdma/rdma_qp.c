/* rdma_qp.c - the queue pair, its slots and areas, posting and waiting. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <spoke/errors.h>

#include "clock.h"
#include "errmsg.h"
#include "frame.h"
#include "log.h"
#include "rdma_qp.h"

#define AREA_MIN (64u << 10)
#define INLINE_WANT 256u
#define SIGNAL_EVERY 8u /* a completion per SEND costs the device work */

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -errno : fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

static int verbs_fail(const char *what, int err)
{
	return spk_fail(SPOKE_ERDMA, "%s failed: %s", what, strerror(err ? err : EIO));
}

int spk_rdma_reg(struct ibv_pd *pd, void *p, size_t len, int access, struct ibv_mr **out)
{
	*out = ibv_reg_mr(pd, p, len, access);
	if (!*out)
		return spk_fail(SPOKE_ERDMA, "ibv_reg_mr of %zu bytes failed: %s", len,
				strerror(errno ? errno : EIO));
	return 0;
}

int spk_rqp_create(struct spk_rqp *q, struct rdma_cm_id *id, unsigned n_send, unsigned n_recv,
		   int poll_us)
{
	struct ibv_qp_init_attr attr;
	int rc;

	memset(q, 0, sizeof(*q));
	q->id = id;
	q->n_send = n_send;
	q->n_recv = n_recv;
	q->poll_us = poll_us;
	q->sq_depth = 2 * n_send + 8; /* a reply may be an RDMA WRITE and a SEND */
	q->pd = ibv_alloc_pd(id->verbs); /* the connection's own: see rdma.h */
	if (!q->pd)
		return verbs_fail("ibv_alloc_pd", errno);
	q->scc = ibv_create_comp_channel(id->verbs);
	q->rcc = ibv_create_comp_channel(id->verbs);
	if (!q->scc || !q->rcc) {
		rc = verbs_fail("ibv_create_comp_channel", errno);
		goto out_destroy;
	}
	nonblock(q->scc->fd);
	nonblock(q->rcc->fd);
	q->scq = ibv_create_cq(id->verbs, (int)q->sq_depth, NULL, q->scc, 0);
	q->rcq = ibv_create_cq(id->verbs, (int)n_recv, NULL, q->rcc, 0);
	if (!q->scq || !q->rcq) {
		rc = verbs_fail("ibv_create_cq", errno);
		goto out_destroy;
	}
	memset(&attr, 0, sizeof(attr));
	attr.send_cq = q->scq;
	attr.recv_cq = q->rcq;
	attr.qp_type = IBV_QPT_RC;
	attr.cap.max_send_wr = q->sq_depth;
	attr.cap.max_recv_wr = n_recv;
	attr.cap.max_send_sge = 1;
	attr.cap.max_recv_sge = 1;
	attr.cap.max_inline_data = INLINE_WANT;
	if (rdma_create_qp(id, q->pd, &attr) < 0) {
		attr.cap.max_inline_data = 0; /* some devices take none */
		if (rdma_create_qp(id, q->pd, &attr) < 0) {
			rc = verbs_fail("rdma_create_qp", errno);
			goto out_destroy;
		}
	}
	q->max_inline = attr.cap.max_inline_data;
	q->mem_len = (size_t)(n_send + n_recv) * SPK_RDMA_SLOT;
	q->mem = mmap(NULL, q->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->mem == MAP_FAILED) {
		q->mem = NULL;
		rc = -ENOMEM;
		goto out_destroy;
	}
	rc = spk_rdma_reg(q->pd, q->mem, q->mem_len, IBV_ACCESS_LOCAL_WRITE, &q->mr);
	if (rc < 0)
		goto out_destroy;
	q->slot_wr = calloc(n_send, sizeof(*q->slot_wr));
	if (!q->slot_wr) {
		rc = -ENOMEM;
		goto out_destroy;
	}
	for (unsigned i = 0; i < n_recv; i++) {
		rc = spk_rqp_post_recv(q, i);
		if (rc < 0)
			goto out_destroy;
	}
	ibv_req_notify_cq(q->rcq, 0);
	return 0;
out_destroy:
	spk_rqp_destroy(q);
	return rc;
}

void spk_rqp_destroy(struct spk_rqp *q)
{
	int err;

	if (q->id && q->id->qp)
		rdma_destroy_qp(q->id);
	if (q->scq)
		ibv_destroy_cq(q->scq);
	if (q->rcq)
		ibv_destroy_cq(q->rcq);
	if (q->scc)
		ibv_destroy_comp_channel(q->scc);
	if (q->rcc)
		ibv_destroy_comp_channel(q->rcc);
	if (q->mr)
		ibv_dereg_mr(q->mr);
	if (q->mem)
		munmap(q->mem, q->mem_len);
	free(q->slot_wr);
	err = q->pd ? ibv_dealloc_pd(q->pd) : 0;
	if (err) /* memory still registered in it: a bug of the caller's */
		spk_warn("ibv_dealloc_pd failed: %s", strerror(err));
	memset(q, 0, sizeof(*q));
}

void spk_rqp_conn_param(const struct spk_rqp *q, struct rdma_conn_param *p, const void *priv,
			uint8_t priv_len)
{
	struct ibv_device_attr da;
	int rd = 4;

	if (ibv_query_device(q->id->verbs, &da) == 0) {
		rd = da.max_qp_rd_atom < rd ? da.max_qp_rd_atom : rd;
		rd = da.max_qp_init_rd_atom < rd ? da.max_qp_init_rd_atom : rd;
	}
	memset(p, 0, sizeof(*p));
	p->private_data = priv;
	p->private_data_len = priv_len;
	p->responder_resources = (uint8_t)rd;
	p->initiator_depth = (uint8_t)rd;
	p->retry_count = 7;
	/* Credits keep a receive posted for every message: a peer that posts
	 * none is broken, and 6 retries (not 7, forever) say so. */
	p->rnr_retry_count = 6;
}

uint8_t *spk_rqp_recv_slot(struct spk_rqp *q, unsigned i)
{
	return q->mem + (size_t)(q->n_send + i) * SPK_RDMA_SLOT;
}

int spk_rqp_post_recv(struct spk_rqp *q, unsigned i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)spk_rqp_recv_slot(q, i),
		.length = SPK_RDMA_SLOT,
		.lkey = q->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 }, *bad;
	int rc = ibv_post_recv(q->id->qp, &wr, &bad);

	return rc ? verbs_fail("ibv_post_recv", rc) : 0;
}

/* Waits on cq: spins for poll_us, then arms it and sleeps on cc (and on the
 * connection's rdma_cm events, where ec is set) until deadline. */
static int wait_cq(struct spk_rqp *q, struct ibv_cq *cq, struct ibv_comp_channel *cc,
		   struct ibv_wc *wc, int64_t deadline)
{
	int64_t spin_end = q->poll_us > 0 ? spk_now_us() + q->poll_us : 0;
	struct pollfd pfd[2];
	struct ibv_cq *ev_cq;
	unsigned spins = 0;
	void *ev_ctx;
	int n, nfds;

	for (;;) {
		n = ibv_poll_cq(cq, 1, wc);
		if (n != 0)
			break;
		/* Polling is a read of shared memory; look at the clock less often. */
		if (spin_end && (++spins % 64 || spk_now_us() < spin_end))
			continue;
		spin_end = 0;
		if (ibv_req_notify_cq(cq, 0))
			return verbs_fail("ibv_req_notify_cq", errno);
		n = ibv_poll_cq(cq, 1, wc);
		if (n != 0)
			break;
		if (q->gone) /* what completed before the end was taken above */
			return spk_fail(SPOKE_EDEAD, "the peer closed the RDMA connection");
		if (spk_now_us() >= deadline)
			return SPOKE_ETIMEDOUT;
		pfd[0] = (struct pollfd){ .fd = cc->fd, .events = POLLIN };
		nfds = 1;
		if (q->ec) {
			pfd[1] = (struct pollfd){ .fd = q->ec->fd, .events = POLLIN };
			nfds = 2;
		}
		n = poll(pfd, (nfds_t)nfds, spk_ms_left(deadline));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (nfds == 2 && (pfd[1].revents & POLLIN)) {
			struct rdma_cm_event *ev;

			if (rdma_get_cm_event(q->ec, &ev) == 0) {
				enum rdma_cm_event_type t = ev->event;

				rdma_ack_cm_event(ev);
				if (t == RDMA_CM_EVENT_DISCONNECTED ||
				    t == RDMA_CM_EVENT_DEVICE_REMOVAL ||
				    t == RDMA_CM_EVENT_TIMEWAIT_EXIT)
					q->gone = true;
			}
		}
		if (pfd[0].revents & POLLIN) {
			if (ibv_get_cq_event(cc, &ev_cq, &ev_ctx) == 0)
				ibv_ack_cq_events(ev_cq, 1);
		}
	}
	if (n < 0)
		return verbs_fail("ibv_poll_cq", EIO);
	if (wc->status != IBV_WC_SUCCESS)
		return spk_fail(SPOKE_EDEAD, "RDMA %s failed: %s",
				wc->opcode & IBV_WC_RECV ? "receive" : "send",
				ibv_wc_status_str(wc->status));
	return 0;
}

int spk_rqp_wait_sq(struct spk_rqp *q, uint64_t seq, int64_t deadline)
{
	struct ibv_wc wc;
	int rc;

	if (seq == 0)
		seq = q->last_signaled;
	if (seq > q->last_signaled) /* would never complete: a bug, not a wait */
		return spk_fail(SPOKE_EPROTO, "waiting for send %llu, none signaled after %llu",
				(unsigned long long)seq, (unsigned long long)q->last_signaled);
	while (q->reaped < seq) {
		rc = wait_cq(q, q->scq, q->scc, &wc, deadline);
		if (rc < 0)
			return rc;
		q->reaped = wc.wr_id;
	}
	return 0;
}

int spk_rqp_wait_recv(struct spk_rqp *q, struct ibv_wc *wc, int64_t deadline)
{
	return wait_cq(q, q->rcq, q->rcc, wc, deadline);
}

int spk_rqp_send_slot(struct spk_rqp *q, unsigned *k, uint8_t **p, int64_t deadline)
{
	unsigned i = q->next_slot;
	int rc = q->slot_wr[i] ? spk_rqp_wait_sq(q, q->slot_wr[i], deadline) : 0;

	if (rc < 0)
		return rc;
	q->next_slot = (i + 1) % q->n_send;
	*k = i;
	*p = q->mem + (size_t)i * SPK_RDMA_SLOT;
	return 0;
}

void spk_rqp_unget_slot(struct spk_rqp *q, unsigned k)
{
	/* Only if no slot was taken since (a DONE sent meanwhile, say): else
	 * k is skipped this round, and comes back after n_send - 1 posts. */
	if ((k + 1) % q->n_send == q->next_slot)
		q->next_slot = k;
}

/* Posts wr as work request number ++posted (signaled if asked), once the
 * send queue has room. */
static int post_sq(struct spk_rqp *q, struct ibv_send_wr *wr, bool signal, int64_t deadline)
{
	struct ibv_send_wr *bad;
	int rc;

	if (q->posted - q->reaped >= q->sq_depth) {
		rc = spk_rqp_wait_sq(q, q->posted - q->sq_depth + 1, deadline);
		if (rc < 0)
			return rc;
	}
	wr->wr_id = q->posted + 1;
	if (signal)
		wr->send_flags |= IBV_SEND_SIGNALED;
	rc = ibv_post_send(q->id->qp, wr, &bad);
	if (rc)
		return verbs_fail("ibv_post_send", rc);
	q->posted++;
	if (signal)
		q->last_signaled = q->posted;
	return 0;
}

int spk_rqp_post_send(struct spk_rqp *q, unsigned k, size_t len, int64_t deadline)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(q->mem + (size_t)k * SPK_RDMA_SLOT),
		.length = (uint32_t)len,
		.lkey = q->mr->lkey,
	};
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND };
	int rc;

	if (len <= q->max_inline)
		wr.send_flags = IBV_SEND_INLINE;
	rc = post_sq(q, &wr, (q->posted + 1) % SIGNAL_EVERY == 0, deadline);
	if (rc == 0)
		q->slot_wr[k] = q->posted;
	return rc;
}

int spk_rqp_post_rdma(struct spk_rqp *q, enum ibv_wr_opcode op, void *local, uint32_t lkey,
		      size_t len, uint64_t raddr, uint32_t rkey, uint64_t *seq, int64_t deadline)
{
	struct ibv_sge sge = { .addr = (uintptr_t)local, .length = (uint32_t)len, .lkey = lkey };
	struct ibv_send_wr wr = { .sg_list = &sge, .num_sge = 1, .opcode = op };
	int rc;

	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	rc = post_sq(q, &wr, true, deadline);
	if (rc == 0 && seq)
		*seq = q->posted;
	return rc;
}

int spk_rarea_reserve(struct ibv_pd *pd, struct spk_rarea *a, size_t need, size_t max,
		      size_t keep, int access)
{
	struct spk_rarea n = { 0 };

	if (need <= a->cap && a->mr)
		return 0;
	if (need > max)
		return spk_fail(SPOKE_ETOOBIG, "%zu bytes exceed the message maximum of %zu", need,
				max);
	n.cap = a->cap ? a->cap : AREA_MIN;
	while (n.cap < need)
		n.cap *= 2;
	if (n.cap > max)
		n.cap = max;
	n.p = mmap(NULL, n.cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n.p == MAP_FAILED)
		return -ENOMEM;
	if (spk_rdma_reg(pd, n.p, n.cap, IBV_ACCESS_LOCAL_WRITE | access, &n.mr) < 0) {
		munmap(n.p, n.cap);
		return SPOKE_ERDMA;
	}
	if (keep)
		memcpy(n.p, a->p, keep);
	spk_rarea_free(a);
	*a = n;
	return 0;
}

int spk_rarea_take_buf(struct ibv_pd *pd, struct spk_rarea *a, spoke_buf *b, size_t need,
		       size_t max, int access)
{
	bool inside = b->data == a->p && a->p;
	int rc = spk_rarea_reserve(pd, a, need, max, inside ? b->len : 0, access);

	if (rc < 0)
		return rc;
	if (!inside && b->len)
		memcpy(a->p, b->data, b->len);
	b->data = a->p;
	b->cap = a->cap;
	return 0;
}

void spk_rarea_free(struct spk_rarea *a)
{
	if (a->mr)
		ibv_dereg_mr(a->mr);
	if (a->p)
		munmap(a->p, a->cap);
	memset(a, 0, sizeof(*a));
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void spk_rdma_put_ext(uint8_t *p, uint64_t addr, uint32_t rkey, uint32_t len)
{
	put_le(p, addr, 8);
	put_le(p + 8, rkey, 4);
	put_le(p + 12, len, 4);
}

void spk_rdma_get_ext(const uint8_t *p, uint64_t *addr, uint32_t *rkey, uint32_t *len)
{
	*addr = get_le(p, 8);
	*rkey = (uint32_t)get_le(p + 8, 4);
	*len = (uint32_t)get_le(p + 12, 4);
}
