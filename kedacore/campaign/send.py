"""``python -m kedacore.campaign send``: a recipients file checked, priced and (``--yes``)
written to the ledger as a campaign, then held for approval, sent, or — on PostgreSQL —
enqueued for the workers (:mod:`kedacore.campaign.tasks`). The command line around it is
:mod:`kedacore.campaign.cli` (its docstring says how ``send`` behaves, its parser the options).
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.client import KedaClient
from kedacore.api.errors import ConfigurationError
from kedacore.campaign import tasks
from kedacore.campaign.command import (
    EXIT_AWAITING,
    EXIT_PREVIEW,
    EXIT_QUEUED,
    EXIT_SCHEDULED,
    MAX_NAME,
    PROBLEMS_SHOWN,
    BadInput,
    _absent,
    _json,
    _no_ledger,
    _run,
    actor,
    ledger_url,
    open_ledger,
)
from kedacore.campaign.contacts import list_recipients
from kedacore.campaign.engine import CampaignEngine
from kedacore.campaign.plan import (
    CampaignPlan,
    CampaignPreview,
    FundsCheck,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.preview import left_out_words
from kedacore.campaign.recipients import (
    RecipientFile,
    RecipientsError,
    load_limits,
    parse_template,
    read_recipients,
)
from kedacore.campaign.recipients.encoding import label
from kedacore.campaign.schedule import (
    Schedule,
    ScheduleError,
    parse_hhmm,
    parse_quiet,
    parts_of,
)
from kedacore.ledger import Ledger
from kedacore.ledger.optouts import frequency_hours
from kedacore.ledger.team import APPROVAL_THRESHOLD
from kedacore.money import from_micros
from kedacore.words import counted


def _shown(text: object, width: int = 0) -> str:
    """Someone else's text made safe for a terminal: no control characters (an escape code in
    a cell would drive the terminal), cut to ``width`` characters (0: whole)."""
    line = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return line if not width or len(line) <= width else line[: width - 1] + "…"


def _money(amount: Decimal, currency: str) -> str:
    """``0.25 USD``, ``1,000.00 USD``, ``0.048 USD``: every decimal, at least two."""
    whole, _, frac = format(amount, ",f").partition(".")
    return f"{whole}.{frac.ljust(2, '0')} {currency}"


def _when(text: str) -> datetime:
    """``--at``: an ISO 8601 time with its zone, in the future."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"--at {text!r} is not an ISO 8601 time: write it like 2026-03-02T09:00+01:00 "
            "or 2026-03-02T08:00Z"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise BadInput(
            f"--at {text!r} has no time zone: add one (+01:00, Z for UTC), so that the time "
            "cannot be read in the wrong zone"
        )
    if at <= datetime.now(UTC):
        raise BadInput(f"--at {text!r} is in the past")
    return at


def _read_list(args: argparse.Namespace) -> tuple[RecipientFile, Any, str]:
    """``--list NAME``: the contact list's contacts as the recipients table (its attributes
    the columns), from the console's ledger; ``args.list_id`` is set for the campaign."""
    name = (args.name if args.name is not None else args.list).strip()
    if not name:
        raise BadInput("--name is empty: name the campaign")
    if len(name) > MAX_NAME:
        raise BadInput(f"--name is {len(name):,} characters long; at most {MAX_NAME}")
    with open_ledger(ledger_url(args.ledger)) as ledger:
        found = ledger.contact_list_named(args.list)
        if found is None:
            known = ", ".join(_shown(x.name, 40) for x in ledger.contact_lists()[:10]) or "none"
            raise BadInput(f"no contact list named {_shown(args.list, 120)} (lists: {known})")
        try:
            limits = load_limits(None, os.environ)
            table = list_recipients(ledger.all_contacts(found.id), limits=limits)
            template = parse_template(args.template, table.columns)
        except RecipientsError as exc:
            raise BadInput(f"list {_shown(found.name, 120)}: {exc}") from None
        except ValueError as exc:  # an operator's limit setting that is not a number
            raise BadInput(str(exc)) from None
    if not table.rows:
        raise BadInput(f"the list {_shown(found.name, 120)} has no contacts")
    args.list_id = found.id
    return table, template, name


