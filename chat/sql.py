"""The few statements on the hot path, without the ORM's per-query compilation.

Building a query costs Django about a millisecond of Python on this kind of machine, far
more than SQLite takes to run it; a burst of a hundred sends made several hundred of
them. These helpers build each statement's SQL once per model and field list, and still
convert every value the way the model's fields do, so what they write is exactly what
`Model.save()` would — on SQLite and PostgreSQL alike. For the plain field types the
conversion is looked up once per field (`_converter`); anything else goes through the
field's own `get_db_prep_save`. Everything else uses the ORM.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper


def _db() -> BaseDatabaseWrapper:
    # The connection itself, not the `django.db.connection` proxy: every attribute read
    # through the proxy is a thread-local lookup, and a row has a score of fields.
    return connections[DEFAULT_DB_ALIAS]


_SAME = ("CharField", "TextField", "SlugField", "URLField", "EmailField", "IntegerField", "BigIntegerField",
         "PositiveIntegerField", "PositiveBigIntegerField", "PositiveSmallIntegerField", "SmallIntegerField",
         "FloatField", "BooleanField")


@functools.cache
def _converter(field: models.Field[Any, Any], vendor: str) -> Callable[[Any], Any]:
    """Python value → database value, as `field.get_db_prep_save` would make it."""
    db = _db()
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    kind = target.get_internal_type()
    if kind in _SAME:
        return _same
    if kind == "UUIDField":
        if db.features.has_native_uuid_field:
            return _same
        return _uuid_hex
    if kind == "DateTimeField" and field.get_internal_type() == "DateTimeField":
        return db.ops.adapt_datetimefield_value  # type: ignore[no-any-return]
    return lambda value: field.get_db_prep_save(value, db)


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    if value is None:
        return None
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(str(value)).hex


# A column to insert: its attribute, whether Django computes it on save, its converter, its field.
_Column = tuple[str, bool, Callable[[Any], Any], "models.Field[Any, Any]"]


@functools.cache
def _insert_plan(model: type[models.Model], vendor: str) -> tuple[str, tuple[_Column, ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField)))
    quote = _db().ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    # (attribute, whether pre_save computes it (auto_now...), converter, field)
    plan = tuple(
        (f.attname, bool(getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)), _converter(f, vendor), f)
        for f in fields
    )
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})", plan


def insert(objs: Sequence[models.Model]) -> None:
    """INSERT rows of one model (primary keys set by the caller, or auto-increment ones unused)."""
    if not objs:
        return
    db = _db()
    sql, plan = _insert_plan(type(objs[0]), db.vendor)
    params = [
        [
            convert(f.pre_save(obj, add=True) if computed else getattr(obj, attname))
            for attname, computed, convert, f in plan
        ]
        for obj in objs
    ]
    with db.cursor() as cursor:
        if len(params) == 1:
            cursor.execute(sql, params[0])
        else:
            cursor.executemany(sql, params)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = db.alias


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...], vendor: str) -> str:
    meta = model._meta
    quote = _db().ops.quote_name
    sets = ", ".join(f"{quote(str(_field(model, n).column))} = %s" for n in names)
    conditions = " AND ".join(f"{quote(str(_field(model, n).column))} = %s" for n in where)
    return f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {conditions}"


def update(model: type[models.Model], where: dict[str, Any], /, **values: Any) -> int:
    """UPDATE model SET values WHERE each `where` field equals its value; the rows changed."""
    db = _db()
    names, keys = tuple(values), tuple(where)
    sql = _update_sql(model, names, keys, db.vendor)
    meta = model._meta
    params = [_converter(meta.get_field(n), db.vendor)(values[n]) for n in names]
    params += [_converter(meta.get_field(k), db.vendor)(where[k]) for k in keys]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def update_rows(
    model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> None:
    """The same UPDATE for many rows in one executemany; each row is its values then its keys."""
    if not rows:
        return
    db = _db()
    sql = _update_sql(model, names, where, db.vendor)
    converters = [_converter(model._meta.get_field(n), db.vendor) for n in names + where]
    params = [[convert(v) for convert, v in zip(converters, row, strict=True)] for row in rows]
    with db.cursor() as cursor:
        cursor.executemany(sql, params)


def select_one(sql: str, params: Iterable[Any]) -> tuple[Any, ...] | None:
    with _db().cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """A concrete field with a column (the only kind these statements name)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column, f"{model.__name__}.{name} has no column"
    return field


def column(model: type[models.Model], name: str) -> str:
    """The quoted column of a field, for the few hand-written SELECTs."""
    return str(_db().ops.quote_name(str(_field(model, name).column)))


def table(model: type[models.Model]) -> str:
    return str(_db().ops.quote_name(model._meta.db_table))


def prep(model: type[models.Model], name: str, value: Any) -> Any:
    """A value as the field would send it to the database (a UUID's hex on SQLite, say)."""
    return _field(model, name).get_db_prep_value(value, _db())
