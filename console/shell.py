"""The shell every console page is built on: setup, sidebar, errors. For page authors:

- ``console = page_setup("Title", "one-line caption")`` — call first on every page. It
  loads the settings, starts (once per process) the runtime, draws the sidebar (mode banner,
  balance, today's usage against the caps, connection state), the page title and, when
  today's usage alert is raised or a cap blocks sending, a banner. If the
  service cannot be used it shows what is wrong and what to do, and stops the page; pass
  ``need_connection=False`` to carry on anyway (the Settings page does).
- ``Console`` (what ``page_setup`` returns): ``settings``, ``runtime``, ``ledger``,
  ``client`` (``KedaClient``), ``mode`` / ``sandbox``, ``balance`` and ``limits`` (as the
  sidebar shows them), ``currency``, ``tz`` (the browser's zone), ``pricing()`` (cached),
  ``callback_url`` (pass it to sends), ``call_async(lambda client: ...)`` (runs a coroutine
  with a fresh ``AsyncKedaClient``).
- ``with keda_errors("Sending failed"):`` — a ``KedaError`` inside becomes ``st.error`` with
  what to do next, and the page stops there. Pages never show a traceback.
- ``country_select(label, pricing, currency, key=..., help=..., where=st)`` — the country
  picker with each country's price per segment, US first when it is priced.
- ``account_changed()`` — call after anything that moves money or caps (a send, a top-up,
  a cap change) so the sidebar shows fresh figures on the next run.

Formatting (money with currency, local times, tables) lives in ``console.views``, with
``plain(text)`` for anything a person typed that goes into Markdown (docs/console.md); business
logic in ``kedacore``. Every widget gets an explicit ``key=`` prefixed with the page's name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import streamlit as st

from console import access
from console import runtime as _runtime
from console.finance import notifications
from console.finance.alerts import limit_banners
from console.messaging.campaigns import active_line, status_label
from console.views import country_label, money, plain, zone
from console.wording import explain
from kedacore import (
    APIConnectionError,
    AsyncKedaClient,
    AuthenticationError,
    Balance,
    KedaClient,
    KedaError,
    Limits,
    Pricing,
)
from kedacore.campaign.progress import holder
from kedacore.ledger import Ledger
from kedacore.money import to_micros
from kedacore.settings import SANDBOX, Settings, load_settings
from kedacore.team import Actor, Permission

T = TypeVar("T")
ACCOUNT_TTL = 10  # seconds the sidebar's balance and usage are reused between runs


@dataclass(frozen=True)
class Console:
    """What a page works with; see the module docstring."""

    runtime: _runtime.Runtime
    balance: Balance | None
    limits: Limits | None
    tz: ZoneInfo
    port: int
    actor: Actor

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def ledger(self) -> Ledger:
        assert self.runtime.ledger is not None
        return self.runtime.ledger

    @property
    def client(self) -> KedaClient:
        assert self.runtime.client is not None
        return self.runtime.client

    @property
    def mode(self) -> str:
        return self.runtime.mode

    @property
    def sandbox(self) -> bool:
        return self.runtime.mode == SANDBOX

    @property
    def currency(self) -> str:
        return self.balance.currency if self.balance else "USD"

    @property
    def callback_url(self) -> str:
        return self.runtime.callback_url(self.port)

    def pricing(self) -> Pricing:
        """The price per segment of every country (cached for an hour)."""
        return _pricing(self.runtime.key, self.runtime)

    def call_async(self, work: Callable[[AsyncKedaClient], Awaitable[T]]) -> T:
        """Run ``work(client)`` on a new event loop with its own AsyncKedaClient."""

        async def main() -> T:
            async with self.runtime.async_client() as client:
                return await work(client)

        return asyncio.run(main())


@st.cache_data(ttl=3600, show_spinner=False)
def _pricing(key: str, _rt: _runtime.Runtime) -> Pricing:
    assert _rt.client is not None
    return _rt.client.pricing()


@st.cache_data(ttl=ACCOUNT_TTL, show_spinner=False)
def _account(key: str, _rt: _runtime.Runtime) -> tuple[Balance, Limits, float]:
    assert _rt.probe is not None
    started = time.perf_counter()
    balance = _rt.probe.account.balance()
    elapsed = time.perf_counter() - started
    if _rt.ledger is not None:  # the statement's opening and closing balances
        _rt.ledger.record_balance(
            to_micros(balance.balance), to_micros(balance.frozen), balance.currency
        )
    return balance, _rt.probe.limits.get(), elapsed


def account_changed() -> None:
    """Forget the cached balance and usage (after a send, a top-up, a cap change)."""
    _account.clear()


def advice(
    exc: KedaError, *, sandbox: bool, markdown: bool = True, currency: str | None = None
) -> str:
    """What went wrong and what to do next, in one paragraph written for a person.

    The wording is ``console.wording.explain`` (never the wire's codes or field names). As
    Markdown by default: it may quote what was typed (a number, a sender id), so it goes
    through ``plain``. ``markdown=False`` for a table cell. ``currency``: the account's, for
    amounts the service gives without one.
    """
    if sandbox and isinstance(exc, APIConnectionError):
        return (
            "The sandbox gateway inside this console does not answer. Restart the console "
            "(`streamlit run app.py`); your data stays in the data folder."
        )
    if sandbox and isinstance(exc, AuthenticationError):
        return (
            "The sandbox gateway does not know this console's sandbox account (was its "
            "database replaced?). Restart the console to create a new sandbox account."
        )
    told = explain(exc, currency=currency)
    return plain(told) if markdown else told


def fail(message: str) -> NoReturn:
    """Show an error and stop the page (no traceback)."""
    st.error(message, icon=":material/error:")
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises; this satisfies type checkers


@contextmanager
def keda_errors(what: str, *, sandbox: bool = False) -> Iterator[None]:
    """Turn a KedaError into ``st.error("{what}: …")`` and stop the page."""
    try:
        yield
    except KedaError as exc:
        fail(f"**{what}.** {advice(exc, sandbox=sandbox)}")


def _settings() -> Settings:
    try:
        return load_settings(st.secrets, os.environ)
    except OSError as exc:  # the data folder (webhook token) cannot be written
        fail(
            f"The console cannot write to its data folder ({exc.strerror}: {exc.filename}). "
            "Set KEDA_DATA_DIR to a writable folder and restart."
        )


def _start(settings: Settings) -> _runtime.Runtime:
    try:
        if _runtime.running(settings):
            return _runtime.runtime(settings)
        label = "Starting the sandbox gateway…" if settings.mode == SANDBOX else "Connecting…"
        with st.spinner(label):
            return _runtime.runtime(settings)
    except _runtime.RuntimeStartError as exc:
        fail(str(exc))


# Who sees the balance and today's usage in the sidebar: whoever spends, approves or pays.
MONEY_IN_SIDEBAR = (
    Permission.SEND, Permission.CAMPAIGNS, Permission.SPEND, Permission.CAPS, Permission.APPROVE,
    Permission.TOPUP,
)  # fmt: skip


def _sidebar(
    rt: _runtime.Runtime, *, money_shown: bool = True
) -> tuple[Balance | None, Limits | None, KedaError | None]:
    bar = st.sidebar
    if rt.mode == SANDBOX:
        bar.warning("**Sandbox** — no real SMS is sent", icon=":material/science:")
    else:
        host = rt.settings.base_url.split("//", 1)[-1].split("/", 1)[0]
        bar.success(f"**Live** — real SMS via {host}", icon=":material/cell_tower:")
    try:
        balance, limits, elapsed = _account(rt.key, rt)
    except KedaError as exc:
        bar.markdown(":red[:material/cloud_off:] **Not connected**")
        return None, None, exc
    cur = balance.currency
    if not money_shown:  # support: the connection only
        where = "sandbox gateway" if rt.mode == SANDBOX else "KedaSMS"
        bar.caption(f":green[:material/cloud_done:] Connected to {where} · {elapsed * 1000:.0f} ms")
        return balance, limits, None
    bar.metric(
        "Balance",
        money(balance.balance, cur),
        help=f"Available to spend. Frozen for messages not yet charged: "
        f"{money(balance.frozen, cur)}.",
    )
    usage = limits.usage
    if limits.daily_sms_cap is not None:  # a cap of 0 is a cap: nothing may be sent today
        share = min(usage.sms_sent / limits.daily_sms_cap, 1.0) if limits.daily_sms_cap else 1.0
        bar.progress(share, text=f"SMS today: {usage.sms_sent:,} of {limits.daily_sms_cap:,}")
    else:
        bar.caption(f"SMS today: **{usage.sms_sent:,}** · no daily cap")
    if limits.daily_spend_cap is not None:
        cap = limits.daily_spend_cap
        share = float(min(usage.spend / cap, 1)) if cap else 1.0
        bar.progress(
            share,
            text=f"Spend today: {money(usage.spend, cur)} of {money(limits.daily_spend_cap, cur)}",
        )
    else:
        bar.caption(f"Spend today: **{money(usage.spend, cur)}** · no daily cap")
    where = "sandbox gateway" if rt.mode == SANDBOX else "KedaSMS"
    host = rt.backup_url.split("//", 1)[-1].split("/", 1)[0]
    bar.caption(
        f":green[:material/cloud_done:] Connected to {where} at {host} · {elapsed * 1000:.0f} ms"
    )
    return balance, limits, None


def _campaigns_bar(rt: _runtime.Runtime) -> None:
    """The campaigns still to finish (sending, pausing, paused, interrupted) in the sidebar of
    every page, each a link that opens it on the Campaigns page (its status, its numbers)."""
    assert rt.ledger is not None
    for f in rt.ledger.active_campaigns(limit=3).campaigns:
        label = status_label(f.campaign.status, holder(rt.ledger.url, f.id)[0])
        st.sidebar.page_link(
            "pages/campaigns.py",
            label=active_line(f, label, short=True),
            help=active_line(f, label),
            icon=":material/campaign:",
            query_params={"campaign": str(f.id)},
        )


def country_select(
    label: str, pricing: Pricing, currency: str, *, key: str, help: str, where: Any = st
) -> str:
    """A country picker showing each country's price per segment (US preselected)."""
    countries = sorted(pricing.prices)
    return where.selectbox(
        label,
        countries,
        index=countries.index("US") if "US" in countries else 0,
        format_func=lambda c: country_label(c, pricing.prices.get(c), currency),
        key=key,
        help=help,
    )


def _cap_banners(limits: Limits | None, currency: str) -> None:
    """Every page says when today's usage alert is raised or a cap blocks sending."""
    for banner in limit_banners(limits, currency):
        if banner.kind == "error":
            st.error(banner.text, icon=":material/block:")
        else:
            st.warning(banner.text, icon=":material/notifications_active:")


def exposed(address: str | None) -> bool:
    """Whether a server bound to ``address`` can be reached from other machines.

    Empty (Streamlit's default) means every interface. Loopback is ``127.0.0.0/8``, ``::1``
    and ``localhost``; anything else — a LAN address, ``0.0.0.0``, ``::`` — is exposed.
    """
    value = (address or "").strip().strip("[]")
    if value.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(value).is_loopback
    except ValueError:  # empty, or a host name: it may resolve to anything
        return True


OPEN_WARNING = (
    "**Anyone who can reach this console can send SMS and spend the balance.** It listens on "
    '`{address}` without sign-in. Bind it to loopback (`server.address = "127.0.0.1"` in '
    "`.streamlit/config.toml`, the default) or serve it behind a proxy that signs people in "
    "(docs/security.md)."
)


def team_gate() -> Actor:
    """Start the runtime and decide who is acting (``console.access.gate``): the actor, or the
    sign-in (or "not a member", "sign-in must be configured") page and a stopped run."""
    rt = _start(_settings())
    assert rt.ledger is not None
    address = st.get_option("server.address")
    return access.gate(rt.ledger, address, exposed(address))


def _identity_bar(actor: Actor) -> None:
    """Who is acting, their roles, and signing out (every page's sidebar)."""
    bar = st.sidebar
    roles = ", ".join(sorted(actor.roles))
    if actor.local:
        bar.caption(
            ":material/person: **Local operator** (admin) · no sign-in configured",
            help="Without an [auth] section in secrets the console serves one operator on "
            "loopback, acting as admin (docs/team.md).",
        )
        return
    bar.caption(f":material/person: **{plain(actor.label)}** · {roles}")
    out, everywhere = bar.columns(2)
    out.button("Sign out", key="shell_sign_out", on_click=st.logout, width="stretch")
    if everywhere.button(
        "Everywhere",
        key="shell_sign_out_everywhere",
        width="stretch",
        help="Sign out of this console on every browser and device you are signed in on.",
    ):
        rt = _runtime.runtime(_settings())
        assert rt.ledger is not None
        rt.ledger.sign_out_everywhere(actor.name, by=actor.name)
        st.logout()


def page_setup(
    title: str,
    caption: str | None = None,
    *,
    needs: Permission | tuple[Permission, ...] | None = None,
    need_connection: bool = True,
) -> Console:
    """Start the page: who is acting (or the sign-in page), the permission the page ``needs``
    (any one of them), settings, runtime, sidebar, title; stops the page when it cannot work."""
    actor = team_gate()
    rt = _start(_settings())
    notifications.configure(rt)  # the notifier's [smtp] and console address (from secrets)
    wanted = (needs,) if isinstance(needs, Permission) else tuple(needs or ())
    if wanted and not any(actor.can(p) for p in wanted):
        assert rt.ledger is not None
        access.require(rt.ledger, wanted[0], f"open the {title} page", target=title)
    balance, limits, error = _sidebar(rt, money_shown=any(actor.can(p) for p in MONEY_IN_SIDEBAR))
    _identity_bar(actor)
    if actor.can(Permission.CAMPAIGNS) or actor.can(Permission.APPROVE):  # they open Campaigns
        _campaigns_bar(rt)
    address = st.get_option("server.address")
    if exposed(address) and actor.local:  # allowed only by the explicit override
        st.error(
            OPEN_WARNING.format(address=address or "every interface"), icon=":material/lock_open:"
        )
    st.title(title)
    if caption:
        st.caption(caption)
    _cap_banners(limits, balance.currency if balance else "USD")
    if error is not None:
        message = f"**Cannot reach the service.** {advice(error, sandbox=rt.mode == SANDBOX)}"
        if need_connection:
            fail(message)
        st.error(message, icon=":material/error:")
    port = int(st.get_option("server.port") or 8501)
    console = Console(rt, balance, limits, zone(st.context.timezone), port, actor)
    if rt.ledger is not None:
        for hook in ON_SETUP:  # e.g. scheduled campaigns started once per server start
            hook(console)
    return console


# Called with each page's Console (registered by the modules that need one, so that this
# module imports none of them: console.messaging.campaign_schedule.wake_once).
ON_SETUP: list[Callable[[Console], None]] = []
