#!/bin/bash
# vm.sh - runs a command where a real rxe (Soft-RoCE) RDMA device exists.
#
#   contrib/rxe/vm.sh run [OPTIONS] -- COMMAND [ARG...]
#   contrib/rxe/vm.sh check     exit 0 when `run` can work here, 77 (and why) if not
#   contrib/rxe/vm.sh prepare   fetch the kernel, build the initramfs (no boot),
#                               drop other cached kernel versions
#   contrib/rxe/vm.sh clean     remove the cache
#
# Why a VM: the kernel of the machines Spoke is developed on has no InfiniBand
# stack (no rdma_rxe module) and nested KVM hangs there, but qemu in TCG mode
# boots Debian's own kernel in a few seconds.  So `run`:
#
#   1. takes the kernel Debian's linux-image-amd64 currently depends on
#      (`apt-get download`, `dpkg -x`; nothing is installed on the host), keeps
#      its image and the few modules the VM needs in a cache, and builds an
#      initramfs of busybox-static plus those modules: once per kernel version
#      (and per version of the init script below);
#   2. boots it under qemu (TCG, -cpu max, q35, PVH entry).  The initramfs
#      mounts the host's root over virtio-9p, read-only, under a throw-away
#      tmpfs layer (overlayfs: COMMAND may write anywhere, and its writes
#      vanish with the VM), mounts fresh /proc /sys /dev /dev/shm /run, the
#      --rw / --out directories read-write at their own paths, makes a veth
#      pair with rxe0 on veth0, and runs COMMAND in a chroot of that root, in
#      the current directory, as root, with the caller's exported environment;
#   3. streams COMMAND's stdout and stderr to this script's stdout and stderr
#      (two virtio-serial ports: byte-exact, as it comes), and exits with
#      COMMAND's exit status.
#
# Exit status: COMMAND's; 124 when --timeout expired (qemu is killed); 125 when
# the VM itself failed (qemu, kernel, rxe set-up: the console log is shown);
# 141 when the reader of stdout went away (as SIGPIPE would); 128+N on signal
# N; 77 (automake's SKIP) when the VM cannot be built here (qemu etc. missing:
# contrib/rxe/install-rxe-deps.sh installs them).  The VM always ends (timeout(1)
# wraps qemu itself, and a watchdog stops it if this script is SIGKILLed) and
# nothing is left behind: no qemu, no temp dir.
#
# COMMAND sees:
#   RXE_VM=vm|native    where it runs
#   RXE_DEV=rxe0        the verbs device (ibv_open_device, perftest -d)
#   RXE_NETDEV=veth0    its net device
#   RXE_ADDR=10.77.0.1  an IPv4 address on that device: rdma_cm binds and
#                       connects to it (server and client in the same VM)
#   RXE_OUT=DIR         a writable directory: the --out DIR (shared with the
#                       host), else one that vanishes with the VM
#   stdin /dev/null; the guest has no network device besides lo and the veths.
#
# Options of `run`:
#   --mem MB       guest memory (default 2048; TCG allocates it lazily)
#   --cpus N       guest CPUs (default: the host's, at most 4).  Keep 2 or
#                  more: with 1, two busy-polling processes share it and a
#                  ping-pong takes a 4 ms scheduler tick per round trip
#   --timeout S    whole-run limit, boot included (default 600)
#   --rw DIR       share host DIR read-write at the same path (repeatable)
#   --out DIR      like --rw DIR (created if missing), and RXE_OUT=DIR
#   --netdev veth|lo   veth (default): rxe0 on veth0 of a veth pair,
#                  veth0 10.77.0.1/24 <-> veth1 10.77.0.2/24; lo: rxe0 on lo,
#                  RXE_ADDR=127.0.0.1, for raw verbs only: rdma_cm refuses
#                  loopback devices (rdma_resolve_route fails with ENODEV)
#   --accel tcg|kvm    default tcg; kvm where the host has working KVM
#   --mode auto|vm|native   where to run (default auto, see below)
#   -q, --quiet    no progress lines (they go to stderr, prefixed "vm.sh:")
# Each option also reads a default from the environment: RXE_VM_MEM,
# RXE_VM_CPUS, RXE_VM_TIMEOUT, RXE_VM_NETDEV, RXE_VM_ACCEL, RXE_VM_MODE;
# RXE_VM_KERNEL picks the kernel ABI (e.g. 6.1.0-56-amd64); RXE_VM_CACHE the
# cache directory (default ${XDG_CACHE_HOME:-/var/tmp}/spoke-rxe; ~40 MB).
#
# Native mode: where the host kernel itself has rdma_rxe (an RDMA link on a
# net device with an IPv4 address exists already, or rdma_rxe is loaded or
# `modprobe rdma_rxe` works, as root or with password-less sudo), booting a
# VM buys nothing, so --mode auto runs COMMAND on the host, says so, and adds
# an rxe device for it when there is none: on the default route's interface
# (its own address: rxe loops such packets back inside the kernel, nothing
# leaves the machine), or on lo with --netdev lo; the last native run to end
# deletes it.  --rw means nothing there (the host is writable); --out sets
# RXE_OUT.  --mode vm forces the VM.
#
# Examples:
#   contrib/rxe/vm.sh run -- ibv_devinfo
#   contrib/rxe/vm.sh run --timeout 300 --out "$tmp" -- ./tests/rdma_test
#   contrib/rxe/smoke.sh      (ibv_devices, rping, ib_send_lat, ib_write_bw)
set -euo pipefail

