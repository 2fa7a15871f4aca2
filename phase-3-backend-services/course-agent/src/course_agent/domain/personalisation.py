"""The part of a learner's progress that shapes their prompt, and how it shrinks to fit.

Only topics and scores reach the prompt: timestamps, counters and the learner id would make
the same lesson request render differently from one minute to the next, which breaks both
the lesson cache and replayed recordings.
"""

from typing import Literal, Self

from learnflow_contracts.levels import Level
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_contracts.strict import StrictModel

# How a request's personalisation turned out: the learner's progress was used, they have none
# yet, or User Progress could not be asked.
PersonalisationOutcome = Literal["applied", "no_history", "unavailable"]


class TopicScore(StrictModel):
    topic: str
    score: int


class Personalisation(StrictModel):
    weak_topics: tuple[str, ...] = ()
    strong_topics: tuple[str, ...] = ()
    recent_scores: tuple[TopicScore, ...] = ()  # newest first

    @classmethod
    def from_projection(cls, projection: ProgressProjectionV1 | None) -> Self | None:
        """``None`` when there is nothing to personalise with."""
        if projection is None or not projection.has_history:
            return None
        personalisation = cls(
            weak_topics=projection.weak_topics,
            strong_topics=projection.strong_topics,
            recent_scores=tuple(
                TopicScore(topic=recent.topic, score=recent.score)
                for recent in projection.recent_scores
            ),
        )
        return None if personalisation.is_empty else personalisation

    @property
    def is_empty(self) -> bool:
        return not (self.weak_topics or self.strong_topics or self.recent_scores)

    def without_least_important(self) -> tuple[Self, str] | None:
        """Drop one item, least useful first, and name it; ``None`` when nothing is left.

        Order: oldest recent score, then strong topics, then weak topics (the first-listed,
        weakest ones go last), each from the end of its list.
        """
        if self.recent_scores:
            dropped = self.recent_scores[-1]
            smaller = self.model_copy(update={"recent_scores": self.recent_scores[:-1]})
            return smaller, f"recent_score:{dropped.topic}"
        if self.strong_topics:
            smaller = self.model_copy(update={"strong_topics": self.strong_topics[:-1]})
            return smaller, f"strong_topic:{self.strong_topics[-1]}"
        if self.weak_topics:
            smaller = self.model_copy(update={"weak_topics": self.weak_topics[:-1]})
            return smaller, f"weak_topic:{self.weak_topics[-1]}"
        return None


def resolve_level(requested: Level | None, projection: ProgressProjectionV1 | None) -> Level:
    """The learner's choice, else what their progress suggests, else beginner."""
    if requested is not None:
        return requested
    if projection is not None and projection.has_history and projection.suggested_level:
        return projection.suggested_level
    return Level.BEGINNER
