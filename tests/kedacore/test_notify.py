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
from collections.abc import Callable, Iterator
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
from kedacore.ledger import Ledger, PlannedBatch
from kedacore.ledger.notices import LEASE, NO_RECIPIENT
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
from kedacore.notify.causes import Notice, detect, pause_cause
from kedacore.notify.config import ALLOW_PRIVATE_WEBHOOKS, WebhookRefused, webhook_addresses
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
    """A webhook receiver: every POST kept (with its Host header); ``answers[path]`` =
    (status, body), ``locations[path]`` a redirect's Location, ``delays[path]`` seconds."""

    port: int = 0
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


@contextmanager
def serve_hooks(tls: ssl.SSLContext | None = None) -> Iterator[Hooks]:
    """A webhook receiver on loopback (a real HTTP server in a thread; https with ``tls``)."""
    state = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(size))
            time.sleep(state.delays.get(self.path, 0))
            state.received.append((self.path, body))
            state.hosts.append(str(self.headers.get("Host")))
            status, answer = state.answers.get(self.path, (200, "ok"))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            if self.path in state.locations:
                self.send_header("Location", state.locations[self.path])
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client refusing the certificate (a test's point): nothing to print

    server = Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hooks]:
    """The receiver, and the operator's override that lets webhooks reach loopback."""
    monkeypatch.setenv(ALLOW_PRIVATE_WEBHOOKS, "true")
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

    def advance(self, by: timedelta) -> None:
        self.offset += by

    def at(self, when: datetime) -> None:
        """Move to ``when`` (or just after it: real time goes on)."""
        self.offset += max(when - self(), timedelta())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: Callable[..., str], clock: Clock) -> Iterator[Ledger]:
    with Ledger(ledger_url(), clock=clock) as led:
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


def current_pause(ledger: Ledger, campaign_id: int) -> str:
    """The cause of a campaign's current pause, as the notifier names it."""
    (facts,) = [f for f in ledger.notice_scan().paused if f.id == campaign_id]
    return pause_cause(facts)


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
    pause = current_pause(ledger, campaign_id)  # campaign_paused:<id>:<the pause's time>
    assert pause.startswith(f"campaign_paused:{campaign_id}:")
    assert causes == sorted(["cap_block", pause, "usage_alert"])
    paused = by_cause(smtp.mails)[pause]
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
    assert "Spring &lt;b&gt;sale&lt;/b&gt;" in text_of[pause]

    # the next day it is still paused: the pause was told once, it is not told again
    clock.next_day()
    again = [n.cause for n in notifier.check()]
    assert pause not in again and "cap_block" not in again


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
    assert hook.error == "HTTP 404 Not Found"  # the status, never what the server said
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
    outcome = post_webhook(hooks.url("/slow"), notice, timeout=0.2, allow_private=True)
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


