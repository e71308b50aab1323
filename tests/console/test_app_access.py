"""Who may use the console, through AppTest: sign-in configured ([auth]) or not, members and
strangers, unverified addresses, sign-out everywhere, and each role's navigation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.access import team_config
from kedacore.ledger import Ledger
from tests.console.test_app import APP, clean_env
from tests.support import AUTH_SECRETS, REPO_ROOT, signed_at

AUTH = AUTH_SECRETS
ADMIN = "boss@example.com"


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory, module_ledger_url: Callable[..., str]
) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("access")
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, folder, module_ledger_url)
        mp.setenv("KEDA_SANDBOX_CARRIER", "deterministic")
        yield folder
    _runtime.reset()


@pytest.fixture(scope="module")
def ledger(data_dir: Path) -> Ledger:
    AppTest.from_file(APP, default_timeout=60).run()  # the runtime creates the ledger
    led = Ledger(data_dir=data_dir)
    led.add_member("mia@example.com", ["marketing"], by="local operator")
    led.add_member("fin@example.com", ["finance"], by="local operator")
    return led


def signed_in(user: dict | None, script: str = APP) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.secrets["team"] = {"admins": [ADMIN, "not an address"]}
    if user is not None:
        at.user = {"is_logged_in": True, **user}
    return at.run()


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_config_is_read_from_secrets_and_the_environment() -> None:
    config = team_config({"auth": AUTH, "team": {"admins": ["A@X.com", "bad"]}}, env={})
    assert config.sign_in and config.admins == ("a@x.com",) and config.providers == ()
    assert not team_config({}, env={}).sign_in
    named = team_config({"auth": {"redirect_uri": "x", "google": {"client_id": "g"}}}, env={})
    assert named.providers == ("google",)
    assert team_config({}, env={"KEDA_ALLOW_NO_SIGN_IN": "true"}).allow_no_sign_in
    assert team_config({"keda": {"keda_allow_no_sign_in": "yes"}}, env={}).allow_no_sign_in
    assert not team_config({}, env={"KEDA_ALLOW_NO_SIGN_IN": "no"}).allow_no_sign_in


def test_without_auth_one_local_operator_is_admin(data_dir: Path, ledger: Ledger) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and titles(at) == ["Send"]
    assert any("Local operator" in c.value for c in at.sidebar.caption)


def test_signed_out_sees_only_the_sign_in_page(ledger: Ledger) -> None:
    at = signed_in(None)
    assert not at.exception, at.exception
    assert titles(at) == ["Sign in to KedaSMS Console"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.sidebar.metric and not at.metric


def test_a_stranger_is_told_whom_to_ask_and_sees_nothing(ledger: Ledger) -> None:
    at = signed_in({"email": "stranger@example.com", "iat": signed_at(10)})
    assert titles(at) == ["You are not a member of this team"]
    text = at.info[0].value.replace("\\", "").replace("\u2060", "")
    assert ("stranger@example.com" in text and ADMIN not in text) or "mia" not in text
    assert not at.sidebar.metric and not at.metric and not at.dataframe


def test_an_unverified_address_is_refused(ledger: Ledger) -> None:
    at = signed_in({"email": "mia@example.com", "email_verified": False, "iat": signed_at(10)})
    assert titles(at) == ["Your e-mail address is not verified"]
    assert not at.sidebar.metric


def test_a_secrets_admin_becomes_a_member_at_first_sign_in(ledger: Ledger) -> None:
    assert ledger.member(ADMIN) is None
    at = signed_in({"email": "Boss@Example.com", "name": "The Boss", "iat": signed_at(100)})
    assert not at.exception and titles(at) == ["Send"]
    boss = ledger.member(ADMIN)
    assert boss is not None and boss.roles == {"admin"} and boss.added_by == "secrets"
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "The Boss" in sidebar and "admin" in sidebar
    signed = [e for e in ledger.audit_entries() if e.action == "sign_in" and e.actor == ADMIN]
    assert len(signed) == 1
    signed_in({"email": ADMIN, "iat": signed_at(100)})  # the same sign-in, another page view
    assert (
        len([e for e in ledger.audit_entries() if e.action == "sign_in" and e.actor == ADMIN]) == 1
    )


def test_a_marketing_member_forced_onto_limits_is_refused_and_audited(ledger: Ledger) -> None:
    at = signed_in({"email": "mia@example.com", "iat": signed_at(20)})
    assert titles(at) == ["Send"]
    for page in ("limits", "audit", "members", "spend", "statement"):
        alone = signed_in(
            {"email": "mia@example.com", "iat": signed_at(20)},
            str(REPO_ROOT / "pages" / f"{page}.py"),
        )
        assert not alone.exception, (page, alone.exception)
        assert titles(alone) == [], page  # the page drew nothing of its own
        assert "Not allowed" in alone.error[0].value, page
        assert not alone.metric and not alone.dataframe, page
    refused = [e for e in ledger.audit_entries() if e.action == "refused" and e.target != "sign-in"]
    assert {e.actor for e in refused} == {"mia@example.com"}
    assert {e.target for e in refused} >= {"Limits", "Audit log", "Members", "Spend", "Statement"}
    assert all(e.outcome == "refused" for e in refused)


def test_sign_out_everywhere_ends_older_sessions(ledger: Ledger) -> None:
    ledger.add_member("sue@example.com", ["support"], by="local operator")
    assert titles(signed_in({"email": "sue@example.com", "iat": signed_at(1)})) == ["Status"]
    ledger.sign_out_everywhere("sue@example.com", by="sue@example.com")
    old = signed_in({"email": "sue@example.com", "iat": signed_at(1)})
    assert titles(old) == ["You were signed out"] and not old.sidebar.metric
    import time

    fresh = signed_in({"email": "sue@example.com", "iat": int(time.time()) + 1})
    assert titles(fresh) == ["Status"]


def test_removing_a_member_takes_effect_at_the_next_run(ledger: Ledger) -> None:
    ledger.add_member("temp@example.com", ["finance"], by="local operator")
    assert titles(signed_in({"email": "temp@example.com", "iat": signed_at(5)})) == ["Approvals"]
    ledger.remove_member("temp@example.com", by="local operator")
    assert titles(signed_in({"email": "temp@example.com", "iat": signed_at(5)})) == [
        "You are not a member of this team"
    ]


@pytest.mark.parametrize("claim", [False, "false", "False", 0, "0", "no"])
def test_every_spelling_of_not_verified_is_refused(ledger: Ledger, claim: object) -> None:
    at = signed_in({"email": "mia@example.com", "email_verified": claim, "iat": signed_at(11)})
    assert titles(at) == ["Your e-mail address is not verified"]


def test_a_sign_in_without_its_time_is_refused_and_audited_once_not_at_every_view(
    ledger: Ledger,
) -> None:
    before = ledger.audit_count()
    at = signed_in({"email": "mia@example.com"})
    for _ in range(3):
        at.run()
        assert titles(at) == ["Your sign-in cannot be used"] and not at.sidebar.metric
    [entry] = ledger.audit_entries(limit=ledger.audit_count() - before)
    assert (entry.actor, entry.action, entry.target) == ("mia@example.com", "refused", "sign-in")
    assert "issue time" in entry.detail


def test_a_sign_in_older_than_a_session_lasts_must_be_renewed(ledger: Ledger) -> None:
    import time

    stale = int(time.time()) - 13 * 3600  # sessions last 12 hours by default
    at = signed_in({"email": "mia@example.com", "iat": stale})
    assert titles(at) == ["Your sign-in has expired"] and not at.sidebar.metric
    longer = AppTest.from_file(APP, default_timeout=60)
    longer.secrets["auth"] = AUTH
    longer.secrets["team"] = {"admins": [ADMIN], "session_hours": 24}
    longer.user = {"is_logged_in": True, "email": "mia@example.com", "iat": stale}
    assert titles(longer.run()) == ["Send"]


def test_a_look_alike_address_is_not_the_member(ledger: Ledger) -> None:
    at = signed_in({"email": "m\u0456a@example.com", "iat": signed_at(12)})  # Cyrillic і
    assert titles(at) == ["You are not a member of this team"] and not at.sidebar.metric


def test_support_sees_no_money_in_the_sidebar_and_marketing_does(ledger: Ledger) -> None:
    ledger.add_member("desk@example.com", ["support"], by="local operator")
    desk = signed_in({"email": "desk@example.com", "iat": signed_at(30)})
    assert titles(desk) == ["Status"] and not desk.sidebar.metric
    assert any("Connected to" in c.value for c in desk.sidebar.caption)
    mia = signed_in({"email": "mia@example.com", "iat": signed_at(30)})
    assert [m.label for m in mia.sidebar.metric] == ["Balance"]


def test_a_sign_in_from_the_future_is_refused(ledger: Ledger) -> None:
    import time

    at = signed_in({"email": "mia@example.com", "iat": int(time.time()) + 3600})
    assert titles(at) == ["Your sign-in cannot be used"] and not at.sidebar.metric


def test_refused_sign_ins_are_audited_once_per_sign_in(ledger: Ledger) -> None:
    def refused() -> list[tuple[str, str]]:
        return [
            (e.actor, e.detail)
            for e in ledger.audit_entries()
            if e.action == "refused" and e.target == "sign-in"
        ]

    before = len(refused())
    at = signed_in({"email": "intruder@example.com", "iat": signed_at(40)})
    at.run()
    at.run()  # the same browser session, more page views: one entry
    assert refused()[: len(refused()) - before] == [
        ("intruder@example.com", "signed in but not a member")
    ]
