"""What calls for a notification, and the message that says so: plain functions of what the
ledger and the service say now (no I/O here).

Each cause has a stable key, notified at most once per UTC day (the ledger's unique (cause,
day)):

- ``usage_alert`` — today's SMS or spend usage reached the alert threshold × a daily cap;
- ``cap_block`` — a daily cap refused a send today, or paused a campaign;
- ``balance_floor`` — the latest balance reading is below the floor finance set;
- ``campaign_paused:<id>:<when>`` — a campaign paused (``when``: the pause's time, so that
  each pause is its own cause, a second one the same day too);
- ``campaign_failed:<id>`` — a campaign that ended with requests refused, could not be
  planned, or whose messages mostly failed;
- ``approval:<id>`` — a send or campaign waits for approval.

The first three are states of the day: while they hold, they are notified again the next day.
The others are events: notified once for the change that raised them (``event_at``), not
every day the campaign stays paused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kedacore.api.types import Limits
from kedacore.ledger.notices import CampaignFacts, NoticeScan, WaitingApproval
from kedacore.money import from_micros, normalize

# A campaign paused by a cap (kedacore.campaign.run): "Paused: dailySmsCap reached — …".
CAP_PAUSE = re.compile(r"\bPaused: (dailySmsCap|dailySpendCap|a daily cap) reached\b")
CAP_WORDS = {"dailySmsCap": "daily SMS cap", "dailySpendCap": "daily spend cap"}
PLANNING_FAILED = "planning failed"

KINDS = {
    "usage_alert": "Usage alert",
    "cap_block": "A cap blocked sending",
    "balance_floor": "Balance below the floor",
    "campaign_paused": "Campaign paused",
    "campaign_failed": "Campaign failed",
    "approval": "Waiting for approval",
    "test": "Test notification",
    "invite": "Invitation to sign in",
}


@dataclass(frozen=True)
class Notice:
    """One notification to send: ``cause`` its key, ``body`` plain text (figures and link),
    ``facts`` the same figures for a webhook's structured part (strings and numbers)."""

    cause: str
    kind: str
    subject: str
    body: str
    link: str
    facts: dict[str, Any] = field(default_factory=dict)
    event_at: datetime | None = None  # an event's time: notified once after it

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass(frozen=True)
class Scene:
    """What the watcher looked at: the ledger's scan, today's limits, the balance floor."""

    scan: NoticeScan
    limits: Limits | None
    floor_micros: int | None
    currency: str


