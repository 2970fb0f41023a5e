"""The one write path every collection uses: create, update and delete, one transaction each.

A resource module registers its three write routes in one call, as it registers its get
route. A write body is the collection's dataset record (countries as ISO codes, related
entities by id, citations as ``{source, quote}``): ``XCreate`` is that record, ``XUpdate``
the same fields, each optional, without ``id``. A write checks what a shape cannot say
(references, clashes with stored records), writes the rows, reindexes search, bumps the
dataset revision and appends its changes to the feed, all in one transaction: a write that
fails changes nothing.

Writers take turns (see :func:`_writing`), so revisions commit in the order they are made
and a mirror that follows ``/v1/changes`` never skips one.

(No postponed annotations: the handlers' body types are made at run time.)
"""

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, TypeVar, cast

import orjson
from fastapi import APIRouter, Depends, Header, Path, Request
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import Connection, Engine, and_, insert, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response

from app import models as m
from app import search
from app.api_keys import KeyInfo, WriteKey
from app.countries import EngineDep, country_index
from app.dataset import bump_revision
from app.db import write_transaction
from app.etags import etag_for, matches_strongly
from app.idempotency import Idempotency, remember, replay
from app.models import table
from app.pagination import JSON_MEDIA_TYPE
from app.problems import Conflict, InvalidInput, NotFound, PreconditionFailed, problem_responses
from app.readers import read_collection
from app.records import ENTITY_TYPE, MAIN_TABLE
from app.records import Record as DatasetRecord
from app.resources import Present
from app.validation import (
    DatasetInvalid,
    Problem,
    check_conflicts,
    check_references,
    parse_dataset,
    pointer,
)
from app.writers import CASCADED_FACTS, NESTED_FACTS, delete_entity, entity_rows, insert_rows
from app.writers import replace_entity as replace_rows

Change = tuple[str, str, str]  # (action, type, id), as the change feed lists it
R = TypeVar("R", bound=DatasetRecord)

STATE = table(m.DatasetState)
CITATION = table(m.Citation)
PARTICIPANT = table(m.VisitParticipant)
ROLE = table(m.Role)
INT64 = 2**63 - 1
NO_STORE = "no-store"

# Who may refer to an entity of a collection, for the 409 that refuses to break them.
BLOCKERS = {
    "sources": "A source still cited is a 409 whose `referenced_by` lists the facts that cite "
    "it (a person for a role's citation, a relation for a note's): facts may never be left "
    "without sources. Cite another source in them, or delete them, first.",
    "people": "A person who takes part in visits is a 409 whose `referenced_by` lists the "
    "visits. The person's roles go with the person.",
    "organizations": "An organization that people hold roles in is a 409 whose "
    "`referenced_by` lists them. Its memberships go with it, each a `delete` in the change "
    "feed.",
    "routes": "Its figures go with it, each a `delete` in the change feed.",
    "relations": "Its notes go with it.",
}


# --- bodies --------------------------------------------------------------------------------


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def create_body(record: type[R], name: str) -> type[R]:
    """``XCreate``: the dataset record itself, under the name OpenAPI shows."""
    return create_model(
        f"{_camel(name)}Create",
        __base__=record,
        __module__=__name__,
        __doc__=f"A new {name.replace('_', ' ')}, in the dataset format. Unknown fields and "
        "server-owned ones (`revision`, timestamps) are refused.",
    )


def _without_defaults(schema: dict[str, Any]) -> None:
    # A field left out keeps its stored value: there is no default to document.
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


def update_body(record: type[DatasetRecord], name: str) -> type[BaseModel]:
    """``XUpdate``: every field of the record but ``id``, each optional, none defaulted."""
    fields: dict[str, Any] = {}
    for field_name, field in record.model_fields.items():
        if field_name == "id":
            continue
        optional = copy.copy(field)
        optional.default = None  # never stored: only the fields sent are applied
        fields[field_name] = (field.annotation, optional)
    model: type[BaseModel] = create_model(
        f"{_camel(name)}Update",
        __config__=ConfigDict(extra="forbid", frozen=True, json_schema_extra=_without_defaults),
        __module__=__name__,
        __doc__=f"Changes to a {name.replace('_', ' ')}: the fields sent replace the stored "
        "ones (a list is replaced whole), `null` clears an optional field, `id` cannot change.",
        **fields,
    )
    return model


