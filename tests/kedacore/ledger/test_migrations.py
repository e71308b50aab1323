"""Schema migrations (kedacore.ledger.migrate): an existing ledger upgrades in place.

Old ledgers are built from the frozen DDL of past releases (``data/<release>_<store>.sql``:
what ``create_all`` made at Step 8 — the baseline —, at Step 7 and in the first ledger),
filled with rows of every kind, then opened by today's code. On SQLite and PostgreSQL (the
``store`` fixture: a schema of its own per test).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, create_engine, event, insert, make_url, text
from sqlalchemy.exc import DBAPIError

from kedacore.api.types import SendResult, SentMessage
from kedacore.ledger import Ledger, PlannedBatch, migrate, rollup
from kedacore.ledger.__main__ import main
from tests.support import REPO_ROOT

DATA = Path(__file__).with_name("data")
T0 = datetime(2026, 11, 2, 9, 30)  # naive UTC, as the ledger stores it
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
RELEASES = ("step8", "step7", "first")
# The who-columns a ledger made before Step 8 keeps at 120 characters on SQLite (which does
# not enforce a VARCHAR's length; the revision widens them on PostgreSQL only).
NARROW = {("campaigns", "created_by"), ("sends", "created_by"), ("cap_changes", "changed_by")}


def build(url: str, release: str) -> Engine:
    """A ledger as ``release`` made it (its frozen DDL), with no rows yet."""
    engine = create_engine(url)
    sql = (DATA / f"{release}_{engine.dialect.name}.sql").read_text()
    body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    with engine.begin() as conn:
        for statement in body.split(";\n\n"):
            if statement.strip():
                conn.exec_driver_sql(statement.strip().removesuffix(";"))
    return engine


ROWS: dict[str, list[dict[str, Any]]] = {
    "campaigns": [
        {
            "id": 1,
            "name": "Spring sale",
            "template": "Hi {name}",
            "sender": "Shop",
            "created_at": T0,
            "updated_at": T0,
            "created_by": "ops@example.com",
            "status": "sending",
            "recipients": 3,
            "batches": 2,
            "estimated_micros": 150_000,
            "debited_micros": 100_000,
            "currency": "USD",
            "error": None,
            "demo": False,
        }
    ],
    "campaign_batches": [
        {
            "id": k,
            "campaign_id": 1,
            "seq": k,
            "country": "US",
            "sender": "Shop",
            "content": "Hi there",
            "recipients": '["+12065550101", "+12065550102"]' if k == 1 else '["+12065550103"]',
            "recipient_count": 2 if k == 1 else 1,
            "client_ref": f"c1-abc-{k}",
            "state": "sent" if k == 1 else "planned",
            "task_id": "20261102-0001" if k == 1 else None,
            "estimated_micros": 100_000 if k == 1 else 50_000,
            "debited_micros": 100_000 if k == 1 else None,
            "attempts": 1 if k == 1 else 0,
            "error": None,
            "created_at": T0,
            "updated_at": T0,
        }
        for k in (1, 2)
    ],
    "tasks": [
        {
            "task_id": "20261102-0001",
            "campaign_id": 1,
            "country": "US",
            "sender": "Shop",
            "content": "Hi there",
            "recipients": 2,
            "segments": 2,
            "debited_micros": 100_000,
            "currency": "USD",
            "client_ref": "c1-abc-1",
            "created_at": T0,
            "day": date(2026, 11, 2),
            "demo": False,
        }
    ],
    "messages": [
        {
            "msgid": f"m{k}",
            "task_id": "20261102-0001",
            "campaign_id": 1,
            "recipient": f"+1206555010{k}",
            "country": "US",
            "sender": "Shop",
            "status": "DELIVERED" if k == 1 else "QUEUED",
            "segments": 1,
            "cost_micros": 50_000 if k == 1 else None,
            "estimated_micros": 50_000,
            "currency": "USD",
            "created_at": T0,
            "day": date(2026, 11, 2),
            "sent_at": T0 if k == 1 else None,
            "delivered_at": datetime(2026, 11, 2, 9, 30, 2) if k == 1 else None,
            "final_at": datetime(2026, 11, 2, 9, 30, 2) if k == 1 else None,
            "delivery_ms": 2_000 if k == 1 else None,
            "updated_at": T0,
            "clicks": 0,
            "last_click_at": None,
            "source": "callback" if k == 1 else "send",
            "demo": False,
        }
        for k in (1, 2)
    ],
    "events": [
        {
            "id": 1,
            "event_id": "ev-1",
            "msgid": "m1",
            "status": "DELIVERED",
            "payload": '{"msgid": "m1", "status": "DELIVERED"}',
            "occurred_at": datetime(2026, 11, 2, 9, 30, 2),
            "received_at": datetime(2026, 11, 2, 9, 30, 3),
            "outcome": "applied",
        }
    ],
    "status_lookups": [
        {
            "id": 1,
            "msgid": "m2",
            "status": "QUEUED",
            "looked_up_at": T0,
            "result": '{"status": "QUEUED"}',
        }
    ],
    "cap_changes": [
        {
            "id": 1,
            "change_id": "chg1",
            "changed_at": T0,
            "changed_by": "finance@example.com",
            "field": "daily_sms_cap",
            "before": None,
            "after": "1000",
        }
    ],
    "sends": [
        {
            "id": 1,
            "client_ref": "console-1",
            "state": "sent",
            "created_at": T0,
            "updated_at": T0,
            "created_by": "support@example.com",
            "session": "a1b2c3",
            "country": "US",
            "sender": None,
            "content": "Hello",
            "recipients": '["+12065550199"]',
            "recipient_count": 1,
            "track_click": False,
            "estimated_micros": 50_000,
            "currency": "USD",
            "task_id": None,
            "debited_micros": None,
            "error_code": None,
            "error": None,
            "attempts": 1,
        }
    ],
    "members": [
        {
            "email": "admin@example.com",
            "roles": "admin",
            "added_by": "secrets",
            "added_at": T0,
            "updated_at": T0,
            "signed_out_at": None,
            "last_sign_in_at": T0,
            "last_sign_in_iat": 1_793_000_000,
        }
    ],
    "audit_log": [
        {
            "id": k,
            "at": T0,
            "actor": "admin@example.com",
            "action": action,
            "outcome": "done",
            "target": target,
            "before": None,
            "after": after,
            "detail": "",
        }
        for k, action, target, after in (
            (1, "member_add", "admin@example.com", '{"roles": ["admin"]}'),
            (2, "caps_change", "caps", '{"daily_sms_cap": 1000}'),
        )
    ],
    "team_settings": [
        {
            "key": "approval_threshold",
            "value": '"25"',
            "updated_at": T0,
            "updated_by": "finance@example.com",
        }
    ],
    "approvals": [
        {
            "id": 1,
            "kind": "send",
            "ref": "console-9",
            "summary": "A big send",
            "requested_by": "marketing@example.com",
            "requested_at": T0,
            "estimate_micros": 30_000_000,
            "threshold_micros": 25_000_000,
            "currency": "USD",
            "state": "waiting",
            "decided_by": None,
            "decided_at": None,
            "reason": None,
        }
    ],
    "balance_readings": [
        {
            "id": 1,
            "read_at": T0,
            "balance_micros": 99_900_000,
            "frozen_micros": 0,
            "currency": "USD",
        }
    ],
    "topups": [
        {
            "id": 1,
            "at": T0,
            "day": date(2026, 11, 2),
            "amount_micros": 5_000_000,
            "currency": "USD",
            "account": "acct",
            "by": "finance@example.com",
        }
    ],
    "notifications": [
        {
            "id": 1,
            "cause": "usage_alert",
            "day": date(2026, 11, 2),
            "kind": "usage_alert",
            "created_at": T0,
            "subject": "Usage alert",
            "body": "80 % of the daily cap",
            "link": "",
            "facts": "{}",
            "deliveries": "[]",
            "state": "delivered",
            "attempts": 1,
            "next_attempt_at": None,
            "leased_until": None,
            "last_attempt_at": T0,
            "note": "",
        }
    ],
}


Snapshot = tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[str]]]


def seed(engine: Engine) -> Snapshot:
    """Rows of every kind into the tables this ledger has (the columns it has); returns what
    each table holds and its columns."""
    old = MetaData()
    old.reflect(engine)
    with engine.begin() as conn:
        for name, rows in ROWS.items():
            if name in old.tables:
                table = old.tables[name]
                conn.execute(
                    insert(table), [{k: v for k, v in r.items() if k in table.c} for r in rows]
                )
        if engine.dialect.name == "postgresql":  # ids given above: move the sequences on
            for name, table in old.tables.items():
                if "id" in table.c and table.c.id.autoincrement is not False and name in ROWS:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
        if "message_rollup" in old.tables:  # kept exact by every write of that release
            rollup.rebuild_in(conn, T0)
    columns = {n: [c.name for c in t.c] for n, t in old.tables.items() if n != "message_rollup"}
    return contents(engine, columns), columns


def contents(engine: Engine, columns: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for name, cols in columns.items():  # the rollup: compared through rollup.differences
            listed = ", ".join(f'"{c}"' for c in cols)
            rows = conn.execute(text(f"SELECT {listed} FROM {name} ORDER BY 1")).all()
            out[name] = [tuple(r) for r in rows]
    return out


def sent(task_id: str, *msgids: str) -> SendResult:
    messages = tuple(SentMessage(m, f"+1206555{i:04d}") for i, m in enumerate(msgids))
    return SendResult(task_id, "ok", Decimal("0.05") * len(msgids), "USD", len(msgids), messages)


def check_upgraded(url: str, snapshot: Snapshot, release: str) -> None:
    """Every row kept, the new columns there with their defaults, at head, append-only, and
    the ledger at work."""
    with Ledger(url, clock=lambda: NOW) as led:
        assert led.migration.action == "upgraded" and led.migration.after == migrate.head()
        assert led.migration.before is None  # made before migrations
        assert migrate.current(led.engine) == migrate.head()
        before, columns = snapshot
        assert contents(led.engine, columns) == before  # every row, every value
        # New columns, NULL for what was there.
        assert led.campaign_options(1) is None
        assert led.campaign(1).created_by == "ops@example.com"
        batches = led.campaign_batches(1)
        assert [b.state for b in batches] == ["sent", "planned"]
        assert led.message("m1").status == "DELIVERED" and led.message("m1").cost_micros == 50_000
        assert [e.status for e in led.message_events("m1")] == ["DELIVERED"]
        with led.engine.connect() as conn:
            assert rollup.differences(conn) == {}  # kept, or (first ledger) counted once
            removed = conn.execute(text("SELECT removed_at FROM members")).scalars().all()
            attempted = conn.execute(text("SELECT attempted_at FROM campaign_batches")).all()
        assert all(r is None for r in removed) and len(attempted) == 2
        assert all(a == (None,) for a in attempted)
        if release == "step8":
            assert led.member("admin@example.com").roles == {"admin"}
            assert [e.action for e in led.audit_entries()] == ["caps_change", "member_add"]
        # Append-only still, for the old entries and the new.
        led.audit("admin@example.com", "topup", target="acct", after={"amount": Decimal("1")})
        for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), led.engine.begin() as conn:
                conn.execute(text(sql))
        # At work: a send recorded, a campaign planned, an e-mail-long author kept.
        assert (
            led.record_send(
                sent("20261207-0001", "n1", "n2"), country="US", sender=None, content="Hey"
            )
            == 2
        )
        author = "a" * 240 + "@example.com"  # 252 characters: over the old 120
        new = led.create_campaign("Winter", created_by=author, options={"track_click": True})
        planned = led.plan_campaign(new, [PlannedBatch("US", "Hi", ("+12065550111",), 50_000)])
        assert planned[0].id > 2 and led.campaign(new).status == "planned"
        assert led.campaign(new).created_by == author
        assert led.campaign_options(new) == {"track_click": True}
        with led.engine.connect() as conn:
            assert rollup.differences(conn) == {}
        differences = migrate.differences(led.engine)
    if release == "step8" or led.engine.dialect.name == "postgresql":
        assert differences == []
    else:
        # (the first ledger had no sends: made at the baseline, 254 wide)
        narrow = NARROW if release == "step7" else NARROW - {("sends", "created_by")}
        assert {_modified_column(d) for d in differences} == narrow, differences


def _columns(engine: Engine, name: str) -> list[str]:
    meta = MetaData()
    meta.reflect(engine, only=[name])
    return [c.name for c in meta.tables[name].c]


def _modified_column(diff: Any) -> tuple[str, str]:
    [[kind, _schema, table, column, *_]] = diff  # [("modify_type", None, table, column, ...)]
    assert kind == "modify_type", diff
    return table, column


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_an_old_ledger_with_data_upgrades_in_place(
    ledger_url: Callable[..., str], release: str
) -> None:
    url = ledger_url()
    engine = build(url, release)
    snapshot = seed(engine)
    engine.dispose()
    before = snapshot[0]
    assert set(before) >= {"campaigns", "campaign_batches", "tasks", "messages", "events"}
    assert all(before[name] for name in before), before  # data in every table
    check_upgraded(url, snapshot, release)
    with Ledger(url) as again:  # opened again: nothing to do
        assert again.migration.action == "current"


def test_a_new_ledger_is_created_at_head_with_the_schema_the_revisions_make(
    ledger_url: Callable[..., str],
) -> None:
    made = ledger_url("made")
    with Ledger(made) as led:
        assert led.migration.action == "created" and migrate.current(led.engine) == migrate.head()
        assert migrate.differences(led.engine) == []
    # The revisions from nothing give the same schema as create_all.
    engine = create_engine(ledger_url("migrated"))
    with engine.begin() as conn:
        command.upgrade(migrate.config(conn), "head")
    assert migrate.differences(engine) == []
    assert migrate.current(engine) == migrate.head()
    engine.dispose()


def test_the_comparison_sees_a_difference(ledger_url: Callable[..., str]) -> None:
    """``differences`` is not empty by construction: a missing column and index are found."""
    with Ledger(ledger_url()) as led:
        with led.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_messages_latency")
            conn.exec_driver_sql("ALTER TABLE campaigns DROP COLUMN options")
        kinds = sorted(
            str(d[0] if isinstance(d, tuple) else d[0][0]) for d in migrate.differences(led.engine)
        )
    assert kinds == ["add_column", "add_index"]


def test_opening_a_ledger_at_head_reads_its_version_only(ledger_url: Callable[..., str]) -> None:
    url = ledger_url()
    engine = create_engine(url)
    assert migrate.upgrade(engine).action == "created"
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert migrate.upgrade(engine).action == "current"
    engine.dispose()
    assert statements == ["SELECT version_num FROM alembic_version"]


# A child process: imports, says it is ready, opens the ledger when told to, says what it did.
CHILD = """
import sys
from kedacore.ledger import Ledger
print("ready", flush=True)
sys.stdin.readline()
with Ledger(sys.argv[1]) as led:
    print(led.migration.action, flush=True)
