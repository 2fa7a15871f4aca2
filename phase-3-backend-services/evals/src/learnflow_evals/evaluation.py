"""Every case replayed through the pipeline from its transcript, and graded."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from course_agent.domain.prompt import RenderedPrompt

from learnflow_evals.cases import EvalCase
from learnflow_evals.graders import Graded, Verdict, grade
from learnflow_evals.judge import Judge
from learnflow_evals.pipeline import PipelineResult, replay_client, run_pipeline
from learnflow_evals.rendering import Renderer
from learnflow_evals.thresholds import Thresholds
from learnflow_evals.transcripts import Source, Transcript


class RecordingState(StrEnum):
    CURRENT = "current"
    MISSING = "missing"  # no transcript for the case
    STALE = "stale"  # the transcript answers another prompt: the prompt or case changed since


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    prompt: RenderedPrompt
    prompt_key: str
    state: RecordingState
    source: Source | None
    pipeline: PipelineResult | None  # None unless the recording is current
    verdicts: Mapping[str, Verdict]

    def expected(self, grader: str) -> bool:
        return grader not in self.case.expect.flagged_by

    def grader_ok(self, grader: str) -> Verdict:
        """Whether the grader said what the case expects; None when it does not apply."""
        verdict = self.verdicts.get(grader)
        return None if verdict is None else verdict == self.expected(grader)

    @property
    def outcome_ok(self) -> bool:
        return self.pipeline is not None and self.pipeline.outcome is self.case.expect.outcome

    @property
    def passed(self) -> bool:
        return self.outcome_ok and all(self.grader_ok(name) is not False for name in self.verdicts)


async def evaluate_case(
    case: EvalCase,
    transcript: Transcript | None,
    renderer: Renderer,
    thresholds: Thresholds,
    judge: Judge | None = None,
) -> CaseResult:
    prompt = renderer.render(case)
    key = renderer.key(prompt)
    if transcript is None or transcript.prompt_key != key:
        state = RecordingState.MISSING if transcript is None else RecordingState.STALE
        source = None if transcript is None else transcript.source
        return CaseResult(case, prompt, key, state, source, None, {})
    client, _ = replay_client(transcript.answers)
    result = await run_pipeline(client, prompt)
    lesson = None if result.lesson is None else result.lesson.draft
    judged = None if judge is None or lesson is None else await judge.score(case, lesson)
    verdicts = grade(Graded(case, prompt, result.outcome, lesson, judged), thresholds)
    return CaseResult(
        case, prompt, key, RecordingState.CURRENT, transcript.source, result, verdicts
    )


async def evaluate(
    cases: Sequence[EvalCase],
    transcripts: Mapping[str, Transcript],
    renderer: Renderer,
    thresholds: Thresholds,
    judge: Judge | None = None,
) -> list[CaseResult]:
    return [
        await evaluate_case(case, transcripts.get(case.id), renderer, thresholds, judge)
        for case in cases
    ]