def _read(args: argparse.Namespace) -> tuple[RecipientFile, Any, str]:
    """The file (or ``--list``) and the template checked, before the service is asked anything."""
    if getattr(args, "list", None) is not None:
        return _read_list(args)
    path = Path(args.file)
    if not path.is_file():
        raise BadInput(f"no such file: {args.file}")
    name = (args.name if args.name is not None else path.name).strip()
    if not name:
        raise BadInput("--name is empty: name the campaign")
    if len(name) > MAX_NAME:
        raise BadInput(f"--name is {len(name):,} characters long; at most {MAX_NAME}")
    try:
        limits = load_limits(None, os.environ)  # KEDA_MAX_ROWS …, as the console reads them
        table = read_recipients(path, limits=limits, encoding=args.encoding)
        template = parse_template(args.template, table.columns)
    except RecipientsError as exc:
        raise BadInput(f"{path.name}: {exc}") from None
    except ValueError as exc:  # an operator's limit setting that is not a number
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"{args.file} cannot be read: {exc.strerror or exc}") from None
    return table, template, name


def _describe(table: RecipientFile, args: argparse.Namespace) -> str:
    if table.encoding == "list":
        columns = ", ".join(_shown(c, 40) for c in table.columns[1:]) or "none"
        return (
            f"List {_shown(args.list, 120)}: {counted(len(table.rows), 'contact')}; "
            f"attributes {columns}."
        )
    if table.encoding == "xlsx":
        how = "from an Excel workbook"
    else:
        how = f"as {label(table.encoding)}, {'chosen' if args.encoding else 'detected'}"
    extra = "".join(
        f", {what} column {_shown(col, 40)}"
        for what, col in (("country", table.country_column), ("sender", table.sender_column))
        if col
    )
    rows = len(table.rows) + len(table.broken)
    phone = _shown(table.phone_column, 40)
    return f"{_shown(args.file)}: {rows:,} row(s) read {how}; phone column {phone}{extra}."


def _print_problems(preview: CampaignPreview, out_path: str | None) -> None:
    if not preview.problems:
        print(f"Every row can be sent: {counted(len(preview.rows), 'recipient')}.")
        return
    counts: dict[str, int] = {}
    for p in preview.problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))
    print(
        f"Left out: {preview.rejected_rows:,} row(s) with problems ({kinds}); "
        f"{counted(len(preview.rows), 'recipient')} can be sent."
    )
    for p in preview.problems[:PROBLEMS_SHOWN]:
        phone = _shown(p.phone, 32) or "(no number)"
        print(f"  row {p.row}: {phone} — {p.kind}: {_shown(p.reason, 200)}")
    more = len(preview.problems) - PROBLEMS_SHOWN
    if more > 0 and not out_path:
        print(f"  … and {more:,} more problem(s): --problems FILE writes them all (CSV).")
    if out_path:
        try:
            Path(out_path).write_bytes(preview.problems_csv())  # formula-safe (kedacore.exports)
        except OSError as exc:
            why = exc.strerror or exc
            raise BadInput(f"--problems {out_path} cannot be written: {why}") from None
        print(f"  Every problem is in {_shown(out_path)} (CSV).")


def _hours() -> float:
    try:
        return frequency_hours()
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _print_left_out(preview: CampaignPreview, *, checked: bool) -> None:
    """The opted-out numbers left out ("37 opted out, left out") and the frequency guard."""
    if not checked:
        print("Opt-outs: not checked (no ledger); --yes needs the console's ledger.")
        return
    if words := left_out_words(preview):
        print(f"Left out: {words}.")
    for row in preview.opted_out[:PROBLEMS_SHOWN]:
        print(f"  row {row.row}: {_shown(row.phone, 32)} — opted out")
    if preview.recent:
        print(
            f"Frequency guard: {counted(len(preview.recent), 'recipient')} messaged within "
            f"the last {_hours():g} hours (KEDA_FREQUENCY_HOURS); --leave-out-recent leaves "
            "them out."
        )


