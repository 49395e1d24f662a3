"""Hot queries compiled once and reused: Peewee writes the SQL, this remembers it.

Building and compiling a Peewee query costs more CPU than the database round trip it makes
(for the task list, about 0.3 ms against 0.2 ms). So the hot routes describe each query as a
function of its values, `build(**values)`, and `CompiledQueries.rows(shape, build, **values)`
compiles it once per *shape* with stand-in values, notes where each stand-in lands among the
parameters, and from then on only puts the request's values in their places. The SQL text is
still Peewee's; the statement still goes through `database.execute_sql`, so it carries the
request's row-level-security scope and is counted like any other.

The shape is the caller's key plus, for every value, what may change the SQL text: None and
booleans are part of the shape (they pick branches and cannot be told apart as stand-ins),
other values only by type. `build` must depend on nothing but its arguments and constants.
A value `build` transforms (so its stand-in never reaches the parameters) is an error at the
first compile, never a wrong query; a value of another type is run uncompiled.
"""
from datetime import UTC, datetime, timedelta

from peewee import Alias, Field

from .db import database

_STAND_IN_INT = -7_391_274_658_000_000  # far from any id, limit, offset or version
_STAND_IN_DATE = datetime(1, 1, 1, tzinfo=UTC)


def _stand_in(number, value):
    if isinstance(value, int):
        return _STAND_IN_INT - number
    if isinstance(value, str):
        return f"\x00stand-in {number}\x00"
    if isinstance(value, datetime) and value.tzinfo is not None:
        return _STAND_IN_DATE + timedelta(microseconds=number + 1)
    return None


def _is_shape(value):
    return value is None or isinstance(value, bool)


def _names(query):
    """The keys of a result row, as Peewee's .dicts() names them (field name or alias)."""
    names = []
    for node in query._returning:  # noqa: SLF001 - the selected/returned columns, in order
        if isinstance(node, Field):
            names.append(node.name)
        elif isinstance(node, Alias) or getattr(node, "_alias", None):  # alias, aliased subquery
            names.append(node._alias)  # noqa: SLF001
        else:
            raise TypeError(f"cannot name the column {node!r}: select fields or aliases")
    return tuple(names)


class CompiledQueries:
    """A bounded cache of compiled statements, by shape."""

    def __init__(self, size=256):
        self._entries = {}
        self._size = size
        self.compiles = 0

    def rows(self, shape, build, tuples=False, **values):
        """The rows of `build(**values)` as dicts (as tuples with `tuples=True`, in the order of
        its columns), compiling its SQL only once per shape."""
        key = (shape, *((name, value if _is_shape(value) else type(value))
                        for name, value in sorted(values.items())))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._compile(build, values)
            if entry is None:  # a value that cannot stand in: run this one uncompiled
                query = build(**values)
                sql, params = query.sql()
                return self._run(sql, params, None if tuples else _names(query))
            if len(self._entries) < self._size:
                self._entries[key] = entry
        sql, plan, names = entry
        return self._run(sql, [values[name] if name is not None else constant for name, constant in plan],
                         None if tuples else names)

    def _compile(self, build, values):
        stand_ins, slots = {}, {}
        for number, (name, value) in enumerate(sorted(values.items())):
            if _is_shape(value):
                stand_ins[name] = value
                continue
            stand_in = _stand_in(number, value)
            if stand_in is None:
                return None
            stand_ins[name] = stand_in
            slots[stand_in] = name
        query = build(**stand_ins)
        sql, params = query.sql()
        plan = []
        for param in params:
            try:
                name = slots.get(param)
            except TypeError:  # unhashable constant (e.g. a list)
                name = None
            plan.append((name, None if name is not None else param))
        missing = set(slots.values()) - {name for name, _ in plan}
        if missing:
            raise RuntimeError(f"compiled query: {sorted(missing)} did not reach the parameters "
                               "unchanged; pass the value the SQL needs")
        self.compiles += 1
        return sql, plan, _names(query)

    @staticmethod
    def _run(sql, params, names):
        rows = database.execute_sql(sql, params).fetchall()
        return rows if names is None else [dict(zip(names, row, strict=True)) for row in rows]


# The service's one cache (per process; workers fork after the app is built, before any query).
queries = CompiledQueries()
