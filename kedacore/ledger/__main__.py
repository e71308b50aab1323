"""``python -m kedacore.ledger upgrade|current|history [--database-url URL]``: the ledger's
schema migrations (kedacore.ledger.migrate).

The ledger is the console's unless ``--database-url`` names another: ``KEDA_DATABASE_URL``,
else ``[keda]`` of ``./.streamlit/secrets.toml``, else ``ledger.db`` in the data folder — as
the console finds it (``kedacore.settings.load_settings``). Opening a ledger upgrades it anyway;
the command is for doing it on purpose, once, before rolling out replicas (docs/ledger.md).

Exit codes: 0 done; 1 the upgrade failed (nothing changed: it runs in one transaction) or the
ledger is newer than this code; 2 bad arguments, an unreadable secrets file or no ledger file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import make_url

from kedacore.ledger import migrate
from kedacore.ledger.engine import make_engine
from kedacore.settings import load_settings, password_warning

SECRETS_FILE = Path(".streamlit") / "secrets.toml"  # the console's, from where it runs


def ledger_url(given: str | None) -> str:
    """``--database-url``, else the console's ledger."""
    if given:
        return given
    secrets = None
    if SECRETS_FILE.is_file():
        secrets = tomllib.loads(SECRETS_FILE.read_text(encoding="utf-8"))
    # A token given, so that load_settings does not write one into the data folder.
    env = {**os.environ, "KEDA_WEBHOOK_TOKEN": "unused"}
    return load_settings(secrets, env).ledger_url


def _missing_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist (opening would make a new one)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kedacore.ledger", description="The ledger's schema migrations."
    )
    parser.add_argument(
        "command",
        choices=("upgrade", "current", "history"),
        help="upgrade: to the newest revision; current: the ledger's revision; "
        "history: every revision",
    )
    parser.add_argument("--database-url", help="the ledger (default: the console's)")
    args = parser.parse_args(argv)
    said = password_warning(args.database_url)
    if said:
        print(said, file=sys.stderr)
    head = migrate.head()
    if args.command == "history":
        for revision, down, doc in migrate.history():
            mark = " (head)" if revision == head else ""
            print(f"{down or '-'} -> {revision}{mark}: {doc.splitlines()[0] if doc else ''}")
        return 0
    try:
        url = ledger_url(args.database_url)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        print(f"{SECRETS_FILE} cannot be read: {exc}", file=sys.stderr)
        return 2
    missing = _missing_file(url)
    if missing is not None:
        print(f"no ledger at {missing}: pass --database-url", file=sys.stderr)
        return 2
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        if args.command == "current":
            found = migrate.current(engine)
            if found is None:
                print(f"{shown}: none (a new database, or a ledger made before migrations)")
            else:
                print(f"{shown}: {found}{' (head)' if found == head else ''}")
            return 0
        try:
            done = migrate.upgrade(engine)
        except migrate.LedgerTooNew as exc:
            print(f"{shown}: {exc}", file=sys.stderr)
            return 1
        if done.action == "current":
            print(f"{shown}: already at {head} (head)")
        elif done.action == "created":
            print(f"{shown}: a new ledger, created at {head} (head)")
        else:
            print(f"{shown}: upgraded from {done.before or 'none'} to {head} (head)")
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
