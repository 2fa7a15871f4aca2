"""Base for errors that reach an HTTP caller; routes map them generically by their attributes."""

import math
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


class RetryLater(CourseAgentError):
    """A failure that passes: the caller may retry after ``retry_after_seconds``
    (sent as ``Retry-After``, in whole seconds, at least 1)."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_seconds)))}
