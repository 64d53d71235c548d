"""Single-statement writes on PostgreSQL: the pieces the engine's hot paths are built of.

A write that touches several rows costs one round trip per row and two more for the
transaction when the ORM makes it, and on the step path the round trips are most of the
cost. PostgreSQL runs a statement with data-modifying CTEs atomically, so such a write can be
one statement in autocommit instead. The statements are written out in services.checkpoint and
services.decision_statement (and the audit trail's part in services.audit);
this module holds what they share: whether they may run, running a prepared statement,
building a model instance from returned columns, and an INSERT of an unsaved model instance
whose values Django prepares exactly as ``save()`` would.

They run on psycopg cursors of Django's connection, so Django's query log, execute wrappers
and assertNumQueries do not see them; the spans and the audit trail record what they did."""

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import connection, models
from psycopg.types.json import Jsonb

M = TypeVar("M", bound=models.Model)


def enabled(*, within_transaction: bool = False) -> bool:
    """Whether a write may be one statement here: on PostgreSQL, unless the setting turns it
    off, and outside a transaction unless the write may be part of a caller's transaction
    (``within_transaction``). A checkpoint or a decision must commit alone: it takes its
    locks in a fixed order and publishes at once."""
    return (
        settings.ENGINE_SINGLE_STATEMENT_WRITES
        and connection.vendor == "postgresql"
        and (within_transaction or not connection.in_atomic_block)
    )


def table(model: type[models.Model]) -> str:
    return model._meta.db_table


def run_statement(sql: str, params: dict[str, Any] | tuple[Any, ...]) -> tuple[Any, ...] | None:
    """Run one statement, prepared on the server (planned once per connection), and return
    its first row. Outside a transaction it commits by itself."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def compact(sql: str) -> str:
    """``sql`` with its runs of whitespace made single spaces (no literal here holds two),
    so that psycopg, which caches the parsing of statements up to 4 kB, caches it."""
    assert "--" not in sql, "a comment would swallow the rest of the compacted statement"
    return " ".join(sql.split())


def _fields(model: type[models.Model], names: tuple[str, ...] | None) -> list[models.Field]:
    """The concrete fields of ``model``, or those whose attribute names are in ``names``, in
    field order either way (``Model.from_db`` takes values in that order)."""
    fields = list(model._meta.concrete_fields)
    if names is None:
        return fields
    unknown = set(names) - {f.attname for f in fields}
    assert not unknown, f"{model.__name__} has no columns {sorted(unknown)}"
    return [f for f in fields if f.attname in names]


def columns(model: type[models.Model], alias: str, names: tuple[str, ...] | None = None) -> str:
    """The concrete columns of ``model`` under ``alias`` in field order, every one or those
    named (attribute names); for a SELECT list or RETURNING."""
    return ", ".join(f"{alias}.{f.column}" for f in _fields(model, names))


def instance_from_row(model: type[M], values: list[Any], names: tuple[str, ...] | None = None) -> M:
    """A model instance from the next values of a returned row (``columns`` order, with the
    same ``names``), converted as the ORM would (JSON arrives as text); the values are taken
    off the list. Fields left out are deferred, as with ``only()``."""
    fields = _fields(model, names)
    taken, values[:] = values[: len(fields)], values[len(fields) :]
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, taken, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _inserted_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@cache
def insert_cte(
    name: str, model: type[models.Model], source: str, condition: str = "TRUE", **computed: str
) -> str:
    """A CTE ``name`` inserting one row of ``model`` for each row of ``source`` (a CTE or
    table expression) where ``condition`` holds, returning its id. Columns named in
    ``computed`` take that SQL expression (a key written earlier in the statement); the
    others come from one JSON parameter that ``insert_params`` fills from an instance, so a
    statement has few parameters and psycopg can cache its parsing. Only table and column
    names are formatted in."""
    fields = _inserted_fields(model)
    cols = ", ".join(f.column for f in fields)
    # Sources are CTEs that return only an id, so the record's column names are unambiguous.
    values = ", ".join(computed.get(f.column, f.column) for f in fields)
    row = f"jsonb_populate_record(NULL::{table(model)}, %({name})s) AS {name}_row"
    into = f"{name} AS (INSERT INTO {table(model)} ({cols})"
    return f"{into} SELECT {values} FROM {source}, {row} WHERE {condition} RETURNING id)"  # noqa: S608


def insert_params(name: str, instance: models.Model | None, *computed: str) -> dict[str, Any]:
    """The parameter of ``insert_cte(name, ...)`` for an unsaved ``instance``, each value
    prepared by its field as ``save()`` prepares it (defaults, auto_now_add); None when the
    statement inserts nothing there (its condition is false)."""
    if instance is None:
        return {name: None}
    fields = [f for f in _inserted_fields(type(instance)) if f.column not in computed]
    values = {f.column: f.pre_save(instance, add=True) for f in fields}
    return {name: record(type(instance), values)}


def record(model: type[models.Model], values: dict[str, Any]) -> Jsonb:
    """Column values of ``model`` as one JSON parameter for ``jsonb_populate_record``, which
    converts each to its column's type."""
    fields = {f.column: f for f in model._meta.concrete_fields}
    row = {}
    for column, value in values.items():
        field = fields[column]
        if isinstance(field, models.JSONField) or value is None:
            # As strict as the ORM: a value JSON cannot hold fails when the row is encoded.
            row[column] = value
        else:
            row[column] = _as_json(field.get_db_prep_save(value, connection))
    return Jsonb(row)


def _as_json(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()  # to the microsecond, which DjangoJSONEncoder drops
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def mark_saved(instance: models.Model, pk: int) -> None:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = connection.alias
