"""The command line: ``serve`` and ``account create|topup`` (contracts in DESIGN.md)."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from gateway.cli_options import (
    add_abuse_options,
    add_callback_options,
    add_carrier_options,
    non_negative,
)
from gateway.config import DEFAULT_DB, GatewayConfig
from gateway.simulation import ProfileError, load_country_profiles

DESCRIPTION = "A KedaSMS-compatible gateway (front-end proxy and back end in one service)."
EPILOG = (
    "The gateway sends no e-mail: verification mails of POST /api/accounts/register are "
    "written as text files to the mail outbox, the folder 'mail/' beside the database "
    "(e.g. .kedasms/mail/ for the default --db). Operator guide: docs/gateway.md."
)


class CliError(Exception):
    """A command that cannot be carried out; its message is shown on one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gateway", description=DESCRIPTION, epilog=EPILOG
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway until stopped", epilog=EPILOG)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8787, help="port to listen on (8787)")
    serve.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file ({DEFAULT_DB})")
    serve.add_argument(
        "--allow-private-callbacks",
        action="store_true",
        help="accept callback URLs on loopback and private addresses (for a sandbox)",
    )
    serve.add_argument(
        "--public-url",
        help="public base of short links, e.g. https://sms.example.com (default: http://HOST:PORT)",
    )
    serve.add_argument(
        "--rate-limit",
        type=non_negative,
        default=100.0,
        metavar="N",
        help="requests per second per API key; 0 turns the limit off (100)",
    )
    serve.add_argument(
        "--rate-burst",
        type=int,
        default=None,
        metavar="B",
        help="requests one API key may make at once before the rate applies (2 x N)",
    )
    add_carrier_options(serve)
    add_callback_options(serve)
    add_abuse_options(serve)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (API keys redacted); off by default: it costs ~15%% of throughput",
    )

    account = commands.add_parser("account", help="create accounts and top them up")
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create a verified account; prints its keys once, as JSON"
    )
    create.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file ({DEFAULT_DB})")
    create.add_argument("--email", required=True)
    create.add_argument("--balance", default="100", help="starting balance (100)")
    create.add_argument("--currency", default="USD", help="ISO 4217 code (USD)")
    topup = actions.add_parser("topup", help="add money to an account's balance")
    topup.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file ({DEFAULT_DB})")
    topup.add_argument("--email", required=True)
    topup.add_argument("--amount", required=True, help="amount to add, e.g. 50 or 12.5")

    outbox = commands.add_parser(
        "outbox", help="list callback events: pending, delivered and dead-lettered"
    )
    outbox.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"SQLite file ({DEFAULT_DB})")
    outbox.add_argument("--state", choices=["pending", "delivered", "dead"], help="only these")
    outbox.add_argument("--limit", type=int, default=50, help="newest events shown (50)")
    outbox.add_argument("--json", action="store_true", help="one JSON object instead of text")
    return parser


class _RedactKeys(logging.Filter):
    """Access-log lines must not carry an ``apiKey`` query parameter."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def redact_path(path: str) -> str:
    if "?" not in path:
        return path
    base, query = path.split("?", 1)
    pairs = [
        (k, "***" if re.fullmatch(r"(?i)api_?key", k) else v)
        for k, v in parse_qsl(query, keep_blank_values=True)
    ]
    return base + "?" + urlencode(pairs)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app
    from gateway.server import GatewayHttpProtocol

    if not 0 < args.port < 65536:
        raise CliError(f"--port must be between 1 and 65535, got {args.port}")
    if args.rate_burst is not None and args.rate_burst < 1:
        raise CliError("--rate-burst must be at least 1")
    country_profiles = None
    if args.country_profiles is not None:
        try:
            country_profiles = load_country_profiles(args.country_profiles)
        except ProfileError as exc:
            raise CliError(str(exc)) from None
    config = GatewayConfig(
        db_path=args.db,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        allow_private_callbacks=args.allow_private_callbacks,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        carrier_profile=args.profile,
        sent_delay=args.sent_delay,
        deliver_delay=args.deliver_delay,
        failed_share=args.failed_share,
        undelivered_share=args.undelivered_share,
        carrier_jitter=args.jitter,
        country_profiles=country_profiles,
        carrier_seed=args.carrier_seed,
        callback_concurrency=args.callback_concurrency,
        callback_timeout=args.callback_timeout,
        callback_backoff_base=args.callback_backoff,
        callback_backoff_cap=args.callback_backoff_cap,
        callback_max_attempts=args.callback_max_attempts,
        callback_dead_after=args.callback_dead_after,
        max_tracked_urls=args.max_tracked_urls,
        trusted_proxies=tuple(n for names in args.trusted_proxies for n in names),
        click_limit=args.click_limit,
        click_window=args.click_window,
    )
    try:  # check the carrier settings now: a bad file is a one-line error, not a traceback
        policy = config.policy()
    except ProfileError as exc:
        raise CliError(str(exc)) from None
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(config, policy=policy)
    server_config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        server_header=False,
        access_log=args.access_log,
        # X-Forwarded-For/-Proto only from the proxies named (uvicorn's default trusts
        # loopback); the gateway applies the same rule to the addresses it counts.
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies),
        # A request offering HTTP/2 (Java's HttpClient, curl --http2) keeps its body.
        http=GatewayHttpProtocol,
    )
    logging.getLogger("uvicorn.access").addFilter(_RedactKeys())
    uvicorn.Server(server_config).run()
    return 0


def account(args: argparse.Namespace) -> int:
    from gateway.accounts import AccountError, Accounts
    from gateway.db import Database
    from kedacore.money import MoneyError, dumps, to_micros

    try:
        amount = to_micros(args.balance if args.action == "create" else args.amount)
    except MoneyError as exc:
        raise CliError(str(exc)) from None
    db = Database(args.db)
    try:
        accounts = Accounts(db, clock=time.time)
        if args.action == "create":
            result = accounts.create(args.email, amount, args.currency)
        else:
            result = accounts.topup(args.email, amount)
    except AccountError as exc:
        raise CliError(str(exc)) from None
    finally:
        db.close()
    # Money exactly, in its shortest fixed form (``0.00001``, never ``1e-05``).
    print(dumps(result).decode("utf-8"))
    return 0


def outbox(args: argparse.Namespace) -> int:
    from gateway.db import Database
    from gateway.outbox import Outbox

    if not Path(args.db).exists():
        raise CliError(f"no database at {args.db}")
    db = Database(args.db)
    try:
        box = Outbox(db, time.time)
        counts = box.counts()
        events = box.listing(args.state, max(1, args.limit))
    finally:
        db.close()
    if args.json:
        print(json.dumps({"counts": counts, "events": events}))
        return 0
    print("outbox: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    for e in events:
        when = f" next {e['nextAttemptAt']}" if e["nextAttemptAt"] else ""
        done = f" done {e['doneAt']}" if e["doneAt"] else ""
        code = f" HTTP {e['lastCode']}" if e["lastCode"] is not None else ""
        error = f" - {e['lastError']}" if e["lastError"] else ""
        print(
            f"#{e['id']} {e['eventId']} {e['msgid']} {e['status']} {e['state']} "
            f"attempts={e['attempts']}{code}{when}{done} {e['url']}{error}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; errors are one line on stderr and a non-zero exit, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "outbox":
            return outbox(args)
        return account(args)
    except CliError as exc:
        print(f"python -m gateway: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the operator gets a sentence, not a traceback
        print(f"python -m gateway: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
