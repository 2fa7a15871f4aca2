"""Bodies beyond a limit are refused with 413 before any handler reads them (a client cannot
make the service buffer or validate megabytes). The sidecar's routes are exempt: their bodies
come from daprd, which has its own limit."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from learnflow_service_kit.dapr_app_token import is_dapr_route
from learnflow_service_kit.errors import error_body


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_dapr_route(scope["path"]):
            await self._app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self._max:
                await self._refuse(scope, receive, send)
                return
            await self._app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit, then hand the body on.
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self._max:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = JSONResponse(
            status_code=413,
            content=error_body(
                "request_too_large", f"body: larger than {self._max} bytes", field="body"
            ),
        )
        await refusal(scope, receive, send)
