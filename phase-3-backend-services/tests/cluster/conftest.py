"""The sandbox cluster as the tests see it: kubectl, HTTP to Services and SQL/Kafka readers,
all run inside the sandbox's own network namespace."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from learnflow_stack.dev_auth import DevSigningKey
from learnflow_stack.process import ManagedProcess

PHASE_DIR = Path(__file__).resolve().parents[2]
SANDBOX_UP = PHASE_DIR / "deploy" / "cluster" / "sandbox-up.sh"
NAMESPACE = "phase-3-backend-services"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster" in str(item.path):
            item.add_marker(pytest.mark.cluster)


def read_state(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


@dataclass
class Sandbox:
    state: dict[str, str]
    launcher: ManagedProcess

    @property
    def run_dir(self) -> Path:
        return Path(self.state["RUN"])

    @property
    def holder_pid(self) -> int:
        return int(self.state["HOLDER_PID"])

    def in_netns(self, *argv: str, stdin: str | None = None, timeout: float = 120) -> str:
        """Runs a host command inside the sandbox's network namespace; returns its stdout."""
        result = subprocess.run(
            ["nsenter", "--target", str(self.holder_pid), "--net", "--", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise subprocess.CalledProcessError(
                result.returncode, argv, result.stdout, result.stderr
            )
        return result.stdout

    def kubectl(
        self, *args: str, namespaced: bool = True, stdin: str | None = None, timeout: float = 120
    ) -> str:
        scope = ["--namespace", NAMESPACE] if namespaced else []
        kubectl = [f"{self.state['BIN']}/kubectl", "--kubeconfig", self.state["KUBECONFIG"]]
        return self.in_netns(*kubectl, *scope, *args, stdin=stdin, timeout=timeout)

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def signing_key(self) -> DevSigningKey:
        """The deploy's development key for end-user tokens (Secret learnflow-dev-signing-key)."""
        encoded = self.kubectl(
            "get", "secret", "learnflow-dev-signing-key", "-o", "jsonpath={.data.SIGNING_KEY_PEM}"
        )
        return DevSigningKey(base64.b64decode(encoded))

    def http(
        self,
        method: str,
        service: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        as_learner: str,
    ) -> tuple[int, Any]:
        """Calls a Service's ClusterIP from the node, as a client in the cluster network would,
        with ``as_learner``'s bearer token (given to curl on stdin, not on its command line)."""
        ip = self.kubectl("get", "service", service, "-o", "jsonpath={.spec.clusterIP}")
        argv = ["curl", "-s", "--max-time", "60", "-X", method, "-w", "\n%{http_code}", "-H", "@-"]
        if body is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", json.dumps(body)]
        authorization = f"authorization: Bearer {self.signing_key().token(as_learner)}\n"
        text, _, status = self.in_netns(
            *argv, f"http://{ip}:8000{path}", stdin=authorization
        ).rpartition("\n")
        try:
            return int(status), json.loads(text)
        except json.JSONDecodeError:
            return int(status), text

    def psql(self, sql: str, variables: dict[str, str]) -> list[str]:
        """Runs SQL in the cluster's PostgreSQL pod as the app's role; one line per row."""
        settings = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
        command = (
            'PGPASSWORD="$(cat /run/secrets/postgres/LEARNFLOW_APP_PASSWORD)" psql -h 127.0.0.1 '
            '-U learnflow -d learnflow -tA -v ON_ERROR_STOP=1 "$@"'
        )
        out = self.kubectl(
            "exec",
            "-i",
            "postgres-0",
            "-c",
            "postgres",
            "--",
            "sh",
            "-c",
            command,
            "psql",
            *settings,
            stdin=sql,
        )
        return [line for line in out.splitlines() if line]

    def kafka_messages(self, topic: str) -> str:
        """Everything on ``topic``, read by a console consumer of the test's own (broker pod)."""
        return self.kubectl(
            "exec",
            "kafka-0",
            "-c",
            "kafka",
            "--",
            "env",
            "KAFKA_HEAP_OPTS=-Xmx128m",
            "/opt/kafka/bin/kafka-console-consumer.sh",
            "--bootstrap-server",
            "localhost:9092",
            "--topic",
            topic,
            "--from-beginning",
            "--timeout-ms",
            "15000",
            timeout=90,
        )
