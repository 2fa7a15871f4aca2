"""Sampling parameters sent with every lesson request; part of a recording's identity."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GenerationParameters:
    temperature: float = 0.2
    # `max_tokens` rather than `max_completion_tokens`: every OpenAI-compatible server takes it.
    max_tokens: int = 4096

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)
