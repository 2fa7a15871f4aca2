"""What a run found: per-grader pass rates against the thresholds, provenance, stale recordings;
as a printed table, JSON and Markdown."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from learnflow_evals.evaluation import CaseResult, RecordingState
from learnflow_evals.graders import GRADERS
from learnflow_evals.thresholds import Thresholds

OUTCOME = "outcome"
LIVE_COMMAND = "make evals LIVE=1 CASES={cases}"
AUTHOR_COMMAND = "make evals-author"


@dataclass(frozen=True)
class Rate:
    name: str
    applicable: int
    passed: int
    minimum: float

    @property
    def rate(self) -> float:
        return self.passed / self.applicable if self.applicable else 1.0

    @property
    def ok(self) -> bool:
        return self.rate >= self.minimum

    @property
    def shown(self) -> str:
        """The rate as printed: n/a when no case gave the grader anything to judge."""
        return f"{self.rate:.1%}" if self.applicable else "n/a"


@dataclass(frozen=True)
class Summary:
    cases: int
    rates: tuple[Rate, ...]
    provenance: dict[str, int]  # live / authored / none, counted over cases
    stale: tuple[str, ...]
    missing: tuple[str, ...]
    rerecord: tuple[str, ...]  # commands that bring stale or missing recordings back

    @property
    def passed(self) -> bool:
        return not (self.stale or self.missing) and all(rate.ok for rate in self.rates)


def _rate(name: str, oks: Sequence[bool | None], thresholds: Thresholds) -> Rate:
    applicable = [ok for ok in oks if ok is not None]
    return Rate(name, len(applicable), sum(applicable), thresholds.min_rate(name))


def _rerecord_commands(results: Sequence[CaseResult]) -> tuple[str, ...]:
    """Live-recordable cases are re-recorded live; failure modes and authored ones by hand."""
    behind = [r for r in results if r.state is not RecordingState.CURRENT]
    live = [r.case.id for r in behind if r.source is not None and r.source.kind == "live"]
    authored = [r.case.id for r in behind if r.case.id not in live]
    commands = []
    if live:
        commands.append(LIVE_COMMAND.format(cases=",".join(live)) + "  (needs OPENAI_API_KEY)")
    if authored:
        commands.append(
            f"{AUTHOR_COMMAND}  (authored answers: {', '.join(authored)}; or record them live "
            f"with {LIVE_COMMAND.format(cases=','.join(authored))})"
        )
    return tuple(commands)


def summarise(results: Sequence[CaseResult], thresholds: Thresholds) -> Summary:
    current = [r for r in results if r.state is RecordingState.CURRENT]
    rates = [_rate(OUTCOME, [r.outcome_ok for r in current], thresholds)]
    rates += [_rate(name, [r.grader_ok(name) for r in current], thresholds) for name in GRADERS]
    provenance = Counter(r.source.kind if r.source else "none" for r in results)
    return Summary(
        cases=len(results),
        rates=tuple(rates),
        provenance=dict(sorted(provenance.items())),
        stale=tuple(r.case.id for r in results if r.state is RecordingState.STALE),
        missing=tuple(r.case.id for r in results if r.state is RecordingState.MISSING),
        rerecord=_rerecord_commands(results),
    )


def _mark(result: CaseResult, grader: str) -> str:
    ok = result.grader_ok(grader)
    if ok is None:
        return "-"
    if not ok:
        return "FAIL"
    return "flagged" if not result.expected(grader) else "ok"


def _outcome_cell(result: CaseResult) -> str:
    if result.pipeline is None:
        return result.state.value.upper()
    cell = f"{result.pipeline.outcome.value} {result.pipeline.http_status}"
    return cell if result.outcome_ok else f"FAIL {cell} (want {result.case.expect.outcome})"


def _rows(results: Sequence[CaseResult]) -> list[list[str]]:
    return [
        [
            r.case.id,
            r.source.kind if r.source else "-",
            _outcome_cell(r),
            *(_mark(r, name) for name in GRADERS),
        ]
        for r in results
    ]


def _header() -> list[str]:
    return ["case", "source", OUTCOME, *GRADERS]


def _share(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.0%})" if total else "0/0"


def _summary_lines(summary: Summary) -> list[str]:
    shares = ", ".join(f"{k} {_share(v, summary.cases)}" for k, v in summary.provenance.items())
    lines = [f"provenance: {shares}"]
    for rate in summary.rates:
        verdict = "ok" if rate.ok else "BELOW THRESHOLD"
        lines.append(
            f"{rate.name:<24} {rate.passed:>3}/{rate.applicable:<3} {rate.shown:>7}  "
            f"min {rate.minimum:.0%}  {verdict}"
        )
    if summary.stale or summary.missing:
        lines.append(
            f"stale recordings (the prompt or the case changed since): {', '.join(summary.stale)}"
            if summary.stale
            else "stale recordings: none"
        )
        if summary.missing:
            lines.append(f"cases without a recording: {', '.join(summary.missing)}")
        lines += [f"re-record: {command}" for command in summary.rerecord]
    passed = sum(1 for rate in summary.rates if rate.ok)
    lines.append(
        f"gate: {'PASS' if summary.passed else 'FAIL'} "
        f"({summary.cases} cases, {passed} of {len(summary.rates)} rates at or above threshold)"
    )
    return lines


def table(results: Sequence[CaseResult], summary: Summary) -> str:
    rows = [_header(), *_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join([*lines, "", *_summary_lines(summary)])


def markdown(results: Sequence[CaseResult], summary: Summary) -> str:
    def md_row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    rate_rows = [
        md_row(
            [
                r.name,
                f"{r.passed}/{r.applicable}",
                r.shown,
                f"{r.minimum:.0%}",
                "ok" if r.ok else "**below**",
            ]
        )
        for r in summary.rates
    ]
    header = _header()
    return "\n".join(
        [
            "# LearnFlow evals",
            "",
            f"**Gate: {'PASS' if summary.passed else 'FAIL'}** — {summary.cases} cases.",
            "",
            "| grader | passed | rate | minimum | |",
            "|---|---|---|---|---|",
            *rate_rows,
            "",
            "Provenance: "
            + ", ".join(f"{k} {_share(v, summary.cases)}" for k, v in summary.provenance.items()),
            "",
            *(f"- stale: {case}" for case in summary.stale),
            *(f"- missing: {case}" for case in summary.missing),
            *(f"- re-record: `{command}`" for command in summary.rerecord),
            "",
            md_row(header),
            md_row(["---"] * len(header)),
            *(md_row(row) for row in _rows(results)),
            "",
        ]
    )


def as_json(results: Sequence[CaseResult], summary: Summary) -> dict[str, Any]:
    return {
        "passed": summary.passed,
        "cases": summary.cases,
        "provenance": summary.provenance,
        "rates": [{**asdict(rate), "rate": rate.rate, "ok": rate.ok} for rate in summary.rates],
        "stale": list(summary.stale),
        "missing": list(summary.missing),
        "rerecord": list(summary.rerecord),
        "results": [
            {
                "case": r.case.id,
                "subject": r.case.subject,
                "source": None if r.source is None else r.source.model_dump(mode="json"),
                "state": r.state.value,
                "outcome": None if r.pipeline is None else r.pipeline.outcome.value,
                "http_status": None if r.pipeline is None else r.pipeline.http_status,
                "expected_outcome": r.case.expect.outcome.value,
                "detail": None if r.pipeline is None else r.pipeline.detail,
                "verdicts": dict(r.verdicts),
                "flagged_by": list(r.case.expect.flagged_by),
                "prompt_tokens": r.prompt.prompt_tokens,
                "trimmed": list(r.prompt.trimmed),
                "passed": r.passed,
            }
            for r in results
        ],
    }
