"""A service generated with every option, and one with none, pass their own unit tests, ruff
and mypy in a scratch copy of the workspace (its own uv lock and virtual environment), and
their manifests pass the offline deploy checks the two services pass."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import copy_repository, uv_binary

PHASE = "phase-3-backend-services"
FULL = [
    "--name", "quiz-tracker", "--actor", "QuizActor", "--subscribe", "lesson-generated",
    "--publish", "quiz-scored", "--llm",
]  # fmt: skip
BARE = ["--name", "notes"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root: Path = copy_repository(tmp_path_factory.mktemp("scaffolded"))
    uv = uv_binary()
    generator = root / ".claude/skills/fastapi-dapr-agent/scripts/generate.py"
    for options in (FULL, BARE):
        _run(root, uv, "run", "--frozen", "python", str(generator), *options)
    subprocess.run(["git", "add", "--all"], cwd=root, check=True)
    return root


def _run(root: Path, uv: str, *argv: str) -> str:
    environment = {**os.environ, "UV": uv, "UV_PYTHON_DOWNLOADS": "never"}
    environment.pop("VIRTUAL_ENV", None)  # the scratch workspace's own .venv, not ours
    done = subprocess.run(
        [uv, *argv], cwd=root, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"uv {' '.join(argv)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_generated_services_pass_their_tests_ruff_and_mypy(workspace: Path) -> None:
    uv = uv_binary()
    folders = [f"{PHASE}/quiz-tracker", f"{PHASE}/notes"]

    tested = _run(workspace, uv, "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider",
                  *(f"{folder}/tests" for folder in folders))  # fmt: skip
    _run(workspace, uv, "run", "--frozen", "ruff", "check", *folders)
    _run(workspace, uv, "run", "--frozen", "ruff", "format", "--check", *folders)
    _run(workspace, uv, "run", "--frozen", "mypy", *(f"{folder}/src" for folder in folders))
    for folder in folders:  # one tests folder at a time, as `make lint` does
        _run(workspace, uv, "run", "--frozen", "mypy", f"{folder}/tests")

    assert re.search(r"\b(1[4-9]|[2-9]\d) passed", tested), tested
    assert " failed" not in tested


def test_the_lockfile_knows_the_new_members(workspace: Path) -> None:
    lock = (workspace / "uv.lock").read_text()

    assert 'name = "quiz-tracker"' in lock
    assert 'name = "notes"' in lock


def test_generated_manifests_pass_the_offline_deploy_checks(workspace: Path) -> None:
    checked = _run(
        workspace, uv_binary(), "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider",
        f"{PHASE}/deploy/tests", "--deselect", f"{PHASE}/deploy/tests/test_container_build.py",
    )  # fmt: skip

    assert " passed" in checked
