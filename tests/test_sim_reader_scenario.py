"""Scenario files for the simulated reader: parsing, errors, and timed steps played for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.reader import Faults, FeigSimulator, RFField
from simulators.reader.scenario import ScenarioError, ScenarioRunner, load_scenario, parse_scenario

YAML_SCENARIO = """
reader: {address: 2, air_time: false, seed: 7}
faults: {corrupt_crc: 0.0}
tags:
  book: {item_id: "123456789012", isil: "DE-Heu1", title: "Der Process", secured: true}
  loaned: {item_id: "42", secured: false, uid: "E0 04 01 00 00 00 00 42"}
  raw: {uid: "E0 16 80 FF 08 00 50 24", memory: "11 01 01 31", afi: 0x07, dsfid: 0}
field: [book]
steps:
  - {at: 0.02, remove: [book]}
  - {at: 0.0, place: [raw, loaned]}
  - {at: 0.03, fault: {collisions: true, collision_miss: 0.25}}
  - {at: 0.04, clear: true}
"""

TOML_SCENARIO = """
field = ["book"]

[tags.book]
item_id = "123456789012"

[[steps]]
at = 0.0
remove = ["book"]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_scenario_is_parsed_and_steps_sorted(tmp_path: Path) -> None:
    """A YAML scenario gives its reader settings, tags and steps in time order."""
    scenario = load_scenario(write(tmp_path, "demo.yaml", YAML_SCENARIO))
    assert scenario.reader.address == 2
    assert scenario.reader.seed == 7
    assert [s.at for s in scenario.steps] == [0.0, 0.02, 0.03, 0.04]
    tags = scenario.build_tags()
    assert tags["book"].afi == 0x07
    assert tags["book"].eas
    assert tags["loaned"].afi == 0xC2
    assert not tags["loaned"].eas
    assert tags["loaned"].uid == bytes.fromhex("E0 04 01 00 00 00 00 42")
    assert tags["raw"].memory[:4] == bytes.fromhex("11 01 01 31")
    assert tags["raw"].dsfid == 0


def test_toml_scenario_is_parsed(tmp_path: Path) -> None:
    """The same structure works in TOML."""
    scenario = load_scenario(write(tmp_path, "demo.toml", TOML_SCENARIO))
    assert scenario.field == ["book"]
    assert scenario.steps[0].remove == ["book"]


def test_scenario_runs_its_steps_against_the_field(tmp_path: Path) -> None:
    """Played for real, the steps change the field and fault switches in order."""
    scenario = load_scenario(write(tmp_path, "demo.yaml", YAML_SCENARIO))
    field, faults = RFField(), Faults()
    runner = ScenarioRunner(scenario, field, faults)
    runner.start()
    try:
        assert runner.done.wait(5)
    finally:
        runner.stop()
    assert runner.steps_run == 4
    assert faults.collisions
    assert faults.collision_miss == 0.25
    assert len(field) == 0


def test_scenario_steps_seen_while_running(tmp_path: Path) -> None:
    """A tag placed by a later step appears in the field while the scenario runs."""
    text = """
tags:
  a: {uid: "E004010000000001"}
  b: {uid: "E004010000000002"}
field: [a]
steps:
  - {at: 0.05, place: [b]}
  - {at: 0.1, remove: [a]}
"""
    scenario = load_scenario(write(tmp_path, "s.yml", text))
    field = RFField()
    runner = ScenarioRunner(scenario, field, Faults())
    runner.start()
    try:
        uid_a, uid_b = bytes.fromhex("E004010000000001"), bytes.fromhex("E004010000000002")
        assert field.get(uid_a) is not None
        assert field.wait_for(lambda f: f.get(uid_b) is not None, timeout=5)
        assert field.wait_for(lambda f: f.get(uid_a) is None, timeout=5)
    finally:
        runner.stop()


