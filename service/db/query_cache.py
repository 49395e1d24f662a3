"""Hot queries compiled once and reused: Peewee writes the SQL, this remembers it.

Building and compiling a Peewee query costs more CPU than the database round trip it makes
(for the task list, about 0.3 ms against 0.2 ms). So the task store describes each hot query as
a module-level function `build(shape, **values)`: `shape` (a hashable tuple) holds whatever
changes the SQL text, `values` whatever only fills its parameters. `rows(build, shape,
**values)` compiles the query once per (build, shape, kind of each value) with stand-in values,
notes where each stand-in lands among the parameters, and from then on only puts the request's
values in their places. The statement still goes through `database.execute_sql`, so it carries
the request's row-level-security scope and is counted like any other.

None and booleans change the SQL text (they pick branches and cannot be told apart as
stand-ins), so they count as part of the kind; other values only by type. A value `build`
transforms (so its stand-in never reaches the parameters) is an error at the first compile,
never a wrong query; a value of a type with no stand-in is run uncompiled.
"""
import functools
from datetime import UTC, datetime, timedelta

from .pool import database

_STAND_IN_INT = -7_391_274_658_000_000  # far from any id, limit, offset or version
_STAND_IN_DATE = datetime(1, 1, 1, tzinfo=UTC)


def _stand_in(number, kind):
    if kind is int:
        return _STAND_IN_INT - number
    if kind is str:
        return f"\x00stand-in {number}\x00"
    if kind is datetime:
        return _STAND_IN_DATE + timedelta(microseconds=number + 1)
    if kind is list:  # an array parameter (tag names): found again by identity
        return [f"\x00stand-in {number}\x00"]
    return None


def _kind(value):
    return value if value is None or isinstance(value, bool) else type(value)


def rows(build, shape, **values):
    """The rows (tuples) of `build(shape, **values)`, its SQL compiled once per kind."""
    return database.execute_sql(*statement(build, shape, **values), prepare=True).fetchall()


def statement(build, shape, **values):
    """(sql, params) of `build(shape, **values)`, compiled once per kind: for a statement sent
    within a message of several (recurring.py)."""
    names = tuple(sorted(values))
    compiled = _compile(build, shape, names, tuple(_kind(values[name]) for name in names))
    if compiled is None:  # a value that cannot stand in: run this one uncompiled
        return build(shape, **values).sql()
    sql, plan = compiled
    return sql, [values[name] if name is not None else constant for name, constant in plan]


@functools.lru_cache(maxsize=512)
def _compile(build, shape, names, kinds):
    """(sql, plan) for this kind of call, or None when a value has no stand-in. The plan lists,
    per parameter, the value's name (or None and the constant Peewee put there)."""
    stand_ins, slots = {}, {}
    for number, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        if kind is None or isinstance(kind, bool):
            stand_ins[name] = kind
            continue
        stand_in = _stand_in(number, kind)
        if stand_in is None:
            return None
        stand_ins[name] = stand_in
        slots[id(stand_in)] = name
    sql, params = build(shape, **stand_ins).sql()
    # Peewee passes each value through to the parameters as the same object (a string, a
    # number, a date or a list): a stand-in is recognised by identity, never confused with a
    # constant of equal value.
    plan = []
    for param in params:
        name = slots.get(id(param))
        plan.append((name, None if name is not None else param))
    missing = set(slots.values()) - {name for name, _ in plan}
    if missing:
        raise RuntimeError(f"compiled query: {sorted(missing)} did not reach the parameters "
                           "unchanged; pass the value the SQL needs")
    return sql, tuple(plan)


def compiles():
    """How many statements have been compiled in this process (for tests)."""
    return _compile.cache_info().misses
