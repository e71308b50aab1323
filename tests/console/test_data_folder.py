"""The data folder is private: the folder 0700, every file in it 0600, made now or later.

SQLite only: these are about the data folder's files (ledger.db among them), not the store.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console import runtime as _runtime
from kedacore.ledger import Ledger
from kedacore.settings import load_settings


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The common default (files 0644, folders 0755), whatever the test runner had."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def modes(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (and itself) → its permission bits, as octal text."""
    found = {".": oct(stat.S_IMODE(folder.stat().st_mode))}
    for entry in folder.rglob("*"):
        found[str(entry.relative_to(folder))] = oct(stat.S_IMODE(entry.lstat().st_mode))
    return found


def loose(folder: Path) -> dict[str, str]:
    return {name: mode for name, mode in modes(folder).items() if int(mode, 8) & 0o077}


def test_the_sandbox_keeps_everything_private(tmp_path: Path, loose_umask: None) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings(None, {"KEDA_DATA_DIR": str(data_dir)})
    try:
        rt = _runtime.runtime(settings)
        # Write to both databases (their -wal and -shm appear), and have the gateway write a
        # verification mail (files made later, in a folder made later).
        result = rt.client.sms.send("US", ["2015550123"], "hello")
        rt.ledger.record_send(result, country="US", sender=None, content="hello")
        answer = httpx.post(
            f"{rt.gateway.api_url}/accounts/register",
            json={"email": "new@example.com", "password": "correct horse battery"},
        )
        assert answer.status_code == 200, answer.text
        names = set(modes(data_dir))
        assert {"gateway.db", "gateway.db-wal", "ledger.db", "ledger.db-wal"} <= names
        assert any(name.startswith("mail/") for name in names), names
        assert loose(data_dir) == {}
        assert modes(data_dir)["."] == "0o700"
    finally:
        _runtime.reset()


def test_a_folder_made_before_is_tightened_on_start(tmp_path: Path, loose_umask: None) -> None:
    data_dir = tmp_path / "old"
    (data_dir / "mail").mkdir(parents=True)
    (data_dir / "mail" / "000001-a@example.com.txt").write_text("token")
    (data_dir / "campaign_options.json").write_text("{}")
    with Ledger(data_dir=data_dir):  # a ledger made by an older version, 0644
        pass
    os.chmod(data_dir / "ledger.db", 0o644)
    assert loose(data_dir)
    settings = load_settings(None, {"KEDA_DATA_DIR": str(data_dir)})
    try:
        _runtime.runtime(settings)
        assert loose(data_dir) == {}
    finally:
        _runtime.reset()


def test_a_ledger_alone_is_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "ledger-only"
    with Ledger(data_dir=folder):
        assert (folder / "ledger.db").exists()
        assert loose(folder) == {}


def test_a_shared_folder_is_never_tightened(tmp_path: Path, loose_umask: None) -> None:
    """KEDA_DATA_DIR or --db naming a shared folder (like /tmp) changes only our own files."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    other = shared / "someone-elses.txt"
    other.write_text("not ours")
    os.chmod(other, 0o644)
    settings = load_settings(None, {"KEDA_DATA_DIR": str(shared)})
    try:
        _runtime.runtime(settings)
        found = modes(shared)
        assert found["."] == "0o1777" and found["someone-elses.txt"] == "0o644"
        ours = {k: v for k, v in found.items() if k not in (".", "someone-elses.txt")}
        assert "ledger.db" in ours and "gateway.db" in ours
        assert all(int(v, 8) & 0o077 == 0 for v in ours.values()), ours
    finally:
        _runtime.reset()


def test_the_gateway_database_in_a_shared_folder_leaves_the_folder(
    tmp_path: Path, loose_umask: None
) -> None:
    from gateway.db import make_engine

    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    make_engine(shared / "gw.db").dispose()
    assert oct(stat.S_IMODE(shared.stat().st_mode)) == "0o1777"
    assert oct(stat.S_IMODE((shared / "gw.db").stat().st_mode)) == "0o600"
    # A folder the gateway makes for its database is private.
    make_engine(tmp_path / "new" / "deeper" / "gw.db").dispose()
    assert loose(tmp_path / "new") == {}


def test_opening_a_database_again_keeps_the_locks_sqlite_holds(tmp_path: Path) -> None:
    """sqlite_file must not open an existing database: closing a descriptor of a file drops
    every POSIX lock the process holds on it (SQLite's too)."""
    import sqlite3

    from kedacore.private import sqlite_file

    db = tmp_path / "locks.db"
    # Rollback-journal mode shows the lost lock directly; in WAL mode the same loss lets
    # another process that closes its last connection delete the WAL under this one.
    first = sqlite3.connect(db, isolation_level=None)
    first.execute("CREATE TABLE t (x)")
    first.execute("BEGIN EXCLUSIVE")
    first.execute("INSERT INTO t VALUES (1)")
    sqlite_file(db)  # as a second Ledger on the same file would
    # Another process (POSIX locks are per process) must still find the database locked.
    probe = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], timeout=0)\n"
        "try:\n"
        "    c.execute('BEGIN EXCLUSIVE')\n"
        "    print('acquired')\n"
        "except sqlite3.OperationalError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=True
    )
    first.execute("ROLLBACK")
    first.close()
    assert out.stdout.strip() == "database is locked"
