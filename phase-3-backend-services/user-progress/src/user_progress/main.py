"""App factory: ``uvicorn user_progress.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from learnflow_service_kit.actor_turns import ActorTurns
from learnflow_service_kit.app import connect_sidecar, install_service_plumbing
from learnflow_service_kit.backoff import Backoff
from learnflow_service_kit.dapr_app_token import hide_dapr_routes
from learnflow_service_kit.observability import configure_logging

from user_progress.api import router
from user_progress.event_sender import EventSender
from user_progress.progress_actor import LearnerProgressActor
from user_progress.progress_gateway import ActorProgressGateway, ProgressGateway
from user_progress.settings import Settings


def create_app(
    settings: Settings | None = None, progress: ProgressGateway | None = None
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level)
    dapr = connect_sidecar(settings.dapr_http_port, settings.dapr_api_token)
    # The actors publish through a pool of their own: requests waiting for an actor's turn hold
    # connections of the main pool, and the turn they wait for must never wait for one of them.
    actor_sidecar = connect_sidecar(settings.dapr_http_port, settings.dapr_api_token)
    turns = ActorTurns()
    events = EventSender(actor_sidecar, Backoff())

    def build_actor(ctx: ActorRuntimeContext, actor_id: ActorId) -> LearnerProgressActor:
        return LearnerProgressActor(
            ctx,
            actor_id,
            sidecar=actor_sidecar,
            events=events,
            flush_every=timedelta(seconds=settings.outbox_flush_seconds),
            turns=turns,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await actors.register_actor(LearnerProgressActor, actor_factory=build_actor)
        yield
        await events.drain()
        await dapr.aclose()
        await actor_sidecar.aclose()

    app = FastAPI(title="LearnFlow User Progress", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.dapr = dapr
    app.state.progress = progress or ActorProgressGateway(
        dapr, settings.request_deadline_seconds, settings.max_pending_updates_per_learner
    )
    install_service_plumbing(app, dapr, dapr_app_token=settings.dapr_app_token, auth=settings)
    app.include_router(router)
    actors = DaprActor(app)
    hide_dapr_routes(app)
    return app
