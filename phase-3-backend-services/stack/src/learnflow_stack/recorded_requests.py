"""What the Course Agent's replay mode (no API key) can answer, told to a newcomer.

The list is evals/recorded_requests.yaml, written with the recordings by `make evals-author`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from learnflow_stack.paths import PHASE_DIR

RECORDED_REQUESTS_FILE = PHASE_DIR / "evals" / "recorded_requests.yaml"
RECORDINGS_DIR = PHASE_DIR / "evals" / "recordings"
_TOPIC_SHOWN = 60  # characters of a progress topic worth printing
_ADVERSARIAL = "   (an injection test: the lesson stays on the subject)"


@dataclass(frozen=True)
class RecordedRequest:
    case: str
    body: dict[str, Any]  # POST /generate-lesson without learner_id
    progress: dict[str, Any] | None  # what the learner's projection must hold, if anything
    adversarial: bool = False  # carries an injected instruction: a test, not an example

    def body_for(self, learner: str) -> str:
        return json.dumps({"learner_id": learner, **self.body}, ensure_ascii=False)

    def progress_note(self) -> str:
        """The learner progress this request needs, in one line; empty for a new learner."""
        if self.progress is None:
            return ""
        parts = []
        for name in ("weak_topics", "strong_topics"):
            topics = self.progress.get(name) or []
            if topics:
                parts.append(f"{name.replace('_', ' ')}: {', '.join(_short(t) for t in topics)}")
        scores = self.progress.get("recent_scores") or []
        if scores:
            listed = ", ".join(f"{_short(s['topic'])} {s['score']}" for s in scores)
            parts.append(f"recent scores (newest first): {listed}")
        if "suggested_level" in self.progress:
            parts.append(f"suggested level: {self.progress['suggested_level']}")
        return "; ".join(parts)


def _short(topic: str) -> str:
    return topic if len(topic) <= _TOPIC_SHOWN else topic[: _TOPIC_SHOWN - 1] + "…"


def load_recorded_requests(path: Path = RECORDED_REQUESTS_FILE) -> list[RecordedRequest]:
    listing = yaml.safe_load(path.read_text()) or {}
    return [
        RecordedRequest(
            entry["case"], entry["body"], entry.get("progress"), entry.get("adversarial", False)
        )
        for entry in listing.get("requests", [])
    ]


def recording_count(recordings_dir: Path = RECORDINGS_DIR) -> int:
    return len(list(recordings_dir.glob("*.json")))


def listing(requests: list[RecordedRequest], recordings: int, learner: str) -> str:
    """Every recorded request, as `learnflow-stack recordings` prints it."""
    new_learner = [r for r in requests if r.progress is None]
    with_progress = [r for r in requests if r.progress is not None]
    lines = [
        f"{recordings} recorded answers in {RECORDINGS_DIR}; these {len(requests)} requests have "
        "one (POST /generate-lesson; any learner id works, shown here for "
        f"{learner}). Anything else answers 503 llm_recording_missing in replay mode.",
        "",
        f"For a new learner (no progress yet), {len(new_learner)}:",
        *(f"  {r.body_for(learner)}{_ADVERSARIAL if r.adversarial else ''}" for r in new_learner),
        "",
        f"For a learner whose progress (GET /status/projection) holds exactly this, "
        f"{len(with_progress)}:",
    ]
    for request in with_progress:
        lines += [f"  {request.body_for(learner)}", f"      needs {request.progress_note()}"]
    lines += [
        "",
        "Use a live model instead: export OPENAI_API_KEY=... before `make run`.",
    ]
    return "\n".join(lines)


def few(requests: list[RecordedRequest], learner: str, count: int = 3) -> list[str]:
    """A handful of request bodies that work for a new learner, for the `make run` banner."""
    plain = [r for r in requests if r.progress is None and not r.adversarial]
    return [r.body_for(learner) for r in plain[:count]]
