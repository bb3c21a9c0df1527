/* net.c - TCP socket helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spoke/errors.h>

#include "clock.h"
#include "errmsg.h"
#include "net.h"

int spk_parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
	const char *colon, *h = s;
	size_t hlen;
	char *end;
	unsigned long p;

	if (!s)
		return SPOKE_EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return SPOKE_EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return SPOKE_EINVAL;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= cap)
		return SPOKE_EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p > 65535)
		return SPOKE_EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return 0;
}

static int resolve(const char *host, uint16_t port, int passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	char service[8];
	int rc;

	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, res);
	if (rc != 0)
		return spk_fail(rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH,
				"cannot resolve host '%s': %s", host,
				rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return 0;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t cap, int with_port)
{
	char host[INET6_ADDRSTRLEN] = "?";
	uint16_t port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	if (!with_port)
		snprintf(out, cap, "%s", host);
	else if (sa->sa_family == AF_INET6)
		snprintf(out, cap, "[%s]:%u", host, port);
	else
		snprintf(out, cap, "%s:%u", host, port);
}

int spk_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

void spk_set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int spk_listen(const char *host, uint16_t port, char *bound, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct addrinfo *res, *ai;
	int fd = -1, rc, one = 1;

	rc = resolve(host, port, 1, &res);
	if (rc < 0)
		return rc;
	rc = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0)
			break;
		rc = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	if (bound) {
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
		format_addr((struct sockaddr *)&ss, bound, cap, 1);
	}
	return fd;
}

static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
	struct pollfd pfd;
	socklen_t sl;
	int fd, rc, err;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out_close;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		do {
			rc = poll(&pfd, 1, spk_ms_left(deadline));
		} while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			rc = SPOKE_ETIMEDOUT;
			goto out_close;
		}
		err = 0;
		sl = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (rc < 0 || err) {
			rc = rc < 0 ? -errno : -err;
			goto out_close;
		}
	}
	rc = spk_set_nonblock(fd, 0);
	if (rc < 0)
		goto out_close;
	spk_set_nodelay(fd);
	return fd;
out_close:
	close(fd);
	return rc;
}

int spk_connect(const char *hostport, int timeout_ms)
{
	int64_t deadline = spk_now_us() + (int64_t)timeout_ms * 1000;
	char host[SPK_ADDR_MAX];
	struct addrinfo *res, *ai;
	uint16_t port;
	int rc;

	rc = spk_parse_hostport(hostport, host, sizeof(host), &port);
	if (rc < 0)
		return spk_fail(rc, "'%s' is no address: expected host:port", hostport);
	rc = resolve(host, port, 0, &res);
	if (rc < 0)
		return rc;
	rc = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline);
		if (rc >= 0 || rc == SPOKE_ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (rc < 0)
		spk_fail(rc, "cannot connect to %s: %s", hostport, spoke_strerror(rc));
	return rc;
}

void spk_peer_name(int fd, char *out, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(out, cap, "?");
		return;
	}
	format_addr((struct sockaddr *)&ss, out, cap, 1);
}

int spk_local_host(int fd, char *host, size_t cap)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -errno;
	format_addr((struct sockaddr *)&ss, host, cap, 0);
	return 0;
}

static long rlim_long(rlim_t v)
{
	return v == RLIM_INFINITY || v > (rlim_t)LONG_MAX ? LONG_MAX : (long)v;
}

long spk_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	return rlim_long(rl.rlim_cur);
}

long spk_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return -errno;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return -errno;
	}
	return rlim_long(rl.rlim_cur);
}
