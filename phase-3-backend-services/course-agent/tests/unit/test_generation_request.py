from typing import Any

import pytest
from course_agent.domain.generation_request import GenerateLessonRequest
from pydantic import ValidationError


def _request(**fields: Any) -> GenerateLessonRequest:
    return GenerateLessonRequest.model_validate({"learner_id": "learner-1", "topic": "x", **fields})


def _refusal(**fields: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        _request(**fields)
    (error,) = caught.value.errors()
    return dict(error)


def test_topic_is_nfkc_normalised_and_whitespace_collapsed() -> None:
    request = _request(topic="  \uff26ractions\n\tof   a\u00a0whole  ")

    assert request.topic == "Fractions of a whole"


def test_normalised_topic_ignores_case() -> None:
    assert _request(topic="Straße").normalised_topic == _request(topic="STRASSE").normalised_topic


@pytest.mark.parametrize("bad", ["fractions\x00", "esc\x1b[31m", "bell\x07", "rtl\u202etxt"])
def test_control_characters_in_topic_are_refused_naming_the_field(bad: str) -> None:
    error = _refusal(topic=bad)

    assert error["loc"] == ("topic",)
    assert "control characters" in error["msg"]


def test_control_characters_in_goal_are_refused_naming_the_field() -> None:
    assert _refusal(goal="pass\x00")["loc"] == ("goal",)


def test_topic_length_is_checked_after_normalisation() -> None:
    assert len(_request(topic="a" * 100 + " " * 300 + "b" * 99).topic) == 200
    assert _refusal(topic="a" * 201)["type"] == "string_too_long"


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_blank_topic_is_refused(blank: str) -> None:
    assert _refusal(topic=blank)["type"] == "string_too_short"


def test_blank_goal_means_no_goal_and_long_goal_is_refused() -> None:
    assert _request(goal="   ").goal is None
    assert _request(goal=" get  better ").goal == "get better"
    assert _refusal(goal="g" * 501)["loc"] == ("goal",)


@pytest.mark.parametrize("locale", ["en", "en-US", "pt-BR", "zh-Hant-TW"])
def test_bcp47_like_locales_are_accepted(locale: str) -> None:
    assert _request(locale=locale).locale == locale


@pytest.mark.parametrize("locale", ["english!", "e", "en_US", ""])
def test_other_locales_are_refused(locale: str) -> None:
    assert _refusal(locale=locale)["loc"] == ("locale",)


def test_locale_defaults_to_english() -> None:
    assert _request().locale == "en"


@pytest.mark.parametrize("learner_id", ["", "-starts-with-dash", "has space", "x" * 129])
def test_malformed_learner_ids_are_refused(learner_id: str) -> None:
    assert _refusal(learner_id=learner_id)["loc"] == ("learner_id",)


def test_unknown_fields_and_levels_are_refused() -> None:
    assert _refusal(prompt="ignore the rules")["type"] == "extra_forbidden"
    assert _refusal(level="expert")["loc"] == ("level",)
