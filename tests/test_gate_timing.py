"""The gate's timed reader port (gate.timing): reply timestamps and whole-chunk socket reads."""

from __future__ import annotations

import time

import pytest

from gate.timing import TimedPort, timed_opener
from hardware.feig import FeigReader
from simulators.reader import FeigSimulator, RFField, SimTag


@pytest.fixture
def crowded() -> FeigSimulator:
    """A simulated reader on TCP with 60 tags in its field (a 609-byte advanced reply)."""
    field = RFField([SimTag.from_item(f"7000{i:04d}") for i in range(60)])
    sim = FeigSimulator(field)
    sim.start_tcp()
    yield sim
    sim.stop()


def test_large_replies_over_tcp_arrive_in_whole_chunks(crowded: FeigSimulator) -> None:
    """Through the gate's port a 60-tag inventory over socket:// is read in time, every time."""
    ports: list[TimedPort] = []
    with FeigReader(crowded.url, timeout=0.3, opener=timed_opener(ports.append)) as reader:
        for _ in range(30):
            assert len(reader.inventory(afi=0x07)) == 60
    assert len(ports) == 1
    assert ports[0].bytes_read == 30 * (8 + 1 + 60 * 10)


def test_last_read_time_is_when_the_reply_arrived(crowded: FeigSimulator) -> None:
    """last_read_ns falls between sending the request and inventory() returning."""
    ports: list[TimedPort] = []
    with FeigReader(crowded.url, opener=timed_opener(ports.append)) as reader:
        before = time.perf_counter_ns()
        reader.inventory()
        after = time.perf_counter_ns()
    assert before < ports[0].last_read_ns < after
