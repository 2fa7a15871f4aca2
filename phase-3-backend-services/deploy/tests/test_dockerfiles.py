"""The service Dockerfiles: hadolint clean, and built the way the issue asks (multi-stage,
locked dependencies, pinned slim base, non-root, the same CMD the local stack runs) with a
build context that lets in only what the images copy."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import SERVICES

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
REPO_ROOT = PHASE_DIR.parent
Stages = list[list[tuple[str, str]]]


def arguments(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for instruction, args in stage if instruction == keyword]


def context_copies(stages: Stages) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from a stage)."""
    copies = []
    for stage in stages:
        for args in arguments(stage, "COPY"):
            words = args.split()
            if not any(word.startswith("--from=") for word in words):
                paths = [word for word in words if not word.startswith("--")]
                copies.append((paths[:-1], paths[-1]))
    return copies


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes(service: str, project_tool: Callable[[str], Path]) -> None:
    result = subprocess.run(
        [project_tool("hadolint"), "--no-color", PHASE_DIR / service / "Dockerfile"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_images_start_from_the_same_pinned_slim_python(
    dockerfiles: dict[str, Stages],
) -> None:
    defaults = set()
    for stages in dockerfiles.values():
        (global_arg,) = arguments(stages[0], "ARG")
        name, _, default = global_arg.partition("=")
        assert name == "PYTHON_IMAGE"
        defaults.add(default)
        assert all(stage[0][1].split()[0] == "${PYTHON_IMAGE}" for stage in stages[1:])
    (default,) = defaults
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", default), default


@pytest.mark.parametrize("service", SERVICES)
def test_builder_installs_the_locked_service_with_the_pinned_uv(
    service: str, dockerfiles: dict[str, Stages], pinned_versions: dict[str, str]
) -> None:
    stages = dockerfiles[service]
    assert len(stages) == 3, "a global ARG plus two stages: builder and runtime"
    builder, runtime = stages[1], stages[2]
    assert builder[0][1].endswith(" AS builder")
    assert f"UV_VERSION={pinned_versions['UV_VERSION']}" in arguments(builder, "ARG")
    assert arguments(builder, "RUN")[-1] == f"install-service {service} /opt/venv"
    copied = {source for sources, _ in context_copies([builder]) for source in sources}
    assert copied == {
        "pyproject.toml",
        "uv.lock",
        "phase-3-backend-services/contracts",
        "phase-3-backend-services/service-kit",
        f"phase-3-backend-services/{service}",
        "phase-3-backend-services/deploy/container/install-service.sh",
    }, "the image gets the service and its workspace libraries, never the dev-only stack"
    assert "--from=builder /opt/venv /opt/venv" in arguments(runtime, "COPY")


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_runs_the_app_factory_as_a_non_root_user(
    service: str, dockerfiles: dict[str, Stages]
) -> None:
    runtime = dockerfiles[service][-1]
    package = service.replace("-", "_")
    (user,) = arguments(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10000, "a fixed high UID, not root and clear of host system users"
    assert int(gid) > 0
    assert runtime[-1][0] == "CMD"
    assert json.loads(runtime[-1][1]) == [
        "uvicorn",
        f"{package}.main:create_app",
        "--factory",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert arguments(runtime, "EXPOSE") == ["8000"]
    keywords = [instruction for instruction, _ in runtime]
    assert "ADD" not in keywords
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in {"RUN", "COPY"})


def test_course_agent_image_carries_its_prompts_and_recordings(
    dockerfiles: dict[str, Stages],
) -> None:
    runtime = dockerfiles["course-agent"][-1]
    destinations = {sources[0]: destination for sources, destination in context_copies([runtime])}
    env = dict(pair.split("=", 1) for pair in " ".join(arguments(runtime, "ENV")).split())
    assert env["COURSE_AGENT_PROMPTS_DIR"] == destinations["phase-3-backend-services/prompts"]
    assert (
        env["COURSE_AGENT_RECORDINGS_DIR"]
        == destinations["phase-3-backend-services/evals/recordings"]
    )
    # Under a read-only root filesystem only /tmp (an emptyDir) is writable.
    assert env["TIKTOKEN_CACHE_DIR"].startswith("/tmp/")
    assert env["HOME"] == "/tmp"


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: ``*`` and ``?`` stay within one path segment,
    ``**`` spans segments, ``[...]`` is a character class."""
    regex, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif pattern[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif pattern[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            regex, i = regex + pattern[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(pattern[i]), i + 1
    return re.compile(regex)


def dockerignore_excludes(rules: list[str], path: str) -> bool:
    """Docker's decision for ``path``: the last rule matching the path or one of its parent
    directories wins; a ``!`` rule re-includes."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for rule in rules:
        pattern = dockerignore_regex(rule.removeprefix("!").rstrip("/"))
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            excluded = not rule.startswith("!")
    return excluded


def test_build_context_lets_in_exactly_what_the_images_copy(
    dockerfiles: dict[str, Stages],
) -> None:
    rules = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = {
        source
        for stages in dockerfiles.values()
        for sources, _ in context_copies(stages)
        for source in sources
    }
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    files += [".git/config", ".venv/bin/python", ".env", "phase-3-backend-services/.env.local"]
    wrong = []
    for path in files:
        under_copy = any(path == source or path.startswith(f"{source}/") for source in copied)
        build_noise = "/tests/" in path or "__pycache__" in path
        expected_excluded = not under_copy or build_noise
        if dockerignore_excludes(rules, path) != expected_excluded:
            wrong.append(f"{path}: should be {'excluded' if expected_excluded else 'included'}")
    assert not wrong, "\n".join(wrong)
