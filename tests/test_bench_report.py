"""The benchmark page: figures extracted from recorded reports, rendered, crashes reported.

No benchmark runs here: the reports are real ``--quick`` reports recorded in
``tests/data/bench/`` (so the dotted paths are checked against the real shapes) and small
literal dicts.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.report import FIGURES, NAMES, Run, Target

DATA = Path(__file__).parent / "data" / "bench"
WHEN = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return data


def page(runs: list[Run], *, quick: bool = False) -> str:
    machine = {"CPU": "Test CPU", "Cores": "2"}
    return report.render(
        runs,
        machine,
        quick=quick,
        started=WHEN,
        finished=WHEN + dt.timedelta(minutes=12),
        load_start="0.10 0.20 0.30",
        load_end="1.50 1.20 0.90",
    )


def table_line(text: str, label: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(f"| {label} |")]
    assert len(lines) == 1, (label, lines)
    return lines[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_is_found_in_a_real_report(name: str) -> None:
    """Each figure's paths exist in the recorded report: value, baseline, ratio and verdict."""
    rows = report.rows_for(name, recorded(name))
    assert len(rows) == len(FIGURES[name])
    for figure, row in zip(FIGURES[name], rows, strict=True):
        assert row.ours is not None, figure.ours
        if figure.baseline is not None:
            assert row.baseline is not None, figure.baseline
            assert row.ratio is not None, figure.label
        if figure.ratio is not None:
            assert row.ratio == report.number(recorded(name), figure.ratio)
        if figure.target is not None:
            assert row.met is not None, figure.label
        assert "—" not in row.label, row.label  # every {placeholder} was found


def test_every_benchmark_has_a_target_row() -> None:
    """The issue's targets all appear (gate: latency and the rate it holds at; kiosk: two setups)."""
    counts = {name: sum(f.target is not None for f in FIGURES[name]) for name in NAMES}
    assert counts == {"rfid": 3, "agent": 4, "gate": 4, "kiosk": 4}


def test_missing_key_shows_a_dash_and_keeps_the_row() -> None:
    """A report without one figure: its row is still there, with — and no verdict."""
    data = copy.deepcopy(recorded("rfid"))
    del data["decode"]["decode_28560_3"]["tags_per_s"]
    rows = report.rows_for("rfid", data)
    assert len(rows) == len(FIGURES["rfid"])
    row = rows[0]
    assert (row.ours, row.met) == (None, None)
    assert row.baseline is not None  # the rest of the row is still reported
    line = table_line(page([Run("rfid", 1.0, data)]), "ISO 28560-3 decode")
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[1] == "—"
    assert cells[5] == "—"


def test_ratio_is_ours_over_baseline_unless_the_benchmark_gives_one() -> None:
    """Without a ratio path the row divides; with one, the benchmark's own ratio is shown."""
    data = {"a": {"ours": 3.0, "raw": 1.5}, "judged": 0.5}
    computed = report.extract(report.Figure("x", "ms", "a.ours", "a.raw"), data)
    assert computed.ratio == pytest.approx(2.0)
    given = report.extract(report.Figure("x", "ms", "a.ours", "a.raw", ratio="judged"), data)
    assert given.ratio == 0.5
    # A ratio the benchmark should have given but did not is missing, not recomputed.
    absent = report.extract(report.Figure("x", "ms", "a.ours", "a.raw", ratio="gone"), data)
    assert absent.ratio is None


def test_targets_are_judged_on_ours_or_on_the_ratio() -> None:
    """A ratio target looks at the ratio, an absolute target at our figure; both directions."""
    data = {"ours": 900.0, "raw": 1000.0, "ratio": 0.9}
    ratio_ok = report.Figure(
        "x", "ev/s", "ours", "raw", ratio="ratio", target=Target("ratio", ">=", 0.8)
    )
    assert report.extract(ratio_ok, data).met is True
    too_slow = report.Figure("x", "ev/s", "ours", target=Target("ours", ">=", 1000))
    assert report.extract(too_slow, data).met is False
    small = report.Figure("x", "MB", "ours", target=Target("ours", "<=", 900))
    assert report.extract(small, data).met is True


def test_booleans_and_strings_are_not_figures() -> None:
    """A flag or a text at a figure's path is not taken for a number."""
    data = {"flag": True, "text": "12", "n": 12}
    assert report.number(data, "flag") is None
    assert report.number(data, "text") is None
    assert report.number(data, "n") == 12.0
    assert report.number(data, "n.deeper") is None
    assert report.number(None, "n") is None


def test_labels_name_values_from_the_report() -> None:
    """{dotted.path} in a label is the report's value; a missing one is —."""
    figure = report.Figure("Drain of a {drain.events}-event backlog", "events/s", "drain.x")
    assert report.extract(figure, {"drain": {"events": 100_000}}).label == (
        "Drain of a 100,000-event backlog"
    )
    assert report.extract(figure, {}).label == "Drain of a —-event backlog"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (123456, "123,456"),
        (1234.5, "1,234"),
        (0.24781, "0.2478"),
        (2.0, "2"),
        (75.25, "75.25"),
    ],
)
def test_numbers_are_formatted_for_reading(value: float | None, text: str) -> None:
    assert report.format_value(value) == text


