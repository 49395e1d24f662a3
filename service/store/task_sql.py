"""The SQL of the task store, as Peewee queries built from a shape and values (see
db/query_cache.py): the task's JSON, the list's filters, its page and counts, its order.

Every builder starts from the owner condition (`user_id = %s`); row-level security is the
second wall behind it.
"""
import operator
from functools import reduce

from peewee import SQL, Tuple, Value, fn

from .. import fields
from ..db.models import Tag, Task, TaskTag, TaskTally

ROW = Task.alias("task")  # reads use `tasks AS task`; writes return from `tasks`
ORDERS = {"created": ROW.created_at, "updated": ROW.updated_at, "title": ROW.title,
          "due_date": ROW.due_date, "priority": ROW.priority_order}


def task_json(table, new=False):
    """SQL for the JSON text of the task row `table` (`task` or `tasks`): its fields in the order
    of service/fields.py, computed ones (tags, is_completed) by their own SQL. `new`: a task just
    inserted, which has no tags yet (a create with tags reads its task back: tagging.py)."""
    def member(field):
        if new and field.type == "names":
            return f"'[]'::json AS {field.name}"
        return f"{field.sql.format(t=table)} AS {field.name}" if field.sql else f"{table}.{field.name}"

    columns = ", ".join(member(field) for field in fields.TASK if field.in_json)
    return SQL(f"(SELECT row_to_json(task_json) FROM (SELECT {columns}) task_json)::text")  # noqa: S608 - names from fields.py


ROW_JSON = task_json("task")
WRITTEN_JSON = task_json("tasks")
NEW_JSON = task_json("tasks", new=True)


def array(values):
    """`values` as one SQL array parameter (Peewee would otherwise spread a list into a tuple)."""
    return Value(values, unpack=False)


# Filters ---------------------------------------------------------------------------------------
def filter_shape(params):
    """What of `params` (list_params.ListParams) changes the filters' SQL text."""
    return (params.completed, params.state is not None, params.priority is not None,
            params.category is not None, len(params.tags), params.search is not None,
            params.due_before and params.due_before[0], params.due_after and params.due_after[0],
            params.overdue, params.has_due_date)


def filter_values(user, params, done):
    """The filters' values, by the names the builders take."""
    pattern = None
    if params.search is not None:
        pattern = "%" + params.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # The last state: the counters tell completed tasks by it (only then is it a value of the SQL).
    done = done if tallied(filter_shape(params)) else None
    return {"user": user, "done": done, "state": params.state, "priority": params.priority,
            "category": params.category,
            "tags": list(params.tags) if params.tags else None, "pattern": pattern,
            "due_before": params.due_before and params.due_before[1],
            "due_after": params.due_after and params.due_after[1]}


def day_start(day, user):
    """SQL for the start of `day` (an ISO date) in `user`'s time zone."""
    return SQL("(SELECT (%s)::date::timestamp AT TIME ZONE timezone FROM users WHERE id = %s)", [day, user])


def filtered(query, model, shape, user, state, priority, category, tags, pattern, due_before, due_after, done=None,
             status=True):
    """`query` over `model` narrowed to `user` and the filters; without the status filter when
    `status` is false (the list's completed and pending counts ignore it)."""
    completed, by_state, by_priority, by_category, tag_count, by_search = shape[:6]
    before_kind, after_kind, overdue, has_due_date = shape[6:]
    query = query.where(model.user == user)
    if status and completed is not None:
        query = query.where(model.completed == completed)
    if status and by_state:
        query = query.where(model.status == state)
    if by_priority:
        query = query.where(model.priority == priority)
    # Case is folded by the database (lower()) on both sides, as the tag names' unique index does.
    if by_category:
        query = query.where(model.category_key == fn.lower(category))
    if tag_count:
        wanted = fn.ARRAY(SQL("SELECT lower(wanted) FROM unnest(%s::text[]) AS wanted", [tags]))
        carrying = (TaskTag.select(TaskTag.task).join(Tag, on=(Tag.id == TaskTag.tag))
                    .where(Tag.user == user, fn.lower(Tag.name) == fn.ANY(wanted))
                    .group_by(TaskTag.task).having(fn.COUNT(SQL("*")) == tag_count))
        query = query.where(model.id.in_(carrying))
    if by_search:
        query = query.where(model.title.ilike(pattern) | model.description.ilike(pattern))
    if before_kind:  # exclusive
        query = query.where(model.due_date < (day_start(due_before, user) if before_kind == "date" else due_before))
    if after_kind:  # inclusive
        query = query.where(model.due_date >= (day_start(due_after, user) if after_kind == "date" else due_after))
    if overdue is not None:
        late = (model.due_date < fn.now()) & (model.completed == False)  # noqa: E712 - SQL, not Python
        query = query.where(late if overdue else ~late | model.due_date.is_null())
    if has_due_date is not None:
        query = query.where(model.due_date.is_null(not has_due_date))
    return query


