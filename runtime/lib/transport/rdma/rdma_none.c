/* rdma_none.c - the RDMA transport's entry points in a build without
 * libibverbs/librdmacm (configure --with-rdma=no): RDMA is never available,
 * and says so, so that SPOKE_TRANSPORT=auto uses TCP and =rdma fails clearly. */
#include <stdlib.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "evconn.h"
#include "rdma.h"

#define WHY "this Spoke was built without RDMA (configure --with-rdma)"

int spk_rdma_local_check(void)
{
	return spk_fail(SPOKE_ERDMA, WHY);
}

int spk_rdma_connect(struct spk_rconn **out, const char *addr, const char *token,
		     const char *ident, int poll_us, int64_t deadline)
{
	(void)out, (void)addr, (void)token, (void)ident, (void)poll_us, (void)deadline;
	return spk_fail(SPOKE_ERDMA, WHY);
}

void spk_rdma_close(struct spk_rconn *rc) { (void)rc; }
const char *spk_rdma_device(const struct spk_rconn *rc) { (void)rc; return ""; }
void spk_rdma_set_poll(struct spk_rconn *rc, int poll_us) { (void)rc, (void)poll_us; }
void spk_rdma_set_reconnect_check(struct spk_rconn *rc, int (*check)(void *, int64_t), void *arg)
{
	(void)rc, (void)check, (void)arg;
}

int spk_rdma_call(struct spk_rconn *rc, uint32_t method, const void *req, size_t req_len,
		  void *reply, size_t cap, size_t *reply_len, int64_t deadline)
{
	(void)rc, (void)method, (void)req, (void)req_len, (void)reply, (void)cap;
	(void)reply_len, (void)deadline;
	return SPOKE_ERDMA;
}

int spk_rdma_call_obj(struct spk_rconn *rc, uint32_t method, const spoke_serializer *req_ser,
		      const void *req, const spoke_serializer *rep_ser, void *rep, int64_t deadline)
{
	(void)rc, (void)method, (void)req_ser, (void)req, (void)rep_ser, (void)rep, (void)deadline;
	return SPOKE_ERDMA;
}

int spk_rdma_call_mr(struct spk_rconn *rc, uint32_t method, const spoke_mr *req_mr,
		     size_t req_off, size_t req_len, spoke_mr *rep_mr, size_t rep_off, size_t cap,
		     size_t *reply_len, int64_t deadline)
{
	(void)rc, (void)method, (void)req_mr, (void)req_off, (void)req_len, (void)rep_mr;
	(void)rep_off, (void)cap, (void)reply_len, (void)deadline;
	return SPOKE_ERDMA;
}

int spk_rdma_call_async(struct spk_rconn *rc, uint32_t method, const void *req, size_t req_len,
			void *reply, size_t cap, spoke_future *f, int64_t deadline)
{
	(void)rc, (void)method, (void)req, (void)req_len, (void)reply, (void)cap, (void)f;
	(void)deadline;
	return SPOKE_ERDMA;
}

int spk_rdma_future_wait(struct spk_rconn *rc, spoke_future *f, int64_t deadline)
{
	(void)rc, (void)f, (void)deadline;
	return SPOKE_ERDMA;
}

bool spk_rdma_in_flight(struct spk_rconn *rc, const spoke_future *f)
{
	(void)rc, (void)f;
	return false;
}

int spk_rdma_mr_register(struct spk_rconn *rc, void *addr, size_t len, void **mr,
			 uint32_t *lkey, uint32_t *rkey)
{
	(void)rc, (void)addr, (void)len, (void)mr, (void)lkey, (void)rkey;
	return SPOKE_ERDMA;
}

void spk_rdma_mr_deregister(void *mr) { (void)mr; }

int spk_rsrv_start(struct spk_rsrv **out, struct ev_loop *loop, const char *host,
		   const char *token, bool spin, spk_rsrv_method_fn fn, uint64_t *frames)
{
	(void)loop, (void)host, (void)token, (void)spin, (void)fn, (void)frames;
	*out = NULL;
	return 0;
}

void spk_rsrv_stop(struct spk_rsrv *s) { (void)s; }
unsigned spk_rsrv_poll(struct spk_rsrv *s, bool arm)
{
	(void)s, (void)arm;
	return 0;
}

void spk_rsrv_hello(struct spk_rsrv *s, struct spk_evconn *c, const struct spk_hdr *h)
{
	(void)s;
	spk_evconn_reply_error(c, h->id, SPOKE_ERDMA, WHY);
}
