"""Where the phase lives and where the install scripts put their caches."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PHASE_DIR = Path(__file__).resolve().parents[3]
SCRIPTS_DIR = PHASE_DIR / "scripts"
COMPONENTS_DIR = PHASE_DIR / "components"


class InstallError(RuntimeError):
    """An install script could not provide a piece of the stack."""


def installed_dir(script: str) -> Path:
    """Run an idempotent install script (fast when cached) and return the directory it prints."""
    completed = subprocess.run(
        ["bash", str(SCRIPTS_DIR / script)], stdout=subprocess.PIPE, text=True, check=False
    )
    if completed.returncode != 0:
        raise InstallError(f"{script} failed (exit {completed.returncode}); its messages are above")
    return Path(completed.stdout.strip().splitlines()[-1])


def runs_root() -> Path:
    # A shared, inspectable place for run logs; PostgreSQL's own user must be able to reach it.
    return Path(os.environ.get("LEARNFLOW_RUNS_DIR", "/tmp/learnflow-runs"))  # noqa: S108
