"""The install: one `phantomflow` package, and events stored before it still read."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

from phantomflow.adapters.settings import Settings
from phantomflow.adapters.topics import topics_of
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.accounts import CreditAccount
from phantomflow.projections.ledger import LedgerFilter

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("domain", "adapters", "workers", "api", "projections")


def test_every_package_folder_is_installed_under_phantomflow():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        "phantomflow." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert set(config["packages"]) == found
    assert config["package-dir"] == {f"phantomflow.{folder}": folder for folder in FOLDERS}


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
