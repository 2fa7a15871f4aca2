"""The launcher's own guarantees: no daprd without sqlite name resolution, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from learnflow_stack import services
from learnflow_stack.dapr import Sidecar, UnsafeNameResolution, render_resources
from learnflow_stack.paths import installed_dir, runs_root
from learnflow_stack.stack import Stack

from .conftest import eventually


def _sidecar_with_config(tmp_path: Path, config: dict[str, object]) -> Sidecar:
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    return Sidecar(
        bin_dir=installed_dir("build-dapr.sh"),
        run_dir=tmp_path,
        app_id="probe",
        app_port=1,
        resources_dir=tmp_path,
        config_path=config_path,
        placement_address="127.0.0.1:1",
        scheduler_address="127.0.0.1:1",
        secrets_env={},
    )


@pytest.mark.parametrize(
    "spec",
    [{}, {"nameResolution": {"component": "mdns"}}, {"nameResolution": {"component": "SQLite "}}],
    ids=["no-name-resolution", "mdns", "misspelt"],
)
def test_daprd_without_sqlite_name_resolution_is_refused(
    tmp_path: Path, spec: dict[str, object]
) -> None:
    sidecar = _sidecar_with_config(
        tmp_path,
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "unsafe"},
            "spec": spec,
        },
    )

    with pytest.raises(UnsafeNameResolution, match="sqlite"):
        sidecar.start()
    assert sidecar.process is None  # refused before anything was spawned


def test_rendered_configuration_uses_sqlite_in_the_run_directory(tmp_path: Path) -> None:
    _, config_path = render_resources(tmp_path, "127.0.0.1:9")

    resolution = yaml.safe_load(config_path.read_text())["spec"]["nameResolution"]
    assert resolution["component"] == "sqlite"
    assert resolution["configuration"]["connectionString"] == str(tmp_path / "nameresolution.db")
    sidecar = _sidecar_with_config(tmp_path, yaml.safe_load(config_path.read_text()))
    assert f"--config={sidecar.config_path}" in sidecar.argv()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too; it only waits for its parent to read its status.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _processes_in_sessions(session_ids: set[int]) -> list[int]:
    """Every live process in one of these sessions: each piece's own children included."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        state, session = fields[0], int(fields[3])
        if session in session_ids and state != "Z":
            found.append(int(stat.parent.name))
    return found


def _start_cli(runs_dir: Path) -> tuple[subprocess.Popen[bytes], dict[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "learnflow_stack.cli", "up"],
        env={**os.environ, "LEARNFLOW_RUNS_DIR": str(runs_dir)},
        stdout=subprocess.DEVNULL,
        stderr=(runs_dir / "launcher.log").open("wb"),
    )

    def manifest_written() -> Path | None:
        assert process.poll() is None, (runs_dir / "launcher.log").read_text()
        return next(iter(runs_dir.glob("*/stack.json")), None)

    try:
        manifest = eventually(manifest_written, timeout=180)
        pids: dict[str, int] = json.loads(manifest.read_text())["pids"]
        # jaeger, postgres, kafka, placement and scheduler each with its namespace's relay,
        # 2 apps, 2 daprd
        assert len(pids) == 11
        assert all(_pid_alive(pid) for pid in pids.values())
    except BaseException:
        _stop(process)  # a failed check must not leave a whole stack running after the test
        raise
    return process, pids


def _stop(launcher: subprocess.Popen[bytes]) -> None:
    launcher.send_signal(signal.SIGINT)
    try:
        launcher.wait(timeout=60)
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait(timeout=10)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_launcher_leaves_no_process_behind(how: signal.Signals) -> None:
    # Under the runs root, not pytest's private tmp: PostgreSQL runs as its own user.
    runs_dir = runs_root() / f"launcher-test-{uuid.uuid4().hex[:8]}"
    runs_dir.mkdir(parents=True)
    process, pids = _start_cli(runs_dir)

    process.send_signal(how)
    process.wait(timeout=60)

    sessions = set(pids.values())  # each piece leads its own session
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _processes_in_sessions(sessions):
        time.sleep(0.5)
    assert {name: pid for name, pid in pids.items() if _pid_alive(pid)} == {}
    assert _processes_in_sessions(sessions) == []


def test_existing_postgres_and_kafka_are_used_instead_of_private_ones(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEARNFLOW_PG_CONNECTION", stack.pg_connection)
    monkeypatch.setenv("LEARNFLOW_KAFKA_BROKERS", stack.kafka_bootstrap)
    key = f"shared-{uuid.uuid4().hex}"

    with Stack([services.course_agent({"COURSE_AGENT_LLM_PROVIDER": "replay"})]) as second:
        agent = second.app("course-agent")
        assert httpx.get(f"{agent.url}/readyz", timeout=10).status_code == 200
        saved = httpx.post(
            f"{agent.sidecar.http_url}/v1.0/state/statestore",
            json=[{"key": key, "value": "via the second stack"}],
            headers=agent.sidecar.api_headers,
            timeout=10,
        )
        assert saved.status_code == 204
        assert (second.postgres, second.kafka) == (None, None)
        assert [p.name for p in second.processes()] == [
            "placement-net",
            "placement",
            "scheduler-net",
            "scheduler",
            "course-agent",
            "daprd[course-agent]",
        ]

    # The row is in the first stack's PostgreSQL.
    with psycopg.connect(stack.pg_connection) as connection:
        row = connection.execute(
            "SELECT value FROM state WHERE key = %s", (f"course-agent||{key}",)
        ).fetchone()
    assert row is not None
