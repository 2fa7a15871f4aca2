"""Where the Course Agent gets a learner's progress: User Progress, by Dapr service invocation."""

from __future__ import annotations

from typing import Protocol

from learnflow_contracts.names import USER_PROGRESS_APP_ID
from learnflow_contracts.progress import ProgressProjectionV1
from learnflow_service_kit.sidecar_client import InvocationFailed, SidecarClient
from pydantic import ValidationError


class ProgressUnavailable(RuntimeError):
    """User Progress is down, slow or answered something we cannot use."""


class ProgressSource(Protocol):
    async def projection(self, learner_id: str) -> ProgressProjectionV1: ...


class DaprProgressSource:
    def __init__(self, dapr: SidecarClient, timeout_seconds: float) -> None:
        self._dapr = dapr
        self._timeout = timeout_seconds

    async def projection(self, learner_id: str) -> ProgressProjectionV1:
        try:
            response = await self._dapr.invoke(
                USER_PROGRESS_APP_ID,
                "status/projection",
                params={"learner_id": learner_id},
                timeout=self._timeout,
            )
        except InvocationFailed as failure:
            raise ProgressUnavailable(str(failure)) from failure
        if response.status_code != 200:
            raise ProgressUnavailable(f"user-progress answered {response.status_code}")
        try:
            return ProgressProjectionV1.model_validate_json(response.content)
        except ValidationError as invalid:
            raise ProgressUnavailable("user-progress sent an unreadable projection") from invalid
