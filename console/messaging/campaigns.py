"""Plain functions behind the Campaigns page: tables, wording, saved options. No Streamlit here.

The checks, the plan and the sending are ``kedacore``'s (``recipients``, ``campaign_plan``,
``campaign``); this module only shapes their results for the page and its tests.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from console.views import local_time, money, plain
from kedacore.campaign import CampaignProgress
from kedacore.campaign.plan import CampaignPlan, CampaignPreview, FundsCheck
from kedacore.campaign.progress import progress_of as campaign_progress
from kedacore.campaign.tasks import send_options
from kedacore.ledger import Campaign, Ledger
from kedacore.ledger.campaign_snapshot import CampaignFigures
from kedacore.private import write_private
from kedacore.segments import MAX_SEGMENTS
from kedacore.words import counted

PREVIEW_ROWS = 20  # rendered messages shown before confirming (the whole list is downloadable)
OPTIONS_FILE = "campaign_options.json"
_options_lock = threading.Lock()  # sessions of one server save options at the same time

SAMPLE_CSV = (
    "phone,name,country,code\n"
    "+12015550123,Ana,US,SPRING10\n"
    "2015550124,Ben,,SPRING10\n"
    "+447400123456,Chloé,GB,SPRING15\n"
    "+4915112345678,Dev,DE,SPRING15\n"
).encode("utf-8-sig")  # with a BOM, so that Excel opens the é right
SAMPLE_TEMPLATE = "Hi {name}, 20% off this week with code {code}. Reply STOP to opt out."

PROBLEM_LABELS = {
    "broken_row": "Unreadable row",
    "invalid_number": "Invalid number",
    "wrong_country": "Number of another country",
    "unknown_country": "Unknown country",
    "missing_variable": "Missing variable",
    "invalid_sender": "Invalid sender",
    "empty_text": "Empty text",
    "too_long": "Too long for the template",
    "unpriced_country": "Country without a price",
    "duplicate": "Duplicate",
}

# Ledger statuses as a person reads them; "sending" with no run in this process means the
# server stopped (or was killed) during the run.
STATUS_LABELS = {
    "draft": "draft",
    "planned": "not started",
    "scheduled": "scheduled",
    "awaiting": "awaiting approval",
    "sending": "sending",
    "pausing": "pausing…",
    "paused": "paused",
    "done": "done",
    "cancelled": "cancelled",
    "rejected": "rejected",
}
STATUS_COLORS = {
    "scheduled": "violet",
    "awaiting approval": "violet",
    "rejected": "red",
    "sending": "blue",
    "queued": "blue",  # on PostgreSQL: waiting for a worker to take it
    "pausing…": "orange",
    "paused": "orange",
    "interrupted": "orange",
    "not started": "orange",
    "done": "green",
    "cancelled": "gray",
    "draft": "gray",
}


# -- the new campaign ----------------------------------------------------------------------


def placeholders(columns: Sequence[str]) -> str:
    """The file's columns as placeholders for the template, as Markdown: ``{phone} · {name}``.

    A column name is the file's text: ``plain``, never inside a code span (a backtick in the
    name would close it).
    """
    return " · ".join(plain(f"{{{c}}}") for c in columns if c)


def problem_counts(preview: CampaignPreview) -> list[tuple[str, int]]:
    """How many problems of each kind, most frequent first (labels as a person reads them)."""
    counts: dict[str, int] = {}
    for p in preview.problems:
        label = PROBLEM_LABELS.get(p.kind, p.kind)
        counts[label] = counts.get(label, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


TEMPLATE_PROBLEMS = ("too_long", "empty_text")  # the template's doing, not the file's


def problems_summary(preview: CampaignPreview) -> str:
    """What the problems mean and what to do, as Markdown: the file's rows to correct, and —
    apart — the rows whose message the template makes too long (or empty)."""
    counts = ", ".join(f"{label.lower()}: {n:,}" for label, n in problem_counts(preview))
    rows_of: dict[str, set[int]] = {}
    for p in preview.problems:
        rows_of.setdefault(p.kind, set()).add(p.row)
    in_file = {p.row for p in preview.problems if p.kind not in TEMPLATE_PROBLEMS}
    parts = [
        f"**{preview.rejected_rows:,} row(s) will not be sent** ({counts}). They are left out; "
        "the other rows can be sent."
    ]
    if in_file:
        parts.append(
            f"Correct the file and upload it again to include the {len(in_file):,} row(s) "
            "with a problem in the file."
        )
    if long := rows_of.get("too_long"):
        parts.append(
            f"**The template is too long for {len(long):,} row(s)' variables**: with their "
            f"values the message takes more than {MAX_SEGMENTS} segments (1,530 characters, "
            "or 670 with characters outside GSM-7). Shorten the template, or the values of its "
            "variables in those rows."
        )
    if empty := rows_of.get("empty_text"):
        parts.append(
            f"The template gives an empty message for {len(empty):,} row(s): add text that "
            "does not depend on the variables."
        )
    return " ".join(parts)


def problems_table(preview: CampaignPreview) -> pd.DataFrame:
    """Every problem by row number, with a readable kind."""
    return pd.DataFrame(
        {
            "Row": [p.row for p in preview.problems],
            "Phone": [p.phone for p in preview.problems],
            "Problem": [PROBLEM_LABELS.get(p.kind, p.kind) for p in preview.problems],
            "Reason": [p.reason for p in preview.problems],
        }
    )


def preview_table(preview: CampaignPreview, limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The first rendered messages: to whom, the text, its segments, encoding and cost."""
    rows = preview.rows[:limit]
    return pd.DataFrame(
        {
            "Row": [r.row for r in rows],
            "To": [r.e164 for r in rows],
            "Country": [r.country for r in rows],
            "Sender": [r.sender or "" for r in rows],
            "Message": [r.text for r in rows],
            "Segments": [r.segments for r in rows],
            "Encoding": [r.encoding for r in rows],
            "Cost": [money(r.price, preview.currency) for r in rows],
        }
    )


