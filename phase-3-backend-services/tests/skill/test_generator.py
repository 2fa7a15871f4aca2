"""The generator's own behaviour: names, options, refusal to overwrite, dry run, registration."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import REPO_ROOT, copy_repository

PHASE = "phase-3-backend-services"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--name", "Quiz"], "--name 'Quiz': use lower-case words joined by '-'"),
        (["--name", "quiz_tracker"], "--name 'quiz_tracker'"),
        (["--name=-quiz"], "--name '-quiz'"),
        (["--name", "q" * 41], "at most 40 characters"),
        (["--name", "stack"], "--name 'stack' is taken"),
        (["--name", "quiz", "--actor", "Quiz"], "--actor 'Quiz': a PascalCase class name"),
        (["--name", "quiz", "--subscribe", "Lesson_Generated"], "--subscribe 'Lesson_Generated'"),
        (["--name", "quiz", "--publish", "a..b"], "--publish 'a..b'"),
    ],
)
def test_bad_options_are_refused_with_what_is_wrong(
    generate: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    complaint: str,
) -> None:
    code = generate.main([*argv, "--root", str(tmp_path)])

    assert code == 2
    assert complaint in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_dry_run_lists_every_file_and_writes_nothing(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--name", "quiz-tracker", "--actor", "QuizActor", "--subscribe", "lesson-generated"]

    code = generate.main(
        [*argv, "--publish", "quiz-scored", "--llm", "--dry-run", "--root", str(tmp_path)]
    )

    listed = re.findall(
        r"^would write (\S+)  \[(scaffold|starter)\]$", capsys.readouterr().out, re.M
    )
    assert code == 0
    assert list(tmp_path.iterdir()) == []
    assert {path for path, _ in listed} >= {
        f"{PHASE}/quiz-tracker/src/quiz_tracker/main.py",
        f"{PHASE}/quiz-tracker/src/quiz_tracker/counters.py",
        f"{PHASE}/quiz-tracker/src/quiz_tracker/deliveries.py",
        f"{PHASE}/quiz-tracker/src/quiz_tracker/explainer.py",
        f"{PHASE}/quiz-tracker/Dockerfile",
        f"{PHASE}/deploy/base/apps/quiz-tracker.yaml",
        f"{PHASE}/components/subscription-quiz-tracker-lesson-generated.yaml",
        f"{PHASE}/prompts/quiz-tracker/explain.j2",
    }


def test_each_option_adds_only_its_own_parts(scaffold: ModuleType) -> None:
    bare = {str(f.path.name): f.content for f in scaffold.plan(scaffold.Options("notes"))}
    full = scaffold.plan(
        scaffold.Options("notes", "NoteActor", "lesson-generated", "note-saved", llm=True)
    )
    by_name = {f.path.name: f.content for f in full}

    assert not {"counters.py", "deliveries.py", "explainer.py"} & set(bare)
    assert "Outbox" not in bare["wiring.py"]
    assert "Outbox" in by_name["wiring.py"]
    assert "learnflow.dev/actor-types: NoteActor" in by_name["notes.yaml"]
    assert "NOTES_LLM_API_KEY" in by_name["notes.yaml"]
    assert "NOTES_LLM_API_KEY" not in bare["notes.yaml"]
    assert '"openai==' in by_name["pyproject.toml"]
    assert '"openai==' not in bare["pyproject.toml"]


def test_existing_files_are_never_overwritten_without_force(
    generate: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_repository(tmp_path)
    kept = root / PHASE / "course-agent" / "Dockerfile"
    before = kept.read_text()

    code = generate.main(["--name", "course-agent", "--root", str(root), "--no-lock"])

    assert code == 1
    assert f"{PHASE}/course-agent/Dockerfile" in capsys.readouterr().err
    assert kept.read_text() == before
    assert not (root / PHASE / "course-agent" / "src" / "course_agent" / "records.py").exists()


def test_registration_is_complete_and_happens_once(generate: ModuleType, tmp_path: Path) -> None:
    root = copy_repository(tmp_path)
    argv = ["--name", "quiz-tracker", "--actor", "QuizActor", "--subscribe", "lesson-generated"]
    argv += ["--root", str(root), "--no-lock"]

    assert generate.main(argv) == 0
    assert generate.main([*argv, "--force"]) == 0

    workspace = tomllib.loads((root / "pyproject.toml").read_text())
    assert workspace["tool"]["uv"]["workspace"]["members"].count(f"{PHASE}/quiz-tracker") == 1
    assert workspace["project"]["dependencies"].count("quiz-tracker") == 1
    assert workspace["tool"]["uv"]["sources"]["quiz-tracker"] == {"workspace": True}
    assert workspace["tool"]["mypy"]["mypy_path"].count(f"{PHASE}/quiz-tracker/src") == 1
    kustomization = (root / PHASE / "deploy/base/kustomization.yaml").read_text()
    assert kustomization.count("  - apps/quiz-tracker.yaml\n") == 1
    assert kustomization.count("  - name: quiz-tracker-settings\n") == 1
    for component in ("statestore.yaml", "pubsub.yaml"):
        assert (root / PHASE / "components" / component).read_text().count(
            "  - quiz-tracker\n"
        ) == 1
    assert (root / ".dockerignore").read_text().count(f"!{PHASE}/quiz-tracker/\n") == 1
    services = (root / PHASE / "stack/src/learnflow_stack/services.py").read_text()
    assert services.count('("quiz-tracker", "quiz_tracker.main:create_app")') == 1


def test_the_pins_are_the_locked_versions(scaffold: ModuleType) -> None:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}

    for requirement, version in scaffold.PINS.items():
        assert locked[requirement.split("[")[0]] == version, requirement


def test_scaffold_only_rewrites_the_skills_files_and_leaves_the_services_own(
    generate: ModuleType, tmp_path: Path
) -> None:
    root = copy_repository(tmp_path)
    service = root / PHASE / "user-progress"
    (service / "Dockerfile").write_text("hand-edited\n")
    wiring_before = (service / "src/user_progress/wiring.py").read_text()
    argv = ["--name", "user-progress", "--actor", "LearnerProgressActor"]
    argv += ["--subscribe", "lesson-generated", "--publish", "progress-updated"]

    assert generate.main([*argv, "--scaffold-only", "--root", str(root)]) == 0

    assert (service / "Dockerfile").read_text() == (
        REPO_ROOT / PHASE / "user-progress/Dockerfile"
    ).read_text()
    assert (service / "src/user_progress/wiring.py").read_text() == wiring_before
    assert not (service / "src/user_progress/records.py").exists()
