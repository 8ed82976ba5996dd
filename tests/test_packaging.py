"""The install: one `phantomflow` package (with the SDK, `phantomflow_client`, from
clients/python), the SDK's own distribution, and events stored before the move still read."""

from __future__ import annotations

import ast
import shutil
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from phantomflow.adapters.settings import Settings
from phantomflow.adapters.topics import topics_of
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.projections.ledger import LedgerFilter

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("domain", "adapters", "workers", "api", "projections")
CLIENT_ROOT = ROOT / "clients" / "python"


def setuptools_config(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text())["tool"]["setuptools"]


def client_packages() -> set[str]:
    return {
        ".".join(init.parent.relative_to(CLIENT_ROOT).parts)
        for init in (CLIENT_ROOT / "phantomflow_client").rglob("__init__.py")
    }


def test_every_package_folder_is_installed_under_phantomflow():
    config = setuptools_config(ROOT / "pyproject.toml")
    found = {
        "phantomflow." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert set(config["packages"]) == found | client_packages()
    assert config["package-dir"] == {
        **{f"phantomflow.{folder}": folder for folder in FOLDERS},
        "phantomflow_client": "clients/python/phantomflow_client",
    }


def test_the_client_distribution_installs_the_same_client_packages():
    assert set(setuptools_config(CLIENT_ROOT / "pyproject.toml")["packages"]) == client_packages()


def test_topics_of_names_both_spellings_of_a_domain_event():
    assert topics_of(CreditAccount.Opened) == (
        "phantomflow.domain.accounts:CreditAccount.Opened",
        "domain.accounts:CreditAccount.Opened",
    )


def test_events_recorded_under_the_old_module_names_still_load_and_follow(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    runtime = build_runtime(settings)
    opened = runtime.app.open_account(plan="pro", credits=70)
    runtime.close()
    # What an event store written before the move holds: topics without the prefix.
    with sqlite3.connect(settings.data_dir / "events.sqlite3") as db:
        db.execute("UPDATE stored_events SET topic = substr(topic, length('phantomflow.') + 1)")
        legacy = db.execute("SELECT count(*) FROM stored_events WHERE topic LIKE 'domain.%'")
        assert legacy.fetchone()[0] > 0

    runtime = build_runtime(settings)
    try:
        assert runtime.app.get_account(opened.account_id).balance == 70
        assert runtime.app.authenticate(opened.api_key) is not None
        runtime.ledger_runner.catch_up()
        found = runtime.ledger.page(LedgerFilter(str(opened.account_id)), page=1, limit=10)
        assert [entry["amount"] for entry in found.entries] == [70]
    finally:
        runtime.close()


def build_wheel(source: Path, out: Path) -> zipfile.ZipFile:
    """The wheel of a copy of `source` (setuptools builds in the source tree)."""
    copy = out / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".venv", "node_modules")
    for name in SOURCES.get(source, ()):
        if (source / name).is_dir():
            shutil.copytree(source / name, copy / name, ignore=ignore)
        else:
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy(source / name, copy / name)
    source = copy
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


# What each distribution is built from.
SOURCES = {
    CLIENT_ROOT: ("pyproject.toml", "README.md", "phantomflow_client"),
    ROOT: ("pyproject.toml", "README.md", *FOLDERS, "clients/python/phantomflow_client"),
}


def test_both_distributions_build_and_carry_the_client(tmp_path: Path):
    client_wheel = build_wheel(CLIENT_ROOT, tmp_path / "client")
    server_wheel = build_wheel(ROOT, tmp_path / "server")
    sources = {
        str(path.relative_to(CLIENT_ROOT))
        for path in (CLIENT_ROOT / "phantomflow_client").rglob("*")
        if path.suffix in (".py", ".typed")
    }
    metadata = next(n for n in client_wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [
        line.split(":", 1)[1].strip()
        for line in client_wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]

    assert sources <= set(client_wheel.namelist())
    assert sources <= set(server_wheel.namelist())
    assert {"phantomflow/api/cli.py", "phantomflow/domain/jobs.py"} <= set(server_wheel.namelist())
    assert requires == ["httpx>=0.27"]  # the SDK alone needs httpx, nothing of the server


def test_no_module_of_the_sdk_imports_the_server():
    """The SDK is a client of the public API only: the other way round (the server's CLI
    registering the SDK's commands) is the one link."""
    breaches = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (CLIENT_ROOT / "phantomflow_client").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
        if name.split(".")[0] == "phantomflow"
    ]
    assert breaches == []


def test_the_sdk_imports_nothing_of_the_server_nor_of_its_commands():
    # (rich may be loaded all the same: httpx imports it for its own CLI when installed)
    probe = (
        "import sys, phantomflow_client, phantomflow_client.webhooks;"
        "heavy = [m for m in sys.modules if m.split('.')[0] in"
        " ('phantomflow', 'mcp', 'aiohttp', 'eventsourcing') or m == 'phantomflow_client.cli'];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