def requests_by_country(plan: CampaignPlan) -> pd.DataFrame:
    """Per country: recipients, send requests (≤ 1,000 numbers, one text each) and cost."""
    groups: dict[str, list[int | Decimal]] = {}
    for r in plan.requests:
        item = groups.setdefault(r.country, [0, 0, Decimal(0)])
        item[0] += len(r.recipients)
        item[1] += 1
        item[2] += r.cost
    countries = sorted(groups, key=lambda c: (-groups[c][0], c))
    return pd.DataFrame(
        {
            "Country": countries,
            "Recipients": [groups[c][0] for c in countries],
            "Requests": [groups[c][1] for c in countries],
            "Cost": [money(Decimal(groups[c][2]), plan.currency) for c in countries],
        }
    )


@dataclass(frozen=True, slots=True)
class FundsLine:
    """One sentence about the balance or a cap: ``kind`` is ok, alert or block."""

    kind: str
    text: str
    page: str | None = None  # where to fix it
    action: str | None = None


def funds_lines(funds: FundsCheck) -> list[FundsLine]:
    """Whether the campaign fits the balance and today's caps, cap by cap, in words."""
    cur = funds.currency
    lines = []
    if funds.shortfall:
        lines.append(
            FundsLine(
                "block",
                f"The campaign costs {money(funds.cost, cur)}; the balance is "
                f"{money(funds.balance, cur)}: it would pause when the money runs out, "
                f"{money(funds.shortfall, cur)} short.",
                "pages/settings.py",
                "Top up on Settings",
            )
        )
    else:
        lines.append(
            FundsLine(
                "ok",
                f"The balance of {money(funds.balance, cur)} covers the "
                f"{money(funds.cost, cur)} it costs.",
            )
        )
    for cap in funds.caps:
        if cap.cap == "dailySmsCap":
            name = "daily SMS cap"
            room, need = f"{cap.headroom:,} messages", f"{cap.needed:,} messages"
            over = f"{cap.over_by:,} messages"
        else:
            name = "daily spend cap"
            room, need = money(Decimal(cap.headroom), cur), money(Decimal(cap.needed), cur)
            over = money(Decimal(cap.over_by), cur)
        if cap.fits:
            lines.append(FundsLine("ok", f"Today's {name} leaves {room}; it needs {need}."))
        elif cap.blocks:
            lines.append(
                FundsLine(
                    "block",
                    f"Today's {name} blocks it: {room} left, it needs {need} — {over} over. "
                    "It would send what fits, then pause until the cap is raised (or tomorrow, "
                    "UTC).",
                    "pages/limits.py",
                    "Raise the cap on Limits",
                )
            )
        else:
            lines.append(
                FundsLine(
                    "alert",
                    f"Today's {name} is passed by {over} ({room} left, it needs {need}): caps "
                    "only raise the alert (blockOnLimit is off), so it is sent in full.",
                    "pages/limits.py",
                    "Limits",
                )
            )
    if not funds.caps:
        lines.append(FundsLine("ok", "No daily cap is set."))
    return lines


