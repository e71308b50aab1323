"""Who is acting, and whether they may: sign-in, membership, the gate and every permission check.

- With an ``[auth]`` section in secrets, everyone signs in through ``st.login`` (OpenID
  Connect) and must be a member (``kedacore.ledger.team``); the first admins are named in
  ``[team] admins``. Without it, one **local operator** acts as admin — but only on loopback:
  a console bound beyond loopback without sign-in serves nothing but a page saying sign-in
  must be configured, unless ``KEDA_ALLOW_NO_SIGN_IN=true`` (docs/team.md).
- ``gate(rt)`` resolves the actor for this script run or shows the right page (sign in, not a
  member, signed out everywhere, sign-in required) and stops. ``app.py`` calls it before the
  navigation, which lists only the pages the actor may open.
- ``require(ledger, permission, what)`` is the check every action makes when it runs: it reads
  the member again, and a refusal is shown and audited.
- ``guarded(ledger, permission, what, build)`` wraps what a download button builds when it is
  clicked: that runs in a server thread, outside any page run, so it re-checks the member then.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import streamlit as st

from kedacore.ledger import Ledger
from kedacore.team import (
    LOCAL_OPERATOR,
    Actor,
    Permission,
    allowed,
    normalize_email,
    roles_needed,
)

T = TypeVar("T")
ALLOW_ENV = "KEDA_ALLOW_NO_SIGN_IN"
SESSION_HOURS = 12.0  # a sign-in lasts this long, then the provider is asked again
CLOCK_SKEW = 120  # seconds an ID token's iat may be ahead of this machine's clock
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class TeamConfig:
    """The team's part of the configuration (secrets and environment)."""

    sign_in: bool  # an [auth] section exists: everyone signs in
    providers: tuple[str, ...]  # named providers ([auth.google] …); () = the default one
    admins: tuple[str, ...]  # [team] admins: members and admins from their first sign-in
    contact: str  # [team] contact: whom a non-member should ask (else the admins)
    allow_no_sign_in: bool  # the explicit override for a console beyond loopback
    session_hours: float = SESSION_HOURS  # [team] session_hours: then sign in again


def _section(secrets: Any, name: str) -> Mapping[str, Any]:
    try:
        value = secrets.get(name)
    except Exception:  # st.secrets raises when there is no secrets file at all
        return {}
    return value if isinstance(value, Mapping) else {}


def team_config(secrets: Any, env: Mapping[str, str] | None = None) -> TeamConfig:
    """Read ``[auth]``, ``[team]`` and the override from secrets and the environment."""
    env = os.environ if env is None else env
    auth = _section(secrets, "auth")
    team = _section(secrets, "team")
    keda = _section(secrets, "keda")
    providers = tuple(
        name for name, value in auth.items() if isinstance(value, Mapping) and "client_id" in value
    )
    admins = []
    for email in team.get("admins", ()) or ():
        try:
            admins.append(normalize_email(str(email)))
        except ValueError:
            continue  # a typo in secrets must not name someone else; docs/team.md says so
    override = str(env.get(ALLOW_ENV) or keda.get(ALLOW_ENV.lower()) or "").strip().lower()
    try:
        hours = float(team.get("session_hours", SESSION_HOURS))
    except (TypeError, ValueError):
        hours = SESSION_HOURS
    if not 0 < hours <= 24 * 30:  # NaN, 0, negative or beyond the cookie's 30 days
        hours = SESSION_HOURS
    return TeamConfig(
        sign_in=bool(auth),
        providers=providers if "client_id" not in auth else (),
        admins=tuple(admins),
        contact=str(team.get("contact") or "").strip(),
        allow_no_sign_in=override in _TRUE,
        session_hours=hours,
    )


def _stop() -> NoReturn:
    st.stop()
    raise AssertionError("unreachable")


def _gate_page(title: str, body: str, icon: str) -> None:
    st.title(title)
    st.info(body, icon=icon)


def _sign_in_page(config: TeamConfig) -> NoReturn:
    _gate_page(
        "Sign in to KedaSMS Console",
        "This console is for the members of your team. Sign in with your work account.",
        ":material/login:",
    )
    if config.providers:
        for name in config.providers:
            st.button(
                f"Sign in with {name.capitalize()}",
                key=f"access_login_{name}",
                type="primary",
                on_click=st.login,
                args=(name,),
            )
    else:
        st.button("Sign in", key="access_login", type="primary", on_click=st.login)
    _stop()


def _whom_to_ask(ledger: Ledger, config: TeamConfig) -> str:
    if config.contact:
        return config.contact
    admins = [m.email for m in ledger.members() if "admin" in m.roles] or list(config.admins)
    return ", ".join(admins[:5]) or "the person who runs this console"


