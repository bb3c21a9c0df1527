/* shm_ring.c - a single-producer single-consumer ring of frames in shared
 * memory, its checks, and the futex and eventfd wake-ups (shm_ring.h). */
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "clock.h"
#include "errmsg.h"
#include "shm.h"
#include "shm_ring.h"

#define ALIGN_UP(n) (((n) + SPK_SHM_ALIGN - 1) & ~(size_t)(SPK_SHM_ALIGN - 1))

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void spk_shm_ring_init(struct spk_shm_ring *r, void *base, uint32_t size, uint64_t *head,
		       uint64_t *tail, uint8_t type, uint32_t max_payload)
{
	memset(r, 0, sizeof(*r));
	r->base = base;
	r->size = size;
	r->head = head;
	r->tail = tail;
	r->type = type;
	r->max_payload = max_payload;
}

size_t spk_shm_ring_max_frame(const struct spk_shm_ring *r)
{
	return r->size;
}

int spk_shm_ring_room(struct spk_shm_ring *r, size_t min, uint8_t **at, size_t *room)
{
	uint64_t tail = __atomic_load_n(r->tail, __ATOMIC_ACQUIRE);
	uint64_t used = r->pos - tail;
	size_t off = r->pos & (r->size - 1);
	size_t end = r->size - off, free, start;
	uint32_t wrap = SPK_SHM_WRAP;

	if (tail < r->peer || used > r->size || tail % SPK_SHM_ALIGN)
		return spk_fail(SPOKE_EPROTO, "the consumer's tail (%llu) lies: head is %llu, "
				"last tail %llu, ring of %u bytes", (unsigned long long)tail,
				(unsigned long long)r->pos, (unsigned long long)r->peer, r->size);
	r->peer = tail;
	free = r->size - used;
	/* The free bytes run from off to the end, then (if more) from the start. */
	start = free > end ? free - end : 0;
	if (start >= min && start > end) {
		memcpy(r->base + off, &wrap, sizeof(wrap));
		*at = r->base;
		*room = start;
		return 0;
	}
	if (free - start >= min) {
		*at = r->base + off;
		*room = free - start;
		return 0;
	}
	return 1;
}

void spk_shm_ring_write(struct spk_shm_ring *r, const uint8_t *at, size_t len)
{
	size_t off = r->pos & (r->size - 1);

	if (at == r->base && off != 0) /* the wrap marker is published with it */
		r->pos += r->size - off;
	r->pos += ALIGN_UP(len);
}

void spk_shm_ring_flush(struct spk_shm_ring *r)
{
	__atomic_store_n(r->head, r->pos, __ATOMIC_RELEASE);
}

void spk_shm_ring_publish(struct spk_shm_ring *r, const uint8_t *at, size_t len)
{
	spk_shm_ring_write(r, at, len);
	spk_shm_ring_flush(r);
}

bool spk_shm_ring_pending(const struct spk_shm_ring *r)
{
	return __atomic_load_n(r->head, __ATOMIC_ACQUIRE) != r->pos;
}

/* The frame at count pos (pos >= r->pos): 0 with *h, *frame and *len (its
 * bytes in the ring, any wrap before it included), 1, or SPOKE_EPROTO. */
static int frame_at(struct spk_shm_ring *r, uint64_t pos, struct spk_hdr *h,
		    const uint8_t **frame, uint32_t *len)
{
	uint64_t head = __atomic_load_n(r->head, __ATOMIC_ACQUIRE);
	uint64_t avail = head - pos;
	size_t off = pos & (r->size - 1), skip = 0, body, need;
	uint8_t hdr[SPK_HDR_SIZE];
	uint32_t word;
	int rc;

	if (head == pos)
		return 1;
	if (head < r->peer || head - r->pos > r->size || avail > r->size || head % SPK_SHM_ALIGN)
		return spk_fail(SPOKE_EPROTO, "the producer's head (%llu) lies: tail is %llu, "
				"last head %llu, ring of %u bytes", (unsigned long long)head,
				(unsigned long long)r->pos, (unsigned long long)r->peer, r->size);
	r->peer = head;
	memcpy(&word, r->base + off, sizeof(word));
	if (word == SPK_SHM_WRAP) {
		skip = r->size - off;
		if (off == 0 || avail <= skip)
			return spk_fail(SPOKE_EPROTO, "a wrap marker at %zu of a ring of %u bytes with "
					"%llu bytes published", off, r->size,
					(unsigned long long)avail);
		off = 0;
		avail -= skip;
	}
	memcpy(hdr, r->base + off, SPK_HDR_SIZE); /* checked where the peer cannot change it */
	rc = spk_hdr_decode_flags(hdr, r->max_payload, SPK_SF_BULK | SPK_SF_MR, h);
	if (rc == SPOKE_ETOOBIG) /* well formed, but more than this side takes */
		return spk_fail(rc, "a message of %u bytes, over this side's maximum of %u "
				"(SPOKE_MAX_MSG)", h->len, r->max_payload);
	if (rc < 0)
		return spk_fail(SPOKE_EPROTO, "a bad frame header at %zu of the ring: %s", off,
				spoke_strerror(rc));
	if (h->type != r->type && (!r->also || h->type != r->also))
		return spk_fail(SPOKE_EPROTO, "a %s frame in a ring of %s frames",
				spk_type_name(h->type), spk_type_name(r->type));
	if (h->type == SPK_CANCEL && (h->flags || h->len))
		return spk_fail(SPOKE_EPROTO, "a CANCEL frame with flags %#x and %u bytes",
				h->flags, h->len);
	if ((h->flags & SPK_SF_BULK) && h->len == 0)
		return spk_fail(SPOKE_EPROTO, "an empty message in a bulk area");
	if ((h->flags & SPK_SF_BULK) && (h->flags & SPK_SF_MR))
		return spk_fail(SPOKE_EPROTO, "a frame both in a bulk area and in spoke_mr memory");
	body = (h->flags & SPK_SF_BULK) ? SPK_SHM_BULK_DESC
	       : (h->flags & SPK_SF_MR) ? SPK_SHM_MR_DESC : h->len;
	need = ALIGN_UP(SPK_HDR_SIZE + body);
	if (need > avail || need > r->size - off)
		return spk_fail(SPOKE_EPROTO, "a frame of %zu bytes at %zu of a ring of %u bytes, "
				"%llu bytes published", need, off, r->size,
				(unsigned long long)avail);
	*len = (uint32_t)(skip + need);
	*frame = r->base + off;
	return 0;
}

