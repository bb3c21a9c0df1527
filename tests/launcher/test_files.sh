#!/bin/bash
# test_files.sh - spoke-launch refuses a log directory that another user
# could write (or that belongs to another user) before it starts anything:
# the token and the hub's address would go there, and a link planted there
# would be written through.  (The token file's removal at teardown:
# test_faults.sh; links planted at the hub's files: test_accept.)
set -u
build=$SPOKE_BUILDDIR
launch=$build/spoke-launch
hello=$build/examples/.libs/hello.so
work=$(mktemp -d /tmp/spoke-files-test.XXXXXX)
checks=0 failures=0

ok() { checks=$((checks + 1)); echo "ok - $1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok - $1: $2"; }
trap 'rm -rf "$work"' EXIT
cat >"$work/job.yaml" <<YAML
name: files
gang: 1x1
actors:
  - name: hello
    type: Hello
    module: $hello
    per_node: 1
driver: "true"
YAML

# refused DIR MODE WANT: the launch in DIR (mode MODE) fails at once with
# WANT in its message, and leaves nothing there.
refused() {
	mkdir -p "$1" && chmod "$2" "$1"
	out=$(timeout 20 "$launch" --local --log-dir "$1" "$work/job.yaml" 2>&1)
	rc=$?
	if [ $rc -eq 1 ] && grep -q "log directory $1 $3" <<<"$out" && [ -z "$(ls -A "$1")" ]; then
		ok "a log directory of mode $2 is refused: $(tail -1 <<<"$out")"
	else
		not_ok "log directory of mode $2" "rc=$rc, files: $(ls -A "$1"): $out"
	fi
}
refused "$work/open" 0777 "may be written by its group and others (mode 0777)"
refused "$work/group" 0770 "may be written by its group (mode 0770)"
refused "$work/sticky" 1777 "may be written by its group and others (mode 1777)"
refused "$work/others" 0703 "may be written by others (mode 0703)"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	mkdir -p "$work/theirs" && chown nobody "$work/theirs"
	refused "$work/theirs" 0700 "belongs to uid $(id -u nobody), not to this user"
else
	echo "ok - # SKIP a directory of another user: not root here"
fi
# Our own private directory is fine (a new one is made 0700).
out=$(timeout 60 "$launch" --local --log-dir "$work/mine/logs" "$work/job.yaml" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(stat -c %a "$work/mine/logs")" = 700 ]; then
	ok "a new log directory is private (0700) and the job runs"
else
	not_ok "private log directory" "rc=$rc: $out"
fi

echo "Checks: $checks, Failures: $failures, Errors: 0"
[ $failures -eq 0 ]
