"""The app template's start-up: what it built is frozen out of the garbage collector's sight."""

import gc
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from learnflow_service_kit.service_app import ServiceParts, build_service_app
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
