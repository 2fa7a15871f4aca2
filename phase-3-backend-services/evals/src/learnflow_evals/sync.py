"""`make evals-author`: bring the files on disk in line with cases.yaml and authored_lessons.yaml.

Writes an authored transcript for every case without a live one, then the replay recordings
and recorded_requests.yaml from what the pipeline makes of all transcripts. Live transcripts
are never overwritten here; `make evals LIVE=1` replaces them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from learnflow_evals.authoring import authored_transcript, load_authored
from learnflow_evals.cases import EvalCase
from learnflow_evals.evaluation import evaluate
from learnflow_evals.export import RECORDINGS_DIR, exported_files
from learnflow_evals.rendering import Renderer
from learnflow_evals.thresholds import Thresholds
from learnflow_evals.transcripts import (
    TRANSCRIPTS_DIR,
    Transcript,
    load_transcripts,
    render_transcript,
    transcript_path,
)


@dataclass(frozen=True)
class Plan:
    wanted: dict[Path, str]  # file to exact content
    stray: tuple[Path, ...]  # files no case produces

    @property
    def out_of_date(self) -> list[Path]:
        return sorted(
            p for p, text in self.wanted.items() if not p.exists() or p.read_text() != text
        )


async def plan(cases: Sequence[EvalCase], renderer: Renderer, thresholds: Thresholds) -> Plan:
    on_disk = load_transcripts(TRANSCRIPTS_DIR)
    authored = load_authored()
    transcripts: dict[str, Transcript] = {}
    wanted: dict[Path, str] = {}
    kept: set[Path] = set()
    for case in cases:
        existing = on_disk.get(case.id)
        if existing is not None and existing.source.kind == "live":
            transcripts[case.id] = existing
            kept.add(transcript_path(TRANSCRIPTS_DIR, case.id))
            continue
        if case.id not in authored:
            raise ValueError(f"case {case.id} has neither a live transcript nor an authored answer")
        prompt = renderer.render(case)
        transcript = authored_transcript(case, prompt, renderer.key(prompt), authored[case.id])
        transcripts[case.id] = transcript
        wanted[transcript_path(TRANSCRIPTS_DIR, case.id)] = render_transcript(transcript)
    results = await evaluate(cases, transcripts, renderer, thresholds)
    wanted |= exported_files(results, renderer)
    present = {*TRANSCRIPTS_DIR.glob("*.json"), *RECORDINGS_DIR.glob("*.json")}
    return Plan(wanted, tuple(sorted(present - set(wanted) - kept)))


def apply(planned: Plan) -> tuple[int, int]:
    """Write what is out of date and remove strays; returns (written, removed)."""
    out_of_date = planned.out_of_date
    for path in out_of_date:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(planned.wanted[path], encoding="utf-8")
    for path in planned.stray:
        path.unlink()
    return len(out_of_date), len(planned.stray)
