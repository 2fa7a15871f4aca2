"""Lesson generation through any OpenAI-compatible chat-completions API.

Strict structured output (``response_format=LessonDraft``) first; a server that rejects JSON
schemas gets ``{"type": "json_object"}`` with the schema in the system message instead, and
this adapter remembers that for its lifetime. An answer that breaks a lesson rule is sent
back once with the list of problems; a second bad answer is an error.
"""

import json
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import cast

import httpx
import openai
import structlog
from learnflow_service_kit.tracing import llm_span, record_llm_usage
from openai.lib._parsing import type_to_response_format_param
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from course_agent.domain.chat import ChatMessage
from course_agent.domain.lesson import InvalidLesson, LessonDraft, lesson_json_schema, parse_lesson
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import (
    LlmInvalidOutput,
    LlmRefused,
    LlmRejected,
    LlmTimeout,
    LlmUnavailable,
)
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.port import GeneratedLesson

log = structlog.get_logger()

# The strict schema ``chat.completions.parse(response_format=LessonDraft)`` would send, made
# once by the SDK's own conversion: parse() made it on every call and validated the answer
# into a model nobody used (``parse_lesson`` judges the text), 3 ms of CPU per call.
_LESSON_RESPONSE_FORMAT = type_to_response_format_param(LessonDraft)

# Statuses the SDK itself treats as transient (it retries them before we see them).
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_MAX_PROBLEMS_IN_REPAIR = 20


@dataclass(frozen=True)
class _Answer:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class OpenAiLessonGenerator:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        parameters: GenerationParameters | None = None,
        default_retry_after_seconds: float = 5.0,
    ) -> None:
        self._client = client
        # Resolved now, at start-up: the SDK imports its resource modules on first use, and
        # that import (~0.3 s) stalled every request in flight behind the first generation.
        self._completions = client.chat.completions
        self.model = model
        self.parameters = parameters or GenerationParameters()
        self._default_retry_after = default_retry_after_seconds
        self._json_object_mode = False  # set once the server has rejected a JSON schema

    @property
    def endpoint(self) -> str:
        """The API base URL this generator calls, as recordings name it."""
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.close()

    async def generate(self, prompt: RenderedPrompt) -> GeneratedLesson:
        try:
            return await self._generate(prompt.messages)
        except openai.APITimeoutError as error:
            raise LlmTimeout("the LLM did not answer in time") from error
        except openai.APIConnectionError as error:
            raise LlmUnavailable(
                "the LLM could not be reached", self._default_retry_after
            ) from error
        except openai.ContentFilterFinishReasonError as error:
            raise LlmRefused("the LLM's content filter stopped the lesson") from error
        except openai.LengthFinishReasonError as error:
            raise LlmInvalidOutput("the lesson was cut off at the output token limit") from error
        except openai.APIStatusError as error:
            raise self._status_error(error) from error

    def _status_error(
        self, error: openai.APIStatusError
    ) -> LlmRefused | LlmUnavailable | LlmRejected:
        if error.code == "content_filter":
            return LlmRefused("the LLM's content filter refused the request")
        if error.status_code >= 500 or error.status_code in _TRANSIENT_STATUSES:
            retry_after = _retry_after_seconds(error.response.headers) or self._default_retry_after
            return LlmUnavailable(f"the LLM answered {error.status_code}", retry_after)
        return LlmRejected(f"the LLM rejected the request with {error.status_code}")

    async def _generate(self, messages: Sequence[ChatMessage]) -> GeneratedLesson:
        first = await self._ask(messages)
        try:
            return self._lesson(parse_lesson(first.content), first, reasked=False)
        except InvalidLesson as invalid:
            repair = (
                *messages,
                ChatMessage(role="assistant", content=first.content),
                ChatMessage(role="user", content=_repair_request(invalid.problems)),
            )
        second = await self._ask(repair)
        try:
            draft = parse_lesson(second.content)
        except InvalidLesson as invalid:
            raise LlmInvalidOutput(
                "the LLM's lesson was invalid twice: " + "; ".join(invalid.problems[:5]),
                invalid.problems,
            ) from invalid
        total = _Answer(
            content=second.content,
            model=second.model,
            prompt_tokens=first.prompt_tokens + second.prompt_tokens,
            completion_tokens=first.completion_tokens + second.completion_tokens,
        )
        return self._lesson(draft, total, reasked=True)

    @staticmethod
    def _lesson(draft: LessonDraft, answer: _Answer, *, reasked: bool) -> GeneratedLesson:
        return GeneratedLesson(
            draft=draft,
            model=answer.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            reasked=reasked,
        )

    async def _ask(self, messages: Sequence[ChatMessage]) -> _Answer:
        # One span per chat completion: model and token counts, never the prompt or answer.
        with llm_span(
            self.model,
            temperature=self.parameters.temperature,
            max_tokens=self.parameters.max_tokens,
        ) as span:
            answer = await self._ask_in_mode(messages)
            record_llm_usage(span, answer.model, answer.prompt_tokens, answer.completion_tokens)
            return answer

    async def _ask_in_mode(self, messages: Sequence[ChatMessage]) -> _Answer:
        if not self._json_object_mode:
            try:
                return await self._ask_with_json_schema(messages)
            except openai.BadRequestError as error:
                if not _rejects_json_schema(error):
                    raise
                log.warning("LLM server rejects json_schema output; using json_object from now on")
                self._json_object_mode = True
        return await self._ask_with_json_object(messages)

    async def _ask_with_json_schema(self, messages: Sequence[ChatMessage]) -> _Answer:
        completion = await self._completions.create(
            model=self.model,
            messages=_to_wire(messages),
            response_format=_LESSON_RESPONSE_FORMAT,
            temperature=self.parameters.temperature,
            max_tokens=self.parameters.max_tokens,
        )
        return _answer(completion)

    async def _ask_with_json_object(self, messages: Sequence[ChatMessage]) -> _Answer:
        completion = await self._completions.create(
            model=self.model,
            messages=_to_wire(_with_schema_described(messages)),
            response_format={"type": "json_object"},
            temperature=self.parameters.temperature,
            max_tokens=self.parameters.max_tokens,
        )
        return _answer(completion)


