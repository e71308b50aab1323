"""The permission table: one in code, the same in docs/team.md; roles and e-mails parsed
strictly; admin may do everything, every other role exactly its list."""

from __future__ import annotations

import re

import pytest

from kedacore.team import (
    PERMISSIONS,
    ROLES,
    Actor,
    Permission,
    allowed,
    normalize_email,
    parse_roles,
    permissions_of,
    roles_needed,
)
from tests.support import REPO_ROOT


def documented_table() -> dict[str, set[str]]:
    text = (REPO_ROOT / "docs" / "team.md").read_text()
    block = text.split("<!-- permissions:start -->")[1].split("<!-- permissions:end -->")[0]
    rows = [line for line in block.strip().splitlines() if line.startswith("| `")]
    header = [c.strip() for c in block.strip().splitlines()[0].strip("|").split("|")]
    roles = header[2:]
    table: dict[str, set[str]] = {role: set() for role in roles}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name = re.fullmatch(r"`(\w+)`", cells[0]).group(1)
        for role, mark in zip(roles, cells[2:], strict=True):
            if mark == "✓":
                table[role].add(name)
    return table


def test_docs_show_the_table_in_code() -> None:
    documented = documented_table()
    assert set(documented) == set(ROLES)
    for role in ROLES:
        assert documented[role] == {p.value for p in PERMISSIONS[role]}, role
    every = {p.value for p in Permission}
    assert set().union(*documented.values()) == every


def test_the_roles_as_the_issue_gives_them() -> None:
    assert permissions_of(["admin"]) == frozenset(Permission)
    audiences = {Permission.CONTACTS, Permission.TEMPLATES, Permission.LOG, Permission.OPTOUTS}
    assert (
        permissions_of(["marketing"])
        == {
            Permission.SEND,
            Permission.CAMPAIGNS,
            Permission.LINKS,
        }
        | audiences
    )
    assert permissions_of(["support"]) == {Permission.LOOKUP, Permission.LOG, Permission.OPTOUTS}
    finance = permissions_of(["finance"])
    for p in (Permission.CAPS, Permission.THRESHOLDS, Permission.APPROVE, Permission.SPEND,
              Permission.STATEMENTS, Permission.AUDIT):  # fmt: skip
        assert p in finance
    assert Permission.SEND not in finance and Permission.MEMBERS not in finance
    # Step 10: only finance and admin take a number off the opt-out list; only an admin sends
    # to opted-out numbers (transactional)
    assert roles_needed(Permission.OPTOUT_REMOVE) == ["admin", "finance"]
    assert roles_needed(Permission.TRANSACTIONAL) == ["admin"]
    assert permissions_of(["marketing", "support"]) == permissions_of(["marketing"]) | {
        Permission.LOOKUP
    }
    assert permissions_of([]) == frozenset()
    assert not allowed(["marketing"], Permission.CAPS)
    assert roles_needed(Permission.APPROVE) == ["admin", "finance"]


def test_roles_and_emails_are_parsed_strictly() -> None:
    assert parse_roles("Finance, marketing,") == {"finance", "marketing"}
    with pytest.raises(ValueError, match="not a role: owner"):
        parse_roles(["owner"])
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"
    for bad in (
        "",
        "alice",
        "a@b",
        "a b@example.com",
        "a@example.com,b@example.com",
        "x" * 250 + "@e.co",
    ):
        with pytest.raises(ValueError):
            normalize_email(bad)


def test_the_local_operator_is_an_admin() -> None:
    operator = Actor.local_operator()
    assert operator.local and operator.name == "local operator"
    assert all(operator.can(p) for p in Permission)
    member = Actor("m@example.com", frozenset({"marketing"}), display="Mia")
    assert member.label == "Mia (m@example.com)" and not member.can(Permission.AUDIT)
