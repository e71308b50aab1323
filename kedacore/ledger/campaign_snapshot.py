"""Campaigns as one ledger read sees them: rows, numbers, batches, messages and money together.

A page that shows a campaign's progress, its delivery counts, its messages and the list of all
campaigns reads them here, in one transaction (``CampaignsMixin.campaign_snapshot``), so that
the figures side by side are of one moment: the recipients sent beside the messages recorded,
the delivered count in the panel beside the one in the list.

Money, each figure labelled as the service moves it (docs/campaigns.md, "What a campaign
cost"):

- **estimate**: what the plan priced, before anything was sent;
- **debited**: what the service froze when it accepted the requests (``debitedAmount``);
- **refunded**: the share of messages the channel refused (``FAILED``), released again;
- **charged**: the cost the service reported for the messages it charged — the Spend page's
  *spend*, read from the same rollup (``kedacore.analytics``);
- **pending**: frozen, neither charged nor refunded yet (no final report so far).

Once every report is in, debited = charged + refunded. Numbers: a campaign's ``number`` counts
the campaigns of its own kind (real or demo), 1, 2, 3… by id, so that demo history does not use
up the numbers of real campaigns; ids stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from kedacore.ledger import schema as s
from kedacore.ledger.queries import MSG_COLS, chunks
from kedacore.ledger.records import Campaign, LedgerMessage
from kedacore.money import from_micros

NEWEST = -1  # messages_of: the newest campaign's (a page that has not picked one yet)
# The statuses of a campaign that wants someone's attention: sending, stopped before the end,
# or waiting for another member's approval.
ACTIVE_STATUSES = ("planned", "scheduled", "awaiting", "sending", "pausing", "paused")


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    """One campaign as one ledger read saw it."""

    campaign: Campaign
    demo: bool  # generated history (kedacore.demo), not a campaign anyone sent
    number: int  # 1, 2, 3… among the campaigns of its kind, by id
    batches: dict[str, dict[str, int]]  # by batch state, as campaign_batch_counts
    statuses: dict[str, int]  # the campaign's messages by status
    charged_micros: int = 0
    pending_micros: int = 0
    refunded_micros: int = 0

    @property
    def id(self) -> int:
        return self.campaign.id

    @property
    def label(self) -> str:
        """``#3 Spring sale``, or ``Demo #3 Spring sale`` for demo history."""
        return label(self.demo, self.number, self.campaign.name)

    @property
    def messages(self) -> int:
        return sum(self.statuses.values())

    @property
    def estimate(self) -> Decimal:
        return from_micros(self.campaign.estimated_micros)

    @property
    def debited(self) -> Decimal:
        return from_micros(self.campaign.debited_micros)

    @property
    def charged(self) -> Decimal:
        return from_micros(self.charged_micros)

    @property
    def refunded(self) -> Decimal:
        return from_micros(self.refunded_micros)

    @property
    def pending(self) -> Decimal:
        return from_micros(self.pending_micros)


@dataclass(frozen=True, slots=True)
class CampaignSnapshot:
    """The campaigns of one read, newest first; the messages of the one asked for."""

    campaigns: tuple[CampaignFigures, ...]
    read_at: datetime
    messages: tuple[LedgerMessage, ...] = ()  # of ``messages_of``, oldest first
    messages_of: int | None = None
    _by_id: dict[int, CampaignFigures] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((f.id, f) for f in self.campaigns)

    def get(self, campaign_id: int | None) -> CampaignFigures | None:
        return self._by_id.get(campaign_id) if campaign_id is not None else None

    def __len__(self) -> int:
        return len(self.campaigns)


def label(demo: bool, number: int, name: str) -> str:
    """A campaign as pages name it: ``#3 Spring sale``, ``Demo #3 Spring sale``."""
    return f"{'Demo ' if demo else ''}#{number} {name}"


def numbers(conn: Connection) -> dict[int, tuple[bool, int]]:
    """Every campaign's (demo, number within its kind), numbered by id."""
    counters = {False: 0, True: 0}
    found = {}
    query = select(s.campaigns.c.id, s.campaigns.c.demo).order_by(s.campaigns.c.id)
    for campaign_id, demo in conn.execute(query):
        kind = bool(demo)
        counters[kind] += 1
        found[int(campaign_id)] = (kind, counters[kind])
    return found


