"""rebuild.polling: short looks first, growing to the longest wait the caller allows."""

from __future__ import annotations

import itertools

import pytest

from rebuild.polling import poll_waits


def test_waits_start_short_grow_and_stop_growing_at_the_longest() -> None:
    waits = list(itertools.islice(poll_waits(0.25, 2.0), 14))
    assert waits[0] == 0.25
    assert waits[1] == pytest.approx(0.3125)  # 1.25 times the one before
    assert all(b >= a for a, b in itertools.pairwise(waits))
    assert waits[-1] == 2.0 and max(waits) == 2.0  # capped, and reached within a few looks
    # A host back 2.5 s after the first look is seen within 0.5 s (a fixed 2 s poll: up to 2 s).
    looks = list(itertools.accumulate(waits))
    assert next(t for t in looks if t >= 2.5) - 2.5 < 0.5


def test_a_first_wait_above_the_longest_is_the_longest() -> None:
    assert list(itertools.islice(poll_waits(5, 2), 3)) == [2, 2, 2]


@pytest.mark.parametrize(("first", "longest"), [(0, 2), (0.25, 0), (-1, 2), (float("nan"), 2)])
def test_waits_that_are_not_positive_are_refused_at_once(first: float, longest: float) -> None:
    with pytest.raises(ValueError, match="waits must be positive seconds"):
        poll_waits(first, longest)
