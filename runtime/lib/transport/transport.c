/* transport.c - the table of this build's transports, and the helpers
 * every transport shares (transport.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "transport.h"

extern const struct spk_transport spk_tcp_transport;
#if HAVE_RDMA
extern const struct spk_transport spk_rdma_transport;
#endif
#if HAVE_SHM
extern const struct spk_transport spk_shm_transport;
#endif

const struct spk_transport *const spk_transports[] = {
#if HAVE_SHM
	&spk_shm_transport,
#endif
#if HAVE_RDMA
	&spk_rdma_transport,
#endif
	&spk_tcp_transport,
	NULL,
};

const struct spk_transport *spk_transport_find(const char *name)
{
	for (const struct spk_transport *const *t = spk_transports; *t; t++)
		if (strcmp((*t)->name, name) == 0)
			return *t;
	return NULL;
}

int spk_transport_unavailable(const struct spk_transport *t)
{
	return t->unavailable ? t->unavailable : SPOKE_ETRANSPORT;
}

/* "auto, shm, rdma or tcp": the values SPOKE_TRANSPORT takes here. */
static void choices(char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "auto");

	for (const struct spk_transport *const *t = spk_transports; *t && n < cap; t++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", t[1] ? ", " : " or ", (*t)->name);
}

/* Every transport this version of Spoke knows, built or not, and the code
 * of a handle that asks for one this build lacks. */
static const struct {
	const char *name;
	int unavailable;
} known[] = {
	{ "shm", SPOKE_ETRANSPORT },
	{ "rdma", SPOKE_ERDMA },
	{ "tcp", SPOKE_ETRANSPORT },
};

int spk_transport_from_env(const struct spk_transport **out)
{
	const char *s = getenv("SPOKE_TRANSPORT");
	char list[128];

	*out = NULL;
	if (!s || !*s || strcmp(s, "auto") == 0)
		return 0;
	*out = spk_transport_find(s);
	if (*out)
		return 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i].name) == 0)
			return spk_fail(known[i].unavailable, "SPOKE_TRANSPORT=%s, but this Spoke was "
					"built without it", s);
	choices(list, sizeof(list));
	return spk_fail(SPOKE_EINVAL, "SPOKE_TRANSPORT=%s: expected %s", s, list);
}

int spk_ser_failed(int rc, const char *what, const char *who)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", spoke_errmsg()[0] ? spoke_errmsg() : spoke_strerror(rc));
	return spk_fail(rc, "actor %s: %s failed: %s", who, what, why);
}

int spk_no_room(size_t len, size_t cap)
{
	return spk_fail(SPOKE_ENOSPC, "reply of %zu bytes, buffer of %zu", len, cap);
}

void spk_future_complete(spoke_future *f, int status)
{
	f->status = status;
	if (status < 0 && status != SPOKE_ENOSPC)
		f->reply_len = spk_errmsg_keep(&f->method_status_, f->reply_, f->cap_);
	__atomic_store_n(&f->done_, 1, __ATOMIC_RELEASE);
}
