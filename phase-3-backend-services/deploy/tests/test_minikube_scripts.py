"""minikube-up.sh / minikube-down.sh fail clearly without their tools or with versions too old,
the content tag of the images follows their content, and the checks the deploy steps run
(placement registration from both sides, smoke test) pass and fail when they should.
The in-cluster checks are exercised against a scripted stand-in for the sidecar's HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DEPLOY_DIR = Path(__file__).resolve().parents[1]
# An answer: (status, JSON body) for a request (method, path with query, JSON body or None).
Responder = Callable[[str, str, Any], tuple[int, Any]]


@pytest.mark.parametrize(
    "script",
    ["minikube-up.sh", "minikube-down.sh", "lib/deploy-steps.sh", "container/image-tag.sh"],
)
def test_scripts_are_valid_bash(script: str) -> None:
    subprocess.run(["bash", "-n", DEPLOY_DIR / script], check=True)


@pytest.fixture
def path_without_cluster_tools(tmp_path: Path) -> str:
    """A PATH with what the scripts need before their preflight, and no minikube/kubectl/helm."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "rm", "basename"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_minikube_up_stops_at_preflight_naming_the_missing_tools(
    path_without_cluster_tools: str,
) -> None:
    result = subprocess.run(
        ["bash", DEPLOY_DIR / "minikube-up.sh"],
        capture_output=True,
        text=True,
        env={"PATH": path_without_cluster_tools, "HOME": os.environ.get("HOME", "/tmp")},
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert "missing on PATH: minikube kubectl helm docker git" in result.stderr
    assert "FAIL  preflight" in result.stdout
    assert "PASS" not in result.stdout
    assert result.stdout.count("==== LearnFlow on Minikube") == 1


GOOD_VERSIONS = {"minikube": "v1.37.0", "kubectl": "v1.33.2", "helm": "v3.19.0"}


def fake_tools(bin_dir: Path, versions: dict[str, str]) -> None:
    """minikube, kubectl and helm that only tell their versions, as the real ones print them;
    docker that does nothing; git that fails (so the run stops right after preflight)."""
    answers = {
        "minikube": f'[[ "$*" == "version --short" ]] && echo {versions["minikube"]}',
        "kubectl": f'echo "Client Version: {versions["kubectl"]}"; echo "Kustomize Version: v5"',
        "helm": f"echo {versions['helm']}",
        "docker": "true",
        "git": "echo 'fatal: not a git repository' >&2; exit 128",
    }
    for tool, answer in answers.items():
        (bin_dir / tool).write_text(f"#!/bin/bash\n{answer}\n")
        (bin_dir / tool).chmod(0o755)
    for tool in ("grep", "head", "cut", "sort", "cat", "sed"):
        found = shutil.which(tool)
        assert found, tool
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)


def run_minikube_up(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", DEPLOY_DIR / "minikube-up.sh"],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp")},
        check=False,
        timeout=30,
    )


def test_minikube_up_preflight_accepts_supported_versions(path_without_cluster_tools: str) -> None:
    fake_tools(Path(path_without_cluster_tools), GOOD_VERSIONS)
    result = run_minikube_up(path_without_cluster_tools)
    assert "PASS  preflight" in result.stdout, result.stderr
    assert "minikube 1.37.0, kubectl 1.33.2, helm 3.19.0" in result.stderr
    # Stopped at the next step by the fake git, before anything touched a cluster.
    assert "FAIL  service image tags" in result.stdout
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("tool", "version", "problem"),
    [
        ("minikube", "v1.36.0", "minikube 1.36.0 is older than 1.37.0"),
        (
            "kubectl",
            "v1.32.4",
            "kubectl 1.32.4 is not within one minor version of Kubernetes v1.34.0",
        ),
        (
            "kubectl",
            "v1.36.0",
            "kubectl 1.36.0 is not within one minor version of Kubernetes v1.34.0",
        ),
        ("helm", "v3.12.3", "helm 3.12.3 is not Helm 3 at or above 3.13.0"),
        ("helm", "v4.0.1", "helm 4.0.1 is not Helm 3 at or above 3.13.0"),
    ],
)
def test_minikube_up_preflight_names_a_version_it_cannot_use(
    tool: str, version: str, problem: str, path_without_cluster_tools: str
) -> None:
    fake_tools(Path(path_without_cluster_tools), {**GOOD_VERSIONS, tool: version})
    result = run_minikube_up(path_without_cluster_tools)
    assert result.returncode == 1
    assert problem in result.stderr
    assert "FAIL  preflight" in result.stdout
    assert "PASS" not in result.stdout


