/* rdmadev.h - the RDMA device a cluster of the harness runs on, for the
 * programs that need one (test_rdma; test_calls over rdma): built only
 * where Spoke has RDMA (tests/harness/rdmadev.c). */
#ifndef TESTS_RDMADEV_H
#define TESTS_RDMADEV_H

#include <stdbool.h>
#include <stddef.h>

/* The first IPv4 address of this machine, loopback aside, that an RDMA
 * device serves (rdma) or that none does (!rdma), into out; 1 if found, 0
 * if there is none. */
int harness_rdma_find_addr(bool rdma, char *out, size_t cap);

/* Whether this machine has an RDMA device, and the address to run a
 * cluster on ($SPOKE_TEST_ADDR, else the first one a device serves),
 * asked in a child process: librdmacm keeps the device files it opens, and
 * the kernel refuses their use by another process (the forked tests) with
 * EACCES.  Returns 0 and the address, or 77 having printed why not (a
 * test's skip), or another exit status. */
int harness_rdma_probe(char *addr, size_t cap);

#endif
