"""Shrinking personalisation until a prompt fits its token budget.

How tokens are counted is not the domain's business: it takes a ``CountTokens`` function
(``course_agent.tokenizer.TokenCounter.count`` in the service).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from course_agent.domain.chat import ChatMessage
from course_agent.domain.errors import CourseAgentError
from course_agent.domain.personalisation import Personalisation

# The tokens a chat prompt costs, message framing included.
CountTokens = Callable[[Sequence[ChatMessage]], int]


class PromptOverBudget(CourseAgentError):
    """Even without any personalisation, the learner's own text does not fit the budget."""

    http_status: ClassVar[int] = 422
    code: ClassVar[str] = "prompt_over_budget"

    def __init__(self, tokens: int, budget: int) -> None:
        self.tokens, self.budget = tokens, budget
        super().__init__(
            f"topic/goal too long for budget: the prompt needs {tokens} tokens, "
            f"the limit is {budget}; shorten the topic or goal"
        )


@dataclass(frozen=True)
class FittedPrompt:
    messages: tuple[ChatMessage, ...]
    personalisation: Personalisation | None
    trimmed: tuple[str, ...]  # what was dropped to fit, in the order it was dropped
    tokens: int


def fit_to_budget(
    render: Callable[[Personalisation | None], Sequence[ChatMessage]],
    personalisation: Personalisation | None,
    count: CountTokens,
    budget: int,
) -> FittedPrompt:
    """Render, and while over ``budget`` drop the least important personalisation and retry.

    Raises ``PromptOverBudget`` when nothing is left to drop.
    """
    trimmed: list[str] = []
    while True:
        messages = tuple(render(personalisation))
        tokens = count(messages)
        if tokens <= budget:
            return FittedPrompt(messages, personalisation, tuple(trimmed), tokens)
        step = personalisation.without_least_important() if personalisation else None
        if step is None:
            raise PromptOverBudget(tokens, budget)
        smaller, dropped = step
        trimmed.append(dropped)
        personalisation = None if smaller.is_empty else smaller
