"""Helpers the tests share: the real gateway and the console's receiver on loopback.

- ``GatewayHandle.start(db_path, **config_overrides)``: a gateway (uvicorn in a background
  thread, SQLite file at ``db_path``); overrides are ``GatewayConfig`` fields (plus
  ``policy=``, a carrier ``Policy``); tests get fast carrier delays and no rate limit.
- ``start_gateway_process(db_path, *extra_args) -> (Popen, base_url)``: ``python -m gateway
  serve`` as a subprocess on a free port, ready (``/healthz``) when it returns. The caller
  stops it (SIGTERM or SIGKILL); any left running are killed at the end of the session.
- ``ReceiverHandle``: the console's callback receiver (``kedacore.webhooks.webhook_routes``
  over a ``Ledger``) under uvicorn in a thread on loopback; it can be stopped and started
  again on the same port, and told to fail (``refuse``: 503 before reading, ``lose_answers``:
  store, then 500, ``hang``: wait, then 503).
- ``phone_numbers``, ``poll``, ``free_port``, ``REPO_ROOT``.

The fixtures over them are in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from gateway import GatewayConfig, create_app
from gateway.accounts import Accounts
from gateway.db import Database
from gateway.server import GatewayHttpProtocol
from kedacore.envelope import seal
from kedacore.ledger import Ledger
from kedacore.money import to_micros
from kedacore.webhooks import webhook_routes

REPO_ROOT = Path(__file__).resolve().parent.parent


# Fast and deterministic for tests: a message is DELIVERED about 0.15 s after its send.
TEST_DEFAULTS: dict[str, Any] = {
    "sent_delay": 0.05,
    "deliver_delay": 0.1,
    "rate_limit": 0,
    "carrier_interval": 0.01,
}


_emails = itertools.count(1)


gateway_processes: list[subprocess.Popen] = []


@dataclass(frozen=True, slots=True)
class Account:
    """The credentials of a test account."""

    email: str
    api_key: str
    encryption_key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(interval)


class GatewayHandle:
    """A running gateway and what tests need to drive it over real HTTP."""

    poll = staticmethod(poll)  # ``gateway.poll(check, timeout=5)``: tests need no import

    def __init__(
        self,
        config: GatewayConfig,
        server: uvicorn.Server,
        thread: threading.Thread,
        sock: socket.socket,
    ) -> None:
        self.config = config
        self.db_path = Path(config.db_path)
        self.root_url = f"http://127.0.0.1:{config.port}"
        self.base_url = f"{self.root_url}/api"
        self.http = httpx.Client(timeout=10)
        self.app = server.config.app  # the Starlette app; ``app.state.gateway`` is its core
        self._server = server
        self._thread = thread
        self._sock = sock
        self._db = Database(self.db_path)  # the test's own connection, like the CLI's
        self._accounts = Accounts(self._db, config.clock, config.currency)

    @classmethod
    def start(cls, db_path: Path, **overrides: Any) -> GatewayHandle:
        """Serve a new app on a free loopback port and wait until ``/healthz`` answers."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))  # bound before the server starts: no port race
        policy = overrides.pop("policy", None)  # a carrier Policy instead of fixed delays
        settings = {**TEST_DEFAULTS, **overrides}
        config = GatewayConfig(
            db_path=Path(db_path), host="127.0.0.1", port=sock.getsockname()[1], **settings
        )
        app = create_app(config, policy=policy)
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", http=GatewayHttpProtocol)
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="gateway", daemon=True
        )
        thread.start()
        handle = cls(config, server, thread, sock)
        try:
            poll(lambda: not thread.is_alive() or handle._healthy(), timeout=15)
            if not thread.is_alive():
                raise RuntimeError("the gateway thread died while starting")
        except BaseException:
            handle.stop()
            raise
        return handle

    def _healthy(self) -> bool:
        try:
            return self.http.get(f"{self.root_url}/healthz", timeout=1).json() == {"ok": True}
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self) -> None:
        """Stop the server (the lifespan stops the carrier) and release the test's handles."""
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
        self.http.close()
        self._db.close()

    # Accounts and money, straight on the database (as the command line does it).

    def create_account(
        self, email: str | None = None, balance: str = "100", currency: str = "USD"
    ) -> Account:
        email = email or f"user{next(_emails)}@example.com"
        created = self._accounts.create(email, to_micros(balance), currency)
        return Account(created["email"], created["apiKey"], created["encryptionKey"])

    def topup(self, email: str, amount: str) -> dict:
        return self._accounts.topup(email, to_micros(amount))

    def money(self, email: str) -> dict[str, int]:
        """``{balance, frozen, charged, topped_up}`` in micro-units."""
        return self._accounts.money(email)

    def books(self, email: str) -> dict[str, int]:
        """The money that the carrier cannot move: ``{balance, held, topped_up}``.

        The carrier turns frozen into charged at any moment (50 ms after a send in tests), so
        a test that compares money before and after a refusal compares these instead.
        """
        m = self.money(email)
        return {
            "balance": m["balance"],
            "held": m["frozen"] + m["charged"],
            "topped_up": m["topped_up"],
        }

    def query(self, sql: str, *params: Any) -> list[tuple]:
        """Read the gateway's database directly (e.g. ``SELECT count(*) FROM used_ivs``)."""
        with self._db.engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql, params).all()]

    # HTTP helpers: bodies sealed with kedacore.envelope.seal (never the client library).

    def seal(self, account: Account, payload: Any, **seal_kwargs: Any) -> dict:
        seal_kwargs.setdefault("api_key", account.api_key)
        return seal(payload, account.encryption_key, **seal_kwargs)

    def post_envelope(
        self, path: str, account: Account, payload: Any, **seal_kwargs: Any
    ) -> httpx.Response:
        """POST a sealed payload to ``base_url + path`` (e.g. ``/sms/send``)."""
        return self.http.post(self.base_url + path, json=self.seal(account, payload, **seal_kwargs))

    def send(self, account: Account, payload: dict, **seal_kwargs: Any) -> httpx.Response:
        return self.post_envelope("/sms/send", account, payload, **seal_kwargs)

    def get(self, path: str, account: Account | None = None, **params: Any) -> httpx.Response:
        """GET ``base_url + path`` with the account's key in ``X-Api-Key``."""
        headers = {"X-Api-Key": account.api_key} if account else {}
        return self.http.get(self.base_url + path, params=params, headers=headers)

    def balance(self, account: Account) -> dict:
        return self.get("/external/accounts/balance", account).json()["data"]

    def status(self, account: Account, msgid: str) -> dict:
        return self.get("/sms/status", account, msgid=msgid).json()["data"]

    def wait_for_status(
        self, account: Account, msgid: str, status: str = "DELIVERED", timeout: float = 5.0
    ) -> dict:
        def reached() -> dict | None:
            data = self.status(account, msgid)
            return data if data["status"] == status else None

        return poll(reached, timeout=timeout)


