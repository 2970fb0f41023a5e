"""Validating a dataset: every problem it has, each located by a JSON pointer.

Shapes first (pydantic), then what a shape cannot say: duplicate ids and pairs, references
to ids that exist neither in the file nor in the database, and clashes with stored records.
One faulty record never hides the problems of the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, select, tuple_

from app import models as m
from app.models import table
from app.records import (
    COLLECTIONS,
    ENTITY_TYPE,
    MAIN_TABLE,
    Dataset,
)
from app.values import lookup_country


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located by a JSON pointer (RFC 6901)."""

    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class DatasetInvalid(Exception):
    """The dataset was rejected; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the dataset")
        self.problems = list(problems)


def _escape(token: str | int) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer(*path: str | int) -> str:
    return "".join(f"/{_escape(p)}" for p in path)


def parse_dataset(
    raw: bytes | str | dict[str, Any],
    connection: Connection | None = None,
    *,
    standalone: bool = False,
) -> Dataset:
    """Validate a dataset; raise :class:`DatasetInvalid` listing every problem it has.

    Shapes, duplicate ids and duplicate pairs are always checked, on every record whatever
    else is wrong with the file. With a ``connection``, references and conflicts with stored
    records are checked too (an id may then be in the file or in the database); with
    ``standalone``, references must resolve within the file. Otherwise they are left to
    :func:`load`, since the database may hold what the file names.
    """
    if not isinstance(raw, dict):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DatasetInvalid([Problem("", f"not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise DatasetInvalid([Problem("", "a dataset is a JSON object")])
    problems: list[Problem] = []
    dataset: Dataset | None = None
    try:
        dataset = Dataset.model_validate(raw)
    except ValidationError as exc:
        problems = _shape_problems(raw, exc)
    # Later checks read the raw file when its shape is wrong, so that one bad record does
    # not hide the problems of the others; they skip what a shape problem already covers.
    data: Dataset | dict[str, Any] = dataset if dataset is not None else raw
    shaped = {p.pointer for p in problems}
    later = dataset_problems(data, connection, standalone=standalone)
    problems += [p for p in later if p.pointer not in shaped]
    if problems:
        raise DatasetInvalid(_one_per_pointer(problems))
    assert dataset is not None
    return dataset


def dataset_problems(
    data: Dataset | dict[str, Any],
    connection: Connection | None = None,
    *,
    standalone: bool = False,
) -> list[Problem]:
    """What a shape cannot say: duplicates always; references and clashes with stored records
    when there is a ``connection`` (references within the file alone when ``standalone``)."""
    problems = list(_duplicates(data))
    if connection is not None or standalone:
        problems += check_references(data, connection)
    if connection is not None:
        problems += check_conflicts(data, connection)
    return _one_per_pointer(problems)


def _one_per_pointer(problems: Iterable[Problem]) -> list[Problem]:
    """The first problem found at each place: one fault may break several checks."""
    first: dict[str, Problem] = {}
    for problem in problems:
        first.setdefault(problem.pointer, problem)
    return list(first.values())


def _shape_problems(raw: dict[str, Any], exc: ValidationError) -> list[Problem]:
    # A value that fits no branch of a union fails once per branch: it is reported once.
    return _one_per_pointer(
        Problem(pointer(*_data_path(raw, e["loc"])), e["msg"].removeprefix("Value error, "))
        for e in exc.errors(include_url=False)
    )


def _data_path(raw: Any, loc: Sequence[str | int]) -> list[str | int]:
    """The part of a pydantic error location that names data, not schema branches."""
    path: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str):
            path.append(part)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            path.append(part)
            node = node[part] if 0 <= part < len(node) else None
        # else: a union member ("int", "float") or a validator, not a step into the data
    return path


# Validated records and raw JSON objects are read alike, so the checks below work on a
# file whose shape is wrong too; what is not of the expected type is skipped (the shape
# check has reported it).


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _items(obj: Any, name: str) -> list[tuple[int, Any]]:
    value = _get(obj, name)
    return list(enumerate(value)) if isinstance(value, list | tuple) else []


def _str(obj: Any, name: str) -> str | None:
    value = _get(obj, name)
    return value if isinstance(value, str) else None


def _country(value: Any) -> str | None:
    found = lookup_country(value) if isinstance(value, str) else None
    return str(found.alpha_2) if found is not None else None


def _pair_of(obj: Any) -> tuple[str, str] | None:
    countries = [_country(c) for _, c in _items(obj, "countries")]
    if len(countries) != 2 or None in countries or countries[0] == countries[1]:
        return None
    a, b = sorted(c for c in countries if c is not None)
    return a, b


def _duplicates(data: Dataset | dict[str, Any]) -> Iterator[Problem]:
    """Ids used twice, and records that the database could store only once."""
    seen: dict[tuple[str, Any], str] = {}

    def check(kind: str, key: Any, where: str, message: str) -> Iterator[Problem]:
        if key is None:
            return
        if (kind, key) in seen:
            yield Problem(where, f"{message} (first at {seen[kind, key]})")
        else:
            seen[kind, key] = where

    def check_id(kind: str, obj: Any, *path: str | int) -> Iterator[Problem]:
        id_ = _str(obj, "id")
        yield from check(kind, id_, pointer(*path, "id"), f"duplicate id {id_!r}")

    for collection in COLLECTIONS:
        for i, record in _items(data, collection):
            yield from check_id(collection, record, collection, i)
    for i, person in _items(data, "people"):
        for j, role in _items(person, "roles"):
            yield from check_id("roles", role, "people", i, "roles", j)
    for i, relation in _items(data, "relations"):
        for j, note in _items(relation, "notes"):
            yield from check_id("notes", note, "relations", i, "notes", j)
        pair = _pair_of(relation)
        yield from check(
            "pair", pair, pointer("relations", i, "countries"), "another relation has this pair"
        )
    for i, ms in _items(data, "memberships"):
        key = (_str(ms, "organization"), _country(_get(ms, "country")))
        yield from check(
            "membership",
            key if None not in key else None,
            pointer("memberships", i, "country"),
            "another membership has this organization and country",
        )
    for i, visit in _items(data, "visits"):
        for j, part in _items(visit, "participants"):
            yield from check(
                f"participant {i}",
                _str(part, "person"),
                pointer("visits", i, "participants", j, "person"),
                "this person already takes part in the visit",
            )


# --- references -------------------------------------------------------------------------


def _ids_in_db(connection: Connection | None, collection: str, ids: set[str]) -> set[str]:
    if connection is None or not ids:
        return set()
    id_col = MAIN_TABLE[collection].c.id
    found: set[str] = set()
    chunk = sorted(ids)
    for start in range(0, len(chunk), 500):
        rows = connection.execute(select(id_col).where(id_col.in_(chunk[start : start + 500])))
        found.update(row[0] for row in rows)
    return found


def check_references(
    data: Dataset | dict[str, Any], connection: Connection | None = None
) -> list[Problem]:
    """Every id a record names must exist, in the dataset itself or in the database."""
    wanted: dict[str, list[tuple[str, str]]] = {c: [] for c in COLLECTIONS}

    def want(collection: str, obj: Any, name: str, *path: str | int) -> None:
        id_ = _str(obj, name)
        if id_ is not None:
            wanted[collection].append((id_, pointer(*path, name)))

    def cites(obj: Any, *path: str | int) -> None:
        for k, cite in _items(obj, "sources"):
            want("sources", cite, "source", *path, "sources", k)

    for i, p in _items(data, "people"):
        for j, role in _items(p, "roles"):
            want("organizations", role, "organization", "people", i, "roles", j)
            cites(role, "people", i, "roles", j)
    for i, r in _items(data, "relations"):
        cites(r, "relations", i)
        for j, note in _items(r, "notes"):
            cites(note, "relations", i, "notes", j)
    for i, v in _items(data, "visits"):
        cites(v, "visits", i)
        for j, part in _items(v, "participants"):
            want("people", part, "person", "visits", i, "participants", j)
    for collection in ("treaties", "trade", "routes"):
        for i, record in _items(data, collection):
            cites(record, collection, i)
    for i, ms in _items(data, "memberships"):
        cites(ms, "memberships", i)
        want("organizations", ms, "organization", "memberships", i)
    for i, fg in _items(data, "figures"):
        cites(fg, "figures", i)
        want("routes", fg, "route", "figures", i)

    problems = []
    for collection, refs in wanted.items():
        in_file = {_str(record, "id") for _, record in _items(data, collection)}
        missing = {id_ for id_, _ in refs} - in_file
        missing -= _ids_in_db(connection, collection, missing)
        for id_, where in refs:
            if id_ in missing:
                problems.append(
                    Problem(
                        where,
                        f"no {ENTITY_TYPE[collection]} with id {id_!r} in the "
                        "dataset or the database",
                    )
                )
    return problems


def check_conflicts(data: Dataset | dict[str, Any], connection: Connection) -> list[Problem]:
    """Records whose unique key a stored record of another id already holds."""
    rel, ms = table(m.DiplomaticRelation), table(m.Membership)
    problems = _clashes(
        connection,
        (rel.c.country_a, rel.c.country_b),
        rel.c.id,
        [
            (_pair_of(r), _str(r, "id"), pointer("relations", i, "countries"))
            for i, r in _items(data, "relations")
        ],
        "relation {owner!r} already holds this pair",
    )
    problems += _clashes(
        connection,
        (ms.c.organization_id, ms.c.country),
        ms.c.id,
        [
            (
                (_str(r, "organization"), _country(_get(r, "country"))),
                _str(r, "id"),
                pointer("memberships", i, "country"),
            )
            for i, r in _items(data, "memberships")
        ],
        "membership {owner!r} already has this organization and country",
    )
    # Roles and notes have ids of their own, which another person or relation may hold.
    for collection, child, model, parent in (
        ("people", "roles", m.Role, "person_id"),
        ("relations", "notes", m.RelationNote, "relation_id"),
    ):
        tbl = table(model)
        problems += _clashes(
            connection,
            (tbl.c.id,),
            tbl.c[parent],
            [
                ((_str(nested, "id"),), _str(record, "id"), pointer(collection, i, child, j, "id"))
                for i, record in _items(data, collection)
                for j, nested in _items(record, child)
            ],
            f"this id belongs to {ENTITY_TYPE[collection]} {{owner!r}}",
        )
    return problems


def _clashes(
    connection: Connection,
    key: tuple[Any, ...],
    owner: Any,
    wanted: list[tuple[tuple[Any, ...] | None, str | None, str]],
    message: str,
) -> list[Problem]:
    """``wanted`` holds (key value, owner id, pointer): a problem where the database holds
    the key value under another owner."""
    complete = [w for w in wanted if w[0] is not None and None not in w[0] and w[1] is not None]
    values = sorted({w[0] for w in complete if w[0] is not None})
    stored: dict[tuple[Any, ...], str] = {}
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        where = tuple_(*key).in_(chunk) if len(key) > 1 else key[0].in_([v[0] for v in chunk])
        for row in connection.execute(select(*key, owner).where(where)):
            stored[tuple(row[:-1])] = row[-1]
    return [
        Problem(where, message.format(owner=stored[value]))
        for value, id_, where in complete
        if value is not None and stored.get(value, id_) != id_
    ]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetInvalid([Problem("", f"cannot read {path}: {exc.strerror}")]) from None


def read_file(
    path: Path, connection: Connection | None = None, *, standalone: bool = False
) -> Dataset:
    return parse_dataset(_read(path), connection, standalone=standalone)


def check_file(path: Path) -> list[Problem]:
    """Every problem of a file that must stand on its own (``dyad check``)."""
    try:
        read_file(path, standalone=True)
    except DatasetInvalid as exc:
        return exc.problems
    return []
