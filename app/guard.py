"""What every request and answer must pass: methods, body size, query parameters, security
headers.

:class:`RequestGuard` refuses, before routing, authentication or parsing: a method no route
speaks (``TRACE``, ``FOO``: ``405``) and a body over the limit of its route (``413``). The
size is checked on ``Content-Length`` when there is one and, in any case, on the bytes
actually received, so a chunked body cannot slip past. A key refused before the body was read
(``401``, ``403``) does not hide a body over the limit: the rest of it is read and counted
first, so that the answer is the ``413``. :func:`known_query_parameters` refuses a query
parameter the operation does not take (``422``). :class:`SecurityHeaders` stamps every
answer, cached ones and ``304`` included.
"""

from __future__ import annotations

import contextlib

from fastapi import Request
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api_keys import URL_KEY_PARAMS
from app.limits import READ_METHODS
from app.problems import InvalidInput, problem_response
from app.settings import Settings

IMPORTS_PATH = "/v1/imports"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Answers that refuse the key, given before the body is read: the body's size still comes first.
KEY_REFUSALS = frozenset({401, 403})
# Answers must not say what serves them: an attacker would look up its known flaws.
REVEALING_HEADERS = (b"server", b"x-powered-by")
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
# Per "is a write": the headers SecurityHeaders takes out of an answer, and those it adds.
STAMPS = {
    False: (frozenset({*REVEALING_HEADERS, NOSNIFF[0]}), [NOSNIFF]),
    True: (frozenset({*REVEALING_HEADERS, NOSNIFF[0], NO_STORE[0]}), [NOSNIFF, NO_STORE]),
}


def route_path(scope: Scope) -> str:
    """The path the routes see: behind a proxy's prefix (``root_path``), what follows it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


_TAKES: dict[str, frozenset[str]] = {}  # by the operation's unique id, the same in every app
MAX_NAMED = 10  # unknown parameters named in a refusal


def query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters an operation takes, its dependencies' included."""
    takes = _TAKES.get(route.unique_id)
    if takes is None:
        names: set[str] = set()
        dependants = [route.dependant]
        while dependants:
            dependant = dependants.pop()
            names.update(field.alias for field in dependant.query_params)
            dependants.extend(dependant.dependencies)
        takes = _TAKES[route.unique_id] = frozenset(names)
    return takes


async def known_query_parameters(request: Request) -> None:
    """A query parameter the operation does not take is a ``422`` naming the ones it does.

    Ignored, a misspelt or guessed filter answers as if it were not there: ``?year=2021``
    on the trade list (which takes ``year_from`` and ``year_to``) gave every year. Write
    bodies refuse unknown fields for the same reason. Keys in the URL are left to the
    write's own refusal (``401``), which says where a key goes instead."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
        return
    takes = query_parameters(route)
    unknown = sorted(set(request.query_params) - takes - URL_KEY_PARAMS)
    if not unknown:
        return
    named = [name[:40] for name in unknown[:MAX_NAMED]]
    accepted = ", ".join(f"`{name}`" for name in sorted(takes))
    takes_text = f"takes: {accepted}" if accepted else "takes no query parameter"
    raise InvalidInput(
        f"Unknown query parameter(s): {', '.join(named)}. This operation {takes_text}.",
        errors=[{"param": name, "message": "not a parameter of this operation"} for name in named],
    )


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a body passes its limit; the guard answers 413."""


