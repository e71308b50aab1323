"""The data folder is private: the folder 0700, every file in it 0600, made now or later."""

from __future__ import annotations

import os
import stat
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
