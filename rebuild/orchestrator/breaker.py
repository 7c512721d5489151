"""Circuit breaker: stop the site when too many hosts of a wave fail.

Checked after every batch over the hosts of the current wave processed so far, and before
each new batch or host is let go over what is already known of the batches still running,
so a bad image or a broken boot server stops the site after a batch or two rather than after
the whole wave. A small first batch can trip it early: that is deliberate — stopping costs minutes,
wiping a tier's machines into a broken state costs the hospital much more.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Trip:
    tier: int
    failed: int
    processed: int
    threshold: float
    top_reasons: list[tuple[str, int]]

    @property
    def rate(self) -> float:
        return self.failed / self.processed if self.processed else 0.0

    def explain(self) -> str:
        lines = [
            f"circuit breaker: wave of tier {self.tier}: {self.failed} of {self.processed} hosts failed "
            f"({self.rate:.0%} > {self.threshold:.0%}); the site is stopped, no further host was started.",
            "Look at, most frequent first:",
        ]
        lines += [f"  {count} x {reason}" for reason, count in self.top_reasons]
        return "\n".join(lines)


@dataclass
class Breaker:
    threshold: float = 0.2
    tier: int | None = None
    processed: int = 0
    failures: dict[str, str] = field(default_factory=dict)  # host -> reason

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"breaker threshold must be in [0, 1), got {self.threshold}")

    def start_wave(self, tier: int) -> None:
        self.tier, self.processed, self.failures = tier, 0, {}

    def record_batch(self, hosts: int, failures: dict[str, str]) -> Trip | None:
        """Count one finished batch; a Trip when the wave's failure rate passes the threshold."""
        self.processed += hosts
        self.failures.update(failures)
        return self._assess(self.processed, self.failures)

    def check_in_flight(self, hosts: int, failures: dict[str, str], *, sample: int = 0) -> Trip | None:
        """Before letting another host or batch go: the finished batches plus what is already
        known of the batches still running (`hosts` past reimaging, their failures so far), once
        at least `sample` hosts are known (one early failure out of one is no failure rate).
        Records nothing."""
        if self.processed + hosts < sample:
            return None
        return self._assess(self.processed + hosts, {**self.failures, **failures})

    def _assess(self, processed: int, failures: dict[str, str]) -> Trip | None:
        if processed and len(failures) / processed > self.threshold:
            # Group by the task that failed (the part before the first ':'), which is what to look at.
            reasons = Counter(r.split(":", 1)[0].strip() for r in failures.values())
            return Trip(
                self.tier if self.tier is not None else -1,
                len(failures),
                processed,
                self.threshold,
                reasons.most_common(5),
            )
        return None
