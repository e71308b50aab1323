"""What a campaign will send and cost: the preview of every row, the requests, the funds check.

1. :func:`preview_campaign` (``kedacore.campaign.preview``, re-exported here) — per row of a
   :class:`~kedacore.campaign.recipients.RecipientFile`: E.164, country, rendered text, segments,
   encoding and price, or the reasons it will not be sent;
2. :func:`plan_requests` — the rows to send grouped by (country, text, sender) into requests
   of at most 1,000 numbers, each with its exact cost;
3. :func:`check_funds` — whether the plan fits the balance and today's caps, and what blocks
   it by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from kedacore.api.types import Balance, Limits
from kedacore.campaign.preview import CampaignPreview, PreviewRow, Problem, preview_campaign
from kedacore.ledger.records import PlannedBatch
from kedacore.money import MAX_MICROS, MoneyError, money_str, normalize, to_micros

if TYPE_CHECKING:  # pandas is imported when a frame is asked for: a worker or the CLI
    import pandas as pd  # sending a campaign has no use for its ~80 MB

MAX_PER_REQUEST = 1000

# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One future send: a country, a sender, a text and up to 1,000 numbers, with its cost."""

    country: str
    sender: str | None
    content: str
    recipients: tuple[str, ...]
    segments: int
    encoding: str
    price_per_segment: Decimal

    @property
    def cost(self) -> Decimal:
        return normalize(self.price_per_segment * self.segments * len(self.recipients))

    @property
    def cost_micros(self) -> int:
        """``to_micros(self.cost)``, in integers: the price's micro-units (one conversion per
        price, not per request) × segments × recipients, which is exact."""
        price = self.price_per_segment
        finite = type(price) is Decimal and price.is_finite()
        per_segment = _micros_or_none(price) if finite else None
        if per_segment is not None:
            micros = per_segment * self.segments * len(self.recipients)
            if abs(micros) <= MAX_MICROS:
                return micros
        return to_micros(self.cost)  # a price finer than a micro-unit, or too large: as before

    def batch(self) -> PlannedBatch:
        """This request as the ledger plans it."""
        return PlannedBatch(
            self.country, self.content, self.recipients, self.cost_micros, self.sender
        )


@lru_cache(maxsize=256)
def _micros_or_none(price: Decimal) -> int | None:
    """A price in micro-units; None when it has more than 6 decimals (or is out of range)."""
    try:
        return to_micros(price)
    except MoneyError:
        return None


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """The requests a campaign will make, and what they cost in all."""

    template: str
    sender: str | None
    currency: str
    requests: tuple[PlannedRequest, ...]

    @property
    def total(self) -> Decimal:
        return normalize(sum((r.cost for r in self.requests), Decimal(0)))

    @property
    def recipients(self) -> int:
        return sum(len(r.recipients) for r in self.requests)

    @property
    def messages(self) -> int:
        """Messages the caps count: one per recipient."""
        return self.recipients

    def batches(self) -> list[PlannedBatch]:
        """Every request as the ledger plans it."""
        return [r.batch() for r in self.requests]

    def frame(self) -> pd.DataFrame:
        """One line per request: country, sender, recipients, segments, cost, text."""
        data = [
            (i, r.country, r.sender, len(r.recipients), r.segments, r.encoding, r.cost, r.content)
            for i, r in enumerate(self.requests, start=1)
        ]
        cols = ["request", "country", "sender", "recipients", "segments", "encoding", "cost"]
        import pandas as pd

        return pd.DataFrame(data, columns=[*cols, "text"])


