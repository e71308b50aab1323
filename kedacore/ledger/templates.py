"""Saved message templates and sender profiles in the ledger.

A template is a named text with ``{variables}`` (as in campaigns), its owner and when a send or
a campaign last used it. A sender profile names a sender id (validated by the gateway's own
rule, ``kedacore.senders``) and a default country. Every change is audited in the transaction
that makes it (``template_*`` and ``sender_profile_*`` actions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from kedacore.ledger import schema as s
from kedacore.ledger.engine import reading, writing
from kedacore.senders import sender_problem

NAME_MAX = 120


class TemplateError(ValueError):
    """A template or sender profile that cannot be saved (the sentence says why)."""


@dataclass(frozen=True)
class Template:
    id: int
    name: str
    body: str
    owner: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class SenderProfile:
    id: int
    name: str
    sender: str | None  # None: the account's default sender
    default_country: str | None
    owner: str
    created_at: datetime
    updated_at: datetime


def _name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise TemplateError("give it a name")
    if len(clean) > NAME_MAX:
        raise TemplateError(f"a name has at most {NAME_MAX} characters")
    return clean


def profile_problem(sender: str | None, country: str | None) -> str | None:
    """Why a sender profile's sender id or country cannot be used, or None."""
    if sender is not None and (problem := sender_problem(sender)):
        return f"the sender id {sender!r} {problem}"
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        return f"the default country must be a two-letter ISO code, not {country!r}"
    return None


def _taken(conn: Connection, table: Table, name: str, own_id: int | None, what: str) -> None:
    """TemplateError when another row of ``table`` has this name, case ignored ("Welcome" and
    "welcome" would be two choices no one can tell apart); the unique index catches the rest."""
    wanted = name.casefold()  # Python's: SQLite's lower() folds ASCII only ("Été", "été")
    for other_id, other in conn.execute(select(table.c.id, table.c.name)):
        if other_id != own_id and other.casefold() == wanted:
            raise TemplateError(f"a {what} named {other!r} exists already")


