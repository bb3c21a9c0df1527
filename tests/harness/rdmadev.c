/* rdmadev.c - the RDMA device a cluster of the harness runs on (rdmadev.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <rdma/rdma_cma.h>

#include "rdmadev.h"

int harness_rdma_find_addr(bool rdma, char *out, size_t cap)
{
	struct rdma_event_channel *ec = rdma_create_event_channel();
	struct ifaddrs *ifs, *i;
	int found = 0;

	if (!ec)
		return 0;
	if (getifaddrs(&ifs) < 0) {
		rdma_destroy_event_channel(ec);
		return 0;
	}
	for (i = ifs; i && !found; i = i->ifa_next) {
		struct rdma_cm_id *id;
		bool served;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK) ||
		    rdma_create_id(ec, &id, NULL, RDMA_PS_TCP) < 0)
			continue;
		served = rdma_bind_addr(id, i->ifa_addr) == 0 && id->verbs;
		if (served == rdma) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out,
				  (socklen_t)cap);
			found = 1;
		}
		rdma_destroy_id(id);
	}
	freeifaddrs(ifs);
	rdma_destroy_event_channel(ec);
	return found;
}

int harness_rdma_probe(char *addr, size_t cap)
{
	int fds[2], status = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(fds) < 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct ibv_device **devs;
		int ndev = 0;

		close(fds[0]);
		devs = ibv_get_device_list(&ndev);
		if (devs)
			ibv_free_device_list(devs);
		if (ndev == 0) {
			printf("SKIP: no RDMA device here (`make check-rxe` runs these tests on rxe "
			       "in a VM)\n");
			fflush(stdout);
			_exit(77);
		}
		if (getenv("SPOKE_TEST_ADDR") && *getenv("SPOKE_TEST_ADDR"))
			snprintf(addr, cap, "%s", getenv("SPOKE_TEST_ADDR"));
		else if (!harness_rdma_find_addr(true, addr, cap)) {
			printf("SKIP: no IPv4 address on an RDMA device (set SPOKE_TEST_ADDR)\n");
			fflush(stdout);
			_exit(77);
		}
		n = write(fds[1], addr, strlen(addr) + 1);
		_exit(n > 0 ? 0 : 1);
	}
	close(fds[1]);
	n = read(fds[0], addr, cap - 1);
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	addr[n > 0 ? n : 0] = '\0';
	return 0;
}
