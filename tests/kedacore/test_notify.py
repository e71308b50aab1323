"""Notifications for real: a real SMTP server (aiosmtpd) and a real HTTP server on loopback
receive them; each cause is raised for real against the gateway (a cap refusing a send, a
campaign paused by a cap, messages failing, the balance under its floor, a send waiting for
approval); the same cause is delivered once a UTC day, and again the next day."""

from __future__ import annotations

import datetime as dt
import email
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import text

from kedacore import CapReachedError, KedaClient
from kedacore.campaign import CampaignEngine
from kedacore.campaign.plan import plan_requests, preview_campaign
from kedacore.campaign.recipients import read_recipients
from kedacore.ledger import Ledger
from kedacore.ledger.team import BALANCE_FLOOR, NOTIFY_EMAILS, NOTIFY_WEBHOOKS
from kedacore.notify import (
    Notifier,
    NotifyConfig,
    SmtpConfig,
    mask_webhook,
    notify_config,
    parse_emails,
    parse_webhooks,
    post_webhook,
)
from kedacore.notify.causes import Notice
from tests.kedacore.campaign.helpers import client_factory
from tests.support import free_port, poll

CONSOLE_URL = "https://console.example.com"
HOOK_SECRET = "T0001/B0002/Zsecret0token0ABCD"

# -- a real SMTP server and a real webhook receiver on loopback --------------------------------


