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
#define KEEP_GENERATE 47      /* u32 n -> u32 steps, u32 peak batch (1 token a 1 ms step) */
#define KEEP_HOOKS_REFUSED 48 /* -> str the message of a refused hook */
#define CONC_NAP 50           /* u32 ms -> u32 calls running at its start */
#define CONC_PEAK 51          /* -> u32 most calls running at once */

#endif
