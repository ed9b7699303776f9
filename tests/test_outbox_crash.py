"""Crash safety: a writer process killed with SIGKILL loses nothing it reported as committed.

A child process appends from three threads and prints each event's (device, seq) only
after append() returned, i.e. after its commit. The parent reads those lines from the pipe,
kills the child with SIGKILL after a random number of them, reopens the store and checks:
every reported event is there, each device's seqs run from 1 without gap or duplicate,
event ids are unique, and appending goes on from the next seq. It does so several times on
the same file, so each round also starts from a store that was killed mid-write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from edge_agent.outbox import SqliteOutbox

CHILD = """
import sys, threading
from edge_agent.outbox import SqliteOutbox

outbox = SqliteOutbox(sys.argv[1])
say = threading.Lock()

def work(index):
    device = "crash-a" if index % 2 else "crash-b"
    while True:
        event = outbox.append(device, "loan", '{"from": "child"}')
        with say:
            sys.stdout.write(f"{event.device_id} {event.seq}\\n")
            sys.stdout.flush()

for index in range(3):
    threading.Thread(target=work, args=(index,), daemon=True).start()
threading.Event().wait()
"""

ROUNDS = 4


def run_and_kill(path: Path, lines_before_kill: int) -> set[tuple[str, int]]:
    """Start the child, kill it after that many reports; return everything it reported."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reported: set[tuple[str, int]] = set()
    assert child.stdout is not None
    assert child.stderr is not None
    try:
        while len(reported) < lines_before_kill:
            line = child.stdout.readline()  # blocks until the child reports a commit
            assert line, f"the child ended early: {child.stderr.read()}"
            device, seq = line.split()
            reported.add((device, int(seq)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        # Lines already in the pipe were printed after their commits too.
        for line in child.stdout:
            if line.endswith("\n"):
                device, seq = line.split()
                reported.add((device, int(seq)))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return reported


def test_sigkill_never_loses_a_reported_commit(tmp_path: Path) -> None:
    """After each SIGKILL every reported event is stored and seqs are gapless and unique."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    path = tmp_path / "outbox.sqlite"
    all_reported: set[tuple[str, int]] = set()
    for round_ in range(ROUNDS):
        reported = run_and_kill(path, rng.randint(5, 400))
        assert not reported & all_reported, f"seed {seed}: a seq was handed out twice"
        all_reported |= reported
        with SqliteOutbox(path) as outbox:
            stored = outbox.due(None, 1_000_000, resend_after=0)
            keys = [(e.device_id, e.seq) for e in stored]
            assert len(keys) == len(set(keys)), f"seed {seed} round {round_}: duplicates"
            assert len({e.event_id for e in stored}) == len(stored)
            missing = all_reported - set(keys)
            assert not missing, f"seed {seed} round {round_}: lost {sorted(missing)[:5]}"
            for device in ("crash-a", "crash-b"):
                seqs = sorted(seq for d, seq in keys if d == device)
                assert seqs == list(range(1, len(seqs) + 1)), f"seed {seed}: gap in {device}"
            last = outbox.stats().last_seq
            after = outbox.append("crash-a", "loan", '{"from": "parent"}')
            assert after.seq == last["crash-a"] + 1
            all_reported.add(("crash-a", after.seq))