def money(amount: Decimal, currency: str) -> str:
    """``0.048 USD``, ``1,000.00 USD``: exact, at least 2 decimals."""
    text = format(normalize(amount), ",f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')} {currency}"


def percent(share: Decimal) -> str:
    value = (share * 100).normalize()
    return f"{value:f} %"


def _share(used: Decimal, cap: Decimal) -> str:
    if not cap:
        return ""
    value = (used * 100 / cap).quantize(Decimal("0.1"))
    return f" ({normalize(value):f} %)"


def _utc(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def one_line(text: str, limit: int = 200) -> str:
    """User text for a subject or a line: no line breaks or control characters, cut short."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _body(lines: Iterable[str], link: str, where: str) -> str:
    return "\n".join([*lines, "", f"{where}: {link}"])


# -- the causes ----------------------------------------------------------------------------


def crossed_caps(limits: Limits) -> list[str]:
    """The daily caps whose alert point (threshold × cap) today's usage has reached."""
    usage, share = limits.usage, limits.alert_threshold
    caps = []
    sms_cap, spend_cap = limits.daily_sms_cap, limits.daily_spend_cap  # 0: nothing may go
    if sms_cap is not None and usage.sms_sent and usage.sms_sent >= share * sms_cap:
        caps.append("dailySmsCap")
    if spend_cap is not None and usage.spend and usage.spend >= share * spend_cap:
        caps.append("dailySpendCap")
    return caps


def _usage_lines(limits: Limits, currency: str) -> list[str]:
    usage = limits.usage
    lines = []
    if limits.daily_sms_cap is not None:
        lines.append(
            f"SMS today: {usage.sms_sent:,} of {limits.daily_sms_cap:,}"
            f"{_share(Decimal(usage.sms_sent), Decimal(limits.daily_sms_cap))}"
        )
    else:
        lines.append(f"SMS today: {usage.sms_sent:,} (no daily cap)")
    if limits.daily_spend_cap is not None:
        lines.append(
            f"Spend today: {money(usage.spend, currency)} of "
            f"{money(limits.daily_spend_cap, currency)}"
            f"{_share(usage.spend, limits.daily_spend_cap)}"
        )
    else:
        lines.append(f"Spend today: {money(usage.spend, currency)} (no daily cap)")
    return lines


def _usage_facts(limits: Limits) -> dict[str, Any]:
    return {
        "sms_today": limits.usage.sms_sent,
        "sms_cap": limits.daily_sms_cap,
        "spend_today": format(normalize(limits.usage.spend), "f"),
        "spend_cap": format(normalize(limits.daily_spend_cap), "f")
        if limits.daily_spend_cap is not None
        else None,
        "alert_threshold": format(normalize(limits.alert_threshold), "f"),
        "block_on_limit": limits.block_on_limit,
        "usage_day": limits.usage.date,
    }


def usage_alert(scene: Scene, link: str) -> Notice | None:
    limits = scene.limits
    if limits is None:
        return None
    crossed = crossed_caps(limits)
    if not crossed:
        return None
    which = " and the ".join(CAP_WORDS[c] for c in crossed)
    threshold = percent(limits.alert_threshold)
    lines = [
        f"Today's usage (UTC day {limits.usage.date or scene.scan.now.date()}) reached the "
        f"alert threshold, {threshold} of the {which}.",
        "",
        *_usage_lines(limits, scene.currency),
        f"Caps block sends: {'yes' if limits.block_on_limit else 'no'}",
    ]
    return Notice(
        cause="usage_alert",
        kind="usage_alert",
        subject=f"Usage alert: today's usage reached {threshold} of the {which}",
        body=_body(lines, link, "The Limits page"),
        link=link,
        facts={**_usage_facts(limits), "caps": crossed, "currency": scene.currency},
    )


def cap_block(scene: Scene, link: str) -> Notice | None:
    refusals = scene.scan.cap_refusals
    today = scene.scan.now.date()
    paused = [
        f
        for f in scene.scan.paused
        if f.error and CAP_PAUSE.search(f.error) and f.updated_at.date() == today
    ]
    if not refusals and not paused:
        return None
    caps = list(dict.fromkeys([r.cap for r in refusals] + [_pause_cap(f) for f in paused]))
    named = [CAP_WORDS[c] for c in caps if c in CAP_WORDS] or ["a daily cap"]
    which = " and the ".join(named)
    lines = [f"The {which} refused sending today (UTC day {today})."]
    if refusals:
        lines.append("")
        for r in refusals:
            lines.append(
                f"Sends refused by the {CAP_WORDS[r.cap]}: {r.sends:,} "
                f"({r.recipients:,} recipients), the last at {_utc(r.last_at)}"
            )
    if paused:
        lines.append("")
        for f in paused:
            lines.append(
                f"Campaign paused: “{one_line(f.name, 80)}” (#{f.id}), "
                f"{f.batch('planned'):,} of {f.recipients:,} recipients left"
            )
    if scene.limits is not None:
        lines += ["", *_usage_lines(scene.limits, scene.currency)]
    return Notice(
        cause="cap_block",
        kind="cap_block",
        subject=f"Sending blocked today: the {which} is reached",
        body=_body(lines, link, "Raise the cap or turn blocking off on the Limits page"),
        link=link,
        facts={
            "caps": caps,
            "refused_sends": sum(r.sends for r in refusals),
            "refused_recipients": sum(r.recipients for r in refusals),
            "paused_campaigns": [f.id for f in paused],
            **(_usage_facts(scene.limits) if scene.limits is not None else {}),
            "currency": scene.currency,
        },
    )


def _pause_cap(f: CampaignFacts) -> str:
    found = CAP_PAUSE.search(f.error or "")
    return found.group(1) if found else "a daily cap"


def balance_floor(scene: Scene, link: str) -> Notice | None:
    reading, floor = scene.scan.balance, scene.floor_micros
    if reading is None or floor is None or reading.balance_micros >= floor:
        return None
    cur = reading.currency
    balance, wanted = from_micros(reading.balance_micros), from_micros(floor)
    lines = [
        f"The account's available balance is {money(balance, cur)}, below the floor of "
        f"{money(wanted, cur)} that finance set ({money(wanted - balance, cur)} short).",
        "",
        f"Available: {money(balance, cur)}",
        f"Frozen for messages not yet charged: {money(from_micros(reading.frozen_micros), cur)}",
        f"Floor: {money(wanted, cur)}",
        f"Read at {_utc(reading.read_at)}",
        "",
        "Top up the account before sends and campaigns are refused for lack of funds.",
    ]
    return Notice(
        cause="balance_floor",
        kind="balance_floor",
        subject=f"Balance below the floor: {money(balance, cur)} (floor {money(wanted, cur)})",
        body=_body(lines, link, "The Statement page"),
        link=link,
        facts={
            "balance": format(normalize(balance), "f"),
            "frozen": format(normalize(from_micros(reading.frozen_micros)), "f"),
            "floor": format(normalize(wanted), "f"),
            "currency": cur,
            "read_at": reading.read_at.isoformat(),
        },
    )


def _campaign_lines(f: CampaignFacts) -> list[str]:
    sent = f.batch("sent")
    lines = [
        f"Recipients: {f.recipients:,} — sent {sent:,}, left {f.batch('planned'):,}"
        + (f", refused {f.batch('refused'):,}" if f.batch("refused") else "")
        + (f", to check {f.batch('uncertain'):,}" if f.batch("uncertain") else ""),
        f"Debited so far: {money(from_micros(f.debited_micros), f.currency)}",
    ]
    if f.messages:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(f.messages.items()))
        lines.append(f"Messages: {counts}")
    return lines


def _campaign_facts(f: CampaignFacts) -> dict[str, Any]:
    return {
        "campaign_id": f.id,
        "campaign": f.name,
        "status": f.status,
        "reason": f.error or "",
        "recipients": f.recipients,
        "sent": f.batch("sent"),
        "left": f.batch("planned"),
        "refused": f.batch("refused"),
        "debited": format(normalize(from_micros(f.debited_micros)), "f"),
        "currency": f.currency,
        "messages": dict(f.messages),
    }


def campaign_paused(f: CampaignFacts, link: str) -> Notice:
    name = one_line(f.name, 120)
    lines = [
        f"Campaign “{name}” (#{f.id}) is paused.",
        f"Why: {one_line(f.error or 'no reason recorded', 600)}",
        "",
        *_campaign_lines(f),
    ]
    return Notice(
        cause=pause_cause(f),
        kind="campaign_paused",
        subject=f"Campaign “{name}” (#{f.id}) paused",
        body=_body(lines, link, "Open the campaign"),
        link=link,
        facts=_campaign_facts(f),
        event_at=f.updated_at,
    )


def pause_cause(f: CampaignFacts) -> str:
    """``campaign_paused:12:20250601T101502123456Z``: the campaign and its pause's time (the
    campaign's last change, which a pause is, while it stays paused)."""
    return f"campaign_paused:{f.id}:{f.updated_at.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"


def failure(f: CampaignFacts) -> str | None:
    """Why an ended campaign counts as failed, or None: requests refused, planning failed,
    or at least half of its messages FAILED or UNDELIVERED."""
    if f.status == "cancelled":
        return "it could not be planned" if f.error == PLANNING_FAILED else None
    if f.status != "done":
        return None
    if f.batch("refused", "batches"):
        return (
            f"KedaSMS refused {f.batch('refused', 'batches'):,} of its requests "
            f"({f.batch('refused'):,} recipients)"
        )
    total, failed = sum(f.messages.values()), f.failed_messages
    if failed and failed * 2 >= total:
        return f"{failed:,} of its {total:,} messages failed or were not delivered"
    return None


def campaign_failed(f: CampaignFacts, link: str) -> Notice | None:
    why = failure(f)
    if why is None:
        return None
    name = one_line(f.name, 120)
    lines = [f"Campaign “{name}” (#{f.id}) failed: {why}."]
    if f.error and f.error != PLANNING_FAILED:
        lines.append(f"Recorded reason: {one_line(f.error, 600)}")
    lines += ["", *_campaign_lines(f)]
    return Notice(
        cause=f"campaign_failed:{f.id}",
        kind="campaign_failed",
        subject=f"Campaign “{name}” (#{f.id}) failed",
        body=_body(lines, link, "Open the campaign"),
        link=link,
        facts={**_campaign_facts(f), "why": why},
        event_at=f.updated_at,
    )


def approval(a: WaitingApproval, link: str) -> Notice:
    what = "campaign" if a.kind == "campaign" else "send"
    estimate, threshold = from_micros(a.estimate_micros), from_micros(a.threshold_micros)
    summary = one_line(a.summary or f"{what} {a.ref}", 200)
    lines = [
        f"A {what} waits for approval by a finance or admin member other than its requester.",
        "",
        f"What: {summary}",
        f"Requested by {a.requested_by} at {_utc(a.requested_at)}",
        f"Estimate: {money(estimate, a.currency)} — over the approval threshold of "
        f"{money(threshold, a.currency)}",
        "Nothing is frozen or sent until it is approved.",
    ]
    return Notice(
        cause=f"approval:{a.id}",
        kind="approval",
        subject=f"Approval needed: {what} of {money(estimate, a.currency)} "
        f"(threshold {money(threshold, a.currency)})",
        body=_body(lines, link, "Approve or reject it on the Approvals page"),
        link=link,
        facts={
            "approval_id": a.id,
            "kind": a.kind,
            "ref": a.ref,
            "summary": a.summary,
            "requested_by": a.requested_by,
            "estimate": format(normalize(estimate), "f"),
            "threshold": format(normalize(threshold), "f"),
            "currency": a.currency,
        },
        event_at=a.requested_at,
    )


def detect(scene: Scene, link: Any) -> list[Notice]:
    """Every notice the scene calls for, in a stable order (``link(path)`` → a console URL)."""
    found: list[Notice | None] = [
        usage_alert(scene, link("/limits")),
        cap_block(scene, link("/limits")),
        balance_floor(scene, link("/statement")),
    ]
    for f in scene.scan.paused:
        found.append(campaign_paused(f, link(f"/campaigns?campaign={f.id}")))
    for f in scene.scan.ended:
        found.append(campaign_failed(f, link(f"/campaigns?campaign={f.id}")))
    for a in scene.scan.approvals:
        found.append(approval(a, link("/approvals")))
    return [n for n in found if n is not None]


def trial_notice(by: str, at: datetime, link: str) -> Notice:
    """The "Send a test notification" message."""
    lines = [
        f"A test notification, sent by {by} at {_utc(at)}.",
        "If you read this, notifications of the KedaSMS Console reach you here.",
    ]
    return Notice(
        cause=f"test:{at.strftime('%H%M%S%f')}",
        kind="test",
        subject="Test notification from the KedaSMS Console",
        body=_body(lines, link, "The Notifications page"),
        link=link,
        facts={"by": by},
    )
