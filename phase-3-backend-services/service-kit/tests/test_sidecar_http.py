"""The aiohttp adapter the apps reach daprd with, against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from learnflow_service_kit.sidecar_http import (
    AiohttpSidecar,
    NoFreeConnection,
    SidecarTransportError,
)


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "token": request.headers.get("dapr-api-token"),
            "traceparent": request.headers.get("traceparent"),
            "content_type": request.headers.get("content-type"),
            "body": await request.text(),
        },
        headers={"ETag": "7"},
    )


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "1")))
    return web.Response(status=204)


@pytest.fixture
async def daprd() -> AsyncIterator[TestServer]:
    app = web.Application()
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/slow", slow)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def base_url(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_a_call_carries_body_query_and_headers_and_the_answer_comes_back(
    daprd: TestServer,
) -> None:
    sidecar = AiohttpSidecar(base_url(daprd), {"dapr-api-token": "t0ken"})
    response = await sidecar.request(
        "POST",
        "/echo/v1.0/publish/pubsub/topic",
        json={"a": [1, "é"]},
        params={"metadata.cloudevent.id": "lesson-1"},
        headers={"traceparent": "00-abc-def-01"},
    )
    await sidecar.aclose()

    assert response.status_code == 200
    assert response.headers["etag"] == "7"  # header names case-insensitive
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/v1.0/publish/pubsub/topic"
    assert seen["query"] == {"metadata.cloudevent.id": "lesson-1"}
    assert seen["token"] == "t0ken"
    assert seen["traceparent"] == "00-abc-def-01"
    assert seen["content_type"] == "application/json"
    assert seen["body"] == '{"a":[1,"é"]}'


async def test_a_call_without_a_body_sends_none(daprd: TestServer) -> None:
    sidecar = AiohttpSidecar(base_url(daprd), {})
    seen = (await sidecar.request("GET", "/echo/x")).json()
    await sidecar.aclose()
    assert seen["body"] == ""
    assert seen["content_type"] is None


async def test_a_slow_answer_ends_at_the_call_timeout(daprd: TestServer) -> None:
    sidecar = AiohttpSidecar(base_url(daprd), {})
    with pytest.raises(SidecarTransportError):
        await sidecar.request("GET", "/slow", params={"seconds": "2"}, timeout=0.2)
    await sidecar.aclose()


async def test_a_full_pool_is_an_error_after_the_pool_timeout_not_a_hang(
    daprd: TestServer,
) -> None:
    sidecar = AiohttpSidecar(base_url(daprd), {}, max_connections=1, pool_timeout=0.2)
    holding = asyncio.ensure_future(sidecar.request("GET", "/slow", params={"seconds": "1"}))
    await asyncio.sleep(0.05)
    with pytest.raises(NoFreeConnection):
        await sidecar.request("GET", "/echo/x")
    assert (await holding).status_code == 204
    await sidecar.aclose()


async def test_nobody_listening_is_a_transport_error() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    port = server.port
    await server.close()  # the port is free again: connections are refused
    sidecar = AiohttpSidecar(f"http://127.0.0.1:{port}", {})
    with pytest.raises(SidecarTransportError):
        await sidecar.request("GET", "/v1.0/healthz")
    await sidecar.aclose()
