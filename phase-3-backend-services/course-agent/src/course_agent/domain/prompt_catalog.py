"""Versioned prompt templates, compiled (``prompt_files.py`` reads them from ``prompts/``).

Templates are ours and trusted; learner text is never part of a template. It only ever
arrives as a variable, already passed through ``as_prompt_data``, and the sandbox plus
StrictUndefined keep a template bug from reaching beyond the variables it was given.
"""

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import Template
from learnflow_contracts.levels import Level

from course_agent.domain.chat import ChatMessage
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.personalisation import Personalisation


def as_prompt_data(text: str) -> str:
    """Learner-derived text made safe to sit between data tags in a prompt.

    Control characters go, whitespace collapses, and angle brackets are escaped so the text
    can neither open nor close a tag such as ``</learner_topic>``.
    """
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char) != "Cc" or char.isspace())
    text = " ".join(text.split())
    return text.replace("<", "&lt;").replace(">", "&gt;")


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
    """All prompt versions, compiled when read so a broken template fails at startup."""

    def __init__(
        self, templates: Mapping[str, Mapping[str, PromptTemplate]], active: Mapping[str, str]
    ):
        self._templates = templates
        self._active = active

    def versions(self, prompt_id: str) -> tuple[str, ...]:
        return tuple(self._templates[prompt_id])

    def get(self, prompt_id: str, version: str) -> PromptTemplate:
        return self._templates[prompt_id][version]

    def active(self, prompt_id: str) -> PromptTemplate:
        return self.get(prompt_id, self._active[prompt_id])
