"""Where the console listens: loopback by default; beyond it, sign-in or an explicit override
(then a red warning on every page)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.shell import exposed
from tests.console.test_app import APP, PAGES, clean_env
from tests.support import REPO_ROOT, free_port


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: Callable[..., str]
) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("exposure")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, folder, module_ledger_url)
        yield folder
    _runtime.reset()


@pytest.mark.parametrize(
    ("address", "open_to_others"),
    [
        ("127.0.0.1", False),
        ("127.0.0.53", False),
        ("::1", False),
        ("[::1]", False),
        ("localhost", False),
        ("", True),  # Streamlit's default: every interface
        (None, True),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("::ffff:10.0.0.1", True),
        ("console.example.com", True),
    ],
)
def test_exposed(address: str | None, open_to_others: bool) -> None:
    assert exposed(address) is open_to_others


def test_the_shipped_config_binds_to_loopback() -> None:
    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def warnings(at: AppTest) -> list[str]:
    return [e.value for e in at.error if "Anyone who can reach this console" in e.value]


def test_no_warning_on_loopback(data_dir: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception and warnings(at) == []


@pytest.fixture
def bound_beyond_loopback() -> Iterator[None]:
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        yield
    finally:
        st_config.set_option("server.address", before)


def test_beyond_loopback_without_sign_in_serves_only_the_sign_in_required_page(
    data_dir: Path, bound_beyond_loopback: None
) -> None:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Sign-in must be configured"]
    assert "KEDA_ALLOW_NO_SIGN_IN" in at.info[0].value and "0.0.0.0" in at.info[0].value
    assert not at.sidebar.metric, "no balance, no data"
    for page in PAGES:  # a page script run on its own (a forced run) is refused the same way
        alone = AppTest.from_file(str(REPO_ROOT / page), default_timeout=30).run()
        assert not alone.exception, (page, alone.exception)
        assert [t.value for t in alone.title] == ["Sign-in must be configured"], page
        assert not alone.metric and not alone.dataframe, page


def test_the_override_serves_every_page_with_the_red_warning(
    data_dir: Path, bound_beyond_loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEDA_ALLOW_NO_SIGN_IN", "true")
    at = AppTest.from_file(APP, default_timeout=30).run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        found = warnings(at)
        assert len(found) == 1 and "0.0.0.0" in found[0], (page, found)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on ``port`` (Linux's /proc/net/tcp{,6})."""
    found: set[str] = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


@pytest.mark.slow
def test_streamlit_run_listens_on_loopback_only(tmp_path: Path) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("needs Linux's /proc/net/tcp to see where the server listens")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEDA_")}
    env |= {"KEDA_DATA_DIR": str(tmp_path / "data"), "KEDA_SANDBOX_CARRIER": "deterministic"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "console did not start"
            time.sleep(0.2)
        # 0100007F is 127.0.0.1 as /proc writes it; every interface would be 00000000
        assert listening_addresses(port) == {"0100007F"}
    finally:
        proc.terminate()
        proc.wait(timeout=15)
