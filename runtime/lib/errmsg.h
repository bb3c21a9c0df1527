/* errmsg.h - the calling thread's last error message (spoke_errmsg()). */
#ifndef SPOKE_ERRMSG_H
#define SPOKE_ERRMSG_H

#include <stddef.h>

#include <spoke/serializer.h>

/* Sets the message and returns code, so that `return spk_fail(rc, ...)`
 * both reports and fails. */
int spk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spk_errmsg_setn(const char *msg, size_t n);
void spk_errmsg_clear(void);

/* The rule of every public function that returns a status (errors.h):
 * spk_api_enter() first, and every return through spk_api_ret(rc), which
 * fills in spoke_strerror(rc) where a failure left no message.  A NULL
 * argument a function cannot work without is SPOKE_EINVAL, named by
 * spk_api_null(). */
void spk_api_enter(void);
int spk_api_ret(int rc);
int spk_api_null(const char *func, const char *arg);

/* The payload of a REPLY with a negative status: the message's text; with
 * SPOKE_EMETHOD (a method's own failure) first the method's code, i32.
 * pack writes it (code is used with SPOKE_EMETHOD only); unpack, on the
 * caller's side, makes it the thread's spoke_errmsg() and
 * spoke_method_status() and returns status (SPOKE_EPROTO if malformed). */
int spk_reply_error_pack(spoke_buf *b, int status, int code, const char *text);
int spk_reply_error_unpack(int status, const void *p, size_t n);

/* A failure kept with a future that another wait (or a close) completes:
 * the thread's message into buf[0..cap) with its NUL, where it fits, and
 * spoke_method_status() into *code; returns the message's length (0: it
 * did not fit).
 * spk_errmsg_restore() makes it the thread's again, for the future's own
 * wait, and returns status. */
size_t spk_errmsg_keep(int *code, void *buf, size_t cap);
int spk_errmsg_restore(int status, int code, const void *buf, size_t len);

#endif
