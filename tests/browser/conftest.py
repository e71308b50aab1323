"""Browser tests: the real console (`streamlit run app.py`) driven by Playwright in Chromium.

Without Chromium these tests skip with the reason, except under ``CI=true``, where a missing
browser is a failure: CI installs Debian's ``chromium`` and must run them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _need_browser() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is not installed (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed: apt-get install -y chromium to run browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Playwright is not installed (requirements-dev.txt)")
        pytest.skip("Playwright is not installed: pip install -r requirements-dev.txt")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Console:
    url: str
    data_dir: Path
    proc: subprocess.Popen
    log: Path


def start_console(
    data_dir: Path, *extra: str, host: str = "127.0.0.1", port: int | None = None
) -> Console:
    """`streamlit run app.py` on a free port with ``data_dir`` as its data folder."""
    port = port or _free_port()
    log = data_dir / "streamlit.log"
    env = dict(os.environ, KEDA_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_DATABASE_URL"):
        env.pop(name, None)
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", *extra,
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the console did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    return Console(url=url, data_dir=data_dir, proc=proc, log=log)


def stop_console(console: Console) -> None:
    console.proc.terminate()
    try:
        console.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        console.proc.kill()


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`streamlit run app.py` on a free port with a fresh data folder (no sign-in)."""
    _need_browser()
    running = start_console(tmp_path_factory.mktemp("console-data"))
    yield running
    stop_console(running)


@pytest.fixture(scope="module")
def browser():
    path = _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    yield tab
    context.close()


def wait_ready(page) -> None:
    """Wait until the script run has finished (Streamlit's own marker)."""
    page.wait_for_selector(READY, timeout=60_000)


# Notes on the page whether a script run has started since it was set up (any change of the
# app's run state: "running" can come and go between two polls of the test).
_WATCH_RUN = """() => {
  const app = document.querySelector('[data-testid=stApp]');
  window.__kedaRunSeen = false;
  new MutationObserver((_, watcher) => { window.__kedaRunSeen = true; watcher.disconnect(); })
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def after_run(page, action) -> None:
    """Do ACTION (which must start a script run) and wait until that run has finished.

    ``wait_ready`` alone can return before the run an action asks for has even begun, and a
    click made then may land while the page is being redrawn.
    """
    page.evaluate(_WATCH_RUN)
    action()
    page.wait_for_function("() => window.__kedaRunSeen", timeout=60_000)
    wait_ready(page)


def screenshot(page, name: str) -> Path:
    """Save a screenshot of the whole page as a test artifact (test-artifacts/NAME.png).

    Streamlit scrolls inside its main container, so a full-page shot alone would cut the
    page at the window's height: the window is made as tall as the content for the shot.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain],"
        " [data-testid=stSidebarContent]')].map(e => e.scrollHeight), 0)"
    )
    tall = max(size["height"], min(int(height) + 40, 8000))
    if tall != size["height"]:
        page.set_viewport_size({"width": size["width"], "height": tall})
        page.wait_for_timeout(300)  # let the layout settle
    page.screenshot(path=str(path), full_page=True)
    if tall != size["height"]:
        page.set_viewport_size(size)
    return path


# -- sign-in: a real OpenID Connect provider on loopback, and a console that uses it ----------


