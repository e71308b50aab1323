"""Members, the audit log, the team's settings and balance readings in the ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.exc import DatabaseError

from kedacore.ledger import Ledger
from kedacore.ledger.team import APPROVAL_THRESHOLD, NOTIFY_WEBHOOKS, AuditFilter


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=clock) as led:
        yield led


def test_members_are_added_changed_and_removed_with_their_audit(ledger: Ledger) -> None:
    assert ledger.ensure_admins(["Boss@Example.com"]) == ["boss@example.com"]
    assert ledger.ensure_admins(["boss@example.com"]) == []  # once
    ledger.add_member(" Mia@Example.com ", ["marketing", "support"], by="boss@example.com")
    mia = ledger.member("MIA@example.com")
    assert (
        mia is not None
        and mia.roles == {"marketing", "support"}
        and mia.added_by == "boss@example.com"
    )
    with pytest.raises(ValueError, match="member already"):
        ledger.add_member("mia@example.com", ["finance"], by="boss@example.com")
    with pytest.raises(ValueError, match="not a role"):
        ledger.add_member("x@example.com", ["owner"], by="boss@example.com")
    with pytest.raises(ValueError, match="at least one role"):
        ledger.add_member("x@example.com", [], by="boss@example.com")
    ledger.set_member_roles("mia@example.com", ["finance"], by="boss@example.com")
    ledger.remove_member("mia@example.com", by="boss@example.com", reason="left the team")
    assert ledger.member("mia@example.com") is None
    log = ledger.audit_entries()
    assert [(e.actor, e.action, e.target) for e in log] == [
        ("boss@example.com", "member_remove", "mia@example.com"),
        ("boss@example.com", "member_roles", "mia@example.com"),
        ("boss@example.com", "member_add", "mia@example.com"),
        ("secrets", "member_add", "boss@example.com"),
    ]
    assert log[0].before == {"roles": ["finance"]} and log[0].detail == "left the team"
    assert log[1].before == {"roles": ["marketing", "support"]} and log[1].after == {
        "roles": ["finance"]
    }


def test_the_team_keeps_an_admin(ledger: Ledger) -> None:
    ledger.add_member("a@example.com", ["admin"], by="local operator")
    for change in (
        lambda: ledger.remove_member("a@example.com", by="a@example.com"),
        lambda: ledger.set_member_roles("a@example.com", ["finance"], by="a@example.com"),
    ):
        with pytest.raises(ValueError, match="only admin"):
            change()
    assert ledger.member("a@example.com").roles == {"admin"}
    ledger.add_member("b@example.com", ["admin"], by="a@example.com")
    ledger.set_member_roles("a@example.com", ["finance"], by="b@example.com")
    assert ledger.member("a@example.com").roles == {"finance"}


def test_the_audit_log_cannot_be_changed_or_deleted(ledger: Ledger) -> None:
    ledger.audit("local operator", "topup", target="acct", after={"amount": Decimal("5")})
    for sql in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), ledger.engine.begin() as conn:
            conn.exec_driver_sql(sql)
    url = ledger.engine.url.render_as_string(hide_password=False)
    again = Ledger(url)  # reopening keeps the protection
    with pytest.raises(DatabaseError, match="append-only"), again.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM audit_log")
    [entry] = again.audit_entries()
    assert entry.actor == "local operator" and entry.after == {"amount": "5"}
    assert not any(name in dir(Ledger) for name in ("update_audit", "delete_audit"))


def test_audit_filters_and_paging(ledger: Ledger, clock: Clock) -> None:
    for i in range(30):
        clock.now += timedelta(minutes=1)
        ledger.audit(
            "a@example.com" if i % 2 else "b@example.com",
            "refused" if i % 3 == 0 else "send",
            target=f"campaign {i}",
            detail="100%_literal" if i == 7 else "",
            outcome="refused" if i % 3 == 0 else "done",
        )
    assert ledger.audit_count() == 30
    assert ledger.audit_count(AuditFilter(actors=["a@example.com"])) == 15
    assert ledger.audit_count(AuditFilter(outcomes=["refused"])) == 10
    assert ledger.audit_count(AuditFilter(text="100%_")) == 1
    assert ledger.audit_count(AuditFilter(text="%")) == 1  # literal, not a wildcard
    start = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)
    assert ledger.audit_count(AuditFilter(since=start, until=start + timedelta(minutes=5))) == 5
    page = ledger.audit_entries(limit=10, offset=10)
    assert [e.target for e in page] == [f"campaign {i}" for i in range(19, 9, -1)]
    assert ledger.audit_actors() == ["a@example.com", "b@example.com"]
    with pytest.raises(ValueError):
        ledger.audit("x", "no_such_action")
    with pytest.raises(ValueError):
        ledger.audit(" ", "send")


def test_settings_are_audited_and_secrets_shown_masked(ledger: Ledger) -> None:
    assert ledger.money_setting(APPROVAL_THRESHOLD) is None
    assert not ledger.set_team_setting(APPROVAL_THRESHOLD, None, by="f@example.com")  # off already
    assert ledger.set_team_setting(APPROVAL_THRESHOLD, "12.5", by="f@example.com")
    assert not ledger.set_team_setting(APPROVAL_THRESHOLD, "12.5", by="f@example.com")
    assert ledger.money_setting(APPROVAL_THRESHOLD) == 12_500_000
    hook = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"
    ledger.set_team_setting(
        NOTIFY_WEBHOOKS, [hook], by="f@example.com", shown={"before": [], "after": ["…mnop"]}
    )
    assert ledger.team_setting(NOTIFY_WEBHOOKS) == [hook]
    log = ledger.audit_entries()
    assert len(log) == 2
    assert log[0].after == {NOTIFY_WEBHOOKS: ["…mnop"]} and hook not in repr(log)
    assert log[1].before == {APPROVAL_THRESHOLD: None} and log[1].after == {
        APPROVAL_THRESHOLD: "12.5"
    }


def test_sign_ins_are_audited_once_per_token_and_sign_out_everywhere(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_member("m@example.com", ["marketing"], by="local operator")
    assert ledger.note_sign_in("m@example.com", 1_000)
    assert not ledger.note_sign_in("m@example.com", 1_000)
    assert ledger.note_sign_in("m@example.com", 2_000)
    assert not ledger.note_sign_in("stranger@example.com", 5)
    ledger.sign_out_everywhere("m@example.com", by="m@example.com")
    assert ledger.member("m@example.com").signed_out_at == clock.now
    actions = [e.action for e in ledger.audit_entries()]
    assert actions == ["sign_out_everywhere", "sign_in", "sign_in", "member_add"]


def test_balance_readings_kept_when_changed_or_a_minute_on(ledger: Ledger, clock: Clock) -> None:
    assert ledger.record_balance(100_000_000, 0, "USD")
    assert not ledger.record_balance(100_000_000, 0, "USD")
    clock.now += timedelta(seconds=10)
    assert ledger.record_balance(99_950_000, 50_000, "USD")
    clock.now += timedelta(seconds=61)
    assert ledger.record_balance(99_950_000, 50_000, "USD")
    assert [r.balance for r in ledger.balance_readings()] == [
        Decimal("100"),
        Decimal("99.95"),
        Decimal("99.95"),
    ]


def test_topups_need_a_positive_amount_and_are_audited(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.record_topup(0, "USD", account="a@x.com", by="f@example.com")
    ledger.record_topup(25_000_000, "USD", account="a@x.com", by="f@example.com")
    [entry] = ledger.audit_entries()
    assert (entry.action, entry.actor, entry.after) == (
        "topup",
        "f@example.com",
        {"amount": "25", "currency": "USD"},
    )


def test_concurrent_audit_writes_all_land(ledger: Ledger) -> None:
    def write(n: int) -> None:
        for i in range(25):
            ledger.audit(f"w{n}@example.com", "send", target=str(i))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.audit_count() == 100


def test_a_removed_member_added_again_starts_with_no_old_session(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_member("m@example.com", ["marketing"], by="a@example.com")
    ledger.note_sign_in("m@example.com", 1_000)
    clock.now += timedelta(hours=1)
    ledger.remove_member("m@example.com", by="a@example.com")
    assert ledger.member("m@example.com") is None
    assert [m.email for m in ledger.members()] == []
    assert not ledger.note_sign_in("m@example.com", 2_000)  # a removed member does not sign in
    with pytest.raises(ValueError, match="not a member"):
        ledger.sign_out_everywhere("m@example.com", by="a@example.com")
    clock.now += timedelta(hours=1)
    back = ledger.add_member("m@example.com", ["support"], by="a@example.com")
    assert back.roles == {"support"} and back.signed_out_at == clock.now
    assert back.last_sign_in_iat is None  # the session from before the removal is over


def test_admins_named_in_secrets_are_neither_removed_nor_demoted_here(ledger: Ledger) -> None:
    ledger.ensure_admins(["boss@example.com"])
    ledger.add_member("other@example.com", ["admin"], by="boss@example.com")
    for change in (
        lambda: ledger.remove_member(
            "boss@example.com", by="other@example.com", protected=["boss@example.com"]
        ),
        lambda: ledger.set_member_roles(
            "boss@example.com", ["finance"], by="other@example.com", protected=["boss@example.com"]
        ),
    ):
        with pytest.raises(ValueError, match="named an admin in secrets"):
            change()
    assert ledger.member("boss@example.com").roles == {"admin"}
    # Out of secrets, the removal goes through, and the old name in secrets does not revive them.
    ledger.remove_member("boss@example.com", by="other@example.com")
    assert ledger.ensure_admins(["boss@example.com"]) == []
    assert ledger.member("boss@example.com") is None


def test_look_alike_addresses_are_refused() -> None:
    from kedacore.team import normalize_email

    for spoof in ("\u212aate@example.com", "kate@exampl\u0435.com", "k\u0430te@example.com"):
        with pytest.raises(ValueError, match="ASCII"):
            normalize_email(spoof)


def test_a_setting_decided_on_an_old_value_is_not_written(ledger: Ledger) -> None:
    from kedacore.ledger.team import SettingChanged

    assert ledger.set_team_setting(APPROVAL_THRESHOLD, "5", by="a@example.com", expect=None)
    with pytest.raises(SettingChanged, match="changed by someone else"):
        ledger.set_team_setting(APPROVAL_THRESHOLD, "50", by="b@example.com", expect=None)
    assert ledger.team_setting(APPROVAL_THRESHOLD) == "5"
    assert ledger.set_team_setting(APPROVAL_THRESHOLD, "4", by="b@example.com", expect="5")
    assert [e.actor for e in ledger.audit_entries()] == ["b@example.com", "a@example.com"]


def test_the_audit_search_finds_a_campaign_by_its_name_and_values_in_before_after(
    ledger: Ledger,
) -> None:
    campaign_id = ledger.create_campaign("Weekend sale", template="Hi {name}", created_by="m@x.com")
    ledger.audit("m@x.com", "campaign_start", target=f"campaign {campaign_id}")
    ledger.audit("f@x.com", "approve", target=f"campaign {campaign_id}", detail="ok")
    ledger.audit(
        "f@x.com", "setting_change", target="balance_floor", after={"balance_floor": "42.5"}
    )
    ledger.audit("f@x.com", "approve", target="campaign 999")
    assert ledger.audit_count(AuditFilter(text="weekend SALE")) == 2
    assert ledger.audit_count(AuditFilter(text="42.5")) == 1


def test_the_audit_search_folds_every_letter_not_only_ascii(ledger: Ledger) -> None:
    ledger.audit("f@x.com", "approve", target="campaign 1", detail="Étude ÜBERWEISUNG für Ωmega")
    for typed in ("Étude", "étude", "ÜBERWEISUNG", "überweisung", "ωMEGA"):
        assert ledger.audit_count(AuditFilter(text=typed)) == 1, typed
