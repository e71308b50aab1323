"""The gateway's parts wired together from a config, and its background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.accounts import Accounts
from gateway.carrier import Carrier, FixedDelays, Policy
from gateway.config import GatewayConfig
from gateway.db import Database
from gateway.limits import Limits
from gateway.messages import Messages
from gateway.pricing import PriceTable
from gateway.ratelimit import RateLimiter
from gateway.replay import prune_ivs
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
        self.policy = policy or FixedDelays(config.sent_delay, config.deliver_delay)
        self.accounts = Accounts(self.db, self.clock, config.currency)
        self.sending = Sending(
            self.db,
            self.prices,
            self.policy,
            self.clock,
            client_ref_ttl=config.client_ref_ttl,
            allow_private_callbacks=config.allow_private_callbacks,
        )
        self.messages = Messages(self.db)
        self.limits = Limits(self.db, self.clock)
        self.links = Links(self.db, self.clock)
        self.limiter = RateLimiter(config.rate_limit, config.burst)
        self.carrier = Carrier(
            self.db,
            self.policy,
            self.clock,
            interval=config.carrier_interval,
            batch=config.carrier_batch,
        )
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        """Start the carrier and the periodic clean-up on the running event loop."""
        self._tasks = [
            asyncio.create_task(self.carrier.run(), name="gateway-carrier"),
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
        """Forget what can no longer matter: old IVs, client refs, tokens, idle buckets."""
        prune_ivs(self.db, self.clock(), self.config.window)
        self.sending.prune_client_refs()
        self.accounts.prune_tokens()
        self.limiter.prune()

    async def _maintenance(self) -> None:
        while True:
            try:
                self.maintain()
            except Exception:
                log.exception("maintenance failed; will retry")
            await asyncio.sleep(MAINTENANCE_SECONDS)
