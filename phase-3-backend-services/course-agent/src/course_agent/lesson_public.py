"""What the API returns for a lesson: the lesson's fields (``LessonBase``), not the stored
``LessonRecord``, so what only the store keeps stays private and either side can change alone."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel

from course_agent.lesson_base import LessonBase
from course_agent.lesson_record import LessonRecord


class LessonPublic(LessonBase):
    """A lesson as GET /lessons/{lesson_id} and GET /lessons return it."""

    @classmethod
    def of(cls, record: LessonRecord) -> Self:
        return cls.model_validate(dict(record))


class LessonResponse(LessonPublic):
    """What POST /generate-lesson returns: the lesson, and whether it came from the cache."""

    from_cache: bool

    @classmethod
    def of_generation(cls, record: LessonRecord, *, from_cache: bool) -> Self:
        public = LessonPublic.of(record)
        return cls.model_validate({**dict(public), "from_cache": from_cache})


class LessonPage(BaseModel):
    items: list[LessonPublic]
    next_cursor: str | None
