"""``python -m kedacore.campaign``: send a recipients file as a campaign (``send``), run (or
resume) a planned campaign, cancel what is left of one, or show its progress.

    python -m kedacore.campaign send --file recipients.csv --template "Hi {name}" \\
        [--country US] [--sender Shop] [--name "Spring sale"] [--yes] [--ledger URL]
    python -m kedacore.campaign run [--ledger URL] --campaign ID [--concurrency 64] [--rate 80]
    python -m kedacore.campaign cancel [--ledger URL] --campaign ID
    python -m kedacore.campaign status [--ledger URL] --campaign ID
    python -m kedacore.campaign worker [--concurrency 4] [--database-url URL]

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
``run`` sends it — or, with a PostgreSQL ledger, queued for the workers (exit 7).

``worker`` (PostgreSQL only) runs the campaigns queued by the console and ``send --yes``
(:mod:`kedacore.campaign.worker`). ``run`` on PostgreSQL refuses a campaign a worker is
sending (exit 1): one runner per campaign.

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
import os
import sys

from sqlalchemy.exc import SQLAlchemyError

from kedacore.api.async_client import AsyncKedaClient
from kedacore.api.errors import KedaError
from kedacore.campaign import tasks
from kedacore.campaign.command import (
    EXIT_AWAITING,
    EXIT_BAD_INPUT,
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_PAUSED,
    EXIT_PREVIEW,
    EXIT_QUEUED,
    EXIT_SCHEDULED,
    BadInput,
    _cancel,
    _json,
    _run,
    actor,
    ledger_url,
    open_ledger,
)
from kedacore.campaign.engine import DEFAULT_CONCURRENCY, CampaignEngine
from kedacore.campaign.progress import CampaignBusyError
from kedacore.ledger.migrate import LedgerTooNew
from kedacore.redaction import redact_text
from kedacore.settings import password_warning

try:
    import pwd  # command.actor reads it; kept here for whoever patches cli.pwd
except ImportError:  # not POSIX
    pwd = None  # type: ignore[assignment]

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
    EXIT_SCHEDULED: "created and scheduled (--at, --local-time): nothing sent yet, or only "
    "the parts already due; the console's runner (SQLite) or a worker (PostgreSQL) sends the "
    "rest at their times",
    EXIT_QUEUED: "created and queued (PostgreSQL ledger): a worker (`python -m "
    "kedacore.campaign worker`) sends it; `status --campaign ID` follows it",
}
SEND_HELP = f"""\
Check and price every row of a recipients file, print the rows left out and the cost; with
--yes create the campaign and send it to the end (or, over the team's approval threshold,
leave it waiting on the console's Approvals page; with a PostgreSQL ledger, queue it for the
workers).

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
    source = send.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="the recipients (CSV or XLSX)")
    source.add_argument("--list", metavar="NAME", help="a contact list of the console's ledger")
    send.add_argument("--template", required=True, help='the text, with {column}s: "Hi {name}"')
    send.add_argument("--country", default=None, help="ISO code for national numbers (US)")
    send.add_argument("--sender", default=None, help="sender id (a sender column overrides it)")
    send.add_argument("--name", default=None, help="the campaign's name (default: the file's)")
    send.add_argument("--encoding", default=None, help="the CSV's encoding (default: detected)")
    send.add_argument(
        "--at", default=None, help="send at this ISO 8601 time with its zone (or its date, with "
        "--local-time)"
    )  # fmt: skip
    send.add_argument(
        "--local-time", default=None, metavar="HH:MM",
        help="send at this time of each recipient's own zone (from the number), on --at's date "
        "(default: today, UTC)",
    )  # fmt: skip
    send.add_argument(
        "--zone", default="UTC", help="IANA zone of numbers of no known zone (default UTC)"
    )
    send.add_argument(
        "--quiet", default=None, metavar="HH:MM-HH:MM|off",
        help="quiet hours in each recipient's zone, held until they end (scheduled: default "
        "21:00-08:00; now: off unless given)",
    )  # fmt: skip
    send.add_argument("--yes", action="store_true", help="create the campaign and send it")
    send.add_argument("--problems", default=None, metavar="FILE", help="write every problem (CSV)")
    send.add_argument(
        "--leave-out-recent", action="store_true", help="leave out numbers messaged recently"
    )
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
    from kedacore.campaign import worker

    work = commands.add_parser(
        "worker",
        help="run the campaigns queued in a PostgreSQL ledger",
        description=worker.__doc__,
        epilog="exit codes:\n"
        + "\n".join(f"  {code}  {text}" for code, text in worker.EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_arguments(work)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    said = password_warning(getattr(args, "ledger", None) or getattr(args, "database_url", None))
    if said:
        print(said, file=sys.stderr)
    try:
        if args.command == "send":
            from kedacore.campaign.send import send_command

            return send_command(args)
        if args.command == "worker":
            from kedacore.campaign import worker

            return worker.main(args)
        return _campaign_command(args)
    except BadInput as exc:  # send's own: nothing was created
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyError, ValueError, KedaError, CampaignBusyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except LedgerTooNew as exc:  # a newer release upgraded the ledger: nothing was touched
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
        engine = tasks.campaign_engine(  # the campaign's own send options, as a worker's
            ledger,
            args.campaign,
            AsyncKedaClient,
            callback_url=args.callback_url,
            rate=args.rate,
            write_group=args.write_group,
        )
        return _run(ledger, engine, args.campaign, args, actor())
    finally:
        ledger.close()


if __name__ == "__main__":
    raise SystemExit(main())
