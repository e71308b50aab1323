"""The command-line contracts of DESIGN.md, run as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kedacore.envelope import seal
from tests.support import REPO_ROOT, poll, start_gateway_process


def gateway_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(db: Path, email: str, *extra: str) -> dict:
    result = gateway_cli("account", "create", "--db", str(db), "--email", email, *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_clean_failure(result: subprocess.CompletedProcess) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and "error" in lines[-1].lower()


def test_account_create_prints_exactly_one_json_object(tmp_path):
    result = gateway_cli("account", "create", "--db", str(tmp_path / "g.db"), "--email", "a@b.co")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1
    data = json.loads(result.stdout)
    assert set(data) == {"email", "apiKey", "encryptionKey", "balance", "currency"}
    assert data["email"] == "a@b.co" and data["balance"] == 100 and data["currency"] == "USD"
    assert len(data["encryptionKey"]) == 44


def test_account_create_with_balance_and_currency(tmp_path):
    data = create(tmp_path / "g.db", "eu@example.com", "--balance", "12.5", "--currency", "EUR")
    assert (data["balance"], data["currency"]) == (12.5, "EUR")


def test_small_amounts_are_printed_in_fixed_notation(tmp_path):
    db = tmp_path / "g.db"
    result = gateway_cli("account", "create", "--db", str(db), "--email", "s@example.com",
                         "--balance", "0.00001")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"balance":0.00001' in result.stdout and "e-" not in result.stdout.lower()
    result = gateway_cli("account", "topup", "--db", str(db), "--email", "s@example.com",
                         "--amount", "0.00004")  # fmt: skip
    assert '"balance":0.00005' in result.stdout, result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        ["--balance", "abc"],
        ["--balance", "-5"],
        ["--balance", "0.0000001"],
        ["--currency", "EURO"],
    ],
)
def test_account_create_errors_are_one_line(tmp_path, extra):
    db = str(tmp_path / "g.db")
    assert_clean_failure(gateway_cli("account", "create", "--db", db, "--email", "x@y.co", *extra))


def test_duplicate_and_bad_email_are_clean_errors(tmp_path):
    db = tmp_path / "g.db"
    create(db, "dup@example.com")
    assert_clean_failure(
        gateway_cli("account", "create", "--db", str(db), "--email", "dup@example.com")
    )
    assert_clean_failure(gateway_cli("account", "create", "--db", str(db), "--email", "nope"))


def test_topup(tmp_path):
    db = tmp_path / "g.db"
    create(db, "t@example.com", "--balance", "1")
    result = gateway_cli(
        "account", "topup", "--db", str(db), "--email", "t@example.com", "--amount", "50"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["balance"] == 51
    for amount in ["0", "-1", "x", "1.0000001"]:
        assert_clean_failure(
            gateway_cli(
                "account", "topup", "--db", str(db), "--email", "t@example.com", "--amount", amount
            )
        )
    assert_clean_failure(
        gateway_cli(
            "account", "topup", "--db", str(db), "--email", "who@example.com", "--amount", "5"
        )
    )


def test_help_names_the_mail_outbox_and_the_options():
    top = gateway_cli("--help")
    assert top.returncode == 0 and "mail/" in top.stdout
    serve = gateway_cli("serve", "--help").stdout
    for option in [
        "--host",
        "--port",
        "--db",
        "--allow-private-callbacks",
        "--public-url",
        "--rate-limit",
        "--rate-burst",
        "--sent-delay",
        "--deliver-delay",
    ]:
        assert option in serve


def test_usage_errors_exit_non_zero_without_traceback(tmp_path):
    assert_clean_failure(gateway_cli("serve", "--port", "0", "--db", str(tmp_path / "g.db")))
    assert_clean_failure(gateway_cli("serve", "--rate-limit", "-1"))
    assert_clean_failure(gateway_cli("account", "create", "--db", str(tmp_path / "g.db")))


def _send(base_url: str, account: dict, number: str = "+12065550123") -> httpx.Response:
    body = seal(
        {"countryCode": "US", "phoneNumbers": [number], "content": "hi"},
        account["encryptionKey"],
        api_key=account["apiKey"],
    )
    return httpx.post(base_url + "/sms/send", json=body, timeout=10)


def test_serve_with_cli_accounts_and_top_ups_while_running(tmp_path):
    db = tmp_path / "g.db"
    proc, base_url = start_gateway_process(db, "--rate-limit", "0")
    try:
        account = create(db, "live@example.com", "--balance", "0.05")  # made while serving
        assert _send(base_url, account).json()["code"] == "0"
        assert _send(base_url, account, "+12065550124").json()["code"] == "3001"
        topped = gateway_cli(
            "account", "topup", "--db", str(db), "--email", "live@example.com", "--amount", "1"
        )
        assert topped.returncode == 0, topped.stderr
        assert _send(base_url, account, "+12065550124").json()["code"] == "0"
        balance = httpx.get(
            base_url + "/external/accounts/balance", headers={"X-Api-Key": account["apiKey"]}
        ).json()["data"]
        assert balance["balance"] + balance["frozen"] <= 1.05
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) is not None


def test_a_killed_gateway_resumes_from_its_database(tmp_path):
    db = tmp_path / "g.db"
    account = create(db, "crash@example.com")
    # Slow carrier: messages are still QUEUED when the process is killed.
    proc, base_url = start_gateway_process(db, "--sent-delay", "0.3", "--deliver-delay", "0.1")
    sent = _send(base_url, account).json()["data"]
    msgid = sent["messages"][0]["msgid"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    proc, base_url = start_gateway_process(db, "--sent-delay", "0.3", "--deliver-delay", "0.1")
    try:
        headers = {"X-Api-Key": account["apiKey"]}

        def delivered() -> dict | None:
            data = httpx.get(
                base_url + "/sms/status", params={"msgid": msgid}, headers=headers
            ).json()["data"]
            return data if data["status"] == "DELIVERED" else None

        assert poll(delivered, timeout=10)["cost"] == 0.05
        # The replay record survived the crash too.
        balance = httpx.get(base_url + "/external/accounts/balance", headers=headers).json()
        assert balance["data"] == {"balance": 99.95, "frozen": 0, "currency": "USD"}
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_access_log_never_shows_an_api_key(tmp_path):
    db = tmp_path / "g.db"
    account = create(db, "log@example.com")
    proc, base_url = start_gateway_process(db, "--access-log")
    try:
        httpx.get(base_url + "/external/accounts/balance", params={"apiKey": account["apiKey"]})
        httpx.get(base_url + "/sms/status", params={"apiKey": account["apiKey"], "msgid": "m"})
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    logs = "".join(p.read_text() for p in tmp_path.glob("gateway-*.log"))
    assert "/external/accounts/balance" in logs  # the access log is on
    assert account["apiKey"] not in logs and account["encryptionKey"] not in logs


def test_help_names_the_abuse_limits():
    serve = gateway_cli("serve", "--help").stdout
    for option in ["--max-tracked-urls", "--trusted-proxy", "--click-limit", "--click-window"]:
        assert option in serve


def test_abuse_limit_values_are_checked(tmp_path):
    db = str(tmp_path / "g.db")
    for bad in [
        ["--max-tracked-urls", "0"],
        ["--max-tracked-urls", "many"],
        ["--trusted-proxy", "*"],
        ["--trusted-proxy", "proxy.example.com"],
        ["--click-limit", "-1"],
        ["--click-window", "0"],
    ]:
        assert_clean_failure(gateway_cli("serve", "--db", db, *bad))


def _short_link(base_url: str, account: dict) -> tuple[str, str]:
    body = seal(
        {"url": "https://example.com/x"}, account["encryptionKey"], api_key=account["apiKey"]
    )
    data = httpx.post(base_url + "/shortlinks", json=body, timeout=10).json()["data"]
    return data["code"], data["shortUrl"]


def _unique_after_forged_clicks(base_url: str, account: dict) -> int:
    code, short_url = _short_link(base_url, account)
    for i in range(3):
        response = httpx.get(short_url, headers={"X-Forwarded-For": f"203.0.113.{i}"})
        assert response.status_code == 302
    link = httpx.get(
        f"{base_url}/shortlinks/{code}", headers={"X-Api-Key": account["apiKey"]}
    ).json()["data"]
    return link["uniqueClicks"]


def test_serve_trusts_forwarded_headers_only_from_named_proxies(tmp_path, gateway_process):
    db = tmp_path / "g.db"
    account = create(db, "proxy@example.com")
    proc, base_url = gateway_process(db)
    assert _unique_after_forged_clicks(base_url, account) == 1  # loopback, however forged
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    _proc, base_url = gateway_process(db, "--trusted-proxy", "127.0.0.1,::1")
    assert _unique_after_forged_clicks(base_url, account) == 3
