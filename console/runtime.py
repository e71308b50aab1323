"""The console's process-wide runtime: settings, ledger, client and, in sandbox mode, the gateway.

One :class:`Runtime` per configuration (data folder, mode, addresses), built on first use
and shared by everything in the process: the ASGI import of ``app.py`` (the webhook
receiver) and every script run of every browser session. No Streamlit here, so tests and
the server use it the same way.

Sandbox mode: the gateway runs under uvicorn in a daemon thread on a loopback port (8787
when free; the port is remembered in the data folder so that short links stay valid across
restarts), its database in the data folder, and a sandbox account is created on first start
(credentials in ``sandbox_account.json``, mode 0600; recreated if the gateway database was
deleted). Live mode: only the client, pointed at the configured service.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from kedacore import AsyncKedaClient, KedaClient, KedaError
from kedacore.ledger import Ledger
from kedacore.money import to_micros
from kedacore.notify import Notifier
from kedacore.notify import interval as notify_interval
from kedacore.private import private_dir, secure_data_folder, write_private
from kedacore.settings import LIVE, SANDBOX, Settings

log = logging.getLogger("console.runtime")

PREFERRED_PORT = 8787
SANDBOX_EMAIL = "sandbox@console.local"
SANDBOX_BALANCE = "100"
SANDBOX_CURRENCY = "USD"
ACCOUNT_FILE = "sandbox_account.json"
PORT_FILE = "sandbox_port"
GATEWAY_DB = "gateway.db"
START_TIMEOUT = 20.0


class RuntimeStartError(Exception):
    """The console could not start (the message says what to do); nothing is half-running."""


def sandbox_carrier() -> dict[str, Any]:
    """How the embedded sandbox gateway's carrier treats messages (``GatewayConfig`` fields).

    SANDBOX CARRIER POLICY — the one place the sandbox chooses it. By default the gateway's
    ``realistic`` profile: a few seconds to SENT and to the final status, and a few percent
    FAILED and UNDELIVERED, so a new user sees every outcome. ``KEDA_SANDBOX_CARRIER=
    deterministic`` delivers everything (SENT after 0.5 s, DELIVERED 1 s later): the tests
    use it. The magic numbers behave the same under either.
    """
    profile = os.environ.get("KEDA_SANDBOX_CARRIER", "realistic").strip().lower()
    if profile == "deterministic":
        return {"carrier_profile": "deterministic", "sent_delay": 0.5, "deliver_delay": 1.0}
    if profile != "realistic":
        raise RuntimeStartError(
            f"KEDA_SANDBOX_CARRIER={profile!r} is not a carrier profile: "
            "use 'realistic' (the default) or 'deterministic'"
        )
    return {"carrier_profile": "realistic"}


@dataclass(frozen=True)
class SandboxAccount:
    """The sandbox account the console sends with (its keys never shown whole)."""

    email: str
    api_key: str = field(repr=False)
    encryption_key: str = field(repr=False)


def _bind(port: int) -> socket.socket | None:
    """A listening-ready socket on 127.0.0.1:port, or None when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    return sock