def _self_signed(folder: Path, dns: str | None = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and the name ``dns``), and its key."""
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
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                + ([x509.DNSName(dns)] if dns else [])
            ),
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
    ledger_url, clock, client, smtp, hooks
) -> None:
    url = ledger_url("shared")
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


# -- webhooks reach public addresses only; what they answer is never kept -------------------------

INTERNAL = "internal-admin-api: db_password=hunter2-internal; users=[root,ops]"


def test_a_webhook_to_loopback_the_local_network_or_cloud_metadata_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_WEBHOOKS, raising=False)
    refused = {
        "http://127.0.0.1:8080/internal/admin": "127.0.0.1, a loopback address",
        "http://localhost:8080/internal/admin": "a loopback address",  # a name: resolved
        "http://2130706433/x": "resolves to 127.0.0.1, a loopback address",  # 127.0.0.1 too
        "http://10.1.2.3/hook": "10.1.2.3, a private address",
        "http://172.16.0.9/hook": "a private address",
        "https://192.168.1.20/hook": "a private address",
        "http://169.254.169.254/latest/meta-data/": "a link-local address (cloud metadata",
        "http://[fe80::1]/hook": "a link-local address",
        "http://[fd00::5]/hook": "a private address",
        "http://[::1]:8080/hook": "a loopback address",
        "http://[::ffff:127.0.0.1]/hook": "a loopback address",
        "http://0.0.0.0:8080/hook": "an unspecified address",
        "http://224.0.0.1/hook": "a multicast address",
        "http://100.64.0.1/hook": "not a public address",
    }
    for url, why in refused.items():
        with pytest.raises(WebhookRefused) as caught:
            webhook_addresses(url)
        assert why in str(caught.value), url
        assert f"{ALLOW_PRIVATE_WEBHOOKS}=true" in str(caught.value)
        assert "internal/admin" not in str(caught.value) and "meta-data" not in str(caught.value)
    with pytest.raises(WebhookRefused, match="could not be found"):
        webhook_addresses("https://no-such-host.invalid/hook")
    # a public address is kept; the operator's override lets the local network through
    assert webhook_addresses("https://93.184.216.34/services/T0/B0/x") == ["93.184.216.34"]
    assert webhook_addresses("http://10.1.2.3/hook", allow_private=True) == ["10.1.2.3"]
    assert NotifyConfig().allow_private_webhooks is False
    monkeypatch.setenv(ALLOW_PRIVATE_WEBHOOKS, "true")
    assert NotifyConfig().allow_private_webhooks is True
    assert notify_config(None, env={ALLOW_PRIVATE_WEBHOOKS: "TRUE"}).allow_private_webhooks
    assert not notify_config(None, env={ALLOW_PRIVATE_WEBHOOKS: "no"}).allow_private_webhooks


def test_an_internal_webhook_is_refused_at_delivery_and_nothing_of_it_is_posted_or_kept(
    ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook already kept (saved with the override on, or its name pointed elsewhere
    since) is checked again when it is used: nothing is posted to it."""
    monkeypatch.delenv(ALLOW_PRIVATE_WEBHOOKS, raising=False)
    with serve_hooks() as internal:
        internal.answers["/internal/admin"] = (403, INTERNAL)
        set_webhooks(ledger, [internal.url("/internal/admin")])
        sent = Notifier(ledger, config=NotifyConfig()).send_test("fin@example.com")
        assert internal.received == []
    (hook,) = sent.deliveries
    assert (hook.ok, hook.to) == (False, f"http://127.0.0.1:{internal.port}/…dmin")
    assert hook.error.startswith("refused: 127.0.0.1, a loopback address; webhooks may only")
    assert sent.state == "failed"  # a test is not tried again
    entry = next(e for e in ledger.audit_entries() if e.action == "notification")
    assert entry.outcome == "failed" and "refused: 127.0.0.1" in json.dumps(entry.after)


def test_a_webhook_answer_is_never_kept_only_its_status_and_redirects_are_not_followed(
    ledger, hooks
) -> None:
    hooks.answers["/forbidden"] = (403, INTERNAL)
    hooks.answers["/moved"] = (302, INTERNAL)
    hooks.locations["/moved"] = hooks.url("/internal/admin")
    set_webhooks(ledger, [hooks.url("/forbidden"), hooks.url("/moved")])
    sent = Notifier(ledger, config=NotifyConfig()).send_test("fin@example.com")
    assert [(d.ok, d.error) for d in sent.deliveries] == [
        (False, "HTTP 403 Forbidden"),
        (False, "HTTP 302 Found"),
    ]
    assert sorted(path for path, _ in hooks.received) == ["/forbidden", "/moved"]  # not followed
    with ledger.engine.connect() as conn:
        for table in ("notifications", "audit_log"):
            dump = json.dumps(
                [list(map(str, r)) for r in conn.execute(text(f"SELECT * FROM {table}"))]
            )
            assert "hunter2" not in dump and "internal-admin-api" not in dump, table


