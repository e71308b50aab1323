"""What the command line's subcommands share (:mod:`kedacore.campaign.cli` says what each
does): exit codes, who acts, which ledger, ``run`` and ``cancel`` of one campaign, JSON lines.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from kedacore.api.errors import KedaError
from kedacore.campaign import tasks
from kedacore.campaign.engine import HELD, CampaignEngine
from kedacore.campaign.progress import CampaignBusyError
from kedacore.ledger import Ledger
from kedacore.money import from_micros
from kedacore.redaction import redact_text
from kedacore.settings import load_settings

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
EXIT_SCHEDULED = 6  # created and scheduled: its first part goes later (--at, --local-time)
EXIT_NOT_SCHEDULED = EXIT_SCHEDULED  # its name before schedules were built
EXIT_QUEUED = 7
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
    not_started = ("draft", "planned", "scheduled", *HELD)
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
        with tasks.campaign_guard(ledger.url, campaign_id, wait=0):  # not while a worker sends
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
    if report.status == "scheduled":  # its due parts sent, the others later
        return EXIT_SCHEDULED
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
