"""Each service image runs the app it should, proven two ways per service:

* always: the service installed into a fresh venv exactly as its Dockerfile does
  (deploy/container/install-service.sh), started with the Dockerfile's CMD and the image's
  ENV (image paths mapped to the files the image copies), answers GET /healthz;
* ``container_build``: the Dockerfile really built by buildah (``--isolation chroot``) from a
  locally made stand-in for python:3.11-slim (no registry is reachable), its CMD run inside
  the image in a private network namespace, answering GET /healthz. Skips, with the reason,
  where buildah cannot be installed or run.

The Dapr SDK holds app startup until its sidecar's health endpoint answers, so both checks
run the app next to sidecar_health_stub.py, which answers only that endpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from learnflow_stack.dev_auth import DevSigningKey

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
REPO_ROOT = PHASE_DIR.parent
SERVICES = ("course-agent", "user-progress")
STUB = Path(__file__).with_name("sidecar_health_stub.py")
BUILDAH = DEPLOY_DIR / "container" / "buildah.sh"
STARTUP_SECONDS = 90.0
Stages = list[list[tuple[str, str]]]


def instruction_args(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [args for instruction, args in stage if instruction == keyword]


def image_cmd(stages: Stages) -> list[str]:
    keyword, args = stages[-1][-1]
    assert keyword == "CMD"
    cmd: list[str] = json.loads(args)
    return cmd


def on_port(cmd: list[str], host: str, port: int) -> list[str]:
    """The CMD with only the --host and --port values replaced."""
    changed = list(cmd)
    changed[changed.index("--host") + 1] = host
    changed[changed.index("--port") + 1] = str(port)
    return changed


def image_paths_on_this_machine(stages: Stages, venv: Path, scratch: Path) -> dict[str, Path]:
    """Where each image path's content lives here: the venv, a fresh /tmp (an emptyDir in the
    cluster) and every directory the runtime stage copies from the build context."""
    mapping = {"/opt/venv": venv, "/tmp": scratch}
    for args in instruction_args(stages[-1], "COPY"):
        words = args.split()
        if not any(word.startswith("--from=") for word in words):
            source, destination = words
            mapping[destination] = REPO_ROOT / source
    return mapping


def image_env(stages: Stages, mapping: dict[str, Path]) -> dict[str, str]:
    env = {}
    for pair in " ".join(instruction_args(stages[-1], "ENV")).split():
        name, _, value = pair.partition("=")
        for image_path, local in sorted(mapping.items(), key=lambda item: -len(item[0])):
            if value == image_path or value.startswith(f"{image_path}/"):
                value = str(local) + value[len(image_path) :]
                break
        env[name] = value.replace("$PATH", os.environ["PATH"])
    return env


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 - loopback http
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_healthz(
    probe: Callable[[], tuple[int, bytes] | None], app: subprocess.Popen[str]
) -> bytes:
    """Polls until /healthz answers 200; fails with the app's output if it exits or stalls."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and app.poll() is None:
        answer = probe()
        if answer is not None and answer[0] == 200:
            return answer[1]
        time.sleep(0.5)
    stop(app)
    output = app.communicate()[0]
    pytest.fail(f"/healthz never answered 200 (exit {app.returncode}):\n{output[-3000:]}")


def stop(process: subprocess.Popen[str]) -> None:
    """Ends a process group this test started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def started() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts processes in their own process group; stops them all at teardown."""
    processes: list[subprocess.Popen[str]] = []

    def start(*command: str | Path, **kwargs: Any) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [str(part) for part in command],
            start_new_session=True,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **kwargs,
        )
        processes.append(process)
        return process

    yield start
    for process in reversed(processes):
        stop(process)