def _resolver(name: str, address: str, calls: list[str]):
    """A DNS answer for one name (the test's own): ``name`` → ``address``."""

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        calls.append(host)
        if host != name:
            raise OSError("not found")
        return [(2, 1, 6, "", (address, port))]

    return resolve


def test_a_webhook_is_posted_to_the_address_checked_with_its_name_for_host_and_tls(
    tmp_path: Path,
) -> None:
    """The POST connects to the address the check resolved (a name re-pointed between the
    check and the connection changes nothing); https still checks the certificate against
    the webhook's name (SNI), and the Host header is the name."""
    name = "hooks.example.test"  # exists only in this test's resolver
    cert, key = _self_signed(tmp_path, dns=name)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    notice = Notice("test:1", "test", "Subject", "Body", f"{CONSOLE_URL}/notifications")
    with serve_hooks(tls=server_tls) as secure:
        url = f"https://{name}:{secure.port}/services/{HOOK_SECRET}"
        calls: list[str] = []
        resolve = _resolver(name, "127.0.0.1", calls)
        done = post_webhook(url, notice, context=trusted, allow_private=True, resolve=resolve)
        assert (done.ok, done.error) == (True, "")
        assert calls == [name]  # resolved once, by the check; connected to what it found
        assert secure.hosts == [f"{name}:{secure.port}"]
        assert [p for p, _ in secure.received] == [f"/services/{HOOK_SECRET}"]
        # the same name pointed at loopback, without the override: refused, nothing posted
        refused = post_webhook(url, notice, context=trusted, resolve=resolve)
        assert refused.error == (
            f"refused: {name} resolves to 127.0.0.1, a loopback address; webhooks may only "
            f"reach public addresses (an operator may allow the local network: "
            f"{ALLOW_PRIVATE_WEBHOOKS}=true)"
        )
        assert len(secure.received) == 1
        # a certificate for another name is refused although the address is the same
        other = f"https://other.example.test:{secure.port}/x"
        resolve_other = _resolver("other.example.test", "127.0.0.1", [])
        wrong = post_webhook(
            other, notice, context=trusted, allow_private=True, resolve=resolve_other
        )
        assert wrong.ok is False and "certificate" in wrong.error.lower()
        assert len(secure.received) == 1


# -- a delivery that fails is tried again; exactly once whoever looks -----------------------------


def hold(ledger: Ledger, ref: str = "big-1"):
    """A send of 12.50 USD waiting for approval (threshold 10)."""
    return ledger.hold_send(
        ref,
        country="US",
        sender=None,
        content="Flash sale",
        recipients=["+12065550100"],
        currency="USD",
        estimated_micros=12_500_000,
        threshold_micros=10_000_000,
        created_by="mia@example.com",
    )


def notification_audit(ledger: Ledger) -> list[tuple[str, int, str]]:
    """(outcome, attempt, state) of each "notification" entry, oldest first."""
    entries = [e for e in ledger.audit_entries() if e.action == "notification"]
    return [(e.outcome, e.after["attempt"], e.after["state"]) for e in reversed(entries)]


