"""Resend a campaign's FAILED and UNDELIVERED recipients as a new campaign, exactly once.

:func:`plan_resend` reads the ledger: every FAILED or UNDELIVERED message of the campaign with
the text it was sent (its task's content: a personalised text stays each recipient's own),
leaves out the numbers opted out since (``ledger.suppressed``) and prices the rest with the
price table, grouped into requests as a campaign's are. :func:`create_resend` writes it as a
campaign named "<name> — resend" with ``resend_of`` = the original (kedacore.ledger.resends:
a unique index, so a second resend, from any tab or replica, raises
:class:`~kedacore.ledger.resends.AlreadyResent`). Starting it — or holding it for approval
over the team's threshold — is the caller's, as for any campaign. Used by the Campaigns page;
the CLI can call the same two functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kedacore.api.types import Pricing
from kedacore.campaign.plan import MAX_PER_REQUEST, CampaignPlan, PlannedRequest
from kedacore.ledger.resends import AlreadyResent, FailedMessage
from kedacore.money import normalize
from kedacore.segments import count_segments

if TYPE_CHECKING:
    from kedacore.ledger import Campaign, Ledger

__all__ = ["AlreadyResent", "ResendPlan", "create_resend", "plan_resend", "resend_name"]


def resend_name(name: str) -> str:
    """``Spring sale — resend``."""
    return f"{name} — resend"


@dataclass(frozen=True)
class ResendPlan:
    """What resending a campaign's failures would send and cost."""

    original: Campaign
    plan: CampaignPlan
    failed: int  # FAILED messages of the original
    undelivered: int  # UNDELIVERED messages of the original
    opted_out: tuple[str, ...]  # left out: opted out now
    unpriced: tuple[str, ...]  # left out: numbers of a country the price table lacks
    repeated: int  # left out: the same number and text twice
    resent_as: int | None  # the campaign that resent it already, if any

    @property
    def name(self) -> str:
        return resend_name(self.original.name)

    @property
    def recipients(self) -> int:
        return self.plan.recipients

    @property
    def total(self) -> Decimal:
        return self.plan.total

    def left_out(self) -> list[str]:
        """Why some failed recipients are not in the resend, one phrase each."""
        out = []
        if self.opted_out:
            out.append(f"{len(self.opted_out):,} opted out, left out")
        if self.unpriced:
            out.append(f"{len(self.unpriced):,} in a country without a price, left out")
        if self.repeated:
            out.append(f"{self.repeated:,} repeated (same number and text), sent once")
        return out


def plan_resend(
    ledger: Ledger,
    campaign_id: int,
    pricing: Pricing,
    *,
    max_per_request: int = MAX_PER_REQUEST,
) -> ResendPlan:
    """The resend of ``campaign_id``'s FAILED and UNDELIVERED recipients, not written yet.

    Raises:
        KeyError: no such campaign.
    """
    original = ledger.campaign(campaign_id)
    if original is None:
        raise KeyError(f"no campaign {campaign_id!r}")
    failed = ledger.failed_messages(campaign_id)
    opted = _suppressed(ledger, [m.recipient for m in failed])
    groups: dict[tuple[str, str, str | None], list[FailedMessage]] = {}
    seen: set[tuple[str, str]] = set()
    repeated = 0
    unpriced: list[str] = []
    for m in failed:
        if m.recipient in opted:
            continue
        if (m.recipient, m.content) in seen:
            repeated += 1
            continue
        seen.add((m.recipient, m.content))
        if pricing.price_for(m.country) is None:
            unpriced.append(m.recipient)
            continue
        groups.setdefault((m.country.upper(), m.content, m.sender), []).append(m)
    requests = []
    for (country, content, sender), items in groups.items():
        info = count_segments(content)
        # What the service billed last time, when known (a tracked link's short URL counts).
        segments = max([info.segments, *(m.segments or 0 for m in items)])
        price = pricing.price_for(country)
        assert price is not None
        numbers = tuple(m.recipient for m in items)
        for start in range(0, len(numbers), max_per_request):
            requests.append(
                PlannedRequest(
                    country,
                    sender,
                    content,
                    numbers[start : start + max_per_request],
                    segments,
                    info.encoding,
                    normalize(price),
                )
            )
    plan = CampaignPlan(original.template, original.sender, pricing.currency, tuple(requests))
    return ResendPlan(
        original=original,
        plan=plan,
        failed=sum(1 for m in failed if m.status == "FAILED"),
        undelivered=sum(1 for m in failed if m.status == "UNDELIVERED"),
        opted_out=tuple(sorted({m.recipient for m in failed if m.recipient in opted})),
        unpriced=tuple(unpriced),
        repeated=repeated,
        resent_as=ledger.resend_of(campaign_id),
    )


def _suppressed(ledger: Ledger, numbers: list[str]) -> set[str]:
    """The numbers opted out now (kedacore.ledger.optouts)."""
    return set(ledger.suppressed(numbers)) if numbers else set()


def create_resend(
    ledger: Ledger, resend: ResendPlan, *, created_by: str, options: dict[str, Any] | None = None
) -> int:
    """Write the resend as a new campaign (planned, ``resend_of`` the original), audited as
    ``campaign_resend``; its id. Not started: the caller starts it or holds it for approval.

    Args:
        options: its send options; by default the original's (clicks tracked, callbacks).

    Raises:
        AlreadyResent: it was resent already, by anyone, even a moment ago.
        ValueError: there is no recipient to resend to.
    """
    if not resend.plan.requests:
        raise ValueError("no failed or undelivered recipient to resend to")
    original = resend.original
    if options is None:
        options = ledger.campaign_options(original.id)
    return ledger.create_resend(
        original.id,
        resend.plan.batches(),
        name=resend.name,
        template=original.template,
        sender=original.sender,
        currency=resend.plan.currency,
        created_by=created_by,
        options=options,
        audit_after={
            "name": resend.name,
            "recipients": resend.recipients,
            "failed": resend.failed,
            "undelivered": resend.undelivered,
            "opted_out_left_out": len(resend.opted_out),
            "estimate": resend.total,
            "currency": resend.plan.currency,
        },
    )
