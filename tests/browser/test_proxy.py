"""nginx in front of two console replicas, in Chromium (issue 13, docs/deploy.md).

The test starts its own nginx (Debian's) with the site file docs/deploy.md shows,
docs/deploy/nginx.conf, changed only in its `listen` line and the replicas' addresses. Behind
it: two `streamlit run app.py` replicas with sign-in ([auth] through the OpenID Connect mock,
redirect_uri on the proxy, one shared cookie_secret), one PostgreSQL database, one gateway
process whose callbacks go to the proxy's /hooks/keda/ path (KEDA_CALLBACK_URL).

Shown: signing in through the proxy works, and the sign-in cookie it leaves is accepted by
each replica (the shared cookie_secret); every request of one browser reaches one replica
(sticky sessions: the page, its websocket); a send through the proxy reaches DELIVERED with
its callbacks recorded once each; a member added through the proxy is on both replicas.
Without nginx the test skips with the reason, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from .conftest import (
    ROOT,
    TEAM_ADMIN,
    Console,
    Provider,
    Replicas,
    _free_port,
    _need_browser,
    scratch_database,
    screenshot,
    sign_in,
    start_replicas,
    stop_replicas,
    wait_ready,
)

pytestmark = pytest.mark.browser

SITE = ROOT / "docs" / "deploy" / "nginx.conf"
LOG_FORMAT = '"$request_method $uri" $status $upstream_addr "$cookie_kedasms_route"'


def key(name: str) -> str:
    return f".st-key-{name}"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but nginx is not installed (apt-get install -y nginx)")
        pytest.skip("nginx is not installed: apt-get install -y nginx to run the proxy test")
    return found


def site_config(port: int, replica_ports: tuple[int, int], prefix: Path) -> str:
    """docs/deploy/nginx.conf with this test's addresses and log folder (each replaced where it
    stands)."""
    site = SITE.read_text()
    hooks_log = "/var/log/nginx/kedasms-hooks.error.log"
    swaps = [
        (hooks_log, str(prefix / "hooks-error.log"), 1),
        ("listen 80;", f"listen 127.0.0.1:{port};", 1),
        ("server 127.0.0.1:8501;", f"server 127.0.0.1:{replica_ports[0]};", 2),
        ("server 127.0.0.1:8502;", f"server 127.0.0.1:{replica_ports[1]};", 2),
    ]
    for old, new, times in swaps:
        assert site.count(old) == times, f"{SITE} no longer has {old!r} {times} time(s)"
        site = site.replace(old, new)
    return site


@dataclass
class Proxy:
    url: str
    access_log: Path
    proc: subprocess.Popen

    def requests(self) -> list[tuple[str, str, str, str]]:
        """(request, status, upstream, route cookie) of each request logged so far."""
        pattern = re.compile(r'^"([^"]*)" (\d+) (\S+) "([^"]*)"$')
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return [m.groups() for m in map(pattern.match, lines) if m]


def start_nginx(prefix: Path, port: int, replica_ports: tuple[int, int]) -> Proxy:
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "site.conf").write_text(site_config(port, replica_ports, prefix))
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach tmp_path
    (prefix / "nginx.conf").write_text(
        f"""{user}daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    log_format replicas '{LOG_FORMAT}';
    access_log {prefix / "access.log"} replicas;
{temp}
    include {prefix / "site.conf"};
}}
"""
    )
    check = subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).is_success:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            error_log = (prefix / "error.log").read_text()[-3000:]
            pytest.fail(f"nginx did not start:\n{error_log}")
        time.sleep(0.1)
    return Proxy(url, prefix / "access.log", proc)


@pytest.fixture(scope="module")
def behind_proxy(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: Provider
) -> Iterator[tuple[Proxy, Replicas]]:
    _need_browser()
    nginx_binary()
    root = tmp_path_factory.mktemp("proxy")
    port = _free_port()
    auth = f"""
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "{"shared-c00kie-secret-" * 2}"
client_id = "kedasms-console"
client_secret = "client-secret-for-tests"
server_metadata_url = "{oidc_provider.url}/.well-known/openid-configuration"

