/* test_shm_ring.c - unit tests of the shared-memory transport's rings and
 * messages (runtime/lib/transport/shm/shm_ring.c, shm_wire.c): both ends of
 * a ring in one process, over memory allocated to the exact byte so that
 * ASan catches any read outside it.  Frames round-trip through wraps and a
 * full ring; a peer's garbage (heads and tails that lie, bad headers,
 * lengths past what was published or past the ring's end, misplaced wrap
 * markers, random bytes) is refused with SPOKE_EPROTO, never read out of
 * bounds; the futex wake-up crosses processes; the messages round-trip and
 * refuse truncations, trailing bytes and bad names. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "clock.h"
#include "frame.h"
#include "transport/shm/shm.h"
#include "transport/shm/shm_ring.h"
#include "transport/shm/shm_wire.h"
#include "testutil.h"

#define RING (64u << 10)
#define MAXP (1u << 20)

struct pair {
	uint8_t *mem; /* exactly RING bytes */
	uint64_t head, tail;
	struct spk_shm_ring prod, cons;
};

static void pair_init(struct pair *p, uint32_t size)
{
	p->mem = malloc(size);
	ck_assert_ptr_nonnull(p->mem);
	memset(p->mem, 0, size);
	p->head = p->tail = 0;
	spk_shm_ring_init(&p->prod, p->mem, size, &p->head, &p->tail, SPK_CALL, MAXP);
	spk_shm_ring_init(&p->cons, p->mem, size, &p->head, &p->tail, SPK_CALL, MAXP);
}

static void pair_free(struct pair *p)
{
	free(p->mem);
}

/* id's pattern; checking it is one comparison (a ck_assert per byte
 * would be a system call per byte). */
static void fill(uint8_t *p, uint64_t id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(id * 31 + i);
}

/* Produces a CALL of id with n payload bytes (id's pattern); 1 if no room. */
static int produce(struct pair *p, uint64_t id, size_t n)
{
	uint8_t *at;
	size_t room;
	int rc = spk_shm_ring_room(&p->prod, SPK_HDR_SIZE + n, &at, &room);

	if (rc)
		return rc;
	ck_assert_uint_ge(room, SPK_HDR_SIZE + n);
	spk_hdr_encode(at, SPK_CALL, id, 7, (uint32_t)n);
	fill(at + SPK_HDR_SIZE, id, n);
	spk_shm_ring_publish(&p->prod, at, SPK_HDR_SIZE + n);
	return 0;
}

/* Consumes the next frame, checking it is id's of n bytes. */
static void consume(struct pair *p, uint64_t id, size_t n)
{
	const uint8_t *f;
	struct spk_hdr h;

	ck_assert_int_eq(spk_shm_ring_peek(&p->cons, &h, &f), 0);
	ck_assert_uint_eq(h.id, id);
	ck_assert_uint_eq(h.len, n);
	ck_assert_int_eq(h.aux, 7);
	if (n) {
		uint8_t *want = malloc(n);

		ck_assert_ptr_nonnull(want);
		fill(want, id, n);
		ck_assert_int_eq(memcmp(f + SPK_HDR_SIZE, want, n), 0);
		free(want);
	}
	spk_shm_ring_release(&p->cons);
}

START_TEST(test_round_trip)
{
	struct pair p;
	const uint8_t *f;
	struct spk_hdr h;

	pair_init(&p, RING);
	ck_assert_int_eq(spk_shm_ring_peek(&p.cons, &h, &f), 1);
	for (uint64_t id = 1; id < 100; id++) {
		ck_assert_int_eq(produce(&p, id, id * 13), 0);
		ck_assert(spk_shm_ring_pending(&p.cons));
		consume(&p, id, id * 13);
		ck_assert(!spk_shm_ring_pending(&p.cons));
	}
	ck_assert_int_eq(spk_shm_ring_peek(&p.cons, &h, &f), 1);
	pair_free(&p);
}
END_TEST

/* Random sizes, the producer ahead by a random number of frames: many
 * wraps, every byte checked. */
/* The worker's request ring carries CANCELs beside CALLs: looking ahead
 * (spk_shm_ring_scan) hands out every frame published, in order, without
 * consuming any; a frame of a third type is refused either way. */