PROG=vm.sh

say() { [ -n "${QUIET:-}" ] || echo "$PROG: $*" >&2; }
die() {
	echo "$PROG: error: $*" >&2
	exit 125
}
skip() {
	echo "$PROG: SKIP: $*" >&2
	exit 77
}
usage() {
	if [ "${1:-0}" -eq 0 ]; then
		sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
	else
		sed -n '4,8{s/^# \{0,1\}//;p}' "$0" >&2
		echo "($PROG --help tells more)" >&2
	fi
	exit "${1:-0}"
}

CACHE=${RXE_VM_CACHE:-${XDG_CACHE_HOME:-/var/tmp}/spoke-rxe}
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

# --- the VM's /init (busybox sh, PID 1) -------------------------------------
# Kept here so that one file holds the whole runner; its hash is part of the
# initramfs' cache key, so editing it rebuilds the initramfs.
# shellcheck disable=SC2016
INIT_SCRIPT='#!/bin/busybox sh
# PID 1 of the spoke rxe VM (built by contrib/rxe/vm.sh).  Progress and errors
# go to the command'"'"'s stderr port once it exists, and always to the console.
/bin/busybox mkdir -p /proc /sys /dev /bin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ERR=/dev/console
QUIET=
say() { [ -n "$QUIET" ] || echo "vm.sh: $*" >"$ERR"; }
# Any failure: tell the host why (ctl/setup-error), then end the VM.
fail() {
	echo "vm.sh: VM set-up failed: $*" >/dev/console
	[ -d /ctl/. ] && echo "$*" >/ctl/setup-error
	sync
	reboot -f
	sleep 60
}
up() { cut -d" " -f1 /proc/uptime; }

while read -r ko; do
	insmod "/lib/modules/$ko" || fail "insmod $ko"
done </modules.order

mkdir -p /ctl /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 spoke_ctl /ctl ||
	fail "cannot mount the control share"
. /ctl/config

