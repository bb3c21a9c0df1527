#!/bin/sh
# The call semantics (test_calls.c) over shared memory; a skip (77) where
# this Spoke has no shm transport.
SPOKE_TEST_TRANSPORT=shm exec "$SPOKE_BUILDDIR/tests/calls/test_calls"
