"""A development signing key for end-user tokens: the local stack makes one per run, gives the
apps its public half (AUTH_PUBLIC_KEY) and keeps the private half in the run directory, so
`learnflow-stack token`, the demo, the benchmark and the tests can mint learner tokens.

Production tokens come from a real identity provider (AUTH_JWKS_URL); nothing here is used there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "learnflow-dev"
AUDIENCE = "learnflow"
KEY_ID = "learnflow-dev-1"


@dataclass(frozen=True)
class DevSigningKey:
    private_pem: bytes

    @classmethod
    def generate(cls) -> DevSigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cls(pem)

    @classmethod
    def load(cls, path: Path) -> DevSigningKey:
        return cls(path.read_bytes())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(self.private_pem)

    @property
    def public_pem(self) -> str:
        private = serialization.load_pem_private_key(self.private_pem, password=None)
        return (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def token(self, learner_id: str, roles: tuple[str, ...] = (), ttl_seconds: int = 3600) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": learner_id,
            "roles": list(roles),
            "iat": now,
            "nbf": now - 5,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": KEY_ID})
