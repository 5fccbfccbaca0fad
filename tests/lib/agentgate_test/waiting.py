"""Bounded waiting: the one bound on any wait for the product, and a
poll-until helper."""

import time

# Bound on any single wait for the product (a job to finish, an SSE frame).
TIMEOUT = 20.0


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    """Polls predicate every 50 ms until it returns something true, and
    returns that; fails the test when timeout seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")