# -- campaigns in the ledger ---------------------------------------------------------------


def status_label(status: str, running: bool, *, queued: bool = False) -> str:
    """The status to show: a campaign marked sending that no run holds was interrupted; one
    pausing is "pausing…" until its run confirms (a pausing that no run holds is paused); one
    whose job waits for a worker (``queued``) is "queued" until a worker starts it."""
    if queued and status in ("planned", "paused", "sending"):
        return "queued"
    if status == "sending" and not running:
        return "interrupted"
    if status == "pausing":
        return "pausing…" if running else "paused"
    return STATUS_LABELS.get(status, status)


def status_badge(label: str) -> str:
    """A status label as a coloured markdown badge."""
    return f":{STATUS_COLORS.get(label, 'gray')}-badge[{plain(label)}]"


def resumable(progress: CampaignProgress) -> bool:
    """Whether Resume can send more: recipients left, no run under way, not cancelled."""
    return (
        not progress.running
        and progress.status in ("planned", "sending", "pausing", "paused")
        and progress.batches_left > 0
    )


def fix_for(reason: str | None) -> tuple[str, str] | None:
    """The page that fixes a pause (page path, link label), from the engine's reason."""
    text = (reason or "").lower()
    if "cap" in text:
        return "pages/limits.py", "Raise the cap on Limits"
    if "balance" in text:
        return "pages/settings.py", "Top up on Settings"
    if "credentials" in text:
        return "pages/settings.py", "Check the connection on Settings"
    return None


def balance_note(progress: CampaignProgress, balance: Decimal | None, currency: str) -> str | None:
    """The balance now beside a pause for the balance (whose reason says the balance then)."""
    if balance is None or progress.running or "balance" not in (progress.error or ""):
        return None
    left = progress.estimated_left
    now = f"The balance now is {money(balance, currency)}"
    if balance >= left:
        return f"{now}: it covers the {money(left, currency)} left; resume."
    return f"{now}: {money(left - balance, currency)} short of what is left."


def delivery(counts: Mapping[str, int]) -> dict[str, int]:
    """Message statuses grouped for the list: delivered, not delivered, pending."""
    return {
        "Delivered": counts.get("DELIVERED", 0),
        "Not delivered": counts.get("FAILED", 0) + counts.get("UNDELIVERED", 0),
        "Pending": counts.get("QUEUED", 0) + counts.get("SENT", 0),
    }


def campaigns_table(
    campaigns: Iterable[CampaignFigures], running: Mapping[int, bool], tz: ZoneInfo
) -> pd.DataFrame:
    """The campaign list, from one snapshot: status, recipients, messages, delivery, money."""
    rows = []
    for f in campaigns:
        c = f.campaign
        rows.append(
            {
                "Campaign": f.label,
                "Status": status_label(c.status, running.get(c.id, False)),
                "Recipients": c.recipients,
                "Sent": f.messages,
                **delivery(f.statuses),
                **{name: money(amount, c.currency) for name, amount, _ in money_figures(f)},
                "Created": local_time(c.created_at, tz),
            }
        )
    columns = ["Campaign", "Status", "Recipients", "Sent", "Delivered", "Not delivered"]
    columns += ["Pending", *MONEY_FIGURES, "Created"]
    return pd.DataFrame(rows, columns=columns)


# What a campaign cost, each figure as the service moves the money (docs/campaigns.md).
MONEY_FIGURES = {
    "Estimate": "Priced before sending: price per segment × segments × recipients",
    "Debited": "Frozen by KedaSMS when it accepted the requests",
    "Refunded": "Released again for messages the channel refused (FAILED)",
    "Charged": "Charged for the messages the channel accepted — the Spend page's figure. "
    "Until every delivery report is in, part of the debited money is neither charged nor "
    "refunded yet.",
}


