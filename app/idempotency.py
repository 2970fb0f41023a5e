"""Idempotency keys: a retried POST gets the first answer again, and writes nothing.

The first answer to a POST sent with an ``Idempotency-Key`` is stored (status, headers,
body) in the transaction of its write, under the API key that sent it and a fingerprint of
the request (method, path, body). A retry with the same key and the same request replays
it; the same key with another request is a 422. Concurrent retries cannot write twice: the
second waits for the first write's transaction and then finds its answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection, insert, select
from starlette.responses import Response

from app import models as m
from app.api_keys import KeyInfo
from app.models import table
from app.problems import InvalidInput

IDEMPOTENT = table(m.IdempotentResponse)


@dataclass(frozen=True)
class Idempotency:
    """An ``Idempotency-Key`` and what the request it came with looked like."""

    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, method: str, path: str, body: bytes) -> Idempotency:
        digest = hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()
        return cls(key, digest)


def replay(connection: Connection, api_key: KeyInfo, retry: Idempotency) -> Response | None:
    """The first answer to this key, or None when the key is new."""
    row = connection.execute(
        select(IDEMPOTENT).where(
            IDEMPOTENT.c.api_key_id == api_key.id, IDEMPOTENT.c.key == retry.key
        )
    ).first()
    if row is None:
        return None
    if row.fingerprint != retry.fingerprint:
        raise InvalidInput(
            f"The Idempotency-Key {retry.key!r} was first sent with another request; a key "
            "stands for one request (method, path and body). Use a new key for a new request.",
            errors=[{"param": "Idempotency-Key", "message": "used before with another request"}],
        )
    headers = {**orjson.loads(row.headers), "Idempotent-Replayed": "true"}
    return Response(bytes(row.body), status_code=row.status, headers=headers)


def remember(
    connection: Connection, api_key: KeyInfo, retry: Idempotency, response: Response
) -> None:
    """Keep the answer, in the transaction of the write it answers."""
    headers = {name: value for name, value in response.headers.items() if name != "content-length"}
    connection.execute(
        insert(IDEMPOTENT).values(
            api_key_id=api_key.id,
            key=retry.key,
            fingerprint=retry.fingerprint,
            status=response.status_code,
            headers=orjson.dumps(headers).decode(),
            body=bytes(response.body),
            created_at=datetime.now(UTC),
        )
    )
