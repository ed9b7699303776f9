"""Structured logging for every libedge process: human lines or JSON lines, never a PIN.

``setup_logging(fmt="human"|"json")`` installs one handler on the root logger. A filter on
that handler scrubs PINs and other secrets from every record before it is formatted,
whatever the caller wrote: keyword-style ``pin=1234``, JSON ``"pin": "1234"``, and
``extra={"pin": ...}`` fields are all replaced by ``***``. The filter is a safety net, not
a licence: code must still never pass a PIN to a logger.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, Literal, TextIO

__all__ = ["SecretScrubber", "setup_logging"]

_SECRET_NAMES = ("pin", "password", "passwd", "api_token", "staff_pin", "token", "secret")
_NAMES = "|".join(_SECRET_NAMES)
# key=value, key: value, JSON "key": "value" and Python 'key': 'value', as a whole key.
_PATTERNS = [
    re.compile(
        rf"""(?i)(["'](?:{_NAMES})["']\s*:\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^,}}\s]+)"""
    ),
    re.compile(rf"(?i)(\b(?:{_NAMES})\s*[=:]\s*)(\S+)"),
]
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def scrub(text: str) -> str:
    """Replace the value of every secret-named key in ``text`` by ``***``."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}***", text)
    return text


class SecretScrubber(logging.Filter):
    """Rewrites a record so that no secret reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message, its arguments and secret-named ``extra`` fields."""
        message = scrub(record.getMessage())
        record.msg, record.args = message, None
        for key in list(vars(record)):
            if key not in _STANDARD_ATTRS and key.lower() in _SECRET_NAMES:
                setattr(record, key, "***")
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON line."""
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS:
                out[key] = value if isinstance(value, str | int | float | bool) else repr(value)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    A plain StreamHandler keeps the stream it was given; when a test harness (or a daemon)
    swaps stderr later, that stream may be closed, and every record would then fail.
    """

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignore: the stream is always the current stderr."""


def setup_logging(
    fmt: Literal["human", "json"] = "human",
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every logger's records to ``stream`` (stderr) in the chosen format, secrets scrubbed."""
    handler: logging.Handler = logging.StreamHandler(stream) if stream else _CurrentStderr()
    handler.addFilter(SecretScrubber())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_libedge", False)]:
        root.removeHandler(old)
    handler._libedge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request at INFO: the gate's hand-over and health pushes would bury
    # the lines staff read. Its warnings and errors still show; at DEBUG everything does.
    quiet = logging.NOTSET if root.level <= logging.DEBUG else max(root.level, logging.WARNING)
    logging.getLogger("httpx").setLevel(quiet)
    return handler
