"""People counter: beam sequences give directions; the socket input survives garbage and unplugging."""

from __future__ import annotations

import queue

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.people_counter import (
    BeamPair,
    Crossing,
    Direction,
    PeopleCounterError,
    open_people_counter,
)
from simulators.people import SimulatedPeopleCounter


def feed(pair: BeamPair, changes: str) -> list[Direction]:
    out = []
    for i, token in enumerate(changes.split()):
        crossing = pair.change(token[0], token[1] == "1", float(i))
        if crossing is not None:
            out.append(crossing.direction)
    return out


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ("a1 b1 a0 b0", [Direction.IN]),
        ("b1 a1 b0 a0", [Direction.OUT]),
        ("a1 a0", []),  # stepped back out
        ("a1 b1 b0 a0", []),  # reached the inner beam, turned round
        ("a1 b1 a0 b0 b1 a1 b0 a0", [Direction.IN, Direction.OUT]),
        ("a1 a1 b1 a0 a0 b0", [Direction.IN]),  # repeated states are ignored
    ],
)
def test_beam_sequences(changes: str, expected: list[Direction]) -> None:
    """Each walking pattern counts as the direction it really took, or not at all."""
    assert feed(BeamPair(), changes) == expected


@given(st.lists(st.tuples(st.sampled_from("ab"), st.booleans()), max_size=60))
def test_never_more_crossings_than_full_passages(changes: list[tuple[str, bool]]) -> None:
    """Arbitrary beam noise never yields more crossings than times both beams cleared."""
    pair = BeamPair()
    crossings = [pair.change(b, s, 0.0) for b, s in changes]
    assert sum(c is not None for c in crossings) <= len(changes) // 4


def test_unknown_beam_is_refused() -> None:
    """A beam other than a or b is a programming error, named."""
    with pytest.raises(ValueError, match="unknown beam 'c'"):
        BeamPair().change("c", True, 0.0)


def test_counts_from_the_simulator_and_reports_garbage_and_unplugging() -> None:
    """Over TCP: walks are counted, garbage is reported and skipped, a dropped link is reconnected."""
    crossings: queue.Queue[Crossing] = queue.Queue()
    problems: queue.Queue[str] = queue.Queue()
    with SimulatedPeopleCounter() as sim:
        counter = open_people_counter(sim.url, crossings.put, problems.put)
        try:
            sim.wait_for_client()
            sim.walk("in")
            sim.turn_back()
            sim.garble()
            sim.walk("out")
            assert crossings.get(timeout=5).direction == Direction.IN
            assert "garbled line" in problems.get(timeout=5)
            assert crossings.get(timeout=5).direction == Direction.OUT
            sim.disconnect_clients()
            assert "closed the connection" in problems.get(timeout=5)
            sim.wait_for_client(timeout=10)
            sim.walk("in")
            assert crossings.get(timeout=5).direction == Direction.IN
            assert crossings.empty()
        finally:
            counter.close()


@pytest.mark.parametrize("url", ["tcp://nohost", "gpio:5", "serial:///dev/x"])
def test_bad_urls_are_named(url: str) -> None:
    """Malformed or unknown counter URLs are refused, naming the URL."""
    with pytest.raises(PeopleCounterError, match=r"expected|unknown people counter"):
        open_people_counter(url, lambda c: None, lambda p: None)
