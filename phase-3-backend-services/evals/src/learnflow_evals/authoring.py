"""Authored transcripts: hand-written answers (evals/authored_lessons.yaml) for every case that
has no live recording, each with a note saying why it was written by hand."""

from pathlib import Path
from typing import Any

import yaml
from course_agent.domain.prompt import RenderedPrompt
from course_agent.llm.recording import AuthoredSource
from course_agent.tokenizer import encoding_for_model

from learnflow_evals.cases import EVALS_DIR, MODEL, EvalCase
from learnflow_evals.failure_modes import WHY, Answer, answers, good, refused
from learnflow_evals.transcripts import Transcript

AUTHORED_LESSONS_FILE = EVALS_DIR / "authored_lessons.yaml"
AUTHOR = "LearnFlow curriculum team"
NO_LIVE_MODEL = "no live model was reachable where the evals were written"


def load_authored(path: Path = AUTHORED_LESSONS_FILE) -> dict[str, dict[str, Any]]:
    """Case id to ``{lesson: ...}`` or ``{refusal: "..."}``; a bare lesson is a ``lesson``."""
    entries: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())
    return {
        case_id: entry if set(entry) <= {"lesson", "refusal"} else {"lesson": entry}
        for case_id, entry in entries.items()
    }


def _why(case: EvalCase) -> str:
    if case.failure_mode is not None:
        return WHY[case.failure_mode]
    if case.expect.must_refuse:
        return (
            f"a refusal (message.refusal) as OpenAI models answer harmful requests; {NO_LIVE_MODEL}"
        )
    return f"a good answer written by hand; {NO_LIVE_MODEL}"


def _completion(
    case_id: str, turn: int, answer: Answer, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-authored-{case_id}-{turn}",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.content,
                    "refusal": answer.refusal,
                },
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def authored_transcript(
    case: EvalCase, prompt: RenderedPrompt, prompt_key: str, entry: dict[str, Any]
) -> Transcript:
    lesson, refusal = entry.get("lesson"), entry.get("refusal")
    if case.failure_mode is not None:
        replies = answers(case.failure_mode, lesson, refusal)
    elif refusal is not None:
        replies = [refused(refusal)]
    elif lesson is not None:
        replies = [good(lesson)]
    else:
        raise ValueError(f"authored entry for {case.id} has neither a lesson nor a refusal")
    encoding = encoding_for_model(MODEL)
    completions, asked = [], prompt.prompt_tokens
    for turn, reply in enumerate(replies):
        spent = len(encoding.encode(reply.content or reply.refusal or ""))
        completions.append(_completion(case.id, turn, reply, asked, spent))
        # A repair request carries the whole conversation so far (approximately).
        asked += spent + 60
    return Transcript(
        case=case.id,
        prompt_key=prompt_key,
        source=AuthoredSource(by=AUTHOR, note=f"eval case {case.id}: {_why(case)}"),
        answers=tuple(completions),
    )
