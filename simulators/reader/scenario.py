"""Scenario files for the simulated reader: tags, reader settings and timed steps (YAML or TOML).

A scenario names its tags once and then moves them in and out of the field at given seconds
after the start, and flips fault switches, so a demo or a manual test of the kiosk or gate
replays the same story every time::

    reader:   {address: 0, air_time: true, seed: 7}      # optional FeigSimulator settings
    faults:   {corrupt_crc: 0.0}                          # optional switches at the start
    tags:
      book:   {item_id: "123456789012", isil: "DE-Heu1", title: "Der Process"}
      raw:    {uid: "E0 04 01 00 00 00 00 01", memory: "11 01 01 31", afi: 0x07}
    field: [book]                                          # in the field at the start
    steps:
      - {at: 2.0, place: [raw]}
      - {at: 4.0, remove: [book]}
      - {at: 5.0, fault: {collisions: true}}
      - {at: 6.0, clear: true}
      - {at: 7.0, unplug: true}
      - {at: 9.0, replug: true}
    repeat: 10.0                                           # optional: start over every 10 s

A tag keeps what the driver wrote to it when it leaves and comes back, like a real book.
Errors name the file and the place in it (``steps.2.place.0: unknown tag 'bok'``).
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.reader.faults import Faults
from simulators.reader.specs import SpecError, TagSpec, describe_validation_error
from simulators.reader.tags import RFField, SimTag

__all__ = ["Scenario", "ScenarioError", "ScenarioRunner", "Step", "load_scenario"]

log = logging.getLogger(__name__)


class ScenarioError(ValueError):
    """A scenario file cannot be read or is malformed; the message names the file and place."""


class ReaderSettings(BaseModel):
    """FeigSimulator settings a scenario may fix (the command line overrides them)."""

    model_config = ConfigDict(extra="forbid")

    address: int | None = Field(default=None, ge=0, le=254)
    air_time: bool | None = None
    buffer_size: int | None = Field(default=None, ge=64, le=65535)
    block_order_reversed: bool | None = None
    only_new_tags: bool | None = None
    seed: int | None = None


class Step(BaseModel):
    """One timed action; exactly one of the actions is given."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    place: list[str] | None = None
    remove: list[str] | None = None
    clear: Literal[True] | None = None
    fault: dict[str, Any] | None = None
    unplug: Literal[True] | None = None
    replug: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [
            n
            for n in ("place", "remove", "clear", "fault", "unplug", "replug")
            if getattr(self, n) is not None
        ]
        if len(actions) != 1:
            found = ", ".join(actions) or "none"
            raise ValueError(
                f"a step needs exactly one of place, remove, clear, fault, unplug, replug"
                f" (found: {found})"
            )
        return self


class Scenario(BaseModel):
    """A whole scenario file."""

    model_config = ConfigDict(extra="forbid")

    reader: ReaderSettings = Field(default_factory=ReaderSettings)
    faults: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, TagSpec] = Field(default_factory=dict)
    field: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    repeat: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _names_exist(self) -> Scenario:
        def check(names: list[str], where: str) -> None:
            for i, name in enumerate(names):
                if name not in self.tags:
                    raise ValueError(f"{where}.{i}: unknown tag {name!r}")

        check(self.field, "field")
        for n, step in enumerate(self.steps):
            for action in ("place", "remove"):
                names = getattr(step, action)
                if names is not None:
                    check(names, f"steps.{n}.{action}")
            if step.fault is not None:
                try:
                    Faults().update(**step.fault)
                except ValueError as exc:
                    raise ValueError(f"steps.{n}.fault: {exc}") from None
        try:
            Faults().update(**self.faults)
        except ValueError as exc:
            raise ValueError(f"faults: {exc}") from None
        if self.repeat is not None and self.steps and self.repeat < self.steps[-1].at:
            raise ValueError(f"repeat ({self.repeat} s) comes before the last step")
        # Run the steps in time order; equal times keep file order.
        self.steps.sort(key=lambda step: step.at)
        return self

    def build_tags(self) -> dict[str, SimTag]:
        """Create every named tag once (SpecError if one does not fit its chip)."""
        return {name: spec.build() for name, spec in self.tags.items()}


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    """Validate plain data (already parsed YAML/TOML) into a Scenario."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping, got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {describe_validation_error(exc)}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario from a .yaml/.yml or .toml file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ScenarioError(f"{path}: a scenario file ends in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    return parse_scenario(data, str(path))


class ScenarioRunner:
    """Play a scenario's steps against a field and fault switches, in a background thread.

    ``unplug``/``replug`` are the simulator's methods (steps that use them fail loudly in the
    log without them). ``clock`` says where the runner is in the scenario; waits between steps
    are real waits that :meth:`stop` interrupts.
    """

    def __init__(
        self,
        scenario: Scenario,
        field: RFField,
        faults: Faults,
        *,
        unplug: Callable[[], object] | None = None,
        replug: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scenario = scenario
        self.field = field
        self.faults = faults
        self.tags = scenario.build_tags()
        self._unplug = unplug
        self._replug = replug
        self._clock = clock
        self._stop = threading.Event()
        self.done = threading.Event()
        self.steps_run = 0
        self._prepared = False
        self._thread: threading.Thread | None = None

    def prepare(self) -> None:
        """Apply the starting state: fault switches and the tags in the field at the start."""
        self.faults.update(**self.scenario.faults)
        self.field.place(*(self.tags[name] for name in self.scenario.field))
        self._prepared = True

    def start(self) -> None:
        """Apply the starting state (unless :meth:`prepare` did) and play the steps in a thread."""
        if not self._prepared:
            self.prepare()
        self._thread = threading.Thread(target=self._run, name="feig-sim-scenario", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop playing (at once, even in the middle of a wait)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def apply(self, step: Step) -> None:
        """Carry out one step now."""
        if step.place is not None:
            self.field.place(*(self.tags[name] for name in step.place))
        elif step.remove is not None:
            self.field.remove(*(self.tags[name].uid for name in step.remove))
        elif step.clear:
            self.field.clear()
        elif step.fault is not None:
            self.faults.update(**step.fault)
        elif step.unplug or step.replug:
            action = self._unplug if step.unplug else self._replug
            if action is None:
                raise ScenarioError("unplug/replug steps need a running simulator")
            action()
        self.steps_run += 1

    def _run(self) -> None:
        try:
            while True:
                start = self._clock()
                for step in self.scenario.steps:
                    remaining = start + step.at - self._clock()
                    if remaining > 0 and self._stop.wait(remaining):
                        return
                    if self._stop.is_set():
                        return
                    try:
                        self.apply(step)
                    except (ScenarioError, SpecError, ValueError, OSError, TimeoutError) as exc:
                        log.error("scenario step at %.3f s failed: %s", step.at, exc)
                repeat = self.scenario.repeat
                if repeat is None:
                    return
                remaining = start + repeat - self._clock()
                if remaining > 0 and self._stop.wait(remaining):
                    return
                self.field.clear()
                self.field.place(*(self.tags[name] for name in self.scenario.field))
        finally:
            self.done.set()
