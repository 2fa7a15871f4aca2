"""The deploy step library both targets source (lib/deploy-steps.sh), run by bash against a
scripted kubectl: the render with image overrides (real kustomize), the topics Job wait that
stops on failure with the Job's logs, placement checked from both sides, and the step/summary
contract the callers rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from learnflow_stack.services import SCAFFOLDED_APPS

DEPLOY_DIR = Path(__file__).resolve().parents[1]
LIBRARY = DEPLOY_DIR / "lib" / "deploy-steps.sh"
NAMESPACE = "phase-3-backend-services"
Responder = Callable[[str, str, Any], tuple[int, Any]]

# A kubectl stand-in: answers what the steps ask about the two services and the topics Job,
# runs `exec ... -- CMD` locally (as if in the container), serves `get --raw` from a file.
STUB_KUBECTL = r"""#!/usr/bin/env bash
set -euo pipefail
echo "kubectl $*" >>"$STUB_LOG"
while [[ "$1" == --context || "$1" == --namespace ]]; do shift 2; done
case "$1 ${2:-}" in
  "get deployment")
    case "$3" in
      --selector) printf 'course-agent user-progress' ;;
      course-agent) printf LessonGenerationActor ;;
      user-progress) printf LearnerProgressActor ;;
    esac ;;
  "get pod")
    selector="$4"
    printf '%s-pod-1' "${selector#app.kubernetes.io/name=}" ;;
  "get job") printf '%s ' $STUB_JOB_CONDITIONS ;;
  "get pods") echo "kafka-topics-x   0/1   Error   0   1m" ;;
  "logs --selector") echo "[pod/kafka-topics-x/create-topics] Error: topic creation refused" ;;
  "get --raw") cat "$STUB_PLACEMENT_TABLE" ;;
  "get secret")
    [[ " ${STUB_SECRETS:-} " == *" $3 "* ]] || exit 1
    [[ "${4:-}" == --output ]] && printf '%s' "${STUB_CREDENTIAL_KEYS:-}"
    exit 0 ;;
  "get pvc") [[ " ${STUB_PVCS:-} " == *" $3 "* ]] ;;
  "apply --filename") printf '%b' "${STUB_APPLY_OUTPUT:-}" ;;
  "rollout restart"|"rollout status") ;;
  "create secret")
    name="$4"
    for argument in "${@:5}"; do
      if [[ "$argument" == --from-file=* ]]; then
        key_path="${argument#--from-file=}"
        value="$(cat "${key_path#*=}"; printf x)"  # read once: it may be a pipe
        value="${value%x}"
        # A trailing newline would travel into a password or an HTTP header.
        [[ "$value" != *$'\n' ]] || { echo "${key_path%%=*} ends in a newline" >&2; exit 9; }
        # One line per key (a PEM's own newlines escaped as \\n).
        printf 'secret %s %s=%s\n' "$name" "${key_path%%=*}" "${value//$'\n'/\\n}" >>"$STUB_LOG"
      fi
    done
    echo "secret/$name created" ;;
  "exec -i")
    while [[ "$1" != -- ]]; do shift; done
    shift
    exec "$@" ;;
  *) echo "stub kubectl: unexpected $*" >&2; exit 3 ;;
esac
"""


@pytest.fixture
def stub_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(STUB_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    return bin_dir


def run_library(
    script: str, bin_dir: Path, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Sources the library in bash -euo pipefail, sets the caller's contract, runs ``script``."""
    prelude = f"""
set -euo pipefail
source {LIBRARY}
KUBECTL=(kubectl --context test)
HELM=(false)
DAPR_CHART=(dapr/dapr)
OVERLAY={DEPLOY_DIR / "overlays" / "minikube"}
IMAGE_OVERRIDES=()
DAPR_HELM_EXTRA=()
load_images() {{ true; }}
trap 'deploy_steps_cleanup; print_summary' EXIT
"""
    return subprocess.run(
        ["bash", "-c", prelude + script],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "STUB_LOG": str(tmp_path / "kubectl.log"),
            **env,
        },
    )


