"""peewee-migrate configuration: `pw_migrate` resolves the database exactly as the service does
(DATABASE_URL from the environment or `.env`, else the embedded PostgreSQL)."""
import sys
from pathlib import Path


def _project_root():
    """The folder holding this migrations folder. pw_migrate runs this file with exec(), without
    `__file__`, from whatever folder it was started in with `--directory` (default ./migrations):
    the folder it is reading is its loader's `directory`."""
    if "__file__" in globals():
        return Path(__file__).resolve().parent.parent
    directory = sys._getframe(2).f_locals.get("directory")  # noqa: SLF001 - peewee_migrate.cli.get_router
    return Path(directory or "migrations").resolve().parent


sys.path.insert(0, str(_project_root()))

from service.config import ConfigError, load_config  # noqa: E402
from service.db import make_database  # noqa: E402

try:
    DATABASE = make_database(load_config())
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
IGNORE = ["basemodel"]
