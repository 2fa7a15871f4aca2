"""The LearnFlow services as the stack runs them."""

from __future__ import annotations

import os

from learnflow_contracts.names import COURSE_AGENT_APP_ID, USER_PROGRESS_APP_ID

from learnflow_stack.stack import AppSpec


def course_agent(env: dict[str, str] | None = None, replicas: int = 1) -> AppSpec:
    return AppSpec(COURSE_AGENT_APP_ID, "course_agent.main:create_app", env or {}, replicas)


def user_progress(env: dict[str, str] | None = None) -> AppSpec:
    return AppSpec(USER_PROGRESS_APP_ID, "user_progress.main:create_app", env or {})


# Services scaffolded by the fastapi-dapr-agent skill (app id, uvicorn factory); its generator
# adds an entry here, and `learnflow-stack up` starts each of them with its sidecar.
SCAFFOLDED_APPS: tuple[tuple[str, str], ...] = ()


def scaffolded() -> list[AppSpec]:
    return [AppSpec(app_id, factory) for app_id, factory in SCAFFOLDED_APPS]


def llm_environment() -> tuple[dict[str, str], str]:
    """Live model when a key is set, else replay of recorded answers; says which."""
    if os.environ.get("COURSE_AGENT_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"):
        provider = os.environ.get("COURSE_AGENT_LLM_PROVIDER", "openai")
        return {"COURSE_AGENT_LLM_PROVIDER": provider}, f"LLM provider: {provider} (API key found)"
    return (
        {"COURSE_AGENT_LLM_PROVIDER": "replay"},
        "LLM provider: replay (no API key set; answers come from evals/recordings)",
    )
