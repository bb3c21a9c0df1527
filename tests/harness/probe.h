/* probe.h - method ids of the "Probe" test actor. */
#ifndef TESTS_PROBE_H
#define TESTS_PROBE_H

#include <stddef.h>
#include <stdint.h>

#define PROBE_ECHO 1
#define PROBE_GPUS 2
#define PROBE_PID 3
#define PROBE_CRASH 4
#define PROBE_NAP 5
#define PROBE_FAIL 6
#define PROBE_FILL 7 /* u32 n, u8 seed -> n bytes of probe_byte(seed, i) */
#define PROBE_SUM 8  /* bytes -> u64 probe_sum of them */
#define PROBE_SINK 9 /* bytes (not read) -> u32 their count */
/* i32 code, then the rest as a message: packs a partial reply, then fails
 * with code (through spoke_method_fail when a message is given). */
#define PROBE_FAIL_WITH 20
#define PROBE_SELF 31 /* str hub, str token -> i32 rc, u32 ms, str msg of opening itself */
/* Opens a client to its own job (spoke_client_open(&c, NULL)) and lists
 * the nodes -> i32 status, then the node names or the error message. */
#define PROBE_NODES 10
/* bytes -> u64 the address its request lies at, u64 the address its reply
 * is packed at, u64 probe_sum of the request (where a call's bytes are) */
#define PROBE_WHERE 32

/* The test pattern and checksum both ends compute. */
static inline uint8_t probe_byte(uint8_t seed, size_t i)
{
	return (uint8_t)(seed + i * 131 + (i >> 12));
}

static inline uint64_t probe_sum(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

#endif