@dataclass
class Mail:
    sender: str
    to: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class Mailbox:
    """The aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email_policy)
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    box: Mailbox
    port: int
    controller: Controller

    @property
    def mails(self) -> list[Mail]:
        return self.box.mails

    def config(self, **options: Any) -> SmtpConfig:
        return SmtpConfig(
            "127.0.0.1",
            self.port,
            "console@example.com",
            options.pop("security", "none"),
            **options,
        )


def start_smtp(**options: Any) -> SmtpServer:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return SmtpServer(box, port, controller)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()


@dataclass
class Hooks:
    """A webhook receiver: every POST kept; ``answers[path]`` = (status, body) or a delay."""

    port: int = 0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def serve_hooks() -> Iterator[Hooks]:
    """A webhook receiver on loopback (a real HTTP server in a thread)."""
    state = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(size))
            time.sleep(state.delays.get(self.path, 0))
            state.received.append((self.path, body))
            status, answer = state.answers.get(self.path, (200, "ok"))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    with serve_hooks() as state:
        yield state


# -- the console's side: a ledger on a clock that can move to tomorrow, a client ---------------


class Clock:
    """Real time, shifted by whole days on demand (the ledger's "now")."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def next_day(self) -> None:
        self.offset += timedelta(days=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock) as led:
        yield led


@pytest.fixture
def account(gateway):
    return gateway.create_account(balance="100")


@pytest.fixture
def client(gateway, account) -> Iterator[KedaClient]:
    with KedaClient(
        account.api_key,
        account.encryption_key,
        base_url=gateway.base_url,
        backup_url=gateway.base_url,
    ) as c:
        yield c


def notifier_for(ledger: Ledger, client: KedaClient | None, smtp: SmtpServer, **kw: Any):
    config = NotifyConfig(console_url=CONSOLE_URL, smtp=smtp.config())
    return Notifier(ledger, client=client, config=config, **kw)


def set_webhooks(ledger: Ledger, urls: list[str]) -> None:
    """As the Notifications page saves them: the audit log shows them masked."""
    shown = {"before": [], "after": [mask_webhook(u) for u in urls]}
    ledger.set_team_setting(NOTIFY_WEBHOOKS, urls, by="boss", shown=shown)


def recipients(ledger: Ledger, hooks: Hooks, *paths: str) -> list[str]:
    urls = [hooks.url(p) for p in paths] or [hooks.url(f"/services/{HOOK_SECRET}")]
    ledger.set_team_setting(NOTIFY_EMAILS, ["fin@example.com", "ops@example.com"], by="boss")
    set_webhooks(ledger, urls)
    return urls


def by_cause(mails: list[Mail]) -> dict[str, Mail]:
    return {str(m.message["X-KedaSMS-Cause"]): m for m in mails}


# -- the tests ---------------------------------------------------------------------------------


def test_the_balance_under_its_floor_is_mailed_and_posted_once_a_day_and_again_the_next(
    ledger, client, clock, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    ledger.set_team_setting(BALANCE_FLOOR, "150", by="fin@example.com")  # above the 100 USD
    notifier = notifier_for(ledger, client, smtp)

    sent = notifier.check()
    assert [n.cause for n in sent] == ["balance_floor"]
    (mail,) = smtp.mails
    assert mail.sender == "console@example.com"
    assert mail.to == ["fin@example.com", "ops@example.com"]
    assert mail.subject == "Balance below the floor: 100.00 USD (floor 150.00 USD)"
    assert "below the floor of 150.00 USD that finance set (50.00 USD short)" in mail.body
    assert "Available: 100.00 USD" in mail.body and "Floor: 150.00 USD" in mail.body
    assert mail.body.rstrip().endswith(f"The Statement page: {CONSOLE_URL}/statement")
    assert mail.message["Auto-Submitted"] == "auto-generated"
    ((path, body),) = hooks.received
    assert path == f"/services/{HOOK_SECRET}"
    assert body["text"].startswith("*Balance below the floor: 100.00 USD (floor 150.00 USD)*\n")
    assert f"{CONSOLE_URL}/statement" in body["text"]
    assert body["kedasms"]["cause"] == "balance_floor"
    assert body["kedasms"]["facts"] | {"read_at": "x"} == {
        "balance": "100",
        "frozen": "0",
        "floor": "150",
        "currency": "USD",
        "read_at": "x",
    }
    # kept in the ledger with where it went (the webhook masked), and audited as the console
    (row,) = ledger.notifications()
    assert (row.cause, row.kind, row.delivered) == ("balance_floor", "balance_floor", True)
    assert [(d.channel, d.to, d.ok) for d in row.deliveries] == [
        ("email", "fin@example.com", True),
        ("email", "ops@example.com", True),
        ("webhook", f"http://127.0.0.1:{hooks.port}/…ABCD", True),
    ]
    entry = ledger.audit_entries()[0]
    assert (entry.actor, entry.action, entry.outcome, entry.target) == (
        "console",
        "notification",
        "done",
        "balance_floor",
    )
    assert HOOK_SECRET not in json.dumps(entry.after)

    # the same cause the same day: nothing more, however often it looks
    assert notifier.check() == [] and notifier.check() == []
    assert len(smtp.mails) == 1 and len(hooks.received) == 1
    # the next UTC day, still below the floor: once again
    clock.next_day()
    assert [n.cause for n in notifier.check()] == ["balance_floor"]
    assert len(smtp.mails) == 2 and len(hooks.received) == 2
    assert [n.day for n in ledger.notifications()] == [
        (clock() - timedelta(days=0)).date(),
        (clock() - timedelta(days=1)).date(),
    ]
    assert notifier.check() == []


def test_a_send_refused_by_the_daily_cap_raises_the_usage_alert_and_the_cap_block(
    ledger, client, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    client.limits.update(daily_sms_cap=2, block_on_limit=True)
    client.sms.send("US", ["+12065550100", "+12065550101"], "First two", client_ref="ok-1")
    # the third is refused by the cap, and recorded as the Send page records a refusal
    ledger.begin_send(
        "capped-1",
        country="US",
        sender=None,
        content="One too many",
        recipients=["+12065550102"],
        currency="USD",
    )
    with pytest.raises(CapReachedError) as refused:
        client.sms.send("US", ["+12065550102"], "One too many", client_ref="capped-1")
    ledger.refuse_send("capped-1", str(refused.value), code=refused.value.code)

    notifier = notifier_for(ledger, client, smtp)
    assert sorted(n.cause for n in notifier.check()) == ["cap_block", "usage_alert"]
    mails = by_cause(smtp.mails)
    alert = mails["usage_alert"]
    assert alert.subject == "Usage alert: today's usage reached 80 % of the daily SMS cap"
    assert "SMS today: 2 of 2 (100 %)" in alert.body
    assert "Spend today: 0.10 USD (no daily cap)" in alert.body
    assert alert.body.rstrip().endswith(f"{CONSOLE_URL}/limits")
    block = mails["cap_block"]
    assert block.subject == "Sending blocked today: the daily SMS cap is reached"
    assert "Sends refused by the daily SMS cap: 1 (1 recipients), the last at " in block.body
    assert "SMS today: 2 of 2 (100 %)" in block.body
    assert f"Limits page: {CONSOLE_URL}/limits" in block.body
    facts = {b["kedasms"]["cause"]: b["kedasms"]["facts"] for _, b in hooks.received}
    assert facts["cap_block"]["refused_sends"] == 1 and facts["cap_block"]["caps"] == [
        "dailySmsCap"
    ]
    assert facts["usage_alert"]["sms_today"] == 2 and facts["usage_alert"]["sms_cap"] == 2
    assert notifier.check() == []  # once a day


def plan_of(client: KedaClient, numbers: list[str]):
    """One request per recipient (each text is its own: the name differs)."""
    data = ("phone,name\n" + "".join(f"{n},Friend{i}\n" for i, n in enumerate(numbers))).encode()
    preview = preview_campaign(read_recipients(data), "Hi {name}", pricing=client.pricing())
    return plan_requests(preview)


def test_a_campaign_paused_by_a_cap_is_notified_once_not_every_day_it_stays_paused(
    gateway, account, ledger, client, clock, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    client.limits.update(daily_sms_cap=3, block_on_limit=True)
    engine = CampaignEngine(
        ledger, client_factory(gateway.base_url, account.api_key, account.encryption_key)
    )
    numbers = [f"+1206555{i:04d}" for i in range(5)]
    campaign_id = engine.create(plan_of(client, numbers), name="Spring <b>sale</b>")
    report = engine.run_sync(campaign_id, concurrency=1)
    assert report.status == "paused" and "dailySmsCap reached" in report.reason

    notifier = notifier_for(ledger, client, smtp)
    causes = sorted(n.cause for n in notifier.check())
    assert causes == sorted(["cap_block", f"campaign_paused:{campaign_id}", "usage_alert"])
    paused = by_cause(smtp.mails)[f"campaign_paused:{campaign_id}"]
    assert paused.subject == f"Campaign “Spring <b>sale</b>” (#{campaign_id}) paused"
    assert "Why: Paused: dailySmsCap reached" in paused.body
    assert "Recipients: 5 — sent 3, left 2" in paused.body
    assert "Debited so far: 0.15 USD" in paused.body
    assert paused.body.rstrip().endswith(f"{CONSOLE_URL}/campaigns?campaign={campaign_id}")
    block = by_cause(smtp.mails)["cap_block"]
    assert f"Campaign paused: “Spring <b>sale</b>” (#{campaign_id}), 2 of 5 recipients left" in (
        block.body
    )
    # Slack must not read a campaign's name as markup
    text_of = {b["kedasms"]["cause"]: b["text"] for _, b in hooks.received}
    assert "Spring &lt;b&gt;sale&lt;/b&gt;" in text_of[f"campaign_paused:{campaign_id}"]

    # the next day it is still paused: the pause was told once, it is not told again
    clock.next_day()
    again = [n.cause for n in notifier.check()]
    assert f"campaign_paused:{campaign_id}" not in again and "cap_block" not in again


def test_a_campaign_whose_messages_failed_is_notified_as_failed(
    gateway, account, ledger, client, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    engine = CampaignEngine(
        ledger, client_factory(gateway.base_url, account.api_key, account.encryption_key)
    )
    # the gateway's magic numbers: one FAILED, one UNDELIVERED
    campaign_id = engine.create(plan_of(client, ["+15005550001", "+15005550002"]), name="Bad list")
    assert engine.run_sync(campaign_id).status == "done"
    notifier = notifier_for(ledger, client, smtp)
    assert notifier.check() == []  # sent, not known to have failed yet

    tasks = [b.task_id for b in ledger.campaign_batches(campaign_id)]
    msgids = [m.msgid for task in tasks for m in ledger.task_messages(task)]
    assert len(msgids) == 2

    def final() -> bool:  # the Status page's look-ups bring the final statuses into the ledger
        ledger.apply_statuses([client.sms.status(m) for m in msgids])
        return set(ledger.campaign_status_counts(campaign_id)) == {"FAILED", "UNDELIVERED"}

    poll(final, timeout=10, interval=0.1)
    assert [n.cause for n in notifier.check()] == [f"campaign_failed:{campaign_id}"]
    (mail,) = smtp.mails
    assert mail.subject == f"Campaign “Bad list” (#{campaign_id}) failed"
    assert "failed: 2 of its 2 messages failed or were not delivered." in mail.body
    assert "Messages: 1 FAILED, 1 UNDELIVERED" in mail.body
    assert notifier.check() == []


def test_a_send_waiting_for_approval_is_notified_with_its_estimate_and_threshold(
    ledger, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    held = ledger.hold_send(
        "big-1",
        country="US",
        sender=None,
        content="Flash sale",
        recipients=[f"+1206555{i:04d}" for i in range(3)],
        currency="USD",
        estimated_micros=12_500_000,
        threshold_micros=10_000_000,
        created_by="mia@example.com",
    )
    notifier = notifier_for(ledger, None, smtp)
    assert [n.cause for n in notifier.check()] == [f"approval:{held.id}"]
    (mail,) = smtp.mails
    assert mail.subject == "Approval needed: send of 12.50 USD (threshold 10.00 USD)"
    assert "Requested by mia@example.com at " in mail.body
    assert "Estimate: 12.50 USD — over the approval threshold of 10.00 USD" in mail.body
    assert "Flash sale" in mail.body
    assert mail.body.rstrip().endswith(f"{CONSOLE_URL}/approvals")
    assert notifier.check() == []


def test_failed_deliveries_are_kept_with_why_and_never_with_the_webhook_address(
    ledger, tmp_path, hooks
) -> None:
    dead_smtp = SmtpConfig("127.0.0.1", free_port(), "console@example.com", "none")
    broken = f"/services/{HOOK_SECRET}"
    hooks.answers[broken] = (404, f"no_service for {HOOK_SECRET}")
    ledger.set_team_setting(NOTIFY_EMAILS, ["fin@example.com"], by="boss")
    set_webhooks(ledger, [hooks.url(broken)])
    ledger.set_team_setting(BALANCE_FLOOR, "1", by="boss")
    ledger.record_balance(500_000, 0, "USD")
    notifier = Notifier(ledger, config=NotifyConfig(console_url=CONSOLE_URL, smtp=dead_smtp))
    (sent,) = notifier.check()
    assert sent.delivered is False
    mail, hook = sent.deliveries
    assert (mail.channel, mail.to, mail.ok) == ("email", "fin@example.com", False)
    assert mail.error.startswith(f"could not connect to 127.0.0.1:{dead_smtp.port} (")
    assert (hook.channel, hook.ok) == ("webhook", False)
    assert hook.error == "HTTP 404 no_service for …/…/…ABCD"
    assert ledger.audit_entries()[0].outcome == "failed"
    # the secret is nowhere in the ledger but in the setting that holds it
    with ledger.engine.connect() as conn:
        for table in ("notifications", "audit_log"):
            dump = json.dumps(
                [list(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
            )
            assert HOOK_SECRET not in dump, table
    # without SMTP configured an e-mail is not sent, and says why
    (none,) = Notifier(ledger, config=NotifyConfig()).send_test("boss").deliveries[:1]
    assert none.error == "SMTP is not configured (an [smtp] section in secrets)"


def test_a_webhook_that_does_not_answer_in_time_is_a_failure_not_a_wait(hooks) -> None:
    hooks.delays["/slow"] = 1.0
    notice = Notice("test:1", "test", "Subject", "Body", f"{CONSOLE_URL}/notifications")
    started = time.monotonic()
    outcome = post_webhook(hooks.url("/slow"), notice, timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert (outcome.ok, outcome.error) == (False, "no answer within 0.2 s")


def test_nowhere_to_send_is_listed_without_an_audit_entry(ledger) -> None:
    ledger.set_team_setting(BALANCE_FLOOR, "1", by="boss")
    ledger.record_balance(0, 0, "USD")
    audited = len(ledger.audit_entries())
    (sent,) = Notifier(ledger, config=NotifyConfig()).check()
    assert sent.delivered is None
    assert [(d.channel, d.error) for d in sent.deliveries] == [
        ("none", "no recipient is configured")
    ]
    assert len(ledger.audit_entries()) == audited


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_and_login_reach_the_server_and_a_wrong_password_is_said_without_it(
    ledger, tmp_path
) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    logins: list[tuple[bytes, bool]] = []

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        ok = (auth_data.login, auth_data.password) == (b"console", b"s3cret-pass")
        logins.append((auth_data.login, ok))
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    server = start_smtp(tls_context=server_tls, require_starttls=True, authenticator=authenticator)
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        ledger.set_team_setting(NOTIFY_EMAILS, ["fin@example.com"], by="boss")
        good = server.config(security="starttls", username="console", password="s3cret-pass")
        done = Notifier(ledger, config=NotifyConfig(smtp=good), context=trusted).send_test("boss")
        assert [(d.to, d.ok) for d in done.deliveries] == [("fin@example.com", True)]
        assert logins == [(b"console", True)]
        (mail,) = server.mails
        assert mail.subject == "Test notification from the KedaSMS Console"
        assert "A test notification, sent by boss at " in mail.body

        bad = server.config(security="starttls", username="console", password="wrong-password")
        done = Notifier(ledger, config=NotifyConfig(smtp=bad), context=trusted).send_test("boss")
        (failed,) = done.deliveries
        assert failed.ok is False
        assert failed.error == (
            f"the server 127.0.0.1:{server.port} refused the user name or password (535)"
        )
        assert "wrong-password" not in json.dumps([d.as_json() for d in done.deliveries])
        # plain text to a server that insists on STARTTLS: refused, and said so
        plain = server.config(security="none", username="console", password="s3cret-pass")
        (refused,) = Notifier(ledger, config=NotifyConfig(smtp=plain)).send_test("b").deliveries
        assert refused.ok is False and refused.error.startswith("the server 127.0.0.1:")
    finally:
        server.controller.stop()


def test_two_replicas_looking_at_once_send_one_notification(
    tmp_path, clock, client, smtp, hooks
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    replicas = [Ledger(url, clock=clock) for _ in range(4)]
    try:
        recipients(replicas[0], hooks)
        replicas[0].set_team_setting(BALANCE_FLOOR, "1000", by="boss")
        notifiers = [notifier_for(led, client, smtp) for led in replicas]
        start = threading.Barrier(len(notifiers))
        results: list[list[Any]] = []

        def look(n: Notifier) -> None:
            start.wait()
            results.append(n.check())

        threads = [threading.Thread(target=look, args=(n,)) for n in notifiers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(len(r) for r in results) == [0, 0, 0, 1]
        assert len(smtp.mails) == 1 and len(hooks.received) == 1
        assert replicas[1].notification_count() == 1
    finally:
        for led in replicas:
            led.close()


def test_the_thread_waits_for_its_configuration_then_looks_every_interval(
    ledger, smtp, hooks
) -> None:
    recipients(ledger, hooks)
    ledger.set_team_setting(BALANCE_FLOOR, "1", by="boss")
    ledger.record_balance(0, 0, "USD")
    notifier = Notifier(ledger, interval=0.05)
    notifier.start()
    try:
        time.sleep(0.3)
        assert ledger.notification_count() == 0  # not configured: it does not look
        notifier.configure(NotifyConfig(console_url=CONSOLE_URL, smtp=smtp.config()))
        poll(lambda: len(smtp.mails) == 1 and len(hooks.received) == 1, timeout=5)
        poll(lambda: notifier.last_look is not None, timeout=5)
        assert notifier.last_error is None
    finally:
        notifier.stop()
    assert not any(t.name == "notifier" and t.is_alive() for t in threading.enumerate())


def test_the_configuration_comes_from_secrets_and_the_environment() -> None:
    secrets = {
        "smtp": {
            "host": "smtp.example.com",
            "username": "bot@example.com",
            "password": "pw-123456789",
            "security": "SSL",
        },
        "team": {"console_url": "https://sms.example.com/"},
    }
    config = notify_config(secrets, env={})
    assert config.console_url == "https://sms.example.com"
    assert config.link("/limits") == "https://sms.example.com/limits"
    assert config.smtp is not None
    assert (config.smtp.port, config.smtp.security, config.smtp.sender) == (
        465,
        "ssl",
        "bot@example.com",
    )
    assert "pw-123456789" not in repr(config)
    env = notify_config(secrets, env={"KEDA_CONSOLE_URL": "http://10.0.0.5:8501"})
    assert env.console_url == "http://10.0.0.5:8501"
    assert notify_config(None, env={}).console_url == "http://localhost:8501"
    broken = notify_config({"smtp": {"host": "x", "security": "tls"}}, env={})
    assert broken.smtp is None
    assert broken.smtp_problem == "[smtp] security must be one of starttls, ssl, none, not 'tls'"
    assert notify_config({"smtp": {"port": 25}}, env={}).smtp_problem == "[smtp] has no host"

    assert parse_emails("Fin@Example.com, ops@example.com\nfin@example.com") == [
        "fin@example.com",
        "ops@example.com",
    ]
    with pytest.raises(ValueError, match="'not-an-address' is not an e-mail address"):
        parse_emails("not-an-address")
    assert parse_webhooks("https://hooks.slack.com/services/T/B/x?a=1,2\n") == [
        "https://hooks.slack.com/services/T/B/x?a=1,2"
    ]
    with pytest.raises(ValueError, match="must start with https://"):
        parse_webhooks("ftp://hooks.example.com/abcdefghijkl")
    assert mask_webhook("https://hooks.slack.com/services/T0/B0/abcdefgh1234") == (
        "https://hooks.slack.com/…1234"
    )
    assert mask_webhook("https://user:pass@chat.example.com:8443/hook") == (
        "https://chat.example.com:8443/…"
    )
