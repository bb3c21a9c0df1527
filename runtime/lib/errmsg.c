/* errmsg.c - per-thread error messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <spoke/client.h>
#include <spoke/errors.h>

#include "errmsg.h"

static __thread char msg[512];
static __thread int method_status; /* the method's own code while msg is its message */

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
	method_status = 0;
	return code;
}

void spk_errmsg_setn(const char *m, size_t n)
{
	if (n >= sizeof(msg))
		n = sizeof(msg) - 1;
	memcpy(msg, m, n);
	msg[n] = '\0';
	method_status = 0;
}

void spk_errmsg_clear(void)
{
	msg[0] = '\0';
	method_status = 0;
}

void spk_api_enter(void)
{
	msg[0] = '\0';
	method_status = 0;
}

int spk_api_ret(int rc)
{
	if (rc < 0 && msg[0] == '\0')
		snprintf(msg, sizeof(msg), "%s", spoke_strerror(rc));
	else if (rc >= 0)
		msg[0] = '\0';
	if (rc != SPOKE_EMETHOD)
		method_status = 0;
	return rc;
}

int spk_api_null(const char *func, const char *arg)
{
	return spk_fail(SPOKE_EINVAL, "%s: %s is NULL", func, arg);
}

int spoke_method_status(void)
{
	return method_status;
}

int spk_reply_error_pack(spoke_buf *b, int status, int code, const char *text)
{
	if (status == SPOKE_EMETHOD)
		spoke_buf_put_i32(b, code);
	return spoke_buf_put_raw(b, text, strlen(text));
}

int spk_reply_error_unpack(int status, const void *p, size_t n)
{
	spoke_view v;
	int32_t code = 0;
	const void *text;

	spoke_view_init(&v, p, n);
	if (status == SPOKE_EMETHOD && (spoke_view_get_i32(&v, &code) < 0 || code >= 0))
		return spk_fail(SPOKE_EPROTO, "malformed method error from the actor");
	n = spoke_view_remaining(&v);
	spoke_view_get_raw(&v, &text, n);
	spk_errmsg_setn(text, n);
	method_status = code;
	return status;
}

size_t spk_errmsg_keep(int *code, void *buf, size_t cap)
{
	size_t n = strlen(msg);

	*code = method_status;
	if (!buf || n >= cap) /* a message cut short would mislead */
		return 0;
	memcpy(buf, msg, n);
	((char *)buf)[n] = '\0';
	return n;
}

int spk_errmsg_restore(int status, int code, const void *buf, size_t len)
{
	spk_errmsg_setn(buf, len);
	method_status = status == SPOKE_EMETHOD ? code : 0;
	return status;
}
