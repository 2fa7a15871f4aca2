"""Write evals/recordings/ from cases.yaml and authored_lessons.yaml.

Each case's prompt is rendered with the active prompt version and paired with its
hand-written lesson, as a recording whose source is "authored". Run it after changing a
prompt, a case or an authored lesson; ``--check`` only reports whether the files are current.

    uv run --frozen python phase-3-backend-services/evals/author_recordings.py [--check]
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from course_agent.domain.token_budget import encoding_for_model
from course_agent.llm.parameters import GenerationParameters
from course_agent.llm.recording import (
    AuthoredSource,
    RecordedRequest,
    RecordedResponse,
    RecordedUsage,
    Recording,
    recording_key,
    recording_path,
)
from eval_support import (
    AUTHORED_LESSONS_FILE,
    MODEL,
    RECORDINGS_DIR,
    Renderer,
    load_cases,
)

AUTHOR = "LearnFlow curriculum team"


def authored_recordings() -> dict[Path, str]:
    """Every recording file the evals need, path to exact content."""
    lessons: dict[str, dict[str, Any]] = yaml.safe_load(AUTHORED_LESSONS_FILE.read_text())
    renderer = Renderer.create()
    encoding = encoding_for_model(MODEL)
    parameters = GenerationParameters()
    files = {}
    for case in load_cases():
        prompt = renderer.render(case)
        lesson = lessons[case.id]
        key = recording_key(MODEL, prompt.messages, parameters)
        recording = Recording(
            key=key,
            request=RecordedRequest(
                model=MODEL, messages=prompt.messages, parameters=parameters.as_dict()
            ),
            response=RecordedResponse(
                lesson=lesson,
                model=MODEL,
                usage=RecordedUsage(
                    prompt_tokens=prompt.prompt_tokens,
                    completion_tokens=len(encoding.encode(json.dumps(lesson))),
                ),
                reasked=False,
            ),
            source=AuthoredSource(by=AUTHOR, note=f"eval case {case.id}"),
        )
        files[recording_path(RECORDINGS_DIR, key)] = recording.model_dump_json(indent=2) + "\n"
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale or stray files")
    args = parser.parse_args()
    wanted = authored_recordings()
    present = set(RECORDINGS_DIR.glob("*.json"))
    stale = sorted(p.name for p, text in wanted.items() if not p.exists() or p.read_text() != text)
    stray = sorted(p.name for p in present - set(wanted))
    if args.check:
        for name in stale:
            print(f"stale or missing: {name}")
        for name in stray:
            print(f"not produced by any case: {name}")
        if stale or stray:
            print("run evals/author_recordings.py to refresh the recordings", file=sys.stderr)
            return 1
        return 0
    RECORDINGS_DIR.mkdir(exist_ok=True)
    for path in present - set(wanted):
        path.unlink()
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {len(wanted)} recordings, removed {len(stray)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
