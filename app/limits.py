"""Rate limits per client: in-process by default, shared through Redis across workers.

A client is its API key when it sends one (a hash of the header, never the key itself),
otherwise its IP address. Each client has a fixed one-minute window for reads and a
stricter one for writes. Every answer carries ``RateLimit-Limit``, ``RateLimit-Remaining``
and ``RateLimit-Reset`` (IETF httpapi draft -06); over the limit the answer is a ``429``
problem with ``Retry-After``. With ``DYAD_REDIS_URL`` set, all workers and hosts count
together (one ``INCR`` per request); without it each process counts on its own.

Guessing keys is throttled apart from that budget: a client IP whose keys were refused
(``401``) ``bad_key_limit`` times in a window gets ``429`` for every request that carries a
key until the window ends, before the key is even looked up.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Protocol

import redis.asyncio as aioredis
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import problem_response
from app.settings import Settings

WINDOW_SECONDS = 60
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class Counter(Protocol):
    async def hit(self, key: str, window: int) -> int:
        """Count one request of ``key`` in ``window``; return the count so far."""
        ...

    async def peek(self, key: str, window: int) -> int:
        """The count of ``key`` in ``window``, without counting."""
        ...


class MemoryCounter:
    """Counts in this process; old windows are dropped as new ones start."""

    def __init__(self) -> None:
        self.window = -1
        self.counts: dict[str, int] = {}

    async def hit(self, key: str, window: int) -> int:
        if window != self.window:
            self.window, self.counts = window, {}
        self.counts[key] = self.counts.get(key, 0) + 1
        return self.counts[key]

    async def peek(self, key: str, window: int) -> int:
        return self.counts.get(key, 0) if window == self.window else 0


class RedisCounter:
    """Counts in Redis, so that every worker and host shares one budget per client."""

    def __init__(self, url: str, prefix: str = "dyad:rl:") -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix

    async def hit(self, key: str, window: int) -> int:
        name = f"{self.prefix}{window}:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW_SECONDS * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def peek(self, key: str, window: int) -> int:
        count = await self.redis.get(f"{self.prefix}{window}:{key}")
        return int(count or 0)

    async def aclose(self) -> None:
        await self.redis.aclose()


def client_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def make_counter(settings: Settings) -> Counter:
    return RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter()


def _window() -> tuple[int, int]:
    """The current window and the seconds until it ends."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    return window, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, counter: Counter) -> None:
        self.app = app
        self.reads = settings.rate_limit_reads
        self.writes = settings.rate_limit_writes
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        reading = scope["method"] in READ_METHODS
        limit = self.reads if reading else self.writes
        window, reset = _window()
        count = await self.counter.hit(f"{'r' if reading else 'w'}:{client_id(scope)}", window)
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(max(0, limit - count)),
            "RateLimit-Reset": str(reset),
        }
        if count > limit:
            kind = "reads" if reading else "writes"
            response = problem_response(
                429,
                f"Too many {kind}: {limit} a minute per client. Try again in {reset} s.",
                slug="rate-limited",
                headers={**headers, "Retry-After": str(reset)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BadKeyThrottle:
    """``429`` for requests carrying a key from a client IP whose keys keep being refused.

    Counted by IP, not by key: a guesser sends a new key each time. Only requests that sent
    ``Authorization`` and got ``401`` count, so a client that forgot its key is not punished,
    and reads (which look at no key) are never refused.
    """

    def __init__(self, app: ASGIApp, settings: Settings, counter: Counter) -> None:
        self.app = app
        self.limit = settings.bad_key_limit
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READ_METHODS:
            await self.app(scope, receive, send)
            return
        if not any(name == b"authorization" for name, _ in scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = "bad-key:" + (client[0] if client else "unknown")
        window, reset = _window()
        if await self.counter.peek(key, window) >= self.limit:
            response = problem_response(
                429,
                f"Too many refused API keys from this address: {self.limit} a minute. "
                f"Try again in {reset} s.",
                slug="too-many-bad-keys",
                headers={"Retry-After": str(reset)},
            )
            await response(scope, receive, send)
            return

        async def count_refusals(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                await self.counter.hit(key, window)
            await send(message)

        await self.app(scope, receive, count_refusals)
