/* status_calls.c - a driver for tests/launcher/test_status.sh: it makes an
 * exact number of calls of a test actor ("Probe" type of testactor.so) so
 * that spoke-status's counts can be checked against them.
 *
 * Usage: status_calls ACTOR ECHOES BYTES FAILS NAPS NAP_MS
 *        status_calls --kept ACTOR ECHOES BYTES FAILS MS
 *
 * ECHOES echo calls of BYTES bytes each (replies checked), FAILS calls of
 * the method that fails (each must fail with SPOKE_EMETHOD), NAPS calls of
 * nap of NAP_MS milliseconds.  With --kept, the actor is a "Keeper" or a
 * "Conc4" (tests/harness/kept.h): ECHOES calls of echo_later (a u32 MS,
 * then BYTES bytes, echoed MS later: a kept call), FAILS of fail_later.
 * Exit status 0, or 1 with why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/spoke.h>

#include "../harness/kept.h"
#include "../harness/probe.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "status_calls: %s: %s (%s)\n", what, spoke_strerror(rc), spoke_errmsg());
	return 1;
}

/* Kept calls: echo_later and fail_later. */
static int kept(spoke_actor *a, unsigned long echoes, unsigned long bytes, unsigned long fails,
		unsigned long ms)
{
	static char req[4 + (1 << 16)], rep[1 << 16];
	size_t n;
	int rc;

	req[0] = (char)ms;
	req[1] = (char)(ms >> 8);
	req[2] = req[3] = 0;
	memset(req + 4, 'k', bytes);
	for (unsigned long i = 0; i < echoes; i++) {
		rc = spoke_call(a, KEEP_ECHO_LATER, req, 4 + bytes, rep, sizeof(rep), &n, 0);
		if (rc < 0)
			return fail("echo_later", rc);
		if (n != bytes || memcmp(rep, req + 4, bytes))
			return fail("echo_later: wrong reply", SPOKE_EPROTO);
	}
	for (unsigned long i = 0; i < fails; i++) {
		rc = spoke_call(a, KEEP_FAIL_LATER, req, 4, rep, sizeof(rep), &n, 0);
		if (rc != SPOKE_EMETHOD)
			return fail("fail_later: expected SPOKE_EMETHOD", rc);
	}
	printf("status_calls: %lu kept echoes of %lu B, %lu kept failures\n", echoes, bytes, fails);
	return 0;
}

int main(int argc, char **argv)
{
	spoke_client *c = NULL;
	spoke_actor *a = NULL;
	unsigned long echoes, bytes, fails, naps, nap_ms;
	static char req[1 << 16], rep[1 << 16];
	uint8_t napreq[4];
	size_t n;
	int rc;

	bool keep = argc == 7 && !strcmp(argv[1], "--kept");

	if (keep) {
		argv++;
		argc--;
	}
	if (argc != 7 - keep) {
		fprintf(stderr, "usage: status_calls ACTOR ECHOES BYTES FAILS NAPS NAP_MS\n");
		return 2;
	}
	echoes = strtoul(argv[2], NULL, 10);
	bytes = strtoul(argv[3], NULL, 10);
	fails = strtoul(argv[4], NULL, 10);
	naps = keep ? 0 : strtoul(argv[5], NULL, 10);
	nap_ms = strtoul(argv[keep ? 5 : 6], NULL, 10);
	if (bytes > sizeof(req))
		return 2;
	memset(req, 'x', bytes);
	rc = spoke_client_open(&c, NULL);
	if (rc < 0)
		return fail("spoke_client_open", rc);
	rc = spoke_actor_open(c, argv[1], &a, 0);
	if (rc < 0)
		return fail("spoke_actor_open", rc);
	if (keep) {
		rc = kept(a, echoes, bytes, fails, nap_ms);
		spoke_actor_close(a);
		spoke_client_close(c);
		return rc;
	}
	for (unsigned long i = 0; i < echoes; i++) {
		rc = spoke_call(a, PROBE_ECHO, req, bytes, rep, sizeof(rep), &n, 0);
		if (rc < 0)
			return fail("echo", rc);
		if (n != bytes || memcmp(rep, req, bytes))
			return fail("echo: wrong reply", SPOKE_EPROTO);
	}
	for (unsigned long i = 0; i < fails; i++) {
		rc = spoke_call(a, PROBE_FAIL, NULL, 0, rep, sizeof(rep), &n, 0);
		if (rc != SPOKE_EMETHOD)
			return fail("fail: expected SPOKE_EMETHOD", rc);
	}
	napreq[0] = (uint8_t)nap_ms;
	napreq[1] = (uint8_t)(nap_ms >> 8);
	napreq[2] = napreq[3] = 0;
	for (unsigned long i = 0; i < naps; i++) {
		rc = spoke_call(a, PROBE_NAP, napreq, 4, rep, sizeof(rep), &n, 0);
		if (rc < 0)
			return fail("nap", rc);
	}
	spoke_actor_close(a);
	spoke_client_close(c);
	printf("status_calls: %lu echoes of %lu B, %lu failures, %lu naps of %lu ms\n", echoes,
	       bytes, fails, naps, nap_ms);
	return 0;
}
