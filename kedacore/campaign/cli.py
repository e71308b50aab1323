"""``python -m kedacore.campaign``: run (or resume) a planned campaign, cancel what is left of
one, or show its progress.

    python -m kedacore.campaign run --ledger URL --campaign ID [--concurrency 64] [--rate 80]
    python -m kedacore.campaign cancel --ledger URL --campaign ID
    python -m kedacore.campaign status --ledger URL --campaign ID

The client takes its key and addresses from the environment (``KEDA_API_KEY``,
``KEDA_ENCRYPTION_KEY``, ``KEDA_BASE_URL``, ``KEDA_BACKUP_URL``): secrets never go on a
command line, where ``ps`` shows them. ``run`` prints one JSON line per progress report and
the final report; it exits 0 when the campaign is done, 3 when it paused. ``--rate``
paces the requests (per second: a share of the service's per-key limit leaves the key's other
users some); without it, as fast as ``--concurrency`` allows.

The team's records cover the command line too: ``run`` (a start, or a resume) and ``cancel``
are written to the ledger's audit log — and so are their refusals — by
``command line (<OS user>)`` (:func:`actor`). Nobody signs in here, so whoever can run this
command with the ledger and the API key acts for the team; a campaign waiting for approval
or rejected is refused all the same (it is decided on the Approvals page).
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import os
import sys
from decimal import Decimal
from typing import Any

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.errors import KedaError
from kedacore.campaign.engine import DEFAULT_CONCURRENCY, HELD, CampaignEngine
from kedacore.campaign.progress import CampaignBusyError
from kedacore.ledger import Ledger
from kedacore.money import from_micros
from kedacore.redaction import redact_text

EXIT_PAUSED = 3
MAX_USER = 64  # characters of the OS user name kept in the actor


class Refused(ValueError):
    """The command was refused before it changed anything (said, and audited)."""


def actor() -> str:
    """Who the command line acts as in the audit log: ``command line (<OS user>)``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no LOGNAME/USER, no password entry
        user = ""
    user = "".join(ch for ch in user if ch.isprintable()).strip()[:MAX_USER]
    return f"command line ({user or 'unknown user'})"


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


def _run(ledger: Ledger, engine: CampaignEngine, campaign_id: int, args: Any, who: str) -> int:
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
        detail="python -m kedacore.campaign run",
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
    return 0 if report.status == "done" else EXIT_PAUSED


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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m kedacore.campaign", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "send every planned batch"),
        ("cancel", "cancel the batches not sent yet"),
        ("status", "print the progress"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--ledger", default=None, help="ledger URL (KEDA_DATABASE_URL)")
        sub.add_argument("--campaign", type=int, required=True, help="campaign id")
        if name == "run":
            sub.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
            sub.add_argument("--write-group", type=int, default=500)
            sub.add_argument(
                "--rate", type=float, default=None, help="at most this many requests a second"
            )
            sub.add_argument(
                "--callback-url", default=os.environ.get("KEDA_CALLBACK_URL"), help="for statuses"
            )
    args = parser.parse_args(argv)
    ledger = Ledger(args.ledger)
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
    except (KeyError, ValueError, KedaError, CampaignBusyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
