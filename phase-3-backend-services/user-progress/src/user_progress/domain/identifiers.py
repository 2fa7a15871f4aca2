"""The identifier rule shared by request bodies, query parameters and actor ids.

It is the same rule the shared event contracts apply to ``learner_id``/``lesson_id``/
``attempt_id``, so anything accepted here can be published without a second failure.
"""

from typing import Annotated

from pydantic import StringConstraints, TypeAdapter

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
ID_MAX_LENGTH = 128

# Usable directly as a FastAPI query parameter type: a bad value gives a 422 naming the field.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
]

_IDENTIFIER = TypeAdapter(Identifier)


def parse_learner_id(value: str) -> str:
    """Return ``value`` when it is a valid learner id.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) otherwise, e.g. for an actor id
    that did not come through a validated request.
    """
    return _IDENTIFIER.validate_python(value)