def read_snapshot(
    conn: Connection,
    now: datetime,
    *,
    limit: int,
    include: Iterable[int] = (),
    messages_of: int | None = None,
    messages_limit: int | None = 500,
    statuses: Sequence[str] | None = None,
    demo: bool | None = None,
    money: bool = True,
) -> CampaignSnapshot:
    """Everything of CampaignSnapshot in the transaction of ``conn`` (see the module docstring);
    without ``money``, no message counts nor money (a glance: the sidebar's)."""
    c = s.campaigns.c
    rows = []
    if limit > 0:
        query = _campaigns_query().order_by(c.id.desc()).limit(limit)
        if statuses is not None:
            query = query.where(c.status.in_(list(statuses)))
        if demo is not None:
            query = query.where(c.demo.is_(demo))
        rows = list(conn.execute(query))
    wanted = [i for i in include if i not in {r.id for r in rows}]
    for part in chunks(wanted):
        rows.extend(conn.execute(_campaigns_query().where(c.id.in_(list(part)))))
    rows.sort(key=lambda r: -r.id)
    ids = [int(r.id) for r in rows]
    kinds = numbers(conn) if ids else {}
    batches = batch_counts(conn, ids)
    by_status, charged, pending = _rollup(conn, ids) if money else ({}, {}, {})
    refunded = _refunded(conn, ids) if money else {}
    figures = tuple(
        CampaignFigures(
            Campaign.from_row(row),
            kinds.get(row.id, (bool(row.demo), row.id))[0],
            kinds.get(row.id, (bool(row.demo), row.id))[1],
            batches.get(row.id, {}),
            by_status.get(row.id, {}),
            charged.get(row.id, 0),
            pending.get(row.id, 0),
            refunded.get(row.id, 0),
        )
        for row in rows
    )
    messages: tuple[LedgerMessage, ...] = ()
    if messages_of == NEWEST:
        messages_of = ids[0] if ids else None
    if messages_of is not None:
        m = s.messages.c
        query = (
            select(*MSG_COLS)
            .where(m.campaign_id == messages_of)
            .order_by(m.created_at, m.msgid)
            .limit(messages_limit)
        )
        messages = tuple(LedgerMessage.from_row(row) for row in conn.execute(query))
    return CampaignSnapshot(figures, now, messages, messages_of)


def _campaigns_query() -> Any:
    columns = [s.campaigns.c[name] for name in Campaign.__dataclass_fields__]
    return select(*columns, s.campaigns.c.demo)


def batch_counts(conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, dict[str, int]]]:
    """Batches, recipients and money by batch state, for each campaign (grouped queries)."""
    b = s.campaign_batches.c
    found: dict[int, dict[str, dict[str, int]]] = {}
    for part in chunks(list(ids)):
        query = (
            select(
                b.campaign_id,
                b.state,
                func.count(),
                func.coalesce(func.sum(b.recipient_count), 0),
                func.coalesce(func.sum(b.estimated_micros), 0),
                func.coalesce(func.sum(b.debited_micros), 0),
            )
            .where(b.campaign_id.in_(list(part)))
            .group_by(b.campaign_id, b.state)
        )
        for campaign_id, state, n, recipients, estimated, debited in conn.execute(query):
            found.setdefault(int(campaign_id), {})[state] = {
                "batches": int(n),
                "recipients": int(recipients),
                "estimated_micros": int(estimated),
                "debited_micros": int(debited),
            }
    return found


def _rollup(
    conn: Connection, ids: Sequence[int]
) -> tuple[dict[int, dict[str, int]], dict[int, int], dict[int, int]]:
    """Messages by status, charged and pending money per campaign, from the daily rollup the
    Spend page reads (kept exact by every write of messages, in the same transaction)."""
    r = s.message_rollup.c
    statuses: dict[int, dict[str, int]] = {}
    charged: dict[int, int] = {}
    pending: dict[int, int] = {}
    for part in chunks(list(ids)):
        query = (
            select(
                r.campaign_id,
                r.status,
                func.sum(r.messages),
                func.sum(r.cost_micros),
                func.sum(r.pending_micros),
            )
            .where(r.campaign_id.in_(list(part)))
            .group_by(r.campaign_id, r.status)
        )
        for campaign_id, status, n, cost, frozen in conn.execute(query):
            key = int(campaign_id)
            if n:
                statuses.setdefault(key, {})[status] = int(n)
            charged[key] = charged.get(key, 0) + int(cost or 0)
            pending[key] = pending.get(key, 0) + int(frozen or 0)
    return statuses, charged, pending


def _refunded(conn: Connection, ids: Sequence[int]) -> dict[int, int]:
    """The estimates of the campaigns' FAILED messages: what the service released (the index
    on messages (campaign_id, status) finds them without reading the others)."""
    m = s.messages.c
    found: dict[int, int] = {}
    for part in chunks(list(ids)):
        query = (
            select(m.campaign_id, func.coalesce(func.sum(m.estimated_micros), 0))
            .where(m.campaign_id.in_(list(part)), m.status == "FAILED")
            .group_by(m.campaign_id)
        )
        found.update((int(cid), int(total)) for cid, total in conn.execute(query))
    return found
