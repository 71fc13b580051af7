"""Statements for a batch of rows, written as the ORM would write them but without its per-row
compiling (a chunk of a mass refund, a batch of payments marked paid).

- ``rows_insert``: one multi-row INSERT where most columns hold one value for the whole batch;
  only the columns that vary are prepared row by row.
- ``rows_update_each``: one UPDATE in which each row takes its own value of one column (each
  refund or payout its gateway reference), which the ORM writes as ``Case(When(...))``.

Over a few hundred rows the ORM spends more Python preparing and compiling these statements than
the database spends running them. Columns and values still come from the model's fields, so what
is written is what ``bulk_create`` or ``update`` would write. No signals are sent; nothing in the
project listens to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, models


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def rows_insert(
    *,
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT one row per item of ``rows`` (values of ``fields``, in order), every row with the
    same value of each field of ``constants``; any other field takes its default, as in
    ``bulk_create`` (a callable default is called for each row; ``auto_now`` is not applied). With
    ``ignore_conflicts`` a row that would break a unique constraint is skipped, as
    ``bulk_create(ignore_conflicts=True)`` skips it."""
    meta = model._meta
    constants = dict(constants or {})
    given = {*fields, *constants}
    defaulted = [
        field
        for field in meta.concrete_fields
        if field.name not in given and field.attname not in given and field is not meta.auto_field
    ]
    per_row = [field for field in defaulted if field.has_default() and callable(field.default)]
    constants |= {field.name: field.get_default() for field in defaulted if field not in per_row}
    if per_row:
        rows = ((*row, *(field.get_default() for field in per_row)) for row in rows)
    varying = [*(meta.get_field(name) for name in fields), *per_row]
    fixed = [(meta.get_field(name), value) for name, value in constants.items()]
    fixed_params = [field.get_db_prep_save(value, connection) for field, value in fixed]
    columns = ", ".join(_quote(field.column) for field in [*varying, *(field for field, _ in fixed)])
    width = len(varying) + len(fixed)
    row_sql = f"({', '.join(['%s'] * width)})"
    per_statement = max(1, (connection.features.max_query_params or 65_535) // width)
    suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    params: list[Any] = []
    count = 0
    with connection.cursor() as cursor:
        for row in rows:
            params += [field.get_db_prep_save(value, connection) for field, value in zip(varying, row, strict=True)]
            params += fixed_params
            count += 1
            if count == per_statement:
                cursor.execute(
                    f"INSERT INTO {_quote(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * count)}{suffix}",
                    params,
                )
                params, count = [], 0
        if count:
            cursor.execute(
                f"INSERT INTO {_quote(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * count)}{suffix}", params
            )


def rows_update_each(
    *,
    model: type[models.Model],
    column: str,
    values: Mapping[Any, Any],
    increments: Mapping[str, int] | None = None,
    **common: Any,
) -> int:
    """Set ``column`` to ``values[pk]`` on each row whose primary key is in ``values``, every
    field of ``common`` to its one value, and add each of ``increments`` to its integer field, in
    one UPDATE. Returns how many rows it changed."""
    if not values:
        return 0
    meta = model._meta
    pk = meta.pk
    target = meta.get_field(column)
    keys = [pk.get_db_prep_value(key, connection) for key in values]
    cases = " ".join(["WHEN %s THEN %s"] * len(keys))
    assignments = [f"{_quote(target.column)} = CASE {_quote(pk.column)} {cases} END"]
    params: list[Any] = [
        item
        for key, value in zip(keys, values.values(), strict=True)
        for item in (key, target.get_db_prep_save(value, connection))
    ]
    for name, value in common.items():
        field = meta.get_field(name)
        assignments.append(f"{_quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, step in (increments or {}).items():
        column_name = _quote(meta.get_field(name).column)
        assignments.append(f"{column_name} = {column_name} + %s")
        params.append(int(step))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_quote(meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {_quote(pk.column)} IN ({', '.join(['%s'] * len(keys))})",
            [*params, *keys],
        )
        return cursor.rowcount
