"""What every LearnFlow service app gets: a sidecar client, JSON errors, metrics, health."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from learnflow_contracts.names import PUBSUB, STATESTORE
from pydantic import SecretStr

from learnflow_service_kit.body_limit import BodySizeLimit
from learnflow_service_kit.dapr_app_token import (
    DAPR_TOKEN_HEADER,
    DaprRouteErrorScrubber,
    require_dapr_app_token,
)
from learnflow_service_kit.end_user_auth import AuthSettings, JwtAuthenticator
from learnflow_service_kit.errors import install_error_handlers
from learnflow_service_kit.health import health_router
from learnflow_service_kit.observability import install_metrics
from learnflow_service_kit.sidecar_client import SidecarClient
from learnflow_service_kit.sidecar_http import AiohttpSidecar, SidecarHttp
from learnflow_service_kit.tracing import install_tracing, traced_sidecar


def connect_sidecar(dapr_http_port: int, dapr_api_token: SecretStr | None = None) -> SidecarClient:
    """``dapr_api_token``: daprd's ``DAPR_API_TOKEN``, sent on every call (daprd refuses any
    call without it but its health checks)."""
    headers = {DAPR_TOKEN_HEADER: dapr_api_token.get_secret_value()} if dapr_api_token else {}

    def connect() -> SidecarHttp:
        return traced_sidecar(
            AiohttpSidecar(f"http://127.0.0.1:{dapr_http_port}", headers),
            "127.0.0.1",
            dapr_http_port,
        )

    return SidecarClient(connect, store=STATESTORE, pubsub=PUBSUB)


def install_service_plumbing(
    app: FastAPI,
    dapr: SidecarClient,
    expected_errors: Sequence[type[Exception]] = (),
    dapr_app_token: SecretStr | None = None,
    max_body_bytes: int = 64 * 1024,
    auth: AuthSettings | None = None,
) -> None:
    """Error handlers, /metrics, /healthz (fails when the sidecar client is wedged beyond
    repair) and /readyz (ready = sidecar and state store answer), a 413 for bodies over
    ``max_body_bytes``, and, with ``dapr_app_token``, the guard that lets only the sidecar call
    the Dapr routes. ``auth`` configures end-user authentication (``app.state.authenticator``,
    read by the ``AuthenticatedCaller`` dependency of the public routes).

    ``expected_errors``: the service's own error classes shaped as ``errors.ExpectedError``.
    """
    install_error_handlers(app, expected_errors)
    app.state.authenticator = JwtAuthenticator(auth or AuthSettings(), dapr_app_token)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(DaprRouteErrorScrubber)
    if dapr_app_token is not None:
        require_dapr_app_token(app, dapr_app_token.get_secret_value())
    install_metrics(app)
    install_tracing(app)  # off unless OTEL_EXPORTER_OTLP_ENDPOINT names a collector
    app.include_router(
        health_router(
            {"dapr_sidecar": dapr.sidecar_healthy, "state_store": dapr.state_store_reachable},
            wedged=dapr.wedged,
        )
    )
