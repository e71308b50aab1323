"""The console's plain functions (console/views.py, console/messaging/lookup.py) and its runtime."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from console import runtime as _runtime
from console.messaging.lookup import classify, parse_msgids
from console.views import estimate_send, headroom, local_time, money, utc_iso, zone
from kedacore.api.types import Alert, Balance, Limits, Usage
from kedacore.settings import load_settings


def test_money_is_exact_with_its_currency() -> None:
    assert money(Decimal("100"), "USD") == "100.00 USD"
    assert money(Decimal("0.0480"), "USD") == "0.048 USD"
    assert money(Decimal("99.952"), "EUR") == "99.952 EUR"
    assert money(Decimal("0"), "USD") == "0.00 USD"
    assert money(None, "USD") == "—"


def test_times_are_local_on_screen_and_utc_in_exports() -> None:
    when = datetime(2026, 1, 31, 23, 30, 5, tzinfo=UTC)
    assert local_time(when, zone("Asia/Shanghai")) == "2026-02-01 07:30:05"
    assert local_time(when, zone(None)) == "2026-01-31 23:30:05"
    assert local_time(when, zone("Not/AZone")) == "2026-01-31 23:30:05"
    assert utc_iso(when) == "2026-01-31T23:30:05Z"


def test_the_estimate_is_the_service_price() -> None:
    est = estimate_send("a" * 161, recipients=3, price_per_segment=Decimal("0.048"), currency="USD")
    assert (est.encoding, est.segments, est.total) == ("GSM-7", 2, Decimal("0.288"))
    ucs2 = estimate_send("你好", recipients=1, price_per_segment=Decimal("0.05"), currency="USD")
    assert ucs2.encoding == "UCS-2" and ucs2.ucs2_characters == ("你", "好")


def test_track_click_counts_the_shortened_links() -> None:
    text = "Offer: https://example.com/" + "x" * 200
    plain = estimate_send(text, recipients=1, price_per_segment=Decimal("1"), currency="USD")
    tracked = estimate_send(
        text,
        recipients=1,
        price_per_segment=Decimal("1"),
        currency="USD",
        track_click=True,
        short_base="http://127.0.0.1:8787",
    )
    assert plain.segments == 2 and tracked.segments == 1 and tracked.urls_rewritten == 1


def _limits(sms_cap: int | None, spend_cap: str | None, sent: int, spend: str) -> Limits:
    return Limits(
        daily_sms_cap=sms_cap,
        daily_spend_cap=Decimal(spend_cap) if spend_cap else None,
        alert_threshold=Decimal("0.8"),
        block_on_limit=True,
        usage=Usage("2026-01-31", sent, Decimal(spend), Decimal(0)),
        alert=Alert(False, None),
    )


def test_headroom_names_every_reason_a_send_would_not_fit() -> None:
    wallet = Balance(Decimal("1"), Decimal("0"), "USD")
    room = headroom(_limits(10, "2", 8, "1.5"), wallet, 3, Decimal("1.2"))
    assert (room.sms_left, room.spend_left) == (2, Decimal("0.5"))
    assert len(room.problems) == 3 and not room.fits
    assert headroom(_limits(None, None, 0, "0"), wallet, 3, Decimal("1")).fits


def test_queries_are_recognised() -> None:
    assert classify("msg_0123456789ab", "US").kind == "msgid"
    assert classify(" 20260131-0001 ", "US").kind == "task"
    assert classify("(201) 555-0123", "US").value == "+12015550123"
    assert classify("+8613800138000", "US").value == "+8613800138000"  # E.164: any country
    assert classify("msg_XYZ", "US").kind == "invalid"
    assert "not a msgid" in classify("hello", "US").problem


def test_msgid_lists_come_pasted_or_as_csv() -> None:
    ids, rejected = parse_msgids("msg_0123456789ab, msg_0123456789ac\nmsg_0123456789ab junk")
    assert ids == ["msg_0123456789ab", "msg_0123456789ac"] and rejected == ["junk"]
    csv_ids, csv_rejected = parse_msgids(
        "msgid,recipient\nmsg_0123456789ab,+12015550123\nmsg_bad,+1\n"
    )
    assert csv_ids == ["msg_0123456789ab"] and csv_rejected == ["msg_bad"]


# The runtime tests below are about the data folder's sandbox files (account, port, gateway
# database): SQLite only, the ledger in that folder as by default.
def test_the_sandbox_survives_a_restart_and_a_lost_gateway_database(tmp_path: Path) -> None:
    settings = load_settings(None, {"KEDA_DATA_DIR": str(tmp_path)})
    try:
        first = _runtime.runtime(settings)
        assert _runtime.runtime(settings) is first
        account, port = first.account, first.gateway.port
        creds = tmp_path / _runtime.ACCOUNT_FILE
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        assert json.loads(creds.read_text())["email"] == account.email
        balance = first.client.account.balance()
        assert balance.balance == Decimal(_runtime.SANDBOX_BALANCE)
        _runtime.reset()

        again = _runtime.runtime(settings)  # a restart: same account, same port
        assert again is not first
        assert (again.account, again.gateway.port) == (account, port)
        _runtime.reset()

        (tmp_path / _runtime.GATEWAY_DB).unlink()
        fresh = _runtime.runtime(settings)  # the gateway lost it: a new sandbox account
        assert fresh.account.api_key != account.api_key
        assert fresh.client.account.balance().balance == Decimal(_runtime.SANDBOX_BALANCE)
    finally:
        _runtime.reset()


def test_the_sandbox_takes_another_port_when_its_own_is_busy(tmp_path: Path) -> None:
    settings = load_settings(None, {"KEDA_DATA_DIR": str(tmp_path)})
    blocker = _runtime._bind(0)
    assert blocker is not None
    blocker.listen()
    busy = blocker.getsockname()[1]
    (tmp_path / _runtime.PORT_FILE).write_text(str(busy))
    try:
        rt = _runtime.runtime(settings)
        assert rt.gateway.port != busy
        assert int((tmp_path / _runtime.PORT_FILE).read_text()) == rt.gateway.port
        assert httpx.get(rt.gateway.root_url + "/healthz").json() == {"ok": True}
    finally:
        blocker.close()
        _runtime.reset()


def test_the_callback_url_is_the_setting_or_this_console(tmp_path: Path) -> None:
    env = {"KEDA_DATA_DIR": str(tmp_path), "KEDA_API_KEY": "k" * 12, "KEDA_ENCRYPTION_KEY": ""}
    rt = _runtime.Runtime.__new__(_runtime.Runtime)  # no start: only the addresses
    rt.settings = load_settings(None, env)
    token = rt.settings.webhook_token
    assert rt.callback_url(8501) == f"http://127.0.0.1:8501/hooks/keda/{token}"
    rt.settings = load_settings(None, {**env, "KEDA_CALLBACK_URL": "https://x.example/h"})
    assert rt.callback_url(8501) == "https://x.example/h"


@pytest.mark.parametrize("bad", ["sqlite:////nonexistent/dir/ledger.db", "nosuchdb://x"])
def test_an_unusable_ledger_is_a_sentence(tmp_path: Path, bad: str) -> None:
    settings = load_settings(None, {"KEDA_DATA_DIR": str(tmp_path), "KEDA_DATABASE_URL": bad})
    with pytest.raises(_runtime.RuntimeStartError, match="KEDA_DATABASE_URL"):
        _runtime.Runtime(settings)


def test_the_sandbox_carrier_is_realistic_unless_told_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("KEDA_SANDBOX_CARRIER", raising=False)
    assert _runtime.sandbox_carrier() == {"carrier_profile": "realistic"}
    monkeypatch.setenv("KEDA_SANDBOX_CARRIER", "deterministic")
    assert _runtime.sandbox_carrier()["carrier_profile"] == "deterministic"
    monkeypatch.setenv("KEDA_SANDBOX_CARRIER", "chaotic")
    with pytest.raises(_runtime.RuntimeStartError, match="realistic"):
        _runtime.sandbox_carrier()