class RequestGuard:
    """Refuses unknown methods and bodies over their route's limit."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_import = settings.max_import_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in KNOWN_METHODS:
            await _method_not_allowed(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # A HEAD is the GET without its body (RFC 9110 9.3.2); FastAPI's routes name GET
            # only, so they would answer it 405.
            as_get = {**scope, "method": "GET"}
            try:
                await self.app(as_get, receive, _headers_only(send))
            finally:
                if "route" in as_get:  # the metrics count the HEAD under its route
                    scope["route"] = as_get["route"]
            return
        if scope["method"] in READ_METHODS:  # no route reads their bodies: nothing to count
            await self.app(scope, receive, send)
            return
        limit = self.max_import if route_path(scope) == IMPORTS_PATH else self.max_body
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await self._counting(scope, receive, send, limit)

    async def _counting(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """Pass the request on with a ``receive`` that counts what arrives.

        Past the limit ``receive`` raises. The app may turn that into an answer of its own
        (FastAPI makes any failure to read a body a 400), so from then on whatever it sends
        is dropped and the 413 is sent instead, unless an answer had already started.

        An app that refuses the key (401, 403) answers before it reads the body: the rest of
        the body is then read here, keeping nothing and stopping past the limit, and if it is
        over, the 413 replaces the refusal. A valid key's body is read by the app alone, once.
        Key guessing stays throttled: ``BadKeyThrottle`` (inside this guard) has counted the
        401 by the time it gets here, and a throttled address gets its 429 without any of its
        body being read, whatever its size.
        """
        received = 0
        ended = exceeded = started = False

        async def counted() -> Message:
            nonlocal received, ended, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            else:  # http.disconnect: no more of the body will come
                ended = True
            return message

        async def unless_exceeded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not exceeded:
                if message["status"] in KEY_REFUSALS and not ended:
                    with contextlib.suppress(BodyTooLarge):
                        while not ended:
                            await counted()
                started = not exceeded
            if exceeded and not started:
                return
            await send(message)

        try:
            await self.app(scope, counted, unless_exceeded)
        except Exception:
            # Whatever the cut body made the app raise, the client is owed a 413.
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _too_large(limit)(scope, receive, send)


def _headers_only(send: Send) -> Send:
    """``send`` with every body left out: the headers (``Content-Length`` too) stay the GET's."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped


def _too_large(limit: int) -> Response:
    # The rest of the body is never read: close the connection rather than drain it.
    return problem_response(
        413,
        f"The body is larger than the {limit:,} bytes this operation takes. "
        "Send less at a time (split an import into several files).",
        slug="too-large",
        headers={"Connection": "close"},
    )


async def _method_not_allowed(scope: Scope, receive: Receive, send: Send) -> None:
    """405 for a method no route speaks, on any path, with the methods the path allows."""
    path = route_path(scope)
    allowed: set[str] = set()
    for route in iter_route_contexts(getattr(scope.get("app"), "routes", [])):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            allowed |= set(route.methods or {"GET", "HEAD"})  # no methods: a mount of files
    if "GET" in allowed:
        allowed.add("HEAD")
    response = problem_response(
        405,
        f"{scope['method']} is not allowed on {path}. "
        f"Allowed: {', '.join(sorted(allowed)) or 'nothing, there is no such path'}.",
        slug="method-not-allowed",
        headers={"Allow": ", ".join(sorted(allowed))},
    )
    await response(scope, receive, send)


class SecurityHeaders:
    """``nosniff`` on every answer, ``no-store`` on answers to writes, no server banner.

    Outermost, so that answers made before routing (the response cache, 304s, 429s, CORS
    preflights) get them too. A write's answer may carry a key's data or depend on it: no
    cache along the way should keep it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped, added = STAMPS[scope["method"] not in READ_METHODS]

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in dropped
                ] + added
            await send(message)

        await self.app(scope, receive, stamp)


class Cors(CORSMiddleware):
    """Starlette's CORS, with the common case made cheap: an answer to a request without
    ``Origin`` only needs ``Vary: Origin``, which Starlette adds through a header object
    built for every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary_origin(message.get("headers", []))
            await send(message)

        await self.app(scope, receive, vary)


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Origin`` added to ``Vary``, as one header (as Starlette does)."""
    varies = [value for name, value in headers if name.lower() == b"vary"]
    if not varies:
        return [*headers, (b"vary", b"Origin")]
    others = [(name, value) for name, value in headers if name.lower() != b"vary"]
    return [*others, (b"vary", b", ".join([*varies, b"Origin"]))]
