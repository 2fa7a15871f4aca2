"""One message of a chat prompt, as sent to a chat-completions model."""

from typing import Literal

from learnflow_contracts.strict import StrictModel


class ChatMessage(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str
