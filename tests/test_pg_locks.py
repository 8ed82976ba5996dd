"""The account lock shared by processes, and what it does to racing submissions."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import RecordConflictError

from phantomflow.adapters.persistence import postgres_conninfo
from phantomflow.adapters.pg_locks import AdvisoryAccountLocks
from phantomflow.api.bootstrap import build_runtime
from phantomflow.domain.script import MovieScript
from tests.conftest import TINY_SCRIPT


@pytest.fixture
def two_processes_locks(postgres_settings):
    """Two processes' lock tables (each has its own connections)."""
    first = AdvisoryAccountLocks(postgres_conninfo(postgres_settings))
    second = AdvisoryAccountLocks(postgres_conninfo(postgres_settings))
    yield first, second
    first.close()
    second.close()


def test_an_account_locked_by_one_process_waits_in_another_until_released(
    two_processes_locks,
):
    first, second = two_processes_locks
    account = uuid.uuid4()
    acquired = threading.Event()

    def other_process() -> None:
        with second(account):
            acquired.set()

    with first(account):
        waiter = threading.Thread(target=other_process)
        waiter.start()
        assert not acquired.wait(0.5)
    assert acquired.wait(5)
    waiter.join()


def test_locks_on_different_accounts_do_not_wait_for_each_other(two_processes_locks):
    first, second = two_processes_locks
    acquired = threading.Event()

    def other_process() -> None:
        with second(uuid.uuid4()):
            acquired.set()

    with first(uuid.uuid4()):
        waiter = threading.Thread(target=other_process, daemon=True)
        waiter.start()
        assert acquired.wait(5), "a lock on another account waited for this one"
    waiter.join(10)


def test_processes_racing_on_one_account_queue_instead_of_conflicting_again_and_again(
    postgres_settings,
):
    processes, each = 8, 15
    runtimes = [build_runtime(postgres_settings) for _ in range(processes)]
    conflicts = 0
    counting = threading.Lock()

    def counted(save):
        def save_counting(*args, **kwargs):
            nonlocal conflicts
            try:
                return save(*args, **kwargs)
            except RecordConflictError:
                with counting:
                    conflicts += 1
                raise

        return save_counting

    try:
        account = runtimes[0].app.open_account(plan="enterprise", credits=1000)
        runtimes[0].app.change_plan(account.account_id, "enterprise", concurrent_jobs=1000)
        for runtime in runtimes:
            runtime.app.save = counted(runtime.app.save)
        start = threading.Barrier(processes)

        def submit_all(runtime) -> None:
            start.wait()
            for _ in range(each):
                runtime.app.submit_render(
                    account.account_id, MovieScript.from_dict(TINY_SCRIPT), None, {}
                )

        threads = [threading.Thread(target=submit_all, args=(rt,)) for rt in runtimes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        final = runtimes[0].app.get_account(account.account_id)
        # TINY_SCRIPT costs one credit.
        assert (len(final.active_jobs), final.balance) == (
            processes * each,
            1000 - processes * each,
        )
        # Without the shared lock this race meets several conflicts per submission.
        assert conflicts < processes * each // 4
    finally:
        for runtime in runtimes:
            runtime.close()
