"""Fixtures shared by the whole suite: private MQTT brokers, offscreen windows, no stray state."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import (
    AmqttBroker,
    MosquittoBroker,
    broker_kind,
    mosquitto_binary,
    mosquitto_version,
)

# Kivy reads these at import time: offscreen window, no argv parsing, no ~/.kivy writes.
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")

Broker = MosquittoBroker | AmqttBroker


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which MQTT broker the tests run against, so the output shows it."""
    binary = mosquitto_binary()
    if binary:
        return [
            f"mqtt broker: {mosquitto_version(binary)} ({binary}), private instances on loopback"
        ]
    return ["mqtt broker: embedded amqtt fallback (no mosquitto binary found; MQTT 3.1.1 only)"]


def _new_broker(workdir: Path, **options: Any) -> Broker:
    if broker_kind() == "mosquitto":
        return MosquittoBroker(workdir, **options)
    return AmqttBroker(workdir, **options)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's shared broker. Do not stop it in a test; use ``fresh_broker`` for outages."""
    instance = _new_broker(tmp_path_factory.mktemp("broker"), persistence=False)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker for one test module alone, for tests that must not see other modules' retained
    messages (Mosquitto hands retained messages even to new shared subscribers)."""
    instance = _new_broker(tmp_path_factory.mktemp("module-broker"), persistence=False)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test's own, which the test may stop, kill and restart."""
    instance = _new_broker(tmp_path / "broker")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Start extra brokers (passwords, ACL file, TLS); all are stopped after the test."""
    started: list[Broker] = []

    def make(**options: Any) -> Broker:
        instance = _new_broker(tmp_path / f"broker-{len(started)}", **options)
        instance.start()
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()
