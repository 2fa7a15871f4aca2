from collections.abc import Callable
from typing import Any

import pytest
from course_agent.domain.lesson import (
    InvalidLesson,
    LessonDraft,
    lesson_json_schema,
    parse_lesson,
    validate_lesson,
)

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets e.g. "quiz.0.answer_index" to ``value``."""

    def mutate(lesson: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = lesson
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def test_a_well_formed_lesson_has_no_problems(valid_lesson: dict[str, Any]) -> None:
    draft = parse_lesson(valid_lesson)

    assert validate_lesson(draft) == []
    assert draft.objectives[0].id == "O1"


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (_set("objectives.1.id", "O1"), "objectives[1].id 'O1' is used by more than one objective"),
        (
            _set("objectives.0.id", "objective-1"),
            "objectives[0].id 'objective-1' must look like \"O1\"",
        ),
        (
            _set("sections.1.objective_ids", ["O1", "O9"]),
            "sections[1].objective_ids refers to unknown objective 'O9'",
        ),
        (_set("sections.1.objective_ids", ["O1"]), "objective 'O2' is not taught by any section"),
        (
            _set("exercises.0.objective_ids", ["O3"]),
            "exercises[0].objective_ids refers to unknown objective 'O3'",
        ),
        (
            _set("quiz.0.objective_ids", []),
            "quiz[0].objective_ids has 0 items; it must have 1 to 10",
        ),
        (
            _set("quiz.0.answer_index", 3),
            "quiz[0].answer_index is 3; it must be an index into options (0 to 2)",
        ),
        (_set("quiz.0.answer_index", -1), "quiz[0].answer_index is -1"),
        (_set("quiz.0.options", ["only one"]), "quiz[0].options has 1 items; it must have 2 to 6"),
        (
            _set("quiz.0.options", [str(n) for n in range(7)]),
            "quiz[0].options has 7 items; it must have 2 to 6",
        ),
        (
            _set("quiz.0.options", ["3/4", " 3/4 ", "1/2"]),
            "quiz[0].options[1] ' 3/4 ' repeats an earlier option",
        ),
        (_set("title", "t" * 201), "title has 201 characters; at most 200 are allowed"),
        (_set("summary", "   "), "summary must not be empty"),
        (_set("sections.0.minutes", 0), "sections[0].minutes is 0; it must be 1 to 120"),
        (
            _set("objectives", [{"id": f"O{n}", "text": "t"} for n in range(1, 12)]),
            "objectives has 11 items",
        ),
        (_set("quiz", []), "quiz has 0 items; it must have 1 to 10"),
        (_set("key_points", ["k" * 301]), "key_points[0] has 301 characters"),
        (_set("misconceptions.0.correction", ""), "misconceptions[0].correction must not be empty"),
    ],
)
def test_each_broken_rule_is_explained(
    valid_lesson: dict[str, Any], mutation: Mutation, expected: str
) -> None:
    mutation(valid_lesson)

    problems = validate_lesson(LessonDraft.model_validate(valid_lesson))

    assert any(expected in problem for problem in problems), problems


def test_parse_lesson_names_missing_and_extra_fields(valid_lesson: dict[str, Any]) -> None:
    del valid_lesson["quiz"]
    valid_lesson["notes"] = "extra"

    with pytest.raises(InvalidLesson) as caught:
        parse_lesson(valid_lesson)

    assert any(p.startswith("quiz: Field required") for p in caught.value.problems)
    assert any(p.startswith("notes: Extra inputs are not permitted") for p in caught.value.problems)


def test_parse_lesson_points_into_nested_fields(valid_lesson: dict[str, Any]) -> None:
    valid_lesson["quiz"][0]["answer_index"] = "first"

    with pytest.raises(InvalidLesson) as caught:
        parse_lesson(valid_lesson)

    assert caught.value.problems[0].startswith("quiz[0].answer_index:")


def test_parse_lesson_refuses_text_that_is_not_json() -> None:
    with pytest.raises(InvalidLesson) as caught:
        parse_lesson("Sure! Here is your lesson:")

    assert "Invalid JSON" in caught.value.problems[0]


def test_parse_lesson_applies_the_rules_not_only_the_schema(valid_lesson: dict[str, Any]) -> None:
    valid_lesson["quiz"][0]["answer_index"] = 5

    with pytest.raises(InvalidLesson, match="answer_index is 5"):
        parse_lesson(valid_lesson)


def _objects(schema: Any) -> list[dict[str, Any]]:
    if isinstance(schema, dict):
        found = [schema] if schema.get("type") == "object" else []
        return found + [o for value in schema.values() for o in _objects(value)]
    if isinstance(schema, list):
        return [o for item in schema for o in _objects(item)]
    return []


def test_schema_is_usable_as_an_openai_strict_schema() -> None:
    objects = _objects(lesson_json_schema())

    assert len(objects) == 6  # the lesson and its five kinds of items
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
        assert not any("default" in prop for prop in obj["properties"].values())