int spk_shm_ring_peek(struct spk_shm_ring *r, struct spk_hdr *h, const uint8_t **frame)
{
	uint32_t len;
	int rc = frame_at(r, r->pos, h, frame, &len);

	if (rc == 0)
		r->cur = len;
	return rc;
}

int spk_shm_ring_scan(struct spk_shm_ring *r, uint64_t *at, struct spk_hdr *h,
		      const uint8_t **frame)
{
	uint32_t len;
	int rc;

	if (*at < r->pos)
		*at = r->pos;
	rc = frame_at(r, *at, h, frame, &len);
	if (rc == 0)
		*at += len;
	return rc;
}

void spk_shm_ring_release(struct spk_shm_ring *r)
{
	r->pos += r->cur;
	r->cur = 0;
	__atomic_store_n(r->tail, r->pos, __ATOMIC_RELEASE);
}

uint32_t spk_shm_bulk_gen(const uint8_t *frame)
{
	uint32_t gen;

	memcpy(&gen, frame + SPK_HDR_SIZE, sizeof(gen));
	return gen;
}

void spk_shm_mr_desc_get(const uint8_t *frame, struct spk_shm_mr_desc *d)
{
	memcpy(d, frame + SPK_HDR_SIZE, sizeof(*d)); /* once: the peer may change it */
}

void spk_shm_mr_desc_put(uint8_t *frame, const struct spk_shm_mr_desc *d)
{
	memcpy(frame + SPK_HDR_SIZE, d, sizeof(*d));
}

void spk_shm_bulk_put(uint8_t *frame, uint32_t gen)
{
	uint32_t zero = 0;

	memcpy(frame + SPK_HDR_SIZE, &gen, sizeof(gen));
	memcpy(frame + SPK_HDR_SIZE + 4, &zero, sizeof(zero));
}

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	/* Shared between processes: no FUTEX_PRIVATE_FLAG. */
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

int spk_shm_wait(uint32_t *seq, uint32_t *sleeping, bool (*ready)(void *), int (*alive)(void *),
		 void *arg, int poll_us, int slice_us, int64_t deadline)
{
	int64_t now, spin_end, left, look;
	struct timespec ts;
	uint32_t s;
	int rc;

	if (ready(arg)) /* before the clock: a pipelined wait mostly ends here */
		return 0;
	now = spk_now_us();
	spin_end = now + (poll_us > 0 ? poll_us : 0);
	look = now + slice_us;
	while (now < spin_end && now < deadline) {
		for (unsigned k = 0; k < 64; k++) {
			if (ready(arg))
				return 0;
			cpu_relax();
		}
		now = spk_now_us();
		/* A long spin looks at the peer as often as a sleep does: a dead
		 * peer ends it within a slice, whatever the budget. */
		if (now >= look) {
			rc = alive(arg);
			if (rc < 0)
				return rc;
			look = now + slice_us;
		}
	}
	for (;;) {
		rc = alive(arg);
		if (rc < 0)
			return rc;
		now = spk_now_us();
		if (now >= deadline)
			return ready(arg) ? 0 : SPOKE_ETIMEDOUT;
		__atomic_store_n(sleeping, 1, __ATOMIC_RELAXED);
		spk_shm_fence(); /* before looking again (spk_shm_wake) */
		s = __atomic_load_n(seq, __ATOMIC_RELAXED);
		if (ready(arg)) {
			__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
			return 0;
		}
		left = deadline - now < slice_us ? deadline - now : slice_us;
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = left % 1000000 * 1000;
		futex(seq, FUTEX_WAIT, s, &ts);
		__atomic_store_n(sleeping, 0, __ATOMIC_RELAXED);
		if (ready(arg))
			return 0;
	}
}

void spk_shm_wake(uint32_t *seq, const uint32_t *sleeping)
{
	spk_shm_fence(); /* the publish before the look */
	if (__atomic_load_n(sleeping, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(seq, 1, __ATOMIC_RELAXED);
		futex(seq, FUTEX_WAKE, INT_MAX, NULL);
	}
}

void spk_shm_kick(int efd, const uint32_t *flag)
{
	uint64_t one = 1;
	ssize_t n;

	spk_shm_fence();
	if (__atomic_load_n(flag, __ATOMIC_RELAXED)) {
		n = write(efd, &one, sizeof(one)); /* EAGAIN: a wake-up is pending anyway */
		(void)n;
	}
}
