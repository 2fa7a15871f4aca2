"""minikube-up.sh / minikube-down.sh fail clearly without their tools, and the checks they run
inside the cluster (placement registration, smoke test) pass and fail when they should.
The in-cluster checks are exercised against a scripted stand-in for the sidecar's HTTP API."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

DEPLOY_DIR = Path(__file__).resolve().parents[1]
# An answer: (status, JSON body) for a request (method, path with query, JSON body or None).
Responder = Callable[[str, str, Any], tuple[int, Any]]


@pytest.mark.parametrize("script", ["minikube-up.sh", "minikube-down.sh"])
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
    assert "missing on PATH: minikube kubectl helm" in result.stderr
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


@pytest.fixture
def sidecar_api() -> Iterator[Callable[[Responder], int]]:
    """Starts a loopback HTTP server answering with the given responder; yields its port."""
    servers: list[ThreadingHTTPServer] = []

    def serve(responder: Responder) -> int:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                status, reply = responder(self.command, self.path, body)
                payload = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = answer

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        port: int = server.server_address[1]
        return port

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


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
