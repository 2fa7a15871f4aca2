"""Base for errors that reach an HTTP caller; routes map them generically by their attributes."""

from typing import ClassVar


class CourseAgentError(Exception):
    """An expected failure with a fixed HTTP status and a short machine-readable code.

    The message (``str(error)``) is safe to show to the caller: it never carries secrets
    or learner text beyond what the caller sent.
    """

    http_status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def headers(self) -> dict[str, str]:
        """Extra response headers, e.g. ``Retry-After``."""
        return {}
