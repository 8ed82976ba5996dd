"""The layering of docs/architecture.md, read from the code itself.

    domain  <-  adapters  <-  projections  <-  workers  <-  api

Each folder imports only from the folders to its left (and itself): the domain knows
nothing of storage, queues or HTTP; the composition root and the entry points are the
only code that sees every layer, and they live in `api/`. Every import counts, those
inside functions and `if TYPE_CHECKING:` blocks too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("domain", "adapters", "projections", "workers", "api")
# What the domain may import besides the standard library and itself.
DOMAIN_LIBRARIES = {"eventsourcing"}


def modules() -> list[tuple[str, Path]]:
    return [
        (folder, path)
        for folder in LAYERS
        for path in sorted((ROOT / folder).rglob("*.py"))
        if ".venv" not in path.parts
    ]


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.lineno, node.module or ""))
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "phantomflow" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return None


def test_the_layer_rule_and_the_test_can_tell_a_breach():
    """The rule itself: a module may import its own layer and the layers below."""
    assert allowed("api", "domain") and allowed("workers", "projections")
    assert allowed("adapters", "adapters")
    assert not allowed("adapters", "projections") and not allowed("workers", "api")
    assert layer_of("phantomflow.projections.runner") == "projections"
    assert layer_of("aiohttp.web") is None


def allowed(importer: str, imported_layer: str) -> bool:
    return LAYERS.index(imported_layer) <= LAYERS.index(importer)


def test_each_folder_imports_only_from_the_folders_below_it():
    assert modules(), "no modules found"
    breaches = [
        f"{path.relative_to(ROOT)}:{line} ({folder}) imports {name}"
        for folder, path in modules()
        for line, name in imported(path)
        if (target := layer_of(name)) is not None and not allowed(folder, target)
    ]
    assert breaches == []


def test_the_domain_imports_only_the_standard_library_eventsourcing_and_itself():
    breaches = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for folder, path in modules()
        if folder == "domain"
        for line, name in imported(path)
        if name.split(".")[0] not in sys.stdlib_module_names | DOMAIN_LIBRARIES
        and not name.startswith("phantomflow.domain")
        and name != "__future__"
    ]
    assert breaches == []