def tallied(shape):
    """True when the filters are at most status, priority and category: then the counts come from
    the counters the database keeps (task_tallies), whatever the number of tasks."""
    tag_count, by_search, before_kind, after_kind, overdue, has_due_date = shape[4:]
    return not (tag_count or by_search or before_kind or after_kind) and overdue is None and has_due_date is None


def tally_counts(shape, filters):
    """counts() from task_tallies: a few rows per user."""
    completed, by_state, by_priority, by_category = shape[:4]
    done = TaskTally.status == filters["done"]
    status = [done if completed else ~done] if completed is not None else []
    if by_state:
        status.append(TaskTally.status == filters["state"])
    total = fn.SUM(TaskTally.n)
    matching = total.filter(reduce(operator.and_, status)) if status else total
    query = TaskTally.select(fn.json_build_array(
        fn.COALESCE(matching, 0), fn.COALESCE(total.filter(done), 0), fn.COALESCE(total.filter(~done), 0)))
    query = query.where(TaskTally.user == filters["user"])
    if by_priority:
        query = query.where(TaskTally.priority == filters["priority"])
    if by_category:
        query = query.where(fn.lower(TaskTally.category) == fn.lower(filters["category"]))
    return query


def counts(shape, filters, model=Task):
    """[count, completed_count, pending_count]: `count` under every filter, the other two under
    every filter but the status one."""
    if tallied(shape):
        return tally_counts(shape, filters)
    completed, by_state = shape[0], shape[1]
    status = [model.completed == completed] if completed is not None else []
    if by_state:
        status.append(model.status == filters["state"])
    matching = fn.COUNT(SQL("*")).filter(reduce(operator.and_, status)) if status else fn.COUNT(SQL("*"))
    return filtered(model.select(fn.json_build_array(
        matching, fn.COUNT(SQL("*")).filter(model.completed == True),  # noqa: E712 - SQL, not Python
        fn.COUNT(SQL("*")).filter(model.completed == False))), model, shape, status=False, **filters)  # noqa: E712


def count_query(shape, **filters):
    """The counts alone (a page past the end has no row to carry them)."""
    return counts(shape, filters)


# The page --------------------------------------------------------------------------------------
def page_shape(params):
    """The page query's shape: the filters', the order's and the paging's."""
    return (filter_shape(params), params.sort, params.descending, params.after is not None,
            bool(params.offset) and params.after is None)


def page_arguments(user, params, done):
    """(shape, values) of the page query for `params` (list_params.ListParams); `done`: the last state."""
    shape = page_shape(params)
    after_value, after_id = params.after or (None, None)
    return shape, {"fetch": params.limit + 1, "after_value": after_value, "after_id": after_id,
                   "offset": params.offset if shape[-1] else None, **filter_values(user, params, done)}


def page_query(shape, fetch, after_value, after_id, offset, **filters):
    """One page (+1 row, to know whether another follows) with the counts as a scalar subquery."""
    filter_part, sort, descending, has_cursor, has_offset = shape
    query = filtered(ROW.select(ROW_JSON.alias("json"), counts(filter_part, filters).alias("counts")), ROW,
                     filter_part, **filters)
    column = ORDERS[sort]
    if has_cursor:
        query = query.where(_after(column, sort, descending, after_value, after_id))
    if sort == "due_date":
        primary = column.desc(nulls="LAST") if descending else column.asc(nulls="LAST")
    else:
        primary = column.desc() if descending else column.asc()
    query = query.order_by(primary, ROW.id.desc() if descending else ROW.id.asc()).limit(fetch)
    return query.offset(offset) if has_offset else query


def _after(column, sort, descending, value, last_id):
    # Rows strictly after (value, id) in the order. Due dates may be NULL and NULLs come last in
    # both directions, so due_date spells the comparison out; the others compare row values.
    beyond = ROW.id < last_id if descending else ROW.id > last_id
    if sort == "due_date":
        if value is None:
            return column.is_null() & beyond
        ahead = column < value if descending else column > value
        return ahead | ((column == value) & beyond) | column.is_null()
    key, bound = Tuple(column, ROW.id), Tuple(value, last_id)
    return key < bound if descending else key > bound
