/* kept.h - method ids of the "Keeper" and "Conc4" test actors
 * (kept_actor.c). */
#ifndef TESTS_KEPT_H
#define TESTS_KEPT_H

#define KEEP_ECHO_LATER 40    /* u32 ms, bytes -> the bytes, ms later, from another thread */
#define KEEP_FAIL_LATER 41    /* u32 ms -> fails -EIO "disk on fire", ms later */
#define KEEP_TWICE 42         /* -> "one"; finishes twice */
#define KEEP_LAST 43          /* -> i32 what the second finish of KEEP_TWICE returned */
#define KEEP_FOREVER 44       /* never answered; its cancel callback finishes it */
#define KEEP_CANCELLED 45     /* -> u32 cancels seen, i32 what their finish returned */
#define KEEP_DEFER_WRONG 46   /* -> str the message of a refused defer */
/* u32 n -> u32 steps, u32 peak batch (1 token a 1 ms step); as a stream,
 * each token (u32 its index) is a chunk, emitted by the step on the loop */
#define KEEP_GENERATE 47
#define KEEP_HOOKS_REFUSED 48 /* -> str the message of a refused hook */
/* u32 n, u32 size, u32 wait_ms -> a stream of n chunks of size bytes
 * (u32 index, then filler), emitted by a thread of the actor's that waits
 * up to wait_ms for room (0: on SPOKE_EAGAIN it sleeps 1 ms, counted);
 * then the end.  An emit refused ends it with that failure. */
#define KEEP_STREAM 52
/* -> u32 EAGAINs of KEEP_STREAM's emits, u32 streams that saw their
 * cancel, i32 the last refused emit's code */
#define KEEP_STREAM_STATS 53
#define KEEP_PID 54 /* -> u32 the worker's pid */
/* u32 n, u32 size -> a stream of n chunks of size bytes (u32 index, then
 * filler), all emitted by the method itself before it finishes (at most
 * SPOKE_STREAM_QUEUE bytes of them: the loop's thread never waits) */
#define KEEP_BURST 55
/* -> u64 CLOCK_MONOTONIC ns at which the last cancel callback ran */
#define KEEP_CANCEL_AT 56
/* -> i64 the milliseconds its caller has left (spoke_call_deadline(NULL)),
 * -1 for no deadline */
#define KEEP_TIME_LEFT 57
#define KEEP_COUNT 58 /* -> u32 how many times this method ran, this one included */
#define CONC_NAP 50           /* u32 ms -> u32 calls running at its start */
#define CONC_PEAK 51          /* -> u32 most calls running at once */

#endif
