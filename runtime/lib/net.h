/* net.h - TCP sockets: parse addresses, listen, connect with a timeout. */
#ifndef SPOKE_NET_H
#define SPOKE_NET_H

#include <stddef.h>
#include <stdint.h>

#define SPK_ADDR_MAX 128 /* "host:port" with the NUL */

/* "host:port" (host may be a name, IPv4, or [IPv6]). */
int spk_parse_hostport(const char *s, char *host, size_t cap, uint16_t *port);
/* A listening socket (non-blocking, close-on-exec) on host:port (port 0: any
 * free port); writes the bound "host:port" into bound. Returns fd or -errno. */
int spk_listen(const char *host, uint16_t port, char *bound, size_t cap);
/* A connected TCP socket (blocking, close-on-exec, TCP_NODELAY) within
 * timeout_ms. Returns fd or a negative code (SPOKE_ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH for a host name that does not resolve...), spoke_errmsg()
 * saying what failed and naming the address. */
int spk_connect(const char *hostport, int timeout_ms);
int spk_set_nonblock(int fd, int on);
void spk_set_nodelay(int fd);
/* The peer of a connected socket, "host:port" ("?" if unknown). */
void spk_peer_name(int fd, char *out, size_t cap);
/* The local address of a connected socket, as a numeric host. */
int spk_local_host(int fd, char *host, size_t cap);
/* Raises this process's soft limit on open descriptors to its hard limit
 * (hub, agent and worker call it first: a connection is a descriptor);
 * returns the soft limit now in force, or -errno. */
long spk_raise_fd_limit(void);
/* The soft limit on open descriptors (RLIM_INFINITY as LONG_MAX). */
long spk_fd_limit(void);

#endif
