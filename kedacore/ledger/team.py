"""The team in the ledger: members and their roles, the team's settings, the balance readings
and top-ups the money statement starts from. The audit log is ``kedacore.ledger.audit``
(its names are importable from here too).

Every change to members or settings writes its audit row in the same transaction, so the log
never misses a change that happened nor records one that did not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.audit import (  # noqa: F401 — the audit log's names, importable from here
    ACTIONS,
    OUTCOMES,
    AuditEntry,
    AuditFilter,
    AuditMixin,
    _json,
    protect_audit_log,
)
from kedacore.ledger.engine import reading, writing
from kedacore.money import from_micros, to_micros
from kedacore.team.roles import ROLES, normalize_email, parse_roles

_ANY = object()  # set_team_setting's expect: not given


class SettingChanged(ValueError):
    """A team setting changed since the value a change was decided on."""

    def __init__(self, key: str, current: Any) -> None:
        super().__init__(
            f"{key} was changed by someone else meanwhile (it is now {current!r}): nothing was "
            "changed; look again and decide"
        )
        self.key = key
        self.current = current


READING_EVERY = timedelta(minutes=1)  # a balance reading is kept this often if unchanged

# The team's settings (team_settings keys). Money as decimal strings in the account's currency,
# null when off; addresses as lists of strings.
APPROVAL_THRESHOLD = "approval_threshold"  # finance: over it, a send or campaign waits
BALANCE_FLOOR = "balance_floor"  # finance: below it, a notification
NOTIFY_EMAILS = "notify_emails"  # where notifications are mailed
NOTIFY_WEBHOOKS = "notify_webhooks"  # Slack-compatible JSON webhooks (secret URLs)


@dataclass(frozen=True)
class Member:
    email: str
    roles: frozenset[str]
    added_by: str
    added_at: datetime
    updated_at: datetime
    signed_out_at: datetime | None
    last_sign_in_at: datetime | None
    last_sign_in_iat: int | None

    @property
    def role_list(self) -> list[str]:
        return [r for r in ROLES if r in self.roles]


@dataclass(frozen=True)
class BalanceReading:
    read_at: datetime
    balance_micros: int
    frozen_micros: int
    currency: str

    @property
    def balance(self) -> Decimal:
        return from_micros(self.balance_micros)


def _member(row: Any) -> Member:
    return Member(
        email=row.email,
        roles=parse_roles(row.roles),
        added_by=row.added_by,
        added_at=row.added_at,
        updated_at=row.updated_at,
        signed_out_at=row.signed_out_at,
        last_sign_in_at=row.last_sign_in_at,
        last_sign_in_iat=row.last_sign_in_iat,
    )


def _current(email: str) -> Any:
    """The WHERE of a member who is one now (not removed)."""
    return (s.members.c.email == email) & s.members.c.removed_at.is_(None)


def _locked(conn: Connection, email: str) -> Any:
    """The member's row, whether removed or not, locked for this transaction (PostgreSQL)."""
    query = select(s.members).where(s.members.c.email == email)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def _named_in_secrets(email: str, protected: Iterable[str], what: str) -> None:
    if email in set(protected):
        raise ValueError(
            f"{email} is named an admin in secrets ([team] admins): they cannot {what} here. "
            "Take them out of .streamlit/secrets.toml first."
        )


def _roles_text(roles: Iterable[str]) -> str:
    found = parse_roles(roles)
    return ",".join(r for r in ROLES if r in found)