# The virtio-serial ports named spoke.out/spoke.err carry the command'"'"'s output.
OUT=/dev/null
for p in /sys/class/virtio-ports/*; do
	[ -e "$p/name" ] || continue
	case $(cat "$p/name") in
	spoke.out) OUT=/dev/${p##*/} ;;
	spoke.err) ERR=/dev/${p##*/} ;;
	esac
done
[ "$OUT" != /dev/null ] || fail "no spoke.out virtio port"

# The host root, read-only (9p), under a tmpfs layer that takes all writes.
# cache=loose: nothing changes the host files the command reads while the
# VM runs, and TCG executes a lot faster when pages stay cached.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose hostroot /lower ||
	fail "cannot mount the host root (9p)"
mount -t tmpfs -o mode=755 upper /upper
mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot ||
	fail "cannot mount the overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
# What udev would add: bash'"'"'s <(...) needs /dev/fd.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o ptmxmode=0666,mode=0620 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run
mkdir -p $R/run/spoke-rxe
mount --bind /ctl $R/run/spoke-rxe
mkdir -p "$R$RXE_OUT"
# Read-write shares: lines "TAG PATH" (PATH may hold spaces).
while read -r tag path; do
	[ -n "$tag" ] || continue
	mkdir -p "$R$path"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,rw "$tag" "$R$path" ||
		fail "cannot mount $path read-write"
done </ctl/shares
[ -z "$HOSTNAME_" ] || hostname "$HOSTNAME_"

# The rxe device, made with the host'"'"'s own iproute2 (ip, rdma) in the chroot.
# Through the host'"'"'s env(1): busybox'"'"'s chroot would run its own "ip" applet,
# which knows no veth.
in_root() { chroot $R /usr/bin/env PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" >>/ctl/setup.log 2>&1; }
in_root ip link set lo up || fail "ip link set lo up"
if [ "$RXE_NETDEV" = veth0 ]; then
	in_root ip link add veth0 type veth peer name veth1 || fail "cannot add veth0/veth1"
	in_root ip addr add 10.77.0.1/24 dev veth0
	in_root ip addr add 10.77.0.2/24 dev veth1
	in_root ip link set veth0 up
	in_root ip link set veth1 up
fi
in_root rdma link add "$RXE_DEV" type rxe netdev "$RXE_NETDEV" ||
	fail "rdma link add $RXE_DEV type rxe netdev $RXE_NETDEV"
[ -e "$R/dev/infiniband/uverbs0" ] || fail "no /dev/infiniband/uverbs0"
say "$RXE_DEV up on $RXE_NETDEV ($RXE_ADDR), kernel $(uname -r), guest up $(up) s"
: >/ctl/ready

# In the background and waited for: a foreground child killed by a signal
# would make this shell print "Terminated" into the command'"'"'s stderr.
chroot $R /bin/bash /run/spoke-rxe/cmd.sh </dev/null >"$OUT" 2>"$ERR" &
wait $!
rc=$?
echo "$rc" >/ctl/rc
sync
reboot -f
sleep 60
'

# --- the kernel and the cache ------------------------------------------------
# The modules the VM loads (modprobe adds their dependencies): virtio and 9p
# for the host root and the shares, virtio_console for the output ports,
# overlay for the writable layer, veth, the RDMA core, rxe, rdma_cm and its
# user-space interface.  crc32_generic: rxe asks the crypto API for "crc32"
# (its ICRC); without a module providing it `rdma link add` fails with ENOENT.
MODULES=(virtio_pci virtio_console 9p 9pnet_virtio overlay veth ib_core
	ib_uverbs rdma_rxe rdma_cm rdma_ucm crc32_generic)

# The kernel ABI to use: $RXE_VM_KERNEL, else the one Debian's
# linux-image-amd64 metapackage depends on now, else the newest cached one.
kernel_version() {
	local v
	if [ -n "${RXE_VM_KERNEL:-}" ]; then
		echo "$RXE_VM_KERNEL"
		return
	fi
	v=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1)
	if [ -z "$v" ]; then
		v=$(find "$CACHE" -mindepth 2 -maxdepth 2 -name modules.order 2>/dev/null |
			sed 's,.*/\([^/]*\)/modules.order$,\1,' | sort -V | tail -n1)
	fi
	[ -n "$v" ] || return 1
	echo "$v"
}

# Tools `prepare` and `run` need; prints what is missing.
missing_tools() {
	local t miss=()
	for t in qemu-system-x86_64 cpio gzip xz depmod modprobe flock timeout apt-get dpkg; do
		command -v "$t" >/dev/null 2>&1 || PATH=$PATH:/sbin:/usr/sbin command -v "$t" >/dev/null 2>&1 ||
			miss+=("$t")
	done
	[ -x /bin/busybox ] && [ ! -L /bin/busybox ] || miss+=(busybox-static)
	[ -x /usr/bin/rdma ] || miss+=(iproute2)
	echo "${miss[*]}"
}

# The kernel image to boot: vmlinux when it could be extracted, else vmlinuz.
kernel_image() {
	if [ -s "$CACHE/$1/vmlinux" ]; then
		echo "$CACHE/$1/vmlinux"
	else
		echo "$CACHE/$1/vmlinuz"
	fi
}

# Fetches the kernel package into a scratch dir, keeps the kernel image and
# the module closure of MODULES under $CACHE/$KVER, and drops the rest (the
# unpacked package is ~400 MB).  Caller holds the cache lock.
#
# The image kept is the uncompressed ELF vmlinux, cut out of the bzImage:
# qemu boots an ELF kernel through its PVH entry point (Debian: CONFIG_PVH=y),
# which skips the BIOS's real-mode boot and, above all, the kernel's own
# xz decompression, which under TCG takes ~2.3 of the ~5 s a bzImage needs
# to get to /init.  It costs ~65 MB of cache instead of ~8 MB.
fetch_kernel() {
	local kver=$1 dir=$CACHE/$1 tmp line ko order=()
	local apt_opts=(-q)
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
	# As root, apt drops to the _apt user for downloads, which cannot write
	# into a root-owned scratch dir; download as root instead (quietly).
	[ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
	say "fetching linux-image-$kver (apt-get download) into $CACHE ..."
	if ! (cd "$tmp" && apt-get download "${apt_opts[@]}" "linux-image-$kver" >"$tmp/apt.log" 2>&1); then
		cat "$tmp/apt.log" >&2
		rm -rf "$tmp"
		die "apt-get download linux-image-$kver failed (apt-get update? RXE_VM_KERNEL?)"
	fi
	dpkg -x "$tmp"/linux-image-*.deb "$tmp/root"
	# The package's postinst would run depmod; run it on the unpacked tree.
	PATH=$PATH:/sbin:/usr/sbin depmod -b "$tmp/root" "$kver"
	rm -rf "$dir.new"
	mkdir -p "$dir.new/modules"
	extract_vmlinux "$tmp/root/boot/vmlinuz-$kver" "$dir.new/vmlinux" ||
		cp "$tmp/root/boot/vmlinuz-$kver" "$dir.new/vmlinuz"
	# modprobe --show-depends prints "insmod PATH" in load order
	# (dependencies first), or "builtin NAME" for what is built in.
	while read -r line; do
		case $line in
		insmod\ *)
			ko=${line#insmod }
			ko=${ko%% *}
			ko=${ko#"$tmp/root/lib/modules/$kver/"}
			case " ${order[*]:-} " in *" $ko "*) continue ;; esac
			order+=("$ko")
			mkdir -p "$dir.new/modules/$(dirname "$ko")"
			cp "$tmp/root/lib/modules/$kver/$ko" "$dir.new/modules/$ko"
			;;
		esac
	done < <(PATH=$PATH:/sbin:/usr/sbin modprobe -a -d "$tmp/root" -S "$kver" --show-depends "${MODULES[@]}")
	printf '%s\n' "${order[@]}" >"$dir.new/modules.order"
	rm -rf "$tmp" "$dir"
	mv "$dir.new" "$dir"
}

# Writes the vmlinux inside bzImage $1 to $2 (Debian's x86 kernels are
# xz-compressed: the payload starts at the first xz stream magic, as in the
# kernel's scripts/extract-vmlinux).  Fails if there is no ELF there.
extract_vmlinux() {
	local off
	command -v xz >/dev/null || return 1
	off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$1" | head -n1 | cut -d: -f1)
	[ -n "$off" ] || return 1
	tail -c +"$((off + 1))" "$1" | xz -dc --single-stream >"$2" 2>/dev/null || true
	if [ "$(head -c 4 "$2" 2>/dev/null)" != $'\x7fELF' ]; then
		rm -f "$2"
		return 1
	fi
}

# Builds (once) the initramfs for KVER and sets INITRD to its path.
INITRD=
prepare_cache() {
	local kver=$1 dir=$CACHE/$1 key stage
	mkdir -p "$CACHE"
	# (A cache someone else built and we may not write: read-only lock.)
	{ exec 9>>"$CACHE/.lock"; } 2>/dev/null || exec 9<"$CACHE/.lock"
	# Parallel runs (make -j check) share the cache: one builds, the others wait.
	flock -w 600 9 || die "cannot lock $CACHE/.lock"
	if [ ! -s "$dir/modules.order" ]; then
		fetch_kernel "$kver"
	fi
	key=$({
		printf '%s' "$INIT_SCRIPT"
		cat "$dir/modules.order"
		sha256sum </bin/busybox
	} | sha256sum | cut -c1-16)
	INITRD=$dir/initrd-$key.gz
	if [ ! -s "$INITRD" ]; then
		say "building the initramfs for $kver ..."
		stage=$(mktemp -d "$CACHE/.initrd.XXXXXX")
		mkdir -p "$stage/bin" "$stage/lib"
		cp /bin/busybox "$stage/bin/busybox"
		cp -r "$dir/modules" "$stage/lib/modules"
		cp "$dir/modules.order" "$stage/modules.order"
		printf '%s' "$INIT_SCRIPT" >"$stage/init"
		chmod 755 "$stage/init"
		(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
		rm -rf "$stage"
		mv "$INITRD.tmp" "$INITRD"
	fi
	# Initramfs images of other init script versions (another checkout may
	# still use one): dropped once unused for a day.  Using one refreshes it.
	touch "$INITRD" 2>/dev/null || true
	find "$dir" -maxdepth 1 -name 'initrd-*.gz' -mtime +0 -delete 2>/dev/null || true
	exec 9>&-
}

# --- native mode --------------------------------------------------------------
# rdma_cm refuses loopback: with rxe on lo, raw verbs work (ib_send_lat) but
# rdma_resolve_addr/route on 127.0.0.1 fail with ENODEV (the kernel's
# addr.c: "RDMA doesn't run on lo interface or loopback IP address").  So
# the device goes on a real netdev: rxe sends packets for the host's own
# address straight back to itself (rxe_loopback), nothing leaves the machine.
# In the VM that is a veth pair; natively, the host's own interface.

# "DEV NETDEV" for each RDMA link with a net device (rxe, or real RoCE).
rdma_links() {
	rdma link show 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "netdev") { split($2, a, "/"); print a[1], $(i + 1) } }'
}
ipv4_of() { ip -4 -o addr show dev "$1" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'; }
# An existing link usable for NETDEV (lo: on lo; veth: on any other netdev
# with an IPv4 address), as "DEV NETDEV ADDR".
native_link() {
	local d n a
	while read -r d n; do
		if [ "$NETDEV" = lo ]; then
			[ "$n" = lo ] || continue
			a=127.0.0.1
		else
			[ "$n" != lo ] || continue
			a=$(ipv4_of "$n")
			[ -n "$a" ] || continue
		fi
		echo "$d $n $a"
		return 0
	done < <(rdma_links)
	return 1
}
# The netdev to put a new rxe device on: lo, or the default route's, or the
# first other one that is up and has an IPv4 address.
native_netdev() {
	local n
	if [ "$NETDEV" = lo ]; then
		echo lo
		return
	fi
	n=$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	if [ -z "$n" ] || [ -z "$(ipv4_of "$n")" ]; then
		n=$(ip -4 -o addr show up 2>/dev/null | awk '$2 != "lo" { print $2; exit }')
	fi
	[ -n "$n" ] || return 1
	echo "$n"
}
can_admin() { [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; }
# True when the host kernel can give us an rxe device (see the header).
native_possible() {
	command -v rdma >/dev/null || return 1
	native_link >/dev/null && return 0
	can_admin || return 1
	native_netdev >/dev/null || return 1
	[ -d /sys/module/rdma_rxe ] && return 0
	PATH=$PATH:/sbin:/usr/sbin "${SUDO[@]}" modprobe rdma_rxe 2>/dev/null
}

# Runs COMMAND on the host, with an existing RDMA link or an rxe device made
# for it.  Two locks under /tmp make concurrent native runs safe: "setup"
# (exclusive) serialises making and deleting devices, "users" is held shared
# by every run while its COMMAND runs; a device made here is listed in a
# marker file and deleted by the last run to end.
NATIVE_PID=
run_native() {
	local link dev nd addr rc=0 i out
	local setup=/tmp/spoke-rxe-native.setup users=/tmp/spoke-rxe-native.users mark=/tmp/spoke-rxe-native.made
	say "host kernel has rdma_rxe: running natively (--mode vm forces the VM)"
	exec 8>>"$setup" 6>>"$users"
	chmod 666 "$setup" "$users" 2>/dev/null || true
	flock -w 120 8 || die "cannot lock $setup"
	flock -s 6
	if ! link=$(native_link); then
		nd=$(native_netdev) || die "no net device to put rxe on (no IPv4 address?)"
		[ -d /sys/module/rdma_rxe ] || PATH=$PATH:/sbin:/usr/sbin "${SUDO[@]}" modprobe rdma_rxe ||
			die "modprobe rdma_rxe failed"
		# rxe's ICRC needs a "crc32" shash; without one `rdma link add`
		# says ENOENT.  Built in on some kernels, hence best effort.
		PATH=$PATH:/sbin:/usr/sbin "${SUDO[@]}" modprobe -q crc32_generic 2>/dev/null || true
		for ((i = 0; i < 10; i++)); do
			[ -e "/sys/class/infiniband/rxe$i" ] || break
		done
		"${SUDO[@]}" rdma link add "rxe$i" type rxe netdev "$nd" ||
			die "rdma link add rxe$i type rxe netdev $nd failed"
		echo "rxe$i" >>"$mark"
		chmod 666 "$mark" 2>/dev/null || true
		link=$(native_link) || die "rxe$i on $nd made, but not found"
	fi
	flock -u 8
	read -r dev nd addr <<<"$link"
	say "$dev up on $nd ($addr)"
	out=${OUTDIR:-}
	if [ -z "$out" ]; then
		NATIVE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/spoke-rxe-out.XXXXXX")
		out=$NATIVE_TMP
	fi
	trap 'native_end 130' INT
	trap 'native_end 143' TERM
	trap 'native_end 129' HUP
	RXE_VM=native RXE_DEV=$dev RXE_NETDEV=$nd RXE_ADDR=$addr RXE_OUT=$out \
		timeout --kill-after=5 "$TIMEOUT" "${CMD[@]}" </dev/null 6>&- 8>&- &
	NATIVE_PID=$!
	wait "$NATIVE_PID" || rc=$?
	NATIVE_PID=
	[ "$rc" -ne 124 ] || echo "$PROG: timed out after $TIMEOUT s" >&2
	native_end "$rc"
}
native_end() {
	local d
	trap - INT TERM HUP
	if [ -n "$NATIVE_PID" ]; then
		echo "$PROG: interrupted: stopping the command" >&2
		kill -TERM "$NATIVE_PID" 2>/dev/null || true
		wait "$NATIVE_PID" 2>/dev/null || true
	fi
	[ -z "${NATIVE_TMP:-}" ] || rm -rf "$NATIVE_TMP"
	flock -u 6
	flock -w 120 8 || true
	if flock -xn 6 && [ -s /tmp/spoke-rxe-native.made ]; then
		while read -r d; do
			"${SUDO[@]}" rdma link delete "$d" 2>/dev/null || true
		done </tmp/spoke-rxe-native.made
		rm -f /tmp/spoke-rxe-native.made
	fi
	exec 6>&- 8>&-
	exit "$1"
}

# --- run in the VM -------------------------------------------------------------
TMP=
QEMU_PID=
CAT_PIDS=()
WATCHDOG_PID=
cleanup() {
	local p
	trap - EXIT INT TERM HUP
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		# SIGTERM to timeout(1) is passed on to qemu, which then exits.
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	for p in "${CAT_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	[ -z "$TMP" ] || rm -rf "$TMP"
	if [ -n "$WATCHDOG_PID" ]; then
		exec 7>&-
		wait "$WATCHDOG_PID" 2>/dev/null || true
	fi
}
on_signal() {
	echo "$PROG: interrupted (signal $1): stopping the VM" >&2
	cleanup
	exit $((128 + $1))
}

# The watchdog covers the one case the traps cannot: this script killed with
# SIGKILL.  It reads a pipe whose only writer is this shell (fd 7; every
# long-lived child gets 7>&-), so it sees EOF however the shell ends, and
# then stops qemu (through timeout(1), whose pid is in qemu.pid) and removes
# the temp dir.  After a normal end it finds nothing left to do.
start_watchdog() {
	exec 7> >(
		trap '' INT TERM HUP
		exec >/dev/null 2>&1
		cat
		if [ -s "$TMP/qemu.pid" ]; then
			kill -TERM "$(cat "$TMP/qemu.pid")"
		fi
		rm -rf "$TMP"
	)
	WATCHDOG_PID=$!
}

# Waits (at most ~5 s) for the output forwarders to drain and end.  They end
# when qemu closes the FIFOs; if qemu never opened one, opening it here for a
# moment releases a forwarder blocked in open().
drain_output() {
	local f p i
	for f in "$TMP/out.fifo" "$TMP/err.fifo"; do
		# Opening read-write never blocks on a FIFO (Linux).
		: 1<>"$f" 2>/dev/null || true
	done
	for p in "${CAT_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CAT_PIDS=()
}

# POSIX single quoting, for the config file busybox sh reads (not bash's %q).
sh_quote() {
	local q="'\\''"
	printf "'%s'" "${1//\'/$q}"
}

run_vm() {
	local kver accel_desc QEMU_CPU share_opts=() i=0 d rc qrc=0 name t0 t1 broken ended st watch
	[ -z "$(missing_tools)" ] || skip "missing: $(missing_tools) (contrib/rxe/install-rxe-deps.sh)"
	kver=$(kernel_version) || die "no kernel: apt-cache knows no linux-image-amd64 (apt-get update) and $CACHE holds none"
	prepare_cache "$kver"

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/spoke-rxe.XXXXXX")
	trap cleanup EXIT
	trap 'on_signal 1' HUP
	trap 'on_signal 2' INT
	trap 'on_signal 15' TERM
	start_watchdog
	mkdir "$TMP/ctl"
	mkfifo "$TMP/out.fifo" "$TMP/err.fifo"

	# Read-write shares, mounted by /init at their own paths.
	: >"$TMP/ctl/shares"
	for d in "${RW_DIRS[@]}"; do
		echo "rw$i $d" >>"$TMP/ctl/shares"
		# qemu's option syntax doubles commas inside a value.
		share_opts+=(-virtfs "local,path=${d//,/,,},mount_tag=rw$i,security_model=none,multidevs=remap")
		i=$((i + 1))
	done
	{
		printf 'RXE_DEV=rxe0\n'
		if [ "$NETDEV" = veth ]; then
			printf 'RXE_NETDEV=veth0\nRXE_ADDR=10.77.0.1\n'
		else
			printf 'RXE_NETDEV=lo\nRXE_ADDR=127.0.0.1\n'
		fi
		printf 'RXE_OUT=%s\n' "$(sh_quote "${OUTDIR:-/run/spoke-rxe-out}")"
		printf 'HOSTNAME_=%s\n' "$(sh_quote "$(hostname 2>/dev/null || true)")"
		printf 'QUIET=%s\n' "$(sh_quote "${QUIET:-}")"
	} >"$TMP/ctl/config"
	# shellcheck disable=SC1091
	. "$TMP/ctl/config"
	# The command's script: the caller's exported environment, the RXE_*
	# variables, the current directory, then COMMAND.  bash quoting (%q).
	{
		echo '#!/bin/bash'
		while read -r name; do
			# (bash's own and read-only ones would only cause noise.)
			case $name in
			PWD | OLDPWD | SHLVL | _ | RXE_* | BASHOPTS | SHELLOPTS | BASH_* | EUID | UID | PPID) continue ;;
			esac
			printf 'export %s=%q\n' "$name" "${!name}"
		done < <(compgen -e)
		printf 'export RXE_VM=vm RXE_DEV=%q RXE_NETDEV=%q RXE_ADDR=%q RXE_OUT=%q\n' \
			"$RXE_DEV" "$RXE_NETDEV" "$RXE_ADDR" "$RXE_OUT"
		printf 'cd -- %q || { echo "vm.sh: cannot cd to %q in the VM" >&2; exit 125; }\n' "$PWD" "$PWD"
		printf 'exec'
		printf ' %q' "${CMD[@]}"
		printf '\n'
	} >"$TMP/ctl/cmd.sh"

	# -cpu max under TCG (every feature qemu can emulate); host under KVM.
	# Measured on the machine this was written on (KVM nested in a VM): with
	# max or host qemu aborts at once ("failed to set MSR 0x10a"), with
	# host,-arch-capabilities or qemu64 the guest hangs before its console
	# prints a line; hence TCG by default.
	case $ACCEL in
	kvm) accel_desc=KVM QEMU_CPU=host ;;
	*) accel_desc=TCG QEMU_CPU=max ;;
	esac
	say "booting $kver ($accel_desc, $CPUS cpus, $MEM MB) ..."

	# Forward the command's output ports to our stdout and stderr.  The
	# forwarders open the FIFOs before qemu does: qemu's open(O_WRONLY)
	# waits for a reader.
	cat "$TMP/out.fifo" 7>&- &
	CAT_PIDS+=($!)
	cat "$TMP/err.fifo" >&2 7>&- &
	CAT_PIDS+=($!)

	t0=$(date +%s.%N)
	# timeout(1) wraps qemu itself: qemu ends at the limit whatever happens
	# to this script.  q35: reaches /init ~0.8 s sooner than pc under TCG.
	# -no-reboot: the guest's `reboot -f` (or a panic, panic=-1) ends qemu.
	# -nodefaults: no VGA, NIC, floppy, etc.; the guest has no network
	# device at all (rxe runs on a veth pair or lo inside it).  The kernel's
	# console goes to console.log, shown when something fails.
	timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 \
		-nodefaults -no-user-config -display none -monitor none -no-reboot \
		-machine q35 -accel "$ACCEL" -cpu "$QEMU_CPU" -smp "$CPUS" -m "$MEM" \
		-kernel "$(kernel_image "$kver")" -initrd "$INITRD" \
		-append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init tsc=reliable mitigations=off" \
		-serial "file:$TMP/console.log" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$TMP/ctl,mount_tag=spoke_ctl,security_model=none,multidevs=remap" \
		"${share_opts[@]}" \
		-device virtio-serial-pci \
		-chardev "file,id=out,path=$TMP/out.fifo,append=on" \
		-device virtserialport,chardev=out,name=spoke.out \
		-chardev "file,id=err,path=$TMP/err.fifo,append=on" \
		-device virtserialport,chardev=err,name=spoke.err \
		</dev/null >"$TMP/qemu.log" 2>&1 7>&- &
	QEMU_PID=$!
	echo "$QEMU_PID" >"$TMP/qemu.pid"
	# Wait for qemu.  The stdout forwarder ends at qemu's exit (EOF, status
	# 0), or before it when its reader went away (`vm.sh run -- yes | head`:
	# SIGPIPE or a write error, status != 0): then, as a pipe would, stop
	# the command (qemu) and exit 141 rather than let it write to nobody
	# until the timeout.
	broken=
	watch=("$QEMU_PID" "${CAT_PIDS[0]}")
	while :; do
		ended=
		st=0
		# (stderr: bash would report a qemu killed by a signal as "Aborted".)
		{ wait -n -p ended "${watch[@]}"; } 2>/dev/null || st=$?
		if [ -z "$ended" ] || [ "$ended" = "$QEMU_PID" ]; then
			qrc=$st
			break
		fi
		watch=("$QEMU_PID")
		if [ "$st" -ne 0 ]; then
			broken=1
			kill -TERM "$QEMU_PID" 2>/dev/null || true
		fi
	done
	QEMU_PID=
	t1=$(date +%s.%N)
	drain_output

	if [ -n "$broken" ]; then
		say "the reader of stdout went away: VM stopped"
		exit 141
	fi
	if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
		echo "$PROG: timed out after $TIMEOUT s: qemu killed" >&2
		if [ ! -e "$TMP/ctl/ready" ] && [ -s "$TMP/console.log" ]; then
			# (Killed before rxe was up: the kernel's side may tell why.)
			tail -n 20 "$TMP/console.log" >&2 || true
		fi
		exit 124
	fi
	if [ -s "$TMP/ctl/setup-error" ]; then
		echo "$PROG: the VM's set-up failed: $(cat "$TMP/ctl/setup-error")" >&2
		cat "$TMP/ctl/setup.log" >&2 2>/dev/null || true
		tail -n 30 "$TMP/console.log" >&2 || true
		exit 125
	fi
	if [ ! -s "$TMP/ctl/rc" ]; then
		echo "$PROG: the VM ended without the command's status (qemu exit $qrc)" >&2
		cat "$TMP/qemu.log" >&2 || true
		tail -n 30 "$TMP/console.log" >&2 || true
		exit 125
	fi
	rc=$(cat "$TMP/ctl/rc")
	say "exit status $rc, VM ran $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
	exit "$rc"
}

