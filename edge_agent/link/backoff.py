"""Reconnect delays: exponential backoff with jitter, so that a fleet never retries in step.

After a power cut every kiosk of a province comes back at once; without jitter they would
all hit the broker in the same second, again and again. The delay for attempt ``n`` (from
0) is drawn uniformly from ``[d/2, d]`` where ``d = min(cap, base * 2**n)`` ("equal
jitter"): it grows like plain exponential backoff, never falls below half of it (so a
wrong password is never retried in a tight loop) and two devices rarely pick the same
moment.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """The delays before successive reconnect attempts; :meth:`reset` after a healthy link."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base <= 0:
            raise ValueError(f"backoff base must be > 0 seconds, not {base!r}")
        if cap < base:
            raise ValueError(f"backoff cap ({cap!r} s) must not be below its base ({base!r} s)")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def ceiling(self) -> float:
        """The un-jittered delay of the next attempt: ``min(cap, base * 2**attempts)``."""
        # Compare exponents first: 2**attempts overflows a float after ~1000 failures.
        if self.attempts >= 64:
            return self.cap
        return min(self.cap, self.base * 2.0**self.attempts)

    def next_delay(self) -> float:
        """The delay before the next attempt (counts the attempt)."""
        ceiling = self.ceiling()
        self.attempts += 1
        return self._rng.uniform(ceiling / 2.0, ceiling)

    def reset(self) -> None:
        """Start again from ``base`` (the link proved healthy)."""
        self.attempts = 0
