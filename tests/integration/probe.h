/* probe.h - method ids of the "Probe" test actor. */
#ifndef TESTS_PROBE_H
#define TESTS_PROBE_H

#define PROBE_ECHO 1
#define PROBE_GPUS 2
#define PROBE_PID 3
#define PROBE_CRASH 4
#define PROBE_NAP 5
#define PROBE_FAIL 6

#endif