# --- command line -----------------------------------------------------------------
cmd_check() {
	local miss kver
	if [ "${MODE}" != vm ] && native_possible; then
		echo "$PROG: host kernel has rdma_rxe: \`run\` runs natively"
		exit 0
	fi
	[ "$MODE" != native ] || skip "--mode native: the host kernel has no rdma_rxe"
	miss=$(missing_tools)
	[ -z "$miss" ] || skip "missing: $miss (contrib/rxe/install-rxe-deps.sh)"
	kver=$(kernel_version) || skip "no kernel: apt-cache knows no linux-image-amd64 and $CACHE holds none"
	if [ -s "$CACHE/$kver/modules.order" ]; then
		echo "$PROG: \`run\` boots $kver (cached in $CACHE/$kver)"
	else
		echo "$PROG: \`run\` boots $kver (fetched with apt-get download on first use)"
	fi
}

cmd_prepare() {
	local miss kver
	miss=$(missing_tools)
	[ -z "$miss" ] || skip "missing: $miss (contrib/rxe/install-rxe-deps.sh)"
	kver=$(kernel_version) || die "no kernel: apt-cache knows no linux-image-amd64 (apt-get update)"
	prepare_cache "$kver"
	# Kernels an older `apt-get update` chose (runs only ever fetch).
	exec 9>"$CACHE/.lock"
	flock -w 600 9 || die "cannot lock $CACHE/.lock"
	find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -name "$kver" -print0 | xargs -0r rm -rf
	exec 9>&-
	echo "$PROG: kernel $(kernel_image "$kver")"
	echo "$PROG: initramfs $INITRD"
	echo "$PROG: cache size $(du -sh "$CACHE" | cut -f1)"
}

