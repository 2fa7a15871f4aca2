"""The identifier rule shared by request bodies, query parameters and actor ids.

It is the same rule the shared event contracts apply to ``learner_id``/``lesson_id``/
``attempt_id``, so anything accepted here can be published without a second failure.
"""

from learnflow_contracts.identifiers import ID_MAX_LENGTH, ID_PATTERN, Identifier
from pydantic import TypeAdapter

__all__ = ["ID_MAX_LENGTH", "ID_PATTERN", "Identifier", "parse_learner_id"]

_IDENTIFIER = TypeAdapter(Identifier)


def parse_learner_id(value: str) -> str:
    """Return ``value`` when it is a valid learner id.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) otherwise, e.g. for an actor id
    that did not come through a validated request.
    """
    return _IDENTIFIER.validate_python(value)