def test_page_has_machine_rows_verdicts_and_raw_json() -> None:
    """The full page from the four recorded reports."""
    runs = [
        Run(name, 10.0 + i, recorded(name), load_at_start="0.5 0.4 0.3")
        for i, name in enumerate(NAMES)
    ]
    text = page(runs, quick=True)
    assert "| CPU | Test CPU |" in text
    assert "at start 0.10 0.20 0.30; at end 1.50 1.20 0.90" in text
    assert "| Date | 2026-11-21 10:00 – 10:12 UTC |" in text
    assert "**quick**" in text
    assert "rfid 10 s, agent 11 s, gate 12 s, kiosk 13 s" in text
    assert "Crashed: none." in text
    for name in NAMES:
        assert f"## {name}" in text
    line = table_line(text, "ISO 28560-3 decode")
    value = recorded("rfid")["decode"]["decode_28560_3"]["tags_per_s"]
    assert f"{value:,} tags/s" in line
    assert "≥ 100,000 tags/s" in line
    assert text.count("<details><summary>raw JSON report</summary>") == 4
    # The raw JSON in the page is the report, complete.
    start = text.index("```json\n", text.index("## kiosk")) + len("```json\n")
    assert json.loads(text[start : text.index("\n```", start)]) == recorded("kiosk")


def test_full_mode_is_not_called_quick() -> None:
    text = page([Run("rfid", 1.0, recorded("rfid"))], quick=False)
    assert "| Mode | full |" in text


def test_unmet_target_is_shown_and_counted() -> None:
    """A figure past its target says NO, and the summary counts it."""
    data = copy.deepcopy(recorded("gate"))
    data["rss"]["gate_peak_rss_mb"] = 75.0
    text = page([Run("gate", 1.0, data)])
    assert "**NO**" in table_line(text, "`libedge gate run` peak RSS under traffic")
    assert "1 not met" in text


def test_crashed_benchmark_is_reported_beside_the_others() -> None:
    """A crash: its section says so with the error tail, rows of —; the others are complete."""
    crash = Run(
        "gate",
        4.2,
        None,
        "exit status 1\nTraceback (most recent call last):\nRuntimeError: readers gone",
    )
    text = page([Run("rfid", 1.0, recorded("rfid")), crash])
    assert "Crashed: gate." in text
    gate = text[text.index("## gate") :]
    assert "This benchmark crashed" in gate
    assert "RuntimeError: readers gone" in gate
    assert "<details>" not in gate
    line = table_line(text, "Capacity, — tags on two antennas")
    assert line.count("—") >= 5
    assert "yes" in table_line(text, "ISO 28560-3 decode")
    assert "without a value" in text


def test_a_real_failing_process_is_a_crash() -> None:
    """A benchmark process that exits non-zero becomes a crashed run with its stderr tail."""
    run = report.run_benchmark("no-such-benchmark", quick=True, timeout=60)
    assert run.report is None
    assert run.error is not None
    assert run.error.startswith("exit status 2")
    assert "invalid choice" in run.error


def test_main_writes_the_page_and_fails_when_one_crashed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """All benchmarks are attempted, the page is written, and the exit status is 1."""
    attempted: list[str] = []

    def fake_run(name: str, *, quick: bool, timeout: float) -> Run:
        attempted.append(name)
        if name == "agent":
            return Run(name, 2.0, None, "exit status 1\nOSError: disk full")
        return Run(name, 1.0, recorded(name))

    monkeypatch.setattr(report, "run_benchmark", fake_run)
    out = tmp_path / "docs" / "benchmarks.md"
    assert report.main(["--quick", "--out", str(out)]) == 1
    assert attempted == list(NAMES)
    text = out.read_text(encoding="utf-8")
    assert "Crashed: agent." in text
    assert "OSError: disk full" in text
    assert "## kiosk" in text


def test_main_only_runs_the_named_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    attempted: list[str] = []

    def fake_run(name: str, *, quick: bool, timeout: float) -> Run:
        attempted.append(name)
        return Run(name, 1.0, recorded(name))

    monkeypatch.setattr(report, "run_benchmark", fake_run)
    out = tmp_path / "page.md"
    assert report.main(["--only", "kiosk", "rfid", "--out", str(out)]) == 0
    assert attempted == ["rfid", "kiosk"]
    assert "## agent" not in out.read_text(encoding="utf-8")


def test_report_command_is_reachable_from_the_module_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m benchmarks report ...`` goes to the report, not to a benchmark."""
    from benchmarks import __main__ as entry

    seen: list[list[str]] = []
    monkeypatch.setattr(entry.report_page, "main", lambda argv: seen.append(list(argv)) or 0)
    monkeypatch.setattr(sys, "argv", ["benchmarks", "report", "--quick"])
    assert entry.main() == 0
    assert seen == [["--quick"]]
