#!/bin/sh
# The call semantics (test_calls.c), then calls answered later
# (test_kept.c), over RDMA: make check-rxe runs it on rxe (software RoCE,
# in a VM under TCG where the kernel has no rdma_rxe), hence the bounds
# stretched by SPOKE_TEST_SLOW; a skip (77) without a device or in a Spoke
# built without RDMA.
export SPOKE_TEST_TRANSPORT=rdma
export SPOKE_TEST_SLOW=${SPOKE_TEST_SLOW:-8}
"$SPOKE_BUILDDIR/tests/calls/test_calls" || exit
exec "$SPOKE_BUILDDIR/tests/calls/test_kept"
