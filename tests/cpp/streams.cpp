/* streams.cpp - spoke::Stream and Future::cancel of the C++ binding against
 * the "Keeper" test actor (tests/harness/kept_actor.c, method ids in
 * tests/harness/kept.h), run by tests/cpp/run.sh as the driver of a
 * spoke-launch --local job whose agent offers the harness's module.
 * Prints "ok N - what" per check and exits 1 if any failed. */
#include <spoke/spoke.hpp>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "kept.h"

namespace {

int n_checks, n_failed;

void ok(bool cond, const std::string &what)
{
	n_checks++;
	if (!cond)
		n_failed++;
	std::printf("%s %d - %s\n", cond ? "ok" : "not ok", n_checks, what.c_str());
	std::fflush(stdout);
}

/* KEEP_STREAM's request: u32 n, u32 size, u32 wait_ms. */
struct StreamReq {
	uint32_t n, size, wait_ms;
};

uint32_t u32_at(const void *p)
{
	uint32_t v;
	std::memcpy(&v, p, 4);
	return v;
}

/* KEEP_STREAM's chunk i: u32 i, then size - 4 bytes of i & 0xff. */
bool chunk_ok(const std::string &c, uint32_t i, uint32_t size)
{
	if (c.size() != size || u32_at(c.data()) != i)
		return false;
	for (size_t k = 4; k < c.size(); k++)
		if (static_cast<uint8_t>(c[k]) != (i & 0xff))
			return false;
	return true;
}

/* KEEP_STREAM_STATS: u32 EAGAINs, u32 streams that saw their cancel, i32
 * the last refused emit's code; KEEP_CANCELLED: u32 cancels seen. */
uint32_t stat_at(const spoke::ActorHandle &a, uint32_t method, size_t off)
{
	uint8_t r[16];
	size_t n = 0;
	int rc = spoke_call(a.get(), method, nullptr, 0, r, sizeof(r), &n, 5000);

	return rc == 0 && n >= off + 4 ? u32_at(r + off) : UINT32_MAX;
}

uint32_t stream_cancels(const spoke::ActorHandle &a)
{
	return stat_at(a, KEEP_STREAM_STATS, 4);
}

template <class F> uint32_t poll_for(F &&f, uint32_t want)
{
	uint32_t got = f();
	for (int i = 0; i < 500 && got != want; i++) {
		usleep(10 * 1000);
		got = f();
	}
	return got;
}

} // namespace

template <> struct spoke::Serializer<StreamReq> {
	static void PackTo(spoke::MessageWriter &out, const StreamReq &r)
	{
		out << r.n << r.size << r.wait_ms;
	}
	static void UnpackFrom(spoke::MessageView &in, StreamReq &r)
	{
		in >> r.n >> r.size >> r.wait_ms;
	}
};

/* A request with no bytes. */
template <> struct spoke::Serializer<spoke::Nothing> {
	static void PackTo(spoke::MessageWriter &, const spoke::Nothing &) {}
	static void UnpackFrom(spoke::MessageView &, spoke::Nothing &) {}
};

