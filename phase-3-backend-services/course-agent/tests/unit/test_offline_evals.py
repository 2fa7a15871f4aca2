"""CI runs the offline evals (evals/run_evals.py) and checks their recordings are current."""

import subprocess
import sys
from pathlib import Path

import yaml

EVALS_DIR = Path(__file__).resolve().parents[3] / "evals"


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EVALS_DIR / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_recordings_match_the_cases_and_authored_lessons() -> None:
    result = _run("author_recordings.py", "--check")

    assert result.returncode == 0, result.stdout + result.stderr


def test_offline_evals_pass() -> None:
    result = _run("run_evals.py")

    assert result.returncode == 0, result.stdout + result.stderr
    cases = len(yaml.safe_load((EVALS_DIR / "cases.yaml").read_text())["cases"])
    assert f"{cases} of {cases} eval cases passed" in result.stdout
    assert "FAIL" not in result.stdout
