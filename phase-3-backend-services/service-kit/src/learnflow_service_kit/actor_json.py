"""JSON for actor calls and actor state that decodes as JSON.

The Dapr SDK's default decoder turns every string that starts like a date into a datetime
(in the local time zone) and every string shaped like a duration ("10m") into a timedelta:
an attempt id "2025-05-10-quiz-1" made every actor call for it fail. Our actors validate what
they receive with pydantic models, which parse dates themselves; they need the JSON as sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dapr.serializers import DefaultJSONSerializer


class PlainJsonSerializer(DefaultJSONSerializer):
    """Encodes as the SDK does; decodes with the standard library, strings staying strings."""

    def deserialize(
        self,
        data: bytes,
        data_type: type | None = object,
        custom_hook: Callable[[bytes], object] | None = None,
    ) -> Any:
        if not isinstance(data, str | bytes):
            raise ValueError("data must be str or bytes types")
        decoded = json.loads(data)
        return custom_hook(decoded) if callable(custom_hook) else decoded
