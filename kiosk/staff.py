"""The staff PIN: a constant-time comparison and a lockout that grows with wrong attempts.

The staff PIN opens device health, the reader and printer tests and the out-of-service
switch, so guessing it must be slow: after ``free_attempts`` wrong PINs every further wrong
PIN locks the keypad for ``lockout_s``, doubling up to ``max_lockout_s``. A right PIN resets
the count. The PIN typed is compared as a SHA-256 digest with :func:`hmac.compare_digest`,
so neither the time taken nor the PIN's length tells a guesser anything, and the typed PIN
is not kept.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from enum import StrEnum

from pydantic import SecretStr

from kiosk.ports import Clock

__all__ = ["StaffCheck", "StaffLock", "StaffVerdict"]

log = logging.getLogger(__name__)


class StaffVerdict(StrEnum):
    """The answer to one staff PIN attempt."""

    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class StaffCheck:
    """A verdict, and for LOCKED how many seconds remain."""

    verdict: StaffVerdict
    retry_after_s: float = 0.0


def _digest(pin: str) -> bytes:
    return hashlib.sha256(pin.encode("utf-8")).digest()


class StaffLock:
    """Checks staff PINs against the configured one and rate-limits wrong attempts."""

    def __init__(
        self,
        pin: SecretStr,
        clock: Clock,
        *,
        free_attempts: int = 3,
        lockout_s: float = 30.0,
        max_lockout_s: float = 300.0,
    ) -> None:
        self._expected = _digest(pin.get_secret_value())
        self._clock = clock
        self.free_attempts = free_attempts
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self._wrong = 0
        self._locked_until = 0.0

    def retry_after(self) -> float:
        """Seconds until the next attempt is allowed (0 when it is allowed now)."""
        return max(0.0, self._locked_until - self._clock.monotonic())

    def check(self, pin: str) -> StaffCheck:
        """Check one attempt; a locked keypad refuses without comparing."""
        wait = self.retry_after()
        if wait > 0:
            return StaffCheck(StaffVerdict.LOCKED, wait)
        if hmac.compare_digest(_digest(pin), self._expected):
            self._wrong = 0
            return StaffCheck(StaffVerdict.OK)
        self._wrong += 1
        log.warning("wrong staff PIN (%d in a row)", self._wrong)
        over = self._wrong - self.free_attempts
        if over >= 0:
            lockout = min(self.lockout_s * 2**over, self.max_lockout_s)
            self._locked_until = self._clock.monotonic() + lockout
            return StaffCheck(StaffVerdict.LOCKED, lockout)
        return StaffCheck(StaffVerdict.WRONG)