def plan_requests(
    preview: CampaignPreview, *, max_per_request: int = MAX_PER_REQUEST
) -> CampaignPlan:
    """Group the rows to send by (country, text, sender) into requests of ≤ ``max_per_request``.

    With personalised text most groups hold one recipient: that is what the API allows (one
    text per request). Requests come in the order of their first row.
    """
    if not 1 <= max_per_request <= MAX_PER_REQUEST:
        raise ValueError(f"max_per_request must be 1–{MAX_PER_REQUEST}, got {max_per_request!r}")
    # The first row of each group, and the numbers of the others: with personalised text
    # nearly every group is one row, and a list per group would be 10,000 objects more for
    # the garbage collector to walk.
    first: dict[tuple[str, str, str | None], PreviewRow] = {}
    others: dict[tuple[str, str, str | None], list[str]] = {}
    for row in preview.rows:
        key = (row.country, row.text, row.sender)
        if key not in first:
            first[key] = row
        else:
            others.setdefault(key, []).append(row.e164)
    requests = []
    for (country, text, sender), row in first.items():
        numbers = (row.e164, *others.get((country, text, sender), ()))
        for start in range(0, len(numbers), max_per_request):
            requests.append(
                PlannedRequest(
                    country,
                    sender,
                    text,
                    numbers[start : start + max_per_request],
                    row.segments,
                    row.encoding,
                    row.price_per_segment,
                )
            )
    return CampaignPlan(preview.template.text, preview.sender, preview.currency, tuple(requests))


# -- does it fit? ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CapCheck:
    """One daily cap against what the campaign needs (numbers for SMS, Decimal for spend)."""

    cap: str  # "dailySmsCap" or "dailySpendCap", as the API names them
    limit: int | Decimal
    used: int | Decimal
    needed: int | Decimal
    blocks: bool  # blockOnLimit: a send past the cap is refused, not only alerted

    @property
    def headroom(self) -> int | Decimal:
        return max(self.limit - self.used, 0)

    @property
    def over_by(self) -> int | Decimal:
        return max(self.needed - self.headroom, 0)

    @property
    def fits(self) -> bool:
        return not self.over_by


@dataclass(frozen=True, slots=True)
class FundsCheck:
    """Whether the plan fits the balance and today's caps, and what blocks it by how much."""

    cost: Decimal
    balance: Decimal
    currency: str
    caps: tuple[CapCheck, ...]  # every cap that is set

    @property
    def shortfall(self) -> Decimal:
        return max(self.cost - self.balance, Decimal(0))

    @property
    def blocked_by(self) -> tuple[CapCheck, ...]:
        return tuple(c for c in self.caps if c.blocks and not c.fits)

    @property
    def fits(self) -> bool:
        return not self.shortfall and not self.blocked_by

    def messages(self) -> list[str]:
        """What stands in the way, one sentence each (empty when it fits)."""
        out = []
        if self.shortfall:
            cur = self.currency
            out.append(
                f"The balance is {money_str(self.balance)} {cur}; the campaign costs "
                f"{money_str(self.cost)} {cur}: top up at least {money_str(self.shortfall)} {cur}."
            )
        for c in self.caps:
            if c.fits:
                continue
            what = "blocks the campaign" if c.blocks else "is passed (alert only, not refused)"
            if c.cap == "dailySmsCap":
                used, needed, over = f"{c.used} of {c.limit} messages", c.needed, c.over_by
            else:
                cur = f" {self.currency}"
                used = f"{money_str(Decimal(c.used))} of {money_str(Decimal(c.limit))}{cur}"
                needed = f"{money_str(Decimal(c.needed))}{cur}"
                over = f"{money_str(Decimal(c.over_by))}{cur}"
            out.append(
                f"{c.cap} {what}: {used} used today; the campaign needs {needed}, "
                f"{over} over the cap."
            )
        return out


def check_funds(plan: CampaignPlan, balance: Balance, limits: Limits) -> FundsCheck:
    """Compare the plan with the balance and today's usage of each cap."""
    caps = []
    if limits.daily_sms_cap is not None:
        caps.append(
            CapCheck(
                "dailySmsCap",
                limits.daily_sms_cap,
                limits.usage.sms_sent,
                plan.messages,
                limits.block_on_limit,
            )
        )
    if limits.daily_spend_cap is not None:
        caps.append(
            CapCheck(
                "dailySpendCap",
                limits.daily_spend_cap,
                limits.usage.spend,
                plan.total,
                limits.block_on_limit,
            )
        )
    return FundsCheck(plan.total, balance.balance, balance.currency, tuple(caps))


__all__ = [
    "MAX_PER_REQUEST",
    "CampaignPlan",
    "CampaignPreview",
    "CapCheck",
    "FundsCheck",
    "PlannedRequest",
    "PreviewRow",
    "Problem",
    "check_funds",
    "plan_requests",
    "preview_campaign",
]
