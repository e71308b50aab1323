"""The notifier: looks at the ledger and the account every few seconds, raises each cause once
per UTC day, and delivers what is due — each attempt claimed in the ledger first, delivered
after (so two threads, processes or replicas never make the same attempt twice), then audited.
A failed delivery is tried again with backoff for up to a day (``kedacore.ledger.notices``);
a notification raised while nobody receives them waits for a recipient until the day ends.

The console's runtime starts one per process (a daemon thread); pages may :meth:`~Notifier.
poke` it after something happened so that it looks at once. A look never runs in a page's
script: delivery waits on servers (up to a timeout each), and a page or a send must not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from kedacore.api.errors import KedaError
from kedacore.api.types import Limits
from kedacore.ledger.notices import NO_RECIPIENT, PENDING, Delivery, Notification
from kedacore.ledger.team import BALANCE_FLOOR, NOTIFY_EMAILS, NOTIFY_WEBHOOKS
from kedacore.money import to_micros
from kedacore.notify.causes import KINDS, Notice, Scene, detect, trial_notice
from kedacore.notify.config import DEFAULT_INTERVAL, NotifyConfig, notify_config
from kedacore.notify.deliver import deliver, hook_ref
from kedacore.redaction import redact_text

log = logging.getLogger("kedacore.notify")

CONSOLE = "console"  # who the audit log says sent a notification


def channels_said(deliveries: Sequence[Delivery]) -> str:
    """Per channel, who had a notification and why the others did not: ``webhook: delivered;
    e-mail: not delivered to any of 2 — SMTP is not configured …``."""
    said = []
    for channel, name in (("webhook", "webhook"), ("email", "e-mail")):
        mine = [d for d in deliveries if d.channel == channel]
        if not mine:
            continue
        ok = sum(d.ok for d in mine)
        failed = [d for d in mine if not d.ok]
        whys = list(dict.fromkeys(d.error or "no reason given" for d in failed))
        if not failed:
            said.append(f"{name}: delivered" + (f" to all {len(mine)}" if len(mine) > 1 else ""))
        elif len(mine) == 1:
            said.append(f"{name}: not delivered — {whys[0]}")
        elif ok == 0 and len(whys) == 1:
            said.append(f"{name}: not delivered to any of {len(mine)} — {whys[0]}")
        else:
            each = ", ".join(f"{d.to} ({d.error or 'no reason given'})" for d in failed)
            said.append(f"{name}: delivered to {ok} of {len(mine)}, not to {each}")
    return "; ".join(said) or "no recipient"


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
        """Look once: raise what is due, deliver what waits; the notifications this call
        raised or made an attempt at (as they are after it)."""
        with self._lock:
            config = self.config
            raised: set[int] = set()
            for notice in self.due(detect(self.scene(), config.link)):
                found = self.ledger.raise_notification(
                    notice.cause,
                    kind=notice.kind,
                    subject=notice.subject,
                    body=notice.body,
                    link=notice.link,
                    facts=notice.facts,
                )
                if found is not None:
                    raised.add(found)
            sent = self.deliver_pending(raised)
            self.last_look = self.ledger.now()
            return sent

    def deliver_pending(self, raised: Collection[int] = ()) -> list[Notification]:
        """Deliver every pending notification that is due (each attempt claimed first); give
        up those superseded, or left without recipients past their day. ``raised``: ids this
        look raised (returned even when nobody receives them)."""
        emails, webhooks = self.targets()
        now = self.ledger.now()
        today = now.astimezone(UTC).date()
        done: list[Notification] = []
        for n in self.ledger.pending_notifications():
            if n.leased(now):
                continue
            if n.superseded:
                self.ledger.give_up_notification(
                    n.id, n.attempts, "superseded: the cause was raised again on a later day"
                )
            elif n.waits_for_recipients and n.day < today:
                self.ledger.give_up_notification(
                    n.id, n.attempts, f"{NO_RECIPIENT} on {n.day.isoformat()} (UTC)"
                )
            elif not emails and not webhooks:
                if any(d.ok for d in n.deliveries):  # some had it: nobody is left to tell
                    self.ledger.give_up_notification(n.id, n.attempts, "recipients removed")
                elif not n.waits_for_recipients:
                    self.ledger.wait_for_recipients(n.id)
                if n.id in raised:
                    done.append(self.ledger.notification(n.id))
            elif n.due(now) and self.ledger.claim_delivery(n.id, n.attempts):
                done.append(self._deliver(n, n.attempts + 1, emails, webhooks, CONSOLE))
        return [n for n in done if n is not None]

    def _deliver(
        self,
        n: Notification,
        attempt: int,
        emails: Sequence[str],
        webhooks: Sequence[str],
        by: str,
        *,
        retry: bool = True,
    ) -> Notification:
        """Make the claimed attempt number ``attempt`` of ``n`` — to the recipients that did
        not have it yet — record it, and audit it: the first attempt and the outcome (delivered,
        or given up); attempts in between are on the Notifications page."""
        had = {d.key for d in n.deliveries if d.ok}
        emails = [e for e in emails if f"email:{e}" not in had]
        webhooks = [h for h in webhooks if hook_ref(h) not in had]
        notice = Notice(n.cause, n.kind, n.subject, n.body, n.link, dict(n.facts))
        if not emails and not webhooks and had:
            outcomes: list[Delivery] = []  # everyone left has it already
        else:
            try:
                outcomes = deliver(
                    notice,
                    emails=emails,
                    webhooks=webhooks,
                    smtp=self.config.smtp,
                    context=self._context,
                    transport=self._transport,
                    allow_private=self.config.allow_private_webhooks,
                )
            except Exception as exc:  # a bug must not leave the attempt "in progress"
                log.exception("notifier: delivering %s failed", n.cause)
                outcomes = [Delivery("none", "", False, f"not delivered ({type(exc).__name__})")]
        after = self.ledger.finish_delivery(n.id, attempt, outcomes, retry=retry)
        if after is None:
            return n
        real = [d for d in outcomes if d.channel != "none"]
        if real and (attempt == 1 or after.state != PENDING):
            label = KINDS.get(after.kind, after.kind)
            label = label if attempt == 1 else f"{label} (attempt {attempt})"
            reached = [d for d in after.deliveries if d.channel != "none"]  # with earlier ones
            self.ledger.audit(
                by,
                "notification",
                target=n.cause,
                after={
                    "subject": n.subject,
                    "deliveries": [d.as_json() for d in real],  # webhooks masked already
                    "attempt": attempt,
                    "state": after.state,
                },
                detail=f"{label}: {channels_said(reached or real)}",
                # Done once anyone has it (a channel not set up is said in the detail);
                # failed when nobody does.
                outcome="done" if any(d.ok for d in reached or real) else "failed",
            )
        return after

    def send_test(self, by: str) -> Notification:
        """Send a test notification now to every recipient (``by``: who asked, audited); it
        is not tried again: what became of it is what the page shows."""
        with self._lock:
            for _ in range(3):  # a clash of causes needs two clicks in one microsecond
                notice = trial_notice(by, self.ledger.now(), self.config.link("/notifications"))
                found = self.ledger.claim_notification(
                    notice.cause,
                    kind=notice.kind,
                    subject=notice.subject,
                    body=notice.body,
                    link=notice.link,
                    facts=notice.facts,
                )
                if found is not None:
                    claimed = self.ledger.notification(found)
                    emails, webhooks = self.targets()
                    return self._deliver(claimed, 1, emails, webhooks, by, retry=False)
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
