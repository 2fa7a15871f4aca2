"""The gate in the test command: every case replayed, graded and held to thresholds.yaml."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from learnflow_evals.cases import CASES_FILE, FailureMode, load_cases
from learnflow_evals.evaluation import evaluate
from learnflow_evals.rendering import Renderer
from learnflow_evals.report import summarise
from learnflow_evals.thresholds import THRESHOLDS_FILE, Thresholds, load_thresholds
from learnflow_evals.transcripts import load_transcripts
from pydantic import ValidationError


def _evals(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "learnflow_evals.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_evals_pass_the_gate_and_write_their_reports(tmp_path: Path) -> None:
    result = _evals("run", "--report-dir", str(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    cases = len(yaml.safe_load(CASES_FILE.read_text())["cases"])
    assert cases >= 40
    assert f"gate: PASS ({cases} cases" in result.stdout
    assert "provenance: authored" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True
    assert report["cases"] == cases
    assert sum(report["provenance"].values()) == cases
    assert "| grader | passed | rate | minimum |" in (tmp_path / "report.md").read_text()


def test_transcripts_and_replay_recordings_are_current() -> None:
    result = _evals("author", "--check")

    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_threshold_above_what_the_answers_reach_fails_the_gate() -> None:
    strict = load_thresholds().model_copy(
        update={"min_pass_rate": {"default": 1.0, "outcome": 1.0}}
    )
    cases = [c for c in load_cases() if c.id in {"fractions-beginner", "fm-fenced-json"}]
    # The fenced answer repaired: expected "repaired", so pretend the case wanted a clean lesson.
    fenced = cases[1].model_copy(update={"expect": cases[0].expect})

    results = await evaluate([cases[0], fenced], load_transcripts(), Renderer.create(), strict)
    summary = summarise(results, strict)

    assert not summary.passed
    assert [(r.name, r.passed, r.applicable) for r in summary.rates if not r.ok] == [
        ("outcome", 1, 2)
    ]


def test_the_thresholds_file_is_complete() -> None:
    thresholds = load_thresholds(THRESHOLDS_FILE)

    assert thresholds.min_rate("schema_valid") == 1.0
    assert thresholds.min_rate("level_fit") == 0.95
    with pytest.raises(ValidationError, match="default"):
        Thresholds.model_validate({"min_pass_rate": {}, "level_bands": {}})


def test_the_cases_cover_what_the_evals_must() -> None:
    cases = load_cases()
    locales = {c.request.locale.split("-")[0] for c in cases} - {"en"}
    subjects = {c.subject for c in cases}

    assert len(cases) >= 40
    assert len(locales) >= 3
    assert {"maths", "science", "programming", "languages", "history"} <= subjects
    assert {c.failure_mode for c in cases if c.failure_mode} == set(FailureMode)
    renderer = Renderer.create()
    with_history = [c for c in cases if c.progress is not None]
    assert len(with_history) >= 6
    assert sum(bool(renderer.render(c).trimmed) for c in with_history) >= 2
    assert sum(c.expect.must_refuse for c in cases) >= 3
    assert sum(bool(c.expect.about) for c in cases) >= 4
