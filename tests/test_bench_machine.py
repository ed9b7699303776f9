"""The benchmarks' machine readings: /proc/stat parsing, steal share, hand-off probe."""

from __future__ import annotations

import pytest

from benchmarks.machine import parse_cpu_line, steal_fraction, thread_round_trip_us

STAT = """cpu  9480 0 5389 29146 1362 0 338 1965 40 0
cpu0 4740 0 2694 14573 681 0 169 982 20 0
intr 1 2 3
"""


def test_the_aggregate_line_gives_all_ticks_and_steal() -> None:
    """Guest ticks are already inside user time and are not added twice."""
    assert parse_cpu_line(STAT) == (9480 + 5389 + 29146 + 1362 + 338 + 1965, 1965)


def test_a_stat_without_the_cpu_line_is_refused() -> None:
    """A text that is not /proc/stat raises instead of reporting zeros."""
    with pytest.raises(ValueError, match="cpu"):
        parse_cpu_line("cpu0 1 2 3 4 5 6 7 8\n")


def test_steal_is_the_share_of_ticks_between_readings() -> None:
    """Steal share = stolen ticks / all ticks over the interval; unknown stays unknown."""
    assert steal_fraction((1000, 100), (2000, 350)) == 0.25
    assert steal_fraction(None, (2000, 350)) is None
    assert steal_fraction((2000, 350), (2000, 350)) is None


def test_the_round_trip_probe_really_passes_the_baton() -> None:
    """The probe returns a positive median after both threads took every turn."""
    assert thread_round_trip_us(rounds=50) > 0
