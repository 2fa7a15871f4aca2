"""Why a lesson could not be generated, each with the HTTP status a caller should see."""

from typing import ClassVar

from course_agent.domain.errors import CourseAgentError, RetryLater


class LlmError(CourseAgentError):
    """Any failure of the lesson generator."""


class LlmTimeout(LlmError):
    http_status: ClassVar[int] = 504
    code: ClassVar[str] = "llm_timeout"


class LlmUnavailable(RetryLater, LlmError):
    """Rate limited, unreachable or failing provider: worth retrying later."""

    http_status: ClassVar[int] = 503
    code: ClassVar[str] = "llm_unavailable"


class LlmRejected(LlmError):
    """The provider refused our request itself (bad key, unknown model, bad parameter)."""

    http_status: ClassVar[int] = 502
    code: ClassVar[str] = "llm_rejected"


class LlmInvalidOutput(LlmError):
    """The model's answer broke the lesson rules, and so did its one repair attempt."""

    http_status: ClassVar[int] = 502
    code: ClassVar[str] = "llm_invalid_output"

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class LlmRefused(LlmError):
    """The model or its content filter declined the topic."""

    http_status: ClassVar[int] = 422
    code: ClassVar[str] = "llm_refused"


class RecordingMissing(LlmError):
    """Replay mode has no recording for this exact prompt.

    The message is what a newcomer who ran ``make run`` without a key sees: it says which
    mode the service is in and the two ways forward.
    """

    http_status: ClassVar[int] = 503
    code: ClassVar[str] = "llm_recording_missing"

    def __init__(self, key: str) -> None:
        super().__init__(
            "the Course Agent is in replay mode (no LLM API key), and no answer is recorded "
            f"for this request (recording key {key}). `make recordings` lists the recorded "
            "requests that work; to use a live model, set OPENAI_API_KEY and restart `make run`"
        )
        self.key = key


class LlmConfigurationError(ValueError):
    """The generator cannot be built from the given settings; raised at startup."""