def test_repeat_starts_over(tmp_path: Path) -> None:
    """With repeat the scenario restores its starting field and plays the steps again."""
    text = """
tags: {a: {uid: "E004010000000001"}}
field: [a]
steps: [{at: 0.0, remove: [a]}]
repeat: 0.01
"""
    runner = ScenarioRunner(load_scenario(write(tmp_path, "r.yaml", text)), RFField(), Faults())
    runner.start()
    try:
        assert runner.field.wait_for(lambda _f: runner.steps_run >= 3, timeout=5)
    finally:
        runner.stop()
    assert runner.done.is_set()


def test_unplug_step_unplugs_the_simulator(tmp_path: Path) -> None:
    """unplug/replug steps call the simulator; without one they are reported, not fatal."""
    text = "steps: [{at: 0.0, unplug: true}]\n"
    scenario = load_scenario(write(tmp_path, "u.yaml", text))
    field = RFField()
    with FeigSimulator(field) as sim:
        sim.start_tcp()
        runner = ScenarioRunner(scenario, field, sim.faults, unplug=sim.unplug, replug=sim.replug)
        runner.start()
        assert runner.done.wait(5)
        runner.stop()
        assert not sim.plugged
    lonely = ScenarioRunner(scenario, RFField(), Faults())
    with pytest.raises(ScenarioError, match="need a running simulator"):
        lonely.apply(scenario.steps[0])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("steps: [{at: 1, place: [nobody]}]", "steps.0.place.0: unknown tag 'nobody'"),
        ("field: [ghost]", "field.0: unknown tag 'ghost'"),
        ("steps: [{at: 1}]", "exactly one of place"),
        ("steps: [{at: 1, clear: true, remove: []}]", "found: remove, clear"),
        ("steps: [{at: -1, clear: true}]", "steps.0.at"),
        ("steps: [{at: 1, fault: {bogus: 1}}]", "steps.0.fault: unknown fault 'bogus'"),
        ("faults: {drop_byte: 3}", "faults: fault 'drop_byte' is a probability"),
        ("tags: {a: {uid: 'E004'}}", "tags.a.uid"),
        ("tags: {a: {}}", "item_id"),
        ("reader: {address: 300}", "reader.address"),
        ("reader: {speed: 1}", "reader.speed"),
        ("colour: red", "colour"),
        ("- just a list", "a scenario is a mapping"),
        ("steps: [{at: 5, clear: true}]\nrepeat: 1", "repeat"),
        ("tags: {a: {item_id: '1', locked_blocks: [500]}}\nfield: [a]", None),
    ],
)
def test_malformed_scenarios_are_named(tmp_path: Path, text: str, error: str | None) -> None:
    """Each malformed scenario raises ScenarioError (or SpecError) naming file and place."""
    path = write(tmp_path, "bad.yaml", text)
    if error is None:
        # Content that only fails when the tag is built: reported when the runner is made.
        scenario = load_scenario(path)
        with pytest.raises(ValueError, match="locked_blocks"):
            ScenarioRunner(scenario, RFField(), Faults())
        return
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert str(path) in str(raised.value)
    assert error in str(raised.value)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    """Missing files, unknown suffixes and syntax errors are ScenarioErrors naming the file."""
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ScenarioError, match=r"\.yaml, \.yml or \.toml"):
        load_scenario(write(tmp_path, "s.json", "{}"))
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(write(tmp_path, "s.yaml", "tags: [unclosed"))
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "s.toml", "tags = ["))
    with pytest.raises(ScenarioError, match="scenario: a scenario is a mapping"):
        parse_scenario(None)


def test_shipped_demo_scenario_is_valid() -> None:
    """The kiosk demo scenario shipped with the simulator loads and builds all its tags."""
    path = Path(__file__).resolve().parent.parent / "simulators/reader/scenarios/kiosk_demo.yaml"
    scenario = load_scenario(path)
    tags = scenario.build_tags()
    assert len(tags) == 5
    assert len({tag.uid for tag in tags.values()}) == 5
    assert tags["loaned"].afi == 0xC2
    assert scenario.repeat == 45.0
