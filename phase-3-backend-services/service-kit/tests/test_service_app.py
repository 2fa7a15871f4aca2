"""The app template's start-up: what it built is frozen out of the garbage collector's sight,
and what daprd is told of its actors."""

import gc
from collections.abc import Iterator
from datetime import timedelta

import pytest
from dapr.serializers.util import convert_from_dapr_duration
from fastapi import APIRouter
from fastapi.testclient import TestClient
from learnflow_service_kit.service_app import (
    ServiceParts,
    actor_runtime_config,
    build_service_app,
)
from learnflow_service_kit.settings import ServiceSettings
from learnflow_service_kit.sidecar_client import SidecarClient


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def _no_parts(_: SidecarClient) -> ServiceParts:
    return ServiceParts(routers=[APIRouter()])


@pytest.mark.usefixtures("unfrozen")
def test_start_up_freezes_what_it_built_so_a_full_collection_skips_it() -> None:
    app = build_service_app("frozen", ServiceSettings(AUTH_DISABLED=True), _no_parts)
    assert gc.get_freeze_count() == 0

    with TestClient(app) as client:
        assert gc.get_freeze_count() > 10_000  # the modules, schemas and the app itself
        assert client.get("/healthz").status_code == 200


def test_daprd_is_told_to_deactivate_actors_idle_for_the_configured_time() -> None:
    settings = ServiceSettings(AUTH_DISABLED=True, actor_idle_timeout_seconds=240)
    app = build_service_app("idle", settings, _no_parts)

    with TestClient(app) as client:
        config = client.get("/dapr/config").json()  # what daprd reads at start-up

    # Go durations, as the SDK writes them ("0h4m0s0ms0μs")
    assert convert_from_dapr_duration(config["actorIdleTimeout"]) == timedelta(minutes=4)
    # Dapr's default scan: half of 4 min is more
    assert convert_from_dapr_duration(config["actorScanInterval"]) == timedelta(seconds=30)


def test_a_short_idle_timeout_is_scanned_for_twice_as_often() -> None:
    config = actor_runtime_config(4.0)

    assert config.actor_idle_timeout == timedelta(seconds=4)
    assert config.actor_scan_interval == timedelta(seconds=2)