START_TEST(test_scan_cancels)
{
	struct pair p;
	const uint8_t *f;
	struct spk_hdr h;
	uint64_t at = 0;
	uint8_t *w;
	size_t room;

	pair_init(&p, RING);
	p.cons.also = SPK_CANCEL;
	ck_assert_int_eq(produce(&p, 1, 100), 0);
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, SPK_HDR_SIZE, &w, &room), 0);
	spk_hdr_encode(w, SPK_CANCEL, 1, 0, 0);
	spk_shm_ring_publish(&p.prod, w, SPK_HDR_SIZE);
	ck_assert_int_eq(produce(&p, 2, 10), 0);
	ck_assert_int_eq(spk_shm_ring_scan(&p.cons, &at, &h, &f), 0);
	ck_assert(h.type == SPK_CALL && h.id == 1);
	ck_assert_int_eq(spk_shm_ring_scan(&p.cons, &at, &h, &f), 0);
	ck_assert(h.type == SPK_CANCEL && h.id == 1 && h.len == 0);
	ck_assert_int_eq(spk_shm_ring_scan(&p.cons, &at, &h, &f), 0);
	ck_assert(h.type == SPK_CALL && h.id == 2);
	ck_assert_int_eq(spk_shm_ring_scan(&p.cons, &at, &h, &f), 1);
	ck_assert_uint_eq(at, p.head);
	ck_assert_uint_eq(p.cons.pos, 0); /* nothing consumed */
	consume(&p, 1, 100);
	ck_assert_int_eq(spk_shm_ring_peek(&p.cons, &h, &f), 0);
	ck_assert(h.type == SPK_CANCEL);
	spk_shm_ring_release(&p.cons);
	consume(&p, 2, 10);
	/* A REPLY in a ring of CALLs and CANCELs: refused. */
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, SPK_HDR_SIZE, &w, &room), 0);
	spk_hdr_encode(w, SPK_REPLY, 3, 0, 0);
	spk_shm_ring_publish(&p.prod, w, SPK_HDR_SIZE);
	at = 0;
	ck_assert_int_eq(spk_shm_ring_scan(&p.cons, &at, &h, &f), SPOKE_EPROTO);
	ck_assert_int_eq(spk_shm_ring_peek(&p.cons, &h, &f), SPOKE_EPROTO);
	pair_free(&p);
}
END_TEST

START_TEST(test_wrap)
{
	struct pair p;
	uint64_t next = 1, done = 1;
	size_t sizes[4096];

	srand(42);
	pair_init(&p, RING);
	while (done < 5000) {
		int k = rand() % 8;

		for (int i = 0; i < k; i++) {
			size_t n = (size_t)rand() % (RING / 4);

			if (produce(&p, next, n) == 1)
				break;
			sizes[next % 4096] = n;
			next++;
		}
		k = rand() % 8;
		for (int i = 0; i < k && done < next; i++, done++)
			consume(&p, done, sizes[done % 4096]);
	}
	ck_assert_uint_gt(p.prod.pos, 10ull * RING); /* it did wrap */
	pair_free(&p);
}
END_TEST

START_TEST(test_full)
{
	struct pair p;
	uint64_t id = 1;
	uint8_t *at;
	size_t room;

	pair_init(&p, RING);
	/* A frame as large as the ring fits an empty one, and fills it. */
	ck_assert_int_eq(produce(&p, id, RING - SPK_HDR_SIZE), 0);
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 1, &at, &room), 1);
	consume(&p, id++, RING - SPK_HDR_SIZE);
	/* Fill with 1 KiB frames until refused. */
	while (produce(&p, id, 1024 - SPK_HDR_SIZE) == 0)
		id++;
	ck_assert_uint_eq(id - 2, RING / 1024);
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 64, &at, &room), 1);
	consume(&p, 2, 1024 - SPK_HDR_SIZE);
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 1024, &at, &room), 0);
	ck_assert_uint_eq(room, 1024);
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 1025, &at, &room), 1);
	ck_assert_int_eq(produce(&p, id, 1024 - SPK_HDR_SIZE), 0);
	for (uint64_t k = 3; k <= id; k++)
		consume(&p, k, 1024 - SPK_HDR_SIZE);
	pair_free(&p);
}
END_TEST

/* The consumer's verdict on the region as it is. */
static int peek(struct pair *p)
{
	const uint8_t *f;
	struct spk_hdr h;

	return spk_shm_ring_peek(&p->cons, &h, &f);
}

