"""Everything the manifests, the Dapr resources, the Dockerfiles, the deploy steps
(lib/deploy-steps.sh) and the code name must exist and agree: selectors and ports, app ids,
components, topics, secrets, database roles, network policies, settings and actor types.
Names come from learnflow_contracts.names and components/*.yaml, so drift on either side
fails here."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from learnflow_contracts import names

from .conftest import SERVICES

DEPLOY_DIR = Path(__file__).resolve().parents[1]
PHASE_DIR = DEPLOY_DIR.parent
NAMESPACE = "phase-3-backend-services"
APP_IDS = set(SERVICES)


def python_package(app: str) -> str:
    return app.replace("-", "_")


Manifest = dict[str, Any]
Stages = list[list[tuple[str, str]]]


def of_kind(docs: list[Manifest], *kinds: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] in kinds]


def named(docs: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> list[Manifest]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def service_deployments(docs: list[Manifest]) -> list[Manifest]:
    return [
        d
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "app"
    ]


def dapr_annotation(deployment: Manifest, key: str) -> str:
    value: str = deployment["spec"]["template"]["metadata"]["annotations"][f"dapr.io/{key}"]
    return value


def metadata_items(component: Manifest) -> dict[str, Any]:
    return {item["name"]: item for item in component["spec"]["metadata"]}


def deploy_steps() -> str:
    return (DEPLOY_DIR / "lib" / "deploy-steps.sh").read_text()


def script_assignment(name: str) -> str:
    found = re.search(rf"^{name}=(\S+)$", deploy_steps(), re.MULTILINE)
    assert found, f"lib/deploy-steps.sh does not set {name}"
    return found.group(1)


def secrets_created_by_the_deploy_steps() -> dict[str, set[str]]:
    """Secret name -> keys, from the `kc create secret generic` calls of the deploy steps."""
    created: dict[str, set[str]] = {}
    for command in deploy_steps().replace("\\\n", " ").splitlines():
        call = re.search(r"create secret generic (\S+)(.*)", command)
        if call:
            created[call.group(1)] = set(re.findall(r"--from-file=(\w+)=", call.group(2)))
    return created


# --- workloads, services, ports -------------------------------------------------------------


def test_workload_selectors_match_their_pod_labels(rendered_overlay: list[Manifest]) -> None:
    for workload in of_kind(rendered_overlay, "Deployment", "StatefulSet"):
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), workload["metadata"]["name"]


def test_every_service_selects_one_workload_on_a_declared_port(
    rendered_overlay: list[Manifest],
) -> None:
    workloads = of_kind(rendered_overlay, "Deployment", "StatefulSet")
    for service in of_kind(rendered_overlay, "Service"):
        selector = service["spec"]["selector"]
        (target,) = [
            w
            for w in workloads
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        declared = {
            key
            for container in pod_spec(target)["containers"]
            for port in container.get("ports", [])
            for key in (port["containerPort"], port.get("name"))
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, f"{service['metadata']['name']} {port}"


def test_services_listen_where_dapr_the_service_and_the_image_expect(
    rendered_overlay: list[Manifest], dockerfiles: dict[str, Stages]
) -> None:
    deployments = service_deployments(rendered_overlay)
    assert {d["metadata"]["name"] for d in deployments} == APP_IDS
    for deployment in deployments:
        app = deployment["metadata"]["name"]
        (container,) = pod_spec(deployment)["containers"]
        (port,) = container["ports"]
        runtime = dockerfiles[app][-1]
        cmd = json.loads(runtime[-1][1])
        exposed = [args for keyword, args in runtime if keyword == "EXPOSE"]
        service_port = named(rendered_overlay, "Service", app)["spec"]["ports"][0]
        assert (
            int(dapr_annotation(deployment, "app-port"))
            == port["containerPort"]
            == int(cmd[cmd.index("--port") + 1])
            == int(exposed[0])
            == service_port["port"]
        )
        assert service_port["targetPort"] == port["name"]
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        assert {kind: probe["path"] for kind, probe in probes.items()} == {
            "startupProbe": "/healthz",
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
        }
        assert all(probe["port"] == port["name"] for probe in probes.values())


def test_service_images_are_built_from_the_service_dockerfiles(
    rendered_overlay: list[Manifest],
) -> None:
    # The deploy builds learnflow/<service>:<content tag> from <service>/Dockerfile; the
    # overlay's tag is a placeholder the deploy replaces (IMAGE_OVERRIDES).
    for deployment in service_deployments(rendered_overlay):
        (container,) = pod_spec(deployment)["containers"]
        repository, _, tag = container["image"].partition(":")
        assert repository == f"learnflow/{deployment['metadata']['name']}"
        assert tag == "content-tag"
        assert (PHASE_DIR / deployment["metadata"]["name"] / "Dockerfile").is_file()
        assert container["imagePullPolicy"] == "Never", "images exist only inside the cluster"


def test_pods_are_non_root_read_only_and_cannot_escalate(
    rendered_overlay: list[Manifest],
) -> None:
    for workload in of_kind(rendered_overlay, "Deployment", "StatefulSet", "Job"):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        for container in containers(workload):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= container["resources"].keys()


# --- Dapr: app ids, configuration, actor types ---------------------------------------------


def test_app_ids_are_unique_and_those_of_the_contracts_and_the_launcher(
    rendered_overlay: list[Manifest],
) -> None:
    deployments = service_deployments(rendered_overlay)
    app_ids = [dapr_annotation(d, "app-id") for d in deployments]
    assert sorted(app_ids) == sorted(APP_IDS)
    assert {names.COURSE_AGENT_APP_ID, names.USER_PROGRESS_APP_ID} <= APP_IDS
    for deployment in deployments:
        # The deploy steps find a service's pod and container by its Deployment name.
        app = deployment["metadata"]["name"]
        (container,) = pod_spec(deployment)["containers"]
        assert dapr_annotation(deployment, "app-id") == app == container["name"]
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == app
        assert dapr_annotation(deployment, "enabled") == "true"
        for key in ("config", "enable-metrics", "metrics-port", "log-level"):
            assert dapr_annotation(deployment, key)


def test_sidecars_use_the_cluster_configuration(rendered_overlay: list[Manifest]) -> None:
    configurations = {d["metadata"]["name"] for d in of_kind(rendered_overlay, "Configuration")}
    assert configurations == {names.DAPR_CONFIGURATION}
    for deployment in service_deployments(rendered_overlay):
        assert dapr_annotation(deployment, "config") in configurations


def test_declared_actor_types_are_the_ones_each_service_registers(
    rendered_overlay: list[Manifest],
) -> None:
    from dapr.actor import Actor

    for deployment in service_deployments(rendered_overlay):
        app = deployment["metadata"]["name"]
        annotations = deployment["metadata"].get("annotations", {})
        annotation = annotations.get("learnflow.dev/actor-types", "")
        declared = [name for name in annotation.split(",") if name]
        wiring = importlib.import_module(f"{python_package(app)}.wiring")
        registered = {
            name
            for name, value in vars(wiring).items()
            if isinstance(value, type) and issubclass(value, Actor) and value is not Actor
        }
        assert set(declared) == registered, app


def test_sidecars_run_without_the_builtin_kubernetes_secret_store(
    rendered_overlay: list[Manifest], cluster_dapr_resources: list[Manifest]
) -> None:
    # No ServiceAccount token in the pods: daprd 1.18's built-in "kubernetes" secret store
    # could not start and daprd would exit (dapr/dapr#7682), so it is disabled...
    for deployment in service_deployments(rendered_overlay):
        spec = pod_spec(deployment)
        account = named(rendered_overlay, "ServiceAccount", spec["serviceAccountName"])
        assert spec["automountServiceAccountToken"] is False
        assert account["automountServiceAccountToken"] is False
        assert dapr_annotation(deployment, "disable-builtin-k8s-secret-store") == "true"
    # ...and every secretKeyRef names the "kubernetes" store, which the operator resolves
    # before the component reaches the sidecar (pkg/operator/api/components.go).
    for component in of_kind(cluster_dapr_resources, "Component"):
        if any("secretKeyRef" in item for item in component["spec"]["metadata"]):
            assert component.get("auth", {}).get("secretStore", "kubernetes") == "kubernetes"


# --- Dapr resources: the same names and semantics as the local stack -----------------------


def is_secret_store(doc: Manifest) -> bool:
    component_type: str = doc["spec"]["type"] if doc["kind"] == "Component" else ""
    return component_type.startswith("secretstores.")


def test_components_are_those_of_the_local_stack_and_the_contracts(
    cluster_dapr_resources: list[Manifest], local_dapr_resources: list[Manifest]
) -> None:
    # Locally secrets come from a secretstores.local.env component; in the cluster from Dapr's
    # built-in "kubernetes" secret store, which needs no Component.
    local = {
        d["metadata"]["name"]: d
        for d in of_kind(local_dapr_resources, "Component")
        if not is_secret_store(d)
    }
    cluster = {d["metadata"]["name"]: d for d in of_kind(cluster_dapr_resources, "Component")}
    assert cluster.keys() == local.keys() == {names.STATESTORE, names.PUBSUB}
    for name, component in cluster.items():
        assert component["spec"]["type"] == local[name]["spec"]["type"]
        assert component["spec"]["version"] == local[name]["spec"]["version"]
        assert component["scopes"] == local[name]["scopes"]
        assert set(component["scopes"]) <= APP_IDS


# The cluster's Dapr resources are components/ itself (components/Kustomization), patched by
# deploy/base/dapr-cluster/: these are the only paths the cluster render may differ at (besides
# the namespace and the labels Kustomize adds to everything). A new cluster difference needs
# both a patch and a line here.
CLUSTER_DIFFERENCES: dict[tuple[str, str], set[str]] = {
    # Kubernetes mode resolves app ids through cluster DNS; sqlite is for the local stack.
    ("Configuration", names.DAPR_CONFIGURATION): {
        "/spec/nameResolution/component",
        "/spec/nameResolution/version",
        "/spec/nameResolution/configuration/connectionString",
    },
    # The in-cluster Kafka (test_pubsub_brokers_are_the_in_cluster_kafka).
    ("Component", names.PUBSUB): {"/spec/metadata/0/value"},
    # The connection string from a Kubernetes Secret, resolved by the Dapr operator.
    ("Component", names.STATESTORE): {
        "/spec/metadata/0/secretKeyRef/name",
        "/spec/metadata/0/secretKeyRef/key",
        "/auth/secretStore",
    },
}


def flatten(node: Any, path: str = "") -> dict[str, Any]:
    """JSON-pointer path -> scalar of every leaf of ``node``."""
    if isinstance(node, dict):
        children: Any = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return {path: node}
    flat: dict[str, Any] = {}
    for key, child in children:
        flat.update(flatten(child, f"{path}/{key}"))
    return flat


def test_components_kustomization_lists_every_local_resource_but_the_secret_store(
    local_dapr_resources: list[Manifest],
) -> None:
    components = PHASE_DIR / "components"
    kustomization = yaml.safe_load((components / "Kustomization").read_text())
    secret_stores = {
        path.name
        for path in components.glob("*.yaml")
        if is_secret_store(yaml.safe_load(path.read_text()))
    }
    assert secret_stores == {"secretstore.yaml"}
    assert (
        set(kustomization["resources"])
        == {path.name for path in components.glob("*.yaml")} - secret_stores
    )
    # daprd loads every *.yaml / *.yml of its resources path as a resource: the Kustomization
    # must not look like one.
    assert not list(components.glob("kustomization.y*ml"))


def test_cluster_dapr_resources_differ_from_local_only_where_patched(
    cluster_dapr_resources: list[Manifest], local_dapr_resources: list[Manifest]
) -> None:
    local = {(d["kind"], d["metadata"]["name"]): d for d in local_dapr_resources}
    cluster = {(d["kind"], d["metadata"]["name"]): d for d in cluster_dapr_resources}
    # Everything but the local secret store reaches the cluster; only the patched ones differ.
    differences = {
        **{key: set() for key, doc in local.items() if not is_secret_store(doc)},
        **CLUSTER_DIFFERENCES,
    }
    assert cluster.keys() == differences.keys()
    for key, document in cluster.items():
        assert document["metadata"]["namespace"] == NAMESPACE
        assert document["metadata"]["labels"] == {"app.kubernetes.io/part-of": "learnflow"}
        ours, theirs = flatten(document), flatten(local[key])
        differing = {
            path
            for path in ours.keys() | theirs.keys()
            if ours.get(path, KeyError) != theirs.get(path, KeyError)
            and not path.startswith(("/metadata/namespace", "/metadata/labels/"))
        }
        assert differing == differences[key], key


def test_configuration_has_no_sqlite_name_resolution_in_the_cluster(
    cluster_dapr_resources: list[Manifest], local_dapr_resources: list[Manifest]
) -> None:
    cluster = named(cluster_dapr_resources, "Configuration", names.DAPR_CONFIGURATION)
    local = named(local_dapr_resources, "Configuration", names.DAPR_CONFIGURATION)
    assert "nameResolution" not in cluster["spec"]
    assert local["spec"]["nameResolution"]["component"] == "sqlite"


def test_pubsub_brokers_are_the_in_cluster_kafka(
    cluster_dapr_resources: list[Manifest], rendered_overlay: list[Manifest]
) -> None:
    brokers = metadata_items(named(cluster_dapr_resources, "Component", names.PUBSUB))["brokers"]
    kafka = named(rendered_overlay, "Service", "kafka")
    address = f"kafka.{NAMESPACE}.svc.cluster.local:{kafka['spec']['ports'][0]['port']}"
    assert brokers["value"] == address
    (settings,) = [
        c
        for c in of_kind(rendered_overlay, "ConfigMap")
        if c["metadata"]["name"].startswith("kafka-settings")
    ]
    assert settings["data"]["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{address}"
    job = named(rendered_overlay, "Job", "kafka-topics")
    env = {e["name"]: e.get("value") for e in pod_spec(job)["containers"][0]["env"]}
    assert env["BOOTSTRAP_SERVER"] == address


def test_statestore_reads_its_secret_from_kubernetes_in_the_cluster(
    cluster_dapr_resources: list[Manifest], local_dapr_resources: list[Manifest]
) -> None:
    cluster_store = named(cluster_dapr_resources, "Component", names.STATESTORE)
    local_store = named(local_dapr_resources, "Component", names.STATESTORE)
    cluster, local = metadata_items(cluster_store), metadata_items(local_store)
    assert (
        cluster["connectionString"].keys()
        == local["connectionString"].keys()
        == {"name", "secretKeyRef"}
    )
    assert cluster["connectionString"]["secretKeyRef"] == {
        "name": "learnflow-secrets",
        "key": "LEARNFLOW_PG_CONNECTION",
    }
    assert cluster_store["auth"] == {"secretStore": "kubernetes"}
    local_store_name = local_store["auth"]["secretStore"]
    assert is_secret_store(named(local_dapr_resources, "Component", local_store_name))


def test_resiliency_targets_name_real_apps_components_and_policies(
    cluster_dapr_resources: list[Manifest],
) -> None:
    (resiliency,) = of_kind(cluster_dapr_resources, "Resiliency")
    policies, targets = resiliency["spec"]["policies"], resiliency["spec"]["targets"]
    components = {d["metadata"]["name"] for d in of_kind(cluster_dapr_resources, "Component")}
    assert set(targets.get("apps", {})) <= APP_IDS
    assert set(targets.get("components", {})) <= components
    kinds = {"timeout": "timeouts", "retry": "retries", "circuitBreaker": "circuitBreakers"}
    uses = [*targets.get("apps", {}).values()] + [
        direction
        for component in targets.get("components", {}).values()
        for direction in component.values()
    ]
    for use in uses:
        for key, policy in use.items():
            assert policy in policies[kinds[key]], f"{key} {policy}"


def test_topics_are_those_of_the_contracts_and_all_get_created(
    cluster_dapr_resources: list[Manifest], rendered_overlay: list[Manifest]
) -> None:
    contract_topics = {value for key, value in vars(names).items() if key.endswith("_TOPIC")}
    subscriptions = of_kind(cluster_dapr_resources, "Subscription")
    assert f"{names.USER_PROGRESS_APP_ID}-{names.LESSON_GENERATED_TOPIC}" in {
        s["metadata"]["name"] for s in subscriptions
    }
    for subscription in subscriptions:
        spec = subscription["spec"]
        (app,) = subscription["scopes"]
        assert app in APP_IDS
        assert subscription["metadata"]["name"] == f"{app}-{spec['topic']}"
        assert spec["pubsubname"] == names.PUBSUB
        assert spec["topic"] in contract_topics
        assert spec["deadLetterTopic"] == f"{spec['topic']}-deadletter" in contract_topics
    created = set(pod_spec(named(rendered_overlay, "Job", "kafka-topics"))["containers"][0]["args"])
    assert created == contract_topics


def test_each_subscription_route_is_served_by_its_app(
    cluster_dapr_resources: list[Manifest],
) -> None:
    for subscription in of_kind(cluster_dapr_resources, "Subscription"):
        (app,) = subscription["scopes"]
        settings = importlib.import_module(f"{python_package(app)}.settings").Settings
        create_app = importlib.import_module(f"{python_package(app)}.main").create_app
        served = create_app(settings(AUTH_DISABLED=True)).routes
        route = subscription["spec"]["routes"]["default"]
        assert any(
            getattr(r, "path", None) == route and "POST" in getattr(r, "methods", ())
            for r in served
        ), f"{app} does not serve {route}"


# --- secrets, settings ---------------------------------------------------------------------


def secret_references(docs: list[Manifest]) -> list[tuple[str, str, bool]]:
    """(secret, key, optional) for every secret a workload or a Dapr component reads."""
    found = []
    for workload in of_kind(docs, "Deployment", "StatefulSet", "Job"):
        mounts = {}
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                mounts[volume["name"]] = volume["secret"]["secretName"]
        for container in containers(workload):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.append((ref["name"], ref["key"], ref.get("optional", False)))
            mount_paths = {
                m["mountPath"]: mounts[m["name"]]
                for m in container.get("volumeMounts", [])
                if m["name"] in mounts
            }
            for env in container.get("env", []):
                # PostgreSQL's *_FILE variables name a key file inside a mounted Secret.
                directory, _, key = env.get("value", "").rpartition("/")
                if env["name"].endswith("_FILE") and directory in mount_paths:
                    found.append((mount_paths[directory], key, False))
    for component in of_kind(docs, "Component"):
        for item in component["spec"]["metadata"]:
            if "secretKeyRef" in item:
                ref = item["secretKeyRef"]
                found.append((ref["name"], ref["key"], False))
    return found


def test_every_secret_read_is_created_by_the_deploy_steps(rendered_overlay: list[Manifest]) -> None:
    created = secrets_created_by_the_deploy_steps()
    assert created["postgres-credentials"] == {"POSTGRES_PASSWORD", "LEARNFLOW_APP_PASSWORD"}
    # One optional Secret per service with an LLM, made for each app whose pods read one.
    assert created.pop('"$app-llm"') == set()
    references = secret_references(rendered_overlay)
    assert {"postgres-credentials", "learnflow-secrets", "course-agent-llm"} <= {
        name for name, _, _ in references
    }
    for name, key, optional in references:
        if name.removesuffix("-llm") in APP_IDS:
            assert optional, f"{name} must be optional (replay mode has no key)"
            assert key == f"{python_package(name.removesuffix('-llm')).upper()}_LLM_API_KEY"
            continue
        assert name in created, f"secret {name} is read but never created"
        assert optional or key in created[name], f"secret {name} has no key {key}"


def test_connection_string_targets_the_postgres_deployed_as_the_app_role(
    rendered_overlay: list[Manifest],
) -> None:
    postgres = named(rendered_overlay, "StatefulSet", "postgres")
    env = {e["name"]: e.get("value") for e in pod_spec(postgres)["containers"][0]["env"]}
    assert env["POSTGRES_DB"] == script_assignment("PG_DATABASE")
    assert env["LEARNFLOW_APP_USER"] == script_assignment("PG_USER")
    assert script_assignment("NAMESPACE") == NAMESPACE
    port = named(rendered_overlay, "Service", "postgres")["spec"]["ports"][0]["port"]
    assert f"host=postgres.%s.svc.cluster.local port={port} user=%s " in deploy_steps()
    assert '"$NAMESPACE" "$PG_USER" "$app_password" "$PG_DATABASE"' in deploy_steps()


def test_apps_do_not_use_the_postgres_superuser(rendered_overlay: list[Manifest]) -> None:
    postgres = named(rendered_overlay, "StatefulSet", "postgres")
    (container,) = pod_spec(postgres)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["POSTGRES_USER"] == "postgres"
    assert env["LEARNFLOW_APP_USER"] != env["POSTGRES_USER"]
    # The init script that creates the app role is mounted where the image runs it.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(postgres)["volumes"]}
    (init_volume,) = [n for n, path in mounts.items() if path == "/docker-entrypoint-initdb.d"]
    config_map_name = volumes[init_volume]["configMap"]["name"]
    init = next(
        c
        for c in of_kind(rendered_overlay, "ConfigMap")
        if c["metadata"]["name"] == config_map_name
    )
    (script,) = init["data"].values()
    for variable in (
        "POSTGRES_USER",
        "POSTGRES_DB",
        "LEARNFLOW_APP_USER",
        "LEARNFLOW_APP_PASSWORD_FILE",
    ):
        assert f"${variable}" in script
    assert "NOSUPERUSER NOCREATEDB NOCREATEROLE" in script


def test_every_config_map_read_exists(rendered_overlay: list[Manifest]) -> None:
    config_maps = {c["metadata"]["name"]: c for c in of_kind(rendered_overlay, "ConfigMap")}
    for workload in of_kind(rendered_overlay, "Deployment", "StatefulSet", "Job"):
        for container in containers(workload):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in config_maps


@pytest.mark.parametrize("app", sorted(APP_IDS))
def test_service_settings_in_manifests_and_image_are_known_to_the_service(
    app: str, rendered_overlay: list[Manifest], dockerfiles: dict[str, Stages]
) -> None:
    prefix = f"{python_package(app).upper()}_"
    settings = importlib.import_module(f"{python_package(app)}.settings").Settings
    known = {f"{prefix}{field}".upper() for field in settings.model_fields} | {
        choice.upper()
        for info in settings.model_fields.values()
        for choice in getattr(info.validation_alias, "choices", [])
        if isinstance(choice, str)
    }
    deployment = named(rendered_overlay, "Deployment", app)
    (container,) = pod_spec(deployment)["containers"]
    config_maps = {c["metadata"]["name"]: c for c in of_kind(rendered_overlay, "ConfigMap")}
    set_vars = {e["name"] for e in container.get("env", [])} | {
        key
        for source in container.get("envFrom", [])
        for key in config_maps[source["configMapRef"]["name"]]["data"]
    }
    image_env = " ".join(args for keyword, args in dockerfiles[app][-1] if keyword == "ENV")
    set_vars |= {pair.split("=", 1)[0] for pair in image_env.split()}
    unknown = {var for var in set_vars if var.startswith(prefix)} - known
    assert not unknown, f"{app} has no setting for {sorted(unknown)}"
    assert any(var.startswith(prefix) for var in set_vars)


def test_course_agent_defaults_to_replay_in_the_cluster(rendered_overlay: list[Manifest]) -> None:
    (settings,) = [
        c
        for c in of_kind(rendered_overlay, "ConfigMap")
        if c["metadata"]["name"].startswith("course-agent-settings")
    ]
    assert settings["data"]["COURSE_AGENT_LLM_PROVIDER"] == "replay"


def test_smoke_test_asks_for_a_recorded_eval_case(smoke_test_module: Any) -> None:
    cases = yaml.safe_load((PHASE_DIR / "evals" / "cases.yaml").read_text())["cases"]
    new_learner_requests = [
        {k: v for k, v in case["request"].items() if k != "learner_id"}
        for case in cases
        if "progress" not in case
    ]
    assert smoke_test_module.LESSON_REQUEST in new_learner_requests


# --- network policies ------------------------------------------------------------------------

ANYONE = "anyone"


def pod_labels(docs: list[Manifest], workload_name: str) -> dict[str, str]:
    (workload,) = [
        d
        for d in of_kind(docs, "Deployment", "StatefulSet", "Job")
        if d["metadata"]["name"] == workload_name
    ]
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def allowed_sources(docs: list[Manifest], labels: dict[str, str], port: int) -> list[str]:
    """Who the namespace's NetworkPolicies let reach a pod with ``labels`` on ``port``: the
    matchLabels of each allowed peer (as JSON), or ANYONE. Loopback and the node are never
    filtered, so they do not appear."""
    sources = []
    for policy in of_kind(docs, "NetworkPolicy"):
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        if not selector.items() <= labels.items():
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports and port not in ports:
                continue
            peers = rule.get("from")
            if not peers:
                sources.append(ANYONE)
                continue
            for peer in peers:
                assert set(peer) == {"podSelector"}, f"{policy['metadata']['name']}: {peer}"
                sources.append(json.dumps(peer["podSelector"].get("matchLabels", {})))
    return sorted(sources)


def test_ingress_is_denied_unless_allowed(rendered_overlay: list[Manifest]) -> None:
    deny = named(rendered_overlay, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_only_the_frontend_reaches_the_course_agent_api(rendered_overlay: list[Manifest]) -> None:
    labels = pod_labels(rendered_overlay, names.COURSE_AGENT_APP_ID)
    assert allowed_sources(rendered_overlay, labels, 8000) == ['{"learnflow.dev/frontend": "true"}']
    # No workload of this deploy is the frontend.
    for workload in of_kind(rendered_overlay, "Deployment", "StatefulSet", "Job"):
        assert "learnflow.dev/frontend" not in workload["spec"]["template"]["metadata"]["labels"]


def test_nothing_reaches_the_user_progress_api_but_its_own_sidecar(
    rendered_overlay: list[Manifest],
) -> None:
    labels = pod_labels(rendered_overlay, names.USER_PROGRESS_APP_ID)
    assert allowed_sources(rendered_overlay, labels, 8000) == []


@pytest.mark.parametrize("app", sorted(APP_IDS))
def test_sidecars_reach_each_other_on_daprs_internal_grpc_port(
    app: str, rendered_overlay: list[Manifest]
) -> None:
    labels = pod_labels(rendered_overlay, app)
    assert allowed_sources(rendered_overlay, labels, 50002) == [
        '{"app.kubernetes.io/component": "app"}'
    ]


def test_postgres_and_kafka_are_reached_only_by_their_clients(
    rendered_overlay: list[Manifest],
) -> None:
    apps = '{"app.kubernetes.io/component": "app"}'
    topics_job = json.dumps({"app.kubernetes.io/name": "kafka-topics"})
    assert allowed_sources(rendered_overlay, pod_labels(rendered_overlay, "postgres"), 5432) == [
        apps
    ]
    assert allowed_sources(rendered_overlay, pod_labels(rendered_overlay, "kafka"), 9092) == sorted(
        [apps, topics_job]
    )
    assert pod_labels(rendered_overlay, "kafka-topics")["app.kubernetes.io/name"] == "kafka-topics"


# --- Dapr control plane (Helm values of install_dapr against the pinned chart) ---------------


def helm_sets() -> dict[str, str]:
    """key -> value of every `--set` in install_dapr (variables as written, e.g. $DAPR_VERSION)."""
    body = deploy_steps().split("install_dapr() {", 1)[1].split("\n}\n", 1)[0]
    pairs = re.findall(r'--set "?([\w.]+)=([^"\s]+)"?', body)
    return dict(pairs)


def chart_value(chart: Path, key: str) -> Any:
    """The default of ``key`` in the Dapr chart: global.* in its values.yaml, <subchart>.* in
    the subchart's. Fails when the chart has no such value (a typo would be silently ignored)."""
    first, _, rest = key.partition(".")
    values_file = (
        chart / "values.yaml" if first == "global" else chart / "charts" / first / "values.yaml"
    )
    value: Any = yaml.safe_load(values_file.read_text())
    for part in (key if first == "global" else rest).split("."):
        assert isinstance(value, dict), f"the Dapr chart has no value {key}"
        assert part in value, f"the Dapr chart has no value {key}"
        value = value[part]
    return value


