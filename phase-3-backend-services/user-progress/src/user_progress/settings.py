from learnflow_service_kit.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="USER_PROGRESS_", extra="ignore")

    # How often an actor with unpublished progress-updated events retries publishing them.
    outbox_flush_seconds: float = Field(5.0, gt=0)
    # Every progress call answers within this, faults included (see progress_gateway.py).
    request_deadline_seconds: float = Field(3.0, ge=2.0)
    # Updates in flight per learner (per replica) beyond which new ones get 429 at once.
    max_pending_updates_per_learner: int = Field(16, ge=1)
