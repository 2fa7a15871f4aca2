from dataclasses import dataclass

from learnflow_service_kit.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

# Every progress call answers within this by default, faults included (see progress_gateway.py).
REQUEST_DEADLINE_SECONDS = 3.0
# Of the deadline: what the diagnosis of a failed call may take, and what an update's own actor
# turn may take (an update must *start* before the rest has passed, or it is refused).
_DIAGNOSIS_SECONDS = 0.8
_TURN_SECONDS = 0.7


@dataclass(frozen=True)
class CallDeadlines:
    """The request deadline, split among the steps of a progress call."""

    # The timeout of the call to the sidecar itself (the actor call of an update, the state
    # read of a status): the rest of the deadline is for the diagnosis.
    call_seconds: float
    # An update whose actor turn has not started within this is refused, nothing applied.
    update_start_seconds: float


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USER_PROGRESS_", extra="ignore")

    # How often the outbox relay publishes progress-updated events a crash or the broker left.
    outbox_relay_seconds: float = Field(2.0, gt=0)
    # At least 2 s: an update then still has half a second to start its turn.
    request_deadline_seconds: float = Field(REQUEST_DEADLINE_SECONDS, ge=2.0)
    # Updates in flight per learner (per replica) beyond which new ones get 429 at once.
    max_pending_updates_per_learner: int = Field(16, ge=1)

    @property
    def call_deadlines(self) -> CallDeadlines:
        call = self.request_deadline_seconds - _DIAGNOSIS_SECONDS
        return CallDeadlines(call_seconds=call, update_start_seconds=call - _TURN_SECONDS)
