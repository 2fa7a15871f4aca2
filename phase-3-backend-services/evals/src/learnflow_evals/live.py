"""`make evals LIVE=1`: ask the live model every live-recordable case and keep its raw answers
as a transcript with provenance (model as reported, endpoint, date)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import openai
from course_agent.llm.recording import LiveSource
from course_agent.settings import Settings

from learnflow_evals.cases import EvalCase
from learnflow_evals.pipeline import CapturingTransport, run_pipeline
from learnflow_evals.rendering import Renderer
from learnflow_evals.transcripts import Transcript, save_transcript

# The Course Agent's defaults; a live eval waits longer for each answer than the service does.
DEFAULT_BASE_URL: str = Settings.model_fields["llm_base_url"].default
_DEFAULT_MAX_RETRIES: int = Settings.model_fields["llm_max_retries"].default


@dataclass(frozen=True)
class LiveSettings:
    api_key: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 120.0
    max_retries: int = _DEFAULT_MAX_RETRIES


def live_recordable(cases: Sequence[EvalCase]) -> list[EvalCase]:
    """Failure modes are defined by their authored answers; every other case can go live."""
    return [case for case in cases if case.failure_mode is None]


def live_client(settings: LiveSettings, transport: httpx.AsyncBaseTransport) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
        http_client=httpx.AsyncClient(transport=transport),
    )


async def record_case(
    case: EvalCase, renderer: Renderer, settings: LiveSettings, directory: Path
) -> str:
    """Ask the live model through the Course Agent's pipeline; returns a line for the log."""
    prompt = renderer.render(case)
    capture = CapturingTransport(httpx.AsyncHTTPTransport())
    client = live_client(settings, capture)
    endpoint = str(client.base_url)
    result = await run_pipeline(client, prompt)
    if not capture.answers:
        return f"{case.id}: nothing recorded ({result.outcome.value}: {result.detail})"
    source = LiveSource(
        model=str(capture.answers[0].get("model", "unknown")),
        recorded_at=datetime.now(UTC),
        endpoint=endpoint,
    )
    transcript = Transcript(
        case=case.id,
        prompt_key=renderer.key(prompt),
        source=source,
        answers=tuple(capture.answers),
    )
    save_transcript(directory, transcript)
    return f"{case.id}: recorded {len(capture.answers)} answer(s), {result.outcome.value}"
