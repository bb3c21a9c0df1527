/* first-call.c - a driver for timing spoke-launch: opens actor hello-0,
 * calls it once, and prints how long after spoke-launch started
 * ($SPOKE_LAUNCH_T0_US, CLOCK_MONOTONIC) the call completed. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <spoke/spoke.h>

int main(void)
{
	const char *t0 = getenv("SPOKE_LAUNCH_T0_US");
	struct timespec ts;
	spoke_client *c;
	spoke_actor *a;
	char reply[256];
	size_t n;
	int rc;

	if (!t0) {
		fprintf(stderr, "first-call: run me from spoke-launch\n");
		return 2;
	}
	rc = spoke_client_open(&c, NULL);
	if (rc == 0)
		rc = spoke_actor_open(c, "hello-0", &a, 0);
	if (rc == 0) {
		rc = spoke_call(a, 2, "x", 1, reply, sizeof(reply), &n, 0);
		spoke_actor_close(a);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (rc < 0) {
		fprintf(stderr, "first-call: %s (%s)\n", spoke_strerror(rc), spoke_errmsg());
		return 1;
	}
	printf("first call completed %.1f ms after spoke-launch started\n",
	       ((double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3 - atof(t0)) / 1000.0);
	spoke_client_close(c);
	return 0;
}