def _print_cost(plan: CampaignPlan, funds: FundsCheck) -> None:
    cur = plan.currency
    countries: dict[str, list[Any]] = {}
    for r in plan.requests:
        line = countries.setdefault(r.country, [0, 0, 0, Decimal(0)])
        line[0] += len(r.recipients)
        line[1] += 1
        line[2] += r.segments * len(r.recipients)
        line[3] += r.cost
    print("Cost (price per segment × segments × recipients, as KedaSMS charges it):")
    print(f"  {'country':<8}{'recipients':>12}{'requests':>10}{'segments':>10}  cost")
    for country, (recipients, requests, segments, cost) in countries.items():
        print(f"  {country:<8}{recipients:>12,}{requests:>10,}{segments:>10,}  {_money(cost, cur)}")
    segments = sum(line[2] for line in countries.values())
    print(
        f"  {'total':<8}{plan.recipients:>12,}{len(plan.requests):>10,}{segments:>10,}  "
        f"{_money(plan.total, cur)}"
    )
    left = funds.balance - plan.total
    print(
        f"Balance: {_money(funds.balance, funds.currency)} now; "
        + (
            f"{_money(left, funds.currency)} left after this campaign."
            if left >= 0
            else f"{_money(-left, funds.currency)} short of this campaign."
        )
    )
    for text in funds.messages():
        print(f"Warning: {text}")


def _gate(ledger: Ledger, plan_total: int) -> int | None:
    """The approval threshold (micro-units) when ``plan_total`` is over it, else None.

    Nobody signs in here, so — unlike the console's local operator — the command line always
    has a second person to wait for: whoever approves on the console's Approvals page."""
    threshold = ledger.money_setting(APPROVAL_THRESHOLD)
    return threshold if threshold is not None and plan_total > threshold else None


def send_command(args: argparse.Namespace) -> int:
    """``send``: preview, then (``--yes``) create and hold or run the campaign."""
    at = _when(args.at) if args.at is not None else None
    if args.concurrency < 1:
        raise BadInput(f"--concurrency must be at least 1, not {args.concurrency}")
    if args.rate is not None and not args.rate > 0:
        raise BadInput(f"--rate must be more than 0 requests a second, not {args.rate}")
    url = ledger_url(args.ledger)
    absent = _absent(url)
    if args.yes and absent is not None:
        raise BadInput(_no_ledger(absent))
    schedule = _schedule(args, at)
    table, template, name = _read(args)
    # The opt-outs and the recent messages are the ledger's (none to read without one).
    guard = Ledger(url) if absent is None else None
    try:
        with KedaClient() as client:
            pricing = client.pricing()
            preview = preview_campaign(
                table,
                template,
                pricing=pricing,
                default_country=args.country,
                sender=(args.sender or "").strip() or None,
                suppressed=guard.suppressed if guard is not None else None,
                recent=guard.messaged_within(_hours()) if guard is not None else None,
            )
            if getattr(args, "leave_out_recent", False):
                preview = preview.leave_out_recent()
            plan = plan_requests(preview)
            funds = check_funds(plan, client.account.balance(), client.limits.get())
    except RecipientsError as exc:  # the default country or the sender
        raise BadInput(str(exc)) from None
    except ConfigurationError as exc:  # no API key, an unusable key or address
        raise BadInput(str(exc)) from None
    finally:
        if guard is not None:
            guard.close()
    print(_describe(table, args))
    _print_problems(preview, args.problems)
    _print_left_out(preview, checked=guard is not None)
    if not plan.requests:
        raise BadInput("no row can be sent: correct the file (the problems are listed above)")
    _print_cost(plan, funds)
    if schedule is not None:
        _print_parts(plan, schedule, datetime.now(UTC))
    if absent is not None:  # a preview: read as an empty ledger, never created
        print(
            f"Ledger: none at {_shown(absent)}, so no approval threshold was read; --yes "
            "refuses it: pass --ledger with the console's database (KEDA_DATABASE_URL)."
        )
        print("Preview only: nothing was created or sent.")
        return EXIT_PREVIEW
    ledger = Ledger(url)
    try:
        estimate = sum(r.cost_micros for r in plan.requests)
        threshold = _gate(ledger, estimate)
        if threshold is not None:
            print(
                f"Approval: {_money(plan.total, plan.currency)} is over the team's approval "
                f"threshold of {_money(from_micros(threshold), plan.currency)}: it waits for "
                "another member's approval on the console's Approvals page before anything is "
                "sent."
            )
        if not args.yes:
            print("Preview only: nothing was created or sent. Add --yes to send it.")
            return EXIT_PREVIEW
        return _create(ledger, args, plan, preview, name, schedule)
    finally:
        ledger.close()


