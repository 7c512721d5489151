"""How long to wait between two looks at something that is not ready yet.

A fixed interval leaves the critical path idle for up to one interval after the thing became
ready (a host back from its install a moment after a look waits a whole interval for the next).
Short looks first, each a little longer than the one before, up to the longest the caller
allows: a quick answer is seen quickly, and a long wait (a real install: 20-40 minutes) costs
no more looks than the fixed interval would, plus a few in its first seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

GROWTH = 1.25  # each wait this much longer than the one before: ~10 looks to go from 0.25 s to 2 s


def poll_waits(first: float, longest: float, growth: float = GROWTH) -> Iterator[float]:
    """Seconds to wait before each next look: `first`, then each `growth` times the one before,
    capped at `longest`. Endless: the caller stops at its own deadline. Refuses (ValueError, at
    once) a wait that is not positive or a growth below 1."""
    if not (first > 0 and longest > 0 and growth >= 1):
        raise ValueError(f"waits must be positive seconds (got first {first:g} s, longest {longest:g} s)")
    return _growing(min(first, longest), longest, growth)


def _growing(wait: float, longest: float, growth: float) -> Iterator[float]:
    while True:
        yield wait
        wait = min(wait * growth, longest)
