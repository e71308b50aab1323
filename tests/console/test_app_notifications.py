"""The Notifications page through AppTest, with a real SMTP server (aiosmtpd) and a real
webhook receiver on loopback: recipients saved (webhooks masked on the page and in the audit
log), a test notification delivered, causes raised through the console itself (a send refused
by a cap on the Send page, the balance under its floor) mailed with their figures and a link,
and the page refused to a member whose role does not open it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from console import runtime as _runtime
from console.finance.notifications import delivery_lines, keep_key, outcome_text
from console.shell import account_changed
from kedacore.ledger import Ledger
from kedacore.ledger.notices import Delivery, Notification
from kedacore.ledger.team import BALANCE_FLOOR, NOTIFY_EMAILS, NOTIFY_WEBHOOKS
from kedacore.notify.config import ALLOW_PRIVATE_WEBHOOKS
from kedacore.settings import load_settings
from tests.console.test_app import APP, clean_env, ledger, shown
from tests.kedacore.test_notify import SmtpServer, by_cause, serve_hooks, start_smtp
from tests.support import poll, signed_at

PAGE = "pages/notifications.py"
PAGE_FILE = str(Path(APP).parent / PAGE)
CONSOLE_URL = "https://sms.example.com"
SECRET = "T0001/B0002/Zsecret0token0WXYZ"


@pytest.fixture
def fresh(tmp_path: Path, ledger_url: Callable[..., str]) -> Iterator[Path]:
    """A data folder of its own (causes are once a day per ledger); the runtime stops after."""
    with pytest.MonkeyPatch.context() as mp:
        clean_env(mp, tmp_path, ledger_url)
        mp.delenv("KEDA_CONSOLE_URL", raising=False)
        try:
            yield tmp_path
        finally:
            _runtime.reset()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch):
    """The receiver on loopback, which the operator's override lets webhooks reach."""
    monkeypatch.setenv(ALLOW_PRIVATE_WEBHOOKS, "true")
    with serve_hooks() as state:
        yield state


def rt() -> _runtime.Runtime:
    return _runtime.runtime(load_settings(None, os.environ))


def secrets(smtp: SmtpServer | None) -> dict[str, Any]:
    found: dict[str, Any] = {"team": {"console_url": CONSOLE_URL}}
    if smtp is not None:
        found["smtp"] = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "from": "console@example.com",
            "security": "none",
        }
    return found


def open_page(smtp: SmtpServer | None = None, page: str = PAGE) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    for name, value in secrets(smtp).items():
        at.secrets[name] = value
    at.run()
    assert not at.exception, at.exception
    if page != "pages/send.py":
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def everything(at: AppTest) -> str:
    """Every text the page shows (to look for what must not be there)."""
    parts = [e.value for e in [*at.error, *at.warning, *at.info, *at.success, *at.caption]]
    parts += [m.value for m in at.markdown] + [c.label for c in at.checkbox]
    parts += [c.value for c in at.code] + [str(f.value.to_dict()) for f in at.dataframe]
    return shown(" ".join(parts))


def listing(at: AppTest) -> pd.DataFrame:
    """The list of notifications (empty when there is none yet)."""
    for frame in at.dataframe:
        if "Cause" in frame.value.columns:
            return frame.value
    return pd.DataFrame({"Cause": []})


def save(at: AppTest, emails: str, webhook: str = "") -> None:
    at.text_area(key="notifications_emails").input(emails)
    if webhook:
        at.text_input(key="notifications_new_webhook").input(webhook)
    at.button(key="notifications_save").click().run()
    assert not at.exception, at.exception


def test_without_smtp_the_page_says_mail_is_off_and_lists_nothing(fresh: Path) -> None:
    at = open_page(None)
    assert at.title[0].value == "Notifications"
    text = everything(at)
    assert "E-mail is off" in text and "[smtp]" in text
    assert f"Links in notifications open {CONSOLE_URL}" in text
    assert "Nobody receives notifications yet" in text
    assert "No notification yet." in text