def _schedule(args: argparse.Namespace, at: datetime | None) -> Schedule | None:
    """``--at`` / ``--local-time`` / ``--zone`` / ``--quiet`` as a Schedule (None: now)."""
    local = getattr(args, "local_time", None)
    quiet_text = getattr(args, "quiet", None)
    zone = getattr(args, "zone", None) or "UTC"
    try:
        if local is None and at is None:
            quiet = parse_quiet(quiet_text) if quiet_text is not None else None
            return Schedule("now", zone=zone, quiet=quiet) if quiet is not None else None
        quiet = parse_quiet(quiet_text)  # scheduled: 21:00-08:00 unless told
        if local is not None:
            day = at.date() if at is not None else datetime.now(UTC).date()
            return Schedule("local", day, parse_hhmm(local), zone, quiet)
        assert at is not None
        return Schedule.at_instant(at, zone=zone, quiet=quiet)
    except ScheduleError as exc:
        raise BadInput(f"{exc}") from None


def _print_parts(plan: CampaignPlan, schedule: Schedule, now: datetime) -> None:
    """When each part goes (UTC), recipients and zones."""
    parts = parts_of(plan, schedule, now)
    print(f"Schedule: {schedule.mode}, quiet hours {schedule.quiet_text}; {len(parts)} parts:")
    for part in parts[:20]:
        when = "at once" if part.when is None else f"{part.when:%Y-%m-%d %H:%M} UTC"
        zones = ", ".join(f"{z} {n:,}" for z, n in part.zones[:3])
        print(f"  {when:<22}{part.recipients:>10,}  {zones}")
    if len(parts) > 20:
        print(f"  … and {len(parts) - 20} more parts")


