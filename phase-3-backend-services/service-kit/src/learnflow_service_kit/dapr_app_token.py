"""Only the sidecar may call an app's Dapr routes (actors, subscriptions, Dapr configuration).

daprd started with ``APP_API_TOKEN`` sends it as the ``dapr-api-token`` header on every call it
makes to the app; any other caller reaching the app port lacks it and gets 401. On Kubernetes
the token comes from the Secret named by the pod's ``dapr.io/app-token-secret`` annotation.
"""

from __future__ import annotations

import hmac
import uuid

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnflow_service_kit.errors import error_body

log = structlog.get_logger()
DAPR_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 - a header name, not a credential
# /dapr/* (configuration, subscriptions), /actors/* (actor calls), /events/* (subscription routes).
DAPR_ROUTE_PREFIXES = ("/dapr/", "/actors/", "/events/")


def is_dapr_route(path: str) -> bool:
    return path.startswith(DAPR_ROUTE_PREFIXES)


def hide_dapr_routes(app: FastAPI) -> None:
    """Keep the sidecar's routes (the Dapr SDK's actor routes, subscription routes) out of the
    public OpenAPI document: they are no part of the service's contract with its clients."""
    for route in app.routes:
        if isinstance(route, APIRoute) and (
            is_dapr_route(route.path)
            # the SDK also adds a /healthz of its own, shadowed by ours
            or route.endpoint.__module__.startswith("dapr.")
        ):
            route.include_in_schema = False


def require_dapr_app_token(app: FastAPI, token: str) -> None:
    """Answers 401 to a call of a Dapr route that does not carry ``token``."""
    app.add_middleware(DaprAppTokenGuard, token=token)


class DaprAppTokenGuard:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_dapr_route(scope["path"]):
            given = Headers(scope=scope).get(DAPR_TOKEN_HEADER, "").encode()
            if not hmac.compare_digest(given, self._expected):
                refusal = JSONResponse(
                    status_code=401,
                    content=error_body(
                        "dapr_app_token_invalid",
                        f"{scope['path']} is called by the Dapr sidecar only "
                        f"(missing or wrong {DAPR_TOKEN_HEADER} header)",
                    ),
                )
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)


class DaprRouteErrorScrubber:
    """The Dapr SDK answers a failing actor call (an unknown actor type, a bad payload) with a
    500 whose body is the Python exception text; that text goes to daprd and on to whoever
    invoked the actor. Here such a body is logged under a request id and replaced by the same
    generic error every other route gives. Plain ASGI, Dapr routes only."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_dapr_route(scope["path"]):
            await self._app(scope, receive, send)
            return
        failed: Message | None = None
        body = b""

        async def scrub(message: Message) -> None:
            nonlocal failed, body
            if message["type"] == "http.response.start" and message["status"] >= 500:
                failed = message
                return
            if failed is None:
                await send(message)
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                await self._generic_error(scope, failed["status"], body, send)

        await self._app(scope, receive, scrub)

    @staticmethod
    async def _generic_error(scope: Scope, status: int, detail: bytes, send: Send) -> None:
        request_id = uuid.uuid4().hex[:16]
        log.error(
            "Dapr route failed",
            path=scope["path"],
            status=status,
            detail=detail.decode(errors="replace")[:2000],
            request_id=request_id,
        )
        generic = JSONResponse(
            status_code=status,
            content=error_body(
                "internal_error", f"internal error (request {request_id})", request_id=request_id
            ),
        )
        await send(
            {"type": "http.response.start", "status": status, "headers": generic.raw_headers}
        )
        await send({"type": "http.response.body", "body": generic.body})
