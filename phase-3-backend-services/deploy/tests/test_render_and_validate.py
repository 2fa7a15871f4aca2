"""The minikube overlay renders, every object in it is valid for the Kubernetes versions we
target, every Dapr resource is valid for the pinned Dapr CRDs, and the policy checks pass."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
NAMESPACE = "phase-3-backend-services"
Manifest = dict[str, Any]


def minikube_kubernetes_version() -> str:
    """The Kubernetes version minikube-up.sh starts Minikube with."""
    script = (DEPLOY_DIR / "minikube-up.sh").read_text()
    found = re.search(r"LEARNFLOW_KUBERNETES_VERSION:-v(\d+\.\d+\.\d+)", script)
    assert found, "minikube-up.sh pins no Kubernetes version"
    return found.group(1)


# The version Minikube runs, and the newest one kubernetes-validate knows.
KUBERNETES_VERSIONS = sorted({minikube_kubernetes_version(), kubernetes_validate.latest_version()})


def test_everything_lands_in_the_phase_namespace(rendered_overlay: list[Manifest]) -> None:
    namespaces = [doc for doc in rendered_overlay if doc["kind"] == "Namespace"]
    assert [ns["metadata"]["name"] for ns in namespaces] == [NAMESPACE]
    stray = [
        f"{doc['kind']}/{doc['metadata']['name']}"
        for doc in rendered_overlay
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    assert not stray


def test_overlay_holds_services_infrastructure_and_dapr_resources(
    rendered_overlay: list[Manifest],
) -> None:
    present = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered_overlay}
    assert {
        ("Deployment", "course-agent"),
        ("Service", "course-agent"),
        ("Deployment", "user-progress"),
        ("Service", "user-progress"),
        ("StatefulSet", "postgres"),
        ("Service", "postgres"),
        ("StatefulSet", "kafka"),
        ("Service", "kafka"),
        ("Job", "kafka-topics"),
        ("Component", "statestore"),
        ("Component", "pubsub"),
        ("Configuration", "learnflow-config"),
        ("Resiliency", "learnflow-resiliency"),
        ("Subscription", "user-progress-lesson-generated"),
    } <= present


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_pass_strict_schema_validation(
    version: str, core_objects: list[Manifest]
) -> None:
    failures = []
    for doc in core_objects:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as invalid:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {invalid.message}")
    assert not failures, "\n".join(failures)


def test_strict_validation_rejects_a_misspelt_field(core_objects: list[Manifest]) -> None:
    deployment = copy.deepcopy(next(doc for doc in core_objects if doc["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def undeclared_fields(value: Any, schema: Manifest, path: str = "") -> list[str]:
    """Fields the CRD schema does not declare. The API server would drop them silently (or
    reject them under strict field validation), so they are always mistakes."""
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return []
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is None:
            if isinstance(extra, dict):
                return [
                    f for k, v in value.items() for f in undeclared_fields(v, extra, f"{path}.{k}")
                ]
            return []  # a free-form object, such as metadata
        found = []
        for key, child in value.items():
            if key in properties:
                found += undeclared_fields(child, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += undeclared_fields(child, extra, f"{path}.{key}")
            else:
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [
            f
            for i, item in enumerate(value)
            for f in undeclared_fields(item, schema["items"], f"{path}[{i}]")
        ]
    return []


def crd_problems(doc: Manifest, schemas: dict[tuple[str, str], Manifest]) -> list[str]:
    schema = schemas.get((doc["apiVersion"], doc["kind"]))
    if schema is None:
        return [f"{doc['apiVersion']} {doc['kind']} is not served by the pinned Dapr CRDs"]
    problems = [error.message for error in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return problems + [f"undeclared field {field}" for field in undeclared_fields(doc, schema)]


def test_cluster_dapr_resources_match_the_pinned_crds(
    cluster_dapr_resources: list[Manifest], dapr_crd_schemas: dict[tuple[str, str], Manifest]
) -> None:
    listed = yaml.safe_load((PHASE_DIR / "components" / "Kustomization").read_text())["resources"]
    assert len(cluster_dapr_resources) == len(listed)
    problems = {
        doc["metadata"]["name"]: crd_problems(doc, dapr_crd_schemas)
        for doc in cluster_dapr_resources
    }
    assert not any(problems.values()), problems


def test_local_dapr_resources_match_the_pinned_crds(
    local_dapr_resources: list[Manifest], dapr_crd_schemas: dict[tuple[str, str], Manifest]
) -> None:
    problems = {
        doc["metadata"]["name"]: crd_problems(doc, dapr_crd_schemas) for doc in local_dapr_resources
    }
    assert not any(problems.values()), problems


def test_crd_check_catches_a_misplaced_field_and_a_wrong_type(
    cluster_dapr_resources: list[Manifest], dapr_crd_schemas: dict[tuple[str, str], Manifest]
) -> None:
    component = copy.deepcopy(next(d for d in cluster_dapr_resources if d["kind"] == "Component"))
    component["spec"]["scopes"] = component.pop("scopes")
    component["spec"]["version"] = 2
    problems = crd_problems(component, dapr_crd_schemas)
    assert any("spec.scopes" in p for p in problems), problems
    assert any("is not of type 'string'" in p for p in problems), problems


def checkov_config() -> Manifest:
    loaded: Manifest = yaml.safe_load((DEPLOY_DIR / "checkov.yaml").read_text())
    return loaded


def test_every_checkov_skip_is_justified() -> None:
    skips = checkov_config()["skip-check"]
    text = (DEPLOY_DIR / "checkov.yaml").read_text()
    for check in skips:
        line = next(line for line in text.splitlines() if re.match(rf"\s*- {check}\b", line))
        _, _, justification = line.partition("#")
        assert len(justification.split()) >= 8, f"{check} is skipped without a justification"


def test_policy_checks_pass_offline(
    rendered_overlay_file: Path, project_tool: Callable[[str], Path]
) -> None:
    result = subprocess.run(
        [
            project_tool("checkov"),
            "--config-file",
            DEPLOY_DIR / "checkov.yaml",
            "--file",
            rendered_overlay_file,
            "--file",
            PHASE_DIR / "course-agent" / "Dockerfile",
            "--file",
            PHASE_DIR / "user-progress" / "Dockerfile",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {report["check_type"] for report in reports} == {"kubernetes", "dockerfile"}
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for report in reports
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert all(report["summary"]["passed"] > 0 for report in reports)
    assert result.returncode == 0, result.stderr
