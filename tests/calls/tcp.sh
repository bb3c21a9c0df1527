#!/bin/sh
# The call semantics (test_calls.c) over TCP.
SPOKE_TEST_TRANSPORT=tcp exec "$SPOKE_BUILDDIR/tests/calls/test_calls"
