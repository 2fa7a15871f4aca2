"""The Course Agent's own parts: adapters, the lesson service and its actor, on a sidecar client.

``Adapters`` are what tests swap (the LLM, the progress source); Dapr stays real.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from dapr.actor.id import ActorId
from dapr.actor.runtime.context import ActorRuntimeContext
from learnflow_service_kit.actor_turns import ActorTurns
from learnflow_service_kit.outbox import Outbox, run_relay
from learnflow_service_kit.service_app import HostedActor, ServiceParts
from learnflow_service_kit.sidecar_client import SidecarClient

from course_agent.api import router
from course_agent.domain.errors import CourseAgentError
from course_agent.generation_actor import LessonGenerationActor
from course_agent.generation_claim import GenerationClaims
from course_agent.lesson_service import GenerationPolicy, LessonPorts, LessonService
from course_agent.lesson_store import LessonStore
from course_agent.llm.factory import build_lesson_generator
from course_agent.llm.port import LessonGenerator
from course_agent.llm_budget import LlmBudget
from course_agent.progress_source import DaprProgressSource, ProgressSource
from course_agent.prompt_files import load_prompt_catalog
from course_agent.settings import Settings
from course_agent.tokenizer import TokenCounter


@dataclass(frozen=True)
class Adapters:
    generator: LessonGenerator | None = None
    progress: ProgressSource | None = None


def wire(settings: Settings, dapr: SidecarClient, adapters: Adapters) -> ServiceParts:
    outbox = Outbox(dapr)
    store = LessonStore(dapr, outbox, settings.cache_ttl_seconds, settings.idempotency_ttl_seconds)
    lesson_generator = adapters.generator or build_lesson_generator(
        settings.llm_provider,
        model=settings.llm_model,
        recordings_dir=settings.recordings_dir,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout_seconds=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    ports = LessonPorts(
        dapr=dapr,
        store=store,
        progress=adapters.progress or DaprProgressSource(dapr, settings.progress_timeout_seconds),
        generator=lesson_generator,
        claims=GenerationClaims(dapr),
        llm_budget=LlmBudget(settings.llm_lessons_per_learner_per_hour),
    )
    policy = GenerationPolicy(
        model=settings.llm_model,
        prompt_token_budget=settings.prompt_token_budget,
        actor_timeout_seconds=settings.actor_call_timeout_seconds,
        claim_wait_seconds=settings.claim_wait_seconds,
    )
    service = LessonService(
        ports,
        load_prompt_catalog(settings.prompts_dir),
        TokenCounter(settings.llm_model).count,
        policy,
    )
    turns = ActorTurns()

    def build_actor(ctx: ActorRuntimeContext, actor_id: ActorId) -> LessonGenerationActor:
        return LessonGenerationActor(ctx, actor_id, service.wait_and_generate, turns)

    return ServiceParts(
        routers=[router],
        state={"lesson_service": service, "lesson_store": store},
        actors=[HostedActor(LessonGenerationActor, build_actor)],
        background=[partial(run_relay, outbox, settings.outbox_relay_seconds)],
        # Events still staged go out before the sidecar client closes.
        closers=[outbox.drain, lesson_generator.aclose],
        expected_errors=[CourseAgentError],
    )