@dataclass
class Provider:
    """oidc-provider-mock serving on loopback: its sign-in form takes any e-mail as subject."""

    url: str

    def user(self, email: str, **claims: object) -> None:
        """Give ``email`` its claims (name, email_verified…) for its next sign-in."""
        body = {"email": email, "email_verified": True, **claims}
        httpx.put(f"{self.url}/users/{email}", json=body, timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[Provider]:
    _need_browser()
    from oidc_provider_mock import run_server_in_thread

    # The provider speaks plain HTTP on loopback; Authlib refuses that unless told.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        with run_server_in_thread(require_nonce=True) as server:
            yield Provider(f"http://localhost:{server.server_port}")


TEAM_ADMIN = "boss@example.com"


@pytest.fixture(scope="module")
def team_console(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: Provider
) -> Iterator[Console]:
    """The console with sign-in configured ([auth] through the provider; boss@ an admin)."""
    data_dir = tmp_path_factory.mktemp("team-console")
    port = _free_port()
    secrets = data_dir / "secrets.toml"
    secrets.write_text(
        f"""
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "{"c0ok1e-secret-" * 3}"
client_id = "kedasms-console"
client_secret = "client-secret-for-tests"
server_metadata_url = "{oidc_provider.url}/.well-known/openid-configuration"

[team]
admins = ["{TEAM_ADMIN}"]
"""
    )
    secrets.chmod(0o600)
    running = start_console(data_dir, "--secrets.files", str(secrets), host="localhost", port=port)
    yield running
    stop_console(running)


def sign_in(page, console: Console, email: str) -> None:
    """Sign ``email`` in through the provider's form and wait for the console's first page."""
    page.goto(console.url)
    wait_ready(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector('input[name="sub"]')
    page.fill('input[name="sub"]', email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{console.url}/**")
    wait_ready(page)


def sign_out(page, console: Console, button: str = "Sign out") -> None:
    """Press the console's ``button`` and confirm at the provider's end-session page."""
    page.get_by_role("button", name=button).first.click()
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{console.url}/**")
    wait_ready(page)


# -- replicas: two consoles on one PostgreSQL database and one gateway process ----------------


@contextmanager
def scratch_database(suffix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database beside the one KEDA_TEST_POSTGRES_URL names, dropped
    at the end; its URL. Skips (fails under CI=true) without KEDA_TEST_POSTGRES_URL."""
    url = os.environ.get("KEDA_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but KEDA_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        pytest.skip("KEDA_TEST_POSTGRES_URL is not set: the replicas share a PostgreSQL database")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{suffix}_{os.getpid()}"
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    drop = text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        with admin.connect() as conn:
            conn.execute(drop)
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(drop)
        admin.dispose()


@dataclass
class Replicas:
    """Two consoles (``a``, ``b``) in live mode against one gateway process, one database."""

    a: Console
    b: Console
    gateway_url: str  # http://127.0.0.1:PORT/api
    gateway_db: Path
    account: dict  # email, apiKey, encryptionKey (as `python -m gateway account create` prints)
    token: str  # the webhook token both share
    database_url: str

    @property
    def consoles(self) -> tuple[Console, Console]:
        return self.a, self.b

    def settled_sms_usage(self, timeout: float = 60.0) -> int:
        """Today's SMS usage as the gateway counts it, once no message waits for its first
        answer: a QUEUED message that fails leaves the usage (and reaches the ledger only with
        its callback, later), so counting before then can overshoot."""
        import sqlite3

        deadline = time.monotonic() + timeout
        while True:
            with contextlib.closing(sqlite3.connect(self.gateway_db)) as db:
                (queued,) = db.execute(
                    "SELECT count(*) FROM messages WHERE status = 'QUEUED'"
                ).fetchone()
                (used,) = db.execute(
                    "SELECT coalesce(sum(sms_sent), 0) FROM daily_usage"
                    " WHERE day = (SELECT max(day) FROM messages)"
                ).fetchone()
            if not queued:
                return int(used)
            assert time.monotonic() < deadline, f"{queued} message(s) still QUEUED"
            time.sleep(0.2)

    def outbox(self, msgid: str) -> list[tuple[str, str, str, str, str]]:
        """The gateway's callbacks for ``msgid``: (event_id, status, body, url, state), oldest
        first (read from its database, as `python -m gateway outbox` does)."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.gateway_db)) as db:
            return db.execute(
                "SELECT event_id, status, body, url, state FROM outbox WHERE msgid = ? ORDER BY id",
                (msgid,),
            ).fetchall()


def replica_secrets(
    path: Path,
    *,
    account: dict,
    gateway_url: str,
    database_url: str,
    token: str,
    callback_url: str | None = None,
    auth: str = "",
) -> Path:
    """A replica's .streamlit/secrets.toml: the [keda] section every replica shares (plus
    ``auth``: [auth] and [team] sections, the same on every replica too)."""
    lines = [
        "[keda]",
        f'keda_api_key = "{account["apiKey"]}"',
        f'keda_encryption_key = "{account["encryptionKey"]}"',
        f'keda_base_url = "{gateway_url}"',
        f'keda_backup_url = "{gateway_url}"',
        f'keda_database_url = "{database_url}"',
        f'keda_webhook_token = "{token}"',
    ]
    if callback_url:
        lines.append(f'keda_callback_url = "{callback_url}"')
    path.write_text("\n".join(lines) + "\n" + auth)
    path.chmod(0o600)
    return path


def start_replicas(
    root: Path,
    database_url: str,
    *,
    callback_url: Callable[[int, int, str], str] | None = None,
    auth: Callable[[int], str] | None = None,
    ports: tuple[int, int] | None = None,
) -> Replicas:
    """A gateway process (`python -m gateway serve`, an account made on it with the CLI) and
    two `streamlit run app.py` replicas on it and on ``database_url``, started one after the
    other (the first creates the ledger's tables). ``callback_url(port_a, port_b, token)``:
    the KEDA_CALLBACK_URL both use; ``auth(port)``: the [auth]/[team] sections of a replica.
    Stop it with :func:`stop_replicas`."""
    from tests.support import start_gateway_process

    (root / "gateway").mkdir(parents=True, exist_ok=True)
    gateway_db = root / "gateway" / "gateway.db"
    proc, gateway_url = start_gateway_process(
        gateway_db, "--rate-limit", "0", "--allow-private-callbacks",
        "--sent-delay", "0.5", "--deliver-delay", "1.5",
    )  # fmt: skip
    made = subprocess.run(
        [sys.executable, "-m", "gateway", "account", "create", "--db", str(gateway_db),
         "--email", "team@example.com", "--balance", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    account = json.loads(made.stdout)
    token = secrets.token_urlsafe(24)
    port_a, port_b = ports or (_free_port(), _free_port())
    hook = callback_url(port_a, port_b, token) if callback_url else None
    started: list[Console] = []
    try:
        for name, port in (("a", port_a), ("b", port_b)):
            data_dir = root / f"replica-{name}"
            data_dir.mkdir()
            secrets_file = replica_secrets(
                data_dir / "secrets.toml", account=account, gateway_url=gateway_url,
                database_url=database_url, token=token, callback_url=hook,
                auth=auth(port) if auth else "",
            )  # fmt: skip
            host = "localhost" if auth else "127.0.0.1"
            started.append(
                start_console(data_dir, "--secrets.files", str(secrets_file), host=host, port=port)
            )
    except BaseException:
        for console in started:
            stop_console(console)
        proc.kill()
        raise
    replicas = Replicas(
        started[0], started[1], gateway_url, gateway_db, account, token, database_url
    )
    replicas._gateway = proc  # type: ignore[attr-defined]
    return replicas


def stop_replicas(replicas: Replicas) -> None:
    for console in replicas.consoles:
        stop_console(console)
    proc = replicas._gateway  # type: ignore[attr-defined]
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
