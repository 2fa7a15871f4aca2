"""The Minikube deploy on a real Kubernetes built here (deploy/cluster/sandbox-up.sh).

One sandbox cluster for the module: Kubernetes 1.34, containerd, the Dapr control plane from
its Helm chart, and the overlay minikube-up.sh deploys, applied by the same step library. The
script itself already ran the deploy's own checks (sidecars, placement, smoke test); these
tests check again from outside with independent readers: the API server, placement's own
table, SQL in the cluster's PostgreSQL, a Kafka client in the cluster's broker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from learnflow_stack.process import ManagedProcess

from .conftest import SANDBOX_UP, Sandbox, read_state

NAMESPACE = "phase-3-backend-services"
APPS = {"course-agent": "LessonGenerationActor", "user-progress": "LearnerProgressActor"}
# The recorded eval case replay mode answers (the smoke test uses it too).
LESSON_REQUEST = {"topic": "Adding fractions", "level": "beginner"}

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def eventually(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Polls ``check`` until it returns something truthy; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, subprocess.CalledProcessError, json.JSONDecodeError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(2)
    pytest.fail(f"{what} not true after {timeout:.0f} s; last: {last!r}")


def app_pods(sandbox: Sandbox, app: str) -> list[dict[str, Any]]:
    pods = sandbox.kubectl_json("get", "pods", "-l", f"app.kubernetes.io/name={app}")["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def ready_with_sidecar(pod: dict[str, Any]) -> bool:
    statuses = pod["status"].get("containerStatuses", [])
    names = {status["name"] for status in statuses}
    return (
        pod["status"].get("phase") == "Running"
        and len(statuses) == 2
        and "daprd" in names
        and all(status.get("ready") for status in statuses)
    )


def placement_hosts(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Placement's own table, through the API server's pod proxy: every host it lists, each
    with its app ``id``, ``name`` (the sidecar's pod IP and internal gRPC port) and actor
    types (``entities``)."""
    state = json.loads(
        sandbox.kubectl(
            "get",
            "--raw",
            "/api/v1/namespaces/dapr-system/pods/dapr-placement-server-0:8080/proxy/placement/state",
            namespaced=False,
        )
    )
    return [host for table in state["tables"].values() for host in table.get("hosts") or []]


def sidecar_address(pod: dict[str, Any]) -> str:
    """How placement names a host: the pod's IP and daprd's internal gRPC port."""
    return f"{pod['status']['podIP']}:50002"


def sidecar_metadata(sandbox: Sandbox, pod: str, app: str) -> dict[str, Any]:
    # The app container has daprd's API token (DAPR_API_TOKEN), which the metadata API needs.
    script = (
        "import os, urllib.request; url = 'http://127.0.0.1:3500/v1.0/metadata'; "
        "token = {'dapr-api-token': os.environ['DAPR_API_TOKEN']}; "
        "request = urllib.request.Request(url, headers=token); "
        "print(urllib.request.urlopen(request, timeout=5).read().decode())"
    )
    metadata: dict[str, Any] = json.loads(
        sandbox.kubectl("exec", pod, "-c", app, "--", "python", "-c", script)
    )
    return metadata


def generate_lesson(sandbox: Sandbox, learner_id: str) -> dict[str, Any]:
    status, body = sandbox.http(
        "POST",
        "course-agent",
        "/generate-lesson",
        {**LESSON_REQUEST, "learner_id": learner_id},
        as_learner=learner_id,
    )
    assert status == 201, f"POST /generate-lesson answered {status}: {body}"
    assert isinstance(body, dict)
    return body


def processes_mentioning(text: str) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True)
    return [line for line in listing.stdout.splitlines() if text in line]


def lessons_assigned(sandbox: Sandbox, learner_id: str) -> int:
    status, body = sandbox.http(
        "GET", "user-progress", f"/status?learner_id={learner_id}", as_learner=learner_id
    )
    assert status == 200, f"GET /status answered {status}: {body}"
    count: int = body["lessons_assigned"]
    return count


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    runs = tmp_path_factory.mktemp("cluster-runs")
    launcher = ManagedProcess(
        "sandbox-up",
        [str(SANDBOX_UP)],
        runs / "sandbox-up.log",
        env={"LEARNFLOW_CLUSTER_RUNS": str(runs)},
    )
    launcher.start()
    launcher.wait_ready(
        lambda: (runs / "latest" / "deployed").exists(), 1500, "deployed and verified"
    )
    yield Sandbox(read_state(runs / "latest" / "state.env"), launcher)
    launcher.stop(grace=60)


def test_app_pods_run_with_injected_sidecars(sandbox: Sandbox) -> None:
    for app in APPS:
        pods = app_pods(sandbox, app)
        assert len(pods) == 1, [pod["metadata"]["name"] for pod in pods]
        assert ready_with_sidecar(pods[0]), pods[0]["status"]
        daprd = next(c for c in pods[0]["spec"]["containers"] if c["name"] == "daprd")
        assert daprd["image"].startswith("ghcr.io/dapr/daprd:"), daprd["image"]


def test_placement_table_lists_both_apps_with_their_actor_types(sandbox: Sandbox) -> None:
    hosts = placement_hosts(sandbox)
    for app, actor_type in APPS.items():
        pod = app_pods(sandbox, app)[0]
        entries = [host for host in hosts if host.get("id") == app]
        assert [host["name"] for host in entries] == [sidecar_address(pod)], f"{app}: {hosts}"
        assert actor_type in entries[0]["entities"], entries
        metadata = sidecar_metadata(sandbox, pod["metadata"]["name"], app)
        assert metadata["actorRuntime"]["placement"] == "placement: connected"
        assert metadata["actorRuntime"]["hostReady"] is True


