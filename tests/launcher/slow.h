/* slow.h - method ids of the "Slow" actor of the spoke-launch tests. */
#ifndef TESTS_LAUNCHER_SLOW_H
#define TESTS_LAUNCHER_SLOW_H

#define SLOW_ECHO 1 /* bytes -> the same bytes */
#define SLOW_NAP 2  /* u32 ms -> sleeps, then the same u32 */

#endif
