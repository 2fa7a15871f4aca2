"""A generated lesson as stored in the state store, and the event it publishes.

The stored document is not the public contract: ``lesson_public.py`` maps it to what the API
returns. Its JSON field names (``personalized``, ``personalization``, ``personalised_with``)
are those of the documents already stored, so they stay; in Python each concept has one name.
"""

from __future__ import annotations

from learnflow_contracts.events import LessonGeneratedV1, LessonObjective

from course_agent.lesson_base import LessonBase


class LessonRecord(LessonBase):
    """The stored document (state key ``lesson_key``)."""

    def generated_event(self) -> LessonGeneratedV1:
        return LessonGeneratedV1(
            lesson_id=self.lesson_id,
            learner_id=self.learner_id,
            topic=self.topic,
            level=self.level,
            title=self.content.title,
            objectives=tuple(
                LessonObjective(id=o.id, text=o.text) for o in self.content.objectives
            ),
            personalized=self.personalised,
            prompt_id=self.prompt_id,
            prompt_version=self.prompt_version,
            model=self.model,
            created_at=self.created_at,
        )
