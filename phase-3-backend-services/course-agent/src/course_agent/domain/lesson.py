"""The lesson an LLM writes, and the rules a lesson must pass before anyone sees it.

``LessonDraft`` is the schema sent to the model. OpenAI's strict structured outputs need every
field required, no defaults and no length keywords, so the schema only fixes the shape;
``validate_lesson`` then checks sizes and cross-references and explains each problem in a
sentence the model can act on when it is asked to repair its answer.
The shape follows Oak National Academy's lesson design: outcomes, prior knowledge, key
learning points, misconceptions with their corrections, timed learning sections, practice
and a quiz whose questions point back to the outcomes.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from learnflow_contracts.strict import StrictModel
from pydantic import Field, ValidationError


class Objective(StrictModel):
    id: str = Field(description='Short id: "O1", "O2", ... in order.')
    text: str = Field(description="What the learner will be able to do after the lesson.")


class Misconception(StrictModel):
    misconception: str = Field(description="A mistaken belief learners of this topic often hold.")
    correction: str = Field(description="How the lesson addresses and corrects it.")


class Section(StrictModel):
    heading: str
    body_markdown: str = Field(description="The teaching text of this section, in Markdown.")
    objective_ids: list[str] = Field(description="Ids of the objectives this section teaches.")
    minutes: int = Field(description="Minutes a learner needs for this section.")


class Exercise(StrictModel):
    prompt: str = Field(description="The task the learner does.")
    objective_ids: list[str] = Field(description="Ids of the objectives this exercise practises.")
    solution: str = Field(description="A worked solution.")


class QuizQuestion(StrictModel):
    question: str
    options: list[str] = Field(description="2 to 6 distinct answer options.")
    answer_index: int = Field(description="0-based index of the correct option in options.")
    objective_ids: list[str] = Field(description="Ids of the objectives this question checks.")
    explanation: str = Field(description="Why the correct option is right.")


class LessonDraft(StrictModel):
    title: str
    summary: str = Field(description="Two or three sentences saying what the lesson covers.")
    objectives: list[Objective]
    prior_knowledge: list[str] = Field(description="What the learner should already know.")
    key_points: list[str] = Field(description="The key learning points of the lesson.")
    misconceptions: list[Misconception]
    sections: list[Section]
    exercises: list[Exercise]
    quiz: list[QuizQuestion]


def lesson_json_schema() -> dict[str, Any]:
    """The JSON schema of ``LessonDraft``, as described to models and hashed into recordings."""
    return LessonDraft.model_json_schema()


@dataclass(frozen=True)
class _Count:
    low: int
    high: int


_OBJECTIVE_ID = re.compile(r"^O[1-9][0-9]?$")
# Item counts. The event contract (LessonGeneratedV1) allows 1..10 objectives.
_OBJECTIVES = _Count(1, 10)
_PRIOR_KNOWLEDGE = _Count(0, 8)
_KEY_POINTS = _Count(1, 10)
_MISCONCEPTIONS = _Count(0, 6)
_SECTIONS = _Count(1, 12)
_EXERCISES = _Count(1, 10)
_QUIZ = _Count(1, 10)
_OPTIONS = _Count(2, 6)
_REFERENCES = _Count(1, 10)  # objective ids per section, exercise or question
_MINUTES_MAX = 120
# Most characters per text field. The event contract caps the title at 200.
_TITLE, _SUMMARY, _LINE, _HEADING, _BODY = 200, 1000, 300, 120, 4000
_EXERCISE_PROMPT, _SOLUTION, _QUESTION, _OPTION, _EXPLANATION = 1000, 2000, 500, 200, 500


def _count(path: str, items: Sequence[object], limits: _Count) -> Iterator[str]:
    if not limits.low <= len(items) <= limits.high:
        yield f"{path} has {len(items)} items; it must have {limits.low} to {limits.high}"


def _text(path: str, value: str, max_chars: int) -> Iterator[str]:
    if not value.strip():
        yield f"{path} must not be empty"
    elif len(value) > max_chars:
        yield f"{path} has {len(value)} characters; at most {max_chars} are allowed"


def _references(path: str, ids: Sequence[str], known: frozenset[str]) -> Iterator[str]:
    yield from _count(path, ids, _REFERENCES)
    for unknown in sorted(set(ids) - known):
        yield f"{path} refers to unknown objective {unknown!r}"


def _lines(path: str, lines: Sequence[str], limits: _Count) -> Iterator[str]:
    yield from _count(path, lines, limits)
    for i, line in enumerate(lines):
        yield from _text(f"{path}[{i}]", line, _LINE)


def _misconception_problems(misconceptions: Sequence[Misconception]) -> Iterator[str]:
    yield from _count("misconceptions", misconceptions, _MISCONCEPTIONS)
    for i, item in enumerate(misconceptions):
        yield from _text(f"misconceptions[{i}].misconception", item.misconception, _LINE)
        yield from _text(f"misconceptions[{i}].correction", item.correction, _LINE)


def _objective_problems(objectives: Sequence[Objective]) -> Iterator[str]:
    yield from _count("objectives", objectives, _OBJECTIVES)
    seen: set[str] = set()
    for i, objective in enumerate(objectives):
        if not _OBJECTIVE_ID.match(objective.id):
            yield f'objectives[{i}].id {objective.id!r} must look like "O1", "O2", ...'
        if objective.id in seen:
            yield f"objectives[{i}].id {objective.id!r} is used by more than one objective"
        seen.add(objective.id)
        yield from _text(f"objectives[{i}].text", objective.text, _LINE)


def _section_problems(sections: Sequence[Section], known: frozenset[str]) -> Iterator[str]:
    yield from _count("sections", sections, _SECTIONS)
    for i, section in enumerate(sections):
        yield from _text(f"sections[{i}].heading", section.heading, _HEADING)
        yield from _text(f"sections[{i}].body_markdown", section.body_markdown, _BODY)
        yield from _references(f"sections[{i}].objective_ids", section.objective_ids, known)
        if not 1 <= section.minutes <= _MINUTES_MAX:
            yield f"sections[{i}].minutes is {section.minutes}; it must be 1 to {_MINUTES_MAX}"
    taught = {objective_id for section in sections for objective_id in section.objective_ids}
    for uncovered in sorted(known - taught):
        yield f"objective {uncovered!r} is not taught by any section"


def _exercise_problems(exercises: Sequence[Exercise], known: frozenset[str]) -> Iterator[str]:
    yield from _count("exercises", exercises, _EXERCISES)
    for i, exercise in enumerate(exercises):
        yield from _text(f"exercises[{i}].prompt", exercise.prompt, _EXERCISE_PROMPT)
        yield from _text(f"exercises[{i}].solution", exercise.solution, _SOLUTION)
        yield from _references(f"exercises[{i}].objective_ids", exercise.objective_ids, known)


def _quiz_problems(quiz: Sequence[QuizQuestion], known: frozenset[str]) -> Iterator[str]:
    yield from _count("quiz", quiz, _QUIZ)
    for i, question in enumerate(quiz):
        path = f"quiz[{i}]"
        yield from _text(f"{path}.question", question.question, _QUESTION)
        yield from _text(f"{path}.explanation", question.explanation, _EXPLANATION)
        yield from _references(f"{path}.objective_ids", question.objective_ids, known)
        yield from _count(f"{path}.options", question.options, _OPTIONS)
        seen: set[str] = set()
        for j, option in enumerate(question.options):
            yield from _text(f"{path}.options[{j}]", option, _OPTION)
            comparable = option.strip().casefold()
            if comparable in seen:
                yield f"{path}.options[{j}] {option!r} repeats an earlier option"
            seen.add(comparable)
        if not 0 <= question.answer_index < len(question.options):
            yield (
                f"{path}.answer_index is {question.answer_index}; it must be an index into "
                f"options (0 to {len(question.options) - 1})"
            )


def validate_lesson(draft: LessonDraft) -> list[str]:
    """Every rule the lesson breaks, as sentences a model can fix; empty when it is valid."""
    known = frozenset(objective.id for objective in draft.objectives)
    return [
        *_text("title", draft.title, _TITLE),
        *_text("summary", draft.summary, _SUMMARY),
        *_objective_problems(draft.objectives),
        *_lines("prior_knowledge", draft.prior_knowledge, _PRIOR_KNOWLEDGE),
        *_lines("key_points", draft.key_points, _KEY_POINTS),
        *_misconception_problems(draft.misconceptions),
        *_section_problems(draft.sections, known),
        *_exercise_problems(draft.exercises, known),
        *_quiz_problems(draft.quiz, known),
    ]


class InvalidLesson(ValueError):
    """A model's answer is not a usable lesson; ``problems`` say why, one sentence each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def _describe(error: ValidationError) -> list[str]:
    described = []
    for detail in error.errors(include_url=False, include_input=False):
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
        )
        described.append(f"{path.lstrip('.') or 'the answer'}: {detail['msg']}")
    return described


def parse_lesson(answer: str | dict[str, Any]) -> LessonDraft:
    """Parse a model's JSON answer (text or already decoded) into a lesson that passes every rule.

    Raises ``InvalidLesson`` listing the problems.
    """
    try:
        if isinstance(answer, str):
            draft = LessonDraft.model_validate_json(answer)
        else:
            draft = LessonDraft.model_validate(answer)
    except ValidationError as error:
        raise InvalidLesson(_describe(error)) from error
    problems = validate_lesson(draft)
    if problems:
        raise InvalidLesson(problems)
    return draft
