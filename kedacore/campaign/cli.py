"""``python -m kedacore.campaign``: run (or resume) a planned campaign, or show its progress.

    python -m kedacore.campaign run --ledger URL --campaign ID [--concurrency 64] [--rate 80]
    python -m kedacore.campaign status --ledger URL --campaign ID

The client takes its key and addresses from the environment (``KEDA_API_KEY``,
``KEDA_ENCRYPTION_KEY``, ``KEDA_BASE_URL``, ``KEDA_BACKUP_URL``): secrets never go on a
command line, where ``ps`` shows them. ``run`` prints one JSON line per progress report and
the final report; it exits 0 when the campaign is done, 3 when it paused. ``--rate``
paces the requests (per second: a share of the service's per-key limit leaves the key's other
users some); without it, as fast as ``--concurrency`` allows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from decimal import Decimal
from typing import Any

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.errors import KedaError
from kedacore.campaign.engine import DEFAULT_CONCURRENCY, CampaignEngine
from kedacore.ledger import Ledger

EXIT_PAUSED = 3


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
    for name, text in (("run", "send every planned batch"), ("status", "print the progress")):
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
        engine = CampaignEngine(
            ledger,
            AsyncKedaClient,
            callback_url=args.callback_url,
            write_group=args.write_group,
            rate=args.rate,
        )
        report = engine.run_sync(
            args.campaign,
            concurrency=args.concurrency,
            on_progress=lambda p: print(_json(p), flush=True),
        )
        print(_json({"report": report}), flush=True)
        return 0 if report.status == "done" else EXIT_PAUSED
    except (KeyError, ValueError, KedaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
