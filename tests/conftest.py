"""Shared fixtures: the real gateway on a loopback port, in a thread or as its own process.

- ``gateway_factory(**config_overrides) -> GatewayHandle``: a fresh gateway (uvicorn in a
  background thread, SQLite file in ``tmp_path``), stopped at teardown. Overrides are
  ``GatewayConfig`` fields (plus ``policy=``, a carrier ``Policy``); tests get fast carrier
  delays and no rate limit by default.
- ``gateway``: ``gateway_factory()`` with those defaults.
- ``start_gateway_process(db_path, *extra_args) -> (Popen, base_url)``: ``python -m gateway
  serve`` as a subprocess on a free port, ready (``/healthz``) when it returns. The caller
  stops it (SIGTERM or SIGKILL); any left running are killed at the end of the session.
  Import it (``from tests.support import start_gateway_process``) or use the ``gateway_process``
  fixture, the same function with a kill at teardown.
- ``receiver_factory(signing_key=..., token=...) -> ReceiverHandle``: the console's callback
  receiver (``kedacore.webhooks.webhook_routes`` over a ``Ledger`` in ``tmp_path``) under
  uvicorn in a thread on loopback; it can be stopped and started again on the same port,
  and told to fail (``refuse``: 503 before reading, ``lose_answers``: store, then 500,
  ``hang``: wait, then 503).

The two stores — one source of truth for the ledger tests' parameters (``STORES`` in
``tests/support.py``):

- ``store``: ``"sqlite"`` or ``"postgresql"``, parametrised: a test that asks for it (or for
  ``ledger_url``) runs once on each (ids ``[sqlite]``, ``[postgresql]``). ``postgresql`` needs
  ``KEDA_TEST_POSTGRES_URL`` (a scratch database): without it that case is skipped with the
  reason, except under ``CI=true``, where it fails (CI never skips PostgreSQL).
- ``ledger_url(name="ledger") -> str``: each call a new empty store for this test — SQLite
  ``sqlite:///{tmp_path}/{name}.db``; PostgreSQL a new schema ``t_<hex>`` in that database
  (the URL sets ``search_path`` through libpq's ``options``), dropped with ``CASCADE`` at
  teardown, after the fixtures that opened ledgers on it have closed them.
- ``module_store`` / ``module_ledger_url``: the same for module-scoped ledgers.
- A module about one store only: ``pytestmark = pytest.mark.parametrize("store",
  ["postgresql"], indirect=True)``. Tests about SQLite only (the file's permissions, WAL, the
  data folder) do not ask for these fixtures and say so.
- Console (AppTest) tests: their ``data_dir`` fixture sets ``KEDA_DATABASE_URL`` to
  ``ledger_url()`` on PostgreSQL; on SQLite it stays unset (the data folder's ``ledger.db``).

The helpers under them are in ``tests/support.py``.
"""

from __future__ import annotations

import os

# The console's sandbox uses the realistic carrier (a few percent of failures); tests that
# drive the console (AppTest and the browser, whose server inherits this) want every message
# delivered, so they run it deterministic.
os.environ.setdefault("KEDA_SANDBOX_CARRIER", "deterministic")
# The console's notifier looks for causes every 15 s in a thread; tests that want it ask for it
# (tests/kedacore/test_notify.py, tests/console/test_app_notifications.py) or call it directly.
os.environ.setdefault("KEDA_NOTIFY_INTERVAL", "0")

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kedacore.ledger import Ledger
from tests.support import (
    POSTGRES_URL_VARIABLE,
    STORES,
    GatewayHandle,
    ReceiverHandle,
    StoreFactory,
    gateway_processes,
    postgres_test_url,
    start_gateway_process,
)


def _chosen_store(request: pytest.FixtureRequest) -> str:
    store = request.param
    if store == "postgresql" and not postgres_test_url():
        reason = f"{POSTGRES_URL_VARIABLE} is not set (a scratch PostgreSQL database)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}: CI must run the PostgreSQL cases")
        pytest.skip(reason)
    return store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> str:
    """The ledger's store for this test: ``"sqlite"`` or ``"postgresql"``."""
    return _chosen_store(request)


@pytest.fixture
def ledger_url(store: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """``ledger_url(name="ledger") -> url``: a new empty store on each call."""
    factory = StoreFactory(store, tmp_path)
    yield factory
    factory.close()


@pytest.fixture(scope="module", params=STORES)
def module_store(request: pytest.FixtureRequest) -> str:
    """``store`` for module-scoped fixtures."""
    return _chosen_store(request)


@pytest.fixture(scope="module")
def module_ledger_url(
    module_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """``ledger_url`` for module-scoped fixtures (its stores live as long as the module)."""
    factory = StoreFactory(module_store, tmp_path_factory.mktemp(module_store))
    yield factory
    factory.close()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayHandle]]:
    """``gateway_factory(**config_overrides)``: start gateways, each stopped at teardown.

    Each gets its own database file unless ``db_path`` is given (e.g. to restart on one).
    """
    handles: list[GatewayHandle] = []

    def start(**overrides: Any) -> GatewayHandle:
        db_path = overrides.pop("db_path", None) or tmp_path / f"gateway-{len(handles)}.db"
        handle = GatewayHandle.start(db_path, **overrides)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayHandle]) -> GatewayHandle:
    """A gateway with the test defaults."""
    return gateway_factory()


@pytest.fixture
def gateway_process() -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    """``start_gateway_process`` as a fixture: what it started is killed at teardown."""
    started: list[subprocess.Popen] = []

    def start(db_path: Path | str, *extra_args: str) -> tuple[subprocess.Popen, str]:
        proc, base_url = start_gateway_process(db_path, *extra_args)
        started.append(proc)
        return proc, base_url

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _stop_leftover_gateway_processes() -> Iterator[None]:
    yield
    for proc in gateway_processes:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[Callable[..., ReceiverHandle]]:
    """``receiver_factory(signing_key=..., token=..., start=True, url=None)``: receivers,
    stopped at the end.

    Each has its own ledger: ``url`` (e.g. ``ledger_url()``), else ``ledger-N.db`` in
    ``tmp_path``. ``signing_key`` is the
    account's encryption key (base64 text or 32 bytes); ``None`` checks no signature.
    """
    handles: list[ReceiverHandle] = []

    def make(
        signing_key: str | bytes | None = None,
        token: str | None = None,
        start: bool = True,
        url: str | None = None,
    ) -> ReceiverHandle:
        ledger = Ledger(url or f"sqlite:///{tmp_path / f'ledger-{len(handles)}.db'}")
        handle = ReceiverHandle(ledger, token or f"tok{len(handles)}-{os.getpid()}", signing_key)
        handles.append(handle)
        return handle.start() if start else handle

    yield make
    for handle in handles:
        handle.stop()
        handle.ledger.close()
