"""What the fastapi-dapr-agent generator writes, as data: ``plan`` renders every file for a set
of options (nothing touches the disk), ``apply`` writes a plan and registers the service.

Files are *scaffold*-owned (the skill's: regenerated, byte-for-byte checked in the repo's drift
test) or *starter* files (written once, then the service's own domain code).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2

SKILL_DIR = Path(__file__).resolve().parents[1]
TEMPLATES = SKILL_DIR / "templates"
PHASE = "phase-3-backend-services"
NAME_RULE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
ACTOR_RULE = re.compile(r"^[A-Z][A-Za-z0-9]*Actor$")
# Folders of the phase that are not services (and names Python or Kubernetes would trip on).
RESERVED = {
    "components", "contracts", "deploy", "evals", "prompts", "scripts", "service-kit", "stack",
    "tests", "kafka", "postgres", "test", "dapr",
}  # fmt: skip
# The versions every scaffolded service pins; a test keeps them equal to uv.lock.
PINS = {
    "fastapi": "0.121.2",
    "uvicorn[standard]": "0.38.0",
    "pydantic-settings": "2.12.0",
    "dapr": "1.18.3",
    "dapr-ext-fastapi": "1.18.3",
    "openai": "2.8.0",
    "jinja2": "3.1.6",
}
Ownership = Literal["scaffold", "starter"]


class BadOptions(ValueError):
    """Options the generator refuses; the message says which and why."""


@dataclass(frozen=True)
class Options:
    name: str
    actor: str | None = None
    subscribe: str | None = None
    publish: str | None = None
    llm: bool = False
    # The Course Agent's own replay mode (recorded answers in the image); not a CLI option.
    replay: bool = False

    def __post_init__(self) -> None:
        if not NAME_RULE.match(self.name) or len(self.name) > 40:
            raise BadOptions(
                f"--name {self.name!r}: use lower-case words joined by '-' (e.g. quiz-tracker), "
                "at most 40 characters, starting with a letter"
            )
        if self.name in RESERVED:
            raise BadOptions(f"--name {self.name!r} is taken by the phase's own folders")
        if self.actor is not None and not ACTOR_RULE.match(self.actor):
            raise BadOptions(
                f"--actor {self.actor!r}: a PascalCase class name ending in 'Actor' "
                "(e.g. QuizActor)"
            )
        for option, topic in (("--subscribe", self.subscribe), ("--publish", self.publish)):
            if topic is not None and not NAME_RULE.match(topic):
                raise BadOptions(
                    f"{option} {topic!r}: a topic is lower-case words joined by '-' "
                    "(e.g. lesson-generated)"
                )

    @property
    def package(self) -> str:
        return self.name.replace("-", "_")

    @property
    def title(self) -> str:
        return " ".join(word.capitalize() for word in self.name.split("-"))

    @property
    def env_prefix(self) -> str:
        return f"{self.package.upper()}_"

    @property
    def requirements(self) -> list[str]:
        wanted = ["fastapi", "uvicorn[standard]", "pydantic-settings", "dapr", "dapr-ext-fastapi"]
        if self.llm:
            wanted += ["openai", "jinja2"]
        return ["learnflow-contracts", "learnflow-service-kit"] + [
            f"{package}=={PINS[package]}" for package in wanted
        ]


@dataclass(frozen=True)
class PlannedFile:
    path: Path  # relative to the repository root
    content: str
    ownership: Ownership


def subscription_file(options: Options) -> Path:
    return Path(PHASE, "components", f"subscription-{options.name}-{options.subscribe}.yaml")


def plan(options: Options) -> list[PlannedFile]:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - Python, YAML and Dockerfiles, not HTML
    )
    values = {
        "name": options.name,
        "package": options.package,
        "title": options.title,
        "env_prefix": options.env_prefix,
        "actor": options.actor,
        "subscribe": options.subscribe,
        "publish": options.publish,
        "llm": options.llm,
        "replay": options.replay,
        "requirements": options.requirements,
    }
    service = Path(PHASE, options.name)
    source = service / "src" / options.package
    wanted: list[tuple[str, Path, Ownership]] = [
        ("service/Dockerfile.j2", service / "Dockerfile", "scaffold"),
        ("service/src/package/main.py.j2", source / "main.py", "scaffold"),
        ("deploy/app.yaml.j2", Path(PHASE, "deploy/base/apps", f"{options.name}.yaml"), "scaffold"),
        ("service/pyproject.toml.j2", service / "pyproject.toml", "starter"),
        ("service/src/package/__init__.py.j2", source / "__init__.py", "starter"),
        ("service/src/package/settings.py.j2", source / "settings.py", "starter"),
        ("service/src/package/wiring.py.j2", source / "wiring.py", "starter"),
        ("service/src/package/api.py.j2", source / "api.py", "starter"),
        ("service/src/package/records.py.j2", source / "records.py", "starter"),
        ("service/tests/test_api.py.j2", service / "tests" / "test_api.py", "starter"),
    ]
    if options.actor:
        wanted.append(("service/src/package/counters.py.j2", source / "counters.py", "starter"))
    if options.subscribe:
        wanted.append(("components/subscription.yaml.j2", subscription_file(options), "scaffold"))
        wanted.append(("service/src/package/deliveries.py.j2", source / "deliveries.py", "starter"))
    if options.llm:
        wanted.append(("service/src/package/explainer.py.j2", source / "explainer.py", "starter"))
        prompt = Path(PHASE, "prompts", options.name, "explain.j2")
        wanted.append(("prompts/explain.j2.j2", prompt, "starter"))
    return [
        PlannedFile(path, environment.get_template(template).render(values), ownership)
        for template, path, ownership in wanted
    ]


def existing(root: Path, files: list[PlannedFile]) -> list[Path]:
    return [f.path for f in files if (root / f.path).exists()]


def write_files(root: Path, files: list[PlannedFile]) -> None:
    for planned in files:
        target = root / planned.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(planned.content)


def apply(root: Path, options: Options, files: list[PlannedFile], *, lock: bool = True) -> None:
    """Write the files and register the service: workspace member, Kustomize base, launcher."""
    write_files(root, files)
    register_in_workspace(root / "pyproject.toml", options)
    register_in_kustomize(root / PHASE / "deploy" / "base" / "kustomization.yaml", options)
    for component in ("statestore.yaml", "pubsub.yaml"):
        register_in_scopes(root / PHASE / "components" / component, options.name)
    if options.subscribe:
        register_subscription(root / PHASE / "components", subscription_file(options).name)
    register_with_launcher(root / PHASE / "stack/src/learnflow_stack/services.py", options)
    register_in_build_context(root / ".dockerignore", options)
    if lock:
        uv = os.environ.get("UV") or shutil.which("uv")
        if uv is None:
            raise BadOptions("uv is not on PATH (or set UV=/path/to/uv); run `uv lock` yourself")
        subprocess.run([uv, "lock", "--quiet"], cwd=root, check=True)


def _insert_after_last(text: str, pattern: str, line: str) -> str:
    """``line`` after the last line matching ``pattern`` (a list entry), unless already there."""
    if line in text.splitlines():
        return text
    matches = list(re.finditer(pattern, text, flags=re.MULTILINE))
    if not matches:
        raise BadOptions(f"cannot register the service: no line matches {pattern!r}")
    end = matches[-1].end()
    return f"{text[:end]}\n{line}{text[end:]}"


def register_in_workspace(pyproject: Path, options: Options) -> None:
    text = pyproject.read_text()
    member = f'    "{PHASE}/{options.name}",'
    text = _insert_after_last(text, rf'^    "{PHASE}/[a-z0-9-]+",$', member)
    text = _insert_after_last(text, r"^    \"[a-z0-9-]+\",$(?=\n\]\n\n\[dependency-groups\])",
                              f'    "{options.name}",')  # fmt: skip
    text = _insert_after_last(
        text, r"^[a-z0-9-]+ = \{ workspace = true \}$", f"{options.name} = {{ workspace = true }}"
    )
    text = _insert_after_last(
        text, rf'^    "{PHASE}/[a-z0-9-]+/src",$', f'    "{PHASE}/{options.name}/src",'
    )
    pyproject.write_text(text)


def register_in_kustomize(kustomization: Path, options: Options) -> None:
    text = _insert_after_last(
        kustomization.read_text(), r"^  - apps/[a-z0-9-]+\.yaml$", f"  - apps/{options.name}.yaml"
    )
    settings = f"  - name: {options.name}-settings\n"
    if settings not in text:
        text = text.rstrip("\n") + (
            f"\n{settings}    literals:\n      - {options.env_prefix}LOG_LEVEL=INFO\n"
        )
    kustomization.write_text(text)


def register_in_scopes(component: Path, app_id: str) -> None:
    """Scoped components are loaded only by the sidecars of the app ids they list."""
    text = component.read_text()
    if "\nscopes:\n" not in text:
        return  # unscoped: every sidecar loads it
    component.write_text(_insert_after_last(text, r"^  - [a-z0-9-]+$", f"  - {app_id}"))


def register_in_build_context(dockerignore: Path, options: Options) -> None:
    """The image build context is an allow-list: the service's folder must be let in."""
    dockerignore.write_text(
        _insert_after_last(
            dockerignore.read_text(),
            rf"^!{PHASE}/[a-z0-9-]+/$",
            f"!{PHASE}/{options.name}/",
        )
    )


def register_subscription(components: Path, file_name: str) -> None:
    """Local daprd reads every YAML file in components/; the cluster reads the Kustomization."""
    kustomization = components / "Kustomization"
    if kustomization.exists():
        kustomization.write_text(
            _insert_after_last(
                kustomization.read_text(),
                r"^  - subscription-[a-z0-9-]+\.yaml$",
                f"  - {file_name}",
            )
        )


def register_with_launcher(services: Path, options: Options) -> None:
    entry = f'    ("{options.name}", "{options.package}.main:create_app"),'
    text = services.read_text()
    if entry in text:
        return
    declaration = "SCAFFOLDED_APPS: tuple[tuple[str, str], ...] = ("
    if f"{declaration})" in text:
        text = text.replace(f"{declaration})", f"{declaration}\n{entry}\n)")
    elif f"{declaration}\n" in text:
        text = text.replace(f"{declaration}\n", f"{declaration}\n{entry}\n")
    else:
        raise BadOptions(f"cannot register with the launcher: {services} has no SCAFFOLDED_APPS")
    services.write_text(text)
