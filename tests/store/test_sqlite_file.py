"""The SQLite file itself: location, permissions, pragmas and durability settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from automatosx.errors import AxError
from automatosx.store import open_store
from automatosx.store.events import WorkflowStarted
from automatosx.store.open import resolve_location
from automatosx.store.records import AppendEvent
from automatosx.store.sqlite import SqliteStore
from tests.store import sample

STARTED = WorkflowStarted("code-review", "1.0.0", "cli", 0, 3, 4, "host:1:runner-a")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "sub" / "ax.db"
        with open_store(str(path)) as store:  # type: ignore[attr-defined]
            _, lease = sample.execution(store)
            store.write(lease, [AppendEvent(STARTED)])
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert [_mode(f) for f in files] == [0o600, 0o600, 0o600]
    finally:
        os.umask(old_umask)


def test_existing_loose_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "loose.db"
    path.touch()
    path.chmod(0o644)
    with open_store(str(path)):  # type: ignore[attr-defined]
        pass
    assert _mode(path) == 0o600


def test_default_location_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AX_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    store = open_store()
    try:
        assert isinstance(store, SqliteStore)
        assert Path(store.location) == tmp_path / ".automatosx" / "ax.db"
        assert (tmp_path / ".automatosx" / "ax.db").exists()
    finally:
        store.close()
    monkeypatch.setenv("AX_DB", str(tmp_path / "elsewhere.db"))
    assert resolve_location() == str(tmp_path / "elsewhere.db")
    assert resolve_location("sqlite:////tmp/x.db") == "/tmp/x.db"


def test_pragmas_and_synchronous_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AX_DB_SYNC", raising=False)
    path = str(tmp_path / "p.db")
    with open_store(path) as store:  # type: ignore[attr-defined]
        conn = store.raw_connection()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    monkeypatch.setenv("AX_DB_SYNC", "full")
    with open_store(path) as store:  # type: ignore[attr-defined]
        assert store.raw_connection().execute("PRAGMA synchronous").fetchone()[0] == 2
    with open_store(path, synchronous="normal") as store:  # type: ignore[attr-defined]
        assert store.raw_connection().execute("PRAGMA synchronous").fetchone()[0] == 1
    monkeypatch.setenv("AX_DB_SYNC", "sometimes")
    with pytest.raises(AxError, match="AX_DB_SYNC"):
        open_store(path)


def test_unusable_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(AxError, match="cannot open the database"):
        open_store(str(blocker / "ax.db"))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AxError, match="cannot open the database"):
        open_store(str(garbage))
