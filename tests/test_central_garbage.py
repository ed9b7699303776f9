"""Hypothesis-made garbage over the real broker: every message is counted, the service goes on.

This module runs one simulator for all its examples (started once, with a module-scoped
fixture), so it lives alone: another simulator in the same shared subscription group at the
same time would take half of the messages.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.contract.topics import event_topic, request_topic, status_topic
from simulators.central import CentralSimulator
from tests.support.broker import MosquittoBroker
from tests.test_central_common import (
    FakeDevice,
    envelope,
    fixed_clock,
    settle,
    unique_library,
    write_seed,
)

pytestmark = pytest.mark.broker

LIB = unique_library()


@pytest.fixture(scope="module")
def running(
    broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CentralSimulator, FakeDevice]]:
    directory = tmp_path_factory.mktemp("central-garbage")
    with CentralSimulator(
        broker.url,
        directory / "central.sqlite",
        seed=write_seed(directory, LIB),
        instance="garbage",
        clock=fixed_clock,
    ) as sim:
        device = FakeDevice(broker.url, LIB)
        yield sim, device
        device.close()


_TOPICS = st.sampled_from(
    [
        event_topic(LIB, "kiosk-1", "checkout"),
        event_topic(LIB, "kiosk-1", "gate_alarm"),
        status_topic(LIB, "kiosk-1"),
        request_topic(LIB, "kiosk-1", "checkout"),
        f"libedge/v1/{LIB}/kiosk-1/up/nonsense",
        "libedge/v1/somewhere-else/kiosk-1/up/event/checkout",
    ]
)
# Non-empty: an empty payload on a status topic is a legitimate "retained status cleared".
_GARBAGE = st.lists(st.tuples(_TOPICS, st.binary(min_size=1, max_size=400)), min_size=1, max_size=8)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(garbage=_GARBAGE)
def test_random_garbage_is_counted_once_each_and_valid_events_still_flow(
    running: tuple[CentralSimulator, FakeDevice], garbage: list[tuple[str, bytes]]
) -> None:
    """Each garbage message adds exactly one rejection; a valid event after it is stored."""
    sim, device = running
    before = settle(sim, device.probe)
    for topic, payload in garbage:
        device.probe.publish(topic, payload)
    seq = sim.stats().events + 1
    device.send(envelope(seq, library_id=LIB))
    sim.wait_for(
        lambda: sim.stats().rejected_total - before.rejected_total >= len(garbage),
        what=f"{len(garbage)} rejections",
    )
    sim.wait_for_events(seq)
    after = settle(sim, device.probe)
    # settle() itself adds one foreign rejection.
    assert after.rejected_total - before.rejected_total == len(garbage) + 1
    assert after.events == seq
    assert sim.gaps() == []
