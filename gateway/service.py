"""The gateway's parts wired together from a config, and its background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.accounts import Accounts
from gateway.addresses import AddressRules
from gateway.carrier import Carrier, Policy
from gateway.clickbound import ClickBound
from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.delivery import CallbackSender
from gateway.forwarding import TrustedProxies
from gateway.limits import Limits
from gateway.messages import Messages
from gateway.outbox import Outbox
from gateway.pricing import PriceTable
from gateway.ratelimit import RateLimiter
from gateway.replay import EnvelopeGuard, prune_ivs
from gateway.sending import Sending
from gateway.shortlinks import Links

log = logging.getLogger("gateway")

MAINTENANCE_SECONDS = 60.0


class Gateway:
    """One gateway: its database, stores, rate limiter and carrier (no global state)."""

    def __init__(self, config: GatewayConfig, policy: Policy | None = None) -> None:
        self.config = config
        self.clock = config.clock
        self.db = Database(config.db_path)
        self.prices = PriceTable(config.prices, config.currency)
        self.policy = policy or config.policy()
        self.address_rules = AddressRules.for_gateway(
            config.allow_private_callbacks, config.host, config.port, config.public_url
        )
        self.accounts = Accounts(self.db, self.clock, config.currency)
        self.limiter = RateLimiter(config.rate_limit, config.burst)
        # Envelope calls are rate limited once their IV is recorded (a throttled body is spent).
        self.guard = EnvelopeGuard(
            self.db,
            self.clock,
            config.window,
            admit=self.limiter.admit,
            group_budget=config.group_budget,
        )
        self.sending = Sending(
            self.db,
            self.prices,
            self.policy,
            self.clock,
            client_ref_ttl=config.client_ref_ttl,
            address_rules=self.address_rules,
            guard=self.guard,
            max_tracked_urls=config.max_tracked_urls,
        )
        self.messages = Messages(self.db)
        self.limits = Limits(self.db, self.clock)
        self.outbox = Outbox(self.db, self.clock)
        # Who a request comes from: forwarding headers only from the proxies named.
        self.proxies = TrustedProxies(config.trusted_proxies)
        self.links = Links(
            self.db,
            self.clock,
            self.outbox,
            self.guard,
            ClickBound(config.click_limit, config.click_window),
        )
        self.carrier = Carrier(
            self.db,
            self.policy,
            self.clock,
            interval=config.carrier_interval,
            batch=config.carrier_batch,
        )
        # The outbox is written in the carrier's own transaction: a change and its
        # callback commit together, or neither does.
        self.carrier.on_transitions.append(self.outbox.on_transitions)
        self.callbacks = CallbackSender(
            self.outbox,
            self.address_rules,
            self.clock,
            concurrency=config.callback_concurrency,
            timeout=config.callback_timeout,
            backoff_base=config.callback_backoff_base,
            backoff_cap=config.callback_backoff_cap,
            max_attempts=config.callback_max_attempts,
            dead_after=config.callback_dead_after,
            batch=config.callback_batch,
        )
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Start the carrier, the callback sender and the clean-up on the running event loop."""
        self._tasks = [
            asyncio.create_task(self.carrier.run(), name="gateway-carrier"),
            asyncio.create_task(self.callbacks.run(), name="gateway-callbacks"),
            asyncio.create_task(self._maintenance(), name="gateway-maintenance"),
        ]
        log.info(
            "gateway ready: database %s, mail outbox %s",
            self.config.db_path,
            self.config.mail_folder,
        )

    async def stop(self) -> None:
        """Stop the background tasks and release the database."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self.db.close()

    def maintain(self) -> None:
        """Forget what no longer matters: old IVs, delivered callbacks, refs, tokens, buckets,
        ended click windows."""
        prune_ivs(self.db, self.clock(), self.config.window)
        self.outbox.prune(self.config.outbox_retention)
        self.sending.prune_client_refs()
        self.accounts.prune_tokens()
        self.limiter.prune()
        self.links.bound.prune(self.clock())

    async def _maintenance(self) -> None:
        while True:
            try:
                self.maintain()
            except Exception:
                log.exception("maintenance failed; will retry")
            await asyncio.sleep(MAINTENANCE_SECONDS)
