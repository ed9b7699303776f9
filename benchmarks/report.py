"""``python -m benchmarks report``: run every benchmark and write ``docs/benchmarks.md``.

Each benchmark runs in a process of its own (``python -m benchmarks NAME``), so one's memory
and threads cannot pollute another's RSS or timings; its JSON report is parsed and the
figures named in :data:`FIGURES` become table rows: figure | ours | raw baseline | ratio |
target | met. The page also describes the machine (CPU, cores, memory, OS, Python, load
average at start and end) and keeps every raw JSON report, collapsed, so each row can be
traced to the numbers it came from.

A benchmark that crashes (non-zero exit, no JSON, timeout) is reported as such with the
tail of its error output; the others still run and the page is still written, and the
command then exits 1. Unmet targets do not change the exit status: this is a report, not a
gate.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

from benchmarks.figures import FIGURES, Figure, Target

NAMES = ("rfid", "agent", "gate", "kiosk")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
DASH = "—"
ERROR_TAIL_CHARS = 3000


# ---------------------------------------------------------------- extraction


def lookup(report: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted path in a report, or None if any step is missing."""
    node: Any = report
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def number(report: Mapping[str, Any] | None, path: str | None) -> float | None:
    """The number at a dotted path; None when absent or not a number (bools are not)."""
    if path is None:
        return None
    value = lookup(report, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Row:
    """One figure as extracted from a report; None marks a value the report lacks."""

    label: str
    unit: str
    ours: float | None
    baseline: float | None
    ratio: float | None
    target: Target | None
    met: bool | None
    baseline_is: str


def extract(figure: Figure, report: Mapping[str, Any] | None) -> Row:
    """A figure's row from a report (None for a crashed benchmark: every value missing)."""
    ours = number(report, figure.ours)
    baseline = number(report, figure.baseline)
    ratio = number(report, figure.ratio)
    if ratio is None and figure.ratio is None and ours is not None and baseline:
        ratio = ours / baseline
    met: bool | None = None
    if figure.target is not None:
        judged = ours if figure.target.on == "ours" else ratio
        if judged is not None:
            if figure.target.op == ">=":
                met = judged >= figure.target.value
            else:
                met = judged <= figure.target.value
    label = re.sub(
        r"\{([\w.]+)\}", lambda m: format_value(number(report, m.group(1))), figure.label
    )
    return Row(label, figure.unit, ours, baseline, ratio, figure.target, met, figure.baseline_is)


def rows_for(name: str, report: Mapping[str, Any] | None) -> list[Row]:
    """Every row of one benchmark's table."""
    return [extract(figure, report) for figure in FIGURES.get(name, ())]


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class Run:
    """One benchmark's run: its report, or the error that stopped it."""

    name: str
    seconds: float
    report: dict[str, Any] | None
    error: str | None = None
    load_at_start: str = ""


def _tail(text: str) -> str:
    return text[-ERROR_TAIL_CHARS:].strip()


def run_benchmark(name: str, *, quick: bool, timeout: float) -> Run:
    """Run ``python -m benchmarks NAME`` in a fresh process (own session) and parse its JSON."""
    command = [sys.executable, "-m", "benchmarks", name, *(["--quick"] if quick else [])]
    load, started = loadavg(), time.perf_counter()
    # A session of its own, so that a timeout kills the brokers and simulators it started too.
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        timed_out = True
    seconds = time.perf_counter() - started
    if timed_out or proc.returncode != 0:
        why = f"timed out after {timeout:.0f} s" if timed_out else f"exit status {proc.returncode}"
        return Run(name, seconds, None, f"{why}\n{_tail(stderr)}", load)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError as exc:
        return Run(name, seconds, None, f"output is not JSON ({exc})\n{_tail(stdout)}", load)
    if not isinstance(report, dict):
        return Run(name, seconds, None, f"output is not a JSON object\n{_tail(stdout)}", load)
    return Run(name, seconds, report, None, load)


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return DASH


def _proc_field(path: str, name: str) -> str | None:
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _os_name() -> str:
    with contextlib.suppress(OSError):
        return platform.freedesktop_os_release().get("PRETTY_NAME", platform.system())
    return platform.system()


def _commit() -> str:
    """The checked-out commit, and whether the tree differs from it (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=PIPE, text=True, check=True
        ).stdout.strip()
        clean = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT, check=False)
    except (OSError, subprocess.CalledProcessError):
        return DASH
    return head if clean.returncode == 0 else f"{head} with uncommitted changes"


def machine_info() -> dict[str, str]:
    """What the page says about the machine, read before the benchmarks run."""
    memory = _proc_field("/proc/meminfo", "MemTotal")
    memory_text = DASH
    if memory and memory.split()[0].isdigit():
        memory_text = f"{int(memory.split()[0]) / 1024**2:.1f} GiB"
    return {
        "CPU": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or DASH,
        "Cores": str(os.cpu_count() or DASH),
        "Memory": memory_text,
        "OS": f"{_os_name()}, {platform.system()} {platform.release()} ({platform.machine()})",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "Commit": _commit(),
    }


# ---------------------------------------------------------------- rendering


def format_value(value: float | None) -> str:
    """A number for the table: thousands separated when large, four significant digits."""
    if value is None:
        return DASH
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _with_unit(value: float | None, unit: str) -> str:
    return DASH if value is None else f"{format_value(value)} {unit}"


def _target_text(row: Row) -> str:
    if row.target is None:
        return "context"
    sign = "≥" if row.target.op == ">=" else "≤"
    if row.target.on == "ratio":
        return f"ratio {sign} {format_value(row.target.value)}"
    return f"{sign} {format_value(row.target.value)} {row.unit}"


def _met_text(row: Row) -> str:
    if row.target is None:
        return "n/a"
    if row.met is None:
        return DASH
    return "yes" if row.met else "**NO**"


def render_table(rows: Sequence[Row]) -> list[str]:
    """The Markdown table of one benchmark's rows."""
    lines = [
        "| figure | ours | raw baseline | ratio | target | met? |",
        "|---|---:|---:|---:|---|:---:|",
    ]
    for row in rows:
        ratio = DASH if row.ratio is None else f"{row.ratio:.3g}"
        cells = [
            row.label,
            _with_unit(row.ours, row.unit),
            _with_unit(row.baseline, row.unit),
            ratio,
            _target_text(row),
            _met_text(row),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def _section(run: Run) -> list[str]:
    rows = rows_for(run.name, run.report)
    state = "crashed" if run.report is None else "ran"
    lines = [
        f"## {run.name}",
        "",
        f"{state} in {run.seconds:.1f} s (wall, own process; load average at its start:"
        f" {run.load_at_start}).",
        "",
    ]
    if run.error is not None:
        lines += ["**This benchmark crashed**; its figures are missing. Error tail:", ""]
        lines += ["````text", run.error, "````", ""]
    lines += [*render_table(rows), ""]
    baselines = list(dict.fromkeys(row.baseline_is for row in rows if row.baseline_is))
    if baselines:
        lines += ["Raw baselines, each measured in the same run:", ""]
        lines += [f"- {baseline}" for baseline in baselines] + [""]
    if run.report is not None:
        lines += [
            "<details><summary>raw JSON report</summary>",
            "",
            "```json",
            json.dumps(run.report, indent=2, ensure_ascii=False),
            "```",
            "",
            "</details>",
            "",
        ]
    return lines


def render(
    runs: Sequence[Run],
    machine: Mapping[str, str],
    *,
    quick: bool,
    started: dt.datetime,
    finished: dt.datetime,
    load_start: str,
    load_end: str,
) -> str:
    """The whole page."""
    all_rows = [row for run in runs for row in rows_for(run.name, run.report)]
    judged = [row for row in all_rows if row.target is not None]
    met = sum(1 for row in judged if row.met is True)
    missed = sum(1 for row in judged if row.met is False)
    unknown = len(judged) - met - missed
    crashed = [run.name for run in runs if run.report is None]
    mode = (
        "**quick** (smaller runs, a smoke check: the figures are indicative only)"
        if quick
        else "full"
    )
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks report`); do not edit by hand. Each"
        " benchmark ran in a process of its own, and each figure beside a raw baseline measured"
        " in the same run on the same machine. *ratio* is ours / baseline (or the benchmark's"
        " own median of per-round ratios where it reports one: that is what its target judges)."
        " *context* rows have no target. A missing value is shown as —.",
        "",
        f"**Targets: {met} met, {missed} not met, {unknown} without a value"
        f" (of {len(judged)}). Crashed: {', '.join(crashed) if crashed else 'none'}.**",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    wall = ", ".join(f"{run.name} {run.seconds:.0f} s" for run in runs)
    lines += [
        f"| Date | {started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC |",
        f"| Mode | {mode} |",
        f"| Load average (1/5/15 min) | at start {load_start}; at end {load_end} |",
        f"| Wall time | {wall} |",
        "",
    ]
    for run in runs:
        lines += _section(run)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------- command


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, write the page; exit 1 if any benchmark crashed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks report")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help="the page to write ('-' for stdout)"
    )
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help="run only these")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a benchmark counts as hung"
    )
    args = parser.parse_args(argv)
    names = [name for name in NAMES if name in (args.only or NAMES)]
    machine = machine_info()
    started, load_start = dt.datetime.now(dt.UTC), loadavg()
    runs: list[Run] = []
    for name in names:
        print(f"bench: {name} ({'quick' if args.quick else 'full'}) ...", file=sys.stderr)
        run = run_benchmark(name, quick=args.quick, timeout=args.timeout)
        outcome = "CRASHED" if run.report is None else "done"
        print(f"bench: {name} {outcome} in {run.seconds:.1f} s", file=sys.stderr, flush=True)
        runs.append(run)
    page = render(
        runs,
        machine,
        quick=args.quick,
        started=started,
        finished=dt.datetime.now(dt.UTC),
        load_start=load_start,
        load_end=loadavg(),
    )
    if args.out == "-":
        sys.stdout.write(page)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        print(f"bench: wrote {out}", file=sys.stderr)
    return 1 if any(run.report is None for run in runs) else 0
