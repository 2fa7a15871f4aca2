"""`learnflow-evals run [--live] [--cases a,b]` scores the cases and gates on the thresholds;
`learnflow-evals author [--check]` refreshes the authored transcripts and replay recordings.

    make evals            # replay every case from its transcript, print the table, gate
    make evals LIVE=1     # first record every live-recordable case from the live model
    make evals-author     # after changing a prompt, a case or an authored answer
"""

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from learnflow_evals import sync
from learnflow_evals.cases import EVALS_DIR, MODEL, EvalCase, load_cases
from learnflow_evals.evaluation import evaluate
from learnflow_evals.judge import Judge
from learnflow_evals.live import (
    DEFAULT_BASE_URL,
    LiveSettings,
    live_client,
    live_recordable,
    record_case,
)
from learnflow_evals.rendering import Renderer
from learnflow_evals.report import as_json, markdown, summarise, table
from learnflow_evals.thresholds import load_thresholds
from learnflow_evals.transcripts import TRANSCRIPTS_DIR, load_transcripts

REPORT_DIR = EVALS_DIR / "report"


def _select(cases: Sequence[EvalCase], wanted: str | None) -> list[EvalCase]:
    if not wanted:
        return list(cases)
    ids = [case_id.strip() for case_id in wanted.split(",") if case_id.strip()]
    unknown = sorted(set(ids) - {case.id for case in cases})
    if unknown:
        raise SystemExit(f"unknown case ids: {', '.join(unknown)}")
    return [case for case in cases if case.id in ids]


def live_settings(environ: dict[str, str]) -> LiveSettings | None:
    """From the environment the Course Agent reads too; None without an API key."""
    key = environ.get("COURSE_AGENT_LLM_API_KEY") or environ.get("OPENAI_API_KEY")
    if not key:
        return None
    base_url = (
        environ.get("COURSE_AGENT_LLM_BASE_URL")
        or environ.get("OPENAI_BASE_URL")
        or DEFAULT_BASE_URL
    )
    return LiveSettings(api_key=key, base_url=base_url)


async def _record_live(
    cases: Sequence[EvalCase], renderer: Renderer, settings: LiveSettings
) -> None:
    print(f"recording live answers from {settings.base_url}")
    for case in live_recordable(cases):
        print(await record_case(case, renderer, settings, TRANSCRIPTS_DIR), flush=True)


async def run(live: bool, wanted: str | None, report_dir: Path) -> int:
    cases = _select(load_cases(), wanted)
    renderer = Renderer.create()
    thresholds = load_thresholds()
    judge = None
    if live:
        settings = live_settings(dict(os.environ))
        if settings is None:
            print("LIVE=1 needs OPENAI_API_KEY (or COURSE_AGENT_LLM_API_KEY)", file=sys.stderr)
            return 2
        await _record_live(cases, renderer, settings)
        # The replay mode serves what was just recorded.
        sync.apply(await sync.plan(load_cases(), renderer, thresholds))
        judge = Judge(live_client(settings, httpx.AsyncHTTPTransport()), MODEL)
    results = await evaluate(cases, load_transcripts(TRANSCRIPTS_DIR), renderer, thresholds, judge)
    if judge is not None:
        await judge.client.close()
    summary = summarise(results, thresholds)
    print(table(results, summary))
    report_dir.mkdir(parents=True, exist_ok=True)
    report = as_json(results, summary)
    (report_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (report_dir / "report.md").write_text(markdown(results, summary))
    print(f"reports: {report_dir / 'report.json'}, {report_dir / 'report.md'}")
    return 0 if summary.passed else 1


async def author(check: bool) -> int:
    planned = await sync.plan(load_cases(), Renderer.create(), load_thresholds())
    if check:
        for path in planned.out_of_date:
            print(f"stale or missing: {path.relative_to(EVALS_DIR)}")
        for path in planned.stray:
            print(f"not produced by any case: {path.relative_to(EVALS_DIR)}")
        if planned.out_of_date or planned.stray:
            print("run `make evals-author` to refresh them", file=sys.stderr)
            return 1
        return 0
    written, removed = sync.apply(planned)
    print(f"wrote {written} file(s), removed {removed}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="learnflow-evals", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    running = commands.add_parser("run", help="score every case and gate on the thresholds")
    running.add_argument("--live", action="store_true", help="record from the live model first")
    running.add_argument("--cases", help="comma-separated case ids (default: all)")
    running.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    authoring = commands.add_parser("author", help="refresh authored transcripts and recordings")
    authoring.add_argument("--check", action="store_true", help="only report what is out of date")
    args = parser.parse_args()
    if args.command == "run":
        return asyncio.run(run(args.live, args.cases, args.report_dir))
    return asyncio.run(author(args.check))


if __name__ == "__main__":
    sys.exit(main())
