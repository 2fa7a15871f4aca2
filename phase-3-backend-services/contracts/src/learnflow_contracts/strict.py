"""The base of every LearnFlow model that crosses a boundary (payloads, documents, requests)."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """An unknown field is an error, not silently dropped, and an instance never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
