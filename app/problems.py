"""The error vocabulary, rendered as RFC 9457 ``application/problem+json``.

Code raises a named :class:`Problem`; one set of handlers renders it, FastAPI's own
validation errors, Starlette's 404/405 and any unexpected exception alike. Nothing
internal (traceback, SQL, file path) ever reaches a client: a 500 carries a request id
that points to the traceback in the server log. Database trouble is the client's to retry
(``503``: down, locked, or a query past its time limit) or the client's to fix (``422``: a
value the database cannot take, such as a NUL character on PostgreSQL).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.values import UNKNOWN_COUNTRY

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A 500 is rendered outside every middleware, so the header that stops browsers from
# sniffing an error into HTML travels with each problem itself.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
SQLSTATE_QUERY_CANCELED = "57014"  # PostgreSQL: statement_timeout (or a cancel) stopped it
log = logging.getLogger("dyad")


class ProblemError(BaseModel):
    """One invalid input: where (a JSON pointer into the body, or a parameter name) and why."""

    pointer: str | None = Field(default=None, examples=["/treaties/3/signed"])
    param: str | None = Field(default=None, examples=["limit"])
    message: str


class EntityRef(BaseModel):
    """An entity by kind and id, as the change feed and search name it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "trade", "id": "az-kz-2021-turnover-azernews"}]}
    )

    type: str
    id: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=["/problems/not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=[UNKNOWN_COUNTRY.format(code="XX")])
    instance: str | None = None
    errors: list[ProblemError] | None = None
    request_id: str | None = None
    referenced_by: list[EntityRef] | None = Field(
        default=None,
        description="On a 409 to a delete: the entities that still refer to the one to delete.",
    )


class Problem(Exception):
    """An error the API means to give; subclasses name the kind."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})  # extra members of the problem document

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class InvalidInput(Problem):
    status = 422
    slug = "invalid-input"


class NotFound(Problem):
    status = 404
    slug = "not-found"


class UnknownCountry(NotFound):
    slug = "unknown-country"

    def __init__(self, code: str) -> None:
        super().__init__(UNKNOWN_COUNTRY.format(code=code))


class Conflict(Problem):
    status = 409
    slug = "conflict"


class PreconditionFailed(Problem):
    status = 412
    slug = "precondition-failed"


class ServiceUnavailable(Problem):
    status = 503
    slug = "unavailable"


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    if request_id:
        body["request_id"] = request_id
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={**NOSNIFF, **(headers or {})},
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route can answer with."""
    return {
        status: {
            "model": ProblemDetails,
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
            },
        }
        for status in statuses
    }


SORT_START, CHOICE_START = "^[-+]?(", "^("  # how sorts and choices are written
_WORD = re.compile(r"[\w.@-]+")
LISTED = 12  # alternatives named before "… (N in all)"


def _alternatives(pattern: str) -> list[str] | None:
    """The words of a pattern that is a plain choice (``^(de|fr)$``) or a sort
    (``^[-+]?(a|b)(,[-+]?(a|b))*$``), as :func:`re.escape` wrote them; None for another
    pattern. Read by splitting, not by a regular expression: a nested one backtracked
    for minutes over the 159 locales of ``lang``."""
    start = SORT_START if pattern.startswith(SORT_START) else CHOICE_START
    end = pattern.find(")")
    if not pattern.startswith(start) or end < 0:
        return None
    words = [word.replace("\\", "") for word in pattern[len(start) : end].split("|")]
    return words if all(_WORD.fullmatch(word) for word in words) else None


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    pattern = str(error.get("ctx", {}).get("pattern", ""))
    words = _alternatives(pattern)
    if error.get("type") != "string_pattern_mismatch" or words is None:
        return message
    listed = ", ".join(words[:LISTED])
    if len(words) > LISTED:
        listed += f", … ({len(words)} in all)"
    given = str(error.get("input", ""))[:40]
    if pattern.startswith(SORT_START):
        return (
            f"{given!r} is not a sort of this list: fields among {listed}, comma-separated, "
            "each with `-` first for descending"
        )
    return f"{given!r} is not one of: {listed}"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    errors = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ())]
        message = _message(error)
        if loc and loc[0] == "body":
            tokens = (t.replace("~", "~0").replace("/", "~1") for t in loc[1:])
            errors.append({"pointer": "/" + "/".join(tokens), "message": message})
        else:
            errors.append({"param": loc[-1] if loc else "", "message": message})
    return errors


def _request_id(request: Request) -> str:
    return getattr(request.state, "request_id", None) or uuid.uuid4().hex


def timed_out(exc: Exception) -> bool:
    """Whether a database error is a statement stopped for running past its time limit."""
    orig = getattr(exc, "orig", None)
    # SQLite says "interrupted" when the progress handler of app.db stops a statement.
    return getattr(orig, "sqlstate", None) == SQLSTATE_QUERY_CANCELED or str(orig) == "interrupted"


_HTTP_SLUGS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}
# FastAPI's words when a body is not JSON it can decode (malformed, or nested too deep).
_UNPARSABLE = "There was an error parsing the body"


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error the app can raise as a problem document."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(
            exc.status,
            exc.detail,
            slug=exc.slug,
            errors=exc.errors,
            headers=exc.headers,
            extensions=exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        said = [f"{e.get('param') or e.get('pointer') or ''}: {e['message']}" for e in errors]
        more = f"; and {len(said) - 3} more" if len(said) > 3 else ""
        return problem_response(
            422,
            f"The request is not valid. {'; '.join(said[:3])}{more}.",
            slug="invalid-input",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = {
            404: f"There is nothing at {request.url.path}. The API lives under /v1; see /docs.",
            405: f"{request.method} is not allowed on {request.url.path}.",
        }.get(exc.status_code, str(exc.detail))
        if detail == _UNPARSABLE:
            detail = "The body could not be decoded as JSON: it is malformed or nested too deep."
        return problem_response(
            exc.status_code, detail, slug=_HTTP_SLUGS.get(exc.status_code), headers=exc.headers
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        # Database down, restarting, locked too long, its pool exhausted or a query stopped
        # at its time limit: all transient. Only the type is logged: the message holds SQL.
        request_id = _request_id(request)
        if timed_out(exc):
            log.warning("query timed out (request id %s) on %s", request_id, request.url.path)
            return problem_response(
                503,
                "The query took longer than the server allows and was stopped. Narrow it "
                "(more filters, a smaller limit) or try again shortly.",
                slug="query-timeout",
                headers={"Retry-After": "5"},
                request_id=request_id,
            )
        log.warning("database unavailable (request id %s): %s", request_id, type(exc).__name__)
        return problem_response(
            503,
            "The database is busy or unreachable. Try again shortly.",
            slug="unavailable",
            headers={"Retry-After": "2"},
            request_id=request_id,
        )

    @app.exception_handler(DataError)
    async def _unstorable_value(request: Request, exc: DataError) -> Response:
        # Input that got past validation but not past the database: a NUL character in
        # text on PostgreSQL, a number out of its range. The client's to fix, never a 500.
        request_id = _request_id(request)
        log.warning("value refused by the database (request id %s)", request_id)
        return problem_response(
            422,
            "A value of the request is one the database cannot store or compare (a NUL "
            "character, or a number out of range). Remove it and try again.",
            slug="invalid-input",
            request_id=request_id,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        request_id = _request_id(request)
        log.exception("unhandled error (request id %s)", request_id)
        return problem_response(
            500,
            "The server failed to answer this request. Quote the request id when reporting it.",
            slug="internal-error",
            request_id=request_id,
        )
