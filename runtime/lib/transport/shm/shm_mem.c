/* shm_mem.c - sealed memfds, checked mappings of a peer's, and messages
 * with descriptors over the transport's Unix socket (shm_mem.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "errmsg.h"
#include "shm.h"
#include "shm_mem.h"

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int spk_shm_create(const char *name, size_t size, int *fd, void **p)
{
	int f = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;
	void *m;

	if (f < 0)
		return spk_fail(-errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(f, (off_t)size) < 0 || fcntl(f, F_ADD_SEALS, SEALS) < 0) {
		rc = spk_fail(-errno, "sizing and sealing a memfd of %zu bytes: %s", size,
			      strerror(errno));
		goto out_close;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, f, 0);
	if (m == MAP_FAILED) {
		rc = spk_fail(-errno, "mapping a memfd of %zu bytes: %s", size, strerror(errno));
		goto out_close;
	}
	*fd = f;
	*p = m;
	return 0;
out_close:
	close(f);
	return rc;
}

int spk_shm_map_peer(int fd, size_t size, size_t min, size_t max, void **p, size_t *size_out)
{
	struct stat st;
	int seals;
	void *m;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return spk_fail(SPOKE_EPROTO, "the peer's memory is not a file");
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
		return spk_fail(SPOKE_EPROTO, "the peer's memory is not a memfd sealed against "
				"shrinking and growing (seals %#x)", seals < 0 ? 0 : seals);
	if (size ? (size_t)st.st_size != size
		 : ((size_t)st.st_size < min || (size_t)st.st_size > max ||
		    (st.st_size & (st.st_size - 1))))
		return spk_fail(SPOKE_EPROTO, "the peer's memory has %lld bytes, not %zu",
				(long long)st.st_size, size ? size : min);
	m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return spk_fail(SPOKE_EPROTO, "mapping the peer's memory: %s", strerror(errno));
	*p = m;
	if (size_out)
		*size_out = (size_t)st.st_size;
	return 0;
}

int spk_shm_send(int sock, const void *p, size_t n, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.b;
		m.msg_controllen = sizeof(u.b);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

ssize_t spk_shm_recv(int sock, void *p, size_t cap, int *fd, int flags)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = p, .iov_len = cap };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof(u.b) };
	ssize_t n;
	int bad = 0;

	*fd = -1;
	while ((n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC)) < 0)
		if (errno != EINTR)
			return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0 && !bad) {
				*fd = f;
			} else {
				close(f);
				bad = 1;
			}
		}
	}
	if (bad || (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return n;
}

int spk_shm_peer(int sock, pid_t *pid, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return -errno;
	*pid = cr.pid;
	*uid = cr.uid;
	return 0;
}

void spk_shm_area_free(struct spk_shm_area *a)
{
	if (a->p)
		munmap(a->p, a->size);
	a->p = NULL;
	a->size = 0;
}

int spk_shm_area_grow(struct spk_shm_area *a, int sock, size_t need, size_t keep, size_t max)
{
	struct spk_shm_area_msg msg = { .type = SPK_SHM_AREA_MSG, .gen = a->gen + 1 };
	size_t size = SPK_SHM_BULK_MIN;
	void *p;
	int fd, rc;

	if (need > max)
		return spk_fail(SPOKE_ETOOBIG, "a message of %zu bytes, over the maximum of %zu", need,
				max);
	while (size < need)
		size <<= 1;
	rc = spk_shm_create("spoke-shm-bulk", size, &fd, &p);
	if (rc < 0)
		return rc;
	msg.size = size;
	rc = spk_shm_send(sock, &msg, sizeof(msg), fd);
	close(fd); /* the mapping keeps the memory; the peer has its own descriptor */
	if (rc < 0) {
		munmap(p, size);
		if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN)
			return spk_fail(SPOKE_EDEAD, "the peer closed the connection (sending a bulk "
					"area: %s)", strerror(-rc));
		return spk_fail(rc, "sending a bulk area: %s", strerror(-rc));
	}
	if (keep)
		memcpy(p, a->p, keep);
	spk_shm_area_free(a);
	a->p = p;
	a->size = size;
	a->gen = msg.gen;
	return 0;
}

int spk_shm_area_recv(struct spk_shm_area *a, int sock, uint32_t gen, size_t max)
{
	struct spk_shm_area_msg msg;
	size_t size;
	ssize_t n;
	void *p;
	int fd, rc;

	while (a->gen != gen) {
		if (gen < a->gen)
			return spk_fail(SPOKE_EPROTO, "a bulk area of generation %u, after %u", gen,
					a->gen);
		n = spk_shm_recv(sock, &msg, sizeof(msg), &fd, MSG_DONTWAIT);
		if (n == 0)
			return spk_fail(SPOKE_EDEAD, "the peer closed the connection");
		if (n == -EAGAIN)
			return spk_fail(SPOKE_EPROTO, "a frame in bulk area %u, never sent", gen);
		if (n < 0)
			return spk_fail(n == -EPROTO ? SPOKE_EPROTO : SPOKE_EDEAD, "the socket: %s",
					strerror((int)-n));
		rc = 0;
		if (fd < 0 || n != sizeof(msg) || msg.type != SPK_SHM_AREA_MSG ||
		    msg.gen != a->gen + 1 || msg.size < SPK_SHM_BULK_MIN || msg.size > max ||
		    (msg.size & (msg.size - 1)))
			rc = spk_fail(SPOKE_EPROTO, "an unexpected message of %zd bytes on the socket",
				      n);
		if (rc == 0)
			rc = spk_shm_map_peer(fd, (size_t)msg.size, 0, 0, &p, &size);
		if (fd >= 0)
			close(fd);
		if (rc < 0)
			return rc;
		spk_shm_area_free(a);
		a->p = p;
		a->size = size;
		a->gen = msg.gen;
	}
	return 0;
}
