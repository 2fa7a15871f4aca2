"""End-user authentication: a bearer JWT on every public route, and a learner acts only on
their own data.

Tokens are verified with PyJWT: the signature (a configured public key, parsed once, or a JWKS
URL's keys, held by ``JwksSigningKeys``), ``exp`` and ``nbf``, ``iss``, ``aud``, and an
allow-list of asymmetric algorithms (so ``none`` and HS/RS confusion are refused). The learner is
the claim ``learner_claim`` (``sub``); a token whose ``roles`` claim holds one of
``override_roles`` (teacher, admin) may act for any learner.

A call that reaches the app through its own Dapr sidecar (service invocation from the other
service) carries the sidecar's app token: it is an internal caller, trusted like a teacher.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, Request
from pydantic import AliasChoices, BaseModel, Field, SecretStr

from learnflow_service_kit.dapr_app_token import DAPR_TOKEN_HEADER
from learnflow_service_kit.errors import ERROR_RESPONSE, ServiceError
from learnflow_service_kit.jwks_keys import IdentityProviderUnavailable, JwksSigningKeys

# What every authenticated route adds to its OpenAPI responses (422: bad input, ours; 503: the
# identity provider's keys cannot be fetched).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERROR_RESPONSE,
    403: ERROR_RESPONSE,
    422: ERROR_RESPONSE,
    503: ERROR_RESPONSE,
}
_ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}


class AuthSettings(BaseModel):
    """Mixed into each service's settings; the same variables for both services."""

    auth_public_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("AUTH_PUBLIC_KEY")
    )
    auth_jwks_url: str | None = Field(None, validation_alias=AliasChoices("AUTH_JWKS_URL"))
    auth_issuer: str = Field("learnflow-dev", validation_alias=AliasChoices("AUTH_ISSUER"))
    auth_audience: str = Field("learnflow", validation_alias=AliasChoices("AUTH_AUDIENCE"))
    auth_algorithms: list[str] = Field(
        ["RS256", "ES256"], validation_alias=AliasChoices("AUTH_ALGORITHMS")
    )
    auth_learner_claim: str = Field("sub", validation_alias=AliasChoices("AUTH_LEARNER_CLAIM"))
    auth_roles_claim: str = Field("roles", validation_alias=AliasChoices("AUTH_ROLES_CLAIM"))
    auth_override_roles: list[str] = Field(
        ["teacher", "admin"], validation_alias=AliasChoices("AUTH_OVERRIDE_ROLES")
    )
    # Only for unit tests and local experiments: every caller may act for every learner.
    auth_disabled: bool = Field(False, validation_alias=AliasChoices("AUTH_DISABLED"))


@dataclass(frozen=True)
class Caller:
    learner_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    acts_for_anyone: bool = False

    def require_access_to(self, learner_id: str) -> None:
        if not self.acts_for_anyone and self.learner_id != learner_id:
            raise ServiceError(
                403,
                "forbidden_learner",
                "learner_id: the token's learner may read and change only their own data",
            )


def _unauthenticated(why: str) -> ServiceError:
    return ServiceError(
        401,
        "unauthenticated",
        f"Authorization: {why}",
        headers={
            "WWW-Authenticate": f'Bearer realm="learnflow", error="invalid_token", '
            f'error_description="{why}"'
        },
    )


def _public_key(pem: SecretStr) -> Any:
    """Parsed once here, not for every token; a key that does not parse stops the start."""
    try:
        return load_pem_public_key(pem.get_secret_value().encode())
    except (ValueError, TypeError) as unusable:
        raise ValueError("AUTH_PUBLIC_KEY: not a PEM public key") from unusable


class JwtAuthenticator:
    def __init__(self, settings: AuthSettings, dapr_app_token: SecretStr | None) -> None:
        unsafe = set(settings.auth_algorithms) - _ASYMMETRIC
        if unsafe:
            raise ValueError(f"AUTH_ALGORITHMS: only asymmetric algorithms, not {sorted(unsafe)}")
        if not settings.auth_disabled and not (settings.auth_public_key or settings.auth_jwks_url):
            raise ValueError(
                "AUTH_PUBLIC_KEY or AUTH_JWKS_URL is required (AUTH_DISABLED=true turns "
                "authentication off, for tests only)"
            )
        self._settings = settings
        self._disabled = settings.auth_disabled
        self._key = _public_key(settings.auth_public_key) if settings.auth_public_key else None
        self._jwks = JwksSigningKeys(settings.auth_jwks_url) if settings.auth_jwks_url else None
        self._app_token = dapr_app_token.get_secret_value().encode() if dapr_app_token else None

    async def caller(self, request: Request) -> Caller:
        if self._disabled or self._through_own_sidecar(request):
            return Caller(None, acts_for_anyone=True)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthenticated("a bearer token is required")
        claims = await self._verify(token.strip())
        learner = claims.get(self._settings.auth_learner_claim)
        roles = claims.get(self._settings.auth_roles_claim) or []
        if not isinstance(learner, str) or not isinstance(roles, list):
            raise _unauthenticated("the token has no learner")
        granted = frozenset(str(role) for role in roles)
        return Caller(
            learner,
            granted,
            acts_for_anyone=bool(granted & set(self._settings.auth_override_roles)),
        )

    def _through_own_sidecar(self, request: Request) -> bool:
        given = request.headers.get(DAPR_TOKEN_HEADER)
        return bool(
            self._app_token and given and hmac.compare_digest(given.encode(), self._app_token)
        )

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            key: Any = self._key
            if self._jwks is not None:
                key = await self._jwks.key(jwt.get_unverified_header(token).get("kid"))
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._settings.auth_algorithms,
                audience=self._settings.auth_audience,
                issuer=self._settings.auth_issuer,
                options={"require": ["exp", "iss", "aud", self._settings.auth_learner_claim]},
            )
        except IdentityProviderUnavailable as unavailable:
            raise ServiceError(
                503,
                "identity_provider_unavailable",
                "Authorization: the identity provider's signing keys cannot be fetched; "
                "retry later",
                headers={"Retry-After": "1"},
            ) from unavailable
        except jwt.ExpiredSignatureError as expired:
            raise _unauthenticated("the token has expired") from expired
        except jwt.ImmatureSignatureError as early:
            raise _unauthenticated("the token is not valid yet") from early
        except (jwt.PyJWTError, ValueError) as invalid:
            raise _unauthenticated("the token is not valid") from invalid
        return claims


async def authenticated_caller(request: Request) -> Caller:
    authenticator: JwtAuthenticator = request.app.state.authenticator
    return await authenticator.caller(request)


AuthenticatedCaller = Annotated[Caller, Depends(authenticated_caller)]
