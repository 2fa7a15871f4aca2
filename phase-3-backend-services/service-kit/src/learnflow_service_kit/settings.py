"""The settings every LearnFlow service has; each service's ``Settings`` adds its own fields."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from learnflow_service_kit.end_user_auth import AuthSettings


class ServiceSettings(BaseSettings, AuthSettings):
    """A subclass sets ``model_config = SettingsConfigDict(env_prefix=...)`` for its own fields;
    the Dapr variables below keep the names daprd and the Dapr SDK use."""

    log_level: str = "INFO"
    dapr_http_port: int = Field(3500, validation_alias=AliasChoices("DAPR_HTTP_PORT"))
    # The token daprd sends on every call to the app (its APP_API_TOKEN): only the sidecar may
    # call the Dapr routes. Unset = no check (unit tests, a sidecar without a token).
    dapr_app_token: SecretStr | None = Field(None, validation_alias=AliasChoices("APP_API_TOKEN"))
    # The token the app sends daprd on every call (daprd's DAPR_API_TOKEN; the Dapr SDK reads
    # the same variable for the actor runtime's own calls).
    dapr_api_token: SecretStr | None = Field(None, validation_alias=AliasChoices("DAPR_API_TOKEN"))
    # An actor called by no one for this long is deactivated by daprd, and what it cached freed
    # (a learner's actor holds their whole progress: 0.08 MB with 10 lessons, 4.8 MB with
    # 1,000). Dapr's default, an hour, kept every learner of the last hour in memory.
    actor_idle_timeout_seconds: float = Field(300.0, gt=0)
