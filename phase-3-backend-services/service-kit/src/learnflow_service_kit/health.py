"""/healthz says the process is alive (Kubernetes restarts it otherwise); /readyz says its
dependencies answer (traffic stops until they do)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse

ReadinessCheck = Callable[[], Awaitable[bool]]


def health_router(checks: Mapping[str, ReadinessCheck], wedged: Callable[[], bool]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", responses={503: {"description": "Wedged: restart the process"}})
    async def healthz() -> JSONResponse:
        if wedged():
            return JSONResponse(status_code=503, content={"status": "wedged"})
        return JSONResponse(status_code=200, content={"status": "ok"})

    @router.get("/readyz", responses={503: {"description": "A dependency does not answer"}})
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not_ready", "checks": results},
        )

    return router
