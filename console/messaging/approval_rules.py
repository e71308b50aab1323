"""When a send or a campaign waits for approval, and the checks made again when it is approved.
No Streamlit here.

- :class:`Gate`: the team's approval threshold and whether it applies. It applies only when
  members sign in: the one local operator has nobody to approve for them, so the console says
  so and never holds their sends.
- :func:`recheck`: on approval, the cost is estimated again with the prices of now, and the
  balance and today's caps are read again; what stands in the way is said for the approver,
  with the page that fixes it (``docs/team.md``, "Approvals").
- :func:`decision_notice`: the e-mail that tells a requester what was decided.
- Requests are named for people (:func:`send_name`), never by their clientRef.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from console.views import URL_RE, estimate_send, money, rewritten_for_estimate
from kedacore.api.types import Balance, Limits, Pricing
from kedacore.ledger import CampaignBatch, Ledger, LedgerSend
from kedacore.ledger.records import Approval
from kedacore.ledger.team import APPROVAL_THRESHOLD
from kedacore.money import from_micros, to_micros
from kedacore.notify import Notice
from kedacore.segments import count_segments, price
from kedacore.team import Actor
from kedacore.words import counted

STATE_WORDS = {
    "waiting": "waiting for approval",
    "approved": "approved",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
}
NOBODY = "Nobody can approve this now"


counted = counted  # kedacore.words.counted, where the pages have always found it


def send_name(messages: int, country: str) -> str:
    """A held send as people call it: ``Send of 3 messages to US`` (plain text)."""
    return f"Send of {counted(messages, 'message')} to {country.upper()}"


def nobody_approves(requester: str | None = None, *, admin: bool = False) -> str:
    """Why a request waits for nobody (plain text): no member other than its requester may
    approve. ``requester`` None: "you"; ``admin``: the reader can give roles themselves."""
    who = f"no member other than {requester}" if requester else "no member other than you"
    fix = (
        "give someone the finance role on the Members page"
        if admin
        else "ask an admin to give someone the finance role"
    )
    return f"{NOBODY}: {who} may approve requests — {fix}."


def gate(ledger: Ledger, actor: Actor) -> Gate:
    """The threshold as it stands for ``actor`` (the local operator: not held)."""
    return Gate(ledger.money_setting(APPROVAL_THRESHOLD), sign_in=not actor.local)


@dataclass(frozen=True, slots=True)
class Gate:
    """The approval threshold as it stands for one action."""

    threshold_micros: int | None  # the team's setting; None: off
    sign_in: bool  # members sign in (else: one local operator, nobody to approve)

    @property
    def threshold(self) -> Decimal | None:
        return from_micros(self.threshold_micros) if self.threshold_micros is not None else None

    def over(self, estimate: Decimal | None) -> bool:
        """Whether ``estimate`` is over the threshold (strictly: at it, it goes)."""
        return (
            self.threshold_micros is not None
            and estimate is not None
            and to_micros(estimate) > self.threshold_micros
        )

    def holds(self, estimate: Decimal | None) -> bool:
        """Whether something costing ``estimate`` waits for another member's approval."""
        return self.sign_in and self.over(estimate)

    def unheld(self, estimate: Decimal | None, currency: str) -> str | None:
        """For the local operator, over the threshold: why it goes without approval."""
        if self.sign_in or not self.over(estimate):
            return None
        return (
            f"Over the approval threshold of {money(self.threshold, currency)}, but nobody signs "
            "in to this console: there is no second person to approve it, so it goes without "
            "approval. Approvals apply once sign-in is configured (docs/team.md)."
        )


def who_approves(approvers: Sequence[str], requester: str | None = None) -> str:
    """Whom a request waits for, in words (plain text); ``requester`` None: "you"."""
    other = f"other than {requester}" if requester else "other than you"
    if not approvers:
        return (
            f"a finance or admin member {other} (the team has none now: nobody can approve it "
            "until an admin gives someone the finance role)"
        )
    more = f" and {len(approvers) - 5} more" if len(approvers) > 5 else ""
    names = ", ".join(approvers[:5]) + more
    return f"a finance or admin member {other} ({names})"


def countries_text(countries: dict[str, int]) -> str:
    """``US 3, GB 1`` (plain text)."""
    return ", ".join(f"{c} {n:,}" for c, n in countries.items()) or "—"


def decision_text(item: Approval) -> str:
    """Where a request stands, in one sentence (plain text)."""
    if item.waiting:
        return (
            f"Waiting for approval: {money(item.estimate, item.currency)} is over the threshold "
            f"of {money(item.threshold, item.currency)}."
        )
    who = item.decided_by or "someone"
    if item.state == "withdrawn":
        return f"Withdrawn by {who}."
    reason = f": {item.reason}" if item.reason else "."
    return f"{item.state.capitalize()} by {who}{reason}"


AFTER = {  # what a decision does, for the requester's mail
    ("approved", "send"): "It goes out now, on your behalf: Recent sends on the Send page shows "
    "what became of it.",
    ("approved", "campaign"): "The campaign starts now: follow it on the Campaigns page.",
    ("rejected", "send"): "Nothing was sent and nothing was charged.",
    ("rejected", "campaign"): "Nothing was sent and nothing was charged.",
}


