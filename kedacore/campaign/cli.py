"""``python -m kedacore.campaign``: send a recipients file as a campaign (``send``), run (or
resume) a planned campaign, cancel what is left of one, or show its progress.

    python -m kedacore.campaign send --file recipients.csv --template "Hi {name}" \\
        [--country US] [--sender Shop] [--name "Spring sale"] [--yes] [--ledger URL]
    python -m kedacore.campaign run [--ledger URL] --campaign ID [--concurrency 64] [--rate 80]
    python -m kedacore.campaign cancel [--ledger URL] --campaign ID
    python -m kedacore.campaign status [--ledger URL] --campaign ID

The ledger is ``--ledger``, else the console's, found as the console finds it
(:func:`ledger_url`: ``KEDA_DATABASE_URL``, else ``[keda]`` of ``./.streamlit/secrets.toml``,
else ``ledger.db`` in the data folder). A SQLite ledger file that does not exist yet is never
created here (:func:`open_ledger`): ``send --yes``, ``run``, ``cancel`` and ``status`` refuse it
(exit 2) — a new, empty ledger has no approval threshold and no audit log the team reads — and
a preview reads it as empty.

The client takes its key and addresses from the environment (``KEDA_API_KEY``,
``KEDA_ENCRYPTION_KEY``, ``KEDA_BASE_URL``, ``KEDA_BACKUP_URL``): secrets never go on a
command line, where ``ps`` shows them. ``run`` prints one JSON line per progress report and
the final report; it exits 0 when the campaign is done, 3 when it paused. ``--rate``
paces the requests (per second: a share of the service's per-key limit leaves the key's other
users some); without it, as fast as ``--concurrency`` allows.

``send`` checks and prices every row with the Campaigns page's own code
(``kedacore.campaign.recipients``, ``preview``, ``plan``) and prints the rows left out (by
row number, and why) and the cost (per country, in all, the balance it would leave). Without
``--yes`` it stops there. With ``--yes`` it writes the campaign to the ledger; over the team's
approval threshold the campaign then waits for another member's approval on the console's
Approvals page (nothing is sent), otherwise it is sent to the end in the foreground, as
``run`` sends it.

``send --help`` lists its exit codes (:data:`EXIT_CODES`).

The team's records cover the command line too: ``send`` (the campaign created, and held or
started), ``run`` (a start, or a resume) and ``cancel`` are written to the ledger's audit log
— and so are their refusals — by ``command line (<OS user>)`` (:func:`actor`: the user of
the process's effective user id, not LOGNAME/USER, which anyone sets). Nobody signs in here,
so whoever can run this command with the ledger and the API key acts for the team, and nothing
ties the OS user to a member: the Approvals page marks a request made here as such. A
campaign waiting for approval or rejected is refused all the same (it is decided on the
Approvals page).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.client import KedaClient
from kedacore.api.errors import ConfigurationError, KedaError
from kedacore.campaign.engine import DEFAULT_CONCURRENCY, HELD, CampaignEngine
from kedacore.campaign.plan import (
    CampaignPlan,
    CampaignPreview,
    FundsCheck,
    check_funds,
    plan_requests,
    preview_campaign,
)
from kedacore.campaign.progress import CampaignBusyError
from kedacore.campaign.recipients import (
    RecipientFile,
    RecipientsError,
    load_limits,
    parse_template,
    read_recipients,
)
from kedacore.campaign.recipients.encoding import label
from kedacore.ledger import Ledger
from kedacore.ledger.team import APPROVAL_THRESHOLD
from kedacore.money import from_micros
from kedacore.redaction import redact_text
from kedacore.settings import load_settings
from kedacore.words import counted

try:
    import pwd
except ImportError:  # not POSIX
    pwd = None  # type: ignore[assignment]

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PAUSED = 3
EXIT_PREVIEW = 4
EXIT_AWAITING = 5
EXIT_NOT_SCHEDULED = 6
MAX_USER = 64  # characters of the OS user name kept in the actor
MAX_NAME = 200  # characters of a campaign's name (the ledger's column, the page's field)
PROBLEMS_SHOWN = 100  # problem rows printed; --problems writes them all
SECRETS_FILE = Path(".streamlit") / "secrets.toml"  # the console's, from where it runs


class Refused(ValueError):
    """The command was refused before it changed anything (said, and audited)."""


class BadInput(ValueError):
    """``send`` cannot go on with what it was given; nothing was created (exit 2)."""


def _os_user() -> str:
    """The name of the process's effective user id — not LOGNAME or USER, which whoever runs
    the command sets to anything (getpass reads them first); getpass only where there is no
    ``pwd`` (not POSIX)."""
    if pwd is not None:
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:  # no password entry for this user id (a container's)
            return f"uid {os.geteuid()}"
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def actor() -> str:
    """Who the command line acts as in the audit log: ``command line (<OS user>)``.

    Nothing ties the OS user to a member of the team: the Approvals page says so of a request
    made here (its requester starts with ``command line (``)."""
    user = "".join(ch for ch in _os_user() if ch.isprintable()).strip()[:MAX_USER]
    return f"command line ({user or 'unknown user'})"


def ledger_url(given: str | None) -> str:
    """The ledger to use: ``--ledger``, else the console's, found as the console finds it —
    ``load_settings(secrets, os.environ).ledger_url`` with the ``[keda]`` section of
    ``./.streamlit/secrets.toml`` when that file exists."""
    if given:
        return given
    secrets = None
    if SECRETS_FILE.is_file():
        try:
            secrets = tomllib.loads(SECRETS_FILE.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BadInput(f"{SECRETS_FILE} cannot be read: {exc}") from None
    # A token given, so that load_settings does not write one into the data folder: only the
    # ledger's address is used here.
    env = {**os.environ, "KEDA_WEBHOOK_TOKEN": "unused"}
    return load_settings(secrets, env).ledger_url


def _absent(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (opening it would create a new,
    empty ledger), else None (it exists, in memory, or another database)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path.resolve()


def _no_ledger(path: Path) -> str:
    return f"no ledger at {path}: pass --ledger with the console's database (KEDA_DATABASE_URL)"


def open_ledger(url: str) -> Ledger:
    """The ledger at ``url``; refused (:class:`BadInput`, exit 2, nothing created) when it is a
    SQLite file that does not exist yet: a new ledger has no approval threshold and its audit
    log is not the one the team reads."""
    path = _absent(url)
    if path is not None:
        raise BadInput(_no_ledger(path))
    return Ledger(url)


def _refusal(campaign_id: int, status: str, verb: str) -> str | None:
    """Why a campaign in ``status`` cannot be ``verb`` ("sent", "cancelled"), or None."""
    if status in HELD:
        return (
            f"campaign {campaign_id} {HELD[status]}: it cannot be {verb}; it is decided on the "
            "Approvals page"
        )
    if status == "cancelled":
        return f"campaign {campaign_id} was cancelled; it cannot be {verb}"
    if verb == "cancelled" and status == "done":
        return f"campaign {campaign_id} is done: nothing is left to cancel"
    return None


def _facts(ledger: Ledger, campaign_id: int) -> dict[str, Any]:
    campaign = ledger.campaign(campaign_id)
    if campaign is None:
        raise KeyError(f"no campaign {campaign_id!r}")
    left = ledger.campaign_batch_counts(campaign_id).get("planned", {})
    return {
        "status": campaign.status,
        "name": campaign.name,
        "recipients": campaign.recipients,
        "recipients_left": left.get("recipients", 0),
        "estimate": from_micros(campaign.estimated_micros),
        "currency": campaign.currency,
    }


def _run(
    ledger: Ledger,
    engine: CampaignEngine,
    campaign_id: int,
    args: Any,
    who: str,
    detail: str = "python -m kedacore.campaign run",
) -> int:
    """Run (start or resume) the campaign, audited as ``who``."""
    facts = _facts(ledger, campaign_id)
    status = facts.pop("status")
    # Never sent yet (planned, or held before it could be): a start; else a resume.
    not_started = ("draft", "planned", *HELD)
    action = "campaign_start" if status in not_started else "campaign_resume"
    target = f"campaign {campaign_id}"
    refusal = _refusal(campaign_id, status, "sent")
    if refusal is not None:
        ledger.audit(who, action, target=target, detail=refusal, outcome="refused")
        raise Refused(refusal)
    options = {"concurrency": args.concurrency, "rate": args.rate}
    ledger.audit(
        who,
        action,
        target=target,
        before={"status": status},
        after={**facts, **options},
        detail=detail,
    )
    try:
        report = engine.run_sync(
            campaign_id,
            concurrency=args.concurrency,
            on_progress=lambda p: print(_json(p), flush=True),
        )
    except (KeyError, ValueError, KedaError, CampaignBusyError) as exc:
        refused = isinstance(exc, ValueError)  # held or cancelled meanwhile: nothing sent
        ledger.audit(
            who,
            action,
            target=target,
            detail=redact_text(str(exc)),
            outcome="refused" if refused else "failed",
        )
        raise
    print(_json({"report": report}), flush=True)
    return EXIT_DONE if report.status == "done" else EXIT_PAUSED


def _cancel(ledger: Ledger, engine: CampaignEngine, campaign_id: int, who: str) -> int:
    """Cancel what is left of the campaign, audited as ``who``."""
    facts = _facts(ledger, campaign_id)
    status = facts["status"]
    target = f"campaign {campaign_id}"
    refusal = _refusal(campaign_id, status, "cancelled")
    if refusal is None:
        try:
            engine.cancel(campaign_id)
        except (ValueError, CampaignBusyError) as exc:
            refusal = str(exc)
    if refusal is not None:
        ledger.audit(who, "campaign_cancel", target=target, detail=refusal, outcome="refused")
        raise Refused(refusal)
    ledger.audit(
        who,
        "campaign_cancel",
        target=target,
        before={"status": status},
        after={"status": "cancelled", "recipients_left": facts["recipients_left"]},
        detail="python -m kedacore.campaign cancel",
    )
    print(_json({**facts, "campaign": campaign_id, "status": "cancelled"}), flush=True)
    return 0


def _json(value: Any) -> str:
    def default(v: Any) -> Any:
        if isinstance(v, Decimal):
            return format(v, "f")
        if dataclasses.is_dataclass(v):
            return dataclasses.asdict(v)  # type: ignore[arg-type]
        raise TypeError(type(v).__name__)

    data = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return json.dumps(data, default=default, ensure_ascii=False)


# -- send: a file to a campaign --------------------------------------------------------------


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


def _read(args: argparse.Namespace) -> tuple[RecipientFile, Any, str]:
    """The file and the template checked, before the service is asked anything."""
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


def _send(args: argparse.Namespace) -> int:
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
    table, template, name = _read(args)
    if at is not None:
        print(
            f"error: sending at a set time (--at {at.isoformat()}) is not built yet: "
            "campaign schedules come in a later step. Nothing was created or sent. Run this "
            "command at that time instead (cron, a systemd timer), without --at.",
            file=sys.stderr,
        )
        return EXIT_NOT_SCHEDULED
    try:
        with KedaClient() as client:
            pricing = client.pricing()
            preview = preview_campaign(
                table,
                template,
                pricing=pricing,
                default_country=args.country,
                sender=(args.sender or "").strip() or None,
            )
            plan = plan_requests(preview)
            funds = check_funds(plan, client.account.balance(), client.limits.get())
    except RecipientsError as exc:  # the default country or the sender
        raise BadInput(str(exc)) from None
    except ConfigurationError as exc:  # no API key, an unusable key or address
        raise BadInput(str(exc)) from None
    print(_describe(table, args))
    _print_problems(preview, args.problems)
    if not plan.requests:
        raise BadInput("no row can be sent: correct the file (the problems are listed above)")
    _print_cost(plan, funds)
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
        return _create(ledger, args, plan, preview, name)
    finally:
        ledger.close()


def _create(
    ledger: Ledger,
    args: argparse.Namespace,
    plan: CampaignPlan,
    preview: CampaignPreview,
    name: str,
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
    campaign_id = engine.create(plan, name=name, created_by=who)
    campaign = ledger.campaign(campaign_id)
    assert campaign is not None
    target = f"campaign {campaign_id}"
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
        },
        detail=f"python -m kedacore.campaign send --file {_shown(Path(args.file).name, 100)}",
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
    print(f"Campaign {_shown(label_)} (id {campaign_id}) created: sending.", flush=True)
    return _run(ledger, engine, campaign_id, args, who, "python -m kedacore.campaign send")


# -- the command line ------------------------------------------------------------------------

EXIT_CODES = {
    EXIT_DONE: "sent to the end (the campaign is done)",
    EXIT_FAILED: "failed: the service or the ledger could not be used (said on stderr)",
    EXIT_BAD_INPUT: "bad input or setup (file, template, column, limit, option, keys, no "
    "ledger): nothing created",
    EXIT_PAUSED: "paused (a cap, the balance, a pause asked elsewhere): resume with "
    "`run --campaign ID`",
    EXIT_PREVIEW: "preview only (no --yes): nothing created, nothing sent",
    EXIT_AWAITING: "created and waiting for approval on the Approvals page: nothing sent",
    EXIT_NOT_SCHEDULED: "--at given: sending at a set time is not built yet; nothing created",
}
SEND_HELP = f"""\
Check and price every row of a recipients file, print the rows left out and the cost; with
--yes create the campaign and send it to the end (or, over the team's approval threshold,
leave it waiting on the console's Approvals page).

exit codes:
{chr(10).join(f"  {code}  {text}" for code, text in EXIT_CODES.items())}

Keys from the environment only: KEDA_API_KEY, KEDA_ENCRYPTION_KEY, KEDA_BASE_URL,
KEDA_BACKUP_URL; the ledger from --ledger, else as the console finds it (KEDA_DATABASE_URL,
[keda] in ./.streamlit/secrets.toml, the data folder) — never created here; limits from
KEDA_MAX_ROWS …
"""


def _run_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    sub.add_argument("--write-group", type=int, default=500)
    sub.add_argument("--rate", type=float, default=None, help="at most this many requests a second")
    sub.add_argument(
        "--callback-url", default=os.environ.get("KEDA_CALLBACK_URL"), help="for statuses"
    )


def parser() -> argparse.ArgumentParser:
    """The command line's parser (``--help`` shows the exit codes)."""
    top = argparse.ArgumentParser(
        prog="python -m kedacore.campaign",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    send = commands.add_parser(
        "send",
        help="preview a recipients file, and with --yes send it",
        description=SEND_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("--file", required=True, help="the recipients (CSV or XLSX)")
    send.add_argument("--template", required=True, help='the text, with {column}s: "Hi {name}"')
    send.add_argument("--country", default=None, help="ISO code for national numbers (US)")
    send.add_argument("--sender", default=None, help="sender id (a sender column overrides it)")
    send.add_argument("--name", default=None, help="the campaign's name (default: the file's)")
    send.add_argument("--encoding", default=None, help="the CSV's encoding (default: detected)")
    send.add_argument("--at", default=None, help="ISO time with zone: refused, not built yet")
    send.add_argument("--yes", action="store_true", help="create the campaign and send it")
    send.add_argument("--problems", default=None, metavar="FILE", help="write every problem (CSV)")
    send.add_argument("--ledger", default=None, help="ledger URL (KEDA_DATABASE_URL)")
    _run_options(send)
    for name, text in (
        ("run", "send every planned batch"),
        ("cancel", "cancel the batches not sent yet"),
        ("status", "print the progress"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--ledger", default=None, help="ledger URL (KEDA_DATABASE_URL)")
        sub.add_argument("--campaign", type=int, required=True, help="campaign id")
        if name == "run":
            _run_options(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        if args.command == "send":
            return _send(args)
        return _campaign_command(args)
    except BadInput as exc:  # send's own: nothing was created
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyError, ValueError, KedaError, CampaignBusyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"error: the ledger could not be used: {redact_text(first)}", file=sys.stderr)
        return EXIT_FAILED


def _campaign_command(args: argparse.Namespace) -> int:
    """``run``, ``cancel``, ``status`` of one campaign."""
    ledger = open_ledger(ledger_url(args.ledger))
    try:
        if args.command == "status":
            engine = CampaignEngine(ledger, AsyncKedaClient)
            print(_json(engine.progress(args.campaign)))
            return 0
        if args.command == "cancel":
            return _cancel(ledger, CampaignEngine(ledger, AsyncKedaClient), args.campaign, actor())
        engine = CampaignEngine(
            ledger,
            AsyncKedaClient,
            callback_url=args.callback_url,
            write_group=args.write_group,
            rate=args.rate,
        )
        return _run(ledger, engine, args.campaign, args, actor())
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