def test_minikube_down_refuses_without_its_tools(path_without_cluster_tools: str) -> None:
    result = subprocess.run(
        ["bash", DEPLOY_DIR / "minikube-down.sh"],
        capture_output=True,
        text=True,
        env={"PATH": path_without_cluster_tools},
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert "minikube is not on PATH" in result.stderr


def run_script(name: str, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs a check the way minikube-up.sh does: the file piped into `python -`."""
    return subprocess.run(
        [sys.executable, "-", *args],
        input=(DEPLOY_DIR / "scripts" / name).read_text(),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "DAPR_HTTP_PORT": str(port), **env},
    )


def metadata(placement: str, types: list[str], host_ready: bool = True) -> dict[str, Any]:
    return {
        "id": "course-agent",
        "actorRuntime": {
            "runtimeStatus": "RUNNING",
            "hostReady": host_ready,
            "placement": placement,
            "activeActors": [{"type": t, "count": 0} for t in types],
        },
    }


CONNECTED = "placement: connected"


def test_placement_check_passes_for_a_registered_sidecar(
    sidecar_api: Callable[[Responder], int],
) -> None:
    port = sidecar_api(lambda *_: (200, metadata(CONNECTED, ["LessonGenerationActor"])))
    result = run_script("placement_check.py", port, "LessonGenerationActor")
    assert result.returncode == 0, result.stderr
    assert "course-agent: placement: connected" in result.stdout


def test_placement_check_sends_the_sidecars_api_token(
    sidecar_api: Callable[..., int],
) -> None:
    registered = metadata(CONNECTED, ["LessonGenerationActor"])
    port = sidecar_api(lambda *_: (200, registered), require_token="the-api-token")

    with_token = run_script(
        "placement_check.py", port, "LessonGenerationActor", DAPR_API_TOKEN="the-api-token"
    )
    without = run_script(
        "placement_check.py", port, "LessonGenerationActor", PLACEMENT_WAIT_SECONDS="0"
    )

    assert with_token.returncode == 0, with_token.stderr
    assert without.returncode == 1
    assert "401" in without.stderr


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (
            metadata("placement: disconnected", ["LessonGenerationActor"]),
            "not 'placement: connected'",
        ),
        (metadata(CONNECTED, ["LessonGenerationActor"], host_ready=False), "hostReady"),
        (metadata(CONNECTED, []), "['LessonGenerationActor'] not registered"),
        ({"id": "course-agent"}, "actorRuntime.placement is None"),
    ],
    ids=["disconnected", "host-not-ready", "actor-type-missing", "no-actor-runtime"],
)
def test_placement_check_fails_with_the_reason(
    answer: dict[str, Any], problem: str, sidecar_api: Callable[[Responder], int]
) -> None:
    port = sidecar_api(lambda *_: (200, answer))
    result = run_script(
        "placement_check.py", port, "LessonGenerationActor", PLACEMENT_WAIT_SECONDS="0"
    )
    assert result.returncode == 1
    assert problem in result.stderr


def test_placement_check_waits_for_dissemination(
    sidecar_api: Callable[[Responder], int],
) -> None:
    answers = iter([metadata("placement: disconnected", [])])
    port = sidecar_api(
        lambda *_: (200, next(answers, metadata(CONNECTED, ["LearnerProgressActor"])))
    )
    result = run_script(
        "placement_check.py", port, "LearnerProgressActor", PLACEMENT_WAIT_SECONDS="20"
    )
    assert result.returncode == 0, result.stderr


class ScriptedServices:
    """Course Agent and User Progress as seen through Dapr service invocation."""

    def __init__(self, counted_after_polls: int | None) -> None:
        self.generate_requests: list[Any] = []
        self.status_polls = 0
        self.counted_after_polls = counted_after_polls

    def __call__(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        route = urllib.parse.urlsplit(path)
        learner = urllib.parse.parse_qs(route.query).get("learner_id", [""])[0]
        if method == "POST" and route.path == "/v1.0/invoke/course-agent/method/generate-lesson":
            self.generate_requests.append(body)
            return 201, {"lesson_id": "lesson-1", "learner_id": body["learner_id"]}
        if route.path == "/v1.0/invoke/user-progress/method/status":
            self.status_polls += 1
            counted = (
                self.counted_after_polls is not None
                and self.status_polls > self.counted_after_polls
            )
            return 200, {"learner_id": learner, "lessons_assigned": int(counted)}
        if route.path == "/v1.0/invoke/course-agent/method/lessons":
            return 200, {"items": [{"lesson_id": "lesson-1"}], "next_cursor": None}
        return 404, {"error": path}


def test_smoke_test_passes_once_the_lesson_is_counted(
    sidecar_api: Callable[[Responder], int], smoke_test_module: Any
) -> None:
    services = ScriptedServices(counted_after_polls=1)
    result = run_script("smoke_test.py", sidecar_api(services))
    assert result.returncode == 0, result.stderr
    (request,) = services.generate_requests
    assert request["learner_id"].startswith("smoke-")
    assert {k: v for k, v in request.items() if k != "learner_id"} == (
        smoke_test_module.LESSON_REQUEST
    )
    assert services.status_polls == 2


def test_smoke_test_fails_when_the_lesson_never_reaches_user_progress(
    sidecar_api: Callable[[Responder], int],
) -> None:
    services = ScriptedServices(counted_after_polls=None)
    result = run_script("smoke_test.py", sidecar_api(services), SMOKE_WAIT_SECONDS="1")
    assert result.returncode == 1
    assert "user-progress status: lessons_assigned is 0" in result.stderr


def test_smoke_test_fails_when_generation_is_refused(
    sidecar_api: Callable[[Responder], int],
) -> None:
    result = run_script("smoke_test.py", sidecar_api(lambda *_: (503, {"error": "no recording"})))
    assert result.returncode == 1
    assert "POST /generate-lesson answered 503" in result.stderr


# --- placement's own table ------------------------------------------------------------------

NAMESPACE = "phase-3-backend-services"
EXPECTED = ["course-agent=LessonGenerationActor", "user-progress=LearnerProgressActor"]


def placement_table(hosts: list[dict[str, Any]], namespace: str = NAMESPACE) -> dict[str, Any]:
    """Placement's /placement/state as Dapr 1.18 serves it."""
    return {"tables": {namespace: {"version": 4, "hosts": hosts}}}


def host(app_id: str, *entities: str) -> dict[str, Any]:
    return {
        "name": f"10.244.0.{len(app_id)}:50002",
        "id": app_id,
        "entities": list(entities),
        "namespace": NAMESPACE,
        "pod": f"{app_id}-7d9f-abcde",
        "api_level": 20,
    }


def check_table(table: Any, *expected: str) -> subprocess.CompletedProcess[str]:
    """Runs the table check the way the deploy steps do: `python -c SCRIPT`, JSON on stdin."""
    script = (DEPLOY_DIR / "scripts" / "placement_table_check.py").read_text()
    return subprocess.run(
        [sys.executable, "-c", script, NAMESPACE, *(expected or EXPECTED)],
        input=table if isinstance(table, str) else json.dumps(table),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_placement_table_check_passes_when_both_apps_are_listed() -> None:
    table = placement_table(
        [
            host("course-agent", "LessonGenerationActor"),
            host("user-progress", "LearnerProgressActor"),
        ]
    )
    result = check_table(table)
    assert result.returncode == 0, result.stderr
    assert "course-agent 10.244.0.12:50002 pod course-agent-7d9f-abcde: LessonGenerationActor" in (
        result.stdout
    )
    assert "user-progress" in result.stdout


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            placement_table([host("course-agent", "LessonGenerationActor")]),
            "user-progress is not in placement's table for phase-3-backend-services "
            "(has ['course-agent'])",
        ),
        (
            placement_table(
                [
                    host("course-agent", "SomethingElse"),
                    host("user-progress", "LearnerProgressActor"),
                ]
            ),
            "course-agent is listed without actor types ['LessonGenerationActor']",
        ),
        (
            placement_table(
                [
                    host("course-agent", "LessonGenerationActor"),
                    host("user-progress", "LearnerProgressActor"),
                ],
                namespace="default",
            ),
            "course-agent is not in placement's table for phase-3-backend-services (has no app)",
        ),
        ({"tables": {}}, "has no app"),
        ("Internal Server Error", "placement's table is not JSON"),
        ('["not", "an", "object"]', "placement's table is not a JSON object"),
    ],
    ids=["app-missing", "actor-type-missing", "other-namespace", "empty", "not-json", "not-object"],
)
def test_placement_table_check_fails_with_the_reason(table: Any, problem: str) -> None:
    result = check_table(table)
    assert result.returncode == 1
    assert problem in result.stderr