def test_recipients_are_saved_audited_and_the_webhook_never_shown_whole(
    fresh: Path, smtp: SmtpServer, hooks
) -> None:
    at = open_page(smtp)
    assert f"through 127.0.0.1:{smtp.port} (none), from console@example.com" in everything(at)
    assert "Webhooks may reach loopback and local-network addresses" in everything(at)
    url = hooks.url(f"/services/{SECRET}")
    save(at, "Fin@Example.com\nops@example.com", url)
    assert [s.value for s in at.success] == ["Recipients saved."]
    with ledger(fresh) as book:
        assert book.team_setting(NOTIFY_EMAILS) == ["fin@example.com", "ops@example.com"]
        assert book.team_setting(NOTIFY_WEBHOOKS) == [url]
        entries = {e.target: e for e in book.audit_entries() if e.action == "setting_change"}
    masked = f"http://127.0.0.1:{hooks.port}/…WXYZ"
    hook_entry = entries[NOTIFY_WEBHOOKS]
    assert (hook_entry.actor, hook_entry.before, hook_entry.after) == (
        "local operator",
        {NOTIFY_WEBHOOKS: []},
        {NOTIFY_WEBHOOKS: [masked]},
    )
    assert entries[NOTIFY_EMAILS].after == {NOTIFY_EMAILS: ["fin@example.com", "ops@example.com"]}
    # the page shows it masked, the input is empty again, and the secret is nowhere
    assert shown(at.checkbox(key=keep_key(url)).label) == f"Keep {masked}"
    assert at.text_input(key="notifications_new_webhook").value == ""
    assert SECRET not in everything(at) and "Zsecret" not in everything(at)

    # a wrong address: nothing saved, and why
    save(at, "fin@example.com\nnot an address")
    assert "Nothing was saved." in " ".join(e.value for e in at.error)
    with ledger(fresh) as book:
        assert book.team_setting(NOTIFY_EMAILS) == ["fin@example.com", "ops@example.com"]

    # unticking the webhook removes it; its removal is audited masked too
    at.checkbox(key=keep_key(url)).uncheck()
    save(at, "fin@example.com")
    with ledger(fresh) as book:
        assert book.team_setting(NOTIFY_WEBHOOKS) == []
        assert book.team_setting(NOTIFY_EMAILS) == ["fin@example.com"]
        last = next(e for e in book.audit_entries() if e.target == NOTIFY_WEBHOOKS)
    assert (last.before, last.after) == ({NOTIFY_WEBHOOKS: [masked]}, {NOTIFY_WEBHOOKS: []})


def test_a_test_notification_reaches_the_mailbox_and_the_webhook_and_is_listed(
    fresh: Path, smtp: SmtpServer, hooks
) -> None:
    at = open_page(smtp)
    save(at, "fin@example.com", hooks.url(f"/services/{SECRET}"))
    at.button(key="notifications_test").click().run()
    assert not at.exception, at.exception
    assert [shown(s.value) for s in at.success] == [
        "Test notification delivered: e-mail fin@example.com",
        f"Test notification delivered: webhook http://127.0.0.1:{hooks.port}/…WXYZ",
    ]
    (mail,) = smtp.mails
    assert mail.to == ["fin@example.com"]
    assert mail.subject == "Test notification from the KedaSMS Console"
    assert "A test notification, sent by local operator at " in mail.body
    assert mail.body.rstrip().endswith(f"{CONSOLE_URL}/notifications")
    ((_, body),) = hooks.received
    assert body["kedasms"]["kind"] == "test"
    row = listing(at).iloc[0]
    assert row["Cause"] == "Test notification"
    assert row["Outcome"] == "ok"
    assert row["Where it went"] == (
        f"e-mail fin@example.com ✓ · webhook http://127.0.0.1:{hooks.port}/…WXYZ ✓"
    )
    with ledger(fresh) as book:
        entry = next(e for e in book.audit_entries() if e.action == "notification")
    assert (entry.actor, entry.outcome) == ("local operator", "done")