def test_a_failed_delivery_is_tried_again_with_backoff_where_it_failed_until_delivered(
    ledger, clock, smtp, hooks
) -> None:
    recipients(ledger, hooks, "/flaky")
    hooks.answers["/flaky"] = (503, "busy")
    held = hold(ledger)
    notifier = notifier_for(ledger, None, smtp)

    (first,) = notifier.check()
    assert (first.cause, first.state, first.attempts) == (f"approval:{held.id}", "pending", 1)
    assert [(d.channel, d.ok, d.error) for d in first.deliveries] == [
        ("email", True, ""),
        ("email", True, ""),
        ("webhook", False, "HTTP 503 Service Unavailable"),
    ]
    assert first.next_attempt_at - first.last_attempt_at == timedelta(minutes=1)
    assert notifier.check() == [] and len(hooks.received) == 1  # not before its time

    clock.at(first.next_attempt_at)
    (second,) = notifier.check()
    assert (second.id, second.state, second.attempts) == (first.id, "pending", 2)
    assert second.next_attempt_at - second.last_attempt_at == timedelta(minutes=5)
    assert len(hooks.received) == 2 and len(smtp.mails) == 1  # the mail went the first time

    hooks.answers["/flaky"] = (200, "ok")
    clock.at(second.next_attempt_at)
    (third,) = notifier.check()
    assert (third.state, third.attempts, third.delivered) == ("delivered", 3, True)
    assert [(d.channel, d.ok) for d in third.deliveries] == [
        ("email", True),
        ("email", True),
        ("webhook", True),
    ]
    assert len(hooks.received) == 3 and len(smtp.mails) == 1
    facts = hooks.received[-1][1]["kedasms"]["facts"]  # the retry carries the same figures
    assert (facts["approval_id"], facts["estimate"], facts["threshold"]) == (held.id, "12.5", "10")
    # delivered: never again, the next day neither (an event)
    clock.next_day()
    assert notifier.check() == [] and len(hooks.received) == 3
    # audited: the first attempt, and the outcome (the attempts between are on the page)
    assert notification_audit(ledger) == [("done", 1, "pending"), ("done", 3, "delivered")]


def test_a_webhook_down_all_day_is_tried_27_times_then_given_up(ledger, clock, hooks) -> None:
    hooks.answers["/down"] = (500, "stack trace")
    set_webhooks(ledger, [hooks.url("/down")])
    hold(ledger)
    notifier = Notifier(ledger, config=NotifyConfig(console_url=CONSOLE_URL))
    (n,) = notifier.check()
    tried = [n.last_attempt_at]
    while n.state == "pending":
        clock.at(n.next_attempt_at)
        (n,) = notifier.check()
        tried.append(n.last_attempt_at)
    minutes = [round((t - n.created_at) / timedelta(minutes=1)) for t in tried]
    assert minutes == [0, 1, 6, 21, *range(81, 1441, 60)]  # 1, 5, 15 min, then hourly: a day
    assert (n.state, n.attempts, n.note) == ("failed", 27, "given up after 27 attempts in a day")
    assert len(hooks.received) == 27
    clock.next_day()
    assert notifier.check() == [] and len(hooks.received) == 27
    assert notification_audit(ledger) == [("failed", 1, "pending"), ("failed", 27, "failed")]


def test_a_notice_raised_while_nobody_receives_them_waits_for_a_recipient_that_day(
    ledger, clock, smtp, hooks
) -> None:
    notifier = notifier_for(ledger, None, smtp)
    held = hold(ledger)
    (waiting,) = notifier.check()
    assert (waiting.cause, waiting.state, waiting.attempts) == (
        f"approval:{held.id}",
        "pending",
        0,
    )
    assert [(d.channel, d.error) for d in waiting.deliveries] == [("none", NO_RECIPIENT)]
    assert notifier.check() == []  # nothing to do until someone is added
    recipients(ledger, hooks)
    (sent,) = notifier.check()
    assert (sent.id, sent.state, sent.attempts) == (waiting.id, "delivered", 1)
    assert [m.subject for m in smtp.mails] == [
        "Approval needed: send of 12.50 USD (threshold 10.00 USD)"
    ]
    assert len(hooks.received) == 1

    # nobody again; a request waits; its day ends before anyone is added: given up
    ledger.set_team_setting(NOTIFY_EMAILS, [], by="boss")
    set_webhooks(ledger, [])
    later = hold(ledger, "big-2")
    (left,) = notifier.check()
    assert left.cause == f"approval:{later.id}" and left.waits_for_recipients
    clock.next_day()
    recipients(ledger, hooks)
    assert notifier.check() == []
    gone = ledger.notification(left.id)
    assert (gone.state, gone.note) == (
        "failed",
        f"{NO_RECIPIENT} on {left.day.isoformat()} (UTC)",
    )
    assert len(smtp.mails) == 1 and len(hooks.received) == 1