[ $# -ge 1 ] || usage 2
SUB=$1
shift
MEM=${RXE_VM_MEM:-2048}
CPUS=${RXE_VM_CPUS:-$(n=$(nproc) && echo $((n > 4 ? 4 : n)))}
TIMEOUT=${RXE_VM_TIMEOUT:-600}
NETDEV=${RXE_VM_NETDEV:-veth}
ACCEL=${RXE_VM_ACCEL:-tcg}
MODE=${RXE_VM_MODE:-auto}
QUIET=
OUTDIR=
RW_DIRS=()
CMD=()
while [ $# -gt 0 ]; do
	case $1 in
	--mem) MEM=${2:?--mem MB}; shift 2 ;;
	--cpus) CPUS=${2:?--cpus N}; shift 2 ;;
	--timeout) TIMEOUT=${2:?--timeout S}; shift 2 ;;
	--rw | --out)
		[ -n "${2:-}" ] || die "$1 DIR"
		case $2 in *$'\n'*) die "$1: a path with a newline" ;; esac
		[ "$1" = --rw ] || mkdir -p "$2"
		[ -d "$2" ] || die "$1 $2: not a directory"
		d=$(cd "$2" && pwd -P)
		RW_DIRS+=("$d")
		[ "$1" = --rw ] || OUTDIR=$d
		shift 2
		;;
	--netdev) NETDEV=${2:?--netdev lo|veth}; shift 2 ;;
	--accel) ACCEL=${2:?--accel tcg|kvm}; shift 2 ;;
	--mode) MODE=${2:?--mode auto|vm|native}; shift 2 ;;
	-q | --quiet) QUIET=1; shift ;;
	-h | --help) usage 0 ;;
	--) shift; CMD=("$@"); break ;;
	*) echo "$PROG: unknown option $1" >&2; usage 2 ;;
	esac
done
case $MEM$CPUS$TIMEOUT in *[!0-9]*) die "--mem, --cpus, --timeout take numbers" ;; esac
case $NETDEV in lo | veth) ;; *) die "--netdev lo|veth" ;; esac
case $ACCEL in tcg | kvm) ;; *) die "--accel tcg|kvm" ;; esac
case $MODE in auto | vm | native) ;; *) die "--mode auto|vm|native" ;; esac

case $SUB in
run)
	[ "${#CMD[@]}" -gt 0 ] || die "run: no command (vm.sh run [OPTIONS] -- COMMAND...)"
	if [ "$MODE" = native ]; then
		native_possible || skip "--mode native: the host kernel has no rdma_rxe (or we may not add a device)"
		run_native
	fi
	if [ "$MODE" = auto ] && native_possible; then
		run_native
	fi
	run_vm
	;;
check) cmd_check ;;
prepare) cmd_prepare ;;
clean)
	rm -rf "$CACHE"
	echo "$PROG: removed $CACHE"
	;;
*) usage 2 ;;
esac
