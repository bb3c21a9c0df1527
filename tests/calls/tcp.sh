#!/bin/sh
# The call semantics (test_calls.c), then calls answered later
# (test_kept.c), over TCP.
export SPOKE_TEST_TRANSPORT=tcp
"$SPOKE_BUILDDIR/tests/calls/test_calls" || exit
exec "$SPOKE_BUILDDIR/tests/calls/test_kept"