def test_dapr_helm_values_exist_in_the_pinned_chart(dapr_module_dir: Path) -> None:
    chart = dapr_module_dir / "charts" / "dapr"
    sets = helm_sets()
    for key in sets:
        chart_value(chart, key)
    assert sets["global.registry"] == "ghcr.io/dapr"
    assert sets["global.tag"] == "$DAPR_VERSION"  # the chart's own default is "edge"
    assert chart_value(chart, "global.tag") != sets["global.tag"]
    assert sets["dapr_placement.metadataEnabled"] == "true"
    assert sets["dapr_sidecar_injector.sidecarDropALLCapabilities"] == "true"
    # Reminders survive a scheduler restart only on persistent storage.
    assert sets["dapr_scheduler.cluster.inMemoryStorage"] == "false"
    assert sets["dapr_scheduler.cluster.storageSize"] == "$DAPR_SCHEDULER_STORAGE"
    assert script_assignment("DAPR_SCHEDULER_STORAGE") == "1Gi"


def test_scheduler_claims_and_placement_address_are_those_of_the_chart(
    dapr_module_dir: Path,
) -> None:
    charts = dapr_module_dir / "charts" / "dapr" / "charts"
    scheduler = (
        charts / "dapr_scheduler" / "templates" / "dapr_scheduler_statefulset.yaml"
    ).read_text()
    # Dapr 1.18's chart runs 3 scheduler members whatever the values say (no replica setting),
    # each with one claim; minikube-down.sh deletes exactly those claims.
    assert re.search(r"^  replicas: 3$", scheduler, re.MULTILINE)
    assert "name: dapr-scheduler-data-dir" in scheduler
    down = (DEPLOY_DIR / "minikube-down.sh").read_text()
    assert "SCHEDULER_CLAIMS=(dapr-scheduler-data-dir-dapr-scheduler-server-{0,1,2})" in down
    # Placement's table is served on its healthz port, by the pod the deploy steps proxy to.
    placement = (
        charts / "dapr_placement" / "templates" / "dapr_placement_statefulset.yaml"
    ).read_text()
    assert "name: dapr-placement-server" in placement
    assert "port: 8080" in placement
    assert '"--metadata-enabled"' in placement
    assert script_assignment("PLACEMENT_STATE_PATH") == (
        "/api/v1/namespaces/dapr-system/pods/dapr-placement-server-0:8080/proxy/placement/state"
    )
