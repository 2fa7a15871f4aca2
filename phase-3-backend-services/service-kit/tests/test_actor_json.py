"""Actor calls decode as JSON: ids and topics that look like dates or durations stay strings."""

from __future__ import annotations

import json

import pytest
from dapr.serializers import DefaultJSONSerializer
from learnflow_service_kit.actor_json import PlainJsonSerializer

CALL = {
    "attempt_id": "2025-05-10-quiz-1",
    "topic": "10m",
    "occurred_at": "2025-05-10T09:00:00Z",
    "nested": [{"id": "1h30m"}],
    "score": 80,
}


def test_strings_that_look_like_dates_or_durations_stay_strings() -> None:
    decoded = PlainJsonSerializer().deserialize(json.dumps(CALL).encode())

    assert decoded == CALL


def test_the_sdk_default_would_have_failed_or_changed_them() -> None:
    # Why the plain serializer exists: the SDK's decoder fails on the id, rewrites the others.
    default = DefaultJSONSerializer()

    with pytest.raises(ValueError, match="2025-05-10-quiz-1"):
        default.deserialize(json.dumps({"attempt_id": CALL["attempt_id"]}).encode())
    rewritten = default.deserialize(
        json.dumps({k: CALL[k] for k in ("topic", "occurred_at")}).encode()
    )
    assert not isinstance(rewritten["topic"], str)
    assert not isinstance(rewritten["occurred_at"], str)


def test_encoding_is_the_sdks() -> None:
    plain, default = PlainJsonSerializer(), DefaultJSONSerializer()

    assert plain.serialize(CALL) == default.serialize(CALL)
    assert plain.deserialize(b"null") is None


def test_what_is_not_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="str or bytes"):
        PlainJsonSerializer().deserialize(42)  # type: ignore[arg-type]
