"""docs/architecture.md stays a map of the code: every module it names exists, and every
module of the five code folders is in its folder's table."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()
FOLDERS = ("domain", "adapters", "projections", "workers", "api")


def folder_tables() -> dict[str, str]:
    """Each folder's module table: the text under its `**`folder/`**` heading."""
    parts = re.split(r"\n\*\*`(\w+)/`\*\*", DOC)
    return {parts[i]: re.split(r"\n\n\*\*|\n## ", parts[i + 1])[0] for i in range(1, len(parts), 2)}


def test_every_module_of_the_code_folders_is_in_its_folders_table():
    tables = folder_tables()
    assert set(tables) == set(FOLDERS)
    unlisted = []
    for folder in FOLDERS:
        named = set(re.findall(r"`([\w.]+/?)`", tables[folder]))
        for path in sorted((ROOT / folder).iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            if path.is_dir():
                entry = f"{path.name}/"
            elif path.suffix == ".py":
                entry = path.name
            else:
                continue
            if entry not in named:
                unlisted.append(f"{folder}/{entry}")
    assert unlisted == [], "add these to docs/architecture.md's module tables"


def test_every_path_the_document_names_exists():
    named = set(
        re.findall(
            r"(?<![/\w.])((?:domain|adapters|projections|workers|api|bench|tests)/[\w/.]*\w)", DOC
        )
    )
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], "docs/architecture.md names these, which do not exist"
