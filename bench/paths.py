"""Where things are."""
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BENCH = PROJECT / "bench"
OUT = BENCH / "out"
VENV_BIN = PROJECT / ".venv" / "bin"
DOCS = PROJECT / "docs"
