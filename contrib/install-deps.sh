#!/bin/sh
# install-deps.sh - installs, from Debian's packages, everything Spoke's
# build and test suite need (Debian 12): compilers and autotools, libev,
# libsodium, libyaml, Check, the RDMA and Slurm development files, cmake
# (for the install test), and Slurm and munge for the Slurm tests.
# Run as root or with sudo.
set -e
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
PACKAGES="
	build-essential autoconf automake libtool pkg-config
	libev-dev libsodium-dev libyaml-dev check
	libibverbs-dev librdmacm-dev libslurm-dev
	procps cmake
"
export DEBIAN_FRONTEND=noninteractive
missing=
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: build dependencies are installed"
else
	echo "install-deps: installing$missing"
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# Slurm's daemons and munge, for the SPANK plugin's tests on a real
# mini-cluster (installed without starting them).
"$(dirname "$0")/slurm/install-slurm-deps.sh"
