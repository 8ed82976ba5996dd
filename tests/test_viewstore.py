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