def test_placement_table_check_refuses_bad_arguments() -> None:
    result = check_table(placement_table([]), "course-agent")
    assert result.returncode == 2
    assert "expected APP=TYPE[,TYPE...], got 'course-agent'" in result.stderr


# --- content tags of the service images -------------------------------------------------------


@pytest.fixture
def tag_repo(tmp_path: Path) -> Path:
    """A git work tree laid out like this repository, with image-tag.sh and one service whose
    Dockerfile copies a few files and a directory from the build context."""
    phase = tmp_path / "phase-3-backend-services"
    (phase / "deploy" / "container").mkdir(parents=True)
    shutil.copy(DEPLOY_DIR / "container" / "image-tag.sh", phase / "deploy" / "container")
    (phase / "versions.env").write_text("UV_VERSION=0.13.8\n")
    (phase / "svc" / "src").mkdir(parents=True)
    (phase / "svc" / "tests").mkdir()
    (phase / "svc" / "Dockerfile").write_text(
        "FROM base AS builder\n"
        "COPY pyproject.toml uv.lock ./\n"
        "COPY phase-3-backend-services/svc \\\n    phase-3-backend-services/svc\n"
        "FROM base\n"
        "COPY --from=builder /opt/venv /opt/venv\n"
        "COPY --chown=1:1 phase-3-backend-services/prompts /app/prompts\n"
    )
    (phase / "svc" / "src" / "app.py").write_text("print('v1')\n")
    (phase / "svc" / "tests" / "test_app.py").write_text("def test(): pass\n")
    (phase / "prompts").mkdir()
    (phase / "prompts" / "lesson.txt").write_text("Teach {topic}.\n")
    (phase / "other").mkdir()
    (phase / "other" / "notes.md").write_text("not copied\n")
    for name in ("pyproject.toml", "uv.lock", ".dockerignore"):
        (tmp_path / name).write_text(f"{name}\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "layout"], check=True)
    return tmp_path


def image_tag(repo: Path, service: str = "svc") -> str:
    result = subprocess.run(
        [
            "bash",
            repo / "phase-3-backend-services" / "deploy" / "container" / "image-tag.sh",
            service,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_image_tag_is_twelve_hex_digits_and_stable(tag_repo: Path) -> None:
    tag = image_tag(tag_repo)
    assert len(tag) == 12
    assert int(tag, 16) >= 0
    assert image_tag(tag_repo) == tag


@pytest.mark.parametrize(
    "edit",
    [
        "phase-3-backend-services/svc/src/app.py",  # the service, uncommitted
        "phase-3-backend-services/prompts/lesson.txt",  # copied by the runtime stage
        "phase-3-backend-services/svc/Dockerfile",
        "uv.lock",
        ".dockerignore",
        "phase-3-backend-services/svc/src/new_module.py",  # untracked, not ignored
    ],
)
def test_image_tag_changes_with_what_the_image_is_built_from(tag_repo: Path, edit: str) -> None:
    before = image_tag(tag_repo)
    with (tag_repo / edit).open("a") as file:
        file.write("# changed\n")
    assert image_tag(tag_repo) != before


@pytest.mark.parametrize(
    "edit",
    [
        "phase-3-backend-services/other/notes.md",  # not copied
        "phase-3-backend-services/svc/tests/test_app.py",  # kept out by .dockerignore
    ],
)
def test_image_tag_ignores_what_the_image_does_not_contain(tag_repo: Path, edit: str) -> None:
    before = image_tag(tag_repo)
    with (tag_repo / edit).open("a") as file:
        file.write("# changed\n")
    assert image_tag(tag_repo) == before


def test_image_tags_of_the_real_services_differ() -> None:
    tags = {
        image_tag(DEPLOY_DIR.parents[1], service) for service in ("course-agent", "user-progress")
    }
    assert len(tags) == 2
