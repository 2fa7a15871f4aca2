"""Versioned prompt templates: ``prompts/manifest.yaml`` names each prompt's versions and files.

Templates are ours and trusted; learner text is never part of a template. It only ever
arrives as a variable, already passed through ``as_prompt_data``, and the sandbox plus
StrictUndefined keep a template bug from reaching beyond the variables it was given.
"""

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import yaml
from jinja2 import FileSystemLoader, StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import model_validator

from course_agent.domain.chat import ChatMessage
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.personalisation import Personalisation

MANIFEST_FILE = "manifest.yaml"


def as_prompt_data(text: str) -> str:
    """Learner-derived text made safe to sit between data tags in a prompt.

    Control characters go, whitespace collapses, and angle brackets are escaped so the text
    can neither open nor close a tag such as ``</learner_topic>``.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char) != "Cc" or char.isspace())
    text = " ".join(text.split())
    return text.replace("<", "&lt;").replace(">", "&gt;")


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


@dataclass(frozen=True)
class PromptTemplate:
    prompt_id: str
    version: str
    system: Template
    user: Template

    def render(
        self,
        request: GenerateLessonRequest,
        level: Level,
        personalisation: Personalisation | None,
    ) -> tuple[ChatMessage, ...]:
        variables = _template_variables(request, level, personalisation)
        return (
            ChatMessage(role="system", content=self.system.render(variables).strip()),
            ChatMessage(role="user", content=self.user.render(variables).strip()),
        )


def _template_variables(
    request: GenerateLessonRequest, level: Level, personalisation: Personalisation | None
) -> dict[str, Any]:
    history = None
    if personalisation is not None:
        history = {
            "weak_topics": [as_prompt_data(t) for t in personalisation.weak_topics],
            "strong_topics": [as_prompt_data(t) for t in personalisation.strong_topics],
            "recent_scores": [
                {"topic": as_prompt_data(s.topic), "score": s.score}
                for s in personalisation.recent_scores
            ],
        }
    return {
        "topic": as_prompt_data(request.topic),
        "goal": None if request.goal is None else as_prompt_data(request.goal),
        "level": level.value,
        "locale": request.locale,
        "history": history,
    }


class PromptCatalog:
    """All prompt versions, compiled at load so a broken template fails at startup."""

    def __init__(
        self, templates: Mapping[str, Mapping[str, PromptTemplate]], active: Mapping[str, str]
    ):
        self._templates = templates
        self._active = active

    @classmethod
    def load(cls, prompts_dir: Path) -> Self:
        manifest = _Manifest.model_validate(
            yaml.safe_load((prompts_dir / MANIFEST_FILE).read_text())
        )
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
        return cls(templates, {prompt_id: e.active for prompt_id, e in manifest.prompts.items()})

    def versions(self, prompt_id: str) -> tuple[str, ...]:
        return tuple(self._templates[prompt_id])

    def get(self, prompt_id: str, version: str) -> PromptTemplate:
        return self._templates[prompt_id][version]

    def active(self, prompt_id: str) -> PromptTemplate:
        return self.get(prompt_id, self._active[prompt_id])
