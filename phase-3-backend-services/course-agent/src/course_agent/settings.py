from pathlib import Path

from learnflow_service_kit.settings import ServiceSettings
from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from course_agent.generation_claim import LEASE_SECONDS
from course_agent.llm.port import LlmProvider

_PHASE_DIR = Path(__file__).resolve().parents[3]


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COURSE_AGENT_", extra="ignore")

    llm_provider: LlmProvider = "replay"
    llm_base_url: str = "https://api.openai.com/v1"
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("COURSE_AGENT_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_timeout_seconds: float = Field(30.0, gt=0)
    llm_max_retries: int = Field(2, ge=0, le=5)
    prompts_dir: Path = _PHASE_DIR / "prompts"
    recordings_dir: Path = _PHASE_DIR / "evals" / "recordings"
    prompt_token_budget: int = Field(3000, ge=200)
    # New lessons (LLM calls) per learner per clock hour, across replicas; cached ones are free.
    llm_lessons_per_learner_per_hour: int = Field(30, ge=1)
    cache_ttl_seconds: int = Field(86400, ge=1)
    idempotency_ttl_seconds: int = Field(86400, ge=1)
    # The one deadline of a progress lookup: DaprProgressSource is given it (wiring.py).
    # Inside it, Dapr's `progress-lookup` policy (components/resiliency.yaml) bounds each
    # attempt and its retries; a unit test keeps that policy's worst case within this.
    progress_timeout_seconds: float = Field(3.0, gt=0)
    outbox_relay_seconds: float = Field(2.0, gt=0)

    @property
    def generation_seconds_at_most(self) -> float:
        # One generation may wait for the LLM twice (answer + one repair), each with retries.
        return 2 * self.llm_timeout_seconds * (self.llm_max_retries + 1)

    @property
    def claim_wait_seconds(self) -> float:
        # A request that finds its lesson claimed waits for the holder's generation, or, if the
        # holder died, for its lease to lapse.
        return max(self.generation_seconds_at_most, LEASE_SECONDS) + 2

    @property
    def actor_call_timeout_seconds(self) -> float:
        # The wait, then maybe a generation of the turn's own (a lapsed claim taken over).
        return self.claim_wait_seconds + self.generation_seconds_at_most + 10
