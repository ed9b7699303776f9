"""The Kivy kiosk app, driven offscreen with simulated touches through checkout and return.

The app runs in a subprocess (Kivy's App runs once per process) with the scenario of
tests/test_kiosk_app_driver.py: real app, real simulated reader on a pty, real worker thread
and journal, a fake agent. The parts without Kivy (theme, speech, spoken text) are tested
here directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kiosk.app.speech import Speaker
from kiosk.app.theme import CONTRAST, NORMAL, font_paths
from kiosk.keypad import typed
from kiosk.machine import State

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).with_name("test_kiosk_app_driver.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One scripted app run (about 10 s); its result.json and output directory."""
    out = tmp_path_factory.mktemp("kiosk-app")
    env = dict(os.environ, SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1", PYTHONPATH=str(ROOT))
    env["KIVY_HOME"] = str(out / "kivy-home")
    # The console log is what is checked (conftest turns it off for in-process Kivy).
    env.pop("KIVY_NO_CONSOLELOG", None)
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result_file = out / "result.json"
    assert result_file.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    result["out"] = out
    result["returncode"] = proc.returncode
    result["log"] = proc.stdout + proc.stderr
    return result


@pytest.mark.parametrize(
    ("entered", "key", "letters", "expected"),
    [
        ("", "7", False, "7"),
        ("12", "B", False, "12"),  # no letters on a digits-only or PIN keypad
        ("12", "B", True, "12B"),
        ("12", "b", True, "12"),  # the letter page has capitals only
        ("12", "ok", True, "12"),  # not a character key
        ("12", "٣", True, "12"),  # an Arabic-Indic digit is a digit to Python, not to us
        ("1" * 20, "2", True, "1" * 20),  # at most 20 characters
    ],
)
def test_keypad_takes_digits_and_only_allowed_capitals(
    entered: str, key: str, letters: bool, expected: str
) -> None:
    """What a character key adds to the keypad's text."""
    assert typed(entered, key, letters=letters) == expected


def test_app_run_completes_every_step(run: dict[str, Any]) -> None:
    """The scripted run reaches the end of the scenario without an error."""
    assert run["error"] is None, run["error"]
    assert run["returncode"] == 0, run["log"][-3000:]
    assert "leave staff again" in run["done"]


def test_keypad_forgets_digits_when_its_screen_is_left(run: dict[str, Any]) -> None:
    """Digits typed on the staff PIN pad before Cancel are gone when the pad is opened again."""
    done = run["done"]
    assert "digits typed, then cancel" in done
    assert "staff PIN pad is empty again" in done


def test_a_card_number_with_letters_is_typed_on_the_letter_page(run: dict[str, Any]) -> None:
    """ABC turns the card keypad into letters; P, then 123 and 0001, starts P0001's visit."""
    done = run["done"]
    assert "letter page" in done
    assert "card number with a letter typed" in done
    assert "PIN cancelled" in done  # and the keypad is back on its digits
    with Image.open(run["out"] / "kiosk-attract-letters-vi.png") as image:
        assert image.size == (1280, 800)


def test_checkout_and_return_are_committed(run: dict[str, Any]) -> None:
    """Touches on the screen lend three items, refuse the reference book, then return all three."""
    events = run["events"]
    borrowed = ["3100001", "3100002", "3100005"]
    assert [e for e in events if e.startswith("Checkout:")] == [f"Checkout:{i}" for i in borrowed]
    assert "Refusal:3100021" in events
    assert sorted(e for e in events if e.startswith("Checkin:")) == [
        f"Checkin:{i}" for i in borrowed
    ]


def test_every_screen_is_captured_in_both_languages(run: dict[str, Any]) -> None:
    """A full-size screenshot exists for every screen in Vietnamese and in English."""
    out: Path = run["out"]
    for state in State:
        for language in ("vi", "en"):
            path = out / f"kiosk-{state.value}-{language}.png"
            assert path.exists(), f"no screenshot of {state.value} in {language}"
            with Image.open(path) as image:
                assert image.size == (1280, 800), path.name
                # Not a blank frame: a drawn screen has text, buttons and a background.
                assert len(image.convert("RGB").getcolors(1_000_000) or []) > 20, path.name


def test_app_saves_each_new_screen_by_itself(run: dict[str, Any]) -> None:
    """With a screenshot directory (``--screenshots``), the app saves screens as they appear."""
    auto: Path = run["out"] / "auto"
    for name in ("kiosk-attract-vi.png", "kiosk-pin-vi.png", "kiosk-checkout-vi.png"):
        assert (auto / name).exists(), name


def test_large_text_mode_changes_the_look(run: dict[str, Any]) -> None:
    """The large-text / high-contrast screenshot has the contrast background, the normal one not."""
    out: Path = run["out"]
    with Image.open(out / "kiosk-choose-en-large.png") as large:
        corner = large.convert("RGB").getpixel((2, 2))
    with Image.open(out / "kiosk-choose-en.png") as normal:
        plain = normal.convert("RGB").getpixel((2, 2))
    assert corner == tuple(round(c * 255) for c in CONTRAST.background[:3])
    assert plain == tuple(round(c * 255) for c in NORMAL.background[:3])


def test_spoken_prompt_was_synthesised(run: dict[str, Any]) -> None:
    """Switching spoken prompts on reads the screen in the patron's language through espeak-ng."""
    assert run["spoken"] == [["en", "Hello, John Smith! What would you like to do?"]]
    assert run["speech_wav_bytes"] > 1000


def test_pin_never_reaches_the_log_or_the_journal(run: dict[str, Any]) -> None:
    """The patron's PIN, typed on the keypad, is in neither the app's output nor its journal."""
    log = run["log"].replace(str(run["out"]), "<out>")  # pytest-NNNN paths are not the PIN
    assert "screenshot saved" in log  # the console log was captured
    assert "1234" not in log
    assert b"1234" not in (run["out"] / "intents.sqlite").read_bytes()


def test_cold_start_is_recorded(run: dict[str, Any]) -> None:
    """The run measured the time from process start to the first attract screen."""
    assert isinstance(run["cold_start_s"], float)
    assert run["cold_start_s"] > 0


def test_theme_colours_are_named_tuples() -> None:
    """Each theme exposes its colours by name for the kv rules, and large text is larger."""
    colors = CONTRAST.colors()
    assert colors["background"] == CONTRAST.background
    assert set(colors) == set(NORMAL.colors())
    assert "scale" not in colors
    assert "name" not in colors
    assert CONTRAST.scale > NORMAL.scale


def test_font_covers_vietnamese_when_installed() -> None:
    """DejaVu Sans (installed here and in CI) is chosen as the kiosk font."""
    fonts = font_paths()
    assert fonts is not None
    assert fonts[0].endswith("DejaVuSans.ttf")
    assert fonts[1].endswith("DejaVuSans-Bold.ttf")


def test_speaker_command_uses_the_language_voice() -> None:
    """The espeak-ng command picks the Vietnamese or English voice and ends with the text."""
    speaker = Speaker()
    vi = speaker.command("Xin chào", "vi")
    en = speaker.command("Hello", "en")
    assert vi[vi.index("-v") + 1] == "vi"
    assert vi[-1] == "Xin chào"
    assert en[en.index("-v") + 1] == "en-gb"
    assert en[-1] == "Hello"


def test_speaker_without_espeak_is_silent(tmp_path: Path) -> None:
    """When espeak-ng is missing, speaking does nothing and says so."""
    speaker = Speaker(program=str(tmp_path / "no-such-espeak"))
    assert not speaker.available
    assert speaker.say("Xin chào", "vi") is False
    speaker.close()


def test_speaker_stops_the_previous_prompt(tmp_path: Path) -> None:
    """A new prompt ends the one still running, and close reaps the process."""
    script = tmp_path / "fake-espeak"
    script.write_text("#!/bin/sh\nexec sleep 30\n")  # stands in for a long utterance
    script.chmod(0o755)
    speaker = Speaker(program=str(script))
    assert speaker.say("một", "vi")
    first = speaker._process
    assert speaker.say("hai", "vi")
    assert first is not None
    assert first.returncode is not None
    speaker.close()
    assert speaker._process is None