[team]
admins = ["{TEAM_ADMIN}"]
"""
    with scratch_database("proxy") as url:
        replicas = start_replicas(
            root,
            url,
            callback_url=lambda _a, _b, token: f"http://127.0.0.1:{port}/hooks/keda/{token}",
            auth=lambda _port: auth,
        )
        try:
            ports = tuple(int(c.url.rsplit(":", 1)[1]) for c in replicas.consoles)
            proxy = start_nginx(root / "nginx", port, ports)  # type: ignore[arg-type]
            try:
                yield proxy, replicas
            finally:
                proxy.proc.terminate()
                proxy.proc.wait(timeout=15)
        finally:
            stop_replicas(replicas)


def sql(replicas: Replicas, query: str, **params: object) -> list[tuple]:
    engine = create_engine(replicas.database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query), params).all()]
    finally:
        engine.dispose()


def through(proxy: Proxy, replicas: Replicas) -> Console:
    """The proxy as a Console for the conftest helpers (sign_in uses only its url)."""
    return Console(proxy.url, replicas.a.data_dir, replicas.a.proc, replicas.a.log)


def pin(context, proxy: Proxy, console: Console) -> None:
    """Give the browser a route cookie that nginx hashes to ``console``'s replica."""
    port = console.url.rsplit(":", 1)[1]
    for _ in range(64):
        value = secrets.token_hex(8)
        httpx.get(f"{proxy.url}/_stcore/health", cookies={"kedasms_route": value}, timeout=5)
        if proxy.requests()[-1][2].endswith(f":{port}"):
            context.add_cookies([{"name": "kedasms_route", "value": value, "url": proxy.url}])
            return
    raise AssertionError(f"no route cookie leads to {console.url}")


def test_sign_in_send_and_status_through_nginx(behind_proxy, browser) -> None:
    proxy, replicas = behind_proxy
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        sign_in(page, through(proxy, replicas), TEAM_ADMIN)  # the websocket works through nginx
        route = next(c["value"] for c in context.cookies() if c["name"] == "kedasms_route")

        page.goto(proxy.url)
        wait_ready(page)
        numbers = page.locator(f"{key('send_numbers')} textarea")
        numbers.fill("+12015550123")
        numbers.press("Control+Enter")
        page.get_by_text("1 valid recipient").wait_for()
        box = page.locator(f"{key('send_content')} textarea")
        box.fill("Through the proxy")
        box.press("Control+Enter")
        wait_ready(page)
        page.locator(f"{key('send_submit')} button").click()
        page.get_by_role("dialog").locator(f"{key('send_confirm')} button").click()
        page.get_by_text(re.compile(r"Sent — task \d{8}-\d{4}")).wait_for()
        wait_ready(page)
        listing = page.locator('[data-testid="stCode"]').first.inner_text()
        msgid = re.search(r"msg_[0-9a-f]{12,}", listing).group(0)

        page.goto(f"{proxy.url}/status")
        wait_ready(page)
        query = page.locator(f"{key('status_query')} input")
        query.fill(msgid)
        query.press("Enter")
        page.get_by_role("heading", name=re.compile("DELIVERED")).wait_for(timeout=30_000)
        wait_ready(page)
        screenshot(page, "proxy-status")

        # Its callbacks came through the proxy's /hooks/keda/ and are in the ledger once each.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            events = sql(replicas, "SELECT status FROM events WHERE msgid = :m", m=msgid)
            if len(events) >= 2:
                break
            time.sleep(0.2)
        assert sorted(s for (s,) in events) == ["DELIVERED", "SENT"]

        # Sticky: every request of this browser carrying its route cookie reached one replica.
        mine = [r for r in proxy.requests() if r[3] == route]
        assert any(r[0].startswith("GET /_stcore/stream") and r[1] == "101" for r in mine), mine
        assert len({r[2] for r in mine}) == 1, mine
    finally:
        context.close()


def test_the_sign_in_cookie_and_a_new_member_are_good_on_both_replicas(
    behind_proxy, browser
) -> None:
    proxy, replicas = behind_proxy
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        sign_in(page, through(proxy, replicas), TEAM_ADMIN)
        page.goto(f"{proxy.url}/members")
        wait_ready(page)
        page.locator(f"{key('members_invite_email')} input").fill("ops@example.com")
        roles = page.locator(f"{key('members_invite_roles')}")
        roles.locator("input").click()
        page.get_by_role("option", name=re.compile("^Support")).click()
        page.keyboard.press("Escape")
        page.locator(f"{key('members_invite')} button").click()
        wait_ready(page)
        page.get_by_text(re.compile("ops@\u2060?example.com is a member now")).wait_for()

        # The browser moved to the other replica (its own went away, or the proxy's hash
        # changed): Streamlit's sign-in cookie, signed with the shared cookie_secret, is good
        # there too — and so on each replica in turn, each listing the new member.
        for console in replicas.consoles:
            pin(context, proxy, console)
            page.goto(f"{proxy.url}/members")
            wait_ready(page)
            assert page.get_by_role("button", name="Sign in").count() == 0
            page.get_by_role("heading", name="Members", exact=True).wait_for()
            page.get_by_text(re.compile("ops@\u2060?example.com")).first.wait_for(state="attached")
            served = [r for r in proxy.requests() if r[0] == "GET /members"][-1]
            assert served[2].endswith(console.url.rsplit(":", 1)[1]), served
        screenshot(page, "proxy-members-on-replica")
    finally:
        context.close()
