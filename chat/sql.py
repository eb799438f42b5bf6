"""The few statements on the hot path, without the ORM's per-query compilation.

Building a query costs Django about a millisecond of Python on this kind of machine, far
more than SQLite takes to run it; a burst of a hundred sends made several hundred of
them. These helpers build each statement's SQL once per model and field list, and still
convert every value the way the model's fields do (`get_db_prep_save`), so what they
write is exactly what `Model.save()` would — on SQLite and PostgreSQL alike. Everything
else uses the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper


def _db() -> BaseDatabaseWrapper:
    # The connection itself, not the `django.db.connection` proxy: every attribute read
    # through the proxy is a thread-local lookup, and a row has a score of fields.
    return connections[DEFAULT_DB_ALIAS]


@functools.cache
def _insert_sql(model: type[models.Model], vendor: str) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    fields = tuple(f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField)))
    quote = _db().ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({marks})", fields


def insert(objs: Sequence[models.Model]) -> None:
    """INSERT rows of one model (primary keys set by the caller, or auto-increment ones unused)."""
    if not objs:
        return
    db = _db()
    sql, fields = _insert_sql(type(objs[0]), db.vendor)
    params = [[f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields] for obj in objs]
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
    sets = ", ".join(f"{quote(meta.get_field(n).column)} = %s" for n in names)
    conditions = " AND ".join(f"{quote(meta.get_field(n).column)} = %s" for n in where)
    return f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {conditions}"


def update(model: type[models.Model], where: dict[str, Any], /, **values: Any) -> int:
    """UPDATE model SET values WHERE each `where` field equals its value; the rows changed."""
    db = _db()
    names, keys = tuple(values), tuple(where)
    sql = _update_sql(model, names, keys, db.vendor)
    meta = model._meta
    params = [meta.get_field(n).get_db_prep_save(values[n], db) for n in names]
    params += [meta.get_field(k).get_db_prep_value(where[k], db) for k in keys]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def update_rows(model: type[models.Model], names: tuple[str, ...], where: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> None:
    """The same UPDATE for many rows in one executemany; each row is its values then its keys."""
    if not rows:
        return
    db = _db()
    sql = _update_sql(model, names, where, db.vendor)
    fields = [model._meta.get_field(n) for n in names + where]
    params = [
        [f.get_db_prep_save(v, db) if i < len(names) else f.get_db_prep_value(v, db)
         for i, (f, v) in enumerate(zip(fields, row, strict=True))]
        for row in rows
    ]
    with db.cursor() as cursor:
        cursor.executemany(sql, params)


def select_one(sql: str, params: Iterable[Any]) -> tuple[Any, ...] | None:
    with _db().cursor() as cursor:
        cursor.execute(sql, list(params))
        row = cursor.fetchone()
    return tuple(row) if row is not None else None


def column(model: type[models.Model], name: str) -> str:
    """The quoted column of a field, for the few hand-written SELECTs."""
    return str(_db().ops.quote_name(model._meta.get_field(name).column))


def table(model: type[models.Model]) -> str:
    return str(_db().ops.quote_name(model._meta.db_table))


def prep(model: type[models.Model], name: str, value: Any) -> Any:
    """A value as the field would send it to the database (a UUID's hex on SQLite, say)."""
    return model._meta.get_field(name).get_db_prep_value(value, _db())
