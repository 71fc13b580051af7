"""The one place outside the ledger (``escrow.statements``) where SQL is written by hand.

Model rows read and written in plain SQL, for the API's hottest requests, and statements for a
batch of rows (a chunk of a mass refund, a batch of payments marked paid). Callers ask for
instances (``select``, ``get``, ``get_with``: a model, the relations to join as
``select_related`` names them, an exact lookup, and which rows to lock), or hand instances and
field names (``insert``, ``update``, ``Change`` and ``update_each``, ``rows_insert``,
``rows_update_each``); they never write table, column or JOIN text, nor count column offsets.

On the card flow (bench/flow.py) the ORM spends more Python compiling each statement and turning
its row into model instances than PostgreSQL spends running it. These helpers keep the model as
the one description of its table: column lists, parameter adaptation and the backend's value
converters all come from the model's fields, so a row read here is the same instance a queryset
would return (``Model.from_db``), and a write issues the statement ``save(update_fields=...)`` or
``create()`` would, without compiling it. No signals are sent; nothing in the project listens to
``pre_save``/``post_save``. State fields are written only after the model's ``@transition`` has
changed them in memory, as ``save`` would write them.

Only exact lookups on a model's columns (and those of the relations ``select`` joins) are supported:
anything richer belongs to the ORM.

Batch statements (``rows_insert``, ``rows_update_each``): over a few hundred rows the ORM spends
more Python preparing and compiling them than the database spends running them. Their columns and
values still come from the model's fields, so what is written is what ``bulk_create`` or
``update`` would write.

The reads that join several tables (``fetch``) are prepared statements on PostgreSQL: each
connection prepares one the first time it runs it (``PREPARE``), then only executes it, so
PostgreSQL plans it once per connection instead of on every request (planning was most of what
these reads cost it). A prepared statement lives in the database session, so a proxy that hands
one session's statements to another (PgBouncer in transaction mode) needs
``DB_PREPARED_STATEMENTS=0``.
"""

from __future__ import annotations

import itertools
import re
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from functools import cache
from typing import Any, NamedTuple, TypeVar, cast

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def table(model: type[Model]) -> str:
    return quote(model._meta.db_table)


