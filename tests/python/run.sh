#!/bin/bash
# run.sh - the Python binding (runtime/python/spoke) on a live job: the
# unittest files named (default: tests/python/test_client.py) run as the
# driver of a spoke-launch --local job (one agent, 8 GPUs, offering the
# harness's actor module with the Probe and Keeper types), with the package taken from
# the source tree (PYTHONPATH) and libspoke from the build tree
# (SPOKE_LIBRARY), so that out-of-tree builds test what they built.  A build
# with --enable-sanitizers preloads the sanitizer runtime into Python (leak
# checks off there: they would report Python's own memory).
# test_stream.py (streams, cancellation) runs once per transport of
# $SPOKE_PY_STREAM_TRANSPORTS (default: shm tcp), with $SPOKE_TRANSPORT set
# to each.
# test_actors.py calls actors written in Python (tests/python/pyactors,
# served by the build's spoke-worker-python).
# Skips (77) without Python 3 or the launcher.
set -u
build=$SPOKE_BUILDDIR
src=$SPOKE_SRCDIR
launch=$build/spoke-launch
module=$build/tests/harness/.libs/testactor.so
python=$(sed -n 's/^PYTHON = //p' "$build/Makefile")
[ -n "$python" ] && command -v "$python" >/dev/null || python=$(command -v python3)
[ -n "$python" ] || { echo "SKIP: no python3 (contrib/install-deps.sh installs it)"; exit 77; }
[ -x "$launch" ] || { echo "SKIP: spoke-launch is not built (libyaml missing)"; exit 77; }
[ -e "$module" ] || { echo "FAIL: $module is not built (make check builds it)"; exit 1; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("$src/tests/python/test_client.py" "$src/tests/python/test_stream.py"
	"$src/tests/python/test_actors.py")
stream_transports=${SPOKE_PY_STREAM_TRANSPORTS:-shm tcp}

tmp=$(mktemp -d /tmp/spoke-python.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

preload=
if grep -q '^SAN_CFLAGS = .*address' "$build/Makefile"; then
	cc=$(sed -n 's/^CC = //p' "$build/Makefile")
	for rt in libasan.so libubsan.so; do
		p=$(${cc:-cc} -print-file-name=$rt)
		[ -e "$p" ] && preload="$preload${preload:+:}$p"
	done
fi

san_env=
[ -z "$preload" ] ||
	san_env="export LD_PRELOAD='$preload' ASAN_OPTIONS=detect_leaks=0\${ASAN_OPTIONS:+:\$ASAN_OPTIONS}"

# The driver: Python with the package and the library of this build.
cat >"$tmp/driver.sh" <<EOF
#!/bin/sh
export PYTHONPATH='$src/runtime/python'\${PYTHONPATH:+:\$PYTHONPATH}
export SPOKE_LIBRARY='$build/.libs/libspoke.so'
export PYTHONDONTWRITEBYTECODE=1
$san_env
rc=0
for t in $(printf "'%s' " "${tests[@]}"); do
	case \$t in
	*/test_stream.py) transports='$stream_transports' ;;
	*) transports=- ;;
	esac
	for tr in \$transports; do
		if [ "\$tr" = - ]; then
			echo "# \$t"
			timeout 300 '$python' -u "\$t" || rc=1
		else
			echo "# \$t over \$tr"
			SPOKE_TRANSPORT=\$tr timeout 300 '$python' -u "\$t" || rc=1
		fi
	done
done
exit \$rc
EOF
chmod +x "$tmp/driver.sh"
# The job's env reaches the workers too: Python actors (spoke-worker-python,
# which preloads the sanitizer runtime itself) import tests/python/pyactors.
cat >"$tmp/job.yaml" <<EOF
name: python
gang: 1x8
timeouts:
  spawn: 30s
env:
  PYTHONPATH: "$src/tests/python:$src/runtime/python"
  SPOKE_LIBRARY: "$build/.libs/libspoke.so"
  SPOKE_WORKER_PYTHON: "$build/spoke-worker-python"
  PYTHONDONTWRITEBYTECODE: "1"
modules: [$module]
driver: $tmp/driver.sh
EOF
"$launch" --local --log-dir "$tmp/logs" "$tmp/job.yaml" >"$tmp/out" 2>&1
rc=$?
cat "$tmp/out"
if [ $rc -ne 0 ]; then
	for f in "$tmp"/logs/*.log; do
		[ -e "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
	done
	echo "FAIL: the Python tests (${tests[*]##*/}) exited $rc"
	exit 1
fi
n=$(grep -Ec '\.\.\. ok$' "$tmp/out")
if [ "$n" -gt 0 ]; then
	echo "PASS: Python driver (${tests[*]##*/}): $n unittest cases ok"
else
	echo "PASS: Python driver (${tests[*]##*/}) exited 0"
fi
