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
    """What every page must say about today's caps: blocked sending first, then the alert.

    Only about caps in force now: KedaSMS keeps today's alert "triggered" until the UTC day
    ends, even after the cap that raised it is removed or raised. The warning is shown while
    a cap is at or past its alert point, and goes as soon as none is (the Limits page keeps
    saying when the alert was raised: ``alert_state``).
    """
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
    crossed = [c for c in crossed_caps(limits) if c not in blocked]
    if limits.alert.triggered and crossed:
        detail = []
        if "dailySmsCap" in crossed:
            detail.append(f"SMS {_sms(limits)}")
        if "dailySpendCap" in crossed:
            detail.append(f"spend {_spend(limits, currency)}")
        banners.append(
            Banner(
                "warning",
                f"**Usage alert:** today's usage reached the alert threshold "
                f"({percent(limits.alert_threshold)} of a daily cap): {'; '.join(detail)}. "
                "See **Finance → Limits**.",
            )
        )
    return banners


def alert_state(limits: Limits, raised_at: str) -> tuple[str, str]:
    """The Limits page's "Alert today": a word or two, and a sentence.

    ``raised_at`` is when the alert was raised, as the page shows times. The alert stays
    raised for the UTC day; when no cap is at its alert point any more (removed, raised), it
    says so instead of warning about a cap that is gone.
    """
    threshold = percent(limits.alert_threshold)
    blocked = blocked_caps(limits)
    no_cap = limits.daily_sms_cap is None and limits.daily_spend_cap is None
    if blocked:
        caps = " and ".join(CAP_NAMES[c] for c in blocked)
        verb = "are" if len(blocked) > 1 else "is"
        return "Blocked", f"Sends are refused: the {caps} {verb} reached."
    crossed = crossed_caps(limits)
    if limits.alert.triggered and crossed:
        which = " and ".join(CAP_NAMES[c] for c in crossed)
        return "Raised", f"At {raised_at}: usage reached {threshold} of the {which}."
    if limits.alert.triggered:
        now = (
            "There is no daily cap now, so nothing to warn about."
            if no_cap
            else f"The caps changed since: no cap is at its alert point now ({threshold})."
        )
        return "Raised earlier", f"At {raised_at}. {now} It resets with the UTC day."
    if no_cap:
        return "No cap", "No daily cap is set: there is no alert to raise."
    return "Not raised", f"Raised when usage reaches {threshold} of a cap."
