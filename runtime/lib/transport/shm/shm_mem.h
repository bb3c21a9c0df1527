/* shm_mem.h - the shared-memory transport's descriptors: sealed memfds
 * (the region, the bulk areas), mapping one that a peer sent only after
 * checking its size and seals, and the Unix socket's messages with a
 * descriptor attached (SCM_RIGHTS). */
#ifndef SPOKE_SHM_MEM_H
#define SPOKE_SHM_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A new memfd of size bytes, sealed against shrinking, growing and more
 * seals: mapped shared at *p, its descriptor in *fd.  0 or -errno (why in
 * spoke_errmsg()). */
int spk_shm_create(const char *name, size_t size, int *fd, void **p);
/* Maps a peer's memfd after checking it: exactly size bytes (or, with
 * size 0, a power of two from min to max, in *size_out) and sealed against
 * shrinking and growing.  SPOKE_EPROTO (why in spoke_errmsg()) for one that
 * is not; fd stays the caller's. */
int spk_shm_map_peer(int fd, size_t size, size_t min, size_t max, void **p, size_t *size_out);

/* One message of n bytes, with descriptor fd attached unless it is -1.
 * The socket is SOCK_SEQPACKET: 0, or -errno (EAGAIN on a full
 * non-blocking socket). */
int spk_shm_send(int sock, const void *p, size_t n, int fd);
/* One message into p[0..cap): its length (0: the peer closed), or -errno;
 * a descriptor that came with it in *fd (else -1; more than one: all
 * closed, and -EPROTO).  flags: MSG_DONTWAIT or 0. */
ssize_t spk_shm_recv(int sock, void *p, size_t cap, int *fd, int flags);
/* The peer's credentials (SO_PEERCRED). */
int spk_shm_peer(int sock, pid_t *pid, uid_t *uid);

/* A bulk area: a sealed memfd mapped by both ends (shm.h, "Large
 * messages"); gen 0 and p NULL: none yet. */
struct spk_shm_area {
	uint8_t *p;
	size_t size;
	uint32_t gen;
};
/* Producer: a new area of at least need bytes (a power of two from
 * SPK_SHM_BULK_MIN), keeping the first keep bytes of the old one, sent
 * over sock as the next generation; the old one is unmapped.  need over
 * max is SPOKE_ETOOBIG. */
int spk_shm_area_grow(struct spk_shm_area *a, int sock, size_t need, size_t keep, size_t max);
/* Consumer: takes area messages off sock (without waiting) until the area
 * is generation gen.  SPOKE_EPROTO for anything else on the socket, an area
 * that is not one, or none of that generation; SPOKE_EDEAD if the peer
 * closed. */
int spk_shm_area_recv(struct spk_shm_area *a, int sock, uint32_t gen, size_t max);
void spk_shm_area_free(struct spk_shm_area *a);

#endif