def test_a_send_refused_by_a_cap_on_the_send_page_is_mailed_with_its_figures_and_link(
    fresh: Path, smtp: SmtpServer, hooks
) -> None:
    at = open_page(smtp)
    save(at, "fin@example.com")
    # the Send page, as in tests/console/test_app_send.py: a cap of 2, filled meanwhile
    send = open_page(smtp, "pages/send.py")
    rt().client.limits.update(daily_sms_cap=2, block_on_limit=True)
    account_changed()
    send.text_area(key="send_numbers").input("2015550130\n2015550131").run()
    send.text_area(key="send_content").input("Refused by the cap").run()
    send.button(key="send_submit").click().run()
    rt().client.sms.send("US", ["+12015550150"], "a send from elsewhere")  # 1 left now
    send.button(key="send_confirm").click().run()
    assert "today's SMS cap" in " ".join(e.value for e in send.error)

    at.button(key="notifications_look").click().run()  # look now rather than in 15 s
    assert not at.exception, at.exception
    poll(lambda: "cap_block" in by_cause(smtp.mails), timeout=10)
    mails = by_cause(smtp.mails)
    block = mails["cap_block"]
    assert block.to == ["fin@example.com"]
    assert block.subject == "Sending blocked today: the daily SMS cap is reached"
    assert "Sends refused by the daily SMS cap: 1 (2 recipients)" in block.body
    assert "SMS today: 1 of 2 (50 %)" in block.body
    assert block.body.rstrip().endswith(f"{CONSOLE_URL}/limits")
    assert "usage_alert" not in mails  # 1 of 2 is under the alert point (80 %)

    def listed() -> bool:
        at.run()
        return "A cap blocked sending" in set(listing(at)["Cause"])

    poll(listed, timeout=10, interval=0.2)
    rt().client.limits.update(daily_sms_cap=None)


def test_the_balance_under_the_floor_finance_set_is_mailed_once(
    fresh: Path, smtp: SmtpServer, hooks
) -> None:
    at = open_page(smtp)
    save(at, "fin@example.com", hooks.url(f"/services/{SECRET}"))
    with ledger(fresh) as book:  # as the Limits page saves it
        book.set_team_setting(BALANCE_FLOOR, "250", by="fin@example.com")
    at.button(key="notifications_look").click().run()
    poll(lambda: "balance_floor" in by_cause(smtp.mails), timeout=10)
    mail = by_cause(smtp.mails)["balance_floor"]
    assert mail.subject == "Balance below the floor: 100.00 USD (floor 250.00 USD)"
    assert mail.body.rstrip().endswith(f"{CONSOLE_URL}/statement")
    poll(lambda: any(b["kedasms"]["cause"] == "balance_floor" for _, b in hooks.received))
    at.button(key="notifications_look").click().run()  # again: the same day, not again
    rt().notifier.check()
    assert [m.subject for m in smtp.mails].count(mail.subject) == 1


SIGN_IN = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "c",
    "client_secret": "s",
    "server_metadata_url": "http://localhost:1/.well-known/openid-configuration",
}


def as_member(email: str, path: str) -> AppTest:
    at = AppTest.from_file(path, default_timeout=30)
    at.secrets["auth"] = SIGN_IN
    at.secrets["team"] = {"admins": ["boss@example.com"], "console_url": CONSOLE_URL}
    at.user = {"is_logged_in": True, "email": email, "iat": signed_at(7)}
    return at.run()


def test_a_marketing_member_forced_onto_the_page_is_refused_and_audited(fresh: Path) -> None:
    with Ledger(data_dir=fresh) as book:
        book.add_member("mark@example.com", ["marketing"], by="boss@example.com")
    at = as_member("mark@example.com", PAGE_FILE)
    assert not at.exception, at.exception
    assert "Not allowed" in " ".join(e.value for e in at.error)
    assert not [b for b in at.button if b.key == "notifications_save"]
    with ledger(fresh) as book:
        entry = book.audit_entries()[0]
    assert (entry.actor, entry.action, entry.outcome) == ("mark@example.com", "refused", "refused")


def test_a_finance_member_saves_recipients_in_their_own_name(fresh: Path, hooks) -> None:
    with Ledger(data_dir=fresh) as book:
        book.add_member("fin@example.com", ["finance"], by="boss@example.com")
    at = as_member("fin@example.com", PAGE_FILE)
    assert not at.exception, at.exception
    save(at, "fin@example.com", hooks.url(f"/services/{SECRET}"))
    with ledger(fresh) as book:
        hook_entry = next(e for e in book.audit_entries() if e.target == NOTIFY_WEBHOOKS)
        assert book.team_setting(NOTIFY_EMAILS) == ["fin@example.com"]
    assert hook_entry.actor == "fin@example.com"
    assert SECRET not in json.dumps(hook_entry.after)


