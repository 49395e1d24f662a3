"""The schema the code expects, derived at run time from the migrations, and the live one, both
read from PostgreSQL's catalog in the same terms so the doctor can compare them.

The expectation is never a hand-kept list: inside one transaction on the live database a scratch
schema is created, every migration of `migrations/` runs there (peewee-migrate's Router, with
`search_path` pointing only at the scratch schema, so unqualified names create and find the
scratch objects and never the live ones), the catalog is read, and the transaction is rolled
back: DDL is transactional in PostgreSQL, so nothing of it remains. peewee-migrate opens a
transaction per migration; inside the outer one Peewee joins them to it, so none commits.

Definitions are read with `search_path` set to the schema being read, so PostgreSQL prints the
names of that schema unqualified and the two readings compare as text.
"""
import logging
import uuid

from peewee_migrate import Router
from psycopg2 import sql as pgsql

from ..config import MIGRATIONS_DIR

BOOKKEEPING = {"migratehistory"}  # peewee-migrate's own table, not the service's schema
_quiet = logging.getLogger("service.ops.doctor.migrations")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False

# Each kind: the query (one parameter: the schema's oid), rows of (table, name, definition...).
_QUERIES = {
    "tables": """
        SELECT c.relname, c.relname, c.relkind FROM pg_class c
         WHERE c.relnamespace = %s AND c.relkind IN ('r', 'p')""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE c.relnamespace = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped""",
    "types": """
        SELECT '', t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod),
               ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder),
               ARRAY(SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY 1)
          FROM pg_type t WHERE t.typnamespace = %s AND t.typtype IN ('e', 'd')""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
          FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = %s""",
    "indexes": """
        SELECT c.relname, i.relname, replace(pg_get_indexdef(i.oid), ' ON ' || quote_ident(n.nspname) || '.', ' ON '),
               x.indisvalid
          FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relnamespace = %s""",
    "triggers": """
        SELECT c.relname, t.tgname, replace(pg_get_triggerdef(t.oid), ' ON ' || quote_ident(n.nspname) || '.', ' ON '),
               t.tgenabled
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relnamespace = %s AND NOT t.tgisinternal""",
    "functions": """
        SELECT '', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               format_type(p.prorettype, NULL), l.lanname, p.provolatile, p.prosecdef, p.proconfig, p.prosrc
          FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.pronamespace = %s""",
    "policies": """
        SELECT c.relname, p.polname, p.polcmd, p.polpermissive,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
                       FROM unnest(p.polroles) r ORDER BY 1),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
          FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = %s""",
    "row_level_security": """
        SELECT c.relname, c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
         WHERE c.relnamespace = %s AND c.relkind IN ('r', 'p')""",
}
KINDS = tuple(_QUERIES)


class Catalog(dict):
    """{kind: {(table, name): definition tuple}} of one schema."""


def read(cursor, schema):
    """The catalog of `schema`, its names printed as seen from inside it."""
    cursor.execute("SELECT set_config('search_path', quote_ident(%s), true)", (schema,))
    cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", (schema,))
    found = cursor.fetchone()
    if found is None:
        raise LookupError(f"schema {schema!r} does not exist")
    catalog = Catalog()
    for kind, query in _QUERIES.items():
        cursor.execute(query, (found[0],))
        catalog[kind] = {(row[0], row[1]): tuple(row[2:]) for row in cursor.fetchall()
                         if row[0] not in BOOKKEEPING}
    return catalog


class _Rollback(Exception):
    """Raised to leave the scratch transaction: everything in it is undone."""


def expected_and_live(db, live_schema):
    """(expected, live) catalogs: `expected` from running every migration in a scratch schema
    of a transaction that is rolled back, `live` read in the same transaction."""
    scratch = f"doctor_scratch_{uuid.uuid4().hex[:12]}"
    result = {}
    try:
        with db.atomic():
            cursor = db.cursor()
            # A generous bound for the migrations; and never wait long for a lock a live
            # request holds (the scratch objects are new, so none should be needed).
            cursor.execute("SELECT set_config('statement_timeout', '60s', true), "
                           "set_config('lock_timeout', '5s', true)")
            cursor.execute(pgsql.SQL("CREATE SCHEMA {}").format(pgsql.Identifier(scratch)))
            cursor.execute("SELECT set_config('search_path', quote_ident(%s), true)", (scratch,))
            Router(db, migrate_dir=MIGRATIONS_DIR, ignore=["basemodel"], logger=_quiet).run()
            result["expected"] = read(cursor, scratch)
            result["live"] = read(cursor, live_schema)
            raise _Rollback
    except _Rollback:
        pass
    return result["expected"], result["live"]


def differences(expected, live, kind):
    """(missing, unexpected, changed, on_missing_tables) entries of `kind`: names, each 'name on
    table'. What belongs to a missing table is only counted: the table is named already."""
    gone = {table for table, _ in expected["tables"]} - {table for table, _ in live["tables"]}
    if kind == "tables":
        gone = set()
    want = {key: value for key, value in expected[kind].items() if key[0] not in gone}
    have = live[kind]

    def label(key):
        table, name = key
        return name if not table or table == name else f"{name} on {table}"

    missing = sorted(label(key) for key in want.keys() - have.keys())
    unexpected = sorted(label(key) for key in have.keys() - want.keys())
    changed = sorted(label(key) for key in want.keys() & have.keys() if want[key] != have[key])
    return missing, unexpected, changed, len(expected[kind]) - len(want)
