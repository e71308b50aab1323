"""Roles and the one permission table: what each role may open and do.

Every page and every action names the :class:`Permission` it needs; :func:`allowed` is the
only check. ``docs/team.md`` shows this table (a test keeps the two equal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    """One thing a member may do (its value is what the audit log records)."""

    SEND = "send"  # the Send page: one message or a few
    CAMPAIGNS = "campaigns"  # create, start, pause, resume, cancel campaigns
    LINKS = "links"  # tracked short links and their clicks
    LOOKUP = "lookup"  # Status: what happened to a message
    SPEND = "spend"  # Spend: the analytics of money and delivery
    CAPS = "caps"  # Limits: the daily caps and the alert threshold
    THRESHOLDS = "thresholds"  # the approval threshold and the balance floor
    APPROVE = "approve"  # approve or reject what waits for approval
    STATEMENTS = "statements"  # the money statement
    AUDIT = "audit"  # the audit log
    NOTIFICATIONS = "notifications"  # where notifications go, and their list
    TOPUP = "topup"  # add money to the (sandbox) account
    MEMBERS = "members"  # invite, change roles, remove, sign out everywhere
    SETTINGS = "settings"  # the console's connection and settings
    CONTACTS = "contacts"  # contact lists: import, browse, edit, export
    TEMPLATES = "templates"  # saved templates and sender profiles
    LOG = "log"  # the message log: browse and export every message
    OPTOUTS = "optouts"  # the opt-out list: see it, add numbers (by hand or a file)
    OPTOUT_REMOVE = "optout_remove"  # take a number off the opt-out list, with a reason
    TRANSACTIONAL = "transactional"  # send to opted-out numbers (a transactional message)


ROLES = ("admin", "marketing", "finance", "support")

# THE permission table. Admin may do everything: without sign-in the one local operator is
# an admin, and a team's admin must be able to stand in for anyone.
PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "marketing": frozenset(
        {
            Permission.SEND,
            Permission.CAMPAIGNS,
            Permission.LINKS,
            Permission.CONTACTS,
            Permission.TEMPLATES,
            Permission.LOG,
            Permission.OPTOUTS,
        }
    ),
    "finance": frozenset(
        {
            Permission.CAPS,
            Permission.THRESHOLDS,
            Permission.APPROVE,
            Permission.SPEND,
            Permission.STATEMENTS,
            Permission.AUDIT,
            Permission.NOTIFICATIONS,
            Permission.TOPUP,
            Permission.LOG,
            Permission.OPTOUTS,
            Permission.OPTOUT_REMOVE,
        }
    ),
    "support": frozenset({Permission.LOOKUP, Permission.LOG, Permission.OPTOUTS}),
}

LOCAL_OPERATOR = "local operator"
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
MAX_EMAIL = 254


def normalize_email(text: str) -> str:
    """An e-mail address as members are keyed: trimmed, lower case; ValueError if not one."""
    raw = (text or "").strip()
    # ASCII only: str.lower() folds some other letters into ASCII ones (the Kelvin sign "K"
    # becomes "k"), and one member must never be reachable by another's look-alike address.
    if not raw.isascii():
        raise ValueError(f"{raw[:80]!r} is not an e-mail address this console takes (ASCII only)")
    value = raw.lower()
    if len(value) > MAX_EMAIL or not _EMAIL.match(value):
        raise ValueError(f"{text.strip()[:80]!r} is not an e-mail address (name@example.com)")
    return value


def parse_roles(roles: Iterable[str] | str) -> frozenset[str]:
    """Roles from a list or comma-separated text; ValueError naming an unknown one."""
    items = roles.split(",") if isinstance(roles, str) else list(roles)
    found = {str(r).strip().lower() for r in items if str(r).strip()}
    unknown = sorted(found - set(ROLES))
    if unknown:
        raise ValueError(f"not a role: {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    return frozenset(found)


def permissions_of(roles: Iterable[str]) -> frozenset[Permission]:
    """Everything the holder of ``roles`` may do."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def roles_needed(permission: Permission) -> list[str]:
    """The roles that grant ``permission``, for "ask someone with …" sentences."""
    return [role for role in ROLES if permission in PERMISSIONS[role]]


def allowed(roles: Iterable[str], permission: Permission) -> bool:
    """Whether ``roles`` grant ``permission`` — the only permission check."""
    return permission in permissions_of(roles)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in member, or the one local operator (no sign-in configured).

    ``name`` is what the audit log records: the member's e-mail, or "local operator".
    """

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    local: bool = False
    display: str = ""

    def can(self, permission: Permission) -> bool:
        return allowed(self.roles, permission)

    @property
    def label(self) -> str:
        """How a page names them: display name and e-mail, or "local operator"."""
        if self.display and self.display.lower() != self.name:
            return f"{self.display} ({self.name})"
        return self.name

    @classmethod
    def local_operator(cls) -> Actor:
        return cls(LOCAL_OPERATOR, frozenset({"admin"}), local=True)
