#!/bin/sh
# The call semantics (test_calls.c), then calls answered later
# (test_kept.c), over shared memory; a skip (77) where this Spoke has no
# shm transport.
export SPOKE_TEST_TRANSPORT=shm
"$SPOKE_BUILDDIR/tests/calls/test_calls" || exit
exec "$SPOKE_BUILDDIR/tests/calls/test_kept"
