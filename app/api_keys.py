"""API keys: made by the CLI, shown once, stored as SHA-256, checked on every write.

A key is ``dyad_`` followed by 43 URL-safe characters (256 random bits). Only its digest
is stored, so a stolen database yields no usable key; the digest found by index is
compared again in constant time. Keys travel only in ``Authorization: Bearer``: a key in
the URL would end up in logs and caches, so a request that tries is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine, insert, select, update

from app import models as m
from app.models import table
from app.problems import Problem

KEY_PREFIX = "dyad_"
_KEY = re.compile(r"^dyad_[A-Za-z0-9_-]{43}$")
_DURATION = re.compile(r"^(\d{1,5})([hdw])$")
URL_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token"})
Scope = Literal["write", "import"]
API_KEY = table(m.ApiKey)


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        # RFC 6750: a request that sent no credentials gets the challenge without an error.
        challenge = 'Bearer realm="dyad"' + (f', error="{error}"' if error else "")
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(Problem):
    status = 403
    slug = "forbidden"


@dataclass(frozen=True)
class KeyInfo:
    """A key as listed: everything but the secret."""

    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h`` or ``2w``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90d, 12h or 2w")
    amount, unit = int(match.group(1)), match.group(2)
    return {
        "h": timedelta(hours=amount),
        "d": timedelta(days=amount),
        "w": timedelta(weeks=amount),
    }[unit]


def create_key(
    engine: Engine, name: str, scope: Scope, expires_in: timedelta | None = None
) -> tuple[str, KeyInfo]:
    """Make a key; the secret is returned here and never again."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "name": name,
        "scope": scope,
        "digest": digest(secret),
        "prefix": secret[:10],
        "created_at": now,
        "expires_at": now + expires_in if expires_in else None,
    }
    with engine.begin() as connection:
        key_id = connection.execute(
            insert(API_KEY).values(values).returning(API_KEY.c.id)
        ).scalar_one()
    return secret, KeyInfo(
        id=key_id,
        name=name,
        scope=scope,
        prefix=values["prefix"],
        created_at=now,
        expires_at=values["expires_at"],
        revoked_at=None,
    )


def _info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        scope=row.scope,
        prefix=row.prefix,
        created_at=_aware(row.created_at) or row.created_at,
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
    )


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every timestamp here is stored in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def list_keys(engine: Engine) -> list[KeyInfo]:
    with engine.connect() as connection:
        rows = connection.execute(select(API_KEY).order_by(API_KEY.c.id))
        return [_info(row) for row in rows]


def revoke_key(engine: Engine, key_id: int) -> bool:
    """Revoke a key; False when there is no such key or it was revoked already."""
    with engine.begin() as connection:
        done = connection.execute(
            update(API_KEY)
            .where(API_KEY.c.id == key_id, API_KEY.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ).rowcount
    return bool(done)


def authenticate(engine: Engine, authorization: str | None) -> KeyInfo:
    """The key an ``Authorization`` header carries, or a 401 problem saying what is wrong."""
    if not authorization:
        raise Unauthorized(
            "This operation needs an API key: send `Authorization: Bearer <key>`.", error=None
        )
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not _KEY.match(key):
        raise Unauthorized("The Authorization header must be `Bearer dyad_…` with a Dyad API key.")
    wanted = digest(key)
    with engine.connect() as connection:
        row = connection.execute(select(API_KEY).where(API_KEY.c.digest == wanted)).first()
    if row is None or not hmac.compare_digest(row.digest, wanted):
        raise Unauthorized("This API key is not known.")
    info = _info(row)
    if info.revoked_at is not None:
        raise Unauthorized("This API key was revoked.")
    if info.expires_at is not None and info.expires_at <= datetime.now(UTC):
        raise Unauthorized("This API key has expired.")
    return info


# Declares the scheme in OpenAPI (and the Authorize button of /docs); the header itself is
# checked by ScopeGuard, which says precisely what is wrong with it.
BEARER = HTTPBearer(
    scheme_name="ApiKey",
    bearerFormat="dyad_<43 characters>",
    description="A Dyad API key made with `dyad keys create`, sent as "
    "`Authorization: Bearer dyad_…`. Never in the URL.",
    auto_error=False,
)


class ScopeGuard:
    """A dependency that admits requests carrying a valid key with ``scope``."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def __call__(
        self,
        request: Request,
        _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    ) -> KeyInfo:
        if URL_KEY_PARAMS & set(request.query_params):
            raise Unauthorized(
                "API keys are accepted only in the Authorization header, never in the URL."
            )
        key = authenticate(request.app.state.engine, request.headers.get("authorization"))
        if key.scope != self.scope:
            raise Forbidden(
                f"This key has the {key.scope!r} scope; this operation needs {self.scope!r}."
            )
        request.state.api_key = key
        return key


def require_scope(scope: Scope) -> Callable[..., KeyInfo]:
    """A dependency that admits requests carrying a valid key with ``scope``."""
    return ScopeGuard(scope)


WriteKey = Annotated[KeyInfo, Depends(require_scope("write"))]
ImportKey = Annotated[KeyInfo, Depends(require_scope("import"))]
