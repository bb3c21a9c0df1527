#!/bin/bash
# install-slurm-deps.sh - installs, from Debian 12's own packages, what the
# Slurm mini-cluster (contrib/slurm/minicluster.sh) and the Slurm tests need:
#
#   slurmctld     the controller daemon
#   slurmd        the node daemon (Debian builds it with multiple-slurmd support)
#   slurm-client  sbatch, srun, salloc, sinfo, squeue, scontrol, scancel
#   munge         munged, the authentication daemon Slurm's auth/munge talks to
#   libslurm-dev  spank.h, to build SPANK plugins
#
# (slurm-wlm-basic-plugins, with select/cons_tres, gres/gpu, proctrack/linuxproc,
# comes in as a dependency.)  Idempotent: does nothing when all are installed.
# Non-interactive.  Run as root or with sudo.
#
# The packages' maintainer scripts would start munge/slurmd/slurmctld system
# services (with /etc/ keys and configs) where the machine allows it; the
# mini-cluster runs its own daemons under its own directory instead, so while
# installing, a policy-rc.d that refuses every service start is put in place
# when the machine has none (Docker images usually ship one already).
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge libslurm-dev)

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-slurm-deps: everything is installed"
	exit 0
fi
echo "install-slurm-deps: installing ${missing[*]}"

POLICY=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# temporary, from spoke install-slurm-deps.sh\nexit 101\n' |
		"${SUDO[@]}" tee "$POLICY" >/dev/null
	"${SUDO[@]}" chmod 755 "$POLICY"
	made_policy=1
fi
remove_policy() {
	if [ -n "$made_policy" ]; then
		"${SUDO[@]}" rm -f "$POLICY"
	fi
}
trap remove_policy EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-slurm-deps: done"