class TeamMixin(AuditMixin):
    """Members, team settings, balance readings and top-ups of the Ledger (and, from
    AuditMixin, the audit log every change here writes to)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    # -- members ------------------------------------------------------------------------------

    def member(self, email: str) -> Member | None:
        """The member by this address (any case), or None — also when they were removed."""
        try:
            key = normalize_email(email)
        except ValueError:
            return None
        with reading(self.engine) as conn:
            row = conn.execute(select(s.members).where(_current(key))).first()
        return _member(row) if row else None

    def members(self) -> list[Member]:
        t = s.members
        with reading(self.engine) as conn:
            rows = conn.execute(select(t).where(t.c.removed_at.is_(None)).order_by(t.c.email))
            return [_member(row) for row in rows]

    def add_member(self, email: str, roles: Iterable[str], *, by: str) -> Member:
        """Add a member (ValueError when the address or a role is wrong, or already a member).

        Someone removed before comes back as new: every session they had is over.
        """
        key = normalize_email(email)
        text = _roles_text(roles)
        if not text:
            raise ValueError("give the member at least one role")
        now = self.now()
        with writing(self.engine) as conn:
            row = _locked(conn, key)
            if row is not None and row.removed_at is None:
                raise ValueError(f"{key} is a member already: change their roles instead")
            fresh = {"roles": text, "added_by": by, "added_at": now, "updated_at": now}
            if row is None:
                conn.execute(insert(s.members), {"email": key, **fresh})
            else:  # removed before: nothing of their old sessions survives
                conn.execute(
                    update(s.members)
                    .where(s.members.c.email == key)
                    .values(removed_at=None, signed_out_at=now, last_sign_in_iat=None, **fresh)
                )
            self.audit(by, "member_add", target=key, after={"roles": text.split(",")}, conn=conn)
        member = self.member(key)
        assert member is not None
        return member

    def set_member_roles(
        self, email: str, roles: Iterable[str], *, by: str, protected: Iterable[str] = ()
    ) -> Member:
        """Change a member's roles. ``protected``: the admins named in secrets, who stay admins."""
        key = normalize_email(email)
        text = _roles_text(roles)
        if not text:
            raise ValueError("a member needs at least one role: remove them instead")
        with writing(self.engine) as conn:
            self._lock_members(conn)
            row = _locked(conn, key)
            if row is None or row.removed_at is not None:
                raise ValueError(f"{key} is not a member")
            if row.roles == text:
                return _member(row)
            stays_admin = "admin" in text.split(",")
            self._keep_an_admin(conn, key, stays_admin)
            if not stays_admin:
                _named_in_secrets(key, protected, "stop being an admin")
            conn.execute(
                update(s.members)
                .where(s.members.c.email == key)
                .values(roles=text, updated_at=self.now())
            )
            self.audit(
                by,
                "member_roles",
                target=key,
                before={"roles": row.roles.split(",") if row.roles else []},
                after={"roles": text.split(",")},
                conn=conn,
            )
        member = self.member(key)
        assert member is not None
        return member

    def remove_member(
        self, email: str, *, by: str, reason: str = "", protected: Iterable[str] = ()
    ) -> None:
        """Remove a member: they lose access at once and every session of theirs is over. The
        row stays (removed), so that adding them again never revives an old session."""
        key = normalize_email(email)
        with writing(self.engine) as conn:
            self._lock_members(conn)
            row = _locked(conn, key)
            if row is None or row.removed_at is not None:
                raise ValueError(f"{key} is not a member")
            self._keep_an_admin(conn, key, False)
            _named_in_secrets(key, protected, "be removed")
            now = self.now()
            conn.execute(
                update(s.members)
                .where(s.members.c.email == key)
                .values(removed_at=now, signed_out_at=now, last_sign_in_iat=None, updated_at=now)
            )
            self.audit(
                by,
                "member_remove",
                target=key,
                before={"roles": row.roles.split(",") if row.roles else []},
                detail=reason,
                conn=conn,
            )

    def _lock_members(self, conn: Connection) -> None:
        """Serialise changes that count the admins (PostgreSQL; SQLite's writers already are)."""
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE members IN SHARE ROW EXCLUSIVE MODE")

    def _keep_an_admin(self, conn: Connection, email: str, stays_admin: bool) -> None:
        """Refuse the change that would leave the team without an admin member."""
        if stays_admin:
            return
        t = s.members
        rows = conn.execute(select(t.c.email, t.c.roles).where(t.c.removed_at.is_(None))).all()
        admins = [r.email for r in rows if "admin" in r.roles.split(",")]
        if admins == [email]:
            raise ValueError(f"{email} is the team's only admin: make someone else an admin first")

    def ensure_admins(self, emails: Iterable[str]) -> list[str]:
        """Members for the admins named in secrets, at their first sign-in (added by "secrets");
        one who lost the admin role gets it back. One removed stays removed."""
        added = []
        now = self.now()
        for email in emails:
            key = normalize_email(email)
            with writing(self.engine) as conn:
                row = _locked(conn, key)
                if row is None:
                    conn.execute(
                        insert(s.members),
                        {
                            "email": key,
                            "roles": "admin",
                            "added_by": "secrets",
                            "added_at": now,
                            "updated_at": now,
                        },
                    )
                    self.audit(
                        "secrets", "member_add", target=key, after={"roles": ["admin"]}, conn=conn
                    )
                    added.append(key)
                elif row.removed_at is None and "admin" not in row.roles.split(","):
                    roles = _roles_text([*row.roles.split(","), "admin"])
                    conn.execute(
                        update(s.members)
                        .where(s.members.c.email == key)
                        .values(roles=roles, updated_at=now)
                    )
                    self.audit(
                        "secrets",
                        "member_roles",
                        target=key,
                        before={"roles": row.roles.split(",")},
                        after={"roles": roles.split(",")},
                        detail="named an admin in secrets",
                        conn=conn,
                    )
        return added

    def note_sign_in(self, email: str, issued_at: int | None) -> bool:
        """Record a member's sign-in once per ID token; True when this one is new (audited)."""
        key = normalize_email(email)
        with writing(self.engine) as conn:
            row = conn.execute(select(s.members).where(_current(key))).first()
            if row is None or (issued_at is not None and row.last_sign_in_iat == issued_at):
                return False
            conn.execute(
                update(s.members)
                .where(s.members.c.email == key)
                .values(last_sign_in_at=self.now(), last_sign_in_iat=issued_at)
            )
            self.audit(key, "sign_in", target=key, conn=conn)
        return True

    def sign_out_everywhere(self, email: str, *, by: str) -> None:
        """End every session of ``email`` signed in before now (they must sign in again)."""
        key = normalize_email(email)
        with writing(self.engine) as conn:
            done = conn.execute(
                update(s.members)
                .where(_current(key))
                .values(signed_out_at=self.now(), last_sign_in_iat=None)
            )
            if done.rowcount != 1:
                raise ValueError(f"{key} is not a member")
            self.audit(by, "sign_out_everywhere", target=key, conn=conn)

    # -- the team's settings ------------------------------------------------------------------

    def team_setting(self, key: str, default: Any = None) -> Any:
        with reading(self.engine) as conn:
            value = conn.execute(
                select(s.team_settings.c.value).where(s.team_settings.c.key == key)
            ).scalar_one_or_none()
        return json.loads(value) if value is not None else default

    def money_setting(self, key: str) -> int | None:
        """A money setting (APPROVAL_THRESHOLD, BALANCE_FLOOR) in micro-units, None when off."""
        value = self.team_setting(key)
        return to_micros(Decimal(value)) if value is not None else None

    def team_settings(self) -> dict[str, Any]:
        with reading(self.engine) as conn:
            rows = conn.execute(select(s.team_settings.c.key, s.team_settings.c.value))
            return {row.key: json.loads(row.value) for row in rows}

    def set_team_setting(
        self,
        key: str,
        value: Any,
        *,
        by: str,
        shown: Mapping[str, Any] | None = None,
        expect: Any = _ANY,
    ) -> bool:
        """Set one setting (JSON-able); audited with before → after. False when unchanged.

        ``shown``: what the audit log records instead of the values (``{"before": …,
        "after": …}``), for settings holding secrets (a webhook address). ``expect``: the value
        the change was decided on; when someone changed it meanwhile, :class:`SettingChanged`
        and nothing is written (compare-and-set).
        """
        text = _json(value) if value is not None else "null"  # null: the setting is off
        with writing(self.engine) as conn:
            query = select(s.team_settings.c.value).where(s.team_settings.c.key == key)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            old = conn.execute(query).scalar_one_or_none()
            if expect is not _ANY:
                current = json.loads(old) if old is not None else None
                if _json(current) != _json(expect):
                    raise SettingChanged(key, current)
            if old == text or (old is None and value is None):  # no row is "off" already
                return False
            row = {"value": text, "updated_at": self.now(), "updated_by": by}
            if old is None:
                try:  # two first settings at once (PostgreSQL: no row to lock yet)
                    with conn.begin_nested():
                        conn.execute(insert(s.team_settings), {"key": key, **row})
                except IntegrityError:
                    current = self.team_setting(key)
                    raise SettingChanged(key, current) from None
            else:
                conn.execute(
                    update(s.team_settings).where(s.team_settings.c.key == key).values(**row)
                )
            before = json.loads(old) if old is not None else None
            self.audit(
                by,
                "setting_change",
                target=key,
                before={key: shown["before"] if shown else before},
                after={key: shown["after"] if shown else value},
                conn=conn,
            )
        return True

    # -- balances and top-ups (the statement's inputs) ----------------------------------------

    def record_balance(self, balance_micros: int, frozen_micros: int, currency: str) -> bool:
        """Keep a balance reading when it changed, or a minute after the last; True if kept."""
        t = s.balance_readings
        now = self.now()
        with writing(self.engine) as conn:
            newest = select(t).order_by(t.c.read_at.desc(), t.c.id.desc()).limit(1)
            last = conn.execute(newest).first()
            if (
                last is not None
                and last.balance_micros == balance_micros
                and last.frozen_micros == frozen_micros
                and last.currency == currency
                and now - last.read_at < READING_EVERY
            ):
                return False
            conn.execute(
                insert(t),
                {
                    "read_at": now,
                    "balance_micros": balance_micros,
                    "frozen_micros": frozen_micros,
                    "currency": currency,
                },
            )
        return True

    def balance_readings(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[BalanceReading]:
        t = s.balance_readings
        query = select(t).order_by(t.c.read_at, t.c.id)
        if since is not None:
            query = query.where(t.c.read_at >= since)
        if until is not None:
            query = query.where(t.c.read_at < until)
        with reading(self.engine) as conn:
            return [
                BalanceReading(r.read_at, r.balance_micros, r.frozen_micros, r.currency)
                for r in conn.execute(query)
            ]

    def record_topup(self, amount_micros: int, currency: str, *, account: str, by: str) -> None:
        """A top-up made through the console, with its audit entry (one transaction)."""
        if amount_micros <= 0:
            raise ValueError("a top-up adds a positive amount")
        now = self.now()
        with writing(self.engine) as conn:
            conn.execute(
                insert(s.topups),
                {
                    "at": now,
                    "day": now.date(),
                    "amount_micros": amount_micros,
                    "currency": currency,
                    "account": account,
                    "by": by,
                },
            )
            self.audit(
                by,
                "topup",
                target=account,
                after={"amount": from_micros(amount_micros), "currency": currency},
                conn=conn,
            )
