"""How the sidecar client's calls reach daprd: a small port (``SidecarHttp``) and its adapters.

``AiohttpSidecar`` carries the apps' calls: aiohttp straight, because the profiles showed the
HTTP client as the largest item of both apps (httpx over aiohttp spent 1.1 ms of CPU per call,
aiohttp alone 0.33 ms; see README "Performance"). ``HttpxSidecar`` takes any httpx transport,
which is how unit tests script daprd (respx, ``httpx.MockTransport``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
import orjson

# Waiting for a free pooled connection is bounded: a full pool is an error, not a hang.
# (Connecting itself is instant on loopback, so this bounds the wait for the pool.)
POOL_TIMEOUT_SECONDS = 2.0
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_CONNECTIONS = 256


class SidecarTransportError(RuntimeError):
    """daprd could not be reached, or did not answer in time."""


class NoFreeConnection(SidecarTransportError):
    """Every pooled connection stayed busy for ``POOL_TIMEOUT_SECONDS``."""


@dataclass(frozen=True)
class SidecarResponse:
    status_code: int
    content: bytes
    headers: Mapping[str, str]  # case-insensitive lookups

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class SidecarHttp(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call timeout is the point
    ) -> SidecarResponse: ...

    async def aclose(self) -> None: ...


_JSON_HEADERS = {"content-type": "application/json"}


def _encoded(
    json: Any, headers: Mapping[str, str] | None
) -> tuple[bytes | None, Mapping[str, str] | None]:
    """The body to send (JSON by orjson) and the headers to send with it."""
    if json is None:
        return None, headers
    return orjson.dumps(json), {**_JSON_HEADERS, **(headers or {})}


class AiohttpSidecar:
    """A keep-alive pool of up to ``max_connections`` connections to daprd at ``base_url``;
    ``headers`` go with every call (daprd's API token)."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        max_connections: int = MAX_CONNECTIONS,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the event loop that will run it (apps are built before).
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                auto_decompress=False,
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> SidecarResponse:
        body, sent_headers = _encoded(json, headers)
        bounds = aiohttp.ClientTimeout(
            total=timeout or DEFAULT_TIMEOUT_SECONDS, connect=self._pool_timeout
        )
        try:
            async with self._open().request(
                method,
                self._base_url + path,
                data=body,
                params=params,
                headers=sent_headers,
                timeout=bounds,
            ) as response:
                content = await response.read()
                return SidecarResponse(response.status, content, response.headers)
        except aiohttp.ConnectionTimeoutError as error:
            raise NoFreeConnection(f"no free connection: {type(error).__name__}") from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise SidecarTransportError(type(error).__name__) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxSidecar:
    """The same port over an ``httpx.AsyncClient`` (its transport scripts daprd in tests)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @classmethod
    def scripted(cls, daprd: Callable[[httpx.Request], httpx.Response]) -> HttpxSidecar:
        """daprd played by ``daprd`` (unit tests)."""
        transport = httpx.MockTransport(daprd)
        return cls(httpx.AsyncClient(base_url="http://127.0.0.1:3500", transport=transport))

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> SidecarResponse:
        body, sent_headers = _encoded(json, headers)
        try:
            response = await self._client.request(
                method,
                path,
                content=body,
                params=params,
                headers=sent_headers,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.PoolTimeout as error:
            raise NoFreeConnection(type(error).__name__) from error
        except (httpx.TransportError, httpx.TimeoutException) as error:
            raise SidecarTransportError(type(error).__name__) from error
        return SidecarResponse(response.status_code, response.content, response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
