"""Spoken prompts with espeak-ng, for patrons with impaired vision (when it is installed).

One utterance at a time: a new prompt stops the one still being spoken, because a patron who
has touched the screen again wants to hear the new screen, not the end of the old one. The
process is started without waiting (the UI thread never blocks on it) and reaped on the next
prompt or on :meth:`Speaker.close`.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

__all__ = ["VOICES", "Speaker"]

log = logging.getLogger(__name__)

#: espeak-ng voice per kiosk language.
VOICES = {"vi": "vi", "en": "en-gb"}


class Speaker:
    """Speaks prompts through espeak-ng; a silent no-op when espeak-ng is not installed."""

    def __init__(self, program: str = "espeak-ng") -> None:
        self.program = shutil.which(program)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def available(self) -> bool:
        """Whether espeak-ng was found."""
        return self.program is not None

    def command(self, text: str, language: str) -> list[str]:
        """The espeak-ng command line that speaks ``text`` in ``language``."""
        voice = VOICES.get(language, "en-gb")
        # Slower than the default (175 wpm): written for children and elderly patrons.
        return [self.program or "espeak-ng", "-v", voice, "-s", "140", "--", text]

    def say(self, text: str, language: str) -> bool:
        """Stop what is being said and start saying ``text``; False when nothing is spoken."""
        self.stop()
        if self.program is None or not text.strip():
            return False
        try:
            # The program is espeak-ng found on PATH and the text goes after "--" as one
            # argument, never through a shell.
            self._process = subprocess.Popen(  # noqa: S603
                self.command(text, language),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as exc:
            log.warning("espeak-ng could not be started: %s", exc)
            return False
        return True

    def stop(self) -> None:
        """Stop the current utterance, if any, and reap its process."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop speaking."""
        self.stop()
