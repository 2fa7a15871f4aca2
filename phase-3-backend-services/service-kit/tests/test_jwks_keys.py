"""The identity provider's signing keys: fetched once, refreshed on age or rotation, never
fetched for every made-up key id, and kept through a failed refresh."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from learnflow_service_kit.jwks_keys import (
    IdentityProviderUnavailable,
    JwksSigningKeys,
    UnknownSigningKey,
)

MAX_AGE = 300.0
MIN_REFETCH = 30.0


def _signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _jwk(kid: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    public: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return public | {"kid": kid, "use": "sig"}


class IdentityProvider:
    """Serves a JWKS document that the test changes; counts the fetches."""

    def __init__(self, **keys: ec.EllipticCurvePrivateKey) -> None:
        self.keys = dict(keys)
        self.fetches = 0
        self.down = False
        self.slow: asyncio.Event | None = None  # when set here, fetches wait for it

    async def fetch(self, url: str) -> Any:
        self.fetches += 1
        await asyncio.sleep(0)  # a real fetch lets other requests run meanwhile
        if self.slow is not None:
            await self.slow.wait()
        if self.down:
            raise httpx.ConnectError("connection refused")
        return {"keys": [_jwk(kid, key) for kid, key in self.keys.items()]}


async def _settled() -> None:
    """Let background refreshes run to their end."""
    for _ in range(5):
        await asyncio.sleep(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _keys(provider: IdentityProvider, clock: Clock) -> JwksSigningKeys:
    return JwksSigningKeys(
        "http://127.0.0.1:1/jwks.json",
        max_age_seconds=MAX_AGE,
        min_refetch_seconds=MIN_REFETCH,
        fetch=provider.fetch,
        clock=clock,
    )


def _verifies(public_key: Any, signed_by: ec.EllipticCurvePrivateKey) -> bool:
    token = jwt.encode({"sub": "ada"}, signed_by, "ES256")
    try:
        jwt.decode(token, public_key, algorithms=["ES256"])
    except jwt.InvalidSignatureError:
        return False
    return True


async def test_the_set_is_fetched_once_and_then_served_from_memory(clock: Clock) -> None:
    a = _signing_key()
    provider = IdentityProvider(a=a)
    keys = _keys(provider, clock)

    found = await asyncio.gather(*(keys.key("a") for _ in range(20)))  # first use, concurrently
    for _ in range(20):
        found.append(await keys.key("a"))

    assert provider.fetches == 1
    assert all(_verifies(key, a) for key in found)
    assert not _verifies(found[0], _signing_key())


async def test_a_rotated_in_key_is_fetched_once_the_refetch_interval_has_passed(
    clock: Clock,
) -> None:
    a, b = _signing_key(), _signing_key()
    provider = IdentityProvider(a=a)
    keys = _keys(provider, clock)
    await keys.key("a")
    provider.keys["b"] = b  # the provider rotates a new key in

    with pytest.raises(UnknownSigningKey):
        await keys.key("b")  # just after a fetch: not fetched again
    clock.now += MIN_REFETCH

    assert _verifies(await keys.key("b"), b)
    assert provider.fetches == 2


async def test_made_up_key_ids_do_not_make_every_request_a_fetch(clock: Clock) -> None:
    provider = IdentityProvider(a=_signing_key())
    keys = _keys(provider, clock)
    await keys.key("a")
    clock.now += MIN_REFETCH

    for n in range(100):
        with pytest.raises(UnknownSigningKey):
            await keys.key(f"made-up-{n}")

    assert provider.fetches == 2  # one refetch for the first unknown id, none for the others


async def test_after_its_max_age_the_set_is_fetched_again_behind_the_answer(
    clock: Clock,
) -> None:
    a, b = _signing_key(), _signing_key()
    provider = IdentityProvider(a=a, b=b)
    keys = _keys(provider, clock)
    await keys.key("a")
    del provider.keys["a"]  # rotated out
    clock.now += MAX_AGE
    provider.slow = asyncio.Event()

    # The keys held answer while the set is fetched again, once for all callers.
    answered = await asyncio.wait_for(asyncio.gather(*(keys.key("a") for _ in range(5))), 1.0)
    assert all(_verifies(key, a) for key in answered)
    provider.slow.set()
    await _settled()

    with pytest.raises(UnknownSigningKey):
        await keys.key("a")
    assert _verifies(await keys.key("b"), b)
    assert provider.fetches == 2


async def test_a_failed_refresh_keeps_the_keys_held(clock: Clock) -> None:
    a = _signing_key()
    provider = IdentityProvider(a=a)
    keys = _keys(provider, clock)
    await keys.key("a")
    provider.down = True
    clock.now += MAX_AGE

    assert _verifies(await keys.key("a"), a)
    await _settled()
    assert _verifies(await keys.key("a"), a)
    assert provider.fetches == 2


async def test_with_no_keys_the_provider_is_unavailable_and_asked_again_a_second_later(
    clock: Clock,
) -> None:
    a = _signing_key()
    provider = IdentityProvider(a=a)
    provider.down = True
    keys = _keys(provider, clock)

    with pytest.raises(IdentityProviderUnavailable):
        await keys.key("a")
    with pytest.raises(IdentityProviderUnavailable):
        await keys.key("a")  # not asked again at once
    assert provider.fetches == 1

    provider.down = False
    clock.now += 1.0
    assert _verifies(await keys.key("a"), a)


@pytest.mark.parametrize("kid", [None, 7, ["a"], {"a": 1}])
async def test_a_token_without_a_string_key_id_is_refused_without_a_fetch(
    clock: Clock, kid: object
) -> None:
    provider = IdentityProvider(a=_signing_key())

    with pytest.raises(UnknownSigningKey):
        await _keys(provider, clock).key(kid)
    assert provider.fetches == 0