def _to_wire(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    return [
        cast(ChatCompletionMessageParam, {"role": message.role, "content": message.content})
        for message in messages
    ]


def _answer(completion: ChatCompletion) -> _Answer:
    finish_reason = completion.choices[0].finish_reason if completion.choices else None
    if finish_reason == "content_filter":
        raise openai.ContentFilterFinishReasonError()
    if finish_reason == "length":
        raise openai.LengthFinishReasonError(completion=completion)
    message = completion.choices[0].message if completion.choices else None
    if message is not None and message.refusal:
        raise LlmRefused(f"the LLM declined: {message.refusal[:200]}")
    usage = completion.usage
    return _Answer(
        content=(message.content if message else None) or "",
        model=completion.model,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
    )


def _repair_request(problems: Sequence[str]) -> str:
    listed = "\n".join(f"- {problem}" for problem in problems[:_MAX_PROBLEMS_IN_REPAIR])
    return (
        "Your previous answer is not a valid lesson. Fix these problems and reply with the "
        f"complete corrected lesson as one JSON object, nothing else:\n{listed}"
    )


def _rejects_json_schema(error: openai.BadRequestError) -> bool:
    said = f"{error.message} {error.param or ''}".lower()
    return "json_schema" in said or "response_format" in said


def _with_schema_described(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """json_object mode carries no schema, so the system message (always first) describes it."""
    system, *rest = messages
    schema = json.dumps(lesson_json_schema(), separators=(",", ":"))
    described = f"{system.content}\n\nThe JSON object must follow this JSON Schema:\n{schema}"
    return [system.model_copy(update={"content": described}), *rest]


def _retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    milliseconds: str | None = headers.get("retry-after-ms")
    if milliseconds:
        with suppress(ValueError):
            return float(milliseconds) / 1000
    value: str | None = headers.get("retry-after")
    if not value:
        return None
    with suppress(ValueError):
        return max(0.0, float(value))
    with suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None
