"""The app every LearnFlow service is: its own parts (``ServiceParts``) on the common plumbing.

A service's scaffolded ``main.py`` calls ``build_service_app`` with a ``wire`` function of its
own (``wiring.py``) that builds routes, adapters and actors on the sidecar client given to it.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from dapr.actor import Actor
from dapr.actor.id import ActorId
from dapr.actor.runtime.config import ActorRuntimeConfig
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.actor.runtime.runtime import ActorRuntime
from dapr.ext.fastapi import DaprActor
from fastapi import APIRouter, FastAPI
from fastapi.responses import ORJSONResponse

from learnflow_service_kit.actor_json import PlainJsonSerializer
from learnflow_service_kit.app import connect_sidecar, install_service_plumbing
from learnflow_service_kit.dapr_app_token import hide_dapr_routes
from learnflow_service_kit.observability import configure_logging
from learnflow_service_kit.settings import ServiceSettings
from learnflow_service_kit.sidecar_client import SidecarClient

ActorFactory = Callable[[ActorRuntimeContext, ActorId], Actor]
# Runs until the event is set at shutdown (an outbox relay, a poller).
BackgroundTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class HostedActor:
    """An actor type the app hosts: its sidecar registers the type with placement."""

    actor_type: type[Actor]
    build: ActorFactory


@dataclass(frozen=True)
class ServiceParts:
    """What a service's wiring hands the app.

    ``state``: entries of ``app.state`` its route dependencies read. ``closers`` run in order
    at shutdown, after the background tasks stopped and before the sidecar client closes.
    ``expected_errors``: the service's error classes shaped as ``errors.ExpectedError``.
    """

    routers: Sequence[APIRouter]
    state: Mapping[str, Any] = field(default_factory=dict)
    actors: Sequence[HostedActor] = ()
    background: Sequence[BackgroundTask] = ()
    closers: Sequence[Callable[[], Awaitable[None]]] = ()
    expected_errors: Sequence[type[Exception]] = ()


def actor_runtime_config(idle_timeout_seconds: float) -> ActorRuntimeConfig:
    """What daprd is told of the app's actors (its GET /dapr/config): deactivate one idle for
    ``idle_timeout_seconds``, looking every half of that (at most Dapr's 30 s), so an idle actor
    lives at most 1.5 times the timeout."""
    idle = timedelta(seconds=idle_timeout_seconds)
    return ActorRuntimeConfig(
        actor_idle_timeout=idle, actor_scan_interval=min(idle / 2, timedelta(seconds=30))
    )


def build_service_app(
    title: str, settings: ServiceSettings, wire: Callable[[SidecarClient], ServiceParts]
) -> FastAPI:
    configure_logging(settings.log_level)
    sidecar = connect_sidecar(settings.dapr_http_port, settings.dapr_api_token)
    parts = wire(sidecar)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ActorRuntime.set_actor_config(actor_runtime_config(settings.actor_idle_timeout_seconds))
        for hosted in parts.actors:
            await actors.register_actor(
                hosted.actor_type,
                actor_factory=hosted.build,
                message_serializer=PlainJsonSerializer(),
                state_serializer=PlainJsonSerializer(),
            )
        # What start-up built lives as long as the process: out of the collector's sight, a
        # full collection takes ~0.1 ms instead of ~60 ms (130,000 objects: pydantic schemas,
        # the SDKs), which had stalled every request in flight (the p99s of `make bench`).
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        running = [asyncio.create_task(task(stop)) for task in parts.background]
        yield
        stop.set()
        for task in running:
            with suppress(asyncio.CancelledError):
                await task
        for close in parts.closers:
            await close()
        await sidecar.aclose()

    # orjson: the standard library's encoder was ~3% of the Course Agent's CPU (profile).
    app = FastAPI(
        title=title, version="0.1.0", lifespan=lifespan, default_response_class=ORJSONResponse
    )
    # The sidecar client, for whoever runs the app without its lifespan (tests) and must close it.
    app.state.sidecar = sidecar
    for name, value in parts.state.items():
        setattr(app.state, name, value)
    install_service_plumbing(
        app,
        sidecar,
        expected_errors=parts.expected_errors,
        dapr_app_token=settings.dapr_app_token,
        auth=settings,
    )
    for router in parts.routers:
        app.include_router(router)
    # Adds the routes daprd calls for actors; hidden from the public OpenAPI document.
    actors = DaprActor(app)
    hide_dapr_routes(app)
    return app