def test_only_the_sidecar_reaches_the_apps_dapr_routes(sandbox: Sandbox) -> None:
    """The app port is reachable in the cluster network, but its Dapr routes want the token
    daprd sends (dapr.io/app-token-secret); the sidecar's own calls carry it, so the actors
    and the subscription keep working (the other tests)."""
    pod_ip = app_pods(sandbox, "user-progress")[0]["status"]["podIP"]
    url = f"http://{pod_ip}:8000/actors/LearnerProgressActor/intruder/method/ApplyUpdate"
    answer = sandbox.in_netns("curl", "-s", "-X", "PUT", "-d", "{}", "-w", "\n%{http_code}", url)
    body, _, status = answer.rpartition("\n")
    assert status == "401", answer
    assert json.loads(body)["error"]["code"] == "dapr_app_token_invalid"


def test_a_lesson_is_stored_published_and_counted(sandbox: Sandbox) -> None:
    learner_id = f"cluster-{uuid.uuid4().hex[:8]}"
    lesson = generate_lesson(sandbox, learner_id)
    lesson_id = lesson["lesson_id"]

    # Independent reader 1: SQL in the cluster's PostgreSQL, as the app's database role.
    rows = sandbox.psql(
        "SELECT convert_from(value, 'UTF8')::json->>'lesson_id' FROM state WHERE key = :'key'",
        variables={"key": f"course-agent||lesson-{lesson_id}"},
    )
    assert rows == [lesson_id], rows

    # Independent reader 2: a Kafka consumer of the test's own, inside the broker's pod.
    def on_topic() -> bool:
        return lesson_id in sandbox.kafka_messages("lesson-generated")

    eventually(on_topic, f"{lesson_id} on the lesson-generated topic")

    eventually(lambda: lessons_assigned(sandbox, learner_id) == 1, f"/status counting {lesson_id}")


def test_deleted_pods_are_rescheduled_back_into_placement_and_serve(sandbox: Sandbox) -> None:
    old = {app: app_pods(sandbox, app)[0]["metadata"]["name"] for app in APPS}
    sandbox.kubectl("delete", "pod", *old.values(), "--wait=false")

    def replaced(app: str) -> Callable[[], str | None]:
        def check() -> str | None:
            pods = [p for p in app_pods(sandbox, app) if p["metadata"]["name"] != old[app]]
            ready = [p for p in pods if ready_with_sidecar(p)]
            return sidecar_address(ready[0]) if ready else None

        return check

    for app, actor_type in APPS.items():
        address = eventually(replaced(app), f"a new ready pod of {app}", timeout=240)

        def registered(
            app: str = app, address: str = address, actor_type: str = actor_type
        ) -> bool:
            return any(
                host.get("id") == app
                and host["name"] == address
                and actor_type in (host.get("entities") or [])
                for host in placement_hosts(sandbox)
            )

        eventually(registered, f"the new {app} pod ({address}) in placement's table")

    learner_id = f"cluster-{uuid.uuid4().hex[:8]}"
    lesson = eventually(lambda: generate_lesson(sandbox, learner_id), "a lesson after the restart")

    eventually(
        lambda: lessons_assigned(sandbox, learner_id) == 1,
        f"/status counting {lesson['lesson_id']} after the restart",
    )


def test_stopping_leaves_no_process_cgroup_or_kernel_change(sandbox: Sandbox) -> None:
    before = dict(
        line.split("=", 1)
        for line in (sandbox.run_dir / "sysctl-before").read_text().split("\n")
        if line
    )
    sandbox.launcher.stop(grace=60)
    assert sandbox.launcher.popen is not None
    assert sandbox.launcher.popen.returncode is not None
    assert not Path(f"/proc/{sandbox.holder_pid}").exists(), "the sandbox's PID 1 outlived the stop"
    assert processes_mentioning(str(sandbox.run_dir)) == []
    assert not list(Path("/sys/fs/cgroup").glob("*/learnflow-sandbox")), (
        "kubelet cgroups left behind"
    )
    for name, value in before.items():
        now = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True).stdout.strip()
        assert now == value, f"{name} was {value} before the sandbox and is {now} after"


def test_a_killed_launcher_leaves_no_process(tmp_path: Path) -> None:
    """SIGKILL gives the launcher no chance to clean up: the namespaces must do it."""
    runs = tmp_path / "runs"
    launcher = ManagedProcess(
        "sandbox-up",
        [str(SANDBOX_UP), "--node-only"],
        tmp_path / "sandbox-up.log",
        env={"LEARNFLOW_CLUSTER_RUNS": str(runs)},
    )
    launcher.start()
    try:
        launcher.wait_ready(lambda: (runs / "latest" / "state.env").exists(), 300, "node ready")
        state = read_state(runs / "latest" / "state.env")
        os.kill(launcher.pid, signal.SIGKILL)
        holder = Path(f"/proc/{state['HOLDER_PID']}")
        eventually(lambda: not holder.exists(), "the sandbox's PID 1 gone", timeout=30)
        eventually(
            lambda: not processes_mentioning(state["RUN"]), "no process of the run", timeout=30
        )
        tasks = [
            task
            for procs in Path("/sys/fs/cgroup").glob("*/learnflow-sandbox/**/cgroup.procs")
            for task in procs.read_text().split()
        ]
        assert tasks == [], "processes left in the sandbox's cgroups"
    finally:
        launcher.stop()