START_TEST(test_garbage_head)
{
	struct pair p;

	pair_init(&p, RING);
	ck_assert_int_eq(produce(&p, 1, 124 - SPK_HDR_SIZE), 0); /* two lines */
	p.head = RING + 64; /* ahead by more than the ring */
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	p.head = 65; /* off a line */
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	p.head = UINT64_MAX - 63; /* "behind" the tail */
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	p.head = 192;
	consume(&p, 1, 124 - SPK_HDR_SIZE);
	p.head = 64; /* moved back */
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	pair_free(&p);
}
END_TEST

START_TEST(test_garbage_tail)
{
	struct pair p;
	uint8_t *at;
	size_t room;

	pair_init(&p, RING);
	ck_assert_int_eq(produce(&p, 1, 124 - SPK_HDR_SIZE), 0); /* two lines */
	p.tail = 192; /* past the head */
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 64, &at, &room), SPOKE_EPROTO);
	p.tail = 8; /* off a line */
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 64, &at, &room), SPOKE_EPROTO);
	p.tail = 128;
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 64, &at, &room), 0);
	p.tail = 0; /* moved back */
	ck_assert_int_eq(spk_shm_ring_room(&p.prod, 64, &at, &room), SPOKE_EPROTO);
	pair_free(&p);
}
END_TEST

START_TEST(test_garbage_frames)
{
	struct pair p;
	uint32_t wrap = SPK_SHM_WRAP;

	pair_init(&p, RING);
	/* A bad magic, another type, a flag not allowed, a length past what
	 * was published, past the ring's end, over the maximum. */
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, 10);
	p.mem[0] ^= 1;
	p.head = 64;
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_encode(p.mem, SPK_REPLY, 1, 0, 10);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, 10);
	spk_hdr_set_flags(p.mem, 4);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_set_flags(p.mem, SPK_SF_BULK | SPK_SF_MR);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, 64 - SPK_HDR_SIZE + 1);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, 64 - SPK_HDR_SIZE); /* exactly one line */
	ck_assert_int_eq(peek(&p), 0);
	p.head = RING;
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, RING);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, MAXP + 1); /* well formed, too big: */
	ck_assert_int_eq(peek(&p), SPOKE_ETOOBIG);
	spk_hdr_encode(p.mem, SPK_CALL, 1, 0, 0); /* an empty bulk message */
	spk_hdr_set_flags(p.mem, SPK_SF_BULK);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	/* A wrap marker at the ring's start. */
	memcpy(p.mem, &wrap, 4);
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	pair_free(&p);

	/* A frame that runs past the ring's end, and a wrap marker with
	 * nothing published after it. */
	pair_init(&p, RING);
	p.prod.pos = p.cons.pos = p.cons.peer = p.prod.peer = p.head = p.tail = RING - 128;
	spk_hdr_encode(p.mem + RING - 128, SPK_CALL, 1, 0, 200);
	p.head = RING + 256;
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	memcpy(p.mem + RING - 128, &wrap, 4);
	p.cons.peer = p.head = RING; /* (a refused head is not forgotten) */
	ck_assert_int_eq(peek(&p), SPOKE_EPROTO);
	/* A good wrap: the frame at the start. */
	spk_hdr_encode(p.mem, SPK_CALL, 5, 7, 0);
	p.cons.peer = p.head = RING + 64;
	consume(&p, 5, 0);
	pair_free(&p);
}
END_TEST

/* Random bytes, random heads: the consumer refuses or accepts a frame
 * within the ring, never reads outside it (ASan), for 100,000 tries. */
