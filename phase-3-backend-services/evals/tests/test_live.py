"""`make evals LIVE=1`: the recording plumbing, against a mocked OpenAI-compatible endpoint.

No live model was called to write these tests or the recordings: there is no key here.
"""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from course_agent.domain.lesson import LessonDraft
from learnflow_evals.cases import EvalCase, Outcome
from learnflow_evals.cli import live_settings, run
from learnflow_evals.evaluation import RecordingState, evaluate_case
from learnflow_evals.judge import Judge
from learnflow_evals.live import LiveSettings, live_client, live_recordable, record_case
from learnflow_evals.rendering import Renderer
from learnflow_evals.thresholds import Thresholds
from learnflow_evals.transcripts import load_transcripts

BASE_URL = "http://llm.test/v1"


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-live",
        "object": "chat.completion",
        "created": 1_765_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 350, "completion_tokens": 900, "total_tokens": 1250},
    }


async def test_a_live_exchange_is_kept_whole_with_provenance_and_replays_the_same(
    tmp_path: Path,
    cases: dict[str, EvalCase],
    renderer: Renderer,
    thresholds: Thresholds,
    lesson_of: Any,
) -> None:
    lesson = json.dumps(lesson_of("fractions-beginner"))
    case = cases["fractions-beginner"]
    with respx.mock(base_url=BASE_URL) as router:
        route = router.post("/chat/completions").mock(
            side_effect=[
                httpx.Response(200, json=_completion(f"```json\n{lesson}\n```")),
                httpx.Response(200, json=_completion(lesson)),
            ]
        )
        line = await record_case(
            case, renderer, LiveSettings(api_key="k", base_url=BASE_URL), tmp_path
        )

    assert route.call_count == 2
    assert line == "fractions-beginner: recorded 2 answer(s), repaired"
    transcript = load_transcripts(tmp_path)["fractions-beginner"]
    assert transcript.source.kind == "live"
    assert transcript.source.model == "gpt-4o-mini-2024-07-18"
    assert transcript.source.endpoint == BASE_URL + "/"
    assert transcript.prompt_key == renderer.key(renderer.render(case))
    assert [a["choices"][0]["message"]["content"][:7] for a in transcript.answers] == [
        "```json",
        lesson[:7],
    ]

    replayed = await evaluate_case(case, transcript, renderer, thresholds)

    assert replayed.state is RecordingState.CURRENT
    assert replayed.pipeline is not None
    assert replayed.pipeline.outcome is Outcome.REPAIRED
    assert replayed.passed is False  # the case expects a first-time lesson, not a repair


async def test_an_unreachable_endpoint_records_nothing(
    tmp_path: Path, cases: dict[str, EvalCase], renderer: Renderer
) -> None:
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/chat/completions").mock(side_effect=httpx.ConnectError("refused"))
        line = await record_case(
            cases["fractions-beginner"],
            renderer,
            LiveSettings(api_key="k", base_url=BASE_URL, max_retries=0),
            tmp_path,
        )

    assert line.startswith("fractions-beginner: nothing recorded (llm_unavailable")
    assert list(tmp_path.iterdir()) == []


def test_failure_modes_are_never_recorded_live(cases: dict[str, EvalCase]) -> None:
    recordable = {case.id for case in live_recordable(list(cases.values()))}

    assert "fm-fenced-json" not in recordable
    assert {"fractions-beginner", "harmful-explosives", "injection-in-goal"} <= recordable


def test_live_settings_come_from_the_environment() -> None:
    assert live_settings({}) is None
    assert live_settings({"OPENAI_API_KEY": "k"}) == LiveSettings(
        api_key="k", base_url="https://api.openai.com/v1"
    )
    assert live_settings(
        {"COURSE_AGENT_LLM_API_KEY": "a", "COURSE_AGENT_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    ) == LiveSettings(api_key="a", base_url="http://127.0.0.1:9/v1")


async def test_live_without_a_key_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("COURSE_AGENT_LLM_API_KEY", raising=False)

    status = await run(live=True, wanted="fractions-beginner", report_dir=tmp_path)

    assert status == 2
    assert "LIVE=1 needs OPENAI_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ('{"score": 5, "reason": "Accurate and at the right level."}', 5),
        ('{"score": 9}', None),
        ("Looks fine to me!", None),
    ],
)
async def test_the_judge_reads_a_score_from_the_live_model(
    cases: dict[str, EvalCase], lesson_of: Any, answer: str, score: int | None
) -> None:
    lesson = LessonDraft.model_validate(lesson_of("fractions-beginner"))
    settings = LiveSettings(api_key="k", base_url=BASE_URL, max_retries=0)
    with respx.mock(base_url=BASE_URL) as router:
        route = router.post("/chat/completions").mock(
            return_value=httpx.Response(200, json=_completion(answer))
        )
        judge = Judge(live_client(settings, httpx.AsyncHTTPTransport()), "gpt-4o-mini")
        judged = await judge.score(cases["fractions-beginner"], lesson)
        await judge.client.close()

    assert judged == score
    sent = json.loads(route.calls.last.request.content)
    assert sent["response_format"] == {"type": "json_object"}
    assert "eval-learner-1" not in sent["messages"][1]["content"]  # the learner id stays out
    assert "Adding fractions" in sent["messages"][1]["content"]


async def test_a_live_run_grades_with_the_judge(
    cases: dict[str, EvalCase], renderer: Renderer, thresholds: Thresholds
) -> None:
    settings = LiveSettings(api_key="k", base_url=BASE_URL, max_retries=0)
    transcript = load_transcripts()["fractions-beginner"]
    with respx.mock(base_url=BASE_URL) as router:
        router.post("/chat/completions").mock(
            return_value=httpx.Response(200, json=_completion('{"score": 2, "reason": "Wrong."}'))
        )
        judge = Judge(live_client(settings, httpx.AsyncHTTPTransport()), "gpt-4o-mini")
        result = await evaluate_case(
            cases["fractions-beginner"], transcript, renderer, thresholds, judge
        )
        await judge.client.close()

    assert result.verdicts["judged_good"] is False
    assert not result.passed
