"""Shared fixtures for the offline checks of the container and Kubernetes deliverable.

Tools come from the project's locked "deploy" dependency group (the virtual environment pytest
runs in), never from whatever else is on PATH: the machine's own kubectl is not the project's.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from learnflow_stack.services import SCAFFOLDED_APPS

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
OVERLAY_DIR = DEPLOY_DIR / "overlays" / "minikube"
COMPONENTS_DIR = PHASE_DIR / "components"
# The two services, and any the fastapi-dapr-agent skill scaffolded (it registers them with
# the launcher): every offline check holds for each of them.
SERVICES = ("course-agent", "user-progress", *(app_id for app_id, _ in SCAFFOLDED_APPS))

Manifest = dict[str, Any]
Instruction = tuple[str, str]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "container_build: builds the service images with buildah (slow; skips with the reason "
        "when buildah cannot run here)",
    )


def _project_tool(name: str) -> Path:
    tool = Path(sys.executable).parent / name
    if not tool.exists():
        pytest.fail(f"{name} is missing from {tool.parent}: run `uv sync --frozen` (group deploy)")
    return tool


def _versions_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (PHASE_DIR / "versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="session")
def project_tool() -> Callable[[str], Path]:
    """Finds an executable of the project's virtual environment (the deploy dependency group)."""
    return _project_tool


@pytest.fixture(scope="session")
def pinned_versions() -> dict[str, str]:
    """The pinned external versions (phase-3-backend-services/versions.env)."""
    return _versions_env()


def _yaml_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="session")
def rendered_overlay_text() -> str:
    result = subprocess.run(
        [_project_tool("kubectl"), "kustomize", OVERLAY_DIR],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def rendered_overlay(rendered_overlay_text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(rendered_overlay_text) if doc]


@pytest.fixture(scope="session")
def rendered_overlay_file(
    rendered_overlay_text: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("overlay") / "minikube.yaml"
    path.write_text(rendered_overlay_text)
    return path


@pytest.fixture(scope="session")
def core_objects(rendered_overlay: list[Manifest]) -> list[Manifest]:
    """Everything Kubernetes itself defines (not the Dapr custom resources)."""
    return [doc for doc in rendered_overlay if not doc["apiVersion"].startswith("dapr.io/")]


@pytest.fixture(scope="session")
def cluster_dapr_resources(rendered_overlay: list[Manifest]) -> list[Manifest]:
    return [doc for doc in rendered_overlay if doc["apiVersion"].startswith("dapr.io/")]


@pytest.fixture(scope="session")
def local_dapr_resources() -> list[Manifest]:
    return [doc for path in sorted(COMPONENTS_DIR.glob("*.yaml")) for doc in _yaml_documents(path)]


@pytest.fixture(scope="session")
def dapr_module_dir(pinned_versions: dict[str, str]) -> Path:
    """Source of the pinned Dapr release in the Go module cache (downloaded once if absent)."""
    version = f"v{pinned_versions['DAPR_VERSION']}"
    cache = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout.strip()
    module_dir = Path(cache) / "github.com" / "dapr" / f"dapr@{version}"
    if not module_dir.is_dir():
        download = subprocess.run(
            ["go", "mod", "download", "-json", f"github.com/dapr/dapr@{version}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        assert download.returncode == 0, f"go mod download failed:\n{download.stderr}"
        module_dir = Path(json.loads(download.stdout)["Dir"])
    return module_dir


@pytest.fixture(scope="session")
def dapr_crd_schemas(dapr_module_dir: Path) -> dict[tuple[str, str], Manifest]:
    """openAPIV3Schema of every served Dapr CRD version, by (apiVersion, kind)."""
    schemas: dict[tuple[str, str], Manifest] = {}
    for path in sorted((dapr_module_dir / "charts" / "dapr" / "crds").glob("*.yaml")):
        for crd in _yaml_documents(path):
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    key = (f"{group}/{version['name']}", kind)
                    schemas[key] = version["schema"]["openAPIV3Schema"]
    assert schemas, f"no Dapr CRDs under {dapr_module_dir}"
    return schemas


def _dockerfile_stages(text: str) -> list[list[Instruction]]:
    """Stage 0 holds what precedes the first FROM (global ARGs); each later stage starts
    with its FROM. Comments dropped, continuation lines joined, whitespace runs collapsed."""
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    stages: list[list[Instruction]] = [[]]
    for line in filter(str.strip, logical.splitlines()):
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), " ".join(arguments.split())))
    return stages


@pytest.fixture(scope="session")
def dockerfiles() -> dict[str, list[list[Instruction]]]:
    """Each service's Dockerfile, split into stages of (INSTRUCTION, arguments) pairs."""
    return {
        service: _dockerfile_stages((PHASE_DIR / service / "Dockerfile").read_text())
        for service in SERVICES
    }


def _script_module(name: str) -> ModuleType:
    """One of the stdlib-only scripts the deploy steps run inside the service containers."""
    spec = importlib.util.spec_from_file_location(name, DEPLOY_DIR / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def smoke_test_module() -> ModuleType:
    return _script_module("smoke_test")


@pytest.fixture(scope="session")
def placement_check_module() -> ModuleType:
    return _script_module("placement_check")


# An answer: (status, JSON body) for a request (method, path with query, JSON body or None).
Responder = Callable[[str, str, Any], tuple[int, Any]]


@pytest.fixture
def sidecar_api() -> Iterator[Callable[..., int]]:
    """Starts a loopback HTTP server answering with the given responder; yields its port.
    With ``require_token``, it answers 401 to a request without that dapr-api-token, as daprd."""
    servers: list[ThreadingHTTPServer] = []

    def serve(responder: Responder, require_token: str | None = None) -> int:
        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                if require_token and self.headers.get("dapr-api-token") != require_token:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
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
