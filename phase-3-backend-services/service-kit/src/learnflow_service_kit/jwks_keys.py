"""The identity provider's signing keys, from its JWKS URL, by key id.

The set is fetched and parsed once and then served from memory on the event loop.
``jwt.PyJWKClient`` parses the whole set again for every token, and fetches with blocking
urllib, so every request paid a thread hop.

The set is fetched again when it is older than ``max_age_seconds`` (in the background: the
keys held still answer meanwhile), or when a token names a key id it lacks (the provider has
rotated its keys; that token waits for the fetch). An unknown key id refetches at most once per
``min_refetch_seconds``, so tokens with made-up key ids cannot make every request a fetch from
the provider. When a fetch fails, the keys already held stay in use; with none held, the caller
learns that the identity provider is unavailable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import jwt

Fetch = Callable[[str], Awaitable[Any]]
# With no keys at all every token fails, so a failed first fetch is retried sooner.
_RETRY_WITHOUT_KEYS_SECONDS = 1.0


class UnknownSigningKey(jwt.PyJWTError):
    """The token names no key the identity provider publishes."""


class IdentityProviderUnavailable(RuntimeError):
    """No signing keys could be had from the JWKS URL."""


async def fetch_json(url: str) -> Any:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()


class JwksSigningKeys:
    def __init__(
        self,
        url: str,
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 30.0,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._max_age = max_age_seconds
        self._min_refetch = min_refetch_seconds
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # when the last fetch ended, successful or not
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None  # a refresh for age, in the background

    async def key(self, kid: object) -> Any:
        """The public key whose id is ``kid`` (from an unverified header: anything), ready for
        ``jwt.decode``."""
        if not isinstance(kid, str):
            raise UnknownSigningKey("the token names no key id")
        if self._due(kid):
            if kid in self._keys:
                self._refresh_in_background(kid)
            else:
                await self._refresh(kid)
        found = self._keys.get(kid)
        if found is None:
            if not self._keys:
                raise IdentityProviderUnavailable(f"no signing keys from {self._url}")
            raise UnknownSigningKey(f"no signing key {kid!r} at the identity provider")
        return found.key

    def _due(self, kid: str) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        if not self._keys:
            return age >= _RETRY_WITHOUT_KEYS_SECONDS
        return age >= self._max_age or (kid not in self._keys and age >= self._min_refetch)

    def _refresh_in_background(self, kid: str) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh(kid))

    async def _refresh(self, kid: str) -> None:
        async with self._lock:
            if not self._due(kid):
                return  # fetched while this call waited for the lock
            keys = await self._fetch_keys()
            self._fetched_at = self._clock()
            if keys:
                self._keys = keys

    async def _fetch_keys(self) -> dict[str, jwt.PyJWK]:
        """The published signing keys by id; none when the fetch or the document fails."""
        try:
            document = await self._fetch(self._url)
            if not isinstance(document, dict):
                return {}
            published = jwt.PyJWKSet.from_dict(document).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError):
            return {}
        return {
            key.key_id: key
            for key in published
            if key.key_id and key.public_key_use in ("sig", None)
        }
