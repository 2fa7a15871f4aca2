"""The identifier rule for learner, lesson and attempt ids, everywhere they appear."""

from typing import Annotated

from pydantic import StringConstraints

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"
ID_MAX_LENGTH = 128

# Usable as a model field or a FastAPI query parameter: a bad value is a 422 naming the field.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
]