class TemplatesMixin:
    """Templates and sender profiles of the Ledger (see the module docstring)."""

    engine: Any

    def now(self) -> datetime:
        raise NotImplementedError

    def audit(self, actor: str, action: str, **kw: Any) -> None:
        raise NotImplementedError

    # -- templates -------------------------------------------------------------------------

    def templates(self) -> list[Template]:
        """Every template, by name."""
        with reading(self.engine) as conn:
            rows = conn.execute(select(s.templates).order_by(s.templates.c.name))
            return [Template(**row._mapping) for row in rows]

    def template(self, template_id: int) -> Template | None:
        """The template with this id, or None."""
        with reading(self.engine) as conn:
            row = conn.execute(select(s.templates).where(s.templates.c.id == template_id)).first()
        return Template(**row._mapping) if row is not None else None

    def create_template(self, name: str, body: str, *, by: str) -> int:
        """Save a new template owned by ``by`` (audited); its id.

        Raises:
            TemplateError: no name, an empty text, or the name is taken.
        """
        name = _name(name)
        if not body.strip():
            raise TemplateError("write the template's text")
        now = self.now()
        try:
            with writing(self.engine) as conn:
                _taken(conn, s.templates, name, None, "template")
                new = conn.execute(
                    insert(s.templates).values(
                        name=name, body=body, owner=by, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
                self.audit(
                    by,
                    "template_create",
                    target=f"template {new}",
                    after={"name": name, "body": body},
                    conn=conn,
                )
        except IntegrityError:
            raise TemplateError(f"a template named {name!r} exists already") from None
        return int(new)

    def update_template(self, template_id: int, *, name: str, body: str, by: str) -> None:
        """Change a template's name and text (audited, before → after).

        Raises:
            TemplateError: no such template, no name or text, or the name is taken.
        """
        name = _name(name)
        if not body.strip():
            raise TemplateError("write the template's text")
        t = s.templates
        try:
            with writing(self.engine) as conn:
                old = conn.execute(select(t).where(t.c.id == template_id)).first()
                if old is None:
                    raise TemplateError(f"there is no template {template_id}")
                _taken(conn, t, name, template_id, "template")
                conn.execute(
                    update(t)
                    .where(t.c.id == template_id)
                    .values(name=name, body=body, updated_at=self.now())
                )
                self.audit(
                    by,
                    "template_edit",
                    target=f"template {template_id}",
                    before={"name": old.name, "body": old.body},
                    after={"name": name, "body": body},
                    conn=conn,
                )
        except IntegrityError:
            raise TemplateError(f"a template named {name!r} exists already") from None

    def delete_template(self, template_id: int, *, by: str) -> bool:
        """Delete a template (audited with what it said); False when it was gone already."""
        t = s.templates
        with writing(self.engine) as conn:
            old = conn.execute(select(t).where(t.c.id == template_id)).first()
            if old is None:
                return False
            conn.execute(delete(t).where(t.c.id == template_id))
            self.audit(
                by,
                "template_delete",
                target=f"template {template_id}",
                before={"name": old.name, "body": old.body, "owner": old.owner},
                conn=conn,
            )
        return True

    def mark_template_used(self, template_id: int, *, conn: Connection | None = None) -> None:
        """A send or a campaign used this template now (its *last used*); nothing if gone."""
        query = (
            update(s.templates)
            .where(s.templates.c.id == template_id)
            .values(last_used_at=self.now())
        )
        if conn is not None:
            conn.execute(query)
            return
        with writing(self.engine) as own:
            own.execute(query)

    # -- sender profiles -------------------------------------------------------------------

    def sender_profiles(self) -> list[SenderProfile]:
        """Every sender profile, by name."""
        t = s.sender_profiles
        with reading(self.engine) as conn:
            return [SenderProfile(**r._mapping) for r in conn.execute(select(t).order_by(t.c.name))]

    def sender_profile(self, profile_id: int) -> SenderProfile | None:
        """The sender profile with this id, or None."""
        t = s.sender_profiles
        with reading(self.engine) as conn:
            row = conn.execute(select(t).where(t.c.id == profile_id)).first()
        return SenderProfile(**row._mapping) if row is not None else None

    def save_sender_profile(
        self,
        name: str,
        *,
        sender: str | None,
        default_country: str | None,
        by: str,
        profile_id: int | None = None,
    ) -> int:
        """Create a sender profile (``profile_id`` None) or change one (audited); its id.

        Args:
            sender: the sender id (the gateway's rule); None or "" for the account's default.
            default_country: ISO 3166 alpha-2, or None.

        Raises:
            TemplateError: no name, a sender id or country that cannot be used, a name taken,
                or no such profile.
        """
        name = _name(name)
        sender = (sender or "").strip() or None
        country = (default_country or "").strip().upper() or None
        if problem := profile_problem(sender, country):
            raise TemplateError(problem)
        values = {"name": name, "sender": sender, "default_country": country}
        t = s.sender_profiles
        now = self.now()
        try:
            with writing(self.engine) as conn:
                _taken(conn, t, name, profile_id, "sender profile")
                if profile_id is None:
                    new = conn.execute(
                        insert(t).values(**values, owner=by, created_at=now, updated_at=now)
                    ).inserted_primary_key[0]
                    profile_id = int(new)
                    self.audit(
                        by,
                        "sender_profile_create",
                        target=f"sender profile {profile_id}",
                        after=values,
                        conn=conn,
                    )
                    return profile_id
                old = conn.execute(select(t).where(t.c.id == profile_id)).first()
                if old is None:
                    raise TemplateError(f"there is no sender profile {profile_id}")
                conn.execute(update(t).where(t.c.id == profile_id).values(**values, updated_at=now))
                self.audit(
                    by,
                    "sender_profile_edit",
                    target=f"sender profile {profile_id}",
                    before={k: old._mapping[k] for k in values},
                    after=values,
                    conn=conn,
                )
                return profile_id
        except IntegrityError:
            raise TemplateError(f"a sender profile named {name!r} exists already") from None

    def delete_sender_profile(self, profile_id: int, *, by: str) -> bool:
        """Delete a sender profile (audited); False when it was gone already."""
        t = s.sender_profiles
        with writing(self.engine) as conn:
            old = conn.execute(select(t).where(t.c.id == profile_id)).first()
            if old is None:
                return False
            conn.execute(delete(t).where(t.c.id == profile_id))
            self.audit(
                by,
                "sender_profile_delete",
                target=f"sender profile {profile_id}",
                before={"name": old.name, "sender": old.sender, "country": old.default_country},
                conn=conn,
            )
        return True
