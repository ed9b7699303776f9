"""Gate alarm outputs: timed, extended by re-triggers, recorded with timestamps, opened by URL."""

from __future__ import annotations

import pytest

from hardware.outputs import NullAlarm, OutputError, RecordingAlarm, open_alarm


def test_trigger_switches_on_at_once_and_off_after_the_duration() -> None:
    """One trigger gives exactly one on and one off, in that order."""
    alarm = RecordingAlarm()
    alarm.trigger(0.05)
    assert alarm.active
    changes = alarm.wait_for(2)
    assert [c.on for c in changes] == [True, False]
    assert changes[1].at_ns > changes[0].at_ns
    assert not alarm.active
    alarm.close()


def test_retrigger_extends_instead_of_flickering() -> None:
    """Several triggers while on give one continuous alarm (no off/on in between)."""
    alarm = RecordingAlarm()
    for _ in range(5):
        alarm.trigger(0.05)
    changes = alarm.wait_for(2)
    assert [c.on for c in changes] == [True, False]
    alarm.close()


def test_silence_and_close() -> None:
    """silence() switches off now; a closed output refuses triggers with a clear error."""
    alarm = RecordingAlarm()
    alarm.trigger(60)
    alarm.silence()
    assert [c.on for c in alarm.changes] == [True, False]
    alarm.close()
    with pytest.raises(OutputError, match="closed"):
        alarm.trigger(1)


def test_duration_must_be_positive() -> None:
    """A zero or negative duration is a caller error, said plainly."""
    with pytest.raises(ValueError, match="positive"):
        NullAlarm().trigger(0)


@pytest.mark.parametrize(
    ("url", "kind"), [("sim:", RecordingAlarm), ("none:", NullAlarm), (None, NullAlarm)]
)
def test_open_by_url(url: str | None, kind: type) -> None:
    """sim: and none: (or nothing configured) open the matching output."""
    output = open_alarm(url)
    assert isinstance(output, kind)
    output.close()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("gpio:x,y", "BCM pin numbers"),
        ("gpio:", "BCM pin numbers"),
        ("siren://1", "unknown alarm output"),
    ],
)
def test_bad_urls_are_named(url: str, problem: str) -> None:
    """Malformed or unknown output URLs are refused with a message naming them."""
    with pytest.raises(OutputError, match=problem):
        open_alarm(url)


def test_gpio_without_gpiozero_is_a_clear_error() -> None:
    """On a machine without gpiozero, gpio: outputs fail with a message saying what to install."""
    try:
        import gpiozero  # noqa: F401
    except ImportError:
        with pytest.raises(OutputError, match="gpiozero"):
            open_alarm("gpio:17,27")
    else:  # pragma: no cover - on a Pi the pins may genuinely exist
        pytest.fail("gpiozero is installed in the test environment; this test expects it absent")
