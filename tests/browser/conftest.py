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


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """`streamlit run app.py` on a free port with a fresh data folder."""
    _need_browser()
    data_dir = tmp_path_factory.mktemp("console-data")
    port = _free_port()
    log = data_dir / "streamlit.log"
    env = dict(os.environ, KEDA_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    for name in ("KEDA_API_KEY", "KEDA_ENCRYPTION_KEY", "KEDA_DATABASE_URL"):
        env.pop(name, None)
    command = (
        f"exec {sys.executable} -m streamlit run app.py --server.port {port} "
        "--server.headless true --browser.gatherUsageStats false"
    )
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the console did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)
    yield Console(url=url, data_dir=data_dir, proc=proc, log=log)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


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
