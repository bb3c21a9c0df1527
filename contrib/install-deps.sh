#!/bin/sh
# install-deps.sh - installs, from Debian's packages, everything Spoke's
# build and test suite need (Debian 12): compilers (build-essential: gcc,
# and g++ for the C++ binding's examples and test) and autotools, libev,
# libsodium, libyaml, Check, the RDMA and Slurm development files, python3
# (and its Prometheus client, whose text parser checks spoke-status --prometheus)
# (the Python binding: runtime/python/spoke, its tests), cmake (for the
# install test), clang (libFuzzer: make fuzz), Slurm and munge
# for the Slurm tests, and qemu and rdma-core's tools for the RDMA tests on
# rxe (make check-rxe).
# Run as root or with sudo.
set -e
dir=$(dirname "$0")
"$dir/apt-install.sh" install-deps \
	build-essential g++ autoconf automake libtool pkg-config \
	libev-dev libsodium-dev libyaml-dev check \
	libibverbs-dev librdmacm-dev libslurm-dev \
	procps cmake clang \
	python3 python3-prometheus-client
# Slurm's daemons and munge, for the SPANK plugin's and the launcher's tests
# on a real mini-cluster (installed without starting them).
"$dir/slurm/install-slurm-deps.sh"
# qemu, busybox, rdma-core, perftest...: the rxe VM of make check-rxe and
# make bench-rxe (the VM's kernel is fetched into a cache when first used).
"$dir/rxe/install-rxe-deps.sh"
