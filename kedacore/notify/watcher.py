"""The notifier: looks at the ledger and the account every few seconds, and notifies each cause
once per UTC day — claimed in the ledger first, delivered after (so two threads, processes or
replicas never send the same one twice), then audited.

The console's runtime starts one per process (a daemon thread); pages may :meth:`~Notifier.
poke` it after something happened so that it looks at once. A look never runs in a page's
script: delivery waits on servers (up to a timeout each), and a page or a send must not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kedacore.api.errors import KedaError
from kedacore.api.types import Limits
from kedacore.ledger.notices import Delivery, Notification
from kedacore.ledger.team import BALANCE_FLOOR, NOTIFY_EMAILS, NOTIFY_WEBHOOKS
from kedacore.money import to_micros
from kedacore.notify.causes import Notice, Scene, detect, trial_notice
from kedacore.notify.config import DEFAULT_INTERVAL, NotifyConfig, notify_config
from kedacore.notify.deliver import deliver
from kedacore.redaction import redact_text

log = logging.getLogger("kedacore.notify")

CONSOLE = "console"  # who the audit log says sent a notification


class Notifier:
    """Finds the causes of notifications and delivers them (see the module docstring).

    Args:
        ledger: the console's ``Ledger`` (its clock decides the day).
        client: a ``KedaClient`` for today's usage and the balance (None: the ledger only).
        config: the console's address and SMTP; until :meth:`configure` gives one, the
            thread does not look (the console passes its secrets in on its first page run).
        interval: seconds between two looks of the thread.
        context, transport: TLS context for SMTP and httpx transport for webhooks (tests).
    """

    def __init__(
        self,
        ledger: Any,
        *,
        client: Any = None,
        config: NotifyConfig | None = None,
        interval: float = DEFAULT_INTERVAL,
        context: Any = None,
        transport: Any = None,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.interval = interval
        self._config = config
        self._context = context
        self._transport = transport
        self._lock = threading.Lock()  # one look at a time in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_look: datetime | None = None
        self.last_error: str | None = None

    # -- configuration --------------------------------------------------------------------------

    @property
    def config(self) -> NotifyConfig:
        return self._config or notify_config(None)

    @property
    def configured(self) -> bool:
        return self._config is not None

    def configure(self, config: NotifyConfig) -> None:
        """Use ``config`` from now on (the console's secrets; cheap, call on every page run)."""
        self._config = config

    def targets(self) -> tuple[list[str], list[str]]:
        """The addresses and webhooks notifications go to (the team's settings)."""
        emails = self.ledger.team_setting(NOTIFY_EMAILS) or []
        hooks = self.ledger.team_setting(NOTIFY_WEBHOOKS) or []
        return [str(e) for e in emails], [str(h) for h in hooks]

    # -- looking ----------------------------------------------------------------------------

    def _account(self) -> Limits | None:
        """Today's limits from the service; the balance read on the way is kept as a reading
        (the balance floor and the statement use the ledger's readings)."""
        if self.client is None:
            return None
        limits = None
        try:
            limits = self.client.limits.get()
        except KedaError as exc:
            log.info("notifier: limits not read (%s)", type(exc).__name__)
        try:
            balance = self.client.account.balance()
        except KedaError as exc:
            log.info("notifier: balance not read (%s)", type(exc).__name__)
        else:
            self.ledger.record_balance(
                to_micros(balance.balance), to_micros(balance.frozen), balance.currency
            )
        return limits

    def scene(self) -> Scene:
        """What calls for notifications now."""
        limits = self._account()
        scan = self.ledger.notice_scan()
        try:
            floor = self.ledger.money_setting(BALANCE_FLOOR)
        except (ValueError, ArithmeticError):  # a malformed setting: no floor to compare
            floor = None
        currency = scan.balance.currency if scan.balance else "USD"
        return Scene(scan=scan, limits=limits, floor_micros=floor, currency=currency)

    def due(self, notices: Sequence[Notice]) -> list[Notice]:
        """The notices not notified yet: an event once after it happened (a campaign paused
        for a week is notified once, not every day); a state once per day (the claim)."""
        events = [n.cause for n in notices if n.event_at is not None]
        last = self.ledger.last_notified(events) if events else {}
        return [
            n
            for n in notices
            if n.event_at is None or n.cause not in last or last[n.cause] < n.event_at
        ]

    def check(self) -> list[Notification]:
        """Look once and deliver what is due; the notifications this call sent."""
        with self._lock:
            config = self.config
            notices = self.due(detect(self.scene(), config.link))
            sent = []
            for notice in notices:
                done = self.send(notice)
                if done is not None:
                    sent.append(done)
            self.last_look = self.ledger.now()
            return sent

    # -- delivering -------------------------------------------------------------------------

    def send(self, notice: Notice, *, by: str = CONSOLE) -> Notification | None:
        """Claim today's notification of ``notice.cause`` and deliver it; None when it was
        claimed already (by this or another process)."""
        claimed = self.ledger.claim_notification(
            notice.cause,
            kind=notice.kind,
            subject=notice.subject,
            body=notice.body,
            link=notice.link,
        )
        if claimed is None:
            return None
        emails, webhooks = self.targets()
        try:
            outcomes = deliver(
                notice,
                emails=emails,
                webhooks=webhooks,
                smtp=self.config.smtp,
                context=self._context,
                transport=self._transport,
            )
        except Exception as exc:  # a bug must not leave the row looking "in progress"
            log.exception("notifier: delivering %s failed", notice.cause)
            outcomes = [Delivery("none", "", False, f"not delivered ({type(exc).__name__})")]
        self.ledger.record_deliveries(claimed, outcomes)
        real = [d for d in outcomes if d.channel != "none"]
        if real:
            self.ledger.audit(
                by,
                "notification",
                target=notice.cause,
                after={
                    "subject": notice.subject,
                    "deliveries": [d.as_json() for d in real],  # webhooks masked already
                },
                detail=notice.kind_label,
                outcome="done" if all(d.ok for d in real) else "failed",
            )
        return self.ledger.notification(claimed)

    def send_test(self, by: str) -> Notification:
        """Send a test notification now to every recipient (``by``: who asked, audited)."""
        with self._lock:
            for _ in range(3):  # a clash of causes needs two clicks in one microsecond
                notice = trial_notice(by, self.ledger.now(), self.config.link("/notifications"))
                done = self.send(notice, by=by)
                if done is not None:
                    return done
        raise RuntimeError("the test notification could not be recorded")

    # -- the thread -------------------------------------------------------------------------

    def poke(self) -> None:
        """Look now rather than at the next interval (never waits). Without the thread,
        one look runs in a short-lived thread of its own."""
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            return
        threading.Thread(target=self._look, name="notifier-once", daemon=True).start()

    def start(self) -> None:
        """Start the thread (not with an interval of 0: then only :meth:`poke` looks)."""
        if self.interval <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a delivery under way finishes within its timeout)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.configured:
                self._look()

    def _look(self) -> None:
        try:
            self.check()
            self.last_error = None
        except Exception as exc:  # the ledger busy or gone, a bug: say so, look again later
            self.last_error = redact_text(f"{type(exc).__name__}: {exc}")[:300]
            log.warning("notifier: the look failed (%s)", type(exc).__name__, exc_info=True)
