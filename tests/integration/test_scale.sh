#!/bin/sh
# The hub at 1,024 simulated agents (tests/bench/hub-sim.c --check): all
# register, gangs over them, 2,048 spawns, 10 % vanish and are detected,
# the GPUs of the rest are free.  Every count is asserted; exits 77 when
# the descriptor limit cannot hold the connections.
exec "$SPOKE_BUILDDIR/tests/bench/hub-sim" --check
