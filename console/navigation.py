"""The pages of the console, the permission each needs, and the navigation a member sees.

``app.py`` calls :func:`run`: it starts the runtime, lets ``console.access.gate`` decide who
is acting (or show the sign-in page and stop), then lists only the pages that person may open.
A page reached anyway (an old link, a forced run) refuses itself in ``page_setup``.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from kedacore.team import Actor, Permission


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    section: str
    needs: tuple[Permission, ...]  # any one of them opens the page


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/send.py", "Send", ":material/send:", "Messaging", (Permission.SEND,)),
    PageSpec(
        "pages/campaigns.py", "Campaigns", ":material/campaign:", "Messaging",
        (Permission.CAMPAIGNS, Permission.APPROVE),
    ),
    PageSpec(
        "pages/status.py", "Status", ":material/manage_search:", "Messaging", (Permission.LOOKUP,)
    ),
    PageSpec("pages/links.py", "Short links", ":material/link:", "Messaging", (Permission.LINKS,)),
    PageSpec("pages/log.py", "Message log", ":material/list_alt:", "Messaging", (Permission.LOG,)),
    PageSpec(
        "pages/contacts.py", "Contacts", ":material/contacts:", "Audience",
        (Permission.CONTACTS,),
    ),
    PageSpec(
        "pages/templates.py", "Templates", ":material/description:", "Audience",
        (Permission.TEMPLATES,),
    ),
    PageSpec("pages/optouts.py", "Opt-outs", ":material/block:", "Audience", (Permission.OPTOUTS,)),
    PageSpec("pages/spend.py", "Spend", ":material/payments:", "Finance", (Permission.SPEND,)),
    PageSpec("pages/limits.py", "Limits", ":material/speed:", "Finance", (Permission.CAPS,)),
    PageSpec(
        "pages/approvals.py", "Approvals", ":material/approval:", "Finance",
        (Permission.APPROVE, Permission.SEND, Permission.CAMPAIGNS),
    ),
    PageSpec(
        "pages/statement.py", "Statement", ":material/receipt_long:", "Finance",
        (Permission.STATEMENTS,),
    ),
    PageSpec("pages/audit.py", "Audit log", ":material/policy:", "Finance", (Permission.AUDIT,)),
    PageSpec(
        "pages/notifications.py", "Notifications", ":material/notifications:", "Finance",
        (Permission.NOTIFICATIONS,),
    ),
    PageSpec("pages/members.py", "Members", ":material/group:", "Admin", (Permission.MEMBERS,)),
    PageSpec(
        "pages/settings.py", "Settings", ":material/settings:", "Admin",
        (Permission.SETTINGS, Permission.TOPUP),
    ),
)  # fmt: skip

BY_PATH = {spec.path: spec for spec in PAGES}


def may_open(actor: Actor, spec: PageSpec) -> bool:
    return any(actor.can(p) for p in spec.needs)


def sections(actor: Actor) -> dict[str, list[PageSpec]]:
    """The pages ``actor`` may open, by section, in order."""
    found: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if may_open(actor, spec):
            found.setdefault(spec.section, []).append(spec)
    return found


# Where each member lands at the console's address: the first of these they may open.
LANDING = ("pages/send.py", "pages/approvals.py", "pages/status.py")


def landing(actor: Actor) -> PageSpec | None:
    """The page ``actor`` lands on: sending, else approving, else looking up, else the first."""
    allowed = [spec for spec in PAGES if may_open(actor, spec)]
    for path in LANDING:
        if BY_PATH[path] in allowed:
            return BY_PATH[path]
    return allowed[0] if allowed else None


def url_path(spec: PageSpec) -> str:
    """A page's stable address: ``/send``, ``/limits`` … (the file's name)."""
    return spec.path.rsplit("/", 1)[-1].removesuffix(".py")


def run() -> None:
    """The whole navigation: page config, who is acting, their pages; then the chosen page.

    Every page is registered, each at its own stable address; the ones the actor's roles do
    not open are hidden from the menu and, opened by their address, refuse themselves (and the
    refusal is audited) in ``page_setup``. The console's root address lands on the actor's
    first page (``landing``).
    """
    from console.messaging import campaign_schedule  # noqa: F401 - its page-setup hook
    from console.shell import team_gate

    st.set_page_config(page_title="KedaSMS Console", page_icon=":material/sms:", layout="wide")
    actor = team_gate()
    first = landing(actor)
    if first is None:  # a member whose roles open nothing (cannot happen with today's table)
        st.info("Your roles open no page of this console. Ask an admin of your team.")
        return
    pages: dict[str, list[st.Page]] = {}
    found: dict[str, st.Page] = {}
    for spec in PAGES:
        shown = may_open(actor, spec)
        page = st.Page(
            spec.path,
            title=spec.title,
            icon=spec.icon,
            url_path=url_path(spec),
            visibility="visible" if shown else "hidden",
        )
        found[spec.path] = page
        pages.setdefault(spec.section if shown else "", []).append(page)

    def home() -> None:
        st.switch_page(found[first.path])

    pages.setdefault("", []).append(
        st.Page(home, title="Home", url_path="home", default=True, visibility="hidden")
    )
    st.navigation(pages, expanded=True).run()  # every page an admin has, none behind "more"
