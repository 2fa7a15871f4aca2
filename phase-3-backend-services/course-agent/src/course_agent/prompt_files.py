"""Prompt templates read from ``prompts/``: ``manifest.yaml`` names each prompt's versions and
their files; every template is compiled here, so a broken one fails at startup."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import yaml
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from learnflow_contracts.strict import StrictModel
from pydantic import model_validator

from course_agent.domain.prompt_catalog import PromptCatalog, PromptTemplate

MANIFEST_FILE = "manifest.yaml"


class _VersionFiles(StrictModel):
    system: str
    user: str


class _PromptEntry(StrictModel):
    active: str
    versions: dict[str, _VersionFiles]

    @model_validator(mode="after")
    def _active_exists(self) -> Self:
        if self.active not in self.versions:
            raise ValueError(f"active version {self.active!r} is not among {sorted(self.versions)}")
        return self


class _Manifest(StrictModel):
    prompts: dict[str, _PromptEntry]


def load_prompt_catalog(prompts_dir: Path) -> PromptCatalog:
    manifest = _Manifest.model_validate(yaml.safe_load((prompts_dir / MANIFEST_FILE).read_text()))
    # Prompts are plain text for a model, not HTML, so HTML autoescaping does not apply;
    # learner text is made inert by as_prompt_data before it reaches a template.
    environment = SandboxedEnvironment(
        loader=FileSystemLoader(prompts_dir),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates = {
        prompt_id: {
            version: PromptTemplate(
                prompt_id=prompt_id,
                version=version,
                system=environment.get_template(files.system),
                user=environment.get_template(files.user),
            )
            for version, files in entry.versions.items()
        }
        for prompt_id, entry in manifest.prompts.items()
    }
    return PromptCatalog(
        templates, {prompt_id: e.active for prompt_id, e in manifest.prompts.items()}
    )
