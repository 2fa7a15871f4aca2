"""Scaffold a LearnFlow FastAPI + Dapr service (see ../SKILL.md).

    uv run python .claude/skills/fastapi-dapr-agent/scripts/generate.py --name quiz-tracker \
        [--actor QuizActor] [--subscribe lesson-generated] [--publish quiz-scored] [--llm] \
        [--dry-run] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaffold import PHASE, BadOptions, Options, apply, existing, plan, write_files

REPO_ROOT = Path(__file__).resolve().parents[4]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="service name, e.g. quiz-tracker")
    parser.add_argument("--actor", help="host this actor type (PascalCase, ends in Actor)")
    parser.add_argument("--subscribe", metavar="TOPIC", help="consume TOPIC (bulk subscribe)")
    parser.add_argument("--publish", metavar="TOPIC", help="publish TOPIC through the outbox")
    parser.add_argument("--llm", action="store_true", help="an LLM adapter and a prompt folder")
    parser.add_argument("--dry-run", action="store_true", help="list the files, write nothing")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    parser.add_argument(
        "--scaffold-only",
        action="store_true",
        help="rewrite only the scaffold-owned files of an existing service (templates changed)",
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--no-lock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        options = Options(args.name, args.actor, args.subscribe, args.publish, args.llm)
    except BadOptions as bad:
        print(f"generate.py: {bad}", file=sys.stderr)
        return 2
    files = plan(options)
    if args.scaffold_only:
        owned = [f for f in files if f.ownership == "scaffold"]
        write_files(args.root, owned)
        print(*(f"rewrote {f.path}" for f in owned), sep="\n")
        return 0
    clashes = existing(args.root, files)
    if args.dry_run:
        for planned in files:
            mark = " (exists)" if planned.path in clashes else ""
            print(f"would write {planned.path}  [{planned.ownership}]{mark}")
        return 0
    if clashes and not args.force:
        print("generate.py: these files exist; nothing was written (--force overwrites):",
              *(f"  {path}" for path in clashes), sep="\n", file=sys.stderr)  # fmt: skip
        return 1
    apply(args.root, options, files, lock=not args.no_lock)
    for planned in files:
        print(f"wrote {planned.path}  [{planned.ownership}]")
    print(
        f"registered {options.name}: workspace member + uv.lock, deploy/base/kustomization.yaml, "
        "the local launcher (learnflow-stack up)\n"
        f"next: uv run --frozen pytest {PHASE}/{options.name}/tests && make lint"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
