"""The carrier simulation: profiles, per-country settings, seeded fates, magic numbers, money."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.carrier import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Due, Step
from gateway.cli import build_parser
from gateway.cli import main as gateway_cli
from gateway.simulation import (
    MAGIC_FAILED,
    MAGIC_SLOW,
    MAGIC_UNDELIVERED,
    CarrierSimulation,
    CountryProfile,
    ProfileError,
    load_country_profiles,
)
from tests.support import GatewayHandle, phone_numbers, poll

MSGIDS = [f"msg_{i:016x}" for i in range(20_000)]


def due(msgid: str, status: str = QUEUED, recipient: str = "+12065550123", country: str = "US"):
    return Due(msgid, 1, "2024-01-01", recipient, country, status, 50_000, None)


def fates(sim: CarrierSimulation, country: str = "US") -> Counter:
    return Counter(sim.fate(m, "+12065550123", country) for m in MSGIDS)


def test_fates_follow_the_msgid_and_seed_not_the_instance() -> None:
    first, again = CarrierSimulation.realistic(seed=3), CarrierSimulation.realistic(seed=3)
    assert [first.fate(m, "+1", "IN") for m in MSGIDS[:2000]] == [
        again.fate(m, "+1", "IN") for m in MSGIDS[:2000]
    ]  # a restarted gateway decides the same
    other = CarrierSimulation.realistic(seed=4)
    assert any(first.fate(m, "+1", "IN") != other.fate(m, "+1", "IN") for m in MSGIDS[:2000])
    # next_step agrees with the fate, whenever it is asked
    for m in MSGIDS[:300]:
        step = first.next_step(due(m, country="IN"))
        fate = first.fate(m, "+12065550123", "IN")
        if fate == FAILED:
            assert step.status == FAILED and step.next_in is None
        else:
            assert step.status == SENT
            assert first.next_step(due(m, SENT, country="IN")) == Step(fate, None)


def test_shares_are_as_configured() -> None:
    sim = CarrierSimulation(CountryProfile(0.1, 0.1, failed_share=0.1, undelivered_share=0.05))
    counts = fates(sim)
    assert abs(counts[FAILED] / len(MSGIDS) - 0.10) < 0.01
    assert abs(counts[UNDELIVERED] / len(MSGIDS) - 0.05) < 0.01
    assert fates(CarrierSimulation.deterministic()) == {DELIVERED: len(MSGIDS)}


def test_the_realistic_profile_differs_per_country() -> None:
    sim = CarrierSimulation.realistic()
    us, ng = fates(sim, "US"), fates(sim, "NG")
    assert 0.01 < us[FAILED] / len(MSGIDS) < 0.03 < ng[FAILED] / len(MSGIDS) < 0.08
    assert 0.01 < us[UNDELIVERED] / len(MSGIDS) < 0.03 < ng[UNDELIVERED] / len(MSGIDS)
    assert sim.profile("NG").sent_delay > sim.profile("US").sent_delay
    assert sim.profile("ZZ") == sim.default
    delays = [sim.first_delay("+1", "IN") for _ in range(500)]
    assert 1.0 <= min(delays) < 1.2 and 2.8 < max(delays) <= 3.0  # 2 s ± 50 %
    assert {CarrierSimulation.deterministic().first_delay("+1", c) for c in ("US", "IN")} == {0.5}


def test_settings_override_the_profile_then_per_country(tmp_path: Path) -> None:
    path = tmp_path / "countries.json"
    path.write_text(json.dumps({"*": {"jitter": 0}, "in": {"failedShare": 0.5}, "FR": {}}))
    sim = CarrierSimulation.from_settings(
        "realistic",
        sent_delay=2.0,
        undelivered_share=0.0,
        country_profiles=load_country_profiles(path),
    )
    assert sim.profile("US") == CountryProfile(2.0, 2.0, 0.02, 0.0, 0.0)
    assert sim.profile("IN") == CountryProfile(2.0, 6.0, 0.5, 0.0, 0.0)
    assert sim.profile("FR") == sim.default == CountryProfile(2.0, 3.0, 0.03, 0.0, 0.0)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ({"US": {"failedShare": 0.8, "undeliveredShare": 0.3}}, "must not exceed 1"),
        ({"US": {"sentDelay": -1}}, "≥ 0"),
        ({"US": {"speed": 1}}, "unknown setting"),
        ({"USA": {}}, "two-letter"),
        ({"US": {"jitter": "lots"}}, "must be a number"),
        (["US"], "JSON object"),
    ],
)
def test_bad_country_profiles_are_refused(content: Any, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ProfileError, match=problem):
        CarrierSimulation.from_settings(country_profiles=load_country_profiles(path))


def test_magic_numbers_under_any_profile_and_time_scale() -> None:
    for sim in [
        CarrierSimulation.deterministic(),
        CarrierSimulation.realistic(time_scale=0.01),
        CarrierSimulation.from_settings("realistic", failed_share=1.0, undelivered_share=0.0),
    ]:
        for m in MSGIDS[:50]:
            assert sim.next_step(due(m, recipient=MAGIC_FAILED)) == Step(FAILED, None)
            assert sim.next_step(due(m, recipient=MAGIC_UNDELIVERED)).status == SENT
            assert sim.next_step(due(m, SENT, MAGIC_UNDELIVERED)) == Step(UNDELIVERED, None)
            assert sim.next_step(due(m, recipient=MAGIC_SLOW)) == Step(SENT, 30.0)  # never scaled
            assert sim.next_step(due(m, SENT, MAGIC_SLOW)) == Step(DELIVERED, None)


def test_the_config_builds_the_policy_serve_and_create_app_use(tmp_path: Path) -> None:
    """One place turns the carrier settings into a policy (GatewayConfig.policy)."""
    from gateway.config import GatewayConfig
    from gateway.service import Gateway

    config = GatewayConfig(
        db_path=tmp_path / "g.db",
        carrier_profile="realistic",
        failed_share=0.25,
        deliver_delay=7.0,
        country_profiles={"IN": {"sentDelay": 9}},
        carrier_seed=42,
    )
    policy = config.policy()
    assert isinstance(policy, CarrierSimulation) and policy.seed == 42
    assert policy.profile("US").failed_share == 0.25
    assert policy.profile("US").deliver_delay == 7.0
    assert policy.profile("IN").sent_delay == 9
    built = Gateway(config)
    try:
        assert repr(built.policy) == repr(policy)
        assert [built.policy.fate(m, "+12065550123", "US") for m in MSGIDS[:200]] == [
            policy.fate(m, "+12065550123", "US") for m in MSGIDS[:200]
        ]
    finally:
        built.db.close()
    with pytest.raises(ProfileError):
        GatewayConfig(carrier_profile="nope").policy()


def test_serve_documents_and_checks_the_carrier_options(tmp_path: Path, capsys: Any) -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    text = serve.format_help()
    for option in [
        "--profile",
        "--sent-delay",
        "--deliver-delay",
        "--jitter",
        "--failed-share",
        "--undelivered-share",
        "--country-profiles",
        "--carrier-seed",
        "--callback-backoff",
        "--callback-max-attempts",
        "--callback-dead-after",
        "+15005550003",
    ]:
        assert option in text
    bad = tmp_path / "bad.json"
    bad.write_text('{"US": {"failedShare": 2}}')
    assert (
        gateway_cli(["serve", "--db", str(tmp_path / "g.db"), "--country-profiles", str(bad)]) == 1
    )
    assert "failed_share" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        gateway_cli(["serve", "--failed-share", "1.5"])
    assert exit_.value.code == 2


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_magic_numbers_with_the_default_gateway(
    gateway_factory: Callable[..., GatewayHandle],
) -> None:
    clock = Clock()
    gw = gateway_factory(clock=clock)  # no policy: the deterministic profile of serve
    account = gw.create_account(balance="1")
    payload = {"countryCode": "US", "content": "hi"}
    numbers = [MAGIC_FAILED, MAGIC_UNDELIVERED, MAGIC_SLOW]
    data = gw.send(account, {**payload, "phoneNumbers": numbers}).json()["data"]
    ids = {m["recipient"]: m["msgid"] for m in data["messages"]}
    failed = gw.wait_for_status(account, ids[MAGIC_FAILED], FAILED)
    lost = gw.wait_for_status(account, ids[MAGIC_UNDELIVERED], UNDELIVERED)
    slow = gw.wait_for_status(account, ids[MAGIC_SLOW], SENT)
    assert failed["cost"] == 0 and failed["sent_time"] is None
    assert lost["cost"] == 0.05 and lost["delivered_time"] is None
    assert slow["cost"] == 0.05
    assert gw.money(account.email) == {
        "balance": 900_000,
        "frozen": 0,
        "charged": 100_000,
        "topped_up": 1_000_000,
    }
    usage = gw.get("/external/accounts/limits", account).json()["data"]["usage"]
    assert (usage["smsSent"], usage["spend"]) == (2, 0.1)  # the FAILED one left the day
    time.sleep(0.2)
    assert gw.status(account, ids[MAGIC_SLOW])["status"] == SENT
    clock.offset += 30
    done = gw.wait_for_status(account, ids[MAGIC_SLOW], DELIVERED)
    assert done["delivered_time"] > done["sent_time"]


def test_money_invariant_at_every_moment_of_a_realistic_run(
    gateway_factory: Callable[..., GatewayHandle],
) -> None:
    sim = CarrierSimulation.from_settings(
        "realistic", failed_share=0.2, undelivered_share=0.2, time_scale=0.05
    )
    gw = gateway_factory(policy=sim)
    account = gw.create_account(balance="100")
    looks = []
    for country in ["US", "GB", "IN", "NG"]:
        numbers = phone_numbers(country, 100)
        body = {"countryCode": country, "phoneNumbers": numbers, "content": "hi"}
        assert gw.send(account, body).status_code == 200

    def settled() -> bool:
        m = gw.money(account.email)
        assert m["balance"] + m["frozen"] + m["charged"] == m["topped_up"] == 100_000_000, m
        looks.append(m["frozen"])
        return gw.query("SELECT count(*) FROM messages WHERE next_event_at IS NOT NULL") == [(0,)]

    poll(settled, timeout=15, interval=0.005)
    assert len([f for f in looks if f > 0]) >= 3  # seen mid-flight, more than once
    statuses = dict(gw.query("SELECT status, count(*) FROM messages GROUP BY status"))
    assert set(statuses) == {DELIVERED, UNDELIVERED, FAILED} and sum(statuses.values()) == 400
    charged = gw.query("SELECT sum(price_micros) FROM messages WHERE status != 'FAILED'")[0][0]
    assert gw.money(account.email)["charged"] == charged
    usage = gw.get("/external/accounts/limits", account).json()["data"]["usage"]
    assert usage["smsSent"] == 400 - statuses[FAILED]
