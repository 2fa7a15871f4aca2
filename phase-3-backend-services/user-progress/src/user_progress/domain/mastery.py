"""Topic mastery: an exponentially weighted moving average (EWMA) of a topic's scores.

Rule
----
Take every score (0..100) recorded on lessons of one topic, oldest first by ``occurred_at``
(ties: the order they were applied). Then

    m_1 = s_1 / 100
    m_k = ALPHA * s_k / 100 + (1 - ALPHA) * m_(k-1)        with ALPHA = 0.4

so mastery stays in [0, 1], the newest score weighs 40 %, the one before 24 %, and so on:
recent work counts most, but one bad quiz does not erase a good history.

A topic is **weak** when mastery < 0.6 (one score is enough to flag a gap) and **strong**
when mastery >= 0.8 with at least 2 scores (one lucky score is not a strength); otherwise it
is neutral. Thresholds are compared with a 1e-9 tolerance so that float rounding cannot move
an exact boundary value (e.g. [60, 60] is exactly 0.6) to the other side.

Worked examples (reproduced by the unit tests)
----------------------------------------------
    [50]            0.5                                    weak
    [60]            0.6                                    neutral (boundary is not weak)
    [90]            0.9                                    neutral (one score is not a strength)
    [50, 100]       0.4*1.0 + 0.6*0.5  = 0.7               neutral
    [100, 40]       0.4*0.4 + 0.6*1.0  = 0.76              neutral
    [80, 80]        0.4*0.8 + 0.6*0.8  = 0.8               strong (boundary is strong)
    [80, 90, 100]   0.8 -> 0.84 -> 0.904                   strong
    [60, 40, 30]    0.6 -> 0.52 -> 0.432                   weak
    [90, 60, 50]    0.9 -> 0.78 -> 0.668                   neutral
"""

import math
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from learnflow_contracts.strict import StrictModel
from pydantic import Field

ALPHA = 0.4
WEAK_BELOW = 0.6
STRONG_FROM = 0.8
STRONG_MIN_SCORES = 2
_TOLERANCE = 1e-9


class TopicStanding(StrEnum):
    WEAK = "weak"
    NEUTRAL = "neutral"
    STRONG = "strong"


class TopicMastery(StrictModel):
    """Mastery of one topic, derived from its scores (never edited by hand)."""

    mastery: float = Field(ge=0.0, le=1.0)
    score_count: int = Field(ge=1)
    last_score_at: datetime

    @property
    def standing(self) -> TopicStanding:
        return topic_standing(self.mastery, self.score_count)


def ewma_mastery(scores_oldest_first: Sequence[int]) -> float:
    """Fold scores (0..100, oldest first) into a mastery in [0, 1] with the EWMA rule above."""
    if not scores_oldest_first:
        raise ValueError("mastery needs at least one score")
    mastery = scores_oldest_first[0] / 100
    for score in scores_oldest_first[1:]:
        mastery = ewma_step(mastery, score)
    return mastery


def ewma_step(mastery: float, score: int) -> float:
    """The mastery after one more score, newer than every score folded into ``mastery``."""
    return ALPHA * score / 100 + (1 - ALPHA) * mastery


def topic_standing(mastery: float, score_count: int) -> TopicStanding:
    if score_count >= STRONG_MIN_SCORES and _at_least(mastery, STRONG_FROM):
        return TopicStanding.STRONG
    if score_count >= 1 and not _at_least(mastery, WEAK_BELOW):
        return TopicStanding.WEAK
    return TopicStanding.NEUTRAL


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold or math.isclose(value, threshold, abs_tol=_TOLERANCE)
