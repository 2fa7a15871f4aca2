"""No manifest, Dapr component or Dockerfile holds a literal secret: secrets are only ever
referenced (secretKeyRef, Secret volumes), and the deploy steps create them at deploy time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
REPO_ROOT = PHASE_DIR.parent

# Names whose value is a credential.
SECRET_NAME = re.compile(
    r"passw(or)?d|(^|_)pass($|_)|secret|token|api_?key|credential|private_?key|"
    r"connection_?string|_PG_CONNECTION$",
    re.IGNORECASE,
)
# Keys whose value is the name of a secret (a reference), not its content.
REFERENCE_KEYS = {
    "secretName",
    "secretStore",
    "dapr.io/app-token-secret",
    "dapr.io/api-token-secret",
}
# Values that carry a credential whatever their name.
SECRET_VALUE = re.compile(
    r"password\s*=\s*[^\s%$]|"  # key=value connection strings ("%s"/"$VAR" are placeholders)
    r"://[^/\s:@]+:[^/\s@]+@|"  # user:password@ in a URL
    r"\bsk-[A-Za-z0-9_-]{20,}|"  # OpenAI-style API keys
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|"
    r"\bAKIA[0-9A-Z]{16}\b",
    re.IGNORECASE,
)


def is_path(value: str) -> bool:
    """A filesystem path names where a secret or cache lives; it is not one."""
    return value.startswith("/")


def is_flag(value: str) -> bool:
    """A boolean switches a secret feature on or off (dapr.io/disable-builtin-k8s-secret-store);
    it is not one."""
    return value.lower() in {"true", "false"}


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from strings(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from strings(child, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def named_values(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(where, name, literal value) of every name/value pair: env entries, Dapr component
    metadata items, ConfigMap data and plain mapping keys."""
    if isinstance(value, dict):
        if isinstance(value.get("name"), str) and isinstance(value.get("value"), str):
            yield path, value["name"], value["value"]
        for key, child in value.items():
            if isinstance(child, str) and key not in {"name", "value", *REFERENCE_KEYS}:
                yield f"{path}.{key}", key, child
            yield from named_values(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            # KEY=value items, as in kustomize generator literals.
            if isinstance(child, str) and re.fullmatch(r"[A-Za-z_][\w.-]*=.*", child):
                name, _, literal = child.partition("=")
                yield f"{path}[{index}]", name, literal
            yield from named_values(child, f"{path}[{index}]")


def literal_secrets(doc: Any, source: str) -> list[str]:
    """Every place ``doc`` spells out a secret instead of referencing one."""
    found = []
    if (
        isinstance(doc, dict)
        and doc.get("kind") == "Secret"
        and (doc.get("data") or doc.get("stringData"))
    ):
        found.append(f"{source}: Secret {doc['metadata']['name']} carries data")
    if isinstance(doc, dict) and doc.get("secretGenerator"):
        found.append(f"{source}: a kustomize secretGenerator writes secrets into the tree")
    for where, name, value in named_values(doc, source):
        if SECRET_NAME.search(name) and value and not is_path(value) and not is_flag(value):
            found.append(f"{where}: {name} is set to a literal value")
    for where, value in strings(doc, source):
        if SECRET_VALUE.search(value):
            found.append(f"{where}: value looks like a credential")
    return found


def dockerfile_secrets(text: str, source: str) -> list[str]:
    found = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() in {"ENV", "ARG"}:
            for pair in rest.split():
                name, _, value = pair.partition("=")
                if SECRET_NAME.search(name) and value and not is_path(value):
                    found.append(f"{source}: {keyword} {name} is set to a literal value")
        if SECRET_VALUE.search(line):
            found.append(f"{source}: {line.strip()[:60]} looks like a credential")
    return found


def manifest_files() -> list[Path]:
    return sorted(
        [
            *DEPLOY_DIR.rglob("*.yaml"),
            *DEPLOY_DIR.rglob("*.yml"),
            *(PHASE_DIR / "components").glob("*.yaml"),
            PHASE_DIR / "components" / "Kustomization",
        ]
    )


def test_there_are_manifests_to_scan() -> None:
    files = {path.relative_to(PHASE_DIR).as_posix() for path in manifest_files()}
    assert {
        "components/statestore.yaml",
        "components/Kustomization",
        "deploy/base/dapr-cluster/statestore.yaml",
        "deploy/base/infra/postgres.yaml",
        "deploy/base/kustomization.yaml",
    } <= files


@pytest.mark.parametrize(
    "path", manifest_files(), ids=lambda p: p.relative_to(PHASE_DIR).as_posix()
)
def test_manifest_and_component_files_hold_no_literal_secret(path: Path) -> None:
    found = [
        problem
        for index, doc in enumerate(yaml.safe_load_all(path.read_text()))
        for problem in literal_secrets(doc, f"{path.name}#{index}")
    ]
    assert not found, "\n".join(found)


def test_rendered_overlay_holds_no_literal_secret(rendered_overlay: list[dict[str, Any]]) -> None:
    # Generators and patches could add values no single source file shows.
    found = [p for doc in rendered_overlay for p in literal_secrets(doc, doc["kind"])]
    assert not any(doc["kind"] == "Secret" for doc in rendered_overlay)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("service", ["course-agent", "user-progress"])
def test_dockerfiles_hold_no_literal_secret(service: str) -> None:
    path = PHASE_DIR / service / "Dockerfile"
    assert not dockerfile_secrets(path.read_text(), path.name)


PLANTED = {
    "secret with data": {
        "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": "hunter2"},
    },
    "env password": {"env": [{"name": "POSTGRES_PASSWORD", "value": "hunter2"}]},
    "env api key": {"env": [{"name": "COURSE_AGENT_LLM_API_KEY", "value": "abc"}]},
    "component connection string": {
        "spec": {
            "metadata": [{"name": "connectionString", "value": "host=db user=app password=hunter2"}]
        }
    },
    "config map token": {"kind": "ConfigMap", "data": {"GITHUB_TOKEN": "ghp_x"}},
    "url with password": {
        "env": [{"name": "DATABASE_URL", "value": "postgres://app:hunter2@db:5432/app"}]
    },
    "openai key under an innocent name": {"data": {"notes": "sk-" + "a" * 40}},
    "generator literal": {"configMapGenerator": [{"literals": ["DB_PASSWORD=hunter2"]}]},
    "secret generator": {"secretGenerator": [{"name": "db", "envs": ["db.env"]}]},
}


