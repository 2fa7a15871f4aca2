"""A prompt change makes recordings stale, and the gate names the cases and how to re-record."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

from course_agent.llm.recording import LiveSource
from learnflow_evals.cases import PROMPTS_DIR, EvalCase, load_cases
from learnflow_evals.evaluation import RecordingState, evaluate
from learnflow_evals.rendering import Renderer
from learnflow_evals.report import summarise, table
from learnflow_evals.thresholds import Thresholds
from learnflow_evals.transcripts import load_transcripts


def _changed_prompts(tmp_path: Path) -> Path:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, prompts)
    system = prompts / "lesson" / "v1" / "system.j2"
    system.write_text(
        system.read_text().replace("1 to 5 learning objectives", "1 to 4 learning objectives")
    )
    return prompts


async def test_current_recordings_are_not_stale(renderer: Renderer, thresholds: Thresholds) -> None:
    cases = load_cases()[:3]

    results = await evaluate(cases, load_transcripts(), renderer, thresholds)

    assert [r.state for r in results] == [RecordingState.CURRENT] * 3


async def test_a_prompt_change_fails_the_gate_naming_cases_and_commands(
    tmp_path: Path, thresholds: Thresholds
) -> None:
    cases: list[EvalCase] = [
        c for c in load_cases() if c.id in {"fractions-beginner", "fm-fenced-json"}
    ]
    transcripts = load_transcripts()
    # One of them as if it had been recorded live.
    live = LiveSource(model="gpt-4o-mini-2024-07-18", recorded_at=datetime.now(UTC), endpoint="x")
    transcripts["fractions-beginner"] = transcripts["fractions-beginner"].model_copy(
        update={"source": live}
    )

    results = await evaluate(
        cases, transcripts, Renderer.create(_changed_prompts(tmp_path)), thresholds
    )
    summary = summarise(results, thresholds)

    assert not summary.passed
    assert summary.stale == ("fractions-beginner", "fm-fenced-json")
    assert (
        summary.rerecord[0] == "make evals LIVE=1 CASES=fractions-beginner  (needs OPENAI_API_KEY)"
    )
    assert summary.rerecord[1].startswith("make evals-author  (authored answers: fm-fenced-json")
    printed = table(results, summary)
    stale_line = "stale recordings (the prompt or the case changed since): "
    assert f"{stale_line}fractions-beginner, fm-fenced-json" in printed
    assert "re-record: make evals LIVE=1 CASES=fractions-beginner" in printed
    assert "gate: FAIL" in printed


async def test_a_case_without_a_transcript_is_missing(
    renderer: Renderer, thresholds: Thresholds
) -> None:
    results = await evaluate(load_cases()[:1], {}, renderer, thresholds)
    summary = summarise(results, thresholds)

    assert summary.missing == ("fractions-beginner",)
    assert not summary.passed