def test_an_attempt_cut_short_by_a_crash_is_made_again_once_its_lease_runs_out(
    ledger, clock, smtp
) -> None:
    ledger.set_team_setting(NOTIFY_EMAILS, ["fin@example.com"], by="boss")
    hold(ledger)
    notifier = notifier_for(ledger, None, smtp)
    # another replica raised it, claimed its first attempt, and died before delivering
    (notice,) = notifier.due(detect(notifier.scene(), notifier.config.link))
    claimed = ledger.claim_notification(
        notice.cause, kind=notice.kind, subject=notice.subject, body=notice.body
    )
    assert claimed is not None
    assert notifier.check() == [] and smtp.mails == []  # its claim still holds
    clock.advance(LEASE + timedelta(seconds=1))
    (sent,) = notifier.check()
    assert (sent.id, sent.state, sent.attempts) == (claimed, "delivered", 2)
    assert len(smtp.mails) == 1
    assert notifier.check() == [] and len(smtp.mails) == 1


def test_replicas_retrying_at_once_make_each_attempt_once(ledger_url, clock, smtp, hooks) -> None:
    url = ledger_url("shared")
    replicas = [Ledger(url, clock=clock) for _ in range(4)]
    try:
        set_webhooks(replicas[0], [hooks.url("/flaky")])
        hooks.answers["/flaky"] = (502, "bad gateway")
        hold(replicas[0])
        notifiers = [notifier_for(led, None, smtp) for led in replicas]
        (failed,) = notifiers[0].check()
        assert failed.state == "pending" and len(hooks.received) == 1
        hooks.answers["/flaky"] = (200, "ok")
        clock.at(failed.next_attempt_at)
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
        assert len(hooks.received) == 2
        (row,) = replicas[1].notifications()
        assert (row.state, row.attempts) == ("delivered", 2)
    finally:
        for led in replicas:
            led.close()


def test_each_pause_of_a_campaign_is_notified_a_second_one_the_same_day_too(
    ledger, clock, smtp
) -> None:
    ledger.set_team_setting(NOTIFY_EMAILS, ["ops@example.com"], by="boss")
    cid = ledger.create_campaign("Twice", created_by="m@example.com", currency="USD")
    ledger.plan_campaign(cid, [PlannedBatch("US", "hi", ("+12015550123",), 50_000)])
    ledger.pause_campaign(cid, "Paused: the service is down")
    notifier = notifier_for(ledger, None, smtp)
    first = current_pause(ledger, cid)
    assert [n.cause for n in notifier.check()] == [first]
    clock.advance(timedelta(minutes=10))
    assert ledger.mark_campaign_sending(cid)  # resumed
    assert ledger.pause_campaign(cid, "Paused: the balance is too low")  # and paused again
    second = current_pause(ledger, cid)
    assert second != first and second.startswith(f"campaign_paused:{cid}:")
    assert [n.cause for n in notifier.check()] == [second]
    assert [m.subject for m in smtp.mails] == [f"Campaign “Twice” (#{cid}) paused"] * 2
    assert "Why: Paused: the service is down" in smtp.mails[0].body
    assert "Why: Paused: the balance is too low" in smtp.mails[1].body
    clock.next_day()  # still paused the next day: that pause was told
    assert notifier.check() == [] and len(smtp.mails) == 2


def test_a_cap_of_zero_is_a_cap_in_the_notices() -> None:
    """0 messages a day (sending stopped) is crossed by the first message, as the service
    counts it, and the notice says "of 0", never "no daily cap"."""
    from kedacore import Limits
    from kedacore.notify.causes import _usage_lines, crossed_caps

    limits = Limits.from_wire(
        {"dailySmsCap": 0, "dailySpendCap": "0", "usage": {"smsSent": 1, "spend": "0.05"}}
    )
    assert crossed_caps(limits) == ["dailySmsCap", "dailySpendCap"]
    assert _usage_lines(limits, "USD") == ["SMS today: 1 of 0", "Spend today: 0.05 USD of 0.00 USD"]
