"""The generation path over daprd's state API (scripted here), with a fake LLM: an uncontended
miss claims and generates in the request, in four sidecar calls; a request that finds the lesson
claimed waits for it in its actor turn (``wait_and_generate``), and takes over a claim that is
released; a failed generation releases its claim."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.lesson import LessonDraft
from course_agent.domain.prompt import RenderedPrompt
from course_agent.domain.prompt_catalog import PromptCatalog
from course_agent.generation_claim import Claim, GenerationClaims
from course_agent.generation_protocol import GenerateJob
from course_agent.lesson_record import LessonRecord
from course_agent.lesson_service import (
    GenerationPolicy,
    LessonPorts,
    LessonService,
    LessonStillGenerating,
)
from course_agent.lesson_store import LessonStore, cache_pointer_key
from course_agent.llm.errors import LlmUnavailable
from course_agent.llm.port import GeneratedLesson
from course_agent.llm_budget import LlmBudget
from course_agent.tokenizer import TokenCounter
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.outbox import Outbox
from learnflow_service_kit.scripted_daprd import ScriptedDaprd

STATE = "/v1.0/state/statestore"
CACHE_KEY = "cache-key-1"


class FakeLlm:
    def __init__(self, lesson: dict[str, Any]) -> None:
        self.calls = 0
        self.failure: Exception | None = None
        self.called = asyncio.Event()
        self.answer = asyncio.Event()  # cleared: the LLM works until a test sets it
        self.answer.set()
        self._lesson = lesson

    async def generate(self, prompt: RenderedPrompt) -> GeneratedLesson:
        self.calls += 1
        self.called.set()
        await self.answer.wait()
        if self.failure is not None:
            raise self.failure
        draft = LessonDraft.model_validate(self._lesson)
        return GeneratedLesson(
            draft=draft, model="m", prompt_tokens=10, completion_tokens=20, reasked=False
        )

    async def aclose(self) -> None:
        return None


class FixedProgress:
    def __init__(self, projection: ProgressProjectionV1) -> None:
        self._projection = projection

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        return self._projection


@pytest.fixture
def daprd() -> ScriptedDaprd:
    return ScriptedDaprd()


@pytest.fixture
def llm(valid_lesson: dict[str, Any]) -> FakeLlm:
    return FakeLlm(valid_lesson)


def _service(
    daprd: ScriptedDaprd,
    llm: FakeLlm,
    projection: ProgressProjectionV1,
    catalog: PromptCatalog,
    counter: TokenCounter,
    claim_wait_seconds: float = 30,
) -> LessonService:
    dapr = daprd.client()
    ports = LessonPorts(
        dapr=dapr,
        store=LessonStore(dapr, Outbox(dapr), cache_ttl_seconds=60, idempotency_ttl_seconds=60),
        claims=GenerationClaims(dapr),
        progress=FixedProgress(projection),
        generator=llm,
        llm_budget=LlmBudget(per_hour=5),
    )
    policy = GenerationPolicy("m", 3000, 60, claim_wait_seconds)
    return LessonService(ports, catalog, counter.count, policy)


@pytest.fixture
def service(
    daprd: ScriptedDaprd,
    llm: FakeLlm,
    make_projection: Callable[..., ProgressProjectionV1],
    catalog: PromptCatalog,
    counter: TokenCounter,
) -> LessonService:
    return _service(daprd, llm, make_projection(), catalog, counter)


@pytest.fixture
def job(request_: GenerateLessonRequest, render: Callable[..., RenderedPrompt]) -> GenerateJob:
    return GenerateJob(prompt=render(request_), request=request_, personalisation_outcome="applied")


def _keys(daprd: ScriptedDaprd, prefix: str) -> dict[str, Any]:
    return {k: v for k, (v, _) in daprd.state.items() if k.startswith(prefix)}


async def test_an_uncontended_miss_is_four_sidecar_calls_and_leaves_no_claim(
    service: LessonService, daprd: ScriptedDaprd, llm: FakeLlm, request_: GenerateLessonRequest
) -> None:
    result = await service.generate(request_, idempotency_key=None)

    assert result.created is True
    assert llm.calls == 1
    assert daprd.calls == [
        f"POST {STATE}/bulk",  # pointer, claim, index head, budget
        f"POST {STATE}/transaction",  # the budget spent and the claim taken
        f"POST {STATE}/transaction",  # lesson, pointer, index, outbox slot; claim released
        "POST /v1.0/publish/pubsub/lesson-generated",
    ]
    assert list(_keys(daprd, "llm-budget-").values()) == [{"spent": 1}]
    assert _keys(daprd, "lesson-claim-") == {}

    daprd.calls.clear()
    again = await service.generate(request_, idempotency_key=None)
    assert (again.record, again.created) == (result.record, False)
    assert daprd.calls == [f"POST {STATE}/bulk"]
    assert llm.calls == 1


async def test_a_claim_lost_to_a_rival_spend_reads_again_and_counts_once(
    service: LessonService, daprd: ScriptedDaprd, llm: FakeLlm, request_: GenerateLessonRequest
) -> None:
    budget_key = LlmBudget(per_hour=5).current(request_.learner_id).key
    daprd.rival_write = (budget_key, {"spent": 1})  # another lesson of this learner, meanwhile

    result = await service.generate(request_, idempotency_key=None)

    assert result.created is True
    assert daprd.state[budget_key][0] == {"spent": 2}
    assert llm.calls == 1
    assert _keys(daprd, "lesson-claim-") == {}


async def test_a_waiting_turn_gets_the_lesson_its_claim_holder_stores(
    service: LessonService,
    daprd: ScriptedDaprd,
    llm: FakeLlm,
    job: GenerateJob,
    record: LessonRecord,
) -> None:
    holder = Claim(CACHE_KEY)
    daprd.put(holder.key, {"holder": holder.holder})
    store = LessonStore(daprd.client(), Outbox(daprd.client()), 60, 60)

    async def holder_stores_it() -> None:
        await asyncio.sleep(0.3)
        await store.save_new(record, CACHE_KEY, also=[holder.releasing()])

    rival = asyncio.ensure_future(holder_stores_it())
    lesson, created = await service.wait_and_generate(CACHE_KEY, job)
    await rival

    assert (lesson, created) == (record, False)
    assert llm.calls == 0


async def test_a_waiting_turn_takes_over_a_released_claim(
    service: LessonService, daprd: ScriptedDaprd, llm: FakeLlm, job: GenerateJob
) -> None:
    holder = Claim(CACHE_KEY)
    daprd.put(holder.key, {"holder": holder.holder})

    async def holder_fails() -> None:
        await asyncio.sleep(0.3)
        await GenerationClaims(daprd.client()).release(holder)

    rival = asyncio.ensure_future(holder_fails())
    lesson, created = await service.wait_and_generate(CACHE_KEY, job)
    await rival

    assert created is True
    assert llm.calls == 1
    assert daprd.state[cache_pointer_key(CACHE_KEY)][0]["lesson_id"] == lesson.lesson_id
    assert _keys(daprd, "lesson-claim-") == {}


async def test_a_claim_held_beyond_the_wait_is_a_named_retry_later(
    daprd: ScriptedDaprd,
    llm: FakeLlm,
    job: GenerateJob,
    make_projection: Callable[..., ProgressProjectionV1],
    catalog: PromptCatalog,
    counter: TokenCounter,
) -> None:
    service = _service(daprd, llm, make_projection(), catalog, counter, claim_wait_seconds=1)
    daprd.put(Claim(CACHE_KEY).key, {"holder": "a request that never ends"})
    started = time.monotonic()

    with pytest.raises(LessonStillGenerating) as waited:
        await service.wait_and_generate(CACHE_KEY, job)

    assert 0.5 <= time.monotonic() - started <= 1.5
    assert waited.value.code == "lesson_generation_in_progress"
    assert waited.value.headers()["Retry-After"] == "5"
    assert llm.calls == 0


async def test_a_failed_generation_releases_its_claim_and_keeps_the_budget_spent(
    service: LessonService, daprd: ScriptedDaprd, llm: FakeLlm, request_: GenerateLessonRequest
) -> None:
    llm.failure = LlmUnavailable("the provider is down", 5)

    with pytest.raises(LlmUnavailable):
        await service.generate(request_, idempotency_key=None)

    assert _keys(daprd, "lesson-claim-") == {}
    assert list(_keys(daprd, "llm-budget-").values()) == [{"spent": 1}]
    assert _keys(daprd, "lesson-cache-") == {}


async def test_a_generation_cancelled_while_the_llm_works_releases_its_claim(
    service: LessonService, daprd: ScriptedDaprd, llm: FakeLlm, request_: GenerateLessonRequest
) -> None:
    llm.answer.clear()
    generating = asyncio.ensure_future(service.generate(request_, idempotency_key=None))
    await llm.called.wait()
    assert len(_keys(daprd, "lesson-claim-")) == 1

    generating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await generating

    assert _keys(daprd, "lesson-claim-") == {}
    assert _keys(daprd, "lesson-cache-") == {}