def start_gateway_process(
    db_path: Path | str, *extra_args: str, timeout: float = 30.0
) -> tuple[subprocess.Popen, str]:
    """Run ``python -m gateway serve --db DB --port FREE *extra_args``; wait for ``/healthz``.

    Its output goes to ``gateway-PORT.log`` beside the database. Returns the process and
    the base URL (``http://127.0.0.1:PORT/api``).
    """
    args = list(extra_args)
    port = int(args[args.index("--port") + 1]) if "--port" in args else free_port()
    if "--port" not in args:
        args = ["--port", str(port), *args]
    log_path = Path(db_path).parent / f"gateway-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--db", str(db_path), *args],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gateway_processes.append(proc)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{root}/healthz", timeout=1).json() == {"ok": True}:
                return proc, f"{root}/api"
        except (httpx.HTTPError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            output = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"python -m gateway serve did not start:\n{output}")
        time.sleep(0.05)


# Valid mobile numbers of a few countries: pattern and first value (``phone_numbers``).
NUMBER_PATTERNS: dict[str, tuple[str, int]] = {
    "US": ("+1206{:07d}", 2_000_000),
    "GB": ("+447400{:06d}", 100_000),
    "DE": ("+49151{:08d}", 100_000),
    "CN": ("+86138{:08d}", 100_000),
    "IN": ("+9198{:08d}", 100_000),
    "BR": ("+55119{:08d}", 100_000),
    "NG": ("+234803{:07d}", 100_000),
}


def phone_numbers(country: str, count: int, start: int = 0) -> list[str]:
    """``count`` distinct valid E.164 numbers of a country (``start`` shifts the range)."""
    pattern, first = NUMBER_PATTERNS[country]
    return [pattern.format(first + start + i) for i in range(count)]


