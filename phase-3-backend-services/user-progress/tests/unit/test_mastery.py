"""The mastery rule: the worked examples of ``user_progress.domain.mastery`` exactly."""

import pytest
from user_progress.domain.mastery import TopicStanding, ewma_mastery, topic_standing

WEAK, NEUTRAL, STRONG = TopicStanding.WEAK, TopicStanding.NEUTRAL, TopicStanding.STRONG


@pytest.mark.parametrize(
    ("scores", "mastery", "standing"),
    [
        ([50], 0.5, WEAK),
        ([60], 0.6, NEUTRAL),
        ([90], 0.9, NEUTRAL),
        ([50, 100], 0.7, NEUTRAL),
        ([100, 40], 0.76, NEUTRAL),
        ([80, 80], 0.8, STRONG),
        ([80, 90, 100], 0.904, STRONG),
        ([60, 40, 30], 0.432, WEAK),
        ([90, 60, 50], 0.668, NEUTRAL),
    ],
)
def test_worked_examples(scores: list[int], mastery: float, standing: TopicStanding) -> None:
    computed = ewma_mastery(scores)
    assert computed == pytest.approx(mastery, abs=1e-12)
    assert topic_standing(computed, len(scores)) is standing


def test_intermediate_steps_of_the_three_score_example() -> None:
    assert [ewma_mastery([80, 90, 100][:n]) for n in (1, 2, 3)] == pytest.approx(
        [0.8, 0.84, 0.904], abs=1e-12
    )


def test_newest_score_weighs_alpha() -> None:
    assert ewma_mastery([0, 100]) == pytest.approx(0.4)
    assert ewma_mastery([100, 0]) == pytest.approx(0.6)


@pytest.mark.parametrize("scores", [[0] * 7, [100] * 7, [0, 100, 0, 100], [100, 0, 100, 0]])
def test_mastery_stays_within_bounds(scores: list[int]) -> None:
    assert 0.0 <= ewma_mastery(scores) <= 1.0


def test_no_scores_has_no_mastery() -> None:
    with pytest.raises(ValueError, match="at least one score"):
        ewma_mastery([])


@pytest.mark.parametrize(
    ("mastery", "score_count", "standing"),
    [
        (0.0, 1, WEAK),
        (0.5999, 3, WEAK),
        (0.6, 1, NEUTRAL),
        (0.6 - 1e-12, 1, NEUTRAL),  # float noise around the boundary is not a weakness
        (0.7999, 9, NEUTRAL),
        (0.8, 1, NEUTRAL),
        (1.0, 1, NEUTRAL),
        (0.8, 2, STRONG),
        (0.8 - 1e-12, 2, STRONG),
        (1.0, 5, STRONG),
    ],
)
def test_standing_thresholds(mastery: float, score_count: int, standing: TopicStanding) -> None:
    assert topic_standing(mastery, score_count) is standing
