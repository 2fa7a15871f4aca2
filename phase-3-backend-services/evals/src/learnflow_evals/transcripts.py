"""Transcripts: the raw chat completions a model gave for one eval case, with where they came from.

The service's replay mode keeps only the final lesson of an exchange. The evals keep every raw
answer instead (a fenced first answer, the repair, a refusal, a cut-off reply) so each replay
runs the Course Agent's own pipeline, validator and repair request included.
"""

import os
from pathlib import Path
from typing import Annotated, Any

from course_agent.llm.recording import AuthoredSource, LiveSource
from learnflow_contracts.strict import StrictModel
from pydantic import Field

from learnflow_evals.cases import EVALS_DIR

TRANSCRIPTS_DIR = EVALS_DIR / "transcripts"

Source = Annotated[LiveSource | AuthoredSource, Field(discriminator="kind")]


class Transcript(StrictModel):
    case: str
    # The recording key of the prompt these answers belong to: a prompt change makes it stale.
    prompt_key: str
    source: Source
    # Chat-completion response bodies, in the order the pipeline asked for them.
    answers: tuple[dict[str, Any], ...]


def transcript_path(directory: Path, case_id: str) -> Path:
    return directory / f"{case_id}.json"


def render_transcript(transcript: Transcript) -> str:
    """The exact file content: pretty-printed so reviews can read the diff."""
    return transcript.model_dump_json(indent=2) + "\n"


def load_transcripts(directory: Path = TRANSCRIPTS_DIR) -> dict[str, Transcript]:
    """Every transcript in ``directory`` by case id."""
    loaded = (Transcript.model_validate_json(p.read_bytes()) for p in directory.glob("*.json"))
    return {transcript.case: transcript for transcript in loaded}


def save_transcript(directory: Path, transcript: Transcript) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = transcript_path(directory, transcript.case)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(render_transcript(transcript), encoding="utf-8")
    partial.replace(path)
    return path
