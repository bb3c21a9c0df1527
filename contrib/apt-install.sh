#!/bin/bash
# apt-install.sh WHO PACKAGE... - installs the Debian packages not installed
# yet, non-interactively and without recommends, and starts no service
# while doing so: a policy-rc.d that refuses every start is in place during
# the install when the machine has none (slurmd, munge and rdma-core would
# otherwise start system services; Spoke's tests run their own daemons).
# Does nothing when everything is installed.  Run as root or with sudo.
# WHO names the caller in the progress lines.
set -euo pipefail

who=$1
shift
SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

missing=()
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "$who: everything is installed"
	exit 0
fi
echo "$who: installing ${missing[*]}"

POLICY=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# temporary, from spoke %s\nexit 101\n' "$who" |
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
echo "$who: done"