def money_figures(f: CampaignFigures | None) -> list[tuple[str, Decimal | None, str]]:
    """(label, amount, what it means) of the estimate, debited, refunded and charged money."""
    amounts = (f.estimate, f.debited, f.refunded, f.charged) if f else (None,) * 4
    return [
        (name, amount, why)
        for (name, why), amount in zip(MONEY_FIGURES.items(), amounts, strict=True)
    ]


def done_sentence(f: CampaignFigures) -> str:
    """A finished campaign in one sentence: sent, charged, refunded, still to be reported."""
    cur = f.campaign.currency
    sent = f.batches.get("sent", {}).get("recipients", 0)
    text = "The 1 recipient was sent" if sent == 1 else f"All {sent:,} recipients sent"
    if f.pending and f.pending == f.debited:
        return (
            f"{text}; {money(f.debited, cur)} debited — charged, or refunded for messages the "
            "channel refuses, as the delivery reports come in."
        )
    text += f"; {money(f.charged, cur)} charged"
    if f.refunded:
        failed = f.statuses.get("FAILED", 0)
        text += (
            f" ({money(f.refunded, cur)} of the {money(f.debited, cur)} debited refunded for "
            f"{counted(failed, 'message')} the channel refused)"
        )
    if f.pending:
        text += f"; {money(f.pending, cur)} debited awaits its delivery reports"
    return text + "."


def progress_of(f: CampaignFigures, running: bool) -> CampaignProgress:
    """The campaign's progress from the snapshot's campaign row and batch counts."""
    return campaign_progress(f.campaign, f.batches, running=running)


def active_line(f: CampaignFigures, label: str, *, short: bool = False) -> str:
    """A campaign still to finish in one line of Markdown: ``#2 Spring · sending: 1,380 of
    1,983 sent`` (``short``: ``#2 Spring · sending``, for the sidebar)."""
    if short:
        return f"{plain(f.label)} · {label}"
    sent = f.batches.get("sent", {}).get("recipients", 0)
    return f"{plain(f.label)} · {label}: {sent:,} of {f.campaign.recipients:,} sent"


def campaign_choice(f: CampaignFigures | None) -> str:
    """A campaign in the picker: ``#7 Spring sale · 200 recipients`` (its status is below)."""
    if f is None:
        return ""
    demo = " · demo data" if f.demo else ""
    return f"{f.label} · {f.campaign.recipients:,} recipients{demo}"


# -- send options ----------------------------------------------------------------------------
#
# Kept in the ledger (``campaigns.options``, written at create: :func:`options_json`) so that a
# worker on another machine reads them (``kedacore.campaign.tasks.send_options``); the data
# folder's ``campaign_options.json`` (save_options/load_options) only for campaigns planned
# before the column.


@dataclass(frozen=True, slots=True)
class CampaignOptions:
    """Send options of a campaign that every run (a resume, a worker's) must reuse."""

    track_click: bool = False
    callback: bool = True  # status callbacks to this console's receiver


def options_json(options: CampaignOptions) -> dict[str, bool]:
    """The options as the ledger keeps them (``CampaignEngine.create(options=...)``)."""
    return asdict(options)


def options_of(ledger: Ledger, data_dir: Path, c: Campaign) -> CampaignOptions:
    """A campaign's send options: the ledger's, else the data folder's old file, else the
    defaults (``kedacore.campaign.tasks.send_options``, as a worker reads them)."""
    found = send_options(ledger, c.id, data_dir)
    return CampaignOptions(track_click=found.track_click, callback=found.callback)


def _options_key(c: Campaign) -> str:
    # The creation time too: a ledger replaced under the same data folder reuses ids.
    return f"{c.id}@{c.created_at.isoformat()}"


def save_options(data_dir: Path, c: Campaign, options: CampaignOptions) -> None:
    """Keep a campaign's send options in the data folder (atomically): the old way, before
    the ledger kept them; the console no longer writes it."""
    path = data_dir / OPTIONS_FILE
    with _options_lock:
        saved = _read_options(path)
        saved[_options_key(c)] = asdict(options)
        write_private(path, json.dumps(saved, indent=1))


def load_options(data_dir: Path, c: Campaign) -> CampaignOptions:
    """A campaign's send options; the defaults when they were not kept."""
    found = _read_options(data_dir / OPTIONS_FILE).get(_options_key(c), {})
    return CampaignOptions(
        track_click=bool(found.get("track_click", False)),
        callback=bool(found.get("callback", True)),
    )


def _read_options(path: Path) -> dict[str, dict[str, bool]]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}
