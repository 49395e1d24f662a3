"""peewee-migrate configuration: `pw_migrate` resolves the database exactly as the service does
(DATABASE_URL from the environment or `.env`, else the embedded PostgreSQL)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path("__file__").resolve().parent))

from service.config import ConfigError, load_config  # noqa: E402
from service.db import make_database  # noqa: E402

try:
    DATABASE = make_database(load_config())
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
IGNORE = ["basemodel"]
