"""What the stack's replay mode serves: a recording (course_agent.llm.recording) for each case
that ends in a good lesson, and recorded_requests.yaml, the list a newcomer reads to know
which requests work."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from course_agent.llm.port import GeneratedLesson
from course_agent.llm.recording import (
    RecordedRequest,
    RecordedResponse,
    RecordedUsage,
    Recording,
    recording_path,
)
from course_agent.settings import Settings

from learnflow_evals.cases import EVALS_DIR, MODEL
from learnflow_evals.evaluation import CaseResult
from learnflow_evals.rendering import Renderer
from learnflow_evals.transcripts import Source

# Where the Course Agent reads recordings by default (its replay mode).
RECORDINGS_DIR: Path = Settings.model_fields["recordings_dir"].default
RECORDED_REQUESTS_FILE = EVALS_DIR / "recorded_requests.yaml"
_HEADER = """\
# Written by `make evals-author` from cases.yaml: the requests the Course Agent's replay mode
# (no API key) has a recorded answer for. Any learner id works; a request with `progress`
# only matches for a learner whose progress (GET /status/projection) holds exactly that.
# `make recordings` prints this list.
"""


def _recording(
    result: CaseResult, lesson: GeneratedLesson, source: Source, renderer: Renderer
) -> Recording:
    return Recording(
        key=result.prompt_key,
        request=RecordedRequest(
            model=MODEL,
            messages=result.prompt.messages,
            parameters=renderer.parameters.as_dict(),
        ),
        response=RecordedResponse(
            lesson=lesson.draft.model_dump(mode="json"),
            model=lesson.model,
            usage=RecordedUsage(
                prompt_tokens=lesson.prompt_tokens, completion_tokens=lesson.completion_tokens
            ),
            reasked=lesson.reasked,
        ),
        source=source,
    )


def _described(result: CaseResult) -> dict[str, Any]:
    case = result.case
    body = case.request.model_dump(mode="json", exclude={"learner_id"}, exclude_defaults=True)
    entry: dict[str, Any] = {"case": case.id, "body": body}
    if case.expect.about:
        entry["adversarial"] = True  # an instruction hidden in the learner's text
    personalisation = result.prompt.personalisation
    if case.progress is not None and personalisation is not None:
        progress: dict[str, Any] = {
            "weak_topics": list(case.progress.weak_topics),
            "strong_topics": list(case.progress.strong_topics),
            # Newest first, as GET /status/projection lists them.
            "recent_scores": [
                {"topic": s.topic, "score": s.score} for s in case.progress.recent_scores
            ],
        }
        if case.request.level is None:
            progress["suggested_level"] = result.prompt.level.value
        entry["progress"] = progress
    return entry


def exported_files(results: Sequence[CaseResult], renderer: Renderer) -> dict[Path, str]:
    """Every file the replay mode needs, path to exact content.

    Raises ``ValueError`` when two exported cases render the same prompt.
    """
    exported = [
        (r, r.pipeline.lesson, r.source)
        for r in results
        if r.case.exported and r.pipeline and r.pipeline.lesson and r.source
    ]
    files: dict[Path, str] = {}
    owner: dict[str, str] = {}
    for result, lesson, source in exported:
        if result.prompt_key in owner:
            raise ValueError(
                f"cases {owner[result.prompt_key]} and {result.case.id} render the same prompt"
            )
        owner[result.prompt_key] = result.case.id
        path = recording_path(RECORDINGS_DIR, result.prompt_key)
        recording = _recording(result, lesson, source, renderer)
        files[path] = recording.model_dump_json(indent=2) + "\n"
    listing = {"requests": [_described(r) for r, _, _ in exported]}
    files[RECORDED_REQUESTS_FILE] = _HEADER + yaml.safe_dump(
        listing, sort_keys=False, allow_unicode=True, width=100
    )
    return files
