"""Fixtures the console's AppTest files share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console import runtime as _runtime
from tests.console.test_app import clean_env


@pytest.fixture
def data_dir(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    """A fresh sandbox per test, on the store of the test's case: caps, balance, campaigns,
    members and audit start from nothing; every runtime stopped afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        yield tmp_path
        _runtime.reset()
