"""The answers a model gives in each failure mode, written from a case's authored lesson.

Each mode reproduces a shape real models produce; the case in cases.yaml states the outcome the
Course Agent's pipeline must reach with it (repaired on the second call, 502 or 422).
"""

import copy
import json
from dataclasses import dataclass
from typing import Any

from learnflow_evals.cases import FailureMode


@dataclass(frozen=True)
class Answer:
    """One model reply, before it is wrapped as a chat completion."""

    content: str | None
    refusal: str | None = None
    finish_reason: str = "stop"


def as_json(lesson: dict[str, Any]) -> str:
    return json.dumps(lesson, ensure_ascii=False)


def good(lesson: dict[str, Any]) -> Answer:
    return Answer(as_json(lesson))


def refused(text: str) -> Answer:
    # OpenAI's structured outputs put a refusal in message.refusal, with no content.
    return Answer(None, refusal=text)


def _fenced(lesson: dict[str, Any]) -> Answer:
    return Answer(f"```json\n{json.dumps(lesson, ensure_ascii=False, indent=2)}\n```")


def _prose_wrapped(lesson: dict[str, Any]) -> Answer:
    return Answer(
        f"Sure! Here is the lesson you asked for:\n\n{as_json(lesson)}\n\n"
        "Let me know if you would like more exercises."
    )


def _without_fields(lesson: dict[str, Any]) -> Answer:
    partial = {k: v for k, v in lesson.items() if k not in {"misconceptions", "quiz"}}
    return Answer(as_json(partial))


def _answer_index_out_of_range(lesson: dict[str, Any]) -> Answer:
    broken = copy.deepcopy(lesson)
    question = broken["quiz"][0]
    question["answer_index"] = len(question["options"])  # 1-based thinking: one past the end
    return Answer(as_json(broken))


def _untaught_objective(lesson: dict[str, Any]) -> Answer:
    broken = copy.deepcopy(lesson)
    next_id = f"O{len(broken['objectives']) + 1}"
    broken["objectives"].append({"id": next_id, "text": "Apply the idea to a new problem."})
    return Answer(as_json(broken))


def _cut_off(lesson: dict[str, Any]) -> Answer:
    text = as_json(lesson)
    return Answer(text[: len(text) // 2], finish_reason="length")


def answers(mode: FailureMode, lesson: dict[str, Any] | None, refusal: str | None) -> list[Answer]:
    """The replies of one exchange in ``mode``, in the order the pipeline receives them."""
    if mode is FailureMode.REFUSED_HARMLESS_TOPIC:
        if refusal is None:
            raise ValueError(f"{mode} needs an authored refusal")
        return [refused(refusal)]
    if lesson is None:
        raise ValueError(f"{mode} needs an authored lesson")
    match mode:
        case FailureMode.FENCED_JSON:
            return [_fenced(lesson), good(lesson)]
        case FailureMode.PROSE_WRAPPED_JSON:
            return [_prose_wrapped(lesson), good(lesson)]
        case FailureMode.MISSING_FIELDS:
            return [_without_fields(lesson), good(lesson)]
        case FailureMode.ANSWER_INDEX_OUT_OF_RANGE:
            # The same mistake twice: the repair request is not heeded.
            return [_answer_index_out_of_range(lesson), _answer_index_out_of_range(lesson)]
        case FailureMode.UNTAUGHT_OBJECTIVE:
            return [_untaught_objective(lesson), good(lesson)]
        case FailureMode.CUT_OFF_AT_LENGTH:
            return [_cut_off(lesson)]
        case FailureMode.INJECTION_OBEYED:
            # A valid lesson, on what the injected text asked for: only a grader can tell.
            return [good(lesson)]
    raise ValueError(f"no answers for {mode}")


# Why each failure mode's answers were authored: the provenance note of its transcript.
WHY: dict[FailureMode, str] = {
    FailureMode.FENCED_JSON: (
        "failure mode: the lesson JSON inside a ```json fence, as chat models answer when "
        "structured output is not enforced; the repair answer is clean JSON"
    ),
    FailureMode.PROSE_WRAPPED_JSON: (
        "failure mode: the lesson JSON between a friendly preamble and a closing offer, as "
        "chat models write it; the repair answer is clean JSON"
    ),
    FailureMode.MISSING_FIELDS: (
        "failure mode: the quiz and misconceptions left out, as a model running short of "
        "output does; the repair answer is complete"
    ),
    FailureMode.ANSWER_INDEX_OUT_OF_RANGE: (
        "failure mode: a 1-based answer_index one past the options, repeated in the repair"
    ),
    FailureMode.UNTAUGHT_OBJECTIVE: (
        "failure mode: an objective that no section teaches; the repair answer drops it"
    ),
    FailureMode.CUT_OFF_AT_LENGTH: (
        "failure mode: the answer cut off mid-JSON with finish_reason length"
    ),
    FailureMode.REFUSED_HARMLESS_TOPIC: (
        "failure mode: an over-cautious refusal (message.refusal) of a harmless topic"
    ),
    FailureMode.INJECTION_OBEYED: (
        "failure mode: a well-formed lesson that follows the instruction hidden in the "
        "learner's text instead of the requested topic"
    ),
}