class _FaultyReceiver:
    """ASGI wrapper: counts requests and, on demand, fails some of them."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0
        self.refuse = 0  # answer this many with 503 without reading them
        self.lose_answers = 0  # store this many, then answer 500 as if the answer was lost
        self.hang = 0.0  # wait this long, then answer 503 without storing anything
        self.captured: list[tuple[dict[str, str], bytes]] = []  # (headers, body) of each

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.requests += 1
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        entry = (headers, bytearray())
        self.captured.append(entry)  # type: ignore[arg-type]
        inner_receive = receive

        async def receive() -> dict:
            message = await inner_receive()
            entry[1].extend(message.get("body", b""))
            return message

        hang = self.hang
        if hang:
            await asyncio.sleep(hang)
        if self.refuse > 0 or hang:
            self.refuse = max(0, self.refuse - (not hang))
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return None
        lose = self.lose_answers > 0
        if lose:
            self.lose_answers -= 1

        async def maybe_lose(message: dict) -> None:
            if lose and message["type"] == "http.response.start":
                message = {**message, "status": 500}
            await send(message)

        return await self.app(scope, receive, maybe_lose)


class ReceiverHandle:
    """The console's callback receiver on a loopback port, writing to its own ledger."""

    poll = staticmethod(poll)

    def __init__(self, ledger: Ledger, token: str, signing_key: str | bytes | None) -> None:
        self.ledger = ledger
        self.token = token
        app = Starlette(routes=webhook_routes(ledger, token=token, signing_key=signing_key))
        self.faults = _FaultyReceiver(app)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/keda/{token}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> ReceiverHandle:
        """Listen (again) on the receiver's port; returns once it accepts connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.faults, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="receiver", daemon=True
        )
        thread.start()
        self._server, self._thread, self._sock = server, thread, sock
        poll(lambda: server.started or not thread.is_alive(), timeout=15)
        if not thread.is_alive():
            raise RuntimeError("the receiver thread died while starting")
        return self

    def stop(self) -> None:
        """Stop listening: connections to the port are refused until ``start``."""
        if self._server is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)  # type: ignore[union-attr]
        self._sock.close()
        self._server = self._thread = None

    def event_count(self) -> int:
        """Callback events in the ledger (each event id once)."""
        with self.ledger.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()

    def statuses(self) -> dict[str, str]:
        """msgid → status, for every message of the ledger."""
        with self.ledger.engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT msgid, status FROM messages").all())


# A sign-in's time (the ID token's ``iat``) for AppTest runs signed in: shortly before the tests
# started, so that it is neither in the future nor older than a session lasts (12 hours).
SIGNED_IN_AT = int(time.time()) - 600


def signed_at(offset: int = 0) -> int:
    """``SIGNED_IN_AT`` + ``offset`` seconds: distinct sign-ins of one test are distinct offsets."""
    return SIGNED_IN_AT + offset


# An [auth] section for AppTest runs signed in (``at.secrets["auth"] = dict(AUTH_SECRETS)`` and
# ``at.user = {...}``): AppTest never talks to the provider, so the addresses are never used.
AUTH_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "c" * 40,
    "client_id": "kedasms-console",
    "client_secret": "not-used-by-apptest",
    "server_metadata_url": "http://localhost:9/.well-known/openid-configuration",
}


# -- the two stores ----------------------------------------------------------------------
#
# The ledger runs on SQLite (a file) or PostgreSQL. For PostgreSQL every test gets its own
# schema in the database ``KEDA_TEST_POSTGRES_URL`` names (``CREATE SCHEMA`` costs a few
# milliseconds, a database per test would cost far more); the URL carries
# ``options=-csearch_path=<schema>`` so that everything the ledger creates without a schema
# name (tables, the audit log's trigger and its function) lands there. The fixtures over
# these are ``store`` and ``ledger_url`` in ``tests/conftest.py``.

STORES = ("sqlite", "postgresql")
POSTGRES_URL_VARIABLE = "KEDA_TEST_POSTGRES_URL"


def postgres_test_url() -> str | None:
    """The scratch PostgreSQL database the tests may use (``KEDA_TEST_POSTGRES_URL``)."""
    return os.environ.get(POSTGRES_URL_VARIABLE) or None


def in_schema(url: str, schema: str) -> str:
    """``url`` with libpq's ``options=-csearch_path=<schema>`` (psycopg passes it on)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _admin(url: str) -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def create_schema(url: str) -> str:
    """A new empty schema ``t_<hex>`` in the database ``url`` names; returns its name."""
    schema = f"t_{os.urandom(6).hex()}"
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    finally:
        engine.dispose()
    return schema


def drop_schema(url: str, schema: str) -> None:
    """``DROP SCHEMA ... CASCADE``: the tables, the trigger and its function go with it."""
    engine = _admin(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '60s'")
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        engine.dispose()


class StoreFactory:
    """``factory(name="ledger") -> url``: a new empty store for each call.

    SQLite: ``sqlite:///<folder>/<name>.db``; PostgreSQL: a new schema in
    ``KEDA_TEST_POSTGRES_URL``'s database. ``close()`` drops the schemas (call it once the
    engines over them are disposed).
    """

    def __init__(self, store: str, folder: Path) -> None:
        if store not in STORES:
            raise ValueError(f"unknown store {store!r}")
        self.store = store
        self.folder = folder
        self.schemas: list[str] = []
        self._base = postgres_test_url() if store == "postgresql" else None

    def __call__(self, name: str = "ledger") -> str:
        if self._base is None:
            return f"sqlite:///{self.folder / f'{name}.db'}"
        schema = create_schema(self._base)
        self.schemas.append(schema)
        return in_schema(self._base, schema)

    def close(self) -> None:
        assert self._base is not None or not self.schemas
        while self.schemas:
            drop_schema(self._base, self.schemas.pop())  # type: ignore[arg-type]
