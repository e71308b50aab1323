"""The carrier simulation: per-country latencies, shares of FAILED and UNDELIVERED, magic numbers.

``CarrierSimulation`` is a carrier ``Policy``. Each message's fate is a function of its msgid
(a keyed hash), never of a random generator's state, so a restarted gateway makes the same
decisions about the messages it finds half way. The first delay (QUEUED → first event) is
stored with the message when it is accepted, so it may be drawn at random.

Magic numbers behave the same under every profile (in the spirit of Twilio's test numbers):
``+15005550001`` FAILED, ``+15005550002`` SENT then UNDELIVERED, ``+15005550003`` SENT then
DELIVERED 30 s later (never scaled by ``time_scale``).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from gateway.carrier import DELIVERED, FAILED, QUEUED, SENT, UNDELIVERED, Due, Step

MAGIC_FAILED = "+15005550001"
MAGIC_UNDELIVERED = "+15005550002"
MAGIC_SLOW = "+15005550003"
SLOW_DELIVERY_SECONDS = 30.0
PROFILE_NAMES = ("deterministic", "realistic")

# Names in a --country-profiles file (the wire's camelCase) → CountryProfile fields.
_FILE_KEYS = {
    "sentDelay": "sent_delay",
    "deliverDelay": "deliver_delay",
    "failedShare": "failed_share",
    "undeliveredShare": "undelivered_share",
    "jitter": "jitter",
}


class ProfileError(ValueError):
    """Carrier settings that cannot work (a share above 1, a negative delay, a bad file)."""


@dataclass(frozen=True, slots=True)
class CountryProfile:
    """How the channel treats one country's messages.

    Attributes:
        sent_delay: mean seconds from QUEUED to the channel's answer (SENT or FAILED).
        deliver_delay: mean seconds from SENT to the final status.
        failed_share: share of messages the channel refuses (QUEUED → FAILED, released).
        undelivered_share: share sent but never delivered (SENT → UNDELIVERED, charged).
        jitter: each delay is spread evenly over ``delay × (1 ± jitter)``.
    """

    sent_delay: float = 0.5
    deliver_delay: float = 1.0
    failed_share: float = 0.0
    undelivered_share: float = 0.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ProfileError(f"{f.name} must be a finite number ≥ 0, got {value!r}")
        if self.failed_share + self.undelivered_share > 1:
            raise ProfileError("failed_share + undelivered_share must not exceed 1")
        if self.jitter > 1:
            raise ProfileError(f"jitter must be between 0 and 1, got {self.jitter!r}")


DETERMINISTIC = CountryProfile(sent_delay=0.5, deliver_delay=1.0)
# A few percent of each fate, a few seconds of latency; some routes slower and lossier.
REALISTIC = CountryProfile(1.0, 3.0, 0.03, 0.03, 0.5)
REALISTIC_COUNTRIES: dict[str, CountryProfile] = {
    "US": CountryProfile(0.5, 2.0, 0.02, 0.02, 0.5),
    "CA": CountryProfile(0.5, 2.0, 0.02, 0.02, 0.5),
    "GB": CountryProfile(0.8, 2.5, 0.02, 0.03, 0.5),
    "DE": CountryProfile(0.8, 2.5, 0.02, 0.03, 0.5),
    "CN": CountryProfile(1.0, 3.0, 0.03, 0.04, 0.5),
    "IN": CountryProfile(2.0, 6.0, 0.05, 0.05, 0.5),
    "BR": CountryProfile(1.5, 5.0, 0.04, 0.04, 0.5),
    "NG": CountryProfile(3.0, 8.0, 0.06, 0.06, 0.5),
}


def _unit(seed: int, msgid: str, purpose: str) -> float:
    """A number in [0, 1) that only the seed, the msgid and the purpose decide."""
    digest = hashlib.blake2b(f"{seed}:{purpose}:{msgid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _spread(delay: float, jitter: float, u: float) -> float:
    return delay * (1 - jitter + 2 * jitter * u)


class CarrierSimulation:
    """A carrier ``Policy``: per-country latency and fate shares, magic numbers, seeded fates.

    Args:
        default: the profile of countries not in ``countries``.
        countries: profiles by ISO country code.
        seed: decides every fate together with the msgid (same seed, same fates).
        time_scale: multiplies every latency (tests run the realistic profile at 0.05);
            the slow magic number keeps its 30 s.
    """

    def __init__(
        self,
        default: CountryProfile = DETERMINISTIC,
        countries: Mapping[str, CountryProfile] | None = None,
        *,
        seed: int = 0,
        time_scale: float = 1.0,
    ) -> None:
        if not math.isfinite(time_scale) or time_scale < 0:
            raise ProfileError(f"time_scale must be a finite number ≥ 0, got {time_scale!r}")
        self.default = default
        self.countries = {code.upper(): p for code, p in (countries or {}).items()}
        self.seed = seed
        self.time_scale = time_scale
        self._rng = random.Random(seed)  # only for first delays, which are stored

    def __repr__(self) -> str:
        return (
            f"CarrierSimulation(default={self.default!r}, countries={len(self.countries)}, "
            f"seed={self.seed}, time_scale={self.time_scale})"
        )

    @classmethod
    def deterministic(
        cls, sent_delay: float = 0.5, deliver_delay: float = 1.0
    ) -> CarrierSimulation:
        """Every message sent, then delivered, after fixed delays (``serve``'s default)."""
        return cls(CountryProfile(sent_delay, deliver_delay))

    @classmethod
    def realistic(cls, *, seed: int = 0, time_scale: float = 1.0) -> CarrierSimulation:
        """A few percent FAILED and UNDELIVERED, per-country latencies of a few seconds."""
        return cls(REALISTIC, REALISTIC_COUNTRIES, seed=seed, time_scale=time_scale)

    @classmethod
    def from_settings(
        cls,
        profile: str = "deterministic",
        *,
        sent_delay: float | None = None,
        deliver_delay: float | None = None,
        failed_share: float | None = None,
        undelivered_share: float | None = None,
        jitter: float | None = None,
        country_profiles: Mapping[str, Mapping[str, Any]] | None = None,
        seed: int = 0,
        time_scale: float = 1.0,
    ) -> CarrierSimulation:
        """A named profile, then the settings given (for every country), then per country.

        Args:
            profile: ``deterministic`` or ``realistic``.
            country_profiles: ``{"IN": {"failedShare": 0.1, ...}, "*": {...}}`` as in a
                ``--country-profiles`` file; ``"*"`` applies to every country.
        """
        if profile == "deterministic":
            default, countries = DETERMINISTIC, {}
        elif profile == "realistic":
            default, countries = REALISTIC, dict(REALISTIC_COUNTRIES)
        else:
            raise ProfileError(f"unknown carrier profile {profile!r}: use one of {PROFILE_NAMES}")
        given = {
            "sent_delay": sent_delay,
            "deliver_delay": deliver_delay,
            "failed_share": failed_share,
            "undelivered_share": undelivered_share,
            "jitter": jitter,
        }
        overrides = {k: v for k, v in given.items() if v is not None}
        per_country = _parse_country_profiles(country_profiles or {})
        overrides.update(per_country.pop("*", {}))
        try:
            default = replace(default, **overrides)
            countries = {c: replace(p, **overrides) for c, p in countries.items()}
            for code, changes in per_country.items():
                countries[code] = replace(countries.get(code, default), **changes)
        except TypeError as exc:
            raise ProfileError(str(exc)) from None
        return cls(default, countries, seed=seed, time_scale=time_scale)

    def profile(self, country: str) -> CountryProfile:
        """The profile that applies to a country."""
        return self.countries.get(country.upper(), self.default)

    def fate(self, msgid: str, recipient: str, country: str) -> str:
        """The final status a message will reach (decided by its msgid, or a magic number)."""
        if recipient == MAGIC_FAILED:
            return FAILED
        if recipient == MAGIC_UNDELIVERED:
            return UNDELIVERED
        if recipient == MAGIC_SLOW:
            return DELIVERED
        p = self.profile(country)
        u = _unit(self.seed, msgid, "fate")
        if u < p.failed_share:
            return FAILED
        if u < p.failed_share + p.undelivered_share:
            return UNDELIVERED
        return DELIVERED

    def first_delay(self, recipient: str, country: str) -> float:
        """Seconds from QUEUED to the channel's answer."""
        p = self.profile(country)
        return _spread(p.sent_delay, p.jitter, self._rng.random()) * self.time_scale

    def next_step(self, message: Due) -> Step:
        """SENT or FAILED from QUEUED; the final status from SENT."""
        fate = self.fate(message.msgid, message.recipient, message.country)
        if message.status == QUEUED:
            if fate == FAILED:
                return Step(FAILED, None)
            if message.recipient == MAGIC_SLOW:
                return Step(SENT, SLOW_DELIVERY_SECONDS)
            p = self.profile(message.country)
            u = _unit(self.seed, message.msgid, "deliver")
            return Step(SENT, _spread(p.deliver_delay, p.jitter, u) * self.time_scale)
        return Step(UNDELIVERED if fate == UNDELIVERED else DELIVERED, None)


def _parse_country_profiles(raw: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``{"CN": {"sentDelay": 2}}`` → ``{"CN": {"sent_delay": 2.0}}``, every key checked."""
    if not isinstance(raw, Mapping):
        raise ProfileError("country profiles must be a JSON object of country codes")
    out: dict[str, dict[str, float]] = {}
    for code, settings in raw.items():
        if not isinstance(code, str) or not (code == "*" or (len(code) == 2 and code.isalpha())):
            raise ProfileError(f"{code!r} is not a two-letter country code (or '*')")
        if not isinstance(settings, Mapping):
            raise ProfileError(f"{code}: must be an object such as {{'failedShare': 0.05}}")
        changes: dict[str, float] = {}
        for key, value in settings.items():
            if key not in _FILE_KEYS:
                raise ProfileError(f"{code}: unknown setting {key!r}; use {', '.join(_FILE_KEYS)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ProfileError(f"{code}.{key}: must be a number, got {value!r}")
            changes[_FILE_KEYS[key]] = float(value)
        out[code.upper()] = changes
    return out


def load_country_profiles(path: Path | str) -> dict[str, dict[str, Any]]:
    """Read and check a ``--country-profiles`` JSON file."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read country profiles from {path}: {exc}") from None
    _parse_country_profiles(raw)  # fail now, with the file's name, rather than at start
    return raw
