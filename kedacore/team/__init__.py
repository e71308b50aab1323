"""The team: roles and what each may do, who is acting, and the words the audit log uses.

No Streamlit here: the console resolves who is signed in (``console.access``) and asks
:func:`kedacore.team.roles.allowed` before every action; the ledger keeps members, the audit
log, approvals and the team's settings (``kedacore.ledger.team``).
"""

from kedacore.team.roles import (
    LOCAL_OPERATOR,
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

__all__ = [
    "LOCAL_OPERATOR",
    "PERMISSIONS",
    "ROLES",
    "Actor",
    "Permission",
    "allowed",
    "normalize_email",
    "parse_roles",
    "permissions_of",
    "roles_needed",
]