def test_the_list_is_newest_first_a_page_at_a_time_and_one_reads_in_full(fresh: Path) -> None:
    with Ledger(data_dir=fresh) as book:
        for i in range(30):
            book.claim_notification(
                f"campaign_paused:{i}:20250601T1015{i:02d}123456Z",  # a pause's time in its key
                kind="campaign_paused",
                subject=f"Campaign “N{i}” (#{i}) paused",
                body=f"Campaign “N{i}” (#{i}) is paused.\nWhy: *not* markdown <b>{i}</b>",
            )
    at = open_page(None)
    frame = listing(at)
    assert len(frame) == 25
    assert frame["Cause"].iloc[0] == "Campaign paused (campaign 29)"  # the newest first
    assert frame["Where it went"].iloc[0] == "being delivered"
    assert "30 notifications, newest first" in everything(at)
    assert "Showing 1–25." in everything(at)
    at.number_input(key="notifications_page").set_value(2).run()
    frame = listing(at)
    assert list(frame["Cause"]) == [f"Campaign paused (campaign {i})" for i in range(4, -1, -1)]
    assert "Showing 26–30." in everything(at)
    # the one chosen is shown as it was written (plain text, not Markdown)
    assert at.code[0].value == "Campaign “N4” (#4) is paused.\nWhy: *not* markdown <b>4</b>"


def test_a_webhook_to_the_local_network_is_not_saved_without_the_operators_override(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_WEBHOOKS, raising=False)
    at = open_page(None)
    assert "Webhooks may reach loopback" not in everything(at)
    for url, why in [
        (f"http://127.0.0.1:9/{SECRET}", "127.0.0.1, a loopback address"),
        (f"http://169.254.169.254/latest/{SECRET}", "a link-local address (cloud metadata"),
        (f"https://10.0.0.7/{SECRET}", "10.0.0.7, a private address"),
    ]:
        save(at, "fin@example.com", url)
        error = shown(" ".join(e.value for e in at.error))
        assert "Nothing was saved." in error and why in error, url
        assert f"{ALLOW_PRIVATE_WEBHOOKS}=true" in error
        assert SECRET not in everything(at)
        with ledger(fresh) as book:
            assert book.team_setting(NOTIFY_WEBHOOKS) is None
            assert book.team_setting(NOTIFY_EMAILS) is None


def test_a_test_notification_shows_the_webhooks_status_never_what_it_answered(
    fresh: Path, hooks
) -> None:
    at = open_page(None)
    internal = "internal-admin-api: db_password=hunter2-internal"
    hooks.answers["/internal/admin"] = (403, internal)
    save(at, "", hooks.url("/internal/admin"))
    at.button(key="notifications_test").click().run()
    assert not at.exception, at.exception
    (error,) = [shown(e.value) for e in at.error]
    assert error == (
        f"Test notification **not** delivered: webhook http://127.0.0.1:{hooks.port}/…dmin — "
        "HTTP 403 Forbidden"
    )
    assert "hunter2" not in everything(at)
    assert listing(at).iloc[0]["Outcome"] == (
        f"http://127.0.0.1:{hooks.port}/…dmin: HTTP 403 Forbidden — not tried again"
    )
    with ledger(fresh) as book:
        entry = next(e for e in book.audit_entries() if e.action == "notification")
    assert "hunter2" not in json.dumps(entry.after) and entry.outcome == "failed"


def test_a_notification_nobody_received_waits_and_goes_out_once_someone_is_added(
    fresh: Path, smtp: SmtpServer
) -> None:
    at = open_page(smtp)
    with ledger(fresh) as book:
        book.set_team_setting(BALANCE_FLOOR, "250", by="fin@example.com")
    rt().notifier.check()
    at.run()
    row = listing(at).iloc[0]
    assert row["Where it went"] == "undelivered: no recipient is configured"
    with ledger(fresh) as book:
        (waiting,) = book.notifications()
    assert row["Outcome"] == (
        f"waiting: sent if a recipient is added on {waiting.day.isoformat()} (UTC day)"
    )
    assert smtp.mails == []
    save(at, "fin@example.com")
    rt().notifier.check()
    mail = by_cause(smtp.mails)["balance_floor"]
    assert mail.to == ["fin@example.com"]
    at.run()
    row = listing(at).iloc[0]
    assert (row["Where it went"], row["Outcome"]) == ("e-mail fin@example.com ✓", "ok")
    assert len(listing(at)) == 1


