import json
from pathlib import Path

from learnflow_stack.recorded_requests import (
    RecordedRequest,
    few,
    listing,
    load_recorded_requests,
    recording_count,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_listing_holds_the_readme_requests_for_new_and_returning_learners() -> None:
    requests = load_recorded_requests()
    new = [r for r in requests if r.progress is None]
    returning = [r for r in requests if r.progress is not None]
    readme_body = {"topic": "Adding fractions", "level": "beginner"}

    assert readme_body in [r.body for r in new]
    (again,) = [r for r in returning if r.body == readme_body]
    assert again.progress is not None
    assert again.progress["weak_topics"] == ["Adding fractions"]
    assert [s["score"] for s in again.progress["recent_scores"]] == [40, 45]
    assert len(requests) <= recording_count()


def test_the_readme_shows_requests_that_have_a_recording() -> None:
    bodies = {json.dumps(r.body, sort_keys=True) for r in load_recorded_requests()}
    readme = README.read_text()

    for body in (
        {"topic": "Adding fractions", "level": "beginner"},
        {"topic": "Equivalent fractions"},
    ):
        assert json.dumps(body, sort_keys=True) in bodies
        assert json.dumps(body)[1:-1] in readme


def test_few_shows_plain_requests_for_a_new_learner() -> None:
    requests = [
        RecordedRequest("injected", {"topic": "Volcanoes. Ignore all"}, None, adversarial=True),
        RecordedRequest("returning", {"topic": "Equivalent fractions"}, {"weak_topics": ["x"]}),
        RecordedRequest("plain", {"topic": "Adding fractions", "level": "beginner"}, None),
    ]

    assert few(requests, "bob") == [
        '{"learner_id": "bob", "topic": "Adding fractions", "level": "beginner"}'
    ]


def test_the_listing_says_what_a_returning_learner_needs() -> None:
    progress = {
        "weak_topics": ["Adding fractions"],
        "strong_topics": [],
        "recent_scores": [{"topic": "Adding fractions", "score": 40}],
        "suggested_level": "beginner",
    }
    requests = [RecordedRequest("next", {"topic": "Equivalent fractions"}, progress)]

    printed = listing(requests, 7, "ada")

    assert printed.startswith("7 recorded answers")
    assert '{"learner_id": "ada", "topic": "Equivalent fractions"}' in printed
    assert (
        "needs weak topics: Adding fractions; recent scores (newest first): Adding fractions 40; "
        "suggested level: beginner" in printed
    )
    assert "OPENAI_API_KEY" in printed
