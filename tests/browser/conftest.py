"""Browser tests: the real console (`streamlit run app.py`) driven by Playwright in Chromium.

Without Chromium these tests skip with the reason, except under ``CI=true``, where a missing
browser is a failure: CI installs Debian's ``chromium`` and must run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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