NO_SMTP = "SMTP is not configured (an [smtp] section in secrets)"


def test_delivered_by_webhook_while_mail_is_off_is_done_said_per_channel_and_read_in_full(
    fresh: Path, hooks
) -> None:
    """Walk-through: every notification was audited "Failed" because e-mail was not set up,
    though the webhook had it. Done once someone has it (failed only when nobody does), each
    channel said in the detail and in words on the Audit log; the list shows the time, and
    "Read one" where it went a target a line."""
    at = open_page(None)
    save(at, "fin@example.com\nops@example.com", hooks.url(f"/services/{SECRET}"))
    at.button(key="notifications_test").click().run()
    assert not at.exception, at.exception
    masked = f"http://127.0.0.1:{hooks.port}/…WXYZ"
    with ledger(fresh) as book:
        entry = next(e for e in book.audit_entries() if e.action == "notification")
        (sent,) = book.notifications()
    assert entry.outcome == "done"
    assert entry.detail == (
        f"Test notification: webhook: delivered; e-mail: not delivered to any of 2 — {NO_SMTP}"
    )
    row = listing(at).iloc[0]
    assert row["When"] == sent.created_at.strftime("%Y-%m-%d %H:%M:%S")  # AppTest: UTC
    assert row["Outcome"] == (  # one error said once, with the addresses it stopped
        f"fin@example.com, ops@example.com: {NO_SMTP} — not tried again"
    )
    details = shown(" ".join(m.value for m in at.markdown))
    assert f"- e-mail fin@example.com: not delivered — {NO_SMTP}" in details
    assert f"- e-mail ops@example.com: not delivered — {NO_SMTP}" in details
    assert f"- webhook {masked}: delivered" in details
    assert at.code[0].value == sent.body

    audit = open_page(None, "pages/audit.py")
    logged = next(d.value for d in audit.dataframe if "Action" in d.value).iloc[0]
    assert (logged["Action"], logged["Outcome"]) == ("Notification sent", "Done")
    assert logged["Before → after"] == (
        "Subject: Test notification from the KedaSMS Console; State: failed; "
        f"Deliveries: e-mail fin@example.com, ops@example.com: not delivered — {NO_SMTP} · "
        f"webhook {masked}: delivered; Attempt: 1"
    )

    # Nobody had it (the webhook refuses too): failed.
    hooks.answers[f"/services/{SECRET}"] = (503, "busy")
    at.button(key="notifications_test").click().run()
    with ledger(fresh) as book:
        entry = next(e for e in book.audit_entries() if e.action == "notification")
    assert entry.outcome == "failed"
    assert entry.detail == (
        "Test notification: webhook: not delivered — HTTP 503 Service Unavailable; "
        f"e-mail: not delivered to any of 2 — {NO_SMTP}"
    )


def test_a_retry_after_a_partial_delivery_says_who_missed_it_and_when_it_is_tried_next() -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    partial = Notification(
        id=1, cause="balance_floor", day=at.date(), kind="balance_floor", created_at=at,
        subject="Balance below the floor", body="…", link="",
        deliveries=(
            Delivery("email", "fin@example.com", False, NO_SMTP),
            Delivery("email", "ops@example.com", False, NO_SMTP),
            Delivery("webhook", "https://hooks.example/…WXYZ", True, ref="h1"),
        ),
        state="pending", attempts=1, next_attempt_at=at + timedelta(minutes=1),
    )  # fmt: skip
    assert outcome_text(partial, ZoneInfo("Asia/Shanghai")) == (
        f"fin@example.com, ops@example.com: {NO_SMTP} — attempt 1 did not reach everyone; "
        "next try at 2026-03-10 20:01:00"
    )
    assert delivery_lines(partial) == [
        f"e-mail fin@example.com: not delivered — {NO_SMTP}",
        f"e-mail ops@example.com: not delivered — {NO_SMTP}",
        "webhook https://hooks.example/…WXYZ: delivered",
    ]