def decision_notice(item: Approval, name: str, link: str) -> Notice:
    """The e-mail telling ``item``'s requester what was decided (``item`` decided; ``name`` as
    people call the request; ``link`` the Approvals page)."""
    who = item.decided_by or "someone"
    verdict = item.state  # approved / rejected
    when = item.decided_at.strftime("%Y-%m-%d %H:%M UTC") if item.decided_at else ""
    cur = item.currency
    lines = [
        f"{who} {verdict} your request at {when}: {name}.",
        "",
        f"Reason: {item.reason or '(none given)'}",
        f"Estimate: {money(item.estimate, cur)}, over the approval threshold of "
        f"{money(item.threshold, cur)}.",
        AFTER.get((verdict, item.kind), ""),
        "",
        f"Your requests, and where each stands, are on the Approvals page: {link}",
    ]
    return Notice(
        cause=f"decision:{item.id}",
        kind="decision",
        subject=f"{verdict.capitalize()} by {who}: {name}",
        body="\n".join(lines) + "\n",
        link=link,
        facts={
            "approval_id": item.id,
            "kind": item.kind,
            "state": verdict,
            "decided_by": who,
            "reason": item.reason or "",
        },
        event_at=item.decided_at,
    )


# -- the checks made again on approval -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """What stands in the way of an approval (plain text), and the page that fixes it."""

    text: str
    page: str | None = None
    action: str | None = None


@dataclass(frozen=True, slots=True)
class Recheck:
    """The cost now, and what the balance and today's caps say about it."""

    estimate: Decimal | None  # None: a country is no longer priced
    messages: int
    currency: str
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.estimate is not None and not self.problems

    @property
    def reason(self) -> str:
        return " ".join(p.text for p in self.problems)


def send_estimate(record: LedgerSend, pricing: Pricing, short_base: str) -> Decimal | None:
    """What a held send costs with the prices of now (None: its country is not priced)."""
    return estimate_send(
        record.content,
        recipients=record.recipient_count,
        price_per_segment=pricing.price_for(record.country),
        currency=pricing.currency,
        track_click=record.track_click,
        short_base=short_base,
    ).total


def campaign_estimate(
    batches: Iterable[CampaignBatch],
    pricing: Pricing,
    *,
    track_click: bool = False,
    short_base: str = "",
) -> Decimal | None:
    """What a held campaign's planned requests cost with the prices of now, as KedaSMS bills
    them: segments × price × recipients, a text with links counted with its links replaced by
    short links when the campaign tracks clicks; None when a country is not priced."""
    total = Decimal(0)
    segments: dict[str, int] = {}
    for b in batches:
        per_segment = pricing.price_for(b.country)
        if per_segment is None:
            return None
        if b.content not in segments:
            text = b.content
            if track_click and URL_RE.search(text):
                text = rewritten_for_estimate(text, short_base)
            segments[b.content] = count_segments(text).segments
        total += price(per_segment, segments[b.content], len(b.recipients))
    return total


def recheck(
    estimate: Decimal | None,
    messages: int,
    balance: Balance,
    limits: Limits,
    *,
    unpriced: Sequence[str] = (),
) -> Recheck:
    """Whether ``messages`` costing ``estimate`` fit the balance and today's blocking caps now."""
    cur = balance.currency
    problems: list[Problem] = []
    if estimate is None:
        which = ", ".join(unpriced) or "one of its countries"
        problems.append(Problem(f"KedaSMS no longer prices {which}: it cannot be sent."))
        return Recheck(None, messages, cur, tuple(problems))
    if estimate > balance.balance:
        problems.append(
            Problem(
                f"The balance of {money(balance.balance, cur)} no longer covers the "
                f"{money(estimate, cur)} it costs now ({money(estimate - balance.balance, cur)} "
                "short). Top up, then approve.",
                "pages/settings.py",
                "Top up on Settings",
            )
        )
    usage = limits.usage
    if limits.block_on_limit and limits.daily_sms_cap is not None:
        left = max(limits.daily_sms_cap - usage.sms_sent, 0)
        if messages > left:
            problems.append(
                Problem(
                    f"Today's SMS cap would refuse it: {usage.sms_sent:,} of "
                    f"{limits.daily_sms_cap:,} messages sent, {left:,} left, it needs "
                    f"{messages:,}. Raise the cap (or wait until 00:00 UTC), then approve.",
                    "pages/limits.py",
                    "Raise the cap on Limits",
                )
            )
    if limits.block_on_limit and limits.daily_spend_cap is not None:
        left_m = max(limits.daily_spend_cap - usage.spend, Decimal(0))
        if estimate > left_m:
            problems.append(
                Problem(
                    f"Today's spend cap would refuse it: {money(usage.spend, cur)} of "
                    f"{money(limits.daily_spend_cap, cur)} spent, {money(left_m, cur)} left, it "
                    f"needs {money(estimate, cur)}. Raise the cap (or wait until 00:00 UTC), "
                    "then approve.",
                    "pages/limits.py",
                    "Raise the cap on Limits",
                )
            )
    return Recheck(estimate, messages, cur, tuple(problems))
