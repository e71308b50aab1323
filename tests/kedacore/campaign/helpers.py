"""Shared by the campaign tests: recipient lists, clients for a gateway, the gateway's tally."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kedacore import AsyncKedaClient

# (country, the i-th valid mobile number of it in E.164)
NUMBERS: dict[str, Callable[[int], str]] = {
    "US": lambda i: f"+1206{2_000_000 + i:07d}",
    "GB": lambda i: f"+4474{i:08d}",
    "DE": lambda i: f"+49151{i:08d}",
    "IN": lambda i: f"+9181{i:08d}",
    "BR": lambda i: f"+55119{i:08d}",
    "CN": lambda i: f"+86131{i:08d}",
}
NAMES = ("Ana", "Ben", "Chloé", "Dev", "Emma", "Felix", "Gita")


def marketing_csv(
    count: int,
    countries: tuple[str, ...] = ("US", "GB", "DE", "IN", "BR"),
    *,
    names: int = len(NAMES),
    extra_lines: tuple[str, ...] = (),
) -> bytes:
    """``phone,name,country`` for ``count`` recipients; ``names`` distinct names in turn."""
    lines = ["phone,name,country"]
    for i in range(count):
        country = countries[i % len(countries)]
        name = NAMES[i % len(NAMES)] if names <= len(NAMES) else f"Friend{i % names}"
        lines.append(f"{NUMBERS[country](i)},{name},{country}")
    lines.extend(extra_lines)
    return ("\n".join(lines) + "\n").encode()


def client_factory(base_url: str, api_key: str, encryption_key: str, **options: Any):
    """A factory of AsyncKedaClients for one gateway and account."""

    def make() -> AsyncKedaClient:
        return AsyncKedaClient(
            api_key, encryption_key, base_url=base_url, backup_url=base_url, **options
        )

    return make


@dataclass(frozen=True)
class GatewayTally:
    """What the gateway holds: messages, distinct recipients, repeats, money, tasks."""

    messages: int
    recipients: int
    repeated: list[tuple[str, int]]  # recipients with more than one message
    price_micros: int
    tasks: int
    client_refs: int

    @classmethod
    def read(cls, query: Callable[..., list[tuple]]) -> GatewayTally:
        messages, recipients, price = query(
            "SELECT count(*), count(DISTINCT recipient), coalesce(sum(price_micros), 0) "
            "FROM messages"
        )[0]
        repeated = query(
            "SELECT recipient, count(*) FROM messages GROUP BY recipient HAVING count(*) > 1"
        )
        tasks, refs = query("SELECT count(*), count(DISTINCT client_ref) FROM tasks")[0]
        return cls(messages, recipients, [tuple(r) for r in repeated], price, tasks, refs)