# --- checks --------------------------------------------------------------------------------


def _unstorable(value: Any, *path: str | int) -> Iterator[dict[str, str]]:
    """Values JSON allows but a database column cannot hold."""
    if isinstance(value, str):
        if "\x00" in value:
            yield {"pointer": pointer(*path), "message": "text cannot contain U+0000 (NUL)"}
        else:
            try:
                value.encode()
            except UnicodeEncodeError:
                yield {"pointer": pointer(*path), "message": "text must be valid Unicode"}
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
        yield {"pointer": pointer(*path), "message": f"a number must be within ±{INT64}"}
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable(item, *path, key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, *path, index)


def _relative(collection: str, problems: Sequence[Problem]) -> list[dict[str, str]]:
    """Pointers into the dataset (``/treaties/0/title``) made pointers into the body."""
    prefix = pointer(collection, 0)
    return [{"pointer": p.pointer.removeprefix(prefix), "message": p.message} for p in problems]


def _summary(errors: Sequence[Mapping[str, str]]) -> str:
    shown = "; ".join(f"{e['pointer'] or '/'}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return shown + more


def _checked(connection: Connection, collection: str, data: dict[str, Any]) -> Any:
    """The record ``data`` describes, or a problem naming each fault by a JSON pointer."""
    kind = ENTITY_TYPE[collection]
    errors = list(_unstorable(data))
    if not errors:
        try:
            dataset = parse_dataset({collection: [data]})  # shape, and duplicates inside it
        except DatasetInvalid as exc:
            errors = _relative(collection, exc.problems)
    if errors:
        raise InvalidInput(f"The {kind} is not valid: {_summary(errors)}.", errors=errors)
    errors = _relative(collection, check_references(dataset, connection))
    if errors:
        raise InvalidInput(
            f"The {kind} refers to what does not exist: {_summary(errors)}.", errors=errors
        )
    errors = _relative(collection, check_conflicts(dataset, connection))
    if errors:
        raise Conflict(f"The {kind} clashes with stored data: {_summary(errors)}.", errors=errors)
    record = getattr(dataset, collection)[0]
    try:
        entity_rows(collection, record)
    except (OverflowError, ValueError) as exc:  # e.g. a date that has no UTC equivalent
        raise InvalidInput(f"The {kind} cannot be stored: {exc}.") from None
    return record


# --- transactions --------------------------------------------------------------------------


class _Turn:
    """This process's queue of writers to one database."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.row_made = False  # the revision row exists (it is never deleted)

    def make_row(self, engine: Engine) -> None:
        """The first write of a database makes the row that every write then locks."""
        if self.row_made:
            return
        with engine.connect() as connection:
            self.row_made = connection.execute(select(STATE.c.id)).first() is not None
        if not self.row_made:
            try:
                with write_transaction(engine) as connection:
                    connection.execute(insert(STATE).values(id=1, revision=0))
            except IntegrityError:
                pass  # another process made it first
            self.row_made = True


@lru_cache(maxsize=8)
def _turn(engine: Engine) -> _Turn:
    return _Turn()


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction, once the writers before it are done.

    Writers of this process queue on a lock, not while holding a pooled connection, so that
    a burst of writes cannot starve reads of connections; across processes, locking the
    revision row (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` locks the file) makes revisions
    commit in the order they are made, one each, so that a mirror following the feed
    misses none.
    """
    country_index(engine)  # read now: a write must never wait for a second connection
    turn = _turn(engine)
    with turn.lock:
        turn.make_row(engine)
        with write_transaction(engine) as connection:
            connection.execute(select(STATE.c.revision).where(STATE.c.id == 1).with_for_update())
            yield connection


def _record(connection: Connection, changes: list[Change]) -> None:
    """Search and the change feed learn of the write, in its transaction."""
    search.reindex(connection, changes)
    bump_revision(connection, changes)


@dataclass(frozen=True)
class Target:
    """A collection that takes writes, and how its entities are shown."""

    collection: str
    present: Present
    path: str  # the collection's URL path, e.g. /v1/treaties

    @property
    def kind(self) -> str:
        return ENTITY_TYPE[self.collection]

    def representation(self, connection: Connection, id_: str) -> bytes | None:
        """The body a GET of the entity gives (the bytes its ETag is made from)."""
        records = read_collection(connection, self.collection, [id_])
        return orjson.dumps(self.present(connection, records)[0]) if records else None

    def not_found(self, id_: str) -> NotFound:
        return NotFound(f"There is no {self.kind} with id {id_!r}.")


def _answer(body: bytes, status: int, location: str | None = None) -> Response:
    headers = {"ETag": etag_for(body, JSON_MEDIA_TYPE), "Cache-Control": NO_STORE}
    if location is not None:
        headers["Location"] = location
    return Response(body, status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers)


def _precondition(target: Target, id_: str, if_match: str | None, current: bytes) -> None:
    etag = etag_for(current, JSON_MEDIA_TYPE)
    if if_match is not None and not matches_strongly(if_match, etag):
        raise PreconditionFailed(
            f"The {target.kind} {id_!r} is not at the version If-Match names: it changed since. "
            "GET it again and retry with its current ETag.",
            headers={"ETag": etag},
        )


# --- create, update, delete ----------------------------------------------------------------


def create_entity(
    engine: Engine,
    target: Target,
    data: dict[str, Any],
    api_key: KeyInfo,
    retry: Idempotency | None,
    root_path: str = "",
) -> Response:
    """``201`` with the new entity, its ``Location`` and ``ETag``; or the first answer again."""

    def attempt() -> Response:
        with _writing(engine) as connection:
            if retry is not None:
                replayed = replay(connection, api_key, retry)
                if replayed is not None:
                    return replayed
            id_ = data["id"]
            main = MAIN_TABLE[target.collection]
            if connection.execute(select(main.c.id).where(main.c.id == id_)).first():
                raise Conflict(
                    f"A {target.kind} with id {id_!r} exists already. PATCH "
                    f"{target.path}/{id_} to change it, or choose another id.",
                    errors=[{"pointer": "/id", "message": "id in use"}],
                )
            record = _checked(connection, target.collection, data)
            insert_rows(connection, entity_rows(target.collection, record))
            _record(connection, [("create", target.kind, id_)])
            body = target.representation(connection, id_)
            assert body is not None
            response = _answer(body, 201, f"{root_path}{target.path}/{id_}")
            if retry is not None:
                remember(connection, api_key, retry, response)
            return response

    try:
        return attempt()
    except IntegrityError:
        # A concurrent request took the id or the key first; a second attempt sees it
        # committed, and answers 409 or replays.
        try:
            return attempt()
        except IntegrityError:
            raise Conflict(
                f"The {target.kind} clashes with data written at the same time; retry."
            ) from None


class _Unchanged(Exception):
    """The update changes nothing: roll it back, so that no revision is made."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body


def update_entity(
    engine: Engine, target: Target, id_: str, changes: dict[str, Any], if_match: str | None
) -> Response:
    """``200`` with the entity as it is now (the fields sent replace the stored ones)."""
    try:
        with _writing(engine) as connection:
            stored = read_collection(connection, target.collection, [id_])
            if not stored:
                raise target.not_found(id_)
            current = orjson.dumps(target.present(connection, stored)[0])
            _precondition(target, id_, if_match, current)
            record = _checked(connection, target.collection, {**stored[0], **changes})
            replace_rows(connection, target.collection, record)
            if read_collection(connection, target.collection, [id_]) == stored:
                raise _Unchanged(current)
            _record(connection, [("update", target.kind, id_)])
            body = target.representation(connection, id_)
    except _Unchanged as unchanged:
        body = unchanged.body
    assert body is not None
    return _answer(body, 200)


def _referrers(connection: Connection, collection: str, id_: str) -> list[tuple[str, str]]:
    """Entities that refer to this one and would be left broken by its delete."""
    found: set[tuple[str, str]] = set()
    if collection == "sources":
        nested = {fact_type for fact_type, _, _ in NESTED_FACTS.values()}
        rows = connection.execute(
            select(CITATION.c.fact_type, CITATION.c.fact_id).where(
                CITATION.c.source_id == id_, CITATION.c.fact_type.not_in(nested)
            )
        )
        found.update((fact_type, fact_id) for fact_type, fact_id in rows)
        # A role's or a note's citation: the person or relation holding it is what to edit.
        for owner, (fact_type, model, parent) in NESTED_FACTS.items():
            child = table(model)
            owners = connection.scalars(
                select(child.c[parent])
                .join(
                    CITATION,
                    and_(CITATION.c.fact_type == fact_type, CITATION.c.fact_id == child.c.id),
                )
                .where(CITATION.c.source_id == id_)
            )
            found.update((ENTITY_TYPE[owner], owner_id) for owner_id in owners)
    elif collection == "people":
        visits = connection.scalars(
            select(PARTICIPANT.c.visit_id).where(PARTICIPANT.c.person_id == id_)
        )
        found.update(("visit", visit_id) for visit_id in visits)
    elif collection == "organizations":
        people = connection.scalars(select(ROLE.c.person_id).where(ROLE.c.organization_id == id_))
        found.update(("person", person_id) for person_id in people)
    return sorted(found)


def _cascaded(connection: Connection, collection: str, id_: str) -> list[Change]:
    """Facts of their own that go with the entity (a route's figures, an organization's
    memberships): each is a delete in the change feed too."""
    if collection not in CASCADED_FACTS:
        return []
    fact_type, model, parent = CASCADED_FACTS[collection]
    tbl = table(model)
    ids = connection.scalars(select(tbl.c.id).where(tbl.c[parent] == id_).order_by(tbl.c.id))
    return [("delete", fact_type, fact_id) for fact_id in ids]


def delete_entity_at(engine: Engine, target: Target, id_: str, if_match: str | None) -> Response:
    """``204``; or a ``409`` naming what still refers to the entity."""
    with _writing(engine) as connection:
        current = target.representation(connection, id_)
        if current is None:
            raise target.not_found(id_)
        _precondition(target, id_, if_match, current)
        referrers = _referrers(connection, target.collection, id_)
        if referrers:
            names = ", ".join(f"{kind} {ref}" for kind, ref in referrers[:10])
            more = f" and {len(referrers) - 10} more" if len(referrers) > 10 else ""
            raise Conflict(
                f"The {target.kind} {id_!r} cannot be deleted: {names}{more} still refer to it. "
                + BLOCKERS.get(target.collection, ""),
                extensions={"referenced_by": [{"type": k, "id": i} for k, i in referrers]},
            )
        changes = [("delete", target.kind, id_), *_cascaded(connection, target.collection, id_)]
        delete_entity(connection, target.collection, id_)
        _record(connection, changes)
    return Response(status_code=204)


# --- routes --------------------------------------------------------------------------------


async def _raw_body(request: Request) -> bytes:
    return await request.body()  # Starlette keeps it: the body parameter reads the same bytes


RawBody = Annotated[bytes, Depends(_raw_body)]
IdPath = Annotated[str, Path(max_length=120, description="The entity's id (a slug).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Any unique string (a UUID, say). A retry with the same key and body "
        "replays the first answer without writing again; the same key with another body is "
        "a 422. Keys are kept per API key.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=2000,
        description="The ETag of the version you read (from a GET, or the answer to a "
        "write): the write happens only if the entity is still at that version, else 412. "
        "`*` matches any version.",
    ),
]
WRITE_NOTES = (
    "Needs an API key with the `write` scope. Every write bumps the dataset revision and "
    "appends to `/v1/changes`, in the same transaction."
)


def _links(name: str) -> dict[str, Any]:
    """OpenAPI links from a created entity to the operations on it."""
    parameters = {"id": "$response.body#/id"}
    return {
        f"{verb.capitalize()}{_camel(name)}": {
            "operationId": f"{verb}_{name}",
            "parameters": parameters,
            "description": f"{what} the {name.replace('_', ' ')} just made.",
        }
        for verb, what in (("get", "Read"), ("update", "Change"), ("delete", "Delete"))
    }


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


ETAG_HEADER = _header(
    "The ETag a GET of the entity gives now: send it in `If-Match` to change only this version."
)


def add_write_routes(
    router: APIRouter,
    collection: str,
    record: type[DatasetRecord],
    response_model: type[BaseModel],
    present: Present,
    *,
    name: str,
    notes: str = "",
) -> None:
    """``POST {prefix}``, ``PATCH {prefix}/{id}`` and ``DELETE {prefix}/{id}`` for a
    collection; ``name`` is the singular of the operation ids (``create_treaty``)."""
    target = Target(collection, present, router.prefix)
    title = name.replace("_", " ")
    new_body = create_body(record, name)
    changes_body = update_body(record, name)

    def create(
        request: Request,
        engine: EngineDep,
        key: WriteKey,
        raw: RawBody,
        body: new_body,  # type: ignore[valid-type]
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        retry = (
            Idempotency.of(idempotency_key, request.method, request.url.path, raw)
            if idempotency_key is not None
            else None
        )
        data = cast(BaseModel, body).model_dump(mode="json")
        root = request.scope.get("root_path", "")
        return create_entity(engine, target, data, key, retry, root)

    def update(
        engine: EngineDep,
        key: WriteKey,
        id: IdPath,
        body: changes_body,  # type: ignore[valid-type]
        if_match: IfMatch = None,
    ) -> Response:
        changes = cast(BaseModel, body).model_dump(mode="json", exclude_unset=True)
        return update_entity(engine, target, id, changes, if_match)

    def delete(engine: EngineDep, key: WriteKey, id: IdPath, if_match: IfMatch = None) -> Response:
        return delete_entity_at(engine, target, id, if_match)

    shape = (
        f"The body is the {title} in the dataset format of `/v1/export`: countries as ISO "
        "codes (any form), related entities by id, citations as `{source, quote}`."
    )
    routes: list[tuple[Callable[..., Response], str, str, dict[str, Any]]] = [
        (
            create,
            "post",
            "",
            dict(
                operation_id=f"create_{name}",
                summary=f"Create a {title}",
                description=f"{shape} You choose the id (a slug); an id in use is a 409. "
                "Unknown fields, server-owned ones (`revision`, timestamps) and references "
                "to a source, person, organization or route that does not exist are a 422 "
                "whose `errors` point at them (JSON pointers). Answers 201 with `Location` "
                "and `ETag`. With `Idempotency-Key`, a retry replays the first answer. "
                + (f"{notes} " if notes else "")
                + WRITE_NOTES,
                status_code=201,
                response_model=response_model,
                responses={
                    201: {
                        "description": f"The {title}, as a GET of `Location` gives it.",
                        "headers": {
                            "Location": _header(f"`{router.prefix}/<id>`: the new {title}."),
                            "ETag": ETAG_HEADER,
                        },
                        "links": _links(name),
                    },
                    **problem_responses(400, 401, 403, 409, 422),
                },
            ),
        ),
        (
            update,
            "patch",
            "/{id}",
            dict(
                operation_id=f"update_{name}",
                summary=f"Change a {title}",
                description="The fields sent replace the stored ones; the others stay. A "
                "list (such as `sources`) is replaced whole; `null` clears an optional field; "
                "the id cannot change. The result is checked as a whole, as a create is. "
                "`If-Match` makes the change conditional (412 if the entity changed since). "
                f"A change that changes nothing makes no revision. {WRITE_NOTES}",
                response_model=response_model,
                responses={
                    200: {
                        "description": f"The {title} as it is now.",
                        "headers": {"ETag": ETAG_HEADER},
                    },
                    **problem_responses(400, 401, 403, 404, 409, 412, 422),
                },
            ),
        ),
        (
            delete,
            "delete",
            "/{id}",
            dict(
                operation_id=f"delete_{name}",
                summary=f"Delete a {title}",
                description=f"{BLOCKERS.get(collection, '')} `If-Match` makes the delete "
                f"conditional (412 if the entity changed since). {WRITE_NOTES}",
                status_code=204,
                response_class=Response,
                responses={
                    204: {"description": "Deleted."},
                    **problem_responses(401, 403, 404, 409, 412, 422),
                },
            ),
        ),
    ]
    for handler, method, path, options in routes:
        handler.__name__ = options["operation_id"]
        router.add_api_route(path, handler, methods=[method.upper()], **options)
