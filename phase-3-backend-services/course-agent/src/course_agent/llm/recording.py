"""Recorded LLM answers: their file format and the key that finds one for a prompt.

A recording is found by a hash of everything the model saw: model, messages, the lesson
schema and the sampling parameters. Change any of them and the old recording no longer
matches, which is the point: a replayed answer must belong to the exact prompt.
"""

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from learnflow_contracts.strict import StrictModel
from pydantic import Field

from course_agent.domain.chat import ChatMessage
from course_agent.domain.lesson import lesson_json_schema
from course_agent.llm.parameters import GenerationParameters


class RecordedRequest(StrictModel):
    model: str
    messages: tuple[ChatMessage, ...]
    parameters: dict[str, float | int]


class RecordedUsage(StrictModel):
    prompt_tokens: int
    completion_tokens: int


class RecordedResponse(StrictModel):
    lesson: dict[str, Any]
    model: str
    usage: RecordedUsage
    reasked: bool


class LiveSource(StrictModel):
    """Answered by a real model in record mode."""

    kind: Literal["live"] = "live"
    model: str
    recorded_at: datetime
    # The API base URL that answered; older recordings did not keep it.
    endpoint: str | None = None


class AuthoredSource(StrictModel):
    """Written by a person, e.g. for offline evals."""

    kind: Literal["authored"] = "authored"
    by: str
    note: str


class Recording(StrictModel):
    key: str
    request: RecordedRequest
    response: RecordedResponse
    source: Annotated[LiveSource | AuthoredSource, Field(discriminator="kind")]


def recording_key(
    model: str, messages: tuple[ChatMessage, ...], parameters: GenerationParameters
) -> str:
    identity = {
        "model": model,
        "messages": [message.model_dump() for message in messages],
        "schema": lesson_json_schema(),
        "parameters": parameters.as_dict(),
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recording_path(recordings_dir: Path, key: str) -> Path:
    return recordings_dir / f"{key}.json"


def load_recording(recordings_dir: Path, key: str) -> Recording | None:
    path = recording_path(recordings_dir, key)
    if not path.is_file():
        return None
    return Recording.model_validate_json(path.read_bytes())


def save_recording(recordings_dir: Path, recording: Recording) -> Path:
    """Write ``<key>.json`` atomically, pretty-printed so reviews can read the diff."""
    recordings_dir.mkdir(parents=True, exist_ok=True)
    path = recording_path(recordings_dir, recording.key)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(recording.model_dump_json(indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path
