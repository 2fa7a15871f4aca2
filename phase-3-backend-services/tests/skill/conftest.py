"""The fastapi-dapr-agent skill's generator, loaded from its folder, and scratch copies of the
repository for it to write into (the real tree is never written by these tests)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS = REPO_ROOT / ".claude" / "skills" / "fastapi-dapr-agent" / "scripts"


def _load(name: str) -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # generate.py imports scaffold as its sibling
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def scaffold() -> ModuleType:
    return _load("scaffold")


@pytest.fixture(scope="session")
def generate(scaffold: ModuleType) -> ModuleType:
    return _load("generate")


def copy_repository(destination: Path) -> Path:
    """The repository's files as git sees them (no .venv, no caches), under ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for relative in filter(None, listed.split("\0")):
        source = REPO_ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # A repository of its own: image tags hash what `git ls-files` lists (deploy/container).
    subprocess.run(["git", "init", "--quiet"], cwd=destination, check=True)
    return destination


def uv_binary() -> str:
    """The project's pinned uv (installed and cached by its own script)."""
    script = REPO_ROOT / "phase-3-backend-services" / "scripts" / "ensure-uv.sh"
    printed = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    return printed.stdout.strip().splitlines()[-1]
