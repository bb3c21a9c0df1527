#!/bin/bash
# install-rxe-deps.sh - installs, from Debian 12's own packages, what the rxe
# (Soft-RoCE) VM runner (contrib/rxe/vm.sh) and the RDMA tests need:
#
#   qemu-system-x86  qemu-system-x86_64, boots Debian's kernel in TCG mode
#                    (this host's kernel has no InfiniBand; nested KVM hangs)
#   busybox-static   the initramfs' only userland: static, so it needs no
#                    libraries inside the initramfs
#   cpio             packs the initramfs
#   xz-utils         unpacks the uncompressed vmlinux out of the kernel's
#                    bzImage (qemu boots it directly, PVH: ~2 s faster)
#   kmod             modprobe/modinfo: vm.sh asks the host kernel for rdma_rxe
#                    first, and reads module dependencies (modules.dep)
#   rdma-core        the rxe provider (librxe-rdmav*.so) and its driver config
#   ibverbs-utils    ibv_devices, ibv_devinfo
#   ibverbs-providers  the user-space rxe provider, loaded by libibverbs
#   rdmacm-utils     rping
#   perftest         ib_send_lat, ib_write_bw, ...
#   iproute2         `rdma link add ... type rxe`, `ip link add ... type veth`
#   apt, dpkg        vm.sh fetches the kernel with `apt-get download` and
#                    unpacks it with `dpkg -x` (always present on Debian)
#
# The kernel package itself (linux-image-6.1.0-*-amd64) is NOT installed: vm.sh
# downloads it into its own cache and unpacks it there, so the host's boot set-up
# is never touched.  Idempotent: does nothing when all are installed.
# Non-interactive.  Run as root or with sudo.
#
# rdma-core's maintainer scripts would enable/start rdma-ndd and iwpmd services
# where systemd runs; a policy-rc.d that refuses every service start is put in
# place while installing when the machine has none (Docker images usually ship
# one already), so nothing is started.
set -euo pipefail

PACKAGES=(qemu-system-x86 busybox-static cpio xz-utils kmod rdma-core ibverbs-utils
	ibverbs-providers rdmacm-utils perftest iproute2)

exec "$(dirname "$0")/../apt-install.sh" install-rxe-deps "${PACKAGES[@]}"
