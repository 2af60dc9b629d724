"""Leases with a fencing epoch, and control requests from any process."""

from __future__ import annotations

import threading
import time

import pytest

from automatosx.errors import LeaseLostError, NotFoundError, StateConflictError
from automatosx.store import open_store
from automatosx.store.base import Store
from automatosx.store.records import ClearControlRequest, Lease, SetContext, SetExecutionState
from tests.store import sample
from tests.store.steps import Steps


def test_live_lease_of_another_owner_is_refused(store: Store) -> None:
    execution, lease = sample.execution(store)
    with pytest.raises(StateConflictError, match="being run by"):
        store.acquire_lease(execution.id, sample.OTHER, 30)
    assert store.get_execution(execution.id).lease_epoch == lease.epoch


def test_expired_lease_is_taken_over_and_bumps_the_epoch(store: Store) -> None:
    execution, lease = sample.execution(store, lease_seconds=30)
    later = time.time() + 31
    taken = store.acquire_lease(execution.id, sample.OTHER, 60, now=later)
    assert taken.epoch == lease.epoch + 1 and taken.owner == sample.OTHER
    assert taken.expires_at == pytest.approx(later + 60)
    stored = store.get_execution(execution.id)
    assert (stored.lease_owner, stored.lease_epoch) == (sample.OTHER, taken.epoch)


def test_same_owner_reacquires_with_a_new_epoch(store: Store) -> None:
    execution, lease = sample.execution(store)
    again = store.acquire_lease(execution.id, sample.OWNER, 30)
    assert again.epoch == lease.epoch + 1


def test_stale_lease_write_is_refused_and_applies_nothing(store: Store) -> None:
    execution, stale = sample.execution(store, lease_seconds=1)
    steps = Steps(execution.id)
    t = time.time()
    store.write(stale, steps.start("parse", t))
    store.acquire_lease(execution.id, sample.OTHER, 60, now=time.time() + 5)
    with pytest.raises(LeaseLostError, match="lost the lease"):
        store.write(
            stale,
            [
                *steps.succeed("parse", t + 1, output="late"),
                SetContext({"overwritten": True}),
                SetExecutionState("completed"),
            ],
        )
    after = store.get_execution(execution.id)
    assert after.state == "idle" and after.context == {"filePath": "x.py"}
    assert [e.type for e in store.list_events(execution.id)] == ["step_started"]
    [attempt] = store.list_step_executions(execution.id)  # still the running one
    assert (attempt.step_key, attempt.state) == ("parse", "running")
    [instance] = store.list_instances(execution.id)
    assert instance.state == "running" and instance.output is None


def test_renew_extends_and_reports_control_requests(store: Store) -> None:
    execution, lease = sample.execution(store, lease_seconds=5)
    renewed, request = store.renew_lease(lease, 120)
    assert request is None and renewed.epoch == lease.epoch
    assert renewed.expires_at == pytest.approx(time.time() + 120, abs=5)
    assert store.get_execution(execution.id).lease_expires_at == pytest.approx(renewed.expires_at)
    store.request_control(execution.id[:8], "pause")
    _, request = store.renew_lease(renewed, 120)
    assert request == "pause"
    store.write(renewed, [ClearControlRequest()])
    assert store.renew_lease(renewed, 120)[1] is None


def test_renew_of_a_lost_lease_raises(store: Store) -> None:
    execution, lease = sample.execution(store, lease_seconds=1)
    store.acquire_lease(execution.id, sample.OTHER, 60, now=time.time() + 5)
    with pytest.raises(LeaseLostError):
        store.renew_lease(lease, 60)
    assert store.get_execution(execution.id).lease_owner == sample.OTHER


def test_release_frees_the_lease_and_is_a_noop_when_lost(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.release_lease(lease)
    released = store.get_execution(execution.id)
    assert released.lease_owner is None and released.lease_expires_at is None
    taken = store.acquire_lease(execution.id, sample.OTHER, 60)
    store.release_lease(lease)  # stale: must not free the new owner's lease
    assert store.get_execution(execution.id).lease_owner == sample.OTHER
    with pytest.raises(LeaseLostError):
        store.write(lease, [SetContext({})])
    store.write(taken, [SetContext({"ok": 1})])


def test_terminal_executions_cannot_be_leased_or_controlled(store: Store) -> None:
    execution, lease = sample.execution(store)
    store.write(lease, [SetExecutionState("completed")])
    with pytest.raises(StateConflictError, match="already completed"):
        store.acquire_lease(execution.id, sample.OWNER, 30)
    with pytest.raises(StateConflictError, match="already completed"):
        store.request_control(execution.id, "cancel")
    with pytest.raises(NotFoundError):
        store.acquire_lease("0" * 36, sample.OWNER, 30)


def test_control_requests(store: Store) -> None:
    execution, lease = sample.execution(store)
    assert store.request_control(execution.id, "pause").control_request == "pause"
    assert store.request_control(execution.id, "cancel").control_request == "cancel"
    assert store.request_control(execution.id, "pause").control_request == "cancel"
    store.write(lease, [ClearControlRequest(), SetExecutionState("paused")])
    with pytest.raises(StateConflictError, match="already paused"):
        store.request_control(execution.id, "pause")
    assert store.request_control(execution.id, "cancel").control_request == "cancel"
    with pytest.raises(NotFoundError):
        store.request_control("ffffffff", "pause")


def test_concurrent_acquire_has_exactly_one_winner(store_url: str) -> None:
    with open_store(store_url) as setup:  # type: ignore[attr-defined]
        execution, lease = sample.execution(setup, lease_seconds=0.01)
    time.sleep(0.05)
    winners: list[Lease] = []
    losers: list[Exception] = []
    barrier = threading.Barrier(6)

    def contend(owner: str) -> None:
        with open_store(store_url) as mine:  # type: ignore[attr-defined]
            barrier.wait()
            try:
                winners.append(mine.acquire_lease(execution.id, owner, 60))
            except StateConflictError as exc:
                losers.append(exc)

    threads = [threading.Thread(target=contend, args=(f"owner-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 5
    assert winners[0].epoch == lease.epoch + 1


def test_a_numbered_write_is_applied_at_most_once(store: Store) -> None:
    """A write resent after its connection dropped carries the same number: if the first
    one committed, the second applies nothing; the fence still holds for both."""
    execution, lease = sample.execution(store)
    steps = Steps(execution.id)
    store.write(lease, steps.start("parse", 1.0), seq=1)
    store.write(lease, steps.start("parse", 1.0), seq=1)  # resent: already applied
    assert [e.type for e in store.list_events(execution.id)] == ["step_started"]
    store.write(lease, [SetContext({"n": 2})], seq=2)
    store.write(lease, [SetContext({"n": 1})], seq=1)  # older than the last one: ignored
    assert store.get_execution(execution.id).context == {"n": 2}
    taken = store.acquire_lease(execution.id, sample.OTHER, 60, now=time.time() + 120)
    with pytest.raises(LeaseLostError):
        store.write(lease, [SetContext({"n": 3})], seq=3)
    store.write(taken, [SetContext({"n": 4})], seq=1)  # a new lease numbers from 1 again
    assert store.get_execution(execution.id).context == {"n": 4}
