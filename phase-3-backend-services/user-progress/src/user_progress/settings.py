from learnflow_service_kit.end_user_auth import AuthSettings
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings, AuthSettings):
    model_config = SettingsConfigDict(env_prefix="USER_PROGRESS_", extra="ignore")

    log_level: str = "INFO"
    # How often an actor with unpublished progress-updated events retries publishing them.
    outbox_flush_seconds: float = Field(5.0, gt=0)
    # Every progress call answers within this, faults included (see progress_gateway.py).
    request_deadline_seconds: float = Field(3.0, ge=2.0)
    # Updates in flight per learner (per replica) beyond which new ones get 429 at once.
    max_pending_updates_per_learner: int = Field(16, ge=1)
    dapr_http_port: int = Field(3500, validation_alias=AliasChoices("DAPR_HTTP_PORT"))
    # The token daprd sends on every call to the app (its APP_API_TOKEN): only the sidecar may
    # call the Dapr routes. Unset = no check (unit tests, a sidecar without a token).
    dapr_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("APP_API_TOKEN"))
    # The token the app sends daprd on every call (daprd's DAPR_API_TOKEN; the Dapr SDK reads
    # the same variable for the actor runtime's own calls).
    dapr_api_token: SecretStr | None = Field(None, validation_alias=AliasChoices("DAPR_API_TOKEN"))
