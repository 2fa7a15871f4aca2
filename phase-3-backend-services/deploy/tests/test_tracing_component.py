"""The optional tracing component (components/tracing, used by overlays/minikube-tracing):
Jaeger in the cluster, the sidecars' Configuration and the apps' OTEL_* variables pointed at
its Service ports, ingress to it allowed from the services only, all valid for Kubernetes."""

from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .conftest import DEPLOY_DIR, _project_tool

NAMESPACE = "phase-3-backend-services"
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def traced() -> list[Manifest]:
    result = subprocess.run(
        [_project_tool("kubectl"), "kustomize", DEPLOY_DIR / "overlays" / "minikube-tracing"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _service_port(docs: list[Manifest], name: str) -> int:
    ports = _one(docs, "Service", "jaeger")["spec"]["ports"]
    (port,) = [p["port"] for p in ports if p["name"] == name]
    return int(port)


def test_sidecars_send_every_trace_to_jaegers_otlp_grpc_port(traced: list[Manifest]) -> None:
    tracing = _one(traced, "Configuration", "learnflow-config")["spec"]["tracing"]

    assert tracing["samplingRate"] == "1"
    assert tracing["otel"]["protocol"] == "grpc"
    assert tracing["otel"]["endpointAddress"] == (
        f"jaeger.{NAMESPACE}.svc.cluster.local:{_service_port(traced, 'otlp-grpc')}"
    )


def test_apps_export_to_jaegers_otlp_http_port_under_their_own_name(
    traced: list[Manifest],
) -> None:
    apps = [
        d
        for d in traced
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "app"
    ]
    endpoint = f"http://jaeger.{NAMESPACE}.svc.cluster.local:{_service_port(traced, 'otlp-http')}"

    assert {a["metadata"]["name"] for a in apps} >= {"course-agent", "user-progress"}
    for app in apps:
        env = {e["name"]: e for e in app["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == endpoint
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "1"
        name = env["OTEL_SERVICE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert name == "metadata.labels['app.kubernetes.io/name']"


def test_jaeger_runs_unprivileged_and_its_service_targets_its_ports(
    traced: list[Manifest],
) -> None:
    pod = _one(traced, "Deployment", "jaeger")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for port in _one(traced, "Service", "jaeger")["spec"]["ports"]:
        assert port["targetPort"] in named_ports


def test_only_the_services_pods_may_send_spans(traced: list[Manifest]) -> None:
    policy = _one(traced, "NetworkPolicy", "jaeger-from-services")["spec"]
    (rule,) = policy["ingress"]

    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "jaeger"}
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "app"}}}
    ]
    assert {p["port"] for p in rule["ports"]} == {
        _service_port(traced, "otlp-grpc"),
        _service_port(traced, "otlp-http"),
    }


def test_the_traced_overlay_is_valid_kubernetes(traced: list[Manifest]) -> None:
    core = [d for d in traced if "dapr.io" not in d["apiVersion"]]
    failures = []
    for doc in core:
        try:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        except kubernetes_validate.ValidationError as invalid:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {invalid.message}")

    assert not failures, "\n".join(failures)