def _create(
    ledger: Ledger,
    args: argparse.Namespace,
    plan: CampaignPlan,
    preview: CampaignPreview,
    name: str,
    schedule: Schedule | None = None,
) -> int:
    """``--yes``: the campaign written and audited, then held for approval or sent."""
    who = actor()
    engine = CampaignEngine(
        ledger,
        AsyncKedaClient,
        callback_url=args.callback_url,
        write_group=args.write_group,
        rate=args.rate,
    )
    # Kept for a worker: with the receiver's token (KEDA_WEBHOOK_TOKEN) taken out; a URL whose
    # token is not known here is not kept at all (the worker posts to its own KEDA_CALLBACK_URL).
    token = os.environ.get("KEDA_WEBHOOK_TOKEN")
    kept = tasks.kept_callback(args.callback_url, token)
    options = tasks.SendOptions(
        track_click=False,
        callback=bool(args.callback_url),
        callback_url=kept if kept and tasks.TOKEN_SLOT in kept else None,
    )
    list_id = getattr(args, "list_id", None)
    campaign_id = engine.create(
        plan,
        name=name,
        created_by=who,
        options=options.as_json(),
        list_id=list_id,
        schedule=schedule,
    )
    campaign = ledger.campaign(campaign_id)
    assert campaign is not None
    target = f"campaign {campaign_id}"
    if schedule is not None:
        ledger.audit(
            who,
            "campaign_schedule",
            target=target,
            after={**schedule.as_json(), "first_part_at": campaign.scheduled_at},
            detail="python -m kedacore.campaign send",
        )
    ledger.audit(
        who,
        "campaign_create",
        target=target,
        after={
            "name": campaign.name,
            "recipients": campaign.recipients,
            "requests": campaign.batches,
            "estimate": plan.total,
            "currency": campaign.currency,
            "rows_left_out": preview.rejected_rows,
            **({"opted_out_left_out": len(preview.opted_out)} if preview.opted_out else {}),
            **(
                {"recent_left_out": len(preview.recent_left_out)} if preview.recent_left_out else {}
            ),
        },
        detail="python -m kedacore.campaign send "
        + (
            f"--list {_shown(args.list, 100)}"
            if list_id is not None
            else f"--file {_shown(Path(args.file).name, 100)}"
        ),
    )
    label_ = ledger.campaign_label(campaign_id) or name
    threshold = _gate(ledger, campaign.estimated_micros)  # read again
    if threshold is not None:
        item = ledger.hold_campaign(campaign_id, by=who, threshold_micros=threshold)
        approvers = ledger.approvers(besides=who)
        whom = ", ".join(approvers[:5]) + (f" and {len(approvers) - 5} more" * (len(approvers) > 5))
        print(
            f"Campaign {_shown(label_)} (id {campaign_id}) waits for approval: nothing was sent. "
            + (
                f"A finance or admin member ({whom}) approves or rejects it on the Approvals "
                "page; once approved the console sends it."
                if approvers
                else "The team has no finance or admin member to approve it: without sign-in "
                "the console's local operator approves it on the Approvals page; with sign-in "
                "an admin first gives someone the finance role on the Members page."
            )
        )
        print(
            _json(
                {
                    "campaign": campaign_id,
                    "status": "awaiting",
                    "approval": item.id,
                    "estimate": item.estimate,
                    "threshold": item.threshold,
                    "currency": item.currency,
                }
            ),
            flush=True,
        )
        return EXIT_AWAITING
    if tasks.uses_workers(ledger.url):
        return _enqueue(ledger, campaign_id, label_, who)
    if campaign.status == "scheduled" and campaign.scheduled_at is not None:
        print(
            f"Campaign {_shown(label_)} (id {campaign_id}) scheduled: its first part goes at "
            f"{campaign.scheduled_at:%Y-%m-%d %H:%M:%S} UTC. The console sends it then (keep "
            f"it running), or run `python -m kedacore.campaign resume --campaign {campaign_id}` "
            "at that time; cancel it with `cancel` until then.",
            flush=True,
        )
        print(
            _json(
                {
                    "campaign": campaign_id,
                    "status": "scheduled",
                    "first_part_at": campaign.scheduled_at.isoformat(),
                }
            ),
            flush=True,
        )
        return EXIT_SCHEDULED
    print(f"Campaign {_shown(label_)} (id {campaign_id}) created: sending.", flush=True)
    return _run(ledger, engine, campaign_id, args, who, "python -m kedacore.campaign send")


def _enqueue(ledger: Ledger, campaign_id: int, label_: str, who: str) -> int:
    """PostgreSQL: a job for the workers, audited as a start; exit 7 (queued)."""
    campaign = ledger.campaign(campaign_id)
    assert campaign is not None
    job = tasks.enqueue(ledger.url, campaign_id, ledger.now(), at=campaign.scheduled_at)
    ledger.audit(
        who,
        "campaign_start",
        target=f"campaign {campaign_id}",
        before={"status": campaign.status},
        after={
            "name": campaign.name,
            "recipients": campaign.recipients,
            "estimate": from_micros(campaign.estimated_micros),
            "currency": campaign.currency,
            "job": job,
        },
        detail="python -m kedacore.campaign send (queued for the workers)",
    )
    workers = tasks.live_workers(ledger)
    print(
        f"Campaign {_shown(label_)} (id {campaign_id}) created and queued: a worker "
        "(python -m kedacore.campaign worker) sends it"
        + ("." if workers else "; no worker is running now: start one."),
        flush=True,
    )
    print(
        _json({"campaign": campaign_id, "status": "queued", "job": job, "workers": workers}),
        flush=True,
    )
    return EXIT_QUEUED