def rows_per_statement(columns: int) -> int:
    """Rows of ``columns`` parameters one multi-row statement may carry on this database."""
    return max(1, (connection.features.max_query_params or 65_535) // columns)


@cache
def _columns(model: type[Model], alias: str, vendor: str) -> str:
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of ``model`` under the table alias ``alias``, in field order."""
    return _columns(model, alias, connection.vendor)


def width(model: type[Model]) -> int:
    """How many columns ``columns(model, ...)`` selects."""
    return len(model._meta.concrete_fields)


@cache
def _layout(model: type[Model], vendor: str) -> tuple[int, int, tuple]:
    """How many columns, where the primary key is, and the backend's and the fields' converters as
    the ORM's compiler applies them (PostgreSQL needs none for these models; SQLite hands back
    text for dates and UUIDs)."""
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((index, tuple(functions), column))
    pk_index = next(index for index, field in enumerate(fields) if field is model._meta.pk)
    return len(fields), pk_index, tuple(converters)


def build(model: type[M], row: Sequence[Any], start: int = 0) -> M | None:
    """The instance held by ``row[start:start + width(model)]``, or None if its primary key is
    NULL (the missing side of an outer join)."""
    db = connections[DEFAULT_DB_ALIAS]  # the connection itself: each access through the proxy costs
    count, pk_index, converters = _layout(model, db.vendor)
    values = list(row[start : start + count])
    for index, functions, column in converters:
        value = values[index]
        for function in functions:
            value = function(value, column, db)
        values[index] = value
    if values[pk_index] is None:
        return None
    return model.from_db(db.alias, None, values)


# Per database session (the driver's connection object): SQL text → name of its prepared statement.
_prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_names = itertools.count(1)  # a failed PREPARE never leaves a name that a retry would reuse


def _numbered(sql: str) -> str:
    """``%s`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    numbers = itertools.count(1)
    return re.sub(r"%s", lambda _: f"${next(numbers)}", sql)


def _prepared_names(db) -> dict[str, str] | None:
    """This session's prepared statements (SQL text → name), or None where they are not used."""
    if db.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return None
    db.ensure_connection()  # the session the statements live in (a request's first query opens it)
    return _prepared.setdefault(db.connection, {})


def _on_the_wire(names: dict[str, str] | None, statements: Sequence[Sendable]) -> tuple[str, list, list[str]]:
    """One query text for ``statements``, its parameters, and the SQL of the statements it prepares.

    With prepared statements each becomes ``EXECUTE name(...)``, preceded the first time by its
    ``PREPARE`` in the same round trip; the new names are remembered at once and forgotten again
    (``_forget``) if the round trip fails, since a PREPARE behind a failing statement never ran."""
    values = [p for _, params in statements for p in params or ()]
    if names is None:
        return "; ".join(sql for sql, _ in statements), values, []
    pieces, new = [], []
    for sql, params in statements:
        if params is None:
            pieces.append(sql)
            continue
        name = names.get(sql)
        if name is None:
            name = names[sql] = f"rows_{next(_names)}"
            pieces.append(f"PREPARE {name} AS {_numbered(sql)}")
            new.append(sql)
        pieces.append(f"EXECUTE {name}({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}")
    return "; ".join(pieces), values, new


def _forget(names: dict[str, str] | None, new: list[str]) -> None:
    for sql in new:
        names.pop(sql, None)  # a fresh name next time: one that did get prepared is never reused


def fetch(sql: str, params: Sequence[Any], *, limit: int | None = None) -> list[tuple]:
    """The rows of ``sql`` (at most ``limit``): a read that requests run over and over, prepared
    once per session on PostgreSQL (see the module's docstring)."""
    db = connections[DEFAULT_DB_ALIAS]
    names = _prepared_names(db)
    with db.cursor() as cursor:
        if names is not None and sql not in names:
            name = f"rows_{next(_names)}"
            cursor.execute(f"PREPARE {name} AS {_numbered(sql)}")  # kept by the session even on rollback
            names[sql] = name
        text, values, _ = _on_the_wire(names, [(sql, list(params))])
        cursor.execute(text, values)
        return cursor.fetchmany(limit) if limit else cursor.fetchall()


def param(model: type[Model], name: str, value: Any) -> Any:
    """``value`` ready to compare with the column of field ``name`` (``"pk"`` for the primary key);
    a model instance stands for its primary key. A malformed value raises what the ORM raises."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if isinstance(value, Model):
        value = value.pk
    return field.get_db_prep_value(value, connection, prepared=False)


def where(model: type[Model], alias: str, lookup: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``alias.column = %s AND ...`` for exact lookups on ``model``'s own fields."""
    clauses, params = [], []
    for name, value in lookup.items():
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        clauses.append(f"{alias}.{quote(field.column)} = %s")
        params.append(param(model, name, value))
    return " AND ".join(clauses), params


def set_cached(instance: Model, name: str, related: Model | None) -> None:
    """Attach ``related`` as the loaded value of relation ``name`` (forward or reverse), as
    ``select_related`` does; None marks a reverse one-to-one as known to be absent."""
    instance._meta.get_field(name).set_cached_value(instance, related)


# --- a declarative select: instances with their relations --------------------------------------


class Scalar:
    """One more value a select reads in its statement: ``field`` of the row of ``model`` that the
    exact ``lookup`` finds (a scalar subquery; None when there is no such row)."""

    __slots__ = ("field", "lookup", "model")

    def __init__(self, model: type[Model], field: str, **lookup: Any) -> None:
        self.model, self.field, self.lookup = model, field, lookup


class _Join:
    """A relation of the selected model, joined under the alias of its path."""

    __slots__ = ("alias", "field", "model", "parent", "reverse")

    def __init__(self, parent: int, field: Any, model: type[Model], alias: str, reverse: bool) -> None:
        self.parent, self.field, self.model, self.alias, self.reverse = parent, field, model, alias, reverse


def _joins(model: type[Model], related: tuple[str, ...]) -> tuple[list[_Join], dict[str, int]]:
    """The joins ``related`` asks for (each path's prefixes first), and each path's index in them
    (the selected model itself is ``""`` at index 0)."""
    joins = [_Join(-1, None, model, quote(model._meta.db_table), False)]
    index = {"": 0}
    for path in related:
        names = path.split("__")
        for depth in range(1, len(names) + 1):
            prefix = "__".join(names[:depth])
            if prefix in index:
                continue
            parent = index["__".join(names[: depth - 1])]
            field = joins[parent].model._meta.get_field(names[depth - 1])
            reverse = field.auto_created and not field.concrete
            if not (field.one_to_one or (field.many_to_one and not reverse)):
                raise ValueError(f"{path}: only forward foreign keys and one-to-one relations join")
            index[prefix] = len(joins)
            joins.append(_Join(parent, field, field.related_model, quote(prefix), reverse))
    return joins, index


def _column_of(joins: list[_Join], index: dict[str, int], name: str) -> tuple[type[Model], str, str]:
    """``(model, field name, "alias.column")`` of a lookup's name (``"card__consumer"``: a field
    of a joined relation)."""
    path, _, field_name = name.rpartition("__")
    if path not in index:
        raise ValueError(f"{name}: {path} is not joined")
    join = joins[index[path]]
    meta = join.model._meta
    field = meta.pk if field_name == "pk" else meta.get_field(field_name)
    return join.model, field_name, f"{join.alias}.{quote(field.column)}"


@cache
def _select_plan(
    model: type[Model],
    related: tuple[str, ...],
    keys: tuple[str, ...],
    of: tuple[str, ...] | None,
    scalars: tuple[tuple[type[Model], str, tuple[str, ...]], ...],
    vendor: str,
) -> tuple[str, list[_Join], tuple[tuple[type[Model], str], ...], int]:
    """The statement's text, its joins, the models and field names of the lookup's parameters, and
    where the scalars' columns start."""
    joins, index = _joins(model, related)
    selected = [_columns(join.model, join.alias, vendor) for join in joins]
    for number, (scalar_model, field_name, scalar_keys) in enumerate(scalars):
        alias = f"s{number}"
        target = scalar_model._meta.pk if field_name == "pk" else scalar_model._meta.get_field(field_name)
        condition = where(scalar_model, alias, dict.fromkeys(scalar_keys))[0] or "TRUE"
        selected.append(f"(SELECT {alias}.{quote(target.column)} FROM {table(scalar_model)} {alias} WHERE {condition})")
    text = [f"SELECT {', '.join(selected)} FROM {table(model)} {joins[0].alias}"]
    outer: set[int] = set()
    for number, join in enumerate(joins[1:], start=1):
        parent = joins[join.parent]
        if join.reverse:  # the row pointing back at the parent; there may be none
            remote = join.field.remote_field
            on = f"{join.alias}.{quote(remote.column)} = {parent.alias}.{quote(remote.target_field.column)}"
            left = True
        else:
            on = f"{join.alias}.{quote(join.field.target_field.column)} = {parent.alias}.{quote(join.field.column)}"
            left = join.field.null or join.parent in outer
        if left:
            outer.add(number)
        text.append(f"{'LEFT JOIN' if left else 'JOIN'} {table(join.model)} {join.alias} ON {on}")
    clauses, params = [], []
    for key in keys:
        key_model, field_name, column = _column_of(joins, index, key)
        clauses.append(f"{column} = %s")
        params.append((key_model, field_name))
    if clauses:
        text.append(f"WHERE {' AND '.join(clauses)}")
    if of is not None:
        if connection.features.has_select_for_update_of:
            text.append(f"FOR UPDATE OF {', '.join(joins[0].alias if name == 'self' else quote(name) for name in of)}")
        elif connection.features.has_select_for_update:
            text.append("FOR UPDATE")
    return " ".join(text), joins, tuple(params), sum(width(join.model) for join in joins)


def _select(
    model: type[Model],
    related: Sequence[str],
    lookup: Mapping[str, Any],
    for_update: bool,
    of: Sequence[str],
    scalars: Sequence[Scalar],
    limit: int | None,
) -> list[tuple[Model, tuple[Any, ...]]]:
    """Each row's instance of ``model`` (its relations set) and its scalars' values."""
    text, joins, keys, scalars_at = _select_plan(
        model,
        tuple(related),
        tuple(lookup),
        tuple(of) if for_update else None,
        tuple((scalar.model, scalar.field, tuple(scalar.lookup)) for scalar in scalars),
        connections[DEFAULT_DB_ALIAS].vendor,
    )
    params = [param(scalar.model, name, value) for scalar in scalars for name, value in scalar.lookup.items()]
    params += [param(key_model, name, value) for (key_model, name), value in zip(keys, lookup.values(), strict=True)]
    found: list[tuple[Model, tuple[Any, ...]]] = []
    for row in fetch(text, params, limit=limit):
        instances: list[Model | None] = []
        start = 0
        for join in joins:
            parent = instances[join.parent] if join.parent >= 0 else None
            instance = build(join.model, row, start) if parent is not None or join.parent < 0 else None
            start += width(join.model)
            instances.append(instance)
            if parent is None or join.field is None:
                continue
            # As select_related leaves them: the relation loaded on the parent, and the way back
            # on a one-to-one's other side (an absent reverse one-to-one is known to be absent).
            if join.reverse:
                join.field.set_cached_value(parent, instance)
                if instance is not None:
                    join.field.remote_field.set_cached_value(instance, parent)
            else:
                join.field.set_cached_value(parent, instance)
                if instance is not None and join.field.one_to_one:
                    join.field.remote_field.set_cached_value(instance, parent)
        found.append((cast(Model, instances[0]), tuple(row[scalars_at:])))  # the root row is never absent
    return found


def select(
    model: type[M],
    *,
    lookup: Mapping[str, Any],
    related: Sequence[str] = (),
    for_update: bool = False,
    of: Sequence[str] = ("self",),
    limit: int | None = None,
) -> list[M]:
    """The instances of ``model`` that the exact ``lookup`` finds, each with the relations of
    ``related`` loaded (what ``select_related(*related).filter(**lookup)`` returns), in one
    prepared statement (``fetch``).

    ``related`` names forward foreign keys and one-to-one relations either way, as paths
    (``"card__merchant"``, ``"user__consumer"``); a nullable one and a reverse one-to-one are outer
    joins (their absence is cached as None), the rest inner joins. ``lookup`` takes exact matches
    on the fields of the model and of the joined relations (``"card__consumer"``). With
    ``for_update`` the rows of ``of`` (``"self"`` and relation paths) are locked:
    ``select_for_update(of=of)``."""
    found = _select(model, related, lookup, for_update, of, (), limit)
    return [cast(M, instance) for instance, _ in found]


def get_with(
    model: type[M],
    *,
    lookup: Mapping[str, Any],
    related: Sequence[str] = (),
    for_update: bool = False,
    of: Sequence[str] = ("self",),
    scalars: Sequence[Scalar] = (),
) -> tuple[M, tuple[Any, ...]] | None:
    """The one instance ``select`` finds and the values of ``scalars``, read in the same
    statement; None if there is none; ``MultipleObjectsReturned`` as ``get()`` raises it."""
    found = _select(model, related, lookup, for_update, of, scalars, 2)
    if len(found) > 1:
        raise model.MultipleObjectsReturned()
    return (cast(M, found[0][0]), found[0][1]) if found else None


def get(
    model: type[M],
    *,
    lookup: Mapping[str, Any],
    related: Sequence[str] = (),
    for_update: bool = False,
    of: Sequence[str] = ("self",),
) -> M | None:
    """The one instance ``select`` finds; None if there is none; ``MultipleObjectsReturned`` as
    ``get()`` raises it."""
    found = get_with(model, lookup=lookup, related=related, for_update=for_update, of=of)
    return found[0] if found is not None else None


@cache
def _update_sql(model: type[Model], fields: tuple[str, ...], added: tuple[str, ...], vendor: str) -> str:
    meta = model._meta
    assignments = [f"{quote(meta.get_field(name).column)} = %s" for name in fields]
    for name in added:
        column = quote(meta.get_field(name).column)
        assignments.append(f"{column} = {column} + %s")
    return f"UPDATE {table(model)} SET {', '.join(assignments)} WHERE {quote(meta.pk.column)} = %s"


Statement = tuple[str, list[Any]]
# What travels to the database: statements, and utility statements (a savepoint) without
# parameters, sent as they are and never prepared.
Sendable = Statement | tuple[str, None]


def update_statement(
    instance: Model, fields: Iterable[str] = (), *, add: Mapping[str, int] | None = None
) -> Statement | None:
    """The UPDATE that writes ``instance``'s ``fields`` to its row and adds ``add[name]`` to each
    column named there (``column = column + delta``, what ``F(name) + delta`` compiles to); None
    if there is nothing to write."""
    fields = tuple(fields)
    add = add or {}
    if not fields and not add:
        return None
    db = connections[DEFAULT_DB_ALIAS]
    meta = instance._meta
    params = []
    for name in fields:
        field = meta.get_field(name)
        params.append(field.get_db_prep_save(getattr(instance, field.attname), db))
    params.extend(add.values())
    params.append(meta.pk.get_db_prep_value(instance.pk, db))
    return _update_sql(type(instance), fields, tuple(add), db.vendor), params


class Change(NamedTuple):
    """A write of one row: ``fields`` as they now are in ``instance``, and each of ``add`` added
    to its column (``F(name) + delta``). ``statement()`` writes it alone, ``update_each`` with
    others of its shape."""

    instance: Model
    fields: tuple[str, ...]
    add: Mapping[str, int]

    def statement(self) -> Statement | None:
        """The UPDATE of this change alone (``update_statement``); None if it writes nothing."""
        return update_statement(self.instance, self.fields, add=self.add)


def execute_all(statements: Iterable[Sendable | None]) -> None:
    """Run writes whose results nobody reads, in order: in one round trip on PostgreSQL, which
    takes several statements in one query (the first that fails raises, as it would alone, and
    the rest do not run); one by one elsewhere. Nones are skipped. Inside ``writes_ahead()`` they
    wait and go with the connection's next statement instead."""
    statements = [statement for statement in statements if statement is not None]
    if not statements:
        return
    db = connections[DEFAULT_DB_ALIAS]
    pending = _writes_ahead.get()
    if pending is not None:
        pending.extend(statements)
        return
    _send(db, statements)


def _send(db, statements: list[Sendable]) -> None:
    names = _prepared_names(db)
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            for sql, params in statements:
                cursor.execute(sql, params)
            return
        text, values, new = _on_the_wire(names, statements)
        try:
            cursor.execute(text, values)
        except Exception:
            _forget(names, new)
            raise


# The writes waiting inside ``writes_ahead()`` (None outside it), and the claim waiting to go first
# (``claim_ahead``): request state, kept in context variables rather than on the connection object
# (each thread has its own, as it has its own connection).
_writes_ahead: ContextVar[list[Sendable] | None] = ContextVar("sql_writes_ahead", default=None)
_claim_waiting: ContextVar[Claim | None] = ContextVar("sql_claim_waiting", default=None)


class Claim(NamedTuple):
    """Statements that claim something for the transaction (a row under a unique constraint), and
    ``refused``: whether an error is theirs (the claim met what it claims already taken)."""

    statements: list[Sendable]
    refused: Callable[[BaseException], bool]


class ClaimRefused(BaseException):
    """A claim (``claim_ahead``) met what it claims already taken. The statement it travelled with
    did not run, and the transaction is aborted: the caller rolls it back and decides outside it.
    A ``BaseException``, so that no ``except Exception`` of the code whose statement it stopped
    takes it for its own error."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def claim_ahead(statements: Sequence[Sendable], *, refused: Callable[[BaseException], bool]) -> None:
    """Send ``statements`` first: inside ``writes_ahead()`` they wait, and go in front of the
    connection's next statement, in its round trip (elsewhere: now).

    An error for which ``refused`` answers True is the claim's own: ``ClaimRefused`` is raised in
    place of the statement the claim travelled with, which has not run, and the transaction can
    only be rolled back. Any other error is the statement's own, raised as it is. No savepoint: a
    claim is refused rarely (a repeated request), and one on every transaction cost PostgreSQL a
    subtransaction each time."""
    claim = Claim(list(statements), refused)
    if _writes_ahead.get() is None:
        db = connections[DEFAULT_DB_ALIAS]
        _claim_send(claim, [], lambda front: _send(db, front))
    else:
        _claim_waiting.set(claim)


def _claim_send(claim: Claim, rest: list[Sendable], send: Callable[[list[Sendable]], Any]) -> Any:
    """``send`` the claim and ``rest`` in front of what ``send`` is for (``claim_ahead``)."""
    try:
        return send([*claim.statements, *rest])
    except Exception as exc:
        if claim.refused(exc):
            raise ClaimRefused(exc) from exc
        raise


@contextmanager
def writes_ahead() -> Iterator[None]:
    """Within this block (inside a transaction, on PostgreSQL), writes given to ``execute_all``
    wait and travel in front of the connection's next statement, in the same round trip; what is
    still waiting when the block ends is sent then. Every statement on the connection goes through
    Django's cursor, whose wrapper puts them in front, so any read sees them and the order of
    the writes is kept. A failing write raises at that next statement instead of at its own, so
    the caller treats any error in the block as the whole transaction's: it is rolled back, and
    ``core.idempotency`` answers with the error (the view is never run again). A claim
    (``claim_ahead``) goes in front of them. Elsewhere (SQLite) this changes nothing."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql" or _writes_ahead.get() is not None:
        yield
        return

    def with_statement(execute, sql, params, many, context):
        def send(front: list[Sendable]):
            if not front:
                return execute(sql, params, many, context)
            if many or not isinstance(params, (list, tuple)):
                _send(db, front)  # executemany, or a statement without parameters: its own round trip
                return execute(sql, params, many, context)
            names = _prepared_names(db)
            text, values, new = _on_the_wire(names, front)
            try:
                return execute(f"{text}; {sql}", values + list(params), many, context)
            except Exception:
                _forget(names, new)
                raise

        return send

    def in_front(execute, sql, params, many, context):
        pending, claim = _writes_ahead.get(), _claim_waiting.get()
        if not pending and claim is None:
            return execute(sql, params, many, context)
        _writes_ahead.set([])
        send = with_statement(execute, sql, params, many, context)
        if claim is None:
            return send(pending or [])
        _claim_waiting.set(None)
        return _claim_send(claim, pending or [], send)

    token, claim_token = _writes_ahead.set([]), _claim_waiting.set(None)
    try:
        with db.execute_wrapper(in_front):
            yield
            if _claim_waiting.get() is not None:
                with db.cursor() as cursor:  # a block that ran no statement: its claim goes now
                    cursor.execute("SELECT 1")
            pending = _writes_ahead.get()
            if pending:
                _writes_ahead.set([])
                _send(db, pending)
    finally:
        _writes_ahead.reset(token)
        _claim_waiting.reset(claim_token)


def update(instance: Model, fields: Iterable[str] = (), *, add: Mapping[str, int] | None = None) -> None:
    """Write ``instance``'s ``fields`` to its row (see ``update_statement``)."""
    execute_all([update_statement(instance, fields, add=add)])


class Prepared:
    """A value already in the form the database takes (``update_where_statement`` passes it as is)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@cache
def _update_where_sql(model: type[Model], fields: tuple[str, ...], keys: tuple[str, ...], vendor: str) -> str:
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    return f"UPDATE {table(model)} SET {assignments} WHERE {where(model, table(model), dict.fromkeys(keys))[0]}"


def update_where_statement(model: type[Model], values: Mapping[str, Any], lookup: Mapping[str, Any]) -> Statement:
    """The UPDATE that sets ``values`` (field → value; a ``Prepared`` one goes as it is) on the rows
    of ``model`` matching the exact ``lookup``: ``filter(**lookup).update(**values)``."""
    db = connections[DEFAULT_DB_ALIAS]
    params = [
        value.value if isinstance(value, Prepared) else model._meta.get_field(name).get_db_prep_save(value, db)
        for name, value in values.items()
    ]
    params += [param(model, name, value) for name, value in lookup.items()]
    return _update_where_sql(model, tuple(values), tuple(lookup), db.vendor), params


@cache
def _lock_sql(model: type[Model], keys: tuple[str, ...], vendor: str) -> str:
    return f"SELECT 1 FROM {table(model)} WHERE {where(model, table(model), dict.fromkeys(keys))[0]} FOR NO KEY UPDATE"


def lock_statement(model: type[Model], lookup: Mapping[str, Any]) -> Statement | None:
    """The statement that locks the rows of ``model`` matching the exact ``lookup``, whose result
    nobody reads (``select_for_update(no_key=True)``: it does not block rows that only point at
    them). Given to ``execute_all``, inside ``writes_ahead()`` it travels with the next read, which
    PostgreSQL runs after it, with its own snapshot: the read sees what the lock's last holder
    committed. None where the database locks no rows (SQLite)."""
    db = connections[DEFAULT_DB_ALIAS]
    if not db.features.has_select_for_no_key_update:
        return None
    params = [param(model, name, value) for name, value in lookup.items()]
    return _lock_sql(model, tuple(lookup), db.vendor), params


@cache
def _insert_sql(model: type[Model], auto_pk: bool, vendor: str, returning: bool = True, skip: bool = False) -> tuple:
    meta = model._meta
    fields = tuple(field for field in meta.local_concrete_fields if not (auto_pk and field is meta.auto_field))
    sql = (
        f"INSERT INTO {table(model)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if skip:
        sql += " ON CONFLICT DO NOTHING"
    if auto_pk and returning and connection.features.can_return_columns_from_insert:
        sql += f" RETURNING {quote(meta.pk.column)}"
    return fields, sql


def insert_statement(instance: Model, *, returning: bool = False, skip_conflicts: bool = False) -> Statement:
    """The INSERT of ``instance`` with every concrete field (an auto primary key left to the
    database; with ``returning`` it comes back). With ``skip_conflicts`` a row that would break a
    unique constraint is not written (``ON CONFLICT DO NOTHING``: PostgreSQL and SQLite)."""
    db = connections[DEFAULT_DB_ALIAS]
    meta = instance._meta
    auto_pk = meta.auto_field is not None and instance.pk is None
    fields, sql = _insert_sql(type(instance), auto_pk, db.vendor, returning, skip_conflicts)
    return sql, [field.get_db_prep_save(field.pre_save(instance, True), db) for field in fields]


def insert_new(instance: Model) -> bool:
    """INSERT ``instance`` unless a row with one of its unique values exists (one statement);
    whether it was written. A written instance with an auto primary key gets it, and is saved
    (``_state.adding`` false), as after ``create()``."""
    db = connections[DEFAULT_DB_ALIAS]
    auto_pk = instance._meta.auto_field is not None and instance.pk is None
    with db.cursor() as cursor:
        cursor.execute(*insert_statement(instance, returning=True, skip_conflicts=True))
        if not auto_pk or not db.features.can_return_columns_from_insert:
            written = cursor.rowcount == 1
        else:
            row = cursor.fetchone()
            written = row is not None
            if written:
                instance.pk = row[0]
    if written:
        instance._state.adding = False
        instance._state.db = db.alias
    return written


def insert(*instances: Model) -> None:
    """INSERT each of ``instances`` with every concrete field, in order. An auto primary key
    comes back from the database (such an instance is inserted alone); the others go in one round
    trip on PostgreSQL (``execute_all``). Raises ``IntegrityError`` as ``create()`` would."""
    db = connections[DEFAULT_DB_ALIAS]
    statements = []
    for instance in instances:
        meta = instance._meta
        auto_pk = meta.auto_field is not None and instance.pk is None
        sql, params = insert_statement(instance, returning=auto_pk)
        if auto_pk:
            execute_all(statements)
            statements = []
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                instance.pk = cursor.fetchone()[0] if db.features.can_return_columns_from_insert else cursor.lastrowid
        else:
            statements.append((sql, params))
    execute_all(statements)
    for instance in instances:
        instance._state.adding = False
        instance._state.db = db.alias


# --- a batch of rows in one statement -------------------------------------------------------------


def rows_insert(
    *,
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    ignore_conflicts: bool = False,
    prepared: bool = False,
) -> None:
    """INSERT one row per item of ``rows`` (values of ``fields``, in order), every row with the
    same value of each field of ``constants``; any other field takes its default, as in
    ``bulk_create`` (a callable default is called for each row; ``auto_now`` is not applied). With
    ``ignore_conflicts`` a row that would break a unique constraint is skipped, as
    ``bulk_create(ignore_conflicts=True)`` skips it.

    ``prepared``: the rows' values are already what the database takes for their columns (ints,
    strings, None, aware datetimes, a UUID as its text), so the fields' conversions are skipped
    for them (not for ``constants``): for a hundred thousand rows the conversions cost more than
    the INSERTs."""
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
    columns = ", ".join(quote(field.column) for field in [*varying, *(field for field, _ in fixed)])
    suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""

    def prep(row: Sequence[Any]) -> Sequence[Any]:
        if prepared:
            return row
        return [field.get_db_prep_save(value, connection) for field, value in zip(varying, row, strict=True)]

    if connection.vendor == "postgresql" and varying:
        _rows_insert_arrays(meta, varying, fixed, fixed_params, (prep(row) for row in rows), columns, suffix)
        return
    count_columns = len(varying) + len(fixed)
    row_sql = f"({', '.join(['%s'] * count_columns)})"
    per_statement = rows_per_statement(count_columns)
    params: list[Any] = []
    count = 0
    with connection.cursor() as cursor:
        for row in rows:
            params += prep(row)
            params += fixed_params
            count += 1
            if count == per_statement:
                cursor.execute(
                    f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * count)}{suffix}",
                    params,
                )
                params, count = [], 0
        if count:
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row_sql] * count)}{suffix}", params
            )


ARRAY_ROWS = 10_000  # rows per statement of ``_rows_insert_arrays``


def _array_element(value: Any) -> str | None:
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "t" if value else "f"
    if type(value) is int:
        return str(value)
    if isinstance(value, str | uuid.UUID | datetime | date):
        text = str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return None


def array_param(values: Sequence[Any]) -> Any:
    """``values`` as one parameter for ``%s::type[]`` on PostgreSQL: the array's text form
    (``{1,2,NULL}``, ``{"a","b \\"c\\""}``) when every value is an int, a string, a uuid, a date or
    an aware datetime (or None, or a bool), which the server reads with the type's own input
    function; else the list, which psycopg2 sends as ``ARRAY[...]``, a constant per value for
    PostgreSQL to parse and analyse: for arrays of thousands the text form costs the client and
    the server a fraction of it."""
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    parts = []
    for value in values:
        part = _array_element(value)
        if part is None:
            return list(values)
        parts.append(part)
    return "{" + ",".join(parts) + "}"


def _rows_insert_arrays(
    meta: Any,
    varying: Sequence[Field],
    fixed: Sequence[tuple[Field, Any]],
    fixed_params: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    columns: str,
    suffix: str,
) -> None:
    """``rows_insert`` on PostgreSQL: each varying column's values of up to ``ARRAY_ROWS`` rows as
    one array parameter (``unnest``), each constant once. PostgreSQL parses a multi-row VALUES a
    row and a value at a time, which for a chunk of thousands of rows costs more than writing
    them; three arrays parse in a fraction of it (issue 20: the settlement of 100,000 merchants)."""
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in varying)
    constants = "".join(f", %s::{field.db_type(connection)}" for field, _ in fixed)
    statement = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT v.*{constants} FROM unnest({arrays}) AS v{suffix}"
    )
    with connection.cursor() as cursor:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == ARRAY_ROWS:
                cursor.execute(statement, [*fixed_params, *map(array_param, zip(*batch, strict=True))])
                batch = []
        if batch:
            cursor.execute(statement, [*fixed_params, *map(array_param, zip(*batch, strict=True))])


def rows_update_each(
    *,
    model: type[Model],
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
    assignments = [f"{quote(target.column)} = CASE {quote(pk.column)} {cases} END"]
    params: list[Any] = [
        item
        for key, value in zip(keys, values.values(), strict=True)
        for item in (key, target.get_db_prep_save(value, connection))
    ]
    for name, value in common.items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name, step in (increments or {}).items():
        column_name = quote(meta.get_field(name).column)
        assignments.append(f"{column_name} = {column_name} + %s")
        params.append(int(step))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {quote(pk.column)} IN ({', '.join(['%s'] * len(keys))})",
            [*params, *keys],
        )
        return cursor.rowcount


def update_each(changes: Iterable[Change]) -> None:
    """Write many ``Change``s of rows of one model, one UPDATE per shape (the same fields and
    added columns) and per ``rows_per_statement``: each column takes its row's value
    (``CASE pk WHEN ... THEN ... END``), each added one ``column + its row's delta``. What each
    change's own ``statement()`` would write, in one statement for the lot."""
    shapes: dict[tuple, list[Change]] = {}
    for change in changes:
        if change.fields or change.add:
            key = (type(change.instance), tuple(change.fields), tuple(change.add))
            shapes.setdefault(key, []).append(change)
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        for (model, fields, added), group in shapes.items():
            meta = model._meta
            pk = quote(meta.pk.column)
            per_statement = rows_per_statement(3 * (len(fields) + len(added)) + 1)
            for first in range(0, len(group), per_statement):
                chunk = group[first : first + per_statement]
                keys = [meta.pk.get_db_prep_value(change.instance.pk, db) for change in chunk]
                cases = " ".join(["WHEN %s THEN %s"] * len(chunk))
                assignments, params = [], []
                for name in fields:
                    field = meta.get_field(name)
                    assignments.append(f"{quote(field.column)} = CASE {pk} {cases} END")
                    for key, change in zip(keys, chunk, strict=True):
                        params += [key, field.get_db_prep_save(getattr(change.instance, field.attname), db)]
                for name in added:
                    column = quote(meta.get_field(name).column)
                    assignments.append(f"{column} = {column} + CASE {pk} {cases} END")
                    for key, change in zip(keys, chunk, strict=True):
                        params += [key, int(change.add[name])]
                matching = f"{pk} IN ({', '.join(['%s'] * len(keys))})"
                cursor.execute(f"UPDATE {table(model)} SET {', '.join(assignments)} WHERE {matching}", [*params, *keys])


def database_ping() -> None:
    """Ask the database for one row (the health check); raises when it cannot answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def snapshot_read_only() -> None:
    """Make the transaction just begun one REPEATABLE READ, read-only snapshot (PostgreSQL; other
    databases read under their own isolation)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def read_only_bounded(*, milliseconds: int) -> None:
    """Make the transaction just begun read-only, each of its statements cancelled after
    ``milliseconds`` (PostgreSQL; elsewhere nothing changes): for reads that must stay cheap, such
    as a metrics scrape."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute("SET LOCAL statement_timeout = %s", [int(milliseconds)])


def unique_violated(error: BaseException, model: type[Model]) -> bool:
    """Whether ``error`` is a write meeting a row of ``model`` that holds one of its unique values."""
    if not isinstance(error, IntegrityError):
        return False
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None:  # PostgreSQL: unique_violation on the table
        return getattr(error.__cause__, "pgcode", None) == "23505" and diag.table_name == model._meta.db_table
    return f"UNIQUE constraint failed: {model._meta.db_table}." in str(error)  # SQLite


def savepoint_statement(action: str, name: str) -> tuple[str, None]:
    """The statement that does ``create``, ``release`` or ``rollback`` (to) the savepoint ``name``."""
    ops = connection.ops
    text = {
        "create": ops.savepoint_create_sql,
        "release": ops.savepoint_commit_sql,
        "rollback": ops.savepoint_rollback_sql,
    }[action](name)
    return text, None


def savepoint(action: str, name: str) -> None:
    """``create``, ``release`` or ``rollback`` (to) the savepoint ``name``, as a statement of its own:
    writes waiting in ``writes_ahead`` travel in front of it, in the same round trip."""
    text, _ = savepoint_statement(action, name)
    with connection.cursor() as cursor:
        cursor.execute(text, [])


@contextmanager
def commits_unsynced() -> Iterator[None]:
    """On PostgreSQL, commit without waiting for the disk, on this connection, inside the block
    (for throwaway databases only: a crash may lose the last commits). Elsewhere nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")
