"""docs/database-queries.md: every ```sql block runs, in order, on a freshly migrated database as
the service's ordinary role, and answers what the page says (`-- => value` under a statement:
its first value; `-- => ERROR: message`: the error it raises). Run twice: statement by statement
through psycopg2, which checks each answer, and whole through the real `psql`, as a reader would.

Generic over the page: any block added to it is run and checked the same way."""
import re
import subprocess
import warnings

import psycopg2
import pytest

from service.db import embedded
from tests.conftest import PROJECT, create_database, drop_database, make_config, migrate, role_url

GUIDE = PROJECT / "docs" / "database-queries.md"
BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)
ANSWER = "-- => "


class Statement:
    """One statement of the guide, with what the guide says it answers (None: not said)."""

    def __init__(self, block, sql):
        self.block, self.sql, self.answer = block, sql, None

    def __repr__(self):
        return f"block {self.block}: {self.sql}"


def statements(text):
    """The guide's statements in order. A statement ends with a line ending in `;`."""
    found = []
    for number, block in enumerate(BLOCK.findall(text), start=1):
        pending = []
        for line in block.splitlines():
            if line.startswith(ANSWER):
                assert found and not pending and found[-1].answer is None, f"block {number}: stray {line!r}"
                found[-1].answer = line[len(ANSWER):]
            elif line.strip().startswith("--") or not line.strip():
                continue
            else:
                pending.append(line)
                if line.rstrip().endswith(";"):
                    found.append(Statement(number, "\n".join(pending)))
                    pending = []
        assert not pending, f"block {number} ends inside a statement: {pending}"
    return found


GUIDE_STATEMENTS = statements(GUIDE.read_text())


@pytest.fixture
def guide_db(admin_url):
    """A freshly migrated database of the test's own, and the ordinary role's URL to it."""
    name = create_database(admin_url, prefix="todo_guide")
    url = role_url(admin_url, name)
    _router, db = migrate(url, make_config())
    db.close_all()
    yield url
    drop_database(admin_url, name)


def test_the_guide_has_blocks_and_says_what_they_answer():
    assert len(BLOCK.findall(GUIDE.read_text())) >= 10
    answered = [s for s in GUIDE_STATEMENTS if s.answer is not None]
    assert len(answered) >= 20
    assert any(s.answer.startswith("ERROR: ") for s in answered)
    for sql in ("set_config('app.user_id'", "INSERT INTO users", "INSERT INTO tasks", "DELETE FROM users",
                "ORDER BY title", "ORDER BY priority_order", "ORDER BY due_date", "ORDER BY updated_at"):
        assert any(sql in s.sql for s in GUIDE_STATEMENTS), sql


def test_every_statement_answers_what_the_guide_says(guide_db):
    conn = psycopg2.connect(guide_db)
    conn.autocommit = True  # as psql: BEGIN and COMMIT are the guide's own
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False,), "the guide must run under row-level security"
            for statement in GUIDE_STATEMENTS:
                expected = statement.answer
                try:
                    cur.execute(statement.sql)
                except psycopg2.Error as error:
                    assert expected == f"ERROR: {error.diag.message_primary}", statement
                    continue
                assert expected is None or not expected.startswith("ERROR: "), f"no error from {statement}"
                if expected is not None:
                    row = cur.fetchone() if cur.description else None
                    assert row is not None, f"no row from {statement}"
                    got = row[0] if not isinstance(row[0], bool) else str(row[0]).lower()
                    assert str(got) == expected, statement
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        conn.close()


def test_the_whole_guide_runs_in_psql_with_exactly_the_errors_it_shows(guide_db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        psql = embedded.bin_dir() / "psql"
    script = "\n".join(BLOCK.findall(GUIDE.read_text()))
    result = subprocess.run([str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", guide_db],
                            input=script, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    errors = [line.split("ERROR:", 1)[1].strip() for line in result.stderr.splitlines() if "ERROR:" in line]
    expected = [s.answer[len("ERROR: "):] for s in GUIDE_STATEMENTS if s.answer and s.answer.startswith("ERROR: ")]
    assert errors == expected
    for statement in GUIDE_STATEMENTS:  # every answered value is among psql's output
        if statement.answer and not statement.answer.startswith("ERROR: "):
            assert re.search(rf"^ *{re.escape(statement.answer)}$", result.stdout, re.MULTILINE), statement