def _not_a_member(ledger: Ledger, config: TeamConfig, email: str) -> NoReturn:
    _gate_page(
        "You are not a member of this team",
        f"You are signed in as **{_escape(email)}**, but this console's team has no member "
        f"by that address. Ask an admin to add you: {_escape(_whom_to_ask(ledger, config))}.",
        ":material/person_off:",
    )
    st.button("Sign out", key="access_logout", on_click=st.logout)
    _stop()


def _escape(text: str) -> str:
    from console.views import plain

    return plain(text)


def _sign_in_required(address: str) -> NoReturn:
    _gate_page(
        "Sign-in must be configured",
        f"This console listens on `{address}`, where other machines can reach it, and nobody "
        "signs in to it: anyone could send SMS and spend the balance. Configure sign-in (an "
        "`[auth]` section in `.streamlit/secrets.toml`, docs/team.md), or bind it to loopback "
        '(`server.address = "127.0.0.1"`). An operator who protects it some other way can set '
        f"`{ALLOW_ENV}=true` (docs/team.md).",
        ":material/lock:",
    )
    _stop()


def _user() -> Mapping[str, Any]:
    try:
        return st.user.to_dict()
    except Exception:
        return {}


def resolve(ledger: Ledger, config: TeamConfig) -> Actor | str:
    """The actor of this run, or why there is none ("signed_out", "not_member:<email>",
    "unverified:<email>", "signed_out_everywhere") — without drawing anything."""
    if not config.sign_in:
        return Actor.local_operator()
    user = _user()
    if not user.get("is_logged_in"):
        return "signed_out"
    raw = str(user.get("email") or "")
    try:
        email = normalize_email(raw)
    except ValueError:
        return f"not_member:{raw or user.get('sub') or '?'}"
    if str(user.get("email_verified", True)).strip().lower() in {"false", "0", "no", ""}:
        return f"unverified:{email}"  # False, "false", 0 …: the provider does not vouch for it
    member = ledger.member(email)
    if email in config.admins and (member is None or "admin" not in member.roles):
        ledger.ensure_admins([email])
        member = ledger.member(email)
    if member is None:
        return f"not_member:{email}"
    issued = _int(user.get("iat"))
    if issued is None or issued > time.time() + CLOCK_SKEW:  # ID tokens say when (OIDC Core 2);
        return f"no_time:{email}"  # one from the future would outlive "sign out everywhere"
    if member.signed_out_at is not None and issued <= int(member.signed_out_at.timestamp()):
        return "signed_out_everywhere"
    if time.time() - issued > config.session_hours * 3600:
        return "expired"
    if member.last_sign_in_iat != issued:
        ledger.note_sign_in(email, issued)
    return Actor(email, member.roles, display=str(user.get("name") or ""))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def gate(ledger: Ledger, address: str | None, exposed: bool) -> Actor:
    """The actor of this run; otherwise draw the page that says why not, and stop."""
    config = team_config(st.secrets)
    if not config.sign_in and exposed and not config.allow_no_sign_in:
        _sign_in_required(address or "every interface")
    found = resolve(ledger, config)
    if isinstance(found, Actor):
        st.session_state["access_actor"] = found.name
        return found
    if found != "signed_out":
        _audit_refused_sign_in(ledger, found)
    if found == "signed_out":
        _sign_in_page(config)
    if found in ("signed_out_everywhere", "expired"):
        _gate_page(
            "You were signed out" if found != "expired" else "Your sign-in has expired",
            "Your sessions were ended (sign out everywhere). Sign in again to carry on."
            if found != "expired"
            else f"A sign-in lasts {config.session_hours:g} hours here. Sign in again to carry on.",
            ":material/logout:",
        )
        st.button("Sign in again", key="access_relogin", type="primary", on_click=st.logout)
        _stop()
    kind, _, email = found.partition(":")
    if kind == "no_time":
        _gate_page(
            "Your sign-in cannot be used",
            "Your sign-in provider did not say when you signed in (the ID token's `iat`), so "
            "this console cannot tell an old session from a new one. Ask your admin to check "
            "the provider's configuration.",
            ":material/error:",
        )
        st.button("Sign out", key="access_logout", on_click=st.logout)
        _stop()
    if kind == "unverified":
        _gate_page(
            "Your e-mail address is not verified",
            f"Your sign-in provider says **{_escape(email)}** is not verified. Verify it there, "
            "then sign in again.",
            ":material/mark_email_unread:",
        )
        st.button("Sign out", key="access_logout", on_click=st.logout)
        _stop()
    _not_a_member(ledger, config, email)


