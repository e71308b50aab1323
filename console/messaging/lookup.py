"""Status lookups for the Status page: the ledger first, the status API for what is still open.

No Streamlit here. A message the ledger already holds in a final status is not asked about
again; open ones are asked about by whole task when much of the task is open (one request
for up to 1,000 messages), the rest — and ids the ledger does not know — with
``status_many``: in batches of 1,000 where the service has our gateway's batch call, else
one msgid a request within its rate limit. Every answer is recorded in the ledger and
applied by its no-regression rule, round by round, so a lookup stopped half way keeps what
it learnt. ``summarize`` turns a lookup into what the page says: how many ids were found,
which ones the service does not know, which could not be asked.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd

from console.views import StatusRow, status_frame
from kedacore import AsyncKedaClient, KedaError, NotFoundError
from kedacore.api.types import MessageStatus
from kedacore.ledger import Ledger
from kedacore.phones import parse_number

MAX_IDS = 10_000
MSGID_RE = re.compile(r"msg_[0-9a-f]{12,60}")
TASK_RE = re.compile(r"\d{8}-\d{4,}")
TASK_SHARE = 0.05  # as in kedacore.reconcile: a task answer costs about 16 single lookups


@dataclass(frozen=True, slots=True)
class Query:
    """What a search box holds: a msgid, a task id, a phone number, or nothing usable."""

    kind: str  # "msgid", "task", "phone" or "invalid"
    value: str
    problem: str = ""


def classify(text: str, country: str | None) -> Query:
    """Recognise a msgid, a task id or a phone number (national ones in ``country``)."""
    text = text.strip()
    if MSGID_RE.fullmatch(text):
        return Query("msgid", text)
    if TASK_RE.fullmatch(text):
        return Query("task", text)
    if text.lower().startswith("msg_"):
        return Query(
            "invalid",
            text,
            "is not a message id: a message id is msg_ followed by 12 or more lower-case "
            "hex digits",
        )
    parsed = parse_number(text, None if text.startswith(("+", "00")) else country)
    if parsed.e164 and parsed.valid:
        return Query("phone", parsed.e164)
    return Query(
        "invalid",
        text,
        "is not a msgid (msg_…), a task id (YYYYMMDD-NNNN) or a phone number: "
        + str(parsed.error).rstrip("."),
    )


def parse_msgids(text: str) -> tuple[list[str], list[str]]:
    """Msgids pasted or uploaded (any separators, CSV allowed): ``(msgids, rejected)``.

    Each msgid once, in order. In a CSV, only the columns holding msgids are read, and a
    first row without any msgid is taken as the header.
    """
    rows = [row for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    cells = [[re.split(r"[\s;]+", cell.strip()) for cell in row] for row in rows]
    id_columns = {
        i
        for row in cells
        for i, tokens in enumerate(row)
        if any(MSGID_RE.fullmatch(t) for t in tokens)
    }
    header = cells[0] if cells else []
    if len(cells) > 1 and id_columns and not any(MSGID_RE.fullmatch(t) for c in header for t in c):
        cells = cells[1:]
    found: list[str] = []
    rejected: list[str] = []
    for row in cells:
        for i, tokens in enumerate(row):
            for token in tokens:
                if MSGID_RE.fullmatch(token):
                    found.append(token)
                elif token and (i in id_columns or not id_columns or token.startswith("msg_")):
                    rejected.append(token)  # other columns of a CSV are skipped
    return list(dict.fromkeys(found)), rejected


@dataclass(slots=True)
class Refresh:
    """What a lookup learnt so far (``refresh`` fills it round by round)."""

    api_only: dict[str, MessageStatus] = field(default_factory=dict)  # not in the ledger
    not_found: set[str] = field(default_factory=set)  # the service has no such message
    errors: dict[str, str] = field(default_factory=dict)  # msgid → why it could not be asked
    pending: set[str] = field(default_factory=set)  # to be asked, not answered yet
    task_requests: int = 0


ProgressCallback = Callable[[int, int, Refresh], object]


async def refresh(
    ledger: Ledger,
    client: AsyncKedaClient,
    msgids: Sequence[str],
    *,
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
) -> Refresh:
    """Ask the status API about the open or unknown ones of ``msgids``; record the answers.

    ``on_progress(done, total, result)`` is called after each round of answers (the
    result so far; ``done`` of ``total`` ids asked about). It runs in the calling thread,
    between rounds: what it raises stops the lookup there, with every answer so far already
    in the ledger and in ``result``.
    """
    known = {m.msgid: m for m in ledger.messages_many(msgids)}
    unknown = [m for m in msgids if m not in known]
    open_by_task: dict[str, list[str]] = defaultdict(list)
    for m in known.values():
        if not m.final:
            open_by_task[m.task_id].append(m.msgid)
    sizes = ledger.task_message_counts(open_by_task)
    whole = [
        task
        for task, ids in open_by_task.items()
        if len(ids) > 1 and len(ids) >= TASK_SHARE * sizes.get(task, len(ids))
    ]
    singles = [m for task, ids in open_by_task.items() if task not in whole for m in ids]
    singles += unknown
    wanted = set(unknown)
    result = Refresh(task_requests=len(whole))
    result.pending = set(singles) | {m for task in whole for m in open_by_task[task]}
    total = len(result.pending)

    def learnt(answers: Mapping[str, MessageStatus | KedaError]) -> None:
        found = [a for a in answers.values() if isinstance(a, MessageStatus)]
        if theirs := [a for a in found if a.msgid in wanted]:
            ledger.record_lookups(theirs)  # kept; nothing of the ledger's to move
        if ours := [a for a in found if a.msgid not in wanted]:
            ledger.apply_lookups(ours)
        for msgid, answer in answers.items():
            result.pending.discard(msgid)
            if isinstance(answer, MessageStatus):
                if msgid in wanted:
                    result.api_only[msgid] = answer
            elif isinstance(answer, NotFoundError):
                result.not_found.add(msgid)
            else:
                result.errors[msgid] = str(answer)
        if on_progress is not None:
            on_progress(total - len(result.pending), total, result)

    gate = asyncio.Semaphore(concurrency)
    by_task: dict[str, MessageStatus] = {}

    async def ask_task(task: str) -> None:
        async with gate:
            try:
                answers = await client.sms.task(task)
            except KedaError:  # fall back to the other lookups for this task's messages
                singles.extend(open_by_task[task])
                return
            by_task.update({a.msgid: a for a in answers})

    await asyncio.gather(*(ask_task(t) for t in whole))
    mine = {m for task in whole for m in open_by_task[task]}
    answered = {m: a for m, a in by_task.items() if m in mine}
    others = [a for m, a in by_task.items() if m not in mine and isinstance(a, MessageStatus)]
    if others:  # the rest of those tasks: known now, so recorded too
        ledger.apply_lookups(others)
    asked = set(singles)
    singles += [m for m in mine if m not in answered and m not in asked]  # left out of it
    if answered:
        learnt(answered)
    if singles:
        await client.sms.status_many(
            singles,
            concurrency=concurrency,
            on_progress=lambda done, total, answers: learnt(answers),
        )
    return result


@dataclass(frozen=True, slots=True)
class LookupSummary:
    """What a lookup of ``total`` ids came to, for people."""

    total: int
    found: int  # a row: from the ledger or from the status API
    unknown: list[str]  # neither the ledger nor the service knows them
    failed: dict[str, str]  # could not be asked: msgid → why
    unasked: list[str]  # not asked: the lookup was stopped

    @property
    def missing(self) -> int:
        return len(self.unknown) + len(self.failed) + len(self.unasked)

    def headline(self) -> str:
        """``3,000 ids: 2,990 found, 10 unknown to the service`` (and what else applies)."""
        parts = [f"{self.found:,} found"]
        if self.unknown:
            parts.append(f"{len(self.unknown):,} unknown to the service")
        if self.failed:
            parts.append(f"{len(self.failed):,} could not be looked up")
        if self.unasked:
            parts.append(f"{len(self.unasked):,} not looked up (stopped)")
        ids = "id" if self.total == 1 else "ids"
        return f"{self.total:,} {ids}: " + ", ".join(parts)

    def failures(self, limit: int = 2) -> list[tuple[int, str]]:
        """The reasons lookups failed, most frequent first: ``(how many, why)``."""
        counts: dict[str, int] = defaultdict(int)
        for why in self.failed.values():
            counts[why] += 1
        return sorted(((n, why) for why, n in counts.items()), key=lambda x: -x[0])[:limit]

    def missing_frame(self) -> pd.DataFrame:
        """One row per id without a status, with why (the page's table of them)."""
        why = {m: "unknown to this console and to the service" for m in self.unknown}
        why |= {m: f"could not be looked up: {reason}" for m, reason in self.failed.items()}
        why |= {m: "not looked up: the lookup was stopped" for m in self.unasked}
        order = [*self.unknown, *self.failed, *self.unasked]
        return pd.DataFrame({"msgid": order, "Why": [why[m] for m in order]})


def summarize(
    msgids: Sequence[str],
    rows: Sequence[StatusRow],
    not_found: Collection[str],
    errors: Mapping[str, str],
    pending: Collection[str],
) -> LookupSummary:
    """The lookup of ``msgids`` that produced ``rows``, in words and lists (in input order)."""
    shown = {r.msgid for r in rows}
    missing = [m for m in msgids if m not in shown]
    failed = {m: errors[m] for m in missing if m in errors}
    asked_not = [m for m in missing if m in pending and m not in failed]
    unknown = [m for m in missing if m not in failed and m not in pending]
    return LookupSummary(len(msgids), len(shown), unknown, failed, asked_not)


# Badge colours of the statuses in the table (Streamlit's palette, as console.views' badges).
STATUS_COLORS = {
    "QUEUED": "#808495",
    "SENT": "#1c83e1",
    "DELIVERED": "#21c354",
    "UNDELIVERED": "#ff8700",
    "FAILED": "#ff2b2b",
}


def status_table(rows: Sequence[StatusRow], tz: ZoneInfo) -> pd.DataFrame:
    """The Status table, its status as a one-item list (shown as a coloured badge)."""
    frame = status_frame(rows, tz)
    frame["Status"] = [[status] for status in frame["Status"]]
    return frame


def rows_for(
    ledger: Ledger, msgids: Sequence[str], api_only: dict[str, MessageStatus], currency: str
) -> list[StatusRow]:
    """The rows of ``msgids`` in order: from the ledger, else from the status API's answer."""
    known = {m.msgid: m for m in ledger.messages_many(msgids)}
    rows = []
    for msgid in msgids:
        if msgid in known:
            rows.append(StatusRow.from_ledger(known[msgid]))
        elif msgid in api_only:
            rows.append(StatusRow.from_status(api_only[msgid], currency))
    return rows