class SandboxGateway:
    """The gateway served by uvicorn in a daemon thread, with its database in the data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.db_path = data_dir / GATEWAY_DB
        self.port = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.root_url}/api"

    @property
    def mail_folder(self) -> Path:
        return self.data_dir / "mail"

    def _socket(self) -> socket.socket:
        # The remembered port first: short links already sent point at it.
        port_file = self.data_dir / PORT_FILE
        remembered = None
        with contextlib.suppress(OSError, ValueError):
            remembered = int(port_file.read_text().strip())
        for port in dict.fromkeys(p for p in (remembered, PREFERRED_PORT) if p):
            sock = _bind(port)
            if sock is not None:
                break
            log.warning("port %s is taken; trying another for the sandbox gateway", port)
        else:
            sock = _bind(0)
            if sock is None:
                raise RuntimeStartError("No free loopback port for the sandbox gateway.")
        write_private(port_file, str(sock.getsockname()[1]))
        return sock

    def start(self) -> None:
        """Serve the gateway and wait until ``/healthz`` answers."""
        import uvicorn

        from gateway import GatewayConfig, create_app
        from gateway.server import GatewayHttpProtocol

        private_dir(self.data_dir)
        self._sock = self._socket()
        self.port = self._sock.getsockname()[1]
        config = GatewayConfig(
            db_path=self.db_path,
            host="127.0.0.1",
            port=self.port,
            allow_private_callbacks=True,  # callbacks go to this console on loopback
            **sandbox_carrier(),
        )
        app = create_app(config)
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="on",
                access_log=False,
                # As `python -m gateway serve`: an h2c upgrade offer keeps its body (Java's
                # HttpClient, curl --http2), and no forwarding header is believed (the
                # sandbox has no proxy in front of it).
                http=GatewayHttpProtocol,
                proxy_headers=False,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"sandbox-gateway-{self.port}",
            daemon=True,  # the process may end without asking: SQLite keeps every commit
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._healthy():
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeStartError(
                    f"The sandbox gateway did not start (database {self.db_path}). "
                    "Check that the data folder is writable, then restart the console."
                )
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.root_url}/healthz", timeout=1).json() == {"ok": True}
        except (httpx.HTTPError, ValueError):
            return False

    def stop(self) -> None:
        """Stop serving (the app's lifespan stops the carrier)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def _accounts(self) -> tuple[Any, Any]:
        from gateway.accounts import Accounts
        from gateway.db import Database

        # Its own connection, as the command line has: safe beside the serving thread.
        db = Database(self.db_path)
        return db, Accounts(db, clock=time.time)

    def ensure_account(self) -> SandboxAccount:
        """The sandbox account from the data folder; created (again) when the gateway lacks it."""
        path = self.data_dir / ACCOUNT_FILE
        saved: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError):
            saved = json.loads(path.read_text())
        db, accounts = self._accounts()
        try:
            if saved.get("apiKey") and accounts.by_api_key(saved["apiKey"]) is not None:
                return SandboxAccount(saved["email"], saved["apiKey"], saved["encryptionKey"])
            # First start, or the gateway database was deleted: a new account. Its e-mail
            # must be new to the database, which may still hold an account whose keys are lost.
            from gateway.accounts import AccountError

            for n in range(1, 1000):
                email = SANDBOX_EMAIL if n == 1 else SANDBOX_EMAIL.replace("@", f"+{n}@")
                try:
                    created = accounts.create(email, to_micros(SANDBOX_BALANCE), SANDBOX_CURRENCY)
                    break
                except AccountError:
                    continue
            else:  # pragma: no cover - a thousand lost sandbox accounts
                raise RuntimeStartError(f"Could not create a sandbox account in {self.db_path}.")
        finally:
            db.close()
        keys = {k: created[k] for k in ("email", "apiKey", "encryptionKey")}
        write_private(path, json.dumps(keys))
        log.info("sandbox account %s created with %s %s", keys["email"], SANDBOX_BALANCE, "USD")
        return SandboxAccount(keys["email"], keys["apiKey"], keys["encryptionKey"])

    def topup(self, email: str, amount: Decimal) -> dict:
        """Add money to a sandbox account (as ``python -m gateway account topup`` does)."""
        from gateway.accounts import AccountError

        db, accounts = self._accounts()
        try:
            return accounts.topup(email, to_micros(amount))
        except AccountError as exc:
            raise ValueError(str(exc)) from None
        finally:
            db.close()

    def verification_token(self, email: str) -> str | None:
        """The token of the newest verification mail to ``email`` in the mail outbox."""
        slug = re.sub(r"[^A-Za-z0-9@._-]", "_", email.strip().lower())[:80]
        mails = sorted(self.mail_folder.glob(f"*-{slug}.txt"))
        if not mails:
            return None
        found = re.search(r"Verification token: (\S+)", mails[-1].read_text(encoding="utf-8"))
        return found.group(1) if found else None


def settings_key(settings: Settings) -> str:
    """What makes two configurations the same runtime (the API key only as a digest)."""
    parts = [
        str(settings.data_dir.resolve()),
        settings.mode,
        settings.base_url,
        settings.backup_url,
        settings.ledger_url,
        hashlib.sha256((settings.api_key or "").encode()).hexdigest()[:16],
    ]
    return "|".join(parts)


