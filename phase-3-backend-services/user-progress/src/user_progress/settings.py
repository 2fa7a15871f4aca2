from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="USER_PROGRESS_", extra="ignore")

    log_level: str = "INFO"
    # How often an actor with unpublished progress-updated events retries publishing them.
    outbox_flush_seconds: float = Field(5.0, gt=0)
    actor_call_timeout_seconds: float = Field(10.0, gt=0)
    dapr_http_port: int = Field(3500, validation_alias=AliasChoices("DAPR_HTTP_PORT"))
    # The token daprd sends on every call to the app (its APP_API_TOKEN): only the sidecar may
    # call the Dapr routes. Unset = no check (unit tests, a sidecar without a token).
    dapr_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("APP_API_TOKEN"))
