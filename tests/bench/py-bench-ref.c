/* py-bench-ref.c - the C side of tests/bench/py-bench.py: the same 64-byte
 * echo call that the Python benchmark makes, from C, on the same actor.
 *
 * Usage: py-bench-ref ACTOR CALLS POLL_US
 *        py-bench-ref --stream ACTOR METHOD CHUNKS
 * Opens a client from the environment (the job's), a handle to ACTOR with
 * a spin budget of POLL_US, makes 200 warm-up calls, then CALLS calls of
 * 64 bytes to method 1 (echo), and prints "us_per_call X".  --stream reads
 * a stream of CHUNKS chunks of 16 B from METHOD (request: u32 CHUNKS, u32
 * 16, u32 1000, the harness Keeper's KEEP_STREAM and the Python PyProbe's
 * chunks alike), each checked for its size, and prints "chunks_per_s X".
 * Exit 1 with a message if anything fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include <spoke/spoke.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int stream_rate(const char *name, uint32_t method, uint32_t chunks)
{
	uint8_t req[12], chunk[64];
	uint32_t hdr[3] = { chunks, 16, 1000 };
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	spoke_stream *s = NULL;
	uint32_t got = 0;
	double t0;
	size_t n;
	int rc = 1, r;

	memcpy(req, hdr, sizeof(req)); /* little-endian hosts, as the actors read it */
	if (spoke_client_open(&c, NULL) < 0 || spoke_actor_open(c, name, &a, 0) < 0) {
		fprintf(stderr, "py-bench-ref: %s\n", spoke_errmsg());
		goto out;
	}
	t0 = now_us();
	if (spoke_call_stream(a, method, req, sizeof(req), &s, 0) < 0) {
		fprintf(stderr, "py-bench-ref: stream: %s\n", spoke_errmsg());
		goto out;
	}
	while ((r = spoke_stream_next(s, chunk, sizeof(chunk), &n, 10000)) == 0) {
		if (n != 16) {
			fprintf(stderr, "py-bench-ref: chunk %u of %zu bytes\n", got, n);
			goto out;
		}
		got++;
	}
	if (r != SPOKE_EOF || got != chunks) {
		fprintf(stderr, "py-bench-ref: stream ended after %u chunks: %s\n", got,
			spoke_errmsg());
		goto out;
	}
	printf("chunks_per_s %.0f\n", chunks / ((now_us() - t0) / 1e6));
	rc = 0;
out:
	spoke_stream_close(s);
	spoke_actor_close(a);
	spoke_client_close(c);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned char req[64], rep[128];
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	long calls, poll_us;
	double t0 = 0;
	size_t n;
	int rc = 1;

	if (argc == 5 && !strcmp(argv[1], "--stream"))
		return stream_rate(argv[2], (uint32_t)strtoul(argv[3], NULL, 10),
				   (uint32_t)strtoul(argv[4], NULL, 10));
	if (argc != 4 || (calls = strtol(argv[2], NULL, 10)) <= 0 ||
	    (poll_us = strtol(argv[3], NULL, 10)) < 0) {
		fprintf(stderr, "usage: py-bench-ref ACTOR CALLS POLL_US\n");
		return 2;
	}
	memset(req, 'x', sizeof(req));
	if (spoke_client_open(&c, NULL) < 0 || spoke_actor_open(c, argv[1], &a, 0) < 0) {
		fprintf(stderr, "py-bench-ref: %s\n", spoke_errmsg());
		goto out;
	}
	spoke_actor_set_poll(a, (int)poll_us);
	for (long i = 0; i < 200 + calls; i++) {
		if (i == 200)
			t0 = now_us();
		if (spoke_call(a, 1, req, sizeof(req), rep, sizeof(rep), &n, 0) < 0 || n != 64) {
			fprintf(stderr, "py-bench-ref: call %ld: %s\n", i, spoke_errmsg());
			goto out;
		}
	}
	printf("us_per_call %.3f\n", (now_us() - t0) / calls);
	rc = 0;
out:
	spoke_actor_close(a);
	spoke_client_close(c);
	return rc;
}
