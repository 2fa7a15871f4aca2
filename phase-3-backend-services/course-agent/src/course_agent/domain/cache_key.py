"""The lesson cache key: a hash of exactly what can change the generated lesson."""

import hashlib
import json

from course_agent.domain.generation_request import GenerateLessonRequest
from course_agent.domain.prompt import RenderedPrompt

_KEY_FORMAT = 1  # bump when the key's ingredients change, so old entries stop matching


def lesson_cache_key(request: GenerateLessonRequest, prompt: RenderedPrompt, model: str) -> str:
    """Hex sha256 over the learner, their request, the prompt version, the model and the
    personalisation actually rendered (after trimming: no timestamps, no counters)."""
    personalisation = prompt.personalisation
    ingredients = {
        "key_format": _KEY_FORMAT,
        "learner_id": request.learner_id,
        "topic": request.normalised_topic,
        "level": prompt.level.value,
        "goal": request.goal,
        "locale": request.locale,
        "prompt_id": prompt.prompt_id,
        "prompt_version": prompt.prompt_version,
        "model": model,
        "personalisation": None if personalisation is None else personalisation.model_dump(),
    }
    canonical = json.dumps(ingredients, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