START_TEST(test_garbage_random)
{
	struct pair p;
	unsigned accepted = 0, refused = 0;

	srand(7);
	pair_init(&p, 4096);
	for (int t = 0; t < 100000; t++) {
		const uint8_t *f;
		struct spk_hdr h;
		int rc;

		for (int i = 0; i < 8; i++) /* scribble, keeping some frames plausible */
			p.mem[rand() % 4096] = (uint8_t)rand();
		if (rand() % 4 == 0) {
			size_t at = (size_t)(rand() % 64) * 64;

			spk_hdr_encode(p.mem + at, SPK_CALL, 1, 0, (uint32_t)(rand() % 8192));
			if (rand() % 2)
				spk_hdr_set_flags(p.mem + at, (uint16_t)(rand() % 4));
			if (rand() % 8 == 0) {
				uint32_t wrap = SPK_SHM_WRAP;

				memcpy(p.mem + at, &wrap, 4);
			}
		}
		p.cons.pos = (uint64_t)(rand() % 64) * 64;
		p.cons.peer = p.cons.pos;
		p.head = rand() % 2 ? p.cons.pos + (uint64_t)(rand() % 70) * 64
				    : ((uint64_t)rand() << 32 | (uint64_t)rand());
		rc = spk_shm_ring_peek(&p.cons, &h, &f);
		ck_assert(rc == 0 || rc == 1 || rc == SPOKE_EPROTO || rc == SPOKE_ETOOBIG);
		if (rc == 0) {
			size_t body = (h.flags & SPK_SF_BULK) ? SPK_SHM_BULK_DESC
				      : (h.flags & SPK_SF_MR) ? SPK_SHM_MR_DESC : h.len;

			ck_assert(f >= p.mem && f + SPK_HDR_SIZE + body <= p.mem + 4096);
			ck_assert_uint_le(p.cons.cur, p.head - p.cons.pos);
			accepted++;
		} else if (rc < 0) {
			refused++;
		}
	}
	ck_assert_uint_gt(accepted, 100);
	ck_assert_uint_gt(refused, 100);
	pair_free(&p);
}
END_TEST

struct flag_arg {
	volatile uint64_t *word;
};

static bool word_set(void *arg)
{
	struct flag_arg *a = arg;

	return __atomic_load_n(a->word, __ATOMIC_ACQUIRE) != 0;
}

static int always_alive(void *arg)
{
	(void)arg;
	return 0;
}

/* A child process publishes after 30 ms and wakes the parent asleep on
 * the shared futex; a wait with nothing coming times out on time. */
START_TEST(test_futex_wake)
{
	struct {
		uint64_t word;
		uint32_t seq, sleeping;
	} *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct flag_arg a;
	int64_t t0;
	pid_t pid;
	int status;

	ck_assert_ptr_ne(s, MAP_FAILED);
	a.word = &s->word;
	t0 = spk_now_us();
	ck_assert_int_eq(spk_shm_wait(&s->seq, &s->sleeping, word_set, always_alive, &a, 0, 2000,
				      t0 + 20000),
			 SPOKE_ETIMEDOUT);
	ck_assert_int_ge(spk_now_us() - t0, 20000);
	ck_assert_int_lt(spk_now_us() - t0, 200000);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		usleep(30000);
		__atomic_store_n(&s->word, 1, __ATOMIC_RELEASE);
		spk_shm_wake(&s->seq, &s->sleeping);
		_exit(0);
	}
	t0 = spk_now_us();
	/* Slices of a second: only the wake-up ends it early. */
	ck_assert_int_eq(spk_shm_wait(&s->seq, &s->sleeping, word_set, always_alive, &a, 100,
				      1000000, t0 + 5000000),
			 0);
	ck_assert_int_lt(spk_now_us() - t0, 900000);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	munmap(s, 4096);
}
END_TEST

/* ---- messages ---- */

static void sample_offer(struct spk_shm_offer *o)
{
	memset(o, 0, sizeof(*o));
	o->index = 9;
	for (unsigned i = 0; i < SPK_SHM_COOKIE; i++)
		o->cookie[i] = (uint8_t)(0x40 + i);
	snprintf(o->name, sizeof(o->name), SPK_SHM_NAME_PREFIX "0123456789abcdef");
	o->ring = SPK_SHM_RING;
	o->credits = SPK_SHM_CREDITS;
	o->max_msg = 64u << 20;
}

static int offer_decode(const uint8_t *wire, size_t n, struct spk_shm_offer *o)
{
	uint8_t *copy = dup_exact(wire, n);
	spoke_view v;
	int rc;

	spoke_view_init(&v, copy, n);
	rc = spk_shm_offer_unpack(&v, o);
	free(copy);
	return rc;
}

