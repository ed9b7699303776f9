"""Logging never writes a PIN or another secret, in human or JSON format."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from edge_agent.logs import scrub, setup_logging


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    handler = setup_logging("json", level=logging.DEBUG, stream=stream)
    yield stream, logging.getLogger("libedge.test")
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [
        "patron P1 typed pin=4321",
        "login PIN: 4321 for P1",
        'request {"patron_id": "P1", "pin": "4321"}',
        'request {"pin":4321}',
        "staff_pin=4321 password=4321 api_token=4321",
    ],
)
def test_scrub_removes_secret_values(text: str) -> None:
    """Secret-named keys lose their values whatever the notation."""
    assert "4321" not in scrub(text)


def test_ordinary_text_is_left_alone() -> None:
    """Words that merely contain 'pin' (shipping, pinned) are not mangled."""
    text = "shipping 12 items, pinned=yes, spine label 4321"
    assert scrub(text) == text


def test_json_lines_carry_no_pin(captured: tuple[io.StringIO, logging.Logger]) -> None:
    """Message arguments, extra fields and exceptions are all scrubbed before formatting."""
    stream, log = captured
    log.info("lookup %s", {"patron_id": "P1", "pin": "4321"}, extra={"pin": "4321", "patron": "P1"})
    try:
        raise ValueError("bad pin=4321")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert "4321" not in stream.getvalue()
    assert lines[0]["pin"] == "***"
    assert lines[0]["patron"] == "P1"
    assert lines[1]["level"] == "error"
    assert "ValueError" in lines[1]["exception"]


def test_human_format_scrubs_too() -> None:
    """The human format goes through the same filter."""
    stream = io.StringIO()
    handler = setup_logging("human", stream=stream)
    try:
        logging.getLogger("libedge.test").warning("pin=%s", "4321")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "4321" not in stream.getvalue()
    assert "pin=***" in stream.getvalue()


def test_httpx_request_lines_are_left_out_unless_debugging() -> None:
    """httpx's per-request INFO lines would bury the gate's own; DEBUG shows them again."""
    stream = io.StringIO()
    root, httpx = logging.getLogger(), logging.getLogger("httpx")
    saved = (root.handlers[:], root.level, httpx.level)
    try:
        setup_logging("human", "INFO", stream=stream)
        logging.getLogger("httpx").info("HTTP Request: PUT http://x/device/details")
        logging.getLogger("httpx").warning("a real problem")
        logging.getLogger("gate.service").info("gate stopped")
        setup_logging("human", "DEBUG", stream=stream)
        logging.getLogger("httpx").info("HTTP Request: POST http://x/events")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        httpx.setLevel(saved[2])
    text = stream.getvalue()
    assert "device/details" not in text
    assert "a real problem" in text
    assert "gate stopped" in text
    assert "POST http://x/events" in text
