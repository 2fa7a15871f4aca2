"""The User Progress app: ``uvicorn user_progress.main:create_app --factory``.

Written by the fastapi-dapr-agent skill; regenerate it rather than editing it. The service's
own parts are in ``wiring.py``, the common plumbing in ``learnflow_service_kit.service_app``.
"""

from __future__ import annotations

from fastapi import FastAPI
from learnflow_service_kit.service_app import build_service_app

from user_progress.settings import Settings
from user_progress.wiring import Adapters, wire


def create_app(settings: Settings | None = None, adapters: Adapters | None = None) -> FastAPI:
    """Tests pass settings and adapters (fakes for what cannot run here); Dapr is real."""
    chosen = settings or Settings()
    return build_service_app(
        "LearnFlow User Progress",
        chosen,
        lambda sidecar: wire(chosen, sidecar, adapters or Adapters()),
    )
