"""Old run directories are pruned; the most recently active ones stay."""

from __future__ import annotations

import os
from pathlib import Path

from learnflow_stack.stack import prune_old_runs


def _run(root: Path, name: str, written_at: float) -> Path:
    log = root / name / "logs" / "daprd.log"
    log.parent.mkdir(parents=True)
    log.write_text("x")
    os.utime(log, (written_at, written_at))
    return log.parents[1]


def test_only_the_most_recently_written_runs_are_kept(tmp_path: Path) -> None:
    # Named so that creation order and activity order disagree: a long-running stack stays.
    long_running = _run(tmp_path, "a-started-first", written_at=5_000)
    old = [_run(tmp_path, f"b-{n}", written_at=1_000 + n) for n in range(3)]
    unrelated = tmp_path / "not-a-run"
    unrelated.mkdir()

    prune_old_runs(tmp_path, keep=2)

    assert long_running.exists()
    assert [run.exists() for run in old] == [False, False, True]
    assert unrelated.exists()
