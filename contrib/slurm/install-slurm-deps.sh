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

exec "$(dirname "$0")/../apt-install.sh" install-slurm-deps "${PACKAGES[@]}"