class Runtime:
    """Everything a page needs that outlives a script run; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = settings_key(settings)
        self.gateway: SandboxGateway | None = None
        self.account: SandboxAccount | None = None
        self.ledger: Ledger | None = None
        self.client: KedaClient | None = None
        self.probe: KedaClient | None = None
        self._receiver: Callable[[Any], Awaitable[Any]] | None = None
        self.notifier: Notifier | None = None  # notifications: see _start_notifier
        self.closed = threading.Event()  # set by close(): its background threads end
        self.schedule_watch: threading.Thread | None = None  # campaign_schedule.wake_once
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        settings = self.settings
        try:
            # 0700, and every file in it 0600: it holds keys (also a folder made before)
            secure_data_folder(settings.data_dir)
        except OSError as exc:
            raise RuntimeStartError(
                f"The data folder {settings.data_dir} cannot be created ({exc.strerror}). "
                "Set KEDA_DATA_DIR to a writable folder."
            ) from None
        try:
            self.ledger = Ledger(settings.ledger_url)
        except Exception as exc:  # SQLAlchemy: a bad URL, a missing driver, no server
            raise RuntimeStartError(
                f"The ledger database cannot be opened ({type(exc).__name__}). "
                "Check KEDA_DATABASE_URL (or leave it unset for a SQLite file in the data folder)."
            ) from None
        if self.mode == SANDBOX:
            self.gateway = SandboxGateway(settings.data_dir)
            try:
                self.gateway.start()
                self.account = self.gateway.ensure_account()
            except RuntimeStartError:
                raise
            except Exception as exc:  # a broken gateway install or database: say so, log why
                log.exception("the sandbox gateway could not start")
                raise RuntimeStartError(
                    f"The sandbox gateway could not start ({type(exc).__name__}: {exc}). "
                    f"Check the data folder {settings.data_dir} and the server log, then "
                    "restart the console."
                ) from None
        try:
            self.client = KedaClient(
                self.api_key,
                self.encryption_key,
                base_url=self.base_url,
                backup_url=self.backup_url,
            )
            # The sidebar's look at balance and usage: an unreachable service should say
            # so at once on every page, not after the retries an action deserves.
            self.probe = KedaClient(
                self.api_key,
                self.encryption_key,
                base_url=self.base_url,
                backup_url=self.backup_url,
                timeout=5.0,
                max_retries=0,
            )
        except KedaError as exc:  # ConfigurationError: an unusable key or address
            raise RuntimeStartError(
                f"{exc}. Fix it in the environment or in the [keda] section of "
                ".streamlit/secrets.toml, then restart the console."
            ) from None
        self._start_notifier()

    # -- notifications (kedacore.notify) -------------------------------------------------------

    def _start_notifier(self) -> None:
        """The notifier's daemon thread: every KEDA_NOTIFY_INTERVAL seconds (15; 0 = off) it
        looks at the ledger and the account and delivers what is due. It waits for the
        console to give it its secrets (``console.finance.notifications.configure``)."""
        self.notifier = Notifier(self.ledger, client=self.probe, interval=notify_interval())
        self.notifier.start()

    @property
    def mode(self) -> str:
        return self.settings.mode

    @property
    def api_key(self) -> str | None:
        return self.account.api_key if self.account else self.settings.api_key

    @property
    def encryption_key(self) -> str | None:
        return self.account.encryption_key if self.account else self.settings.encryption_key

    @property
    def base_url(self) -> str:
        return self.gateway.api_url if self.gateway else self.settings.base_url

    @property
    def backup_url(self) -> str:
        return self.gateway.api_url if self.gateway else self.settings.backup_url

    @property
    def short_link_base(self) -> str:
        """Where short links point (the sandbox gateway, or the service's own host)."""
        if self.gateway:
            return self.gateway.root_url
        url = httpx.URL(self.settings.base_url)
        return f"{url.scheme}://{url.netloc.decode()}"

    def receiver_url(self, port: int) -> str:
        """This console's callback receiver, served by the Streamlit server on ``port``."""
        return f"http://127.0.0.1:{port}/hooks/keda/{self.settings.webhook_token}"

    def callback_url(self, port: int) -> str:
        """Where the service should post callbacks: KEDA_CALLBACK_URL, else this receiver."""
        return self.settings.callback_url or self.receiver_url(port)

    def async_client(self) -> AsyncKedaClient:
        """A new AsyncKedaClient (one per event loop: use it in ``async with`` and close it)."""
        return AsyncKedaClient(
            self.api_key, self.encryption_key, base_url=self.base_url, backup_url=self.backup_url
        )

    async def receive(self, request: Any) -> Any:
        """Handle one callback request (the receiver of ``kedacore.webhooks``)."""
        if self._receiver is None:
            from kedacore.webhooks import webhook_routes

            assert self.ledger is not None
            route = webhook_routes(
                self.ledger, token=self.settings.webhook_token, signing_key=self.encryption_key
            )[0]
            self._receiver = route.endpoint
        return await self._receiver(request)

    def close(self) -> None:
        """Stop the sandbox gateway and release the client and the ledger."""
        self.closed.set()
        if self.notifier is not None:  # first: it uses the client and the ledger
            self.notifier.stop()
        for client in (self.client, self.probe):
            if client is not None:
                client.close()
        if self.gateway is not None:
            self.gateway.stop()
        if self.ledger is not None:
            self.ledger.close()


_lock = threading.Lock()
_runtimes: dict[str, Runtime] = {}


def runtime(settings: Settings) -> Runtime:
    """The runtime of these settings, started on first use (thread-safe, one per process)."""
    key = settings_key(settings)
    with _lock:
        found = _runtimes.get(key)
        if found is None:
            found = _runtimes[key] = Runtime(settings)
        return found


def running(settings: Settings) -> bool:
    """Whether the runtime of these settings has been started already."""
    return settings_key(settings) in _runtimes


def reset() -> None:
    """Stop every runtime (server shutdown; tests between two data folders)."""
    with _lock:
        items = list(_runtimes.values())
        _runtimes.clear()
    for item in items:
        item.close()


__all__ = [
    "LIVE",
    "SANDBOX",
    "Runtime",
    "RuntimeStartError",
    "SandboxAccount",
    "SandboxGateway",
    "reset",
    "running",
    "runtime",
    "sandbox_carrier",
]
