/* cpp-bench-ref.cpp - the C++ side of tests/bench/py-bench.py: the 64-byte
 * echo call made through the C++ binding (include/spoke/spoke.hpp), next to
 * py-bench-ref's from C, on the same actor.
 *
 * Usage: cpp-bench-ref ACTOR CALLS POLL_US
 * spoke::Client() from the environment (the job's), a handle to ACTOR with
 * a spin budget of POLL_US, 200 warm-up calls, then CALLS calls of
 * handle.call<std::vector<uint8_t>>(1, v) with 60 bytes in v (64 on the
 * wire with the Serializer's u32 count: the same bytes as C's 64 B echo),
 * reply checked, and prints "us_per_call X".  Exit 1 with the message of a
 * spoke::Error. */
#include <spoke/spoke.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char **argv)
{
	long calls, poll_us;

	if (argc != 4 || (calls = std::strtol(argv[2], nullptr, 10)) <= 0 ||
	    (poll_us = std::strtol(argv[3], nullptr, 10)) < 0) {
		std::fprintf(stderr, "usage: cpp-bench-ref ACTOR CALLS POLL_US\n");
		return 2;
	}
	try {
		spoke::Client client;
		spoke::ActorHandle a = client.actor(argv[1]);
		std::vector<uint8_t> req(60, 'x');
		std::chrono::steady_clock::time_point t0;

		a.setPoll(static_cast<int>(poll_us));
		for (long i = 0; i < 200 + calls; i++) {
			if (i == 200)
				t0 = std::chrono::steady_clock::now();
			if (a.call<std::vector<uint8_t>>(1, req).size() != req.size()) {
				std::fprintf(stderr, "cpp-bench-ref: call %ld: wrong reply\n", i);
				return 1;
			}
		}
		std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - t0;
		std::printf("us_per_call %.3f\n", us.count() / static_cast<double>(calls));
	} catch (const spoke::Error &e) {
		std::fprintf(stderr, "cpp-bench-ref: %s\n", e.what());
		return 1;
	}
	return 0;
}
