"""Today's cap state as banners: the usage alert and caps that block sending. No Streamlit here.

The shell (``console/shell.py``) draws these on every page; the Limits page shows the same
state in detail. Both read one ``Limits`` answer (``GET /external/accounts/limits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from console.views import money
from kedacore.api.types import Limits

CAP_NAMES = {"dailySmsCap": "daily SMS cap", "dailySpendCap": "daily spend cap"}


@dataclass(frozen=True, slots=True)
class Banner:
    """One banner: ``kind`` is "error" (sending blocked) or "warning" (alert raised)."""

    kind: str
    text: str


def percent(share: Decimal) -> str:
    """An exact share as a percentage: 0.8 → ``80 %``, 0.123456 → ``12.3456 %``."""
    value = (share * 100).normalize()
    return f"{value:f} %"


def blocked_caps(limits: Limits) -> list[str]:
    """The caps that refuse every further send today ("dailySmsCap", "dailySpendCap").

    With ``blockOnLimit`` a send that would take usage above a cap is refused whole; once
    usage is at the cap, any send is. Without it nothing blocks.
    """
    if not limits.block_on_limit:
        return []
    usage = limits.usage
    caps = []
    if limits.daily_sms_cap is not None and usage.sms_sent >= limits.daily_sms_cap:
        caps.append("dailySmsCap")
    if limits.daily_spend_cap is not None and usage.spend >= limits.daily_spend_cap:
        caps.append("dailySpendCap")
    return caps


def crossed_caps(limits: Limits) -> list[str]:
    """The caps whose alert threshold today's usage has reached (now, with today's caps)."""
    usage, share = limits.usage, limits.alert_threshold
    caps = []
    if (
        limits.daily_sms_cap is not None
        and usage.sms_sent
        and (usage.sms_sent >= share * limits.daily_sms_cap)
    ):
        caps.append("dailySmsCap")
    if (
        limits.daily_spend_cap is not None
        and usage.spend
        and (usage.spend >= share * limits.daily_spend_cap)
    ):
        caps.append("dailySpendCap")
    return caps


def _sms(limits: Limits) -> str:
    return f"{limits.usage.sms_sent:,} of {limits.daily_sms_cap:,} messages"


def _spend(limits: Limits, currency: str) -> str:
    return f"{money(limits.usage.spend, currency)} of {money(limits.daily_spend_cap, currency)}"


def limit_banners(limits: Limits | None, currency: str) -> list[Banner]:
    """What every page must say about today's caps: blocked sending first, then the alert."""
    if limits is None:
        return []
    banners = []
    blocked = blocked_caps(limits)
    if blocked:
        what = []
        if "dailySmsCap" in blocked:
            what.append(f"the daily SMS cap is reached ({_sms(limits)})")
        if "dailySpendCap" in blocked:
            what.append(f"the daily spend cap is reached ({_spend(limits, currency)})")
        banners.append(
            Banner(
                "error",
                f"**Sending is blocked:** {' and '.join(what)}, and caps block sends. "
                "Raise the cap or turn blocking off in **Finance → Limits**, or wait for the "
                "next UTC day.",
            )
        )
    if limits.alert.triggered:
        crossed = [c for c in crossed_caps(limits) if c not in blocked]
        detail = []
        if "dailySmsCap" in crossed:
            detail.append(f"SMS {_sms(limits)}")
        if "dailySpendCap" in crossed:
            detail.append(f"spend {_spend(limits, currency)}")
        if detail:
            reached = f": {'; '.join(detail)}"
        elif blocked:
            reached = ""  # the blocking banner already gives the figures
        else:
            reached = " earlier today (the caps have changed since)"
        if not blocked or detail:
            banners.append(
                Banner(
                    "warning",
                    f"**Usage alert:** today's usage reached the alert threshold "
                    f"({percent(limits.alert_threshold)} of a daily cap){reached}. "
                    "See **Finance → Limits**.",
                )
            )
    return banners