REFUSED_SIGN_IN = {
    "not_member": "signed in but not a member",
    "unverified": "the provider does not vouch for the e-mail address",
    "no_time": "the sign-in has no (or a future) issue time",
    "signed_out_everywhere": "a session ended by sign out everywhere",
    "expired": "a sign-in older than a session lasts",
}


def _audit_refused_sign_in(ledger: Ledger, found: str) -> None:
    """A sign-in the gate turned away, in the audit log once per sign-in (not per page view)."""
    user = _user()
    kind, _, email = found.partition(":")
    key = f"access_refused:{found}:{user.get('iat')}"
    if st.session_state.get(key):
        return
    st.session_state[key] = True
    who = email or str(user.get("email") or user.get("sub") or "someone signing in")
    ledger.audit(
        who[:254] or "someone signing in",
        "refused",
        target="sign-in",
        detail=REFUSED_SIGN_IN.get(kind, kind),
        outcome="refused",
    )


def who(ledger: Ledger) -> Actor | None:
    """The actor as things stand now (re-read from the ledger), or None when there is none."""
    found = resolve(ledger, team_config(st.secrets))
    return found if isinstance(found, Actor) else None


def refusal(permission: Permission, what: str) -> str:
    roles = " or ".join(roles_needed(permission))
    return f"**Not allowed.** To {what} you need the {roles} role. Ask an admin of your team."


def require(ledger: Ledger, permission: Permission, what: str, *, target: str = "") -> Actor:
    """Check, when an action runs, that its actor may do it; otherwise audit the refusal, say
    so and stop the page. ``what`` completes "To … you need": "change the caps"."""
    actor = who(ledger)
    if actor is not None and actor.can(permission):
        return actor
    name = actor.name if actor else str(_user().get("email") or "someone signed out")
    ledger.audit(
        name or LOCAL_OPERATOR,
        "refused",
        target=target or str(permission),
        detail=f"{what} (needs {permission.value})",
        outcome="refused",
    )
    st.error(refusal(permission, what), icon=":material/block:")
    _stop()


def allowed_here(actor: Actor, permission: Permission | None) -> bool:
    return permission is None or actor.can(permission)


class ExportRefused(PermissionError):
    """Raised by a guarded download when its member may no longer have the file. Streamlit
    then sends no file; the button says "Failed to generate file for download"."""


def guarded(
    ledger: Ledger,
    permission: Permission | Iterable[Permission],
    what: str,
    build: Callable[[], T],
    *,
    target: str = "",
) -> Callable[[], T]:
    """``build`` for a download button's ``data``, checked again when the button is clicked.

    A download built on click runs in a server thread, minutes or hours after the page was
    drawn, without ``page_setup`` or ``require``. Call this while the page runs: it captures
    who is signed in (e-mail and sign-in time, from ``st.user``); at the click it reads the
    member again and builds the file only if they are still a member, still hold
    ``permission`` (any one of several), and have not been signed out everywhere since (nor
    has their sign-in expired). Otherwise the refusal is audited and no file is sent.
    ``what`` completes "To … you need": "export the audit log". The local operator (no
    sign-in configured) always gets the file.
    """
    config = team_config(st.secrets)
    if not config.sign_in:
        return build
    needs = (permission,) if isinstance(permission, Permission) else tuple(permission)
    user = _user()
    raw = str(user.get("email") or "") if user.get("is_logged_in") else ""
    try:
        email: str | None = normalize_email(raw)
    except ValueError:
        email = None
    issued = _int(user.get("iat"))

    def data() -> T:
        if email is not None and _still_allowed(ledger, config, email, issued, needs):
            return build()
        ledger.audit(
            email or raw or "someone signed out",
            "refused",
            target=target or what,
            detail=f"{what} (needs {' or '.join(p.value for p in needs)})",
            outcome="refused",
        )
        raise ExportRefused(f"export refused: {what}")

    return data


def _still_allowed(
    ledger: Ledger,
    config: TeamConfig,
    email: str,
    issued: int | None,
    needs: tuple[Permission, ...],
) -> bool:
    """What ``resolve`` and ``require`` decide, for a member captured earlier."""
    if issued is None or issued > time.time() + CLOCK_SKEW:
        return False
    member = ledger.member(email)
    if email in config.admins and (member is None or "admin" not in member.roles):
        ledger.ensure_admins([email])  # as resolve does; one removed stays removed
        member = ledger.member(email)
    if member is None:
        return False
    if member.signed_out_at is not None and issued <= int(member.signed_out_at.timestamp()):
        return False
    if time.time() - issued > config.session_hours * 3600:
        return False
    return any(allowed(member.roles, p) for p in needs)
