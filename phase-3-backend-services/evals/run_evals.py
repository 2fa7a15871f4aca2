"""Offline evals: every case's prompt is answered from its recording and the lesson is scored.

Prints one row per case and exits non-zero when any check fails.

    uv run --frozen python phase-3-backend-services/evals/run_evals.py
"""

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass

from course_agent.domain.lesson import LessonDraft, validate_lesson
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.errors import LlmError
from course_agent.llm.replay import ReplayLessonGenerator
from eval_support import MODEL, RECORDINGS_DIR, TOKEN_BUDGET, EvalCase, Renderer, load_cases


@dataclass(frozen=True)
class Scored:
    case_id: str
    checks: dict[str, bool | None]  # None: the check does not apply to this case
    note: str = ""

    @property
    def passed(self) -> bool:
        return all(result is not False for result in self.checks.values())


def _objectives_covered(draft: LessonDraft) -> bool:
    taught = {objective_id for section in draft.sections for objective_id in section.objective_ids}
    return all(objective.id in taught for objective in draft.objectives)


def _quiz_answers_valid(draft: LessonDraft) -> bool:
    return all(0 <= q.answer_index < len(q.options) for q in draft.quiz)


def _mentions_weak_topics(prompt: RenderedPrompt, draft: LessonDraft) -> bool | None:
    if prompt.personalisation is None or not prompt.personalisation.weak_topics:
        return None
    text = draft.model_dump_json().casefold()
    return any(topic.casefold() in text for topic in prompt.personalisation.weak_topics)


CHECKS: dict[str, Callable[[RenderedPrompt, LessonDraft], bool | None]] = {
    "schema_valid": lambda _, draft: validate_lesson(draft) == [],
    "objectives_covered": lambda _, draft: _objectives_covered(draft),
    "quiz_answers_valid": lambda _, draft: _quiz_answers_valid(draft),
    "mentions_weak_topics": _mentions_weak_topics,
    "under_budget": lambda prompt, _: prompt.prompt_tokens <= TOKEN_BUDGET,
}


async def score(case: EvalCase, renderer: Renderer, replay: ReplayLessonGenerator) -> Scored:
    prompt = renderer.render(case)
    try:
        lesson = await replay.generate(prompt)
    except LlmError as error:
        return Scored(case.id, {"schema_valid": False}, f"{type(error).__name__}: {error}")
    checks = {name: check(prompt, lesson.draft) for name, check in CHECKS.items()}
    return Scored(case.id, checks, f"{prompt.prompt_tokens} prompt tokens")


def table(results: list[Scored]) -> str:
    width = max(len(r.case_id) for r in results)
    marks = {True: "pass", False: "FAIL", None: "-"}
    header = f"{'case':<{width}}  " + "  ".join(CHECKS) + "  note"
    rows = [
        f"{r.case_id:<{width}}  "
        + "  ".join(f"{marks[r.checks.get(name)]:<{len(name)}}" for name in CHECKS)
        + f"  {r.note}"
        for r in results
    ]
    return "\n".join([header, *rows])


async def run() -> list[Scored]:
    renderer = Renderer.create()
    replay = ReplayLessonGenerator(RECORDINGS_DIR, MODEL)
    return [await score(case, renderer, replay) for case in load_cases()]


def main() -> int:
    results = asyncio.run(run())
    print(table(results))
    failed = [r.case_id for r in results if not r.passed]
    print(f"{len(results) - len(failed)} of {len(results)} eval cases passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