"""


@pytest.mark.parametrize("release", ["step8", None])
def test_three_processes_opening_at_once_upgrade_once(
    ledger_url: Callable[..., str], release: str | None
) -> None:
    """Two console replicas and a worker start together: one makes or upgrades the ledger, the
    others wait for it and find it at head."""
    url = ledger_url()
    snapshot = None
    if release:
        engine = build(url, release)
        snapshot = seed(engine)
        engine.dispose()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:  # all imported and waiting
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:  # then all at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outcomes.append(out.strip())
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert sorted(outcomes) == sorted([("upgraded" if release else "created"), *["current"] * 2])
    with Ledger(url) as led:
        assert migrate.current(led.engine) == migrate.head()
        with led.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
        if snapshot is not None:
            assert contents(led.engine, snapshot[1]) == snapshot[0]


def test_a_ledger_newer_than_the_code_is_refused_untouched(ledger_url: Callable[..., str]) -> None:
    url = ledger_url()
    Ledger(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(migrate.LedgerTooNew, match="9999"):
        Ledger(url)
    # The campaign commands say it in a sentence (exit 1), not a traceback.
    from kedacore.campaign.cli import main as campaign_cli

    assert campaign_cli(["status", "--ledger", url, "--campaign", "1"]) == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "9999"
    engine.dispose()


def test_the_command_shows_and_upgrades(
    ledger_url: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = ledger_url()
    build(url, "step8").dispose()
    head = migrate.head()
    assert main(["current", "--database-url", url]) == 0
    assert "none (a new database, or a ledger made before migrations)" in capsys.readouterr().out
    done = subprocess.run(
        [sys.executable, "-m", "kedacore.ledger", "upgrade", "--database-url", url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"upgraded from none to {head} (head)" in done.stdout
    assert main(["current", "--database-url", url]) == 0
    assert f": {head} (head)" in capsys.readouterr().out
    assert main(["upgrade", "--database-url", url]) == 0
    assert f"already at {head} (head)" in capsys.readouterr().out
    assert main(["history"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("- -> 0001: Baseline") and re.match(
        rf"\d{{4}} -> {head} \(head\)", listed[-1]
    )
    missing = url.startswith("sqlite") and url.replace(".db", "-none.db")
    if missing:  # a SQLite file that is not there is not made by the command
        assert main(["upgrade", "--database-url", missing]) == 2
        assert not Path(make_url(missing).database or "").exists()


def test_revisions_are_frozen_and_in_one_line() -> None:
    """A revision never reads today's schema (which keeps changing); one head, no branches."""
    versions = sorted((migrate.MIGRATIONS / "versions").glob("*.py"))
    assert [p.name[:4] for p in versions] == [r for r, _, _ in migrate.history()]
    for path in versions:
        source = path.read_text()
        assert "kedacore" not in source.split('"""', 2)[2], path.name
    assert len(migrate.script().get_heads()) == 1
