"""App factory: ``uvicorn course_agent.main:create_app --factory``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from dapr.ext.fastapi import DaprActor
from fastapi import FastAPI
from learnflow_service_kit.actor_turns import ActorTurns
from learnflow_service_kit.app import connect_sidecar, install_service_plumbing
from learnflow_service_kit.dapr_app_token import hide_dapr_routes
from learnflow_service_kit.observability import configure_logging
from learnflow_service_kit.outbox import Outbox, run_relay

from course_agent.api import router
from course_agent.domain.errors import CourseAgentError
from course_agent.domain.prompt_catalog import PromptCatalog
from course_agent.domain.token_budget import TokenCounter
from course_agent.generation_actor import LessonGenerationActor
from course_agent.lesson_service import LessonService
from course_agent.lesson_store import LessonStore
from course_agent.llm.factory import build_lesson_generator
from course_agent.llm.port import LessonGenerator
from course_agent.llm_budget import LlmBudget
from course_agent.progress_source import DaprProgressSource, ProgressSource
from course_agent.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    generator: LessonGenerator | None = None,
    progress: ProgressSource | None = None,
) -> FastAPI:
    """Adapters can be swapped (tests pass a generator or progress source); Dapr is real."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    dapr = connect_sidecar(settings.dapr_http_port, settings.dapr_api_token)
    outbox = Outbox(dapr)
    store = LessonStore(dapr, outbox, settings.cache_ttl_seconds, settings.idempotency_ttl_seconds)
    lesson_generator = generator or build_lesson_generator(
        settings.llm_provider,
        model=settings.llm_model,
        recordings_dir=settings.recordings_dir,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_seconds=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    service = LessonService(
        dapr=dapr,
        store=store,
        progress=progress or DaprProgressSource(dapr, settings.progress_timeout_seconds),
        generator=lesson_generator,
        catalog=PromptCatalog.load(settings.prompts_dir),
        counter=TokenCounter(settings.llm_model),
        model=settings.llm_model,
        token_budget=settings.prompt_token_budget,
        actor_timeout_seconds=settings.actor_call_timeout_seconds,
        budget=LlmBudget(dapr, settings.llm_lessons_per_learner_per_hour),
    )

    turns = ActorTurns()

    def build_actor(ctx: ActorRuntimeContext, actor_id: ActorId) -> LessonGenerationActor:
        return LessonGenerationActor(ctx, actor_id, service.generate_once, turns)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await actors.register_actor(LessonGenerationActor, actor_factory=build_actor)
        stop = asyncio.Event()
        relay = asyncio.create_task(run_relay(outbox, settings.outbox_relay_seconds, stop))
        yield
        stop.set()
        with suppress(asyncio.CancelledError):
            await relay
        await outbox.drain()
        await lesson_generator.aclose()
        await dapr.aclose()

    app = FastAPI(title="LearnFlow Course Agent", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.lesson_service = service
    app.state.lesson_store = store
    install_service_plumbing(
        app,
        dapr,
        expected_errors=[CourseAgentError],
        dapr_app_token=settings.dapr_app_token,
        auth=settings,
    )
    app.include_router(router)
    actors = DaprActor(app)
    hide_dapr_routes(app)
    return app