START_TEST(test_offer)
{
	struct spk_shm_offer o, got;
	uint8_t wire[512];
	spoke_buf b;
	size_t len;

	sample_offer(&o);
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_shm_offer_pack(&b, &o), 0);
	len = b.len;
	ck_assert_int_eq(offer_decode(wire, len, &got), 0);
	ck_assert_mem_eq(&o, &got, sizeof(o));
	for (size_t k = 0; k < len; k++)
		ck_assert_int_eq(offer_decode(wire, k, &got), SPOKE_ESHORT);
	wire[len] = 0;
	ck_assert_int_eq(offer_decode(wire, len + 1, &got), SPOKE_EPROTO);
	/* Bad names: another prefix, a non-hex digit, a '/', a newline, none
	 * after the prefix. */
	{
		static const char *const names[] = { "spoke-shx-00", SPK_SHM_NAME_PREFIX "0g",
						     SPK_SHM_NAME_PREFIX "0/", SPK_SHM_NAME_PREFIX "0\n",
						     SPK_SHM_NAME_PREFIX, "" };

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(o.name, sizeof(o.name), "%s", names[i]);
			spoke_buf_init(&b, wire, sizeof(wire));
			ck_assert_int_eq(spk_shm_offer_pack(&b, &o), 0);
			ck_assert_msg(offer_decode(wire, b.len, &got) == SPOKE_EINVAL, "name '%s'",
				      names[i]);
		}
	}
}
END_TEST

START_TEST(test_connect)
{
	struct spk_shm_connect c = { .version = SPK_SHM_VERSION, .index = 3, .ring = SPK_SHM_RING },
			       got;
	uint8_t wire[SPK_SHM_CONNECT_SIZE + 1];
	spoke_buf b;
	spoke_view v;

	memset(c.cookie, 0xee, sizeof(c.cookie));
	spoke_buf_init(&b, wire, sizeof(wire));
	ck_assert_int_eq(spk_shm_connect_pack(&b, &c), 0);
	ck_assert_uint_eq(b.len, SPK_SHM_CONNECT_SIZE);
	spoke_view_init(&v, wire, b.len);
	ck_assert_int_eq(spk_shm_connect_unpack(&v, &got), 0);
	ck_assert_mem_eq(&c, &got, sizeof(c));
	for (size_t k = 0; k < SPK_SHM_CONNECT_SIZE; k++) {
		uint8_t *copy = dup_exact(wire, k);

		spoke_view_init(&v, copy, k);
		ck_assert_int_eq(spk_shm_connect_unpack(&v, &got), SPOKE_ESHORT);
		free(copy);
	}
	wire[SPK_SHM_CONNECT_SIZE] = 0;
	spoke_view_init(&v, wire, SPK_SHM_CONNECT_SIZE + 1);
	ck_assert_int_eq(spk_shm_connect_unpack(&v, &got), SPOKE_EPROTO);
}
END_TEST

static int answer_decode(int32_t status, const char *text, struct spk_shm_answer *a)
{
	uint8_t wire[1024], *copy;
	spoke_buf b;
	spoke_view v;
	int rc;

	spoke_buf_init(&b, wire, sizeof(wire));
	spoke_buf_put_i32(&b, status);
	spoke_buf_put_str(&b, text);
	copy = dup_exact(wire, b.len);
	spoke_view_init(&v, copy, b.len);
	rc = spk_shm_answer_unpack(&v, a);
	free(copy);
	return rc;
}

START_TEST(test_answer)
{
	struct spk_shm_answer a = { .status = SPOKE_EAUTH }, got;
	char longer[SPK_SHM_TEXT_MAX + 1];

	snprintf(a.text, sizeof(a.text), "no live cookie");
	ck_assert_int_eq(answer_decode(a.status, a.text, &got), 0);
	ck_assert_mem_eq(&a, &got, sizeof(a));
	ck_assert_int_eq(answer_decode(0, "", &got), 0);
	ck_assert_int_eq(answer_decode(0, "x", &got), SPOKE_EPROTO);
	ck_assert_int_eq(answer_decode(5, "", &got), SPOKE_EPROTO);
	ck_assert_int_eq(answer_decode(-1, "a\nb", &got), SPOKE_EINVAL);
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	ck_assert_int_eq(answer_decode(-1, longer, &got), SPOKE_EINVAL);
}
END_TEST

static Suite *shm_ring_suite(void)
{
	Suite *s = suite_create("shm_ring");
	TCase *tc = tcase_create("ring");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_wrap);
	tcase_add_test(tc, test_scan_cancels);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_futex_wake);
	suite_add_tcase(s, tc);
	tc = tcase_create("garbage");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_garbage_head);
	tcase_add_test(tc, test_garbage_tail);
	tcase_add_test(tc, test_garbage_frames);
	tcase_add_test(tc, test_garbage_random);
	suite_add_tcase(s, tc);
	tc = tcase_create("wire");
	tcase_add_test(tc, test_offer);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_answer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shm_ring_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
