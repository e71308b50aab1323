"""The gateway's settings: one frozen dataclass, filled by the command line or by an embedder."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.simulation import CarrierSimulation

DEFAULT_DB = Path(".kedasms") / "gateway.db"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Everything ``create_app`` needs; the defaults are those of ``python -m gateway serve``.

    Attributes:
        db_path: the SQLite file (created with its folder when missing).
        host, port: where ``serve`` listens; also the public base of short links.
        public_url: the public base of short links when it is not the listening address.
        allow_private_callbacks: accept loopback/private callback hosts (the sandbox does).
        rate_limit: requests per second per API key (token bucket); 0 turns it off.
        rate_burst: bucket size; ``None`` means twice the rate (at least 1).
        carrier_profile: ``deterministic`` (everything delivered, fixed delays) or
            ``realistic`` (a few percent FAILED/UNDELIVERED, per-country latencies).
        sent_delay, deliver_delay: seconds QUEUED → SENT and SENT → final, for every
            country; ``None`` keeps the profile's (deterministic: 0.5 and 1.0).
        failed_share, undelivered_share, carrier_jitter: the same, for the fate shares and
            the spread of delays (a delay varies over ``delay × (1 ± jitter)``).
        country_profiles: per-country overrides, as in a ``--country-profiles`` file.
        carrier_seed: decides every message's fate together with its msgid.
        carrier_interval: seconds between two looks for due messages.
        carrier_batch: at most this many status changes per transaction.
        currency: the currency of the price table and of new accounts.
        prices: price per segment by ISO country code (decimal strings); ``None`` → default.
        window: accepted clock skew of an envelope's timestamp, seconds.
        client_ref_ttl: seconds a ``clientRef`` keeps returning the first response.
        max_body_bytes: larger request bodies are refused (1004).
        mail_dir: the mail outbox; ``None`` → ``mail/`` beside the database.
        clock: Unix seconds; tests pass a fake one to cross a UTC day.
        callback_concurrency: callback deliveries in flight at once.
        callback_timeout: seconds one delivery attempt may take.
        callback_backoff_base, callback_backoff_cap: seconds before the second attempt,
            doubling with each failure up to the cap.
        callback_max_attempts: dead-letter after this many attempts (``None``: by age only).
        callback_dead_after: seconds after which an undelivered event is dead-lettered.
        callback_batch: outbox rows claimed (and settled) per transaction.
        outbox_retention: seconds delivered events are kept (dead letters are kept).
        max_tracked_urls: the most URLs a ``trackClick`` message may carry (each becomes a
            short link per recipient); more is refused with 2001.
        trusted_proxies: addresses or networks (``10.0.0.0/8``) of the reverse proxies whose
            ``X-Forwarded-For`` is believed; empty: the header is never believed.
        click_limit, click_window: at most ``click_limit`` clicks of one link from one
            client address are recorded per ``click_window`` seconds (the redirect answers
            every time); ``click_limit`` 0 records every click.
        group_budget: seconds of the event loop's CPU time after which a group commit stops
            taking work, commits, and lets the loop serve others before the next group.
    """

    db_path: Path = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8787
    public_url: str | None = None
    allow_private_callbacks: bool = False
    rate_limit: float = 100.0
    rate_burst: int | None = None
    carrier_profile: str = "deterministic"
    sent_delay: float | None = None
    deliver_delay: float | None = None
    failed_share: float | None = None
    undelivered_share: float | None = None
    carrier_jitter: float | None = None
    country_profiles: Mapping[str, Mapping[str, Any]] | None = None
    carrier_seed: int = 0
    carrier_interval: float = 0.05
    carrier_batch: int = 1000
    currency: str = "USD"
    prices: Mapping[str, str] | None = None
    window: int = 300
    client_ref_ttl: int = 24 * 3600
    max_body_bytes: int = 2 * 1024 * 1024
    mail_dir: Path | None = None
    clock: Callable[[], float] = field(default=time.time)
    callback_concurrency: int = 128
    callback_timeout: float = 10.0
    callback_backoff_base: float = 1.0
    callback_backoff_cap: float = 300.0
    callback_max_attempts: int | None = None
    callback_dead_after: float = 24 * 3600
    callback_batch: int = 500
    outbox_retention: float = 7 * 24 * 3600
    max_tracked_urls: int = 10
    trusted_proxies: tuple[str, ...] = ()
    click_limit: int = 10
    click_window: float = 60.0
    group_budget: float = 0.025

    @property
    def mail_folder(self) -> Path:
        """Where verification e-mails are written, one text file per mail."""
        return Path(self.mail_dir) if self.mail_dir else Path(self.db_path).parent / "mail"

    @property
    def burst(self) -> int:
        """Token bucket size of the rate limiter."""
        if self.rate_burst is not None:
            return max(1, int(self.rate_burst))
        return max(1, int(self.rate_limit * 2))

    def policy(self) -> CarrierSimulation:
        """The carrier simulation these settings describe (``serve`` and ``create_app``).

        Raises:
            gateway.simulation.ProfileError: a profile, share, delay or country is wrong.
        """
        from gateway.simulation import CarrierSimulation  # the config stays light to import

        return CarrierSimulation.from_settings(
            self.carrier_profile,
            sent_delay=self.sent_delay,
            deliver_delay=self.deliver_delay,
            failed_share=self.failed_share,
            undelivered_share=self.undelivered_share,
            jitter=self.carrier_jitter,
            country_profiles=self.country_profiles,
            seed=self.carrier_seed,
        )

    def listening_base(self) -> str | None:
        """``public_url`` or ``http://host:port``; None when the host is a wildcard."""
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.host in ("0.0.0.0", "::", ""):
            return None  # the request's own address is the best guess then
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