static void streams(spoke::Client &client, const std::string &name)
{
	spoke::ActorHandle a = client.actor(name);

	{ // chunks in order through the range-for
		spoke::Stream s = a.stream(KEEP_STREAM, StreamReq{ 100, 32, 1000 });
		uint32_t i = 0;
		bool good = true;
		for (const std::string &c : s)
			good = good && chunk_ok(c, i++, 32);
		ok(good && i == 100, "range-for: 100 chunks of 32 bytes in order (" +
					     std::to_string(i) + ")");
		std::string more;
		ok(!s.next(more), "after the end, next() is false again");
	}
	{ // a chunk larger than the buffer: it grows, the chunk is kept
		spoke::Stream s = a.stream(KEEP_STREAM, StreamReq{ 2, 100000, 1000 });
		std::vector<uint8_t> c;
		size_t first = s.capacity();
		bool got = s.next(c);
		ok(got && c.size() == 100000 && u32_at(c.data()) == 0 && c[99999] == 0,
		   "a 100000-byte chunk into a " + std::to_string(first) + "-byte buffer");
		ok(s.capacity() == 100000, "the buffer grew to the chunk (" +
						   std::to_string(s.capacity()) + ")");
		got = s.next(c);
		ok(got && u32_at(c.data()) == 1 && c[4] == 1, "then the second chunk");
		ok(!s.next(c), "then the end");
	}
	{ // cancel midway: the actor's emit sees SPOKE_ECANCELED
		uint32_t before = stream_cancels(a);
		spoke::Stream s = a.stream(KEEP_STREAM, StreamReq{ 1000000, 16, 5000 });
		std::string c;
		for (int i = 0; i < 10; i++)
			s.next(c);
		ok(chunk_ok(c, 9, 16), "ten chunks read");
		s.cancel();
		try {
			s.next(c);
			ok(false, "a read after cancel(): no exception");
		} catch (const spoke::Error &e) {
			ok(e.code() == SPOKE_ECANCELED,
			   std::string("a read after cancel(): ") + e.what());
		}
		ok(poll_for([&] { return stream_cancels(a); }, before + 1) == before + 1,
		   "the actor saw the cancel");
		// dropped unfinished: the destructor cancels it
		{
			spoke::Stream d = a.stream(KEEP_STREAM, StreamReq{ 1000000, 16, 5000 });
			d.next(c);
		}
		ok(poll_for([&] { return stream_cancels(a); }, before + 2) == before + 2,
		   "a stream destroyed unfinished is cancelled");
	}
	{ // the method's failure; a timeout that lets the stream go on
		spoke::Stream s = a.stream(KEEP_STREAM, StreamReq{ 1, 2, 0 }); // size < 4: -EINVAL
		std::string c;
		try {
			s.next(c);
			ok(false, "a refused stream: no exception");
		} catch (const spoke::Error &e) {
			ok(e.code() == SPOKE_EMETHOD && e.methodStatus() == -EINVAL,
			   std::string("a refused stream: ") + e.what());
		}
		spoke::Stream f = a.stream(KEEP_FOREVER);
		for (int i = 0; i < 2; i++) {
			try {
				f.next(c, 50);
				ok(false, "a chunk that never comes: no exception");
			} catch (const spoke::Error &e) {
				ok(e.code() == SPOKE_ETIMEDOUT, std::string("no chunk in 50 ms: ") +
									e.what());
			}
		}
	}
	{ // 8 threads streaming on one handle
		std::vector<std::thread> ts;
		int bad = 0;
		std::mutex m;
		for (uint32_t k = 0; k < 8; k++)
			ts.emplace_back([&, k] {
				try {
					uint32_t n = 40 + k, size = 8 + 4 * k, i = 0;
					spoke::Stream s = a.stream(KEEP_STREAM, StreamReq{ n, size, 5000 });
					for (const std::string &c : s)
						if (!chunk_ok(c, i++, size)) {
							std::lock_guard<std::mutex> g(m);
							bad++;
						}
					if (i != n) {
						std::lock_guard<std::mutex> g(m);
						bad++;
					}
				} catch (const std::exception &e) {
					std::lock_guard<std::mutex> g(m);
					std::printf("# thread %u: %s\n", k, e.what());
					bad++;
				}
			});
		for (auto &t : ts)
			t.join();
		ok(bad == 0, "8 threads, a stream each, all chunks in order");
	}
	{ // Future::cancel: the actor's cancel callback runs
		auto cancels = [&] { return stat_at(a, KEEP_CANCELLED, 0); };
		uint32_t before = cancels();
		spoke::Future<void> f = a.callAsync<void>(KEEP_FOREVER, spoke::Nothing{});
		auto t0 = std::chrono::steady_clock::now();
		bool was = f.cancel();
		auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
				  std::chrono::steady_clock::now() - t0)
				  .count();
		ok(was && ms < 500, "Future::cancel returned at once (" + std::to_string(ms) + " ms)");
		try {
			f.get();
			ok(false, "get() after cancel(): no exception");
		} catch (const spoke::Error &e) {
			ok(e.code() == SPOKE_ECANCELED, std::string("get() after cancel(): ") + e.what());
		}
		ok(poll_for(cancels, before + 1) == before + 1, "the actor saw the future's cancel");
		spoke::Future<void> g = a.callAsync<void>(KEEP_CANCELLED, spoke::Nothing{});
		g.wait(5000);
		ok(!g.cancel(), "a finished future is not cancelled");
	}
}

int main()
{
	try {
		spoke::Client client; // $SPOKE_HUB and the job's token
		std::string name = "cpp-keeper-" + std::to_string(getpid());
		client.spawnRemote("Keeper", name);
		streams(client, name);
	} catch (const std::exception &e) {
		ok(false, std::string("unexpected exception: ") + e.what());
	}
	std::printf("streams: %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
