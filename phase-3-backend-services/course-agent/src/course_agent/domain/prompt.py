"""Turning a lesson request and the learner's progress into the exact prompt a model sees."""

from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_contracts.strict import StrictModel

from course_agent.domain.chat import ChatMessage
from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.personalisation import Personalisation, resolve_level
from course_agent.domain.prompt_catalog import PromptTemplate
from course_agent.domain.token_budget import CountTokens, fit_to_budget


class RenderedPrompt(StrictModel):
    prompt_id: str
    prompt_version: str
    level: Level
    # Exactly the personalisation the messages contain, after trimming to the budget.
    personalisation: Personalisation | None
    messages: tuple[ChatMessage, ...]
    trimmed: tuple[str, ...]
    prompt_tokens: int

    @property
    def personalised(self) -> bool:
        return self.personalisation is not None


def build_lesson_prompt(
    template: PromptTemplate,
    request: GenerateLessonRequest,
    projection: ProgressProjectionV1 | None,
    *,
    count_tokens: CountTokens,
    token_budget: int,
) -> RenderedPrompt:
    """Render ``template`` for ``request``, personalised from ``projection`` when it has history.

    Raises ``PromptOverBudget`` when the prompt cannot fit ``token_budget`` even unpersonalised.
    """
    level = resolve_level(request.level, projection)
    fitted = fit_to_budget(
        lambda personalisation: template.render(request, level, personalisation),
        Personalisation.from_projection(projection),
        count_tokens,
        token_budget,
    )
    return RenderedPrompt(
        prompt_id=template.prompt_id,
        prompt_version=template.version,
        level=level,
        personalisation=fitted.personalisation,
        messages=fitted.messages,
        trimmed=fitted.trimmed,
        prompt_tokens=fitted.tokens,
    )
