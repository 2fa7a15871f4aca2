"""The body of ``POST /generate-lesson``: what a learner asks for, normalised and capped."""

import unicodedata
from typing import Annotated

from learnflow_contracts.identifiers import Identifier
from learnflow_contracts.levels import Level
from learnflow_contracts.strict import StrictModel
from pydantic import BeforeValidator, Field

# Tab and line breaks are ordinary in pasted text: they collapse into single spaces.
_COLLAPSIBLE_CONTROLS = frozenset("\t\n\r")
# Bidirectional embedding/override/isolate marks can make text read differently from how it
# is processed ("Trojan Source"); no topic needs them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def normalise_learner_text(value: object) -> object:
    """NFKC, refuse control characters, collapse whitespace runs, strip.

    Non-strings pass through untouched so pydantic reports its own type error.
    """
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value)
    for char in text:
        is_control = unicodedata.category(char) == "Cc" and char not in _COLLAPSIBLE_CONTROLS
        if is_control or char in _BIDI_CONTROLS:
            raise ValueError(f"must not contain control characters (found U+{ord(char):04X})")
    return " ".join(text.split())


def _normalise_optional_learner_text(value: object) -> object:
    normalised = normalise_learner_text(value)
    return None if normalised == "" else normalised


# Length limits sit on the inner type so they apply to the normalised text.
Topic = Annotated[
    Annotated[str, Field(min_length=1, max_length=200)],
    BeforeValidator(normalise_learner_text),
]
Goal = Annotated[
    Annotated[str, Field(max_length=500)] | None,
    BeforeValidator(_normalise_optional_learner_text),
]


class GenerateLessonRequest(StrictModel):
    learner_id: Identifier
    topic: Topic
    level: Level | None = None
    goal: Goal = None  # an all-blank goal means "no goal"
    locale: str = Field(default="en", max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    @property
    def normalised_topic(self) -> str:
        """The topic as cache keys see it: "Fractions" and "fractions" are the same lesson."""
        return self.topic.casefold()