@pytest.mark.parametrize("doc", PLANTED.values(), ids=PLANTED.keys())
def test_detector_finds_planted_secrets(doc: dict[str, Any]) -> None:
    assert literal_secrets(doc, "planted")


def test_detector_accepts_references_paths_and_placeholders() -> None:
    referenced = {
        "spec": {
            "metadata": [{"name": "connectionString", "secretKeyRef": {"name": "s", "key": "k"}}]
        },
        "env": [
            {"name": "POSTGRES_PASSWORD_FILE", "value": "/run/secrets/postgres/POSTGRES_PASSWORD"},
            {"name": "TIKTOKEN_CACHE_DIR", "value": "/tmp/tiktoken-cache"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        "volumes": [{"name": "credentials", "secret": {"secretName": "postgres-credentials"}}],
        "auth": {"secretStore": "kubernetes"},
        "annotations": {"dapr.io/disable-builtin-k8s-secret-store": "true"},
        "literals": ["COURSE_AGENT_LLM_PROVIDER=replay", "KAFKA_PROCESS_ROLES=broker"],
    }
    assert literal_secrets(referenced, "references") == []
    assert dockerfile_secrets("ARG TIKTOKEN_CACHE_DIR=/tmp/t\nENV PYTHONUNBUFFERED=1\n", "x") == []
    assert dockerfile_secrets("ENV PASSWORD=hunter2\n", "x")
