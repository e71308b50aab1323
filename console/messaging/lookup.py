"""Status lookups for the Status page: the ledger first, the status API for what is still open.

No Streamlit here. A message the ledger already holds in a final status is not asked about
again; open ones are asked about by whole task when much of the task is open (one request
for up to 1,000 messages), the rest one msgid at a time (``status_many``). Every answer is
recorded in the ledger and applied by its no-regression rule.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from console.views import StatusRow
from kedacore import AsyncKedaClient, KedaError
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
        return Query("invalid", text, "a msgid is msg_ and 12 or more lower-case hex digits")
    parsed = parse_number(text, None if text.startswith(("+", "00")) else country)
    if parsed.e164 and parsed.valid:
        return Query("phone", parsed.e164)
    return Query(
        "invalid",
        text,
        f"not a msgid (msg_…), a task id (YYYYMMDD-NNNN) or a phone number: {parsed.error}",
    )


def parse_msgids(text: str) -> tuple[list[str], list[str]]:
    """Msgids pasted or uploaded (any separators, CSV allowed): ``(msgids, rejected)``.

    Each msgid once, in order. In a CSV, only the columns holding msgids are read, and a
    first row without any msgid is taken as the header.
    """
    rows = list(csv.reader(io.StringIO(text)))
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
    """What one round of lookups learnt."""

    api_only: dict[str, MessageStatus] = field(default_factory=dict)  # not in the ledger
    errors: dict[str, str] = field(default_factory=dict)  # msgid → why it could not be asked
    task_requests: int = 0
    status_requests: int = 0


async def refresh(
    ledger: Ledger, client: AsyncKedaClient, msgids: Sequence[str], *, concurrency: int = 16
) -> Refresh:
    """Ask the status API about the open or unknown ones of ``msgids``; record the answers."""
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
    result = Refresh(task_requests=len(whole), status_requests=len(singles))
    answers: list[MessageStatus] = []
    gate = asyncio.Semaphore(concurrency)

    async def ask_task(task: str) -> None:
        async with gate:
            try:
                answers.extend(await client.sms.task(task))
            except KedaError:  # fall back to single lookups for this task's messages
                singles.extend(open_by_task[task])

    await asyncio.gather(*(ask_task(t) for t in whole))
    if singles:
        found = await client.sms.status_many(singles, concurrency=concurrency)
        for msgid, answer in found.items():
            if isinstance(answer, KedaError):
                result.errors[msgid] = str(answer)
            else:
                answers.append(answer)
    if answers:
        ledger.apply_lookups(answers)
    wanted = set(unknown)
    result.api_only = {a.msgid: a for a in answers if a.msgid in wanted}
    return result


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
