"""The read-model store: reads never change anything, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib


def test_nothing_written_inside_a_read_is_kept(runtime):
    store = runtime.views
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS read_guard (n INTEGER)")

    with contextlib.suppress(Exception), store.read() as cursor:
        cursor.execute("INSERT INTO read_guard (n) VALUES (1)")

    with store.read() as cursor:
        cursor.execute("SELECT COUNT(*) FROM read_guard")
        assert cursor.fetchone() == (0,)


def test_a_read_sees_what_a_transaction_committed(runtime):
    store = runtime.views
    with store.transaction() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS read_sees (n INTEGER)")
        cursor.execute("INSERT INTO read_sees (n) VALUES (7)")

    with store.read() as cursor:
        cursor.execute("SELECT n FROM read_sees")
        assert cursor.fetchall() == [(7,)]


def test_one_copy_of_a_follower_leads_and_another_schema_has_its_own_lead(
    postgres_settings, tmp_path
):
    from dataclasses import replace

    import psycopg

    from phantomflow.adapters.persistence import postgres_conninfo
    from phantomflow.adapters.viewstore import PostgresViewStore
    from tests.conftest import POSTGRES_URL

    other_schema = f"{postgres_settings.database_schema}_other"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {other_schema}")
    stores = [
        PostgresViewStore(postgres_conninfo(settings), max_size=1)
        for settings in (
            postgres_settings,
            postgres_settings,
            replace(postgres_settings, database_schema=other_schema),
        )
    ]
    try:
        first, second, elsewhere = stores
        with first.leadership("ledger") as leading:
            assert leading
            with second.leadership("ledger") as also_leading:
                assert not also_leading  # a copy of the same follower stands by
            with second.leadership("jobs") as leading_another:
                assert leading_another  # another follower
            with elsewhere.leadership("ledger") as leading_elsewhere:
                assert leading_elsewhere  # another deployment's follower
        with second.leadership("ledger") as leading_now:
            assert leading_now  # the lead is free again
    finally:
        for store in stores:
            store.close()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {other_schema} CASCADE")


def test_a_copy_that_steps_down_hands_the_lead_over_at_once_every_time(postgres_settings):
    """A closed session's advisory locks outlive the close for a moment (its backend is
    still exiting); stepping down must release the lead before that, or a successor
    asking at once is refused (it was, now and then, under CPU load)."""
    from phantomflow.adapters.persistence import postgres_conninfo
    from phantomflow.adapters.viewstore import PostgresViewStore

    stores = [PostgresViewStore(postgres_conninfo(postgres_settings), max_size=1) for _ in "ab"]
    try:
        refused = 0
        for turn in range(100):
            with stores[turn % 2].leadership("dispatcher") as leading:
                refused += not leading
        assert refused == 0
    finally:
        for store in stores:
            store.close()
