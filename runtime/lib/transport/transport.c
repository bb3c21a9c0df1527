/* transport.c - the table of this build's transports, and the helpers
 * every transport shares (transport.h). */
#include <errno.h>
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

/* The code of a handle that asks for known transport `name`, or 0 if
 * Spoke knows no such transport. */
static int known_code(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == len && strncmp(name, known[i].name, len) == 0)
			return known[i].unavailable;
	return 0;
}

int spk_transport_from_env(struct spk_transport_choice *out)
{
	const char *s = getenv("SPOKE_TRANSPORT"), *p, *end;
	int first_missing = 0;
	char list[128];

	memset(out, 0, sizeof(*out));
	if (!s || !*s || strcmp(s, "auto") == 0) {
		for (; spk_transports[out->n] && out->n < SPK_TRANSPORTS_MAX; out->n++)
			out->t[out->n] = spk_transports[out->n];
		return 0;
	}
	for (p = s; ; p = end + 1) {
		const struct spk_transport *t = NULL;
		size_t len;
		int code;

		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (const struct spk_transport *const *k = spk_transports; *k && !t; k++)
			if (strlen((*k)->name) == len && strncmp(p, (*k)->name, len) == 0)
				t = *k;
		code = t ? 0 : known_code(p, len);
		if (!t && !code) {
			choices(list, sizeof(list));
			return spk_fail(SPOKE_EINVAL, "SPOKE_TRANSPORT=%s: expected %s, or a "
					"comma-separated list of them", s, list);
		}
		if (!t && !first_missing)
			first_missing = code;
		for (unsigned i = 0; t && i < out->n; i++)
			if (out->t[i] == t)
				return spk_fail(SPOKE_EINVAL, "SPOKE_TRANSPORT=%s: %s is named twice",
						s, t->name);
		if (t && out->n < SPK_TRANSPORTS_MAX)
			out->t[out->n++] = t;
		if (!end)
			break;
	}
	out->insist = !strchr(s, ',');
	if (!out->n)
		return spk_fail(first_missing, "SPOKE_TRANSPORT=%s, but this Spoke was built "
				"without %s", s, strchr(s, ',') ? "any of them" : "it");
	return 0;
}

bool spk_transport_allowed(const struct spk_transport_choice *c, const struct spk_transport *t)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->t[i] == t)
			return true;
	return false;
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

int spk_transport_lock(pthread_mutex_t *lock, int64_t deadline, const char *what)
{
	struct timespec ts = { .tv_sec = deadline / 1000000, .tv_nsec = deadline % 1000000 * 1000 };
	int rc = pthread_mutex_clocklock(lock, CLOCK_MONOTONIC, &ts);

	if (rc != 0)
		return spk_fail(rc == ETIMEDOUT ? SPOKE_ETIMEDOUT : -rc,
				"timed out behind another thread's call on this %s handle", what);
	return 0;
}

void spk_future_complete(spoke_future *f, int status)
{
	f->status = status;
	if (status < 0 && status != SPOKE_ENOSPC)
		f->reply_len = spk_errmsg_keep(&f->method_status_, f->reply_, f->cap_);
	__atomic_store_n(&f->done_, 1, __ATOMIC_RELEASE);
}