def uv_executable(pinned_versions: dict[str, str]) -> Path:
    """`uv run` exports UV; otherwise PATH, otherwise the project's pinned uv in the cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    for candidate in (
        os.environ.get("UV"),
        shutil.which("uv"),
        cache / "learnflow" / f"uv-{pinned_versions['UV_VERSION']}" / "bin" / "uv",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("uv is needed to install the service as the Dockerfile does, and was not found")


@pytest.mark.parametrize("service", SERVICES)
def test_fresh_venv_built_like_the_image_serves_healthz(
    service: str,
    dockerfiles: dict[str, Stages],
    pinned_versions: dict[str, str],
    started: Callable[..., subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    stages = dockerfiles[service]
    # The builder's last step, which this test repeats with a temporary venv.
    assert instruction_args(stages[1], "RUN")[-1] == f"install-service {service} /opt/venv"
    venv = tmp_path / "venv"
    uv = uv_executable(pinned_versions)
    install = subprocess.run(
        ["sh", DEPLOY_DIR / "container" / "install-service.sh", service, venv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, "PATH": f"{uv.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert install.returncode == 0, install.stderr[-3000:]
    site = next((venv / "lib").glob("python3*/site-packages"))
    package = service.replace("-", "_")
    assert (site / package / "main.py").is_file(), "the service is installed, not linked"
    assert not any(str(PHASE_DIR) in pth.read_text() for pth in site.glob("*.pth")), (
        "no editable install pointing back into the source tree"
    )
    for dev_only in ("pytest", "learnflow_stack", "ruff", "mypy"):
        assert not (site / dev_only).exists(), f"{dev_only} must not be in the image"

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = image_env(stages, image_paths_on_this_machine(stages, venv, scratch))
    app_port, sidecar_port = unused_port(), unused_port()
    started(sys.executable, STUB, str(sidecar_port))
    # Loopback and a free port instead of 0.0.0.0:8000: this runs on the host's network.
    app = started(
        *on_port(image_cmd(stages), "127.0.0.1", app_port),
        cwd=scratch,
        # On Kubernetes AUTH_PUBLIC_KEY comes from the learnflow-auth-public Secret.
        env={
            **env,
            "DAPR_HTTP_PORT": str(sidecar_port),
            "AUTH_PUBLIC_KEY": DevSigningKey.generate().public_pem,
        },
    )
    base = f"http://127.0.0.1:{app_port}"

    def probe() -> tuple[int, bytes] | None:
        try:
            return get(f"{base}/healthz")
        except OSError:
            return None

    assert json.loads(wait_for_healthz(probe, app)) == {"status": "ok"}
    status, body = get(f"{base}/readyz")
    assert status == 503, "without a state store the service must not report ready"
    assert json.loads(body)["status"] == "not_ready"


# --- real image builds with buildah -------------------------------------------------------


def buildah_unusable_reason() -> str | None:
    """Why buildah cannot build and run images here, or None. Installs it from Debian's
    packages (with debootstrap, for the base) when missing and this machine can."""
    needed = ("buildah", "debootstrap", "unshare", "nsenter", "ip")
    if not all(shutil.which(tool) for tool in needed[:2]):
        if not Path("/etc/debian_version").exists():
            return "buildah and debootstrap are missing and this is not Debian (no apt-get)"
        if os.geteuid() != 0:
            return "buildah and debootstrap are missing and installing them needs root"
        for command in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "buildah", "debootstrap"],
        ):
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=False,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            if result.returncode != 0:
                return f"`{' '.join(command)}` failed: {result.stderr.strip()[-500:]}"
    missing = [tool for tool in needed if not shutil.which(tool)]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    if os.geteuid() != 0:
        return "running an image in a private network namespace needs root"
    probe = subprocess.run(
        [BUILDAH, "from", "scratch"], capture_output=True, text=True, check=False, timeout=120
    )
    if probe.returncode != 0:
        return f"buildah cannot create containers here: {probe.stderr.strip()[-500:]}"
    subprocess.run([BUILDAH, "rm", probe.stdout.strip()], capture_output=True, check=False)
    return None


@pytest.fixture(scope="session")
def local_python_base() -> str:
    """The stand-in base image (made once, cached in buildah's storage under ~/.cache)."""
    reason = buildah_unusable_reason()
    if reason:
        pytest.skip(f"container build skipped: {reason}")
    made = subprocess.run(
        [DEPLOY_DIR / "container" / "make-local-base.sh"],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if made.returncode != 0:
        pytest.skip(f"container build skipped: no local base image: {made.stderr[-800:]}")
    return made.stdout.strip()


def wait_for_private_stub(stub: subprocess.Popen[str], netns: list[str]) -> None:
    """Until the stub runs in its own network namespace and answers there: entering the
    namespace any earlier would enter the host's."""
    health = (
        "import urllib.request as r; "
        "r.urlopen('http://127.0.0.1:3500/v1.0/healthz/outbound', timeout=2)"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and stub.poll() is None:
        private = os.readlink(f"/proc/{stub.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        if (
            private
            and subprocess.run(
                [*netns, sys.executable, "-c", health], capture_output=True, check=False
            ).returncode
            == 0
        ):
            return
        time.sleep(0.2)
    pytest.fail(
        f"sidecar health stub did not come up in a private network namespace:\n"
        f"{stub.communicate(timeout=5)[0] if stub.poll() is not None else ''}"
    )


def buildah(*args: str | Path, timeout: float = 120) -> str:
    result = subprocess.run(
        [BUILDAH, *map(str, args)], capture_output=True, text=True, check=False, timeout=timeout
    )
    assert result.returncode == 0, f"buildah {' '.join(map(str, args))}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.container_build
@pytest.mark.parametrize("service", SERVICES)
def test_image_builds_and_its_cmd_serves_healthz(
    service: str,
    local_python_base: str,
    dockerfiles: dict[str, Stages],
    pinned_versions: dict[str, str],
    started: Callable[..., subprocess.Popen[str]],
) -> None:
    tag = f"localhost/learnflow/{service}:test"
    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--pull=never",
        "--format",
        "docker",
        "--build-arg",
        f"PYTHON_IMAGE={local_python_base}",
        "--build-arg",
        f"UV_VERSION={pinned_versions['UV_VERSION']}",
        "--file",
        PHASE_DIR / service / "Dockerfile",
        "--tag",
        tag,
        REPO_ROOT,
        timeout=1200,
    )
    container = ""
    running: list[subprocess.Popen[str]] = []
    try:
        config = json.loads(buildah("inspect", "--type", "image", tag))["Docker"]["config"]
        assert config["User"] == "10001:10001"
        assert config["Cmd"] == image_cmd(dockerfiles[service])
        assert "8000/tcp" in config["ExposedPorts"]
        assert config["Healthcheck"]["Test"][0] == "CMD"
        container = buildah("from", "--pull=never", tag).strip()
        dev_only = (
            "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in "
            "('pytest', 'learnflow_stack', 'uv')))"
        )
        buildah("run", "--isolation", "chroot", container, "--", "python", "-c", dev_only)

        # The CMD as the image says, port 8000 included, in a network namespace of its own
        # (only loopback), next to the sidecar health stub on Dapr's default port.
        stub = started(
            "unshare",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "sh",
            sys.executable,
            STUB,
            "3500",
        )
        netns = ["nsenter", f"--net=/proc/{stub.pid}/ns/net"]
        wait_for_private_stub(stub, netns)
        # On Kubernetes AUTH_PUBLIC_KEY comes from the learnflow-auth-public Secret.
        public_key = DevSigningKey.generate().public_pem
        app = started(
            *netns,
            BUILDAH,
            "run",
            "--isolation",
            "chroot",
            "--env",
            f"AUTH_PUBLIC_KEY={public_key}",
            container,
            "--",
            *config["Cmd"],
        )
        running += [app, stub]

        def probe() -> tuple[int, bytes] | None:
            fetch = (
                "import sys, urllib.request as r; "
                "sys.stdout.write(r.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
                ".read().decode())"
            )
            result = subprocess.run(
                [*netns, sys.executable, "-c", fetch],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            return (200, result.stdout.encode()) if result.returncode == 0 else None

        assert json.loads(wait_for_healthz(probe, app)) == {"status": "ok"}
    finally:
        for process in running:
            stop(process)
        if container:
            subprocess.run([BUILDAH, "rm", container], capture_output=True, check=False)
        subprocess.run([BUILDAH, "rmi", tag], capture_output=True, check=False)
        # Keep the storage bounded: only the cached base image stays.
        subprocess.run([BUILDAH, "rmi", "--prune"], capture_output=True, check=False)
