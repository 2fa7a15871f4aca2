"""End-user authentication on the real app (progress gateway in memory): every public route
wants a valid bearer JWT, and a learner reaches only their own data."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from learnflow_stack.dev_auth import AUDIENCE, ISSUER, KEY_ID, DevSigningKey
from user_progress.main import create_app
from user_progress.settings import Settings
from user_progress.wiring import Adapters

from .test_api import InMemoryProgress


@pytest.fixture(scope="module")
def key() -> DevSigningKey:
    return DevSigningKey.generate()


@pytest.fixture
def client(key: DevSigningKey) -> TestClient:
    settings = Settings(AUTH_PUBLIC_KEY=key.public_pem, APP_API_TOKEN="sidecar-token")
    return TestClient(create_app(settings, adapters=Adapters(progress=InMemoryProgress())))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "ada",
        "exp": now + 60,
        "nbf": now - 5,
    } | overrides


def _signed(key: DevSigningKey, **overrides: Any) -> dict[str, str]:
    token = jwt.encode(_claims(**overrides), key.private_pem, "RS256", headers={"kid": KEY_ID})
    return {"Authorization": f"Bearer {token}"}


def _status(client: TestClient, headers: dict[str, str], learner: str = "ada") -> Any:
    return client.get("/status", params={"learner_id": learner}, headers=headers)


def test_a_learner_reads_their_own_status_and_nobody_elses(
    client: TestClient, key: DevSigningKey
) -> None:
    ada = {"Authorization": f"Bearer {key.token('ada')}"}

    assert _status(client, ada).status_code == 200
    other = _status(client, ada, learner="bob")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden_learner"
    update = {
        "learner_id": "bob",
        "lesson_id": "lesson-1",
        "attempt_id": "a-1",
        "kind": "started",
        "occurred_at": "2026-12-03T10:00:00Z",
    }
    assert client.post("/update-progress", json=update, headers=ada).status_code == 403


def test_a_teacher_role_acts_for_any_learner(client: TestClient, key: DevSigningKey) -> None:
    teacher = {"Authorization": f"Bearer {key.token('ms-frizzle', ('teacher',))}"}
    student_role = {"Authorization": f"Bearer {key.token('ada', ('student',))}"}

    assert _status(client, teacher, learner="bob").status_code == 200
    assert _status(client, student_role, learner="bob").status_code == 403


@pytest.mark.parametrize(
    ("headers_for", "why"),
    [
        (lambda key: {}, "a bearer token is required"),
        (lambda key: {"Authorization": "Basic YWRhOnB3"}, "a bearer token is required"),
        (lambda key: _signed(key, exp=int(time.time()) - 10), "the token has expired"),
        (lambda key: _signed(key, nbf=int(time.time()) + 600), "the token is not valid yet"),
        (lambda key: _signed(key, iss="someone-else"), "the token is not valid"),
        (lambda key: _signed(key, aud="another-api"), "the token is not valid"),
    ],
)
def test_a_missing_expired_early_or_misaddressed_token_is_a_401(
    client: TestClient, key: DevSigningKey, headers_for: Any, why: str
) -> None:
    response = _status(client, headers_for(key))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert why in response.json()["error"]["message"]
    assert response.headers["www-authenticate"].startswith('Bearer realm="learnflow"')


def test_forged_tokens_are_refused(client: TestClient, key: DevSigningKey) -> None:
    unsigned = jwt.encode(_claims(), "", algorithm="none")
    # HS/RS confusion: an HMAC "signed" with the public key, which anyone has (made by hand:
    # PyJWT itself refuses to use a PEM key as an HMAC secret).
    signing_input = ".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode()
        for part in ({"alg": "HS256", "typ": "JWT"}, _claims())
    )
    mac = hmac.new(key.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    confused = f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"
    genuine = key.token("ada")
    head, _, signature = genuine.split(".")
    tampered_body = jwt.utils.base64url_encode(json.dumps(_claims(sub="bob")).encode()).decode()
    other_key = DevSigningKey.generate()

    for token in (
        unsigned,
        confused,
        f"{head}.{tampered_body}.{signature}",
        other_key.token("ada"),
    ):
        response = _status(client, {"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_a_call_through_the_own_sidecar_is_internal_and_needs_no_user_token(
    client: TestClient,
) -> None:
    """Service invocation from the Course Agent arrives through this app's daprd, which adds the
    app token; the progress lookup then needs no end-user token."""
    internal = client.get(
        "/status/projection",
        params={"learner_id": "bob"},
        headers={"dapr-api-token": "sidecar-token"},
    )
    forged = client.get(
        "/status/projection", params={"learner_id": "bob"}, headers={"dapr-api-token": "guess"}
    )

    assert internal.status_code == 200
    assert forged.status_code == 401


async def test_health_readiness_and_metrics_stay_open(key: DevSigningKey) -> None:
    app = create_app(
        Settings(AUTH_PUBLIC_KEY=key.public_pem), adapters=Adapters(progress=InMemoryProgress())
    )
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        # No sidecar here: 503, never 401.
        assert (await client.get("/readyz")).status_code in (200, 503)
    await app.state.sidecar.aclose()  # its probes' connections, opened in this event loop


class _Jwks(BaseHTTPRequestHandler):
    body = b""
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_url(key: DevSigningKey) -> Iterator[str]:
    public = jwt.algorithms.RSAAlgorithm.from_jwk(
        jwt.algorithms.RSAAlgorithm.to_jwk(
            jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(
                key.public_pem
            )
        )
    )
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)) | {"kid": KEY_ID, "use": "sig"}
    _Jwks.body = json.dumps({"keys": [jwk]}).encode()
    _Jwks.fetches = 0
    server = HTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


def test_keys_from_a_jwks_url_and_an_unknown_kid_is_refused(
    key: DevSigningKey, jwks_url: str
) -> None:
    client = TestClient(
        create_app(Settings(AUTH_JWKS_URL=jwks_url), adapters=Adapters(progress=InMemoryProgress()))
    )
    unknown_kid = jwt.encode(_claims(), key.private_pem, "RS256", headers={"kid": "rotated-away"})

    for _ in range(3):
        assert _status(client, {"Authorization": f"Bearer {key.token('ada')}"}).status_code == 200
    assert _status(client, {"Authorization": f"Bearer {unknown_kid}"}).status_code == 401
    # Fetched once: not per token, and an unknown kid just after a fetch does not refetch.
    assert _Jwks.fetches == 1


@pytest.mark.parametrize("pem", ["not a pem", DevSigningKey.generate().private_pem.decode()])
def test_a_public_key_that_is_not_one_stops_the_start(pem: str) -> None:
    with pytest.raises(ValueError, match="AUTH_PUBLIC_KEY: not a PEM public key"):
        create_app(Settings(AUTH_PUBLIC_KEY=pem))


def test_an_unreachable_identity_provider_is_a_named_503_not_a_401(key: DevSigningKey) -> None:
    with socket.socket() as closed:  # a loopback port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/jwks.json"
        client = TestClient(
            create_app(Settings(AUTH_JWKS_URL=url), adapters=Adapters(progress=InMemoryProgress()))
        )

        answer = _status(client, {"Authorization": f"Bearer {key.token('ada')}"})

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "identity_provider_unavailable"
