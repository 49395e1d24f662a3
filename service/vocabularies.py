"""Ordered vocabularies: the values a task's `priority` (and workflow `status`) may take.

Each is configured once (TASK_PRIORITIES / TASK_STATUSES, lowest or first value first) and
matched leniently: case is folded and `-`, `_` and space mean the same, so `IN PROGRESS`,
`in-progress` and `In_Progress` all name `in_progress`; what is stored and shown is the
configured spelling.
"""
import re
from dataclasses import dataclass

from .fields import FieldError

VALUE_RE = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
MIN_VALUES, MAX_VALUES = 2, 10


def fold(text):
    """The key a spelling is matched by: lower case, with `-` and space read as `_`."""
    return text.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass(frozen=True, eq=False)  # hashed as itself: it keys per-request caches (list_params)
class Vocabulary:
    """An ordered list of values (lowest or first first) and their folded spellings."""

    name: str
    values: tuple

    def __post_init__(self):
        object.__setattr__(self, "_by_key", {fold(value): value for value in self.values})

    def parse(self, value):
        """The configured spelling of `value`, or FieldError."""
        if isinstance(value, str):
            found = self._by_key.get(fold(value))
            if found is not None:
                return found
        raise FieldError("must be one of " + ", ".join(self.values))

    def lookup(self, value):
        """The configured spelling of `value`, or None."""
        return self._by_key.get(fold(value)) if isinstance(value, str) else None

    def rank(self, value):
        """The position of a configured value (0 = lowest/first)."""
        return self.values.index(value)

    @property
    def default(self):
        """What a new task gets: a priority `medium` when the vocabulary has it, else its lowest
        value; a status the first state."""
        return self._by_key.get("medium", self.values[0]) if self.name == "priority" else self.values[0]


def parse_vocabulary(name, raw, default, reserved=()):
    """The vocabulary configured as the comma-separated `raw` (empty: `default`), or ValueError
    with one line saying what is wrong."""
    if not raw or not raw.strip():
        return Vocabulary(name, tuple(default))
    values = tuple(part.strip() for part in raw.split(","))
    if not MIN_VALUES <= len(values) <= MAX_VALUES:
        raise ValueError(f"must list {MIN_VALUES}..{MAX_VALUES} values, got {len(values)}")
    keys = set()
    for value in values:
        if not VALUE_RE.match(value):
            raise ValueError(f"{value!r} is not 1..30 letters, digits, '_' or '-'")
        key = fold(value)
        if key in keys:
            raise ValueError(f"{value!r} appears twice (case, '-' and '_' do not tell values apart)")
        if key in reserved:
            raise ValueError(f"{value!r} is a filter word and cannot be a value")
        keys.add(key)
    return Vocabulary(name, values)


@dataclass(frozen=True, eq=False)  # hashed as itself: it keys per-request caches (list_params, docs)
class Vocabularies:
    """The configured vocabularies, by the field name that uses them (`vocabularies["priority"]`).
    Statuses: the first is where new tasks start, the last means done."""

    priority: Vocabulary
    status: Vocabulary

    def __getitem__(self, name):
        return getattr(self, name)

    @property
    def done(self):
        """The last state: a task is completed exactly when it is there."""
        return self.status.values[-1]

    @property
    def first_state(self):
        """Where new (and un-completed) tasks are."""
        return self.status.values[0]


DEFAULT_PRIORITIES = ("low", "medium", "high")
DEFAULT_STATUSES = ("todo", "in_progress", "done")
STATUS_FILTER_WORDS = ("all", "pending", "completed")  # list filters, never states
# Each vocabulary's lookup table (migrations/005_organising.py) and the tasks column using it.
TABLES = {"priority": "task_priorities", "status": "task_statuses"}
DEFAULT_VOCABULARIES = Vocabularies(priority=Vocabulary("priority", DEFAULT_PRIORITIES),
                                    status=Vocabulary("status", DEFAULT_STATUSES))
