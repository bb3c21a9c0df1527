/* shm_wire.c - the shared-memory transport's messages: the worker's offer,
 * the client's connect message and the worker's answer (shm_wire.h). */
#include <ctype.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "proto.h"
#include "shm_wire.h"

/* The view's error: trailing bytes after a whole message. */
static int no_trailing(spoke_view *v, const char *what)
{
	size_t left = spoke_view_remaining(v);

	if (spoke_view_error(v) || left == 0)
		return spoke_view_error(v);
	v->err = SPOKE_EPROTO;
	return spk_fail(SPOKE_EPROTO, "%zu bytes after the %s", left, what);
}

static int bad(spoke_view *v, int code)
{
	v->err = code;
	return code;
}

int spk_shm_name_check(const char *s, size_t n)
{
	size_t pre = strlen(SPK_SHM_NAME_PREFIX);
	int rc = spk_name_check("shared-memory socket name", s, n, SPK_SHM_NAME_MAX);

	if (rc < 0)
		return rc;
	if (n <= pre || memcmp(s, SPK_SHM_NAME_PREFIX, pre) != 0)
		return spk_fail(SPOKE_EINVAL, "shared-memory socket name '%.*s' does not start with "
				"'" SPK_SHM_NAME_PREFIX "'", (int)n, s);
	for (size_t i = pre; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return spk_fail(SPOKE_EINVAL, "shared-memory socket name '%.*s': not a hex "
					"digit after the prefix", (int)n, s);
	return 0;
}

int spk_shm_offer_pack(spoke_buf *b, const struct spk_shm_offer *o)
{
	spoke_buf_put_u32(b, o->index);
	spoke_buf_put_raw(b, o->cookie, SPK_SHM_COOKIE);
	spoke_buf_put_str(b, o->name);
	spoke_buf_put_u32(b, o->ring);
	spoke_buf_put_u32(b, o->credits);
	spoke_buf_put_u32(b, o->max_msg);
	return spoke_buf_error(b);
}

int spk_shm_offer_unpack(spoke_view *v, struct spk_shm_offer *o)
{
	const void *cookie = NULL;

	memset(o, 0, sizeof(*o));
	spoke_view_get_u32(v, &o->index);
	if (spoke_view_get_raw(v, &cookie, SPK_SHM_COOKIE) == 0)
		memcpy(o->cookie, cookie, SPK_SHM_COOKIE);
	if (spk_view_get_name(v, "shared-memory socket name", o->name, sizeof(o->name)) < 0)
		return spoke_view_error(v);
	if (spk_shm_name_check(o->name, strlen(o->name)) < 0)
		return bad(v, SPOKE_EINVAL);
	spoke_view_get_u32(v, &o->ring);
	spoke_view_get_u32(v, &o->credits);
	spoke_view_get_u32(v, &o->max_msg);
	return no_trailing(v, "shared-memory offer");
}

int spk_shm_connect_pack(spoke_buf *b, const struct spk_shm_connect *c)
{
	spoke_buf_put_u32(b, c->version);
	spoke_buf_put_u32(b, c->index);
	spoke_buf_put_raw(b, c->cookie, SPK_SHM_COOKIE);
	spoke_buf_put_u32(b, c->ring);
	return spoke_buf_error(b);
}

int spk_shm_connect_unpack(spoke_view *v, struct spk_shm_connect *c)
{
	const void *cookie = NULL;

	memset(c, 0, sizeof(*c));
	spoke_view_get_u32(v, &c->version);
	spoke_view_get_u32(v, &c->index);
	if (spoke_view_get_raw(v, &cookie, SPK_SHM_COOKIE) == 0)
		memcpy(c->cookie, cookie, SPK_SHM_COOKIE);
	spoke_view_get_u32(v, &c->ring);
	return no_trailing(v, "shared-memory connect message");
}

int spk_shm_answer_pack(spoke_buf *b, const struct spk_shm_answer *a)
{
	spoke_buf_put_i32(b, a->status);
	spoke_buf_put_str(b, a->text);
	return spoke_buf_error(b);
}

int spk_shm_answer_unpack(spoke_view *v, struct spk_shm_answer *a)
{
	const char *s = NULL;
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	spoke_view_get_i32(v, &a->status);
	if (spoke_view_get_str(v, &s, &n) < 0)
		return spoke_view_error(v);
	if (a->status > 0 || (a->status == 0 && n))
		return spk_fail(bad(v, SPOKE_EPROTO), "a shared-memory answer of status %d with %zu "
				"bytes of text", a->status, n);
	if (n && spk_path_check("shared-memory answer", s, n, sizeof(a->text)) < 0)
		return bad(v, SPOKE_EINVAL);
	memcpy(a->text, s, n);
	return no_trailing(v, "shared-memory answer");
}
