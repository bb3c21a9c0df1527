/* errmsg.c - per-thread error messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <spoke/client.h>
#include <spoke/errors.h>

#include "errmsg.h"

static __thread char msg[512];

const char *spoke_errmsg(void)
{
	return msg;
}

int spk_fail(int code, const char *fmt, ...)
{
	char tmp[sizeof(msg)]; /* the arguments may include spoke_errmsg() itself */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(msg, tmp, sizeof(msg));
	return code;
}

void spk_errmsg_setn(const char *m, size_t n)
{
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, m, n);
	msg[n] = '\0';
}

void spk_errmsg_clear(void)
{
	msg[0] = '\0';
}

void spk_api_enter(void)
{
	msg[0] = '\0';
}

int spk_api_ret(int rc)
{
	if (rc < 0 && msg[0] == '\0')
		snprintf(msg, sizeof(msg), "%s", spoke_strerror(rc));
	else if (rc >= 0)
		msg[0] = '\0';
	return rc;
}

int spk_api_null(const char *func, const char *arg)
{
	return spk_fail(SPOKE_EINVAL, "%s: %s is NULL", func, arg);
}
