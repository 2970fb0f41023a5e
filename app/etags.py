"""Conditional GET: an ``ETag`` on every successful GET, ``304`` when it still matches.

The tag is a hash of the representation itself (body and media type), so it changes
when, and only when, the data the answer covers changes; a response cache in front can
store it beside the bytes and answer revalidations without running a handler.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def etag_for(body: bytes, media_type: str) -> str:
    """96 bits of SHA-256: OpenSSL's runs on the CPU's SHA instructions where it has them
    (as on the machines measured here), twice as fast as ``blake2b`` for a 79 KB dossier
    (68 against 127 µs)."""
    digest = hashlib.sha256(body)
    digest.update(media_type.encode())
    return f'"{digest.hexdigest()[:24]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: ``W/`` prefixes are ignored, ``*`` matches anything."""
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def matches_strongly(if_match: str, etag: str) -> bool:
    """RFC 9110 strong comparison, as ``If-Match`` asks: a weak tag (``W/``) never matches,
    ``*`` matches any current representation."""
    candidates = {tag.strip() for tag in if_match.split(",")}
    return "*" in candidates or etag in candidates


class ETagMiddleware:
    """Adds ``ETag`` and ``Cache-Control`` to 200 answers to GET, and turns matches into 304."""

    def __init__(self, app: ASGIApp, max_age: int = 60) -> None:
        self.app = app
        self.cache_control = f"public, max-age={max_age}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:
                    start = None
                    await send(message)
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._finish(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, buffer)

    async def _finish(self, scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = MutableHeaders(raw=list(start["headers"]))
        etag = headers.get("etag") or etag_for(body, headers.get("content-type", ""))
        headers["ETag"] = etag
        headers.setdefault("Cache-Control", self.cache_control)
        if matches(Headers(scope=scope).get("if-none-match"), etag):
            for name in ("content-length", "content-type"):
                if name in headers:
                    del headers[name]
            await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})