def test_a_failed_step_stops_the_run_and_the_summary_prints_once(
    stub_bin: Path, tmp_path: Path
) -> None:
    result = run_library(
        'first() { true; }\nbroken() { false; echo "not reached" >&2; }\n'
        'step "first" first\nstep "broken" broken\nstep "never" first\n',
        stub_bin,
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout.count("==== LearnFlow deploy ====") == 1
    assert "PASS  first\nFAIL  broken (exit 1)\n" in result.stdout
    assert "never" not in result.stdout
    assert "not reached" not in result.stderr


def test_the_temporary_work_directory_is_removed(stub_bin: Path, tmp_path: Path) -> None:
    result = run_library('echo "$DEPLOY_WORK"', stub_bin, tmp_path)
    assert result.returncode == 0
    assert not Path(result.stdout.splitlines()[0]).exists()


# --- render_overlay -----------------------------------------------------------------------------


@pytest.fixture
def real_kubectl_bin(tmp_path: Path, project_tool: Callable[[str], Path]) -> Path:
    """PATH entry whose kubectl is the project's (kustomize runs offline)."""
    bin_dir = tmp_path / "real-bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(project_tool("kubectl"))
    return bin_dir


def render(bin_dir: Path, tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    work = tmp_path / "work"
    listed = " ".join(f"'{override}'" for override in overrides)
    return run_library(
        f'IMAGE_OVERRIDES=({listed})\nstep "render" render_overlay\n',
        bin_dir,
        tmp_path,
        DEPLOY_WORK=str(work),
    )


def rendered_images(tmp_path: Path) -> set[str]:
    docs = yaml.safe_load_all((tmp_path / "work" / "learnflow.yaml").read_text())
    return {
        container["image"]
        for doc in docs
        if doc and doc["kind"] in {"Deployment", "StatefulSet", "Job"}
        for container in [
            *doc["spec"]["template"]["spec"].get("initContainers", []),
            *doc["spec"]["template"]["spec"]["containers"],
        ]
    }


def test_render_applies_the_image_overrides(real_kubectl_bin: Path, tmp_path: Path) -> None:
    result = render(
        real_kubectl_bin,
        tmp_path,
        "learnflow/course-agent=learnflow/course-agent:0123456789ab",
        "learnflow/user-progress=learnflow/user-progress:ba9876543210",
        "postgres=localhost/learnflow-postgres:16-standin",
        "apache/kafka=localhost:5000/learnflow/kafka:4.1.1-standin",
    )
    assert result.returncode == 0, result.stderr
    scaffolded = {f"learnflow/{app_id}:content-tag" for app_id, _ in SCAFFOLDED_APPS}
    assert rendered_images(tmp_path) - scaffolded == {
        "learnflow/course-agent:0123456789ab",
        "learnflow/user-progress:ba9876543210",
        "localhost/learnflow-postgres:16-standin",
        "localhost:5000/learnflow/kafka:4.1.1-standin",
    }
    # The overlay itself is untouched: the overrides live in a generated kustomization.
    rendered = (tmp_path / "work" / "learnflow.yaml").read_text()
    assert "course-agent:content-tag" not in rendered
    assert "user-progress:content-tag" not in rendered


def test_render_without_overrides_keeps_the_overlays_images(
    real_kubectl_bin: Path, tmp_path: Path
) -> None:
    result = render(real_kubectl_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "learnflow/course-agent:content-tag" in rendered_images(tmp_path)


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ("learnflow/course-agnet=learnflow/course-agent:abc", "matched no image"),
        ("learnflow/course-agent", "is not name=newName:newTag"),
        ("learnflow/course-agent=learnflow/course-agent", "is not name=newName:newTag"),
        ("postgres=localhost:5000/postgres", "is not name=newName:newTag"),
    ],
    ids=["typo", "no-target", "no-tag", "port-is-not-a-tag"],
)
def test_render_refuses_an_override_that_would_not_apply(
    override: str, problem: str, real_kubectl_bin: Path, tmp_path: Path
) -> None:
    result = render(real_kubectl_bin, tmp_path, override)
    assert result.returncode == 1
    assert problem in result.stderr
    assert "FAIL  render" in result.stdout


# --- secrets ----------------------------------------------------------------------------------


def created_secrets(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Secret -> key -> value, as the stub kubectl received them."""
    created: dict[str, dict[str, str]] = {}
    for line in (tmp_path / "kubectl.log").read_text().splitlines():
        if line.startswith("secret "):
            _, name, pair = line.split(" ", 2)
            key, _, value = pair.partition("=")
            created.setdefault(name, {})[key] = value.replace("\\n", "\n")
    return created


def test_fresh_secrets_give_the_apps_their_own_role(stub_bin: Path, tmp_path: Path) -> None:
    result = run_library('step "secrets" create_secrets\n', stub_bin, tmp_path)
    assert result.returncode == 0, result.stderr
    secrets = created_secrets(tmp_path)
    credentials = secrets["postgres-credentials"]
    assert set(credentials) == {"POSTGRES_PASSWORD", "LEARNFLOW_APP_PASSWORD"}
    assert credentials["POSTGRES_PASSWORD"] != credentials["LEARNFLOW_APP_PASSWORD"]
    assert all(len(value) == 32 and value.isalnum() for value in credentials.values())
    assert secrets["learnflow-secrets"]["LEARNFLOW_PG_CONNECTION"] == (
        f"host=postgres.{NAMESPACE}.svc.cluster.local port=5432 user=learnflow "
        f"password={credentials['LEARNFLOW_APP_PASSWORD']} dbname=learnflow sslmode=disable"
    )
    assert "course-agent-llm" in (tmp_path / "kubectl.log").read_text()
    app_token, api_token = secrets["dapr-app-token"]["token"], secrets["dapr-api-token"]["token"]
    assert app_token != api_token
    assert all(len(token) == 32 and token.isalnum() for token in (app_token, api_token))
    signing_key = secrets["learnflow-dev-signing-key"]["SIGNING_KEY_PEM"]
    public_key = secrets["learnflow-auth-public"]["AUTH_PUBLIC_KEY"]
    assert signing_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert public_key.startswith("-----BEGIN PUBLIC KEY-----")
    # The values reach kubectl through pipes: no command line carries one.
    command_lines = [
        line
        for line in (tmp_path / "kubectl.log").read_text().splitlines()
        if line.startswith("kubectl ")
    ]
    assert not [line for line in command_lines for value in credentials.values() if value in line]
    assert any("--from-file=POSTGRES_PASSWORD=/dev/fd/" in line for line in command_lines)


def test_existing_credentials_are_kept(stub_bin: Path, tmp_path: Path) -> None:
    result = run_library(
        'step "secrets" create_secrets\n',
        stub_bin,
        tmp_path,
        STUB_SECRETS=(
            "postgres-credentials learnflow-secrets course-agent-llm dapr-app-token dapr-api-token "
            "learnflow-dev-signing-key"
        ),
        STUB_CREDENTIAL_KEYS='{"LEARNFLOW_APP_PASSWORD":"eA==","POSTGRES_PASSWORD":"eQ=="}',
        STUB_PVCS="data-postgres-0",
    )
    assert result.returncode == 0, result.stderr
    assert created_secrets(tmp_path) == {}


@pytest.mark.parametrize(
    ("existing", "problem"),
    [
        (
            {"STUB_PVCS": "data-postgres-0"},
            "learnflow-secrets or the PostgreSQL volume (pvc/data-postgres-0) exists without",
        ),
        ({"STUB_SECRETS": "learnflow-secrets"}, "exists without"),
        (
            {
                "STUB_SECRETS": "postgres-credentials",
                "STUB_CREDENTIAL_KEYS": '{"POSTGRES_PASSWORD":"eQ==","POSTGRES_USER":"eA=="}',
            },
            "postgres-credentials is from an earlier layout",
        ),
    ],
    ids=["volume-without-password", "connection-without-password", "superuser-layout"],
)
def test_a_database_whose_password_is_gone_is_not_given_a_new_one(
    existing: dict[str, str], problem: str, stub_bin: Path, tmp_path: Path
) -> None:
    result = run_library('step "secrets" create_secrets\n', stub_bin, tmp_path, **existing)
    assert result.returncode == 1
    assert problem in result.stderr
    assert "minikube-down.sh --keep-cluster" in result.stderr
    assert created_secrets(tmp_path) == {}


# --- services -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("infrastructure", "services", "restarted"),
    [
        # First deploy: everything created, nothing to restart.
        (
            "secret/learnflow-secrets created\ncomponent.dapr.io/statestore created\n",
            "deployment.apps/course-agent created\ndeployment.apps/user-progress created\n",
            [],
        ),
        # A Dapr resource changed, the images did not: sidecars must restart to read it.
        (
            "component.dapr.io/statestore configured\nsecret/course-agent-llm unchanged\n",
            "deployment.apps/course-agent unchanged\ndeployment.apps/user-progress unchanged\n",
            ["course-agent", "user-progress"],
        ),
        # A Secret changed, one image did: only the unchanged Deployment is restarted.
        (
            "secret/course-agent-llm configured\n",
            "deployment.apps/course-agent unchanged\ndeployment.apps/user-progress configured\n",
            ["course-agent"],
        ),
        # Nothing changed: nothing restarts.
        (
            "component.dapr.io/statestore unchanged\n",
            "deployment.apps/course-agent unchanged\ndeployment.apps/user-progress unchanged\n",
            [],
        ),
    ],
    ids=["first-deploy", "dapr-resource-changed", "secret-and-image-changed", "nothing-changed"],
)
def test_services_restart_only_when_what_their_sidecars_read_changed(
    infrastructure: str, services: str, restarted: list[str], stub_bin: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "infrastructure-applied.txt").write_text(infrastructure)
    result = run_library(
        'step "services" deploy_services\n',
        stub_bin,
        tmp_path,
        DEPLOY_WORK=str(work),
        STUB_APPLY_OUTPUT=services,
    )
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "kubectl.log").read_text()
    assert [
        app for app in ("course-agent", "user-progress") if f"restart deployment/{app}" in log
    ] == (restarted)
    assert "rollout status deployment/course-agent" in log
    assert "rollout status deployment/user-progress" in log


# --- the topics Job -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "status", "message"),
    [
        ("SuccessCriteriaMet Complete", 0, "job kafka-topics complete"),
        ("FailureTarget Failed", 1, "job kafka-topics failed"),
    ],
)
def test_the_topics_job_wait_stops_on_complete_and_on_failure(
    conditions: str, status: int, message: str, stub_bin: Path, tmp_path: Path
) -> None:
    result = run_library(
        'step "topics" wait_for_job kafka-topics 120\n',
        stub_bin,
        tmp_path,
        STUB_JOB_CONDITIONS=conditions,
    )
    assert result.returncode == status
    assert message in result.stderr
    if status:
        # At once, not after the timeout, and with what the Job's pods said.
        assert "Error: topic creation refused" in result.stderr
        assert "kafka-topics-x   0/1   Error" in result.stderr


def test_the_topics_job_wait_gives_up_with_the_logs(stub_bin: Path, tmp_path: Path) -> None:
    result = run_library(
        'step "topics" wait_for_job kafka-topics 0\n', stub_bin, tmp_path, STUB_JOB_CONDITIONS=""
    )
    assert result.returncode == 1
    assert "job kafka-topics not complete after 0s" in result.stderr
    assert "Error: topic creation refused" in result.stderr


# --- check_placement: both sides ----------------------------------------------------------------


def both_apps_table(*apps: str) -> dict[str, Any]:
    types = {"course-agent": "LessonGenerationActor", "user-progress": "LearnerProgressActor"}
    hosts = [
        {"name": f"10.244.0.{i}:50002", "id": app, "entities": [types[app]]}
        for i, app in enumerate(apps)
    ]
    return {"tables": {NAMESPACE: {"version": 2, "hosts": hosts}}}


def connected_sidecar(*_: Any) -> tuple[int, Any]:
    return 200, {
        "id": "any",
        "actorRuntime": {
            "hostReady": True,
            "placement": "placement: connected",
            "activeActors": [{"type": "LessonGenerationActor"}, {"type": "LearnerProgressActor"}],
        },
    }


def check_placement(
    table: dict[str, Any],
    sidecar: Responder,
    serve: Callable[[Responder], int],
    tmp_path: Path,
    bin_dir: Path,
) -> subprocess.CompletedProcess[str]:
    table_file = tmp_path / "placement-state.json"
    table_file.write_text(json.dumps(table))
    return run_library(
        'step "placement" check_placement\n',
        bin_dir,
        tmp_path,
        STUB_PLACEMENT_TABLE=str(table_file),
        DAPR_HTTP_PORT=str(serve(sidecar)),
        PLACEMENT_WAIT_SECONDS="0",
        PLACEMENT_TABLE_WAIT_SECONDS="0",
    )


def test_check_placement_passes_when_sidecars_and_table_agree(
    sidecar_api: Callable[[Responder], int], stub_bin: Path, tmp_path: Path
) -> None:
    result = check_placement(
        both_apps_table("course-agent", "user-progress"),
        connected_sidecar,
        sidecar_api,
        tmp_path,
        stub_bin,
    )
    assert result.returncode == 0, result.stderr
    assert "PASS  placement" in result.stdout
    assert "lists every app" in result.stderr
    log = (tmp_path / "kubectl.log").read_text()
    assert (
        "get --raw /api/v1/namespaces/dapr-system/pods/dapr-placement-server-0:8080/proxy/"
        "placement/state" in log
    )
    # The table is checked in the course-agent container, against both apps' declared types.
    assert "exec -i course-agent-pod-1 --container course-agent -- python -c" in log


def test_check_placement_fails_when_placements_table_lacks_an_app(
    sidecar_api: Callable[[Responder], int], stub_bin: Path, tmp_path: Path
) -> None:
    result = check_placement(
        both_apps_table("course-agent"), connected_sidecar, sidecar_api, tmp_path, stub_bin
    )
    assert result.returncode == 1
    assert "user-progress is not in placement's table" in result.stderr
    assert "FAIL  placement" in result.stdout


def test_check_placement_fails_when_a_sidecar_is_not_connected(
    sidecar_api: Callable[[Responder], int], stub_bin: Path, tmp_path: Path
) -> None:
    def disconnected(*_: Any) -> tuple[int, Any]:
        return 200, {"actorRuntime": {"placement": "placement: disconnected"}}

    result = check_placement(
        both_apps_table("course-agent", "user-progress"),
        disconnected,
        sidecar_api,
        tmp_path,
        stub_bin,
    )
    assert result.returncode == 1
    assert "not 'placement: connected'" in result.stderr


def test_the_library_defines_its_contract_and_leaves_the_callers_log_and_die_alone() -> None:
    functions = subprocess.run(
        ["bash", "-c", f"source {LIBRARY}; declare -F | cut -d' ' -f3; deploy_steps_cleanup"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "log" not in functions
    assert "die" not in functions
    contract = {
        "step",
        "print_summary",
        "kc",
        "service_pod",
        "install_dapr",
        "render_overlay",
        "deploy_infrastructure",
        "deploy_services",
        "check_sidecars",
        "check_placement",
        "smoke_test",
        "run_deploy_steps",
        "deploy_steps_cleanup",
    }
    assert contract <= set(functions)
