/* errmsg.h - the calling thread's last error message (spoke_errmsg()). */
#ifndef SPOKE_ERRMSG_H
#define SPOKE_ERRMSG_H

#include <stddef.h>

/* Sets the message and returns code, so that `return spk_fail(rc, ...)`
 * both reports and fails. */
int spk_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void spk_errmsg_setn(const char *msg, size_t n);
void spk_errmsg_clear(void);

#endif
