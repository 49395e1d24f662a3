"""The package's layers (docs/architecture.md): each module imports only its own layer and the
ones before it, there are no import circles, views never reach the database layer, the store
and token verification do without Flask, and operator code stays off the request path.
Read from the source (every import statement, also those inside functions)."""
import ast

from tests.conftest import PROJECT

PACKAGE = PROJECT / "service"
# In order: a module may import its own layer and the ones before it.
LAYERS = (
    ("ground", ("service.instruments", "service.recurrence", "service.field_types", "service.fields",
                "service.jsonio", "service.request_log", "service.vocabularies", "service.config",
                "service.errors")),
    ("db", ("service.db",)),
    ("input", ("service.validation", "service.list_params", "service.tokens")),
    ("store", ("service.store",)),
    ("idempotency", ("service.idempotency",)),
    ("web", ("service.api", "service.health", "service.docs", "service.openapi", "service.cors",
             "service.metrics")),
)
OPS = "service.ops"
VIEWS = ("service.api.tasks", "service.api.users", "service.api.tags", "service.api.reminders",
         "service.api.stats")
WITHOUT_FLASK = ("service.store", "service.tokens", "service.fields", "service.field_types", "service.recurrence",
                 "service.instruments", "service.db.models", "service.db.connect", "service.db.query_cache",
                 "service.db.watchdog", "service.db.embedded")


def module_name(path):
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, modules):
    """The service modules and the outside packages `path` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found - {name}


def within(name, prefixes):
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def layer_of(name):
    for number, (_, prefixes) in enumerate(LAYERS):
        if within(name, prefixes):
            return number
    return None


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path, MODULES) for name, path in MODULES.items()}


def service_imports(name):
    return {target for target in GRAPH[name] if within(target, ("service",))}


def test_the_layers_cover_every_module_but_the_app_and_ops():
    unplaced = sorted(name for name in MODULES
                      if name != "service" and layer_of(name) is None and not within(name, (OPS,)))
    assert unplaced == []


def test_each_module_imports_only_its_own_layer_and_those_before_it():
    wrong = []
    for name in MODULES:
        layer = layer_of(name)
        if layer is None:
            continue
        for target in service_imports(name):
            if layer_of(target) is None or layer_of(target) > layer:
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_there_are_no_import_circles():
    state, circles = {}, []

    def visit(name, path):
        state[name] = "open"
        for target in sorted(t for t in service_imports(name) if t in MODULES):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(MODULES):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_views_never_reach_the_database_layer():
    assert {view: sorted(t for t in service_imports(view) if within(t, ("service.db",)))
            for view in VIEWS} == {view: [] for view in VIEWS}


def test_store_tokens_fields_and_the_data_layer_do_without_flask():
    with_flask = sorted(name for name in MODULES if within(name, WITHOUT_FLASK)
                        and any(within(target, ("flask", "werkzeug")) for target in GRAPH[name]))
    assert with_flask == []


def test_operator_code_stays_off_the_request_path():
    importers = sorted(name for name in MODULES if not within(name, (OPS,))
                       and any(within(target, (OPS,)) for target in GRAPH[name]))
    assert importers == ["service"]  # create_app registers the commands
    # Operator code uses the layers below the web (the database, input parsing, the stores),
    # never the web layer itself.
    web = len(LAYERS) - 1
    reaching = sorted(f"{name} -> {target}" for name in MODULES if within(name, (OPS,))
                      for target in service_imports(name)
                      if not within(target, (OPS,)) and (layer_of(target) is None or layer_of(target) >= web))
    assert reaching == []
